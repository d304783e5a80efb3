"""Replies consumer: SQS batches of `reply.requested` events -> send -> reply.* outcome
on the bus. Partial batch failures: a transient provider failure retries that one
request (then dead-letters it) without holding back the others."""

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

from functions.replies.logic import ReplyDeps, ReplyOutbox, handle_reply_request
from switchboard_core import aws, sending
from switchboard_core.bus import EventPublisher
from switchboard_core.envelopes import CanonicalEventBridgeEvent
from switchboard_core.outbound import TransientFailure
from switchboard_core.outbound.transport import http_transport
from switchboard_core.routing.contacts import ContactStore
from switchboard_core.sending import SendingSettings
from switchboard_core.settings import load_settings
from switchboard_core.tracing import LazyTracer

logger = Logger()
metrics = Metrics()
# AWS calls only: X-Ray's httplib patch would record each send's URL in the trace, and
# Telegram's carries the bot token (/bot<token>/sendMessage).
tracer = LazyTracer(patch_modules=["botocore"])
# One record per batch: a provider outage reports that record for retry (then reply.failed
# on the last attempt) rather than failing the invocation, so Lambda's error count stays
# for faults in the function itself.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class RepliesSettings(SendingSettings):
    replies_table: str = Field(alias="TABLE_REPLIES")
    contacts_table: str = Field(alias="TABLE_CONTACTS")
    max_receive_count: int = Field(ge=1, alias="QUEUE_MAX_RECEIVE_COUNT")


@cache
def settings() -> RepliesSettings:
    return load_settings(RepliesSettings)


@cache
def dependencies() -> tuple[ReplyDeps, EventPublisher]:
    config = settings()
    dynamodb = aws.resource("dynamodb")
    deps = ReplyDeps(
        outbox=ReplyOutbox(dynamodb.Table(config.replies_table)),
        contacts=ContactStore(dynamodb.Table(config.contacts_table)),
        connections=sending.connections(config),
        credentials=sending.outbound_credentials(config),
        transport=http_transport,
    )
    return deps, sending.publisher(config)


def record_handler(record: SQSRecord) -> None:
    event = CanonicalEventBridgeEvent.model_validate_json(record.body).detail
    logger.set_correlation_id(event.id)
    deps, publisher = dependencies()
    last_attempt = int(record.attributes.approximate_receive_count) >= settings().max_receive_count
    try:
        outcome = handle_reply_request(event, deps, datetime.now(UTC), last_attempt=last_attempt)
    except TransientFailure as failure:
        metrics.add_metric(name="reply_retried", unit=MetricUnit.Count, value=1)
        logger.warning("reply will be retried", extra={"code": failure.code})
        raise
    publisher.publish([outcome])
    metrics.add_metric(name=outcome.type.replace(".", "_"), unit=MetricUnit.Count, value=1)
    logger.info(
        "reply handled",
        extra={
            "outcome": outcome.type,
            "reason": outcome.attributes.get("reason"),
            "code": outcome.attributes.get("code"),
            "via": outcome.attributes.get("via"),
        },
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
