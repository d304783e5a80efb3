"""What every admin route needs, made once per execution environment on first use:
settings, stores, the cursor codec, and the caller (from the authorizer's context)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from switchboard_core import aws, endpoints
from switchboard_core.errors import HubError
from switchboard_core.principals import Principal
from switchboard_core.settings import load_settings

if TYPE_CHECKING:
    from functions.admin import answers, campaign_runs, campaigns, event_detail, logic, subscriptions
    from switchboard_core.connection_stats import ConnectionStatsStore
    from switchboard_core.cursors import CursorCodec
    from switchboard_core.routing.config_store import RoutingConfigStore
    from switchboard_core.routing.contacts import ContactStore
    from switchboard_core.routing.conversations import ConversationStore

# Each area's logic and stores are imported by the factory that makes them, so a cold request
# pays for its own area only (functions/admin/handler.py loads the areas' routes the same way).

CURSOR_KEY_MAX_AGE_SECONDS = 300  # a rotated cursor key is in use everywhere within 5 minutes


class AdminSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    connections_table: str = Field(alias="TABLE_CONNECTIONS")
    event_log_table: str = Field(alias="TABLE_EVENT_LOG")
    routing_table: str = Field(alias="TABLE_ROUTING")
    contacts_table: str = Field(alias="TABLE_CONTACTS")
    conversations_table: str = Field(alias="TABLE_CONVERSATIONS")
    secrets_prefix: str = Field(alias="SECRETS_PREFIX")
    outbound_secrets_prefix: str = Field(alias="OUTBOUND_SECRETS_PREFIX")
    cursor_key_secret: str = Field(alias="SECRET_CURSOR_KEY")
    public_base_url: str | None = Field(default=None, alias="PUBLIC_BASE_URL")
    messages_table: str = Field(alias="TABLE_MESSAGES")
    event_bus: str = Field(alias="EVENT_BUS_NAME")
    campaigns_table: str = Field(alias="TABLE_CAMPAIGNS")


@cache
def settings() -> AdminSettings:
    return load_settings(AdminSettings)


def local_endpoints() -> bool:
    """The local runtime (SWITCHBOARD_ENDPOINTS=loopback): endpoints on this machine only."""
    return os.environ.get("SWITCHBOARD_ENDPOINTS") == "loopback"


@cache
def routing_store() -> RoutingConfigStore:
    from switchboard_core.routing.config_store import RoutingConfigStore

    return RoutingConfigStore(aws.resource("dynamodb").Table(settings().routing_table))


@cache
def contact_store() -> ContactStore:
    from switchboard_core.routing.contacts import ContactStore

    return ContactStore(aws.resource("dynamodb").Table(settings().contacts_table))


@cache
def conversation_store() -> ConversationStore:
    from switchboard_core.routing.conversations import ConversationStore

    return ConversationStore(aws.resource("dynamodb").Table(settings().conversations_table))


@cache
def dependencies() -> logic.AdminDeps:
    from functions.admin import logic
    from switchboard_core.connections import ConnectionStore, CredentialStore
    from switchboard_core.event_log import EventLogStore

    config = settings()
    dynamodb = aws.resource("dynamodb")
    return logic.AdminDeps(
        connections=ConnectionStore(dynamodb.Table(config.connections_table)),
        credentials=CredentialStore(aws.client("secretsmanager"), config.secrets_prefix),
        event_log=EventLogStore(dynamodb.Table(config.event_log_table), ttl=timedelta(days=30)),
        outbound_credentials=CredentialStore(aws.client("secretsmanager"), config.outbound_secrets_prefix),
    )


class DetailSettings(BaseModel):
    """What GET /admin/events/{id} reads besides the common tables."""

    model_config = ConfigDict(extra="ignore")

    raw_bucket: str = Field(alias="BUCKET_RAW")
    replies_table: str = Field(alias="TABLE_REPLIES")
    subscriptions_table: str = Field(alias="TABLE_SUBSCRIPTIONS")
    runs_table: str = Field(alias="TABLE_CAMPAIGN_RUNS")


@cache
def detail_settings() -> DetailSettings:
    return load_settings(DetailSettings)


@cache
def detail_deps() -> event_detail.DetailDeps:
    from functions.admin import event_detail
    from switchboard_core.event_log import EventLogStore
    from switchboard_core.raw_store import RawStore

    config, details = settings(), detail_settings()
    dynamodb = aws.resource("dynamodb")
    return event_detail.DetailDeps(
        event_log=EventLogStore(dynamodb.Table(config.event_log_table), ttl=timedelta(days=30)),
        raw=RawStore(aws.client("s3"), details.raw_bucket),
        raw_bucket=details.raw_bucket,
        conversations=dynamodb.Table(config.conversations_table),
        contacts=dynamodb.Table(config.contacts_table),
        replies=dynamodb.Table(details.replies_table),
        subscriptions=dynamodb.Table(details.subscriptions_table),
        campaign_runs=dynamodb.Table(details.runs_table),
        campaigns=campaign_deps(),
    )


@cache
def connection_stats_store() -> ConnectionStatsStore:
    from switchboard_core.connection_stats import store_from_environment

    return store_from_environment()


@cache
def answer_deps() -> answers.AnswerDeps:
    from functions.admin import answers
    from switchboard_core.answers.store import MessageStore
    from switchboard_core.bus import EventPublisher
    from switchboard_core.connections import ConnectionStore
    from switchboard_core.event_log import EventLogStore

    config = settings()
    dynamodb = aws.resource("dynamodb")
    return answers.AnswerDeps(
        messages=MessageStore(dynamodb.Table(config.messages_table)),
        conversations=conversation_store(),
        contacts=contact_store(),
        event_log=EventLogStore(dynamodb.Table(config.event_log_table), ttl=timedelta(days=30)),
        connections=ConnectionStore(dynamodb.Table(config.connections_table)),
        publish=EventPublisher(aws.client("events"), config.event_bus).publish,
    )


@cache
def campaign_deps() -> campaigns.CampaignDeps:
    from functions.admin import campaigns
    from switchboard_core.campaigns.store import CampaignStore

    return campaigns.CampaignDeps(
        store=CampaignStore(aws.resource("dynamodb").Table(settings().campaigns_table)),
        routing=routing_store(),
        local=local_endpoints(),
        # Looked up at each call, so tests can stand in a resolver for the system's.
        resolve=lambda host, port: endpoints.resolve_host(host, port),
    )


class CampaignRunSettings(BaseModel):
    """What starting, listing and stopping runs and keeping trigger rules need (only those routes
    and publish read it)."""

    model_config = ConfigDict(extra="ignore")

    bus_name: str = Field(alias="EVENT_BUS_NAME")
    rule_prefix: str = Field(alias="CAMPAIGN_RULE_PREFIX")
    queue_url: str = Field(alias="CAMPAIGN_QUEUE_URL")
    queue_arn: str = Field(alias="CAMPAIGN_QUEUE_ARN")
    dead_letter_queue_arn: str = Field(alias="CAMPAIGN_DLQ_ARN")
    contacts_table: str = Field(alias="TABLE_CONTACTS")
    runs_table: str = Field(alias="TABLE_CAMPAIGN_RUNS")


@cache
def run_deps() -> campaign_runs.RunDeps:
    from functions.admin import campaign_runs
    from switchboard_core.campaigns.run_store import RunStore

    config = load_settings(CampaignRunSettings)
    return campaign_runs.RunDeps(
        events=aws.client("events"),
        sqs=aws.client("sqs"),
        runs=RunStore(aws.resource("dynamodb").Table(config.runs_table)),
        find_contacts=campaign_runs.contacts_finder(
            aws.resource("dynamodb"), config.contacts_table, contact_store().get
        ),
        settings=campaign_runs.RunSettings(
            bus_name=config.bus_name,
            rule_prefix=config.rule_prefix,
            queue_url=config.queue_url,
            queue_arn=config.queue_arn,
            dead_letter_queue_arn=config.dead_letter_queue_arn,
        ),
    )


class SubscriptionSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    subscriptions_table: str = Field(alias="TABLE_SUBSCRIPTIONS")
    event_log_table: str = Field(alias="TABLE_EVENT_LOG")
    secrets_prefix: str = Field(alias="SUBSCRIPTION_SECRETS_PREFIX")
    bus_name: str = Field(alias="EVENT_BUS_NAME")
    rule_prefix: str = Field(alias="SUBSCRIPTION_RULE_PREFIX")
    queue_url: str = Field(alias="DELIVERY_QUEUE_URL")
    queue_arn: str = Field(alias="DELIVERY_QUEUE_ARN")
    dead_letter_queue_arn: str = Field(alias="DELIVERY_DLQ_ARN")
    archive_arn: str | None = Field(default=None, alias="EVENT_ARCHIVE_ARN")
    # Only the local runtime sets it ("loopback"): partner endpoints on this machine only.
    endpoints: str | None = Field(default=None, alias="SWITCHBOARD_ENDPOINTS")


@cache
def subscription_deps() -> subscriptions.SubscriptionDeps:
    from functions.admin import subscriptions
    from switchboard_core.event_log import EventLogStore
    from switchboard_core.subscriptions.deliveries import DeliveryLog
    from switchboard_core.subscriptions.policy import load_policy
    from switchboard_core.subscriptions.secrets import SigningSecretStore
    from switchboard_core.subscriptions.store import SubscriptionStore

    config = load_settings(SubscriptionSettings)
    dynamodb = aws.resource("dynamodb")
    table = dynamodb.Table(config.subscriptions_table)
    return subscriptions.SubscriptionDeps(
        store=SubscriptionStore(table),
        deliveries=DeliveryLog(table),
        secrets=SigningSecretStore(aws.client("secretsmanager"), config.secrets_prefix),
        event_log=EventLogStore(dynamodb.Table(config.event_log_table), ttl=timedelta(days=30)),
        events=aws.client("events"),
        sqs=aws.client("sqs"),
        settings=subscriptions.RuleSettings(
            bus_name=config.bus_name,
            rule_prefix=config.rule_prefix,
            queue_url=config.queue_url,
            queue_arn=config.queue_arn,
            dead_letter_queue_arn=config.dead_letter_queue_arn,
            archive_arn=config.archive_arn or None,
        ),
        policy=load_policy(),
        local=config.endpoints == "loopback",
        # Looked up at each call, so tests can stand in a resolver for the system's.
        resolve=lambda host, port: endpoints.resolve_host(host, port),
    )


@cache
def _secrets() -> Any:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=aws.client("secretsmanager"))


def cursors() -> CursorCodec:
    """The codec under the current cursor key (Powertools caches the secret for 5 minutes)."""
    secret = _secrets().get(settings().cursor_key_secret, max_age=CURSOR_KEY_MAX_AGE_SECONDS)
    return _codec(secret)


@lru_cache(maxsize=2)  # one codec per secret value: a rotated value gets a new codec, not a stale one
def _codec(secret: str) -> CursorCodec:
    from switchboard_core.cursors import CursorCodec

    return CursorCodec(secret)


def cold_start() -> None:
    """Forget every client and store made so far, as a new execution environment would: the
    handler calls this when it is imported, and the local runtime re-imports the handler for
    each runtime it starts (another emulator, other tables), while this module stays loaded."""
    for cached in (
        settings,
        routing_store,
        contact_store,
        conversation_store,
        dependencies,
        answer_deps,
        subscription_deps,
        campaign_deps,
        run_deps,
        detail_settings,
        detail_deps,
        connection_stats_store,
        _secrets,
        _codec,
    ):
        cached.cache_clear()


def principal(event: Any) -> Principal:
    """The caller, as the Lambda authorizer described it."""
    context = event.request_context.authorizer.get_lambda or {}
    try:
        return Principal.model_validate(context)
    except ValidationError:
        raise HubError("request was not authorized", status=401, code="unauthorized") from None


def base_url(event: Any) -> str:
    from switchboard_core.http import public_base_url  # with the providers' adapters: connections' routes only

    return public_base_url(event.raw_event, settings().public_base_url)


def now() -> datetime:
    return datetime.now(UTC)
