"""Notifications: SQS batches of routing.assigned / .unassigned / .escalated and campaigns'
campaign.notification_requested -> sends -> notification.* on the bus; and, on its schedule,
the digests whose rate window ended.

One invocation serves both: an SQS batch has `Records`; the scheduled run's input does not.
Partial batch failures: a transient channel failure retries that one event (its sent
channels are not sent again: each is claimed once)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import Field, Json

from functions.notifications.channels import ChannelDeps
from functions.notifications.ledger import NotificationLedger
from functions.notifications.logic import NotificationDeps, NotificationPolicy, flush_digests, handle
from switchboard_core import aws, sending
from switchboard_core.bus import EventPublisher
from switchboard_core.envelopes import CanonicalEventBridgeEvent
from switchboard_core.notification_signing import NotificationSigningKeys
from switchboard_core.outbound import TransientFailure
from switchboard_core.outbound.transport import http_transport
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.sending import SendingSettings
from switchboard_core.settings import load_settings
from switchboard_core.tracing import LazyTracer

if TYPE_CHECKING:
    from switchboard_core.endpoints import CheckedEndpoint
    from switchboard_core.subscriptions.sender import SendResult

logger = Logger()
metrics = Metrics()
# AWS calls only: webhook URLs and Telegram-style tokens stay out of traces.
tracer = LazyTracer(patch_modules=["botocore"])
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class NotificationSettings(SendingSettings):
    notifications_table: str = Field(alias="TABLE_NOTIFICATIONS")
    routing_table: str = Field(alias="TABLE_ROUTING")
    signing_secrets_prefix: str = Field(alias="NOTIFICATION_SECRETS_PREFIX")
    policy: Json[NotificationPolicy] = Field(alias="NOTIFICATION_POLICY")
    email_from: str | None = Field(default=None, alias="NOTIFICATION_EMAIL_FROM")
    sms_from: str | None = Field(default=None, alias="NOTIFICATION_SMS_FROM")
    max_receive_count: int = Field(ge=1, alias="QUEUE_MAX_RECEIVE_COUNT")
    endpoints: str = Field(default="", alias="SWITCHBOARD_ENDPOINTS")


@cache
def settings() -> NotificationSettings:
    return load_settings(NotificationSettings)


def post_webhook(endpoint: CheckedEndpoint, body: bytes, headers: dict[str, str], timeout: float) -> SendResult:
    """The webhook channel's sender, imported by the first notification webhook (no other channel uses it)."""
    from switchboard_core.subscriptions.sender import post

    return post(endpoint, body, headers, timeout)


@cache
def dependencies() -> tuple[NotificationDeps, EventPublisher]:
    config = settings()
    dynamodb = aws.resource("dynamodb")
    keys = NotificationSigningKeys(aws.client("secretsmanager"), config.signing_secrets_prefix)
    channels = ChannelDeps(
        connections=sending.connections(config),
        credentials=sending.outbound_credentials(config),
        transport=http_transport,
        ses=aws.client("sesv2"),
        email_from=config.email_from or None,
        sms_from=config.sms_from or None,
        webhook_keys=keys.keys,
        post=post_webhook,
        local_endpoints=config.endpoints == "loopback",
    )
    deps = NotificationDeps(
        config=RoutingConfigStore(dynamodb.Table(config.routing_table)),
        ledger=NotificationLedger(dynamodb.Table(config.notifications_table)),
        channels=channels,
        policy=config.policy,
    )
    return deps, sending.publisher(config)


def record_handler(record: SQSRecord) -> None:
    metrics.add_metric(name="notification_triggers", unit=MetricUnit.Count, value=1)
    event = CanonicalEventBridgeEvent.model_validate_json(record.body).detail
    logger.set_correlation_id(event.id)
    deps, publisher = dependencies()
    last_attempt = int(record.attributes.approximate_receive_count) >= settings().max_receive_count
    try:
        outcomes = handle(event, deps, datetime.now(UTC), last_attempt=last_attempt)
    except TransientFailure as failure:
        metrics.add_metric(name="notification_retried", unit=MetricUnit.Count, value=1)
        logger.warning("notification will be retried", extra={"code": failure.code})
        raise
    if outcomes:
        publisher.publish(outcomes)
    for outcome in outcomes:
        metrics.add_metric(name=outcome.type.replace(".", "_"), unit=MetricUnit.Count, value=1)
    logger.info("notifications handled", extra={"trigger": event.type, "outcomes": [o.type for o in outcomes]})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> Any:
    if "Records" in event:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    deps, publisher = dependencies()
    sent = flush_digests(deps, datetime.now(UTC), publisher.publish)
    metrics.add_metric(name="digests_sent", unit=MetricUnit.Count, value=len(sent))
    return {"digest_notifications": len(sent)}
