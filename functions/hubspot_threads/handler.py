"""HubSpot threads consumer: one `conversation.newMessage` event per SQS record -> the message
fetched from HubSpot -> message.received / message.sent on the bus.

HubSpot's 429/5xx (and the network) are a batch item failure, so the queue retries the record
(then the DLQ); a refusal a retry cannot change, or a connection without outbound credentials,
is logged and counted once and the record is done."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from functions.hubspot_threads.logic import ThreadDeps, handle
from switchboard_core import sending
from switchboard_core.bus import EventPublisher
from switchboard_core.envelopes import CanonicalEventBridgeEvent
from switchboard_core.outbound import TransientFailure
from switchboard_core.outbound.transport import http_transport
from switchboard_core.sending import SendingSettings
from switchboard_core.settings import load_settings
from switchboard_core.tracing import LazyTracer

logger = Logger()
metrics = Metrics()
# AWS calls only: X-Ray's httplib patch would trace each HubSpot call.
tracer = LazyTracer(patch_modules=["botocore"])
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class ThreadsSettings(SendingSettings):
    """Only what every sending function reads: the connections, their outbound credentials, the bus."""


@cache
def settings() -> ThreadsSettings:
    return load_settings(ThreadsSettings)


@cache
def dependencies() -> tuple[ThreadDeps, EventPublisher]:
    config = settings()
    deps = ThreadDeps(
        connections=sending.connections(config),
        credentials=sending.outbound_credentials(config),
        transport=http_transport,
    )
    return deps, sending.publisher(config)


def record_handler(record: SQSRecord) -> None:
    webhook = CanonicalEventBridgeEvent.model_validate_json(record.body).detail
    logger.set_correlation_id(webhook.id)
    deps, publisher = dependencies()
    try:
        outcome = handle(webhook, deps, datetime.now(UTC))
    except TransientFailure as failure:
        metrics.add_metric(name="hubspot_thread_fetch_retried", unit=MetricUnit.Count, value=1)
        logger.warning("HubSpot thread message will be fetched again", extra={"code": failure.code})
        raise
    if outcome.skipped is not None:
        metrics.add_metric(name=f"hubspot_thread_skipped_{outcome.skipped}", unit=MetricUnit.Count, value=1)
        logger.warning(
            "HubSpot thread message not published", extra={"code": outcome.skipped, "detail": outcome.detail}
        )
        return
    publisher.publish(outcome.events)
    for event in outcome.events:
        metrics.add_metric(name=f"hubspot_thread_{event.type.replace('.', '_')}", unit=MetricUnit.Count, value=1)
        logger.info("HubSpot thread message published", extra={"type": event.type, "event_id": event.id})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
