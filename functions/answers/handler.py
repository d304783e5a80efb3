"""Answers consumer: one SQS record per invocation -> send a staff answer, or thread a
provider's delivery report onto one -> message.status_updated on the bus.

A transient failure (the provider's 429/5xx, a report ahead of its send) is reported as a
batch item failure after moving the message's visibility to the provider's Retry-After (or
a backoff), so the queue retries it then; the queue's last attempt records `failed` instead.
An answer recorded `sent` whose pointer could not be written publishes its status at once and
is retried soon for the pointer alone (on the last attempt it is let go: reports find the
answer by its `unpointed` mark)."""

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

from functions.answers.logic import AnswerDeps, PointerNotWritten, handle, queue_delay, webhook_urls
from switchboard_core import aws, sending
from switchboard_core.answers.store import MessageStore
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
# AWS calls only: X-Ray's httplib patch would put each send's URL (some carry a token) in the trace.
tracer = LazyTracer(patch_modules=["botocore"])
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class AnswersSettings(SendingSettings):
    messages_table: str = Field(alias="TABLE_MESSAGES")
    contacts_table: str = Field(alias="TABLE_CONTACTS")
    public_base_url: str | None = Field(default=None, alias="PUBLIC_BASE_URL")
    max_receive_count: int = Field(ge=1, alias="QUEUE_MAX_RECEIVE_COUNT")


@cache
def settings() -> AnswersSettings:
    return load_settings(AnswersSettings)


@cache
def dependencies() -> tuple[AnswerDeps, EventPublisher]:
    config = settings()
    deps = AnswerDeps(
        messages=MessageStore(sending.table(config.messages_table)),
        contacts=ContactStore(sending.table(config.contacts_table)),
        connections=sending.connections(config),
        credentials=sending.outbound_credentials(config),
        transport=http_transport,
        webhook_url=webhook_urls(config.public_base_url),
    )
    return deps, sending.publisher(config)


def queue_url(arn: str) -> str:
    """The queue's URL from its ARN (arn:aws:sqs:<region>:<account>:<name>)."""
    _, partition, _, region, account, name = arn.split(":", 5)
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


def record_handler(record: SQSRecord) -> None:
    event = CanonicalEventBridgeEvent.model_validate_json(record.body).detail
    logger.set_correlation_id(event.id)
    deps, publisher = dependencies()
    receive_count = int(record.attributes.approximate_receive_count)
    last_attempt = receive_count >= settings().max_receive_count
    try:
        outcomes = handle(event, deps, datetime.now(UTC), last_attempt=last_attempt, receive_count=receive_count)
    except PointerNotWritten as failure:
        # Sent and recorded: its status goes out now; only the pointer is retried.
        metrics.add_metric(name="answer_pointer_not_written", unit=MetricUnit.Count, value=1)
        if not last_attempt:
            if failure.outcomes:
                publisher.publish(failure.outcomes)
            retry_soon(record, failure, receive_count)
            raise
        logger.warning("answer's pointer left to its reports", extra={"detail": failure.detail})
        outcomes = failure.outcomes
    except TransientFailure as failure:
        retry_soon(record, failure, receive_count)
        raise
    if outcomes:
        publisher.publish(outcomes)
    for outcome in outcomes:
        state = outcome.attributes.get("state")
        metrics.add_metric(name=f"answer_{state}", unit=MetricUnit.Count, value=1)
        logger.info(
            "answer moved",
            extra={
                "message_id": outcome.attributes.get("message_id"),
                "state": state,
                "via": outcome.attributes.get("via"),
            },
        )


def retry_soon(record: SQSRecord, failure: TransientFailure, receive_count: int) -> None:
    """The message back on the queue after the provider's Retry-After (or a backoff), not the
    queue's visibility timeout."""
    delay = queue_delay(failure, receive_count)
    aws.client("sqs").change_message_visibility(
        QueueUrl=queue_url(record.event_source_arn), ReceiptHandle=record.receipt_handle, VisibilityTimeout=delay
    )
    metrics.add_metric(name="answer_retried", unit=MetricUnit.Count, value=1)
    logger.warning("answer will be retried", extra={"code": failure.code, "delay_seconds": delay})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
