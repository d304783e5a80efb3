"""Switchboard's topology, declared once.

The CDK app (infra/aws) and the local runtime (infra/local) both build from these
declarations: the functions and their handlers, the HTTP routes, the tables, the
raw bucket, the event bus and the consumer queues with their rules. Adding a
consumer here gives it a rule, a queue, a dead-letter queue and an event source
mapping in both places.

Functions find their resources through environment variables whose names are
derived here (`env_var`), so a handler never knows which backend it runs on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

Access = Literal["read", "write", "readwrite"]


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str | None = None
    indexes: tuple[Index, ...] = ()
    purpose: str = ""


@dataclass(frozen=True)
class Bucket:
    name: str
    expire_after_days: int
    purpose: str = ""


@dataclass(frozen=True)
class Secret:
    """A secret the stack creates with a generated value (not a connection's credentials)."""

    name: str
    purpose: str
    # Why no rotation Lambda is attached (cdk-nag AwsSolutions-SMG4): said per secret, so a new
    # secret cannot inherit another's reason.
    without_rotation_because: str


@dataclass(frozen=True)
class Consumer:
    """A function fed from the bus: rule (pattern) -> SQS queue (+ DLQ) -> function.

    With `event_pattern` None the queue has no rule of its own: rules created at run time
    (partner subscriptions, under SUBSCRIPTION_RULE_PREFIX) target it instead."""

    queue: str
    event_pattern: dict | None
    batch_size: int = 10
    max_receive_count: int = 5
    visibility_timeout_seconds: int = 60


@dataclass(frozen=True)
class Function:
    name: str
    handler: str  # dotted path from the repository root, e.g. functions.ingest.handler.handler
    description: str
    memory_mb: int = 256
    timeout_seconds: int = 10
    tables: dict[str, Access] = field(default_factory=dict)
    buckets: dict[str, Access] = field(default_factory=dict)
    publishes: bool = False
    secrets: Access | None = None  # connection credentials in Secrets Manager
    # Connections' outbound (send API) credentials, under their own prefix so that ingest,
    # which verifies webhooks, can never read a token that sends messages.
    outbound_secrets: Access | None = None
    consumer: Consumer | None = None
    # The slim deps layer (layers/deps/requirements.txt): for functions that import provider
    # adapters or routing's sensing libraries; the others start faster without it.
    deps_layer: bool = False
    # Stack-created secrets (SECRETS) it reads; read access to exactly those, their names in SECRET_<NAME>.
    reads_secrets: tuple[str, ...] = ()
    # Run on a schedule (EventBridge Scheduler expression, e.g. "rate(1 minute)"): EventBridge
    # Scheduler on AWS, the local runtime's scheduler on one machine.
    schedule: str | None = None
    # Partner subscriptions' signing secrets in Secrets Manager (their own prefix).
    subscription_secrets: Access | None = None
    # Creates and removes the subscriptions' bus rules (names under SUBSCRIPTION_RULE_PREFIX,
    # targeting the delivery queue), checks patterns (TestEventPattern) and starts replays.
    manages_subscription_rules: bool = False
    # Sends notifications (SES e-mail from the stage's identity, signed webhooks with the
    # tenants' notification secrets under their own prefix); gets NOTIFICATION_* variables.
    sends_notifications: bool = False
    # Sends to the delivery queue (manual retries and local replays) and changes the
    # visibility of its messages (the retry schedule).
    uses_delivery_queue: bool = False
    # Gives a provider the hub's own URLs to call back (Twilio's <Dial action>): PUBLIC_BASE_URL.
    public_url: bool = False
    # The tenants' notification-webhook signing secrets without sending notifications itself
    # (campaigns' webhook steps are signed with them): NOTIFICATION_SECRETS_PREFIX.
    notification_secrets: Access | None = None
    # Sends work to the campaigns queue (start and stop requests, timers' target):
    # CAMPAIGN_QUEUE_URL and CAMPAIGN_QUEUE_ARN.
    uses_campaign_queue: bool = False
    # Creates and deletes the campaign runs' one-time EventBridge Scheduler schedules (waits), in the
    # stage's campaign group only, passing the scheduler role that may only send to the campaigns queue.
    schedules_campaign_timers: bool = False
    # Puts and removes published campaigns' trigger rules (names under CAMPAIGN_RULE_PREFIX, targeting
    # the campaigns queue, dead letters to its DLQ).
    manages_campaign_rules: bool = False

    @property
    def directory(self) -> str:
        return "/".join(self.handler.split(".")[:2])  # functions/<name>


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    authorized: bool = False
    # An unauthorized route says why it needs no authorizer (cdk-nag AwsSolutions-APIG4).
    public_because: str = ""


SERVICE = "switchboard"
METRICS_NAMESPACE = "Switchboard"

# Providers retry for up to 7 days (WhatsApp), so delivery ids are kept for 8.
DEDUPE_TTL_SECONDS = 8 * 24 * 3600
EVENT_LOG_TTL_SECONDS = 30 * 24 * 3600
MAX_BODY_BYTES = 1024 * 1024  # HTTP API's own payload cap is 10 MB; providers send far less.

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table("connections", partition_key="id", purpose="Webhook connections: provider, tenant, secret name."),
        Table("api_keys", partition_key="key_hash", purpose="Admin API keys, stored as SHA-256 hashes."),
        Table(
            "connection_stats",
            partition_key="connection",
            sort_key="day",
            ttl_attribute="expires_at",
            purpose="Per connection and UTC day: accepted events, duplicate deliveries and refusals by reason "
            "(kept 90 days), and its last receive time.",
        ),
        Table(
            "idempotency",
            partition_key="id",
            ttl_attribute="expiration",
            purpose="Powertools Idempotency records keyed by the provider's delivery id.",
        ),
        Table(
            "event_log",
            partition_key="id",
            ttl_attribute="expires_at",
            # One index per filter GET /admin/events offers (switchboard_core.event_log.SELECTORS),
            # so a filtered listing reads only what it returns: the tenant or the connection, alone
            # or joined ("<tenant>#<type>") with the provider and/or the type.
            indexes=tuple(
                Index(f"by_{key}", key, "sort_key")
                for key in (
                    "tenant",
                    "tenant_provider",
                    "tenant_type",
                    "tenant_provider_type",
                    "connection",
                    "connection_provider",
                    "connection_type",
                    "connection_provider_type",
                )
            ),
            purpose="Recent canonical events, for GET /admin/events.",
        ),
        Table(
            "contacts",
            partition_key="pk",
            indexes=(Index("by_contact", "contact_id", "at"),),
            purpose="Routing: contacts, identity claims, merges and each contact's timeline.",
        ),
        Table(
            "conversations",
            partition_key="pk",
            indexes=(
                Index("by_tenant", "tenant", "last_activity_at"),
                # The conversation list filtered by status or by assignee reads only what it returns.
                Index("by_tenant_status", "tenant_status", "last_activity_at"),
                Index("by_tenant_assignee", "tenant_assignee", "last_activity_at"),
                Index("by_tenant_assignee_status", "tenant_assignee_status", "last_activity_at"),
                # Topic memberships (an item per conversation and topic): the list by topic.
                Index("by_tenant_topic", "tenant_topic", "last_activity_at"),
                Index("by_sla", "sla_open", "sla_due_at"),
            ),
            purpose="Routing: conversations and their thread pointers.",
        ),
        Table(
            "routing",
            partition_key="pk",
            sort_key="sk",
            purpose="Routing configuration per tenant: rule set, taxonomy, responders.",
        ),
        Table(
            "subscriptions",
            partition_key="pk",
            sort_key="sk",
            ttl_attribute="expires_at",
            indexes=(Index("by_tenant", "tenant", "created_at"),),
            purpose="Partner subscriptions, each event's delivery state and attempts, endpoint health.",
        ),
        Table(
            "notifications",
            partition_key="pk",
            ttl_attribute="expires_at",
            # Sparse: only digests waiting to be sent carry `pending`.
            indexes=(Index("by_due", "pending", "due_at"),),
            purpose="Notifications: each send's once-only claim, per-recipient rate windows and pending digests.",
        ),
        Table(
            "replies",
            partition_key="pk",
            ttl_attribute="expires_at",
            purpose="Auto-replies: each request's outcome, and the one-per-conversation claims.",
        ),
        Table(
            "messages",
            partition_key="pk",
            indexes=(
                Index("by_conversation", "conversation", "sort_key"),
                # Sparse: answers recorded `sent` whose pointer could not be written (yet).
                Index("by_unpointed", "unpointed"),
            ),
            purpose="Staff answers: each message, its delivery state and history, and the provider ids "
            "that thread status webhooks onto it.",
        ),
        Table(
            "calls",
            partition_key="pk",
            ttl_attribute="expires_at",
            purpose="Live call patching: each call put through, the responders tried and the outcome.",
        ),
        Table(
            "campaigns",
            partition_key="pk",
            sort_key="sk",
            indexes=(Index("by_tenant", "tenant", "created_at"),),
            purpose="Campaigns: each one's head (owner, shares, latest and live version) and its immutable versions.",
        ),
        Table(
            "campaign_runs",
            partition_key="pk",
            sort_key="sk",
            ttl_attribute="expires_at",
            indexes=(Index("by_campaign", "campaign", "started_at"), Index("by_contact", "contact_key", "started_at")),
            purpose="Campaign runs: each run's state and outbox, its sends' once-only claims, provider message "
            "pointers, per-step counts and each contact's recent sends (frequency caps).",
        ),
    )
}

BUCKETS: dict[str, Bucket] = {
    "raw": Bucket("raw", expire_after_days=90, purpose="Raw webhook requests (headers and body) for replay."),
}

SECRETS: dict[str, Secret] = {
    "cursor_key": Secret(
        "cursor_key",
        purpose="Seals the admin API's pagination cursors (generated at creation).",
        without_rotation_because="It only seals pagination cursors, which expire within a day; putting a new "
        "value makes outstanding cursors answer 400 (clients start from the first page), so no rotation "
        "Lambda is warranted.",
    ),
}

# --- partner subscriptions ---
DELIVERY_QUEUE = "deliveries"
# Each subscription's bus rule is named <stage prefix>-sub-<subscription id>; the admin
# function's permissions reach only rules with this prefix.
SUBSCRIPTION_RULE_INFIX = "sub-"
# Delays before each delivery attempt, in seconds: immediately, 5 s, 5 min, 30 min, 2 h,
# 5 h, 10 h, 10 h (about 28 hours in all), each with up to 20% jitter, or the endpoint's
# Retry-After when longer (capped at SQS's 12 h visibility limit).
DELIVERY_RETRY_SCHEDULE_SECONDS: tuple[int, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
DELIVERY_RETRY_JITTER = 0.2
DELIVERY_TIMEOUT_SECONDS = 15
# An endpoint failing this long gets subscription.failing; this long, subscription.disabled.
SUBSCRIPTION_FAILING_AFTER_SECONDS = 24 * 3600
SUBSCRIPTION_DISABLED_AFTER_SECONDS = 5 * 24 * 3600
# The per-endpoint circuit breaker: after this many failures in a row it opens, and sends
# wait (without spending an attempt) for a cool-down that doubles up to the maximum.
BREAKER_FAILURE_THRESHOLD = 5
BREAKER_COOLDOWN_SECONDS = 30
BREAKER_MAX_COOLDOWN_SECONDS = 3600
# After rotation, the old secret keeps signing alongside the new one for this long.
SECRET_ROTATION_GRACE_SECONDS = 24 * 3600
DELIVERY_ATTEMPTS_TTL_SECONDS = 30 * 24 * 3600


def delivery_policy() -> dict[str, object]:
    """The numbers above as the DELIVERY_POLICY variable the admin and delivery functions read
    (switchboard_core.subscriptions.policy.DeliveryPolicy); the local runtime may pass a faster one."""
    return {
        "retry_schedule_seconds": list(DELIVERY_RETRY_SCHEDULE_SECONDS),
        "retry_jitter": DELIVERY_RETRY_JITTER,
        "timeout_seconds": DELIVERY_TIMEOUT_SECONDS,
        "failing_after_seconds": SUBSCRIPTION_FAILING_AFTER_SECONDS,
        "disabled_after_seconds": SUBSCRIPTION_DISABLED_AFTER_SECONDS,
        "breaker_failure_threshold": BREAKER_FAILURE_THRESHOLD,
        "breaker_cooldown_seconds": BREAKER_COOLDOWN_SECONDS,
        "breaker_max_cooldown_seconds": BREAKER_MAX_COOLDOWN_SECONDS,
        "rotation_grace_seconds": SECRET_ROTATION_GRACE_SECONDS,
        "attempts_ttl_seconds": DELIVERY_ATTEMPTS_TTL_SECONDS,
    }


# --- notifications ---
# Per recipient: at most this many notifications per window; the rest become one digest,
# sent by the function's scheduled run once the window has ended.
NOTIFICATION_RATE_LIMIT = 3
NOTIFICATION_WINDOW_SECONDS = 300
NOTIFICATION_DIGEST_ATTEMPTS = 5
NOTIFICATION_TRIGGERS = ("routing.assigned", "routing.unassigned", "routing.escalated")


def notification_policy() -> dict[str, int]:
    """The NOTIFICATION_POLICY variable (functions/notifications/logic.py NotificationPolicy)."""
    return {
        "rate_limit": NOTIFICATION_RATE_LIMIT,
        "window_seconds": NOTIFICATION_WINDOW_SECONDS,
        "digest_attempts": NOTIFICATION_DIGEST_ATTEMPTS,
    }


# --- campaigns ---
CAMPAIGNS_SOURCE = "switchboard.campaigns"  # the campaign function's events (provider `campaigns`)
CAMPAIGN_QUEUE = "campaigns"
# Each published campaign's trigger rule is named <stage prefix>-cmp-<campaign id>, next to the
# subscriptions' sub- rules; the admin function's permissions reach only rules with this prefix.
CAMPAIGN_RULE_INFIX = "cmp-"
# The providers' reports a run waits on: a message's delivery status, and a call's outcome.
CAMPAIGN_REPORT_TYPES = (
    "message.status_updated",
    "call.in_progress",
    "call.completed",
    "call.no_answer",
    "call.busy",
    "call.failed",
    "call.canceled",
)

EVENT_BUS = "events"
EVENT_SOURCE_PREFIX = "switchboard."
ROUTING_SOURCE = "switchboard.routing"
REPLY_REQUESTED = "reply.requested"
ANSWERS_SOURCE = "switchboard.answers"
# The providers' events that may report on something the hub sent: status webhooks, and the
# platforms' echoes of a published reply (a message echo, the business's own tweet, a ticket comment).
ANSWER_REPORT_TYPES = (
    "message.sent",
    "message.status_updated",
    "content.published",
    "ticket.comment_added",
    "comment.created",
    "provider.notification",
)

FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function(
            "ingest",
            handler="functions.ingest.handler.handler",
            description="Verifies, stores, deduplicates, normalises and publishes provider webhooks.",
            memory_mb=512,
            timeout_seconds=15,
            # connection_stats: duplicates and refusals only (accepted events are counted by event_log).
            tables={"connections": "read", "idempotency": "readwrite", "connection_stats": "write"},
            buckets={"raw": "write"},
            publishes=True,
            secrets="read",
            deps_layer=True,
        ),
        Function(
            "admin",
            handler="functions.admin.handler.handler",
            description="Admin API: providers, connections, events, routing rules, taxonomy, responders.",
            timeout_seconds=15,
            tables={
                "connections": "readwrite",
                "event_log": "read",
                "routing": "readwrite",
                "contacts": "read",
                "conversations": "read",
                "subscriptions": "readwrite",
                "messages": "readwrite",
                "campaigns": "readwrite",
                "campaign_runs": "read",
                # GET /admin/events/{id}: what consumed it (by key) and its stats; raw: the request itself.
                "replies": "read",
                "connection_stats": "read",
            },
            buckets={"raw": "read"},
            # Staff answers: message.sent / message.retry_requested, which the answers function sends.
            publishes=True,
            secrets="readwrite",
            outbound_secrets="readwrite",
            reads_secrets=("cursor_key",),
            deps_layer=True,
            subscription_secrets="readwrite",
            manages_subscription_rules=True,
            uses_delivery_queue=True,
            # Campaigns: runs requested and stopped (messages to the campaigns queue), published triggers' rules.
            uses_campaign_queue=True,
            manages_campaign_rules=True,
        ),
        Function(
            "console",
            handler="functions.console.handler.handler",
            description="The web console's static pages (they call the admin API from the browser).",
            memory_mb=128,
            timeout_seconds=5,
        ),
        Function(
            "authorizer",
            handler="functions.authorizer.handler.handler",
            description="Lambda authorizer for /admin: Bearer API keys checked against their hashes.",
            memory_mb=128,
            timeout_seconds=5,
            tables={"api_keys": "read"},
        ),
        Function(
            "event_log",
            handler="functions.event_log.handler.handler",
            description="Writes every canonical event from the bus into the event log.",
            tables={"event_log": "write", "connection_stats": "write"},
            consumer=Consumer(queue="event-log", event_pattern={"source": [{"prefix": EVENT_SOURCE_PREFIX}]}),
        ),
        Function(
            "routing",
            handler="functions.routing.handler.handler",
            description="Threads, senses and routes customer contacts; emits conversation.* and routing.* events.",
            memory_mb=512,
            timeout_seconds=30,
            tables={"contacts": "readwrite", "conversations": "readwrite", "routing": "readwrite"},
            publishes=True,
            deps_layer=True,
            # Everything on the bus except routing's own events, which would loop back.
            consumer=Consumer(
                queue="routing",
                event_pattern={"source": [{"anything-but": [ROUTING_SOURCE]}]},
                visibility_timeout_seconds=180,
            ),
        ),
        Function(
            "escalation",
            handler="functions.escalation.handler.handler",
            description="Emits routing.escalated for conversations whose SLA passed without an answer.",
            timeout_seconds=60,
            tables={"conversations": "readwrite"},
            publishes=True,
            schedule="rate(1 minute)",
        ),
        Function(
            "replies",
            handler="functions.replies.handler.handler",
            description="Sends the auto-replies routing rules ask for, through the provider's API; emits reply.*.",
            # One request per invocation: a send may wait 10 s for a provider, so a batch could
            # outlast the timeout and leave later requests untried.
            timeout_seconds=20,
            tables={"replies": "readwrite", "contacts": "read", "connections": "read"},
            publishes=True,
            outbound_secrets="read",
            deps_layer=True,  # a provider's sender may need its libraries (Vonage signs with PyJWT + cryptography)
            consumer=Consumer(
                queue="replies",
                event_pattern={"source": [ROUTING_SOURCE], "detail-type": [REPLY_REQUESTED]},
                batch_size=1,
                visibility_timeout_seconds=120,
            ),
        ),
        Function(
            "answers",
            handler="functions.answers.handler.handler",
            description="Sends staff answers on the customer's own channel and threads the providers' delivery "
            "reports onto them; emits message.status_updated.",
            # One record per invocation: a send may wait 10 s for a provider.
            timeout_seconds=20,
            tables={"messages": "readwrite", "contacts": "read", "connections": "read"},
            publishes=True,
            outbound_secrets="read",
            deps_layer=True,  # a provider's sender may need its libraries (Vonage signs with PyJWT + cryptography)
            public_url=True,  # per-message status callbacks (Twilio StatusCallback...) point at ingest
            consumer=Consumer(
                queue="answers",
                # The admin API's answers to send, and the providers' reports; never its own status events.
                event_pattern={
                    "$or": [
                        {"source": [ANSWERS_SOURCE], "detail-type": ["message.sent", "message.retry_requested"]},
                        {
                            "source": [{"anything-but": [ROUTING_SOURCE, ANSWERS_SOURCE]}],
                            "detail-type": list(ANSWER_REPORT_TYPES),
                        },
                    ]
                },
                batch_size=1,
                max_receive_count=8,
                visibility_timeout_seconds=120,
            ),
        ),
        Function(
            "hubspot_threads",
            handler="functions.hubspot_threads.handler.handler",
            description="Fetches the HubSpot inbox messages conversation.newMessage webhooks name (with the "
            "connection's outbound token); emits message.received / message.sent.",
            # One record per invocation: a fetch may wait 10 s for HubSpot.
            timeout_seconds=20,
            tables={"connections": "read"},
            publishes=True,
            outbound_secrets="read",
            deps_layer=True,  # switchboard_core.phones (phonenumbers) for a sender's number
            consumer=Consumer(
                queue="hubspot-threads",
                # Ingest's HubSpot thread webhooks only; this function's own message.* never match.
                event_pattern={
                    "source": [f"{EVENT_SOURCE_PREFIX}hubspot"],
                    "detail-type": ["crm.object_changed"],
                    "detail": {"attributes": {"subscriptionType": ["conversation.newMessage"]}},
                },
                batch_size=1,
                visibility_timeout_seconds=120,
            ),
        ),
        Function(
            "calls",
            handler="functions.calls.handler.handler",
            description="Puts live calls through to the assigned responder, then the next nearest; emits call.*.",
            # One record per invocation: a call update may wait 10 s for Twilio.
            timeout_seconds=20,
            tables={"calls": "readwrite", "routing": "read", "connections": "read"},
            publishes=True,
            outbound_secrets="read",
            deps_layer=True,  # a provider's sender may need its libraries (Vonage signs with PyJWT + cryptography)
            public_url=True,
            consumer=Consumer(
                queue="calls",
                event_pattern={
                    "source": [
                        ROUTING_SOURCE,
                        f"{EVENT_SOURCE_PREFIX}twilio",
                        f"{EVENT_SOURCE_PREFIX}telnyx",
                        f"{EVENT_SOURCE_PREFIX}vonage",
                    ],
                    # Telnyx: the caller's leg to answer and hold, and the transfer's leg answered or hung up;
                    # Vonage: the connect leg answered or not, and the caller's call ending
                    "detail-type": [
                        "routing.assigned",
                        "call.dial_ended",
                        "call.initiated",
                        "call.in_progress",
                        "call.completed",
                        "call.canceled",
                        "call.no_answer",
                        "call.busy",
                        "call.failed",
                    ],
                },
                batch_size=1,
                # A caller is on hold: a few quick retries, then the DLQ (and its alarm).
                max_receive_count=3,
                visibility_timeout_seconds=120,
            ),
        ),
        Function(
            "delivery",
            handler="functions.delivery.handler.handler",
            description="Delivers events to partner subscriptions' endpoints: signed, retried, logged.",
            # One message per invocation: a send may wait DELIVERY_TIMEOUT_SECONDS for an endpoint.
            timeout_seconds=30,
            tables={"subscriptions": "readwrite"},
            publishes=True,
            subscription_secrets="read",
            uses_delivery_queue=True,
            consumer=Consumer(
                queue=DELIVERY_QUEUE,
                event_pattern=None,  # fed by the subscriptions' own rules
                batch_size=1,
                # The function counts attempts itself and drops nothing; the DLQ is for
                # messages that keep crashing it (breaker waits and ordered holds also receive).
                max_receive_count=50,
                visibility_timeout_seconds=180,
            ),
        ),
        Function(
            "notifications",
            handler="functions.notifications.handler.handler",
            description="Tells responders and teams' on-call contacts about routing events (SMS, Slack, e-mail, "
            "webhook); rate-limited with digests; emits notification.*.",
            timeout_seconds=60,
            tables={"notifications": "readwrite", "routing": "read", "connections": "read"},
            publishes=True,
            outbound_secrets="read",
            deps_layer=True,  # jinja2, and phonenumbers for contact points
            sends_notifications=True,
            # The digests whose rate window ended are sent by this run.
            schedule="rate(1 minute)",
            consumer=Consumer(
                queue="notifications",
                # Routing's decisions, and campaigns' notify steps (functions/notifications/logic.py TRIGGERS).
                event_pattern={
                    "$or": [
                        {"source": [ROUTING_SOURCE], "detail-type": list(NOTIFICATION_TRIGGERS)},
                        {"source": ["switchboard.campaigns"], "detail-type": ["campaign.notification_requested"]},
                    ]
                },
                batch_size=1,
                visibility_timeout_seconds=360,
            ),
        ),
        Function(
            "campaigns",
            handler="functions.campaigns.handler.handler",
            description="Runs published campaigns for each contact: messages, calls, waits, branches on replies; "
            "emits campaign.*.",
            # One record per invocation: a step may wait 10 s for a provider's send or call API.
            timeout_seconds=30,
            tables={
                "campaign_runs": "readwrite",
                "campaigns": "read",
                "contacts": "readwrite",
                "conversations": "read",
                "routing": "read",
                "connections": "read",
            },
            publishes=True,
            outbound_secrets="read",
            deps_layer=True,  # the channel senders (Vonage signs with PyJWT + cryptography), phonenumbers
            public_url=True,  # status callbacks of its sends and calls point at ingest
            notification_secrets="read",  # webhook steps are signed with the tenant's notification secret
            uses_campaign_queue=True,
            schedules_campaign_timers=True,
            consumer=Consumer(
                queue=CAMPAIGN_QUEUE,
                # Replies and opt-outs (routing's conversation events), and the providers' reports on what a
                # run sent or called; never routing's, answers' or its own reports. Trigger rules, the admin
                # function and the scheduler's timers put their messages (campaigns/work.py) on the queue directly.
                event_pattern={
                    "$or": [
                        {"source": [ROUTING_SOURCE], "detail-type": ["conversation.opened", "conversation.updated"]},
                        {
                            "source": [{"anything-but": [ROUTING_SOURCE, ANSWERS_SOURCE, CAMPAIGNS_SOURCE]}],
                            "detail-type": list(CAMPAIGN_REPORT_TYPES),
                        },
                    ]
                },
                batch_size=1,
                max_receive_count=8,
                visibility_timeout_seconds=120,
            ),
        ),
    )
}

ROUTES: tuple[Route, ...] = (
    # ANY, so the ingest function itself answers 405 (with Allow) for other methods.
    Route(
        "ANY",
        "/webhooks/{provider}/{connection}",
        "ingest",
        public_because="it is called by third-party webhook providers that cannot hold our credentials; the "
        "ingest function authenticates every request by the provider's signature (HMAC over the raw body, "
        "constant-time compare, replay window) and answers 401 otherwise.",
    ),
    Route("ANY", "/admin/{proxy+}", "admin", authorized=True),
    # The console's static pages: they hold no data; the browser signs in with an API key and
    # every page calls /admin with it, through the authorizer.
    *(
        Route(
            "GET",
            path,
            "console",
            public_because="it serves the console's static pages, which hold no data or secret; every "
            "page reads and changes the hub only through /admin, behind the Lambda authorizer.",
        )
        for path in ("/console", "/console/{proxy+}")
    ),
)
AUTHORIZER_FUNCTION = "authorizer"


def env_var(kind: Literal["table", "bucket", "secret"], name: str) -> str:
    """The environment variable a function reads a resource's physical name from."""
    return f"{kind.upper()}_{name.upper()}"


EVENT_BUS_ENV = "EVENT_BUS_NAME"
SUBSCRIPTION_SECRETS_PREFIX_ENV = "SUBSCRIPTION_SECRETS_PREFIX"
SUBSCRIPTION_RULE_PREFIX_ENV = "SUBSCRIPTION_RULE_PREFIX"
DELIVERY_QUEUE_URL_ENV = "DELIVERY_QUEUE_URL"
DELIVERY_QUEUE_ARN_ENV = "DELIVERY_QUEUE_ARN"
DELIVERY_DLQ_ARN_ENV = "DELIVERY_DLQ_ARN"
EVENT_ARCHIVE_ARN_ENV = "EVENT_ARCHIVE_ARN"
DELIVERY_POLICY_ENV = "DELIVERY_POLICY"
PUBLIC_BASE_URL_ENV = "PUBLIC_BASE_URL"
HOLD_MUSIC_ENV = "TWILIO_HOLD_MUSIC_URL"  # switchboard_core.calls.twiml reads it (ingest); the stage may set it
SECRETS_PREFIX_ENV = "SECRETS_PREFIX"
OUTBOUND_SECRETS_PREFIX_ENV = "OUTBOUND_SECRETS_PREFIX"
MAX_RECEIVE_COUNT_ENV = "QUEUE_MAX_RECEIVE_COUNT"
STAGE_ENV = "STAGE"
NOTIFICATION_POLICY_ENV = "NOTIFICATION_POLICY"
NOTIFICATION_SECRETS_PREFIX_ENV = "NOTIFICATION_SECRETS_PREFIX"
NOTIFICATION_EMAIL_FROM_ENV = "NOTIFICATION_EMAIL_FROM"
NOTIFICATION_SMS_FROM_ENV = "NOTIFICATION_SMS_FROM"
CAMPAIGN_QUEUE_URL_ENV = "CAMPAIGN_QUEUE_URL"
CAMPAIGN_QUEUE_ARN_ENV = "CAMPAIGN_QUEUE_ARN"
CAMPAIGN_DLQ_ARN_ENV = "CAMPAIGN_DLQ_ARN"
CAMPAIGN_RULE_PREFIX_ENV = "CAMPAIGN_RULE_PREFIX"
CAMPAIGN_SCHEDULE_GROUP_ENV = "CAMPAIGN_SCHEDULE_GROUP"
CAMPAIGN_SCHEDULER_ROLE_ARN_ENV = "CAMPAIGN_SCHEDULER_ROLE_ARN"


def secrets_prefix(stage: str) -> str:
    """Secrets Manager names of connection credentials start with this."""
    return f"{SERVICE}/{stage}/connections/"


def outbound_secrets_prefix(stage: str) -> str:
    """Secrets Manager names of connections' outbound (send API) credentials start with this."""
    return f"{SERVICE}/{stage}/outbound/"


def subscription_secrets_prefix(stage: str) -> str:
    """Secrets Manager names of partner subscriptions' signing secrets start with this."""
    return f"{SERVICE}/{stage}/subscriptions/"


def notification_secrets_prefix(stage: str) -> str:
    """Secrets Manager names of the tenants' notification-webhook signing secrets start with this."""
    return f"{SERVICE}/{stage}/notifications/"


def campaign_schedule_group(stage: str) -> str:
    """The EventBridge Scheduler group of the campaign runs' one-time schedules (their waits)."""
    return f"{SERVICE}-{stage}-campaigns"


def function_environment(function: Function, names: dict[str, str], stage: str) -> dict[str, str]:
    """Environment for one function. `names` maps 'table:x' / 'bucket:x' / 'secret:x' / 'bus' to physical
    names, and for the subscription machinery 'rule_prefix', 'queue_url:deliveries', 'queue_arn:deliveries',
    'dlq_arn:deliveries'
    and (on AWS only) 'archive'; for notifications, 'notification_email_from' and 'notification_sms_from' when set;
    for campaigns 'queue_url:campaigns', 'queue_arn:campaigns', 'dlq_arn:campaigns', 'campaign_rule_prefix',
    'campaign_schedule_group' and 'campaign_scheduler_role_arn'."""
    env = {
        STAGE_ENV: stage,
        "POWERTOOLS_SERVICE_NAME": f"{SERVICE}-{function.name.replace('_', '-')}",
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
        # We use no pydantic plugins: without this, the first model built scans every installed
        # distribution's entry points for one (docs/benchmarks.md, cold start).
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    }
    for table in function.tables:
        env[env_var("table", table)] = names[f"table:{table}"]
    for bucket in function.buckets:
        env[env_var("bucket", bucket)] = names[f"bucket:{bucket}"]
    for secret in function.reads_secrets:
        env[env_var("secret", secret)] = names[f"secret:{secret}"]
    if function.publishes:
        env[EVENT_BUS_ENV] = names["bus"]
    if function.secrets:
        env[SECRETS_PREFIX_ENV] = secrets_prefix(stage)
    if function.outbound_secrets:
        env[OUTBOUND_SECRETS_PREFIX_ENV] = outbound_secrets_prefix(stage)
    if function.public_url and "public_url" in names:  # on AWS, the API's URL is added once the API exists
        env[PUBLIC_BASE_URL_ENV] = names["public_url"]
    if function.consumer:  # so a consumer can tell a record's last attempt before the DLQ
        env[MAX_RECEIVE_COUNT_ENV] = str(function.consumer.max_receive_count)
    if function.subscription_secrets:
        env[SUBSCRIPTION_SECRETS_PREFIX_ENV] = subscription_secrets_prefix(stage)
    if function.uses_delivery_queue:
        env[DELIVERY_QUEUE_URL_ENV] = names[f"queue_url:{DELIVERY_QUEUE}"]
        env[DELIVERY_POLICY_ENV] = json.dumps(delivery_policy(), separators=(",", ":"))
    if function.sends_notifications:
        env[NOTIFICATION_POLICY_ENV] = json.dumps(notification_policy(), separators=(",", ":"))
        env[NOTIFICATION_SECRETS_PREFIX_ENV] = notification_secrets_prefix(stage)
        # The stage's sender identities (StageConfig on AWS, the local runtime's own): absent, that channel fails.
        if names.get("notification_email_from"):
            env[NOTIFICATION_EMAIL_FROM_ENV] = names["notification_email_from"]
        if names.get("notification_sms_from"):
            env[NOTIFICATION_SMS_FROM_ENV] = names["notification_sms_from"]
    if function.notification_secrets:
        env[NOTIFICATION_SECRETS_PREFIX_ENV] = notification_secrets_prefix(stage)
    if function.uses_campaign_queue:
        env[CAMPAIGN_QUEUE_URL_ENV] = names[f"queue_url:{CAMPAIGN_QUEUE}"]
        env[CAMPAIGN_QUEUE_ARN_ENV] = names[f"queue_arn:{CAMPAIGN_QUEUE}"]
    if function.schedules_campaign_timers:
        env[CAMPAIGN_QUEUE_ARN_ENV] = names[f"queue_arn:{CAMPAIGN_QUEUE}"]  # the schedules' target
        env[CAMPAIGN_SCHEDULE_GROUP_ENV] = names["campaign_schedule_group"]
        env[CAMPAIGN_SCHEDULER_ROLE_ARN_ENV] = names["campaign_scheduler_role_arn"]
    if function.manages_campaign_rules:
        env[EVENT_BUS_ENV] = names["bus"]
        env[CAMPAIGN_RULE_PREFIX_ENV] = names["campaign_rule_prefix"]
        env[CAMPAIGN_QUEUE_ARN_ENV] = names[f"queue_arn:{CAMPAIGN_QUEUE}"]  # the rules' one target
        # What EventBridge cannot put on the campaigns queue goes to its DLQ (the rules' DeadLetterConfig).
        env[CAMPAIGN_DLQ_ARN_ENV] = names[f"dlq_arn:{CAMPAIGN_QUEUE}"]
    if function.manages_subscription_rules:
        env[EVENT_BUS_ENV] = names["bus"]
        env[SUBSCRIPTION_RULE_PREFIX_ENV] = names["rule_prefix"]
        env[DELIVERY_QUEUE_ARN_ENV] = names[f"queue_arn:{DELIVERY_QUEUE}"]
        # What EventBridge cannot put on the delivery queue goes to its DLQ, not nowhere.
        env[DELIVERY_DLQ_ARN_ENV] = names[f"dlq_arn:{DELIVERY_QUEUE}"]
        if "archive" in names:  # AWS replays from the bus archive; the local runtime from the event log
            env[EVENT_ARCHIVE_ARN_ENV] = names["archive"]
    return env


def consumers() -> list[Function]:
    return [f for f in FUNCTIONS.values() if f.consumer is not None]


# How many copies of each consumer may run at once on AWS (its SQS event source's maximum
# concurrency). Ingest shares the account's concurrency with every function: these caps bound
# what a backlog, a slow partner endpoint or a provider outage can take of it, 150 in all, so in
# an account with AWS's default 1,000 at least 850 stay for ingest, admin and the authorizer
# whatever the queues hold. A cap takes nothing from the account's pool (reserved concurrency
# would), and a batch over the cap stays in its queue instead of being throttled back, which
# would count towards its DLQ. Why each value: docs/security.md ("Throttling and concurrency").
CONSUMER_MAX_CONCURRENCY = {
    "event_log": 10,  # batches of 10 writes: a few thousand events/s
    "routing": 40,  # the most work per event (sensing, contacts, conversations, rules)
    "replies": 10,
    "answers": 10,
    "hubspot_threads": 5,
    "calls": 10,
    "delivery": 40,  # waits on partners' endpoints: the one most likely to pile up
    "notifications": 10,
    "campaigns": 15,
}
# An SQS event source's maximum concurrency is 2 to 1,000 (Lambda's limits).
assert set(CONSUMER_MAX_CONCURRENCY) == {f.name for f in consumers()}, "every consumer needs a cap"
assert all(2 <= cap <= 1000 for cap in CONSUMER_MAX_CONCURRENCY.values())


def scheduled() -> list[Function]:
    return [f for f in FUNCTIONS.values() if f.schedule is not None]


def schedule_seconds(expression: str) -> int:
    """Seconds between runs of a rate() expression (the local scheduler's interval)."""
    import re

    found = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if not found:
        raise ValueError(f"only rate() schedules are supported, got {expression!r}")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[found.group(2).rstrip("s")]
    return int(found.group(1)) * unit
