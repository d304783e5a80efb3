"""Calls consumer: SQS batches of `routing.assigned`, Twilio's `call.dial_ended` and Telnyx's
call legs -> the live call held or redirected through the provider's API -> call.patched /
call.patch_failed on the bus. One record per batch: a provider outage retries that record alone."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import Field

from functions.calls.logic import CallDeps, CallStore, handle_event
from switchboard_core import aws, sending
from switchboard_core.bus import EventPublisher
from switchboard_core.envelopes import CanonicalEventBridgeEvent
from switchboard_core.outbound.transport import http_transport
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.sending import SendingSettings
from switchboard_core.settings import load_settings
from switchboard_core.tracing import LazyTracer

logger = Logger()
metrics = Metrics()
# AWS calls only: the httplib patch would put Twilio request URLs in traces.
tracer = LazyTracer(patch_modules=["botocore"])
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class CallsSettings(SendingSettings):
    calls_table: str = Field(alias="TABLE_CALLS")
    routing_table: str = Field(alias="TABLE_ROUTING")
    public_base_url: str = Field(alias="PUBLIC_BASE_URL", min_length=8)


@cache
def settings() -> CallsSettings:
    return load_settings(CallsSettings)


@cache
def dependencies() -> tuple[CallDeps, EventPublisher]:
    config = settings()
    dynamodb = aws.resource("dynamodb")
    deps = CallDeps(
        calls=CallStore(dynamodb.Table(config.calls_table)),
        config=RoutingConfigStore(dynamodb.Table(config.routing_table)),
        connections=sending.connections(config),
        credentials=sending.outbound_credentials(config),
        transport=http_transport,
        public_base_url=config.public_base_url,
    )
    return deps, sending.publisher(config)


def record_handler(record: SQSRecord) -> None:
    event = CanonicalEventBridgeEvent.model_validate_json(record.body).detail
    logger.set_correlation_id(event.id)
    deps, publisher = dependencies()
    metrics.add_metric(name="EventsSeen", unit=MetricUnit.Count, value=1)
    outcomes = handle_event(event, deps, datetime.now(UTC))
    if not outcomes:
        return
    publisher.publish(outcomes)
    for outcome in outcomes:
        metrics.add_metric(name=outcome.type.replace(".", "_"), unit=MetricUnit.Count, value=1)
        logger.info(
            "live call handled",
            extra={
                "outcome": outcome.type,
                "call_sid": outcome.attributes.get("call_sid"),
                "responder": outcome.attributes.get("responder"),
                "reason": outcome.attributes.get("reason"),
            },
        )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
