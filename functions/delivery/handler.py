"""Delivery consumer: one message of the delivery queue (a subscription and an event) ->
one turn of its delivery (functions/delivery/logic.py). A turn that must wait (the retry
schedule, an open circuit breaker, an ordered line, another copy's lease) moves the
message's visibility to when it is due and reports it as a batch item failure, so the
queue gives it back then; nothing else holds it."""

from __future__ import annotations

import json
import math
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.delivery.logic import DeliveryDeps, MalformedMessage, SigningKeys, Verdict, deliver
from switchboard_core import aws
from switchboard_core.bus import EventPublisher
from switchboard_core.settings import load_settings
from switchboard_core.subscriptions.deliveries import DeliveryWriter
from switchboard_core.subscriptions.models import SUBSCRIPTION_ID_PREFIX, DeliveryMessage
from switchboard_core.subscriptions.policy import SQS_MAX_VISIBILITY_SECONDS, DeliveryPolicy, load_policy
from switchboard_core.subscriptions.secrets import SigningSecretStore
from switchboard_core.subscriptions.sender import post
from switchboard_core.subscriptions.store import SubscriptionStore
from switchboard_core.tracing import LazyTracer

logger = Logger()
metrics = Metrics()
# AWS calls only: partners' URLs (which may carry tokens in their query) stay out of traces.
tracer = LazyTracer(patch_modules=["botocore"])
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# A visibility change counts from now, at most 12 h after the receive: keep clear of the edge.
MAX_WAIT_SECONDS = SQS_MAX_VISIBILITY_SECONDS - 300
MAX_DELAY_SECONDS = 900  # SQS's largest DelaySeconds, for a message sent again (below)
FINISHED_QUIETLY = {"delivered", "duplicate", "finished", "superseded"}


class DeliverySettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    subscriptions_table: str = Field(alias="TABLE_SUBSCRIPTIONS")
    event_bus: str = Field(alias="EVENT_BUS_NAME")
    secrets_prefix: str = Field(alias="SUBSCRIPTION_SECRETS_PREFIX")
    queue_url: str = Field(alias="DELIVERY_QUEUE_URL")
    max_receive_count: int = Field(ge=1, alias="QUEUE_MAX_RECEIVE_COUNT")
    endpoints: str = Field(default="", alias="SWITCHBOARD_ENDPOINTS")

    @property
    def local_endpoints(self) -> bool:
        return self.endpoints == "loopback"


class Waiting(Exception):
    """The message waits (its visibility was moved): reported as a batch item failure."""


@cache
def settings() -> DeliverySettings:
    return load_settings(DeliverySettings)


@cache
def policy() -> DeliveryPolicy:
    return load_policy()


def wake(receipt: str) -> None:
    """Make a waiting message visible now (it may have finished meanwhile: then nothing to do)."""
    from botocore.exceptions import ClientError

    try:
        aws.client("sqs").change_message_visibility(
            QueueUrl=settings().queue_url, ReceiptHandle=receipt, VisibilityTimeout=0
        )
    except ClientError as exc:
        logger.info("a waiting message could not be woken", extra={"error": exc.response["Error"]["Code"]})


@cache
def dependencies() -> DeliveryDeps:
    config = settings()
    table = aws.resource("dynamodb").Table(config.subscriptions_table)
    return DeliveryDeps(
        subscriptions=SubscriptionStore(table),
        log=DeliveryWriter(table),
        keys=SigningKeys(SigningSecretStore(aws.client("secretsmanager"), config.secrets_prefix)),
        send=post,
        publish=EventPublisher(aws.client("events"), config.event_bus).publish,
        policy=policy(),
        local_endpoints=config.local_endpoints,
        wake=wake,
    )


def wait(record: SQSRecord, message: DeliveryMessage, seconds: float) -> None:
    """Hold `record` back for `seconds`. Near the queue's maxReceiveCount a wait would send it to
    the dead-letter queue, so the message is sent again instead (a fresh receive count) and
    this copy finishes: breaker and ordering waits spend receives, not attempts."""
    config = settings()
    sqs = aws.client("sqs")
    receives = int(record.attributes.approximate_receive_count or 1)
    if receives >= config.max_receive_count - 1:
        sqs.send_message(
            QueueUrl=config.queue_url,
            MessageBody=message.model_dump_json(),  # as read: a redriven event keeps its subscription
            DelaySeconds=min(MAX_DELAY_SECONDS, math.ceil(seconds)),
        )
        logger.info("message sent again to keep waiting", extra={"receives": receives})
        return
    sqs.change_message_visibility(
        QueueUrl=config.queue_url,
        ReceiptHandle=record.receipt_handle,
        VisibilityTimeout=max(0, min(MAX_WAIT_SECONDS, math.ceil(seconds))),
    )
    raise Waiting(f"waiting {seconds:.0f} s")


def message_of(record: SQSRecord) -> DeliveryMessage:
    """The record as a DeliveryMessage. What a subscription rule's target could not put on the
    queue, EventBridge dead-letters as the event itself with the rule's ARN in the RULE_ARN
    message attribute; redriven from the DLQ into this queue, it is read as that subscription's."""
    document = json.loads(record.body)
    if isinstance(document, dict) and "subscription" not in document and "detail" in document:
        attributes: dict[str, Any] = record["messageAttributes"] or {}
        rule_arn = str((attributes.get("RULE_ARN") or {}).get("stringValue") or "")
        rule_name = rule_arn.rsplit("/", 1)[-1]
        if SUBSCRIPTION_ID_PREFIX in rule_name:
            subscription = SUBSCRIPTION_ID_PREFIX + rule_name.split(SUBSCRIPTION_ID_PREFIX, 1)[1]
            document = {"subscription": subscription, "event": document}
    return DeliveryMessage.model_validate(document)


def record_handler(record: SQSRecord) -> None:
    try:
        message = message_of(record)
        event_id = message.detail.get("id")
        logger.append_keys(subscription=message.subscription, event_id=event_id, trigger=message.effective_trigger)
        logger.set_correlation_id(event_id if isinstance(event_id, str) else None)
        verdict: Verdict = deliver(message, dependencies(), receipt=record.receipt_handle)
    except (ValidationError, ValueError, MalformedMessage) as exc:
        # Reported, not dropped: it comes back, then rests in the dead-letter queue for a look.
        metrics.add_metric(name="delivery_malformed", unit=MetricUnit.Count, value=1)
        logger.error("malformed delivery message", extra={"message_id": record.message_id, "error": str(exc)[:500]})
        raise
    metrics.add_metric(name=f"delivery_{verdict.outcome}", unit=MetricUnit.Count, value=1)
    log = logger.info if verdict.outcome in FINISHED_QUIETLY or verdict.wait_seconds is not None else logger.warning
    log(
        "delivery turn",
        extra={
            "outcome": verdict.outcome,
            "status_code": verdict.status_code,
            "detail": verdict.detail,
            "wait_seconds": round(verdict.wait_seconds, 1) if verdict.wait_seconds is not None else None,
        },
    )
    if verdict.wait_seconds is not None:
        wait(record, message, verdict.wait_seconds)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
