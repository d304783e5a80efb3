"""Campaigns consumer: one SQS record per invocation -> one input applied to the runs it
concerns (switchboard_core.campaigns.runner) -> sends, calls, timers and campaign.* events.

What cannot be applied yet (another change of the run came first, a provider's 429/5xx, a
contact routing has not created) is reported as a batch item failure after moving the
message's visibility to a backoff, so the queue delivers it again then; on the queue's last
attempt a provider's transient failure is recorded as failed instead, so the run goes on. A
malformed message fails every time and ends in the dead-letter queue, where it is kept."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import Field

from functions.campaigns.logic import ChannelExecutor, handle, retry_delay
from switchboard_core import aws, sending
from switchboard_core.campaigns.run_store import RunStore
from switchboard_core.campaigns.runner import CampaignScheduler, MalformedWork, RetryLater, Runner, RunnerDeps
from switchboard_core.outbound import TransientFailure
from switchboard_core.outbound.transport import http_transport
from switchboard_core.sending import SendingSettings
from switchboard_core.settings import load_settings
from switchboard_core.tracing import LazyTracer

if TYPE_CHECKING:
    from switchboard_core.campaigns.store import CampaignStore
    from switchboard_core.endpoints import CheckedEndpoint
    from switchboard_core.notification_signing import NotificationSigningKeys
    from switchboard_core.routing.config_store import RoutingConfigStore
    from switchboard_core.routing.contacts import ContactStore
    from switchboard_core.routing.conversations import ConversationStore
    from switchboard_core.subscriptions.sender import SendResult

logger = Logger()
metrics = Metrics()
# AWS calls only: X-Ray's httplib patch would put each send's URL (some carry a token) in the trace.
tracer = LazyTracer(patch_modules=["botocore"])
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class CampaignSettings(SendingSettings):
    runs_table: str = Field(alias="TABLE_CAMPAIGN_RUNS")
    campaigns_table: str = Field(alias="TABLE_CAMPAIGNS")
    contacts_table: str = Field(alias="TABLE_CONTACTS")
    conversations_table: str = Field(alias="TABLE_CONVERSATIONS")
    routing_table: str = Field(alias="TABLE_ROUTING")
    schedule_group: str = Field(alias="CAMPAIGN_SCHEDULE_GROUP")
    scheduler_role_arn: str = Field(alias="CAMPAIGN_SCHEDULER_ROLE_ARN")
    queue_arn: str = Field(alias="CAMPAIGN_QUEUE_ARN")
    signing_secrets_prefix: str = Field(alias="NOTIFICATION_SECRETS_PREFIX")
    public_base_url: str | None = Field(default=None, alias="PUBLIC_BASE_URL")
    max_receive_count: int = Field(ge=1, alias="QUEUE_MAX_RECEIVE_COUNT")
    endpoints: str = Field(default="", alias="SWITCHBOARD_ENDPOINTS")


@cache
def settings() -> CampaignSettings:
    return load_settings(CampaignSettings)


def channel_deps(config: CampaignSettings) -> Any:
    from switchboard_core.campaigns import channels  # type: ignore[attr-defined,unused-ignore]

    return channels.ChannelDeps(
        connections=sending.connections(config),
        credentials=sending.outbound_credentials(config),
        transport=http_transport,
        public_base_url=config.public_base_url,
    )


class MadeOnFirstUse:
    """A store made, and its module imported, when a message first calls it, so a cold start
    pays only for what its message uses. The routing configuration store brings the routing
    rules', taxonomy's and teams' models, which only connect_call needs; the campaign, contact
    and conversation stores bring the flow's, campaign's, contact's and conversation's models,
    which only a message that starts a run or concerns one needs (most bus events concern none)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._store: Any = None

    @property
    def store(self) -> Any:
        return self._made()

    def _made(self) -> Any:
        # A method, not the property: an AttributeError from the factory then reaches the caller
        # as it is, instead of sending Python to __getattr__("store").
        if self._store is None:
            self._store = self._make()
        return self._store

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("store", "_make", "_store"):
            # Not the store's (copy and pickle ask for these): never made on their account.
            raise AttributeError(name)
        return getattr(self._made(), name)


def campaign_store(table: Any) -> CampaignStore:
    from switchboard_core.campaigns.store import CampaignStore

    # Versions are immutable: each is read and parsed once per sandbox (the head every time).
    return CampaignStore(table, versions_cached=VERSIONS_CACHED)


def contact_store(table: Any) -> ContactStore:
    from switchboard_core.routing.contacts import ContactStore

    return ContactStore(table)


def conversation_store(table: Any) -> ConversationStore:
    from switchboard_core.routing.conversations import ConversationStore

    return ConversationStore(table)


def routing_config_store(table: Any) -> RoutingConfigStore:
    from switchboard_core.routing.config_store import RoutingConfigStore

    return RoutingConfigStore(table)


def post_webhook(endpoint: CheckedEndpoint, body: bytes, headers: dict[str, str], timeout: float) -> SendResult:
    """The webhook step's sender, imported by the first webhook step (no other step uses it)."""
    from switchboard_core.subscriptions.sender import post

    return post(endpoint, body, headers, timeout)


VERSIONS_CACHED = 256


@cache
def dependencies() -> RunnerDeps:
    config = settings()

    @cache
    def signing_keys() -> NotificationSigningKeys:
        # Only webhook steps sign: the secret store and Standard Webhooks come with the first one.
        from switchboard_core.notification_signing import NotificationSigningKeys

        # Read only: the notifications function creates a tenant's secret (its grant is read).
        return NotificationSigningKeys(
            aws.client("secretsmanager"), config.signing_secrets_prefix, create_missing=False
        )

    return RunnerDeps(
        runs=RunStore(sending.table(config.runs_table)),
        # The proxy answers every CampaignStore call by the store it makes on the first one.
        campaigns=cast("CampaignStore", MadeOnFirstUse(lambda: campaign_store(sending.table(config.campaigns_table)))),
        contacts=cast("ContactStore", MadeOnFirstUse(lambda: contact_store(sending.table(config.contacts_table)))),
        conversations=cast(
            "ConversationStore", MadeOnFirstUse(lambda: conversation_store(sending.table(config.conversations_table)))
        ),
        config=MadeOnFirstUse(lambda: routing_config_store(sending.table(config.routing_table))),
        executor=ChannelExecutor(channel_deps(config)),
        scheduler=CampaignScheduler(
            aws.client("scheduler"), config.schedule_group, config.queue_arn, config.scheduler_role_arn
        ),
        publish=sending.publisher(config).publish,
        webhook_keys=lambda tenant: signing_keys().keys(tenant),
        post=post_webhook,
        local_endpoints=config.endpoints == "loopback",
    )


def queue_url(arn: str) -> str:
    """The queue's URL from its ARN (arn:aws:sqs:<region>:<account>:<name>)."""
    _, partition, _, region, account, name = arn.split(":", 5)
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


def record_handler(record: SQSRecord) -> None:
    receive_count = int(record.attributes.approximate_receive_count)
    runner = Runner(dependencies(), datetime.now(UTC), last_attempt=receive_count >= settings().max_receive_count)
    try:
        handled = handle(record.body, runner)
    except MalformedWork as bad:
        metrics.add_metric(name="campaign_malformed", unit=MetricUnit.Count, value=1)
        logger.error("campaign message refused", extra={"problem": str(bad)[:500]})
        raise
    except (RetryLater, TransientFailure) as later:
        delay = retry_delay(later, receive_count)
        aws.client("sqs").change_message_visibility(
            QueueUrl=queue_url(record.event_source_arn), ReceiptHandle=record.receipt_handle, VisibilityTimeout=delay
        )
        metrics.add_metric(name="campaign_retried", unit=MetricUnit.Count, value=1)
        logger.warning("campaign message will be retried", extra={"reason": str(later)[:300], "delay_seconds": delay})
        raise
    except Exception:
        # Anything else (a DynamoDB error mid-change): the queue delivers it again after the visibility
        # timeout and the runner resumes from the outbox; counted, so a failing run is seen.
        metrics.add_metric(name="campaign_failed", unit=MetricUnit.Count, value=1)
        logger.exception("campaign message failed; the queue delivers it again")
        raise
    metrics.add_metric(name=f"campaign_{handled.outcome}", unit=MetricUnit.Count, value=1)
    logger.info(
        "campaign message handled",
        extra={"outcome": handled.outcome, "runs": list(handled.runs), "detail": handled.detail},
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
