"""The admin API's response models: what each route answers, for validation and the
OpenAPI document (docs/openapi.json); the error shape every route documents is in
routes/params.py, which the handler loads without this module. Request models live next to the
logic that uses them (logic.py, routing_config.py); the domain's own models (rule sets, taxonomies, teams,
responders, contacts, conversations, canonical events) are answered as they are.

Models whose rows another part of the hub produces (provider descriptions, simulation rows,
timeline entries) allow extra fields, so a field added there reaches clients unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model

from switchboard_core.campaigns.flow import Flow, Trigger
from switchboard_core.events import CanonicalEvent
from switchboard_core.routing.assignment import Responder, Team
from switchboard_core.routing.conversations import Conversation
from switchboard_core.routing.rules import RuleSet
from switchboard_core.routing.sensing import Taxonomy


def _omitted_when_none(value: Any) -> bool:
    return value is None


# --- providers, whoami ----------------------------------------------------------------------


class OutboundDescription(BaseModel):
    model_config = ConfigDict(extra="allow")

    provider: str
    credential_fields: list[str]
    required: list[str]


class ProviderDescription(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    title: str
    channel: str
    credential_fields: list[str]
    handshake: bool
    content_types: list[str]
    replay_window_seconds: int | None
    replies: OutboundDescription | None = Field(
        description="outbound credential fields, where auto-replies can be sent"
    )


class ProviderList(BaseModel):
    providers: list[ProviderDescription]


class Whoami(BaseModel):
    key_id: str
    tenant: str = Field(description="the key's tenant; '*' for an operator key")
    name: str
    role: str = Field(description="admin, staff or partner")


# --- connections ----------------------------------------------------------------------------


class ConnectionView(BaseModel):
    """A connection as the API shows it: never its credentials. Unset optional fields are left out."""

    id: str
    provider: str
    tenant: str
    name: str | None = Field(default=None, exclude_if=_omitted_when_none)
    created_at: AwareDatetime
    rotated_at: AwareDatetime | None = Field(default=None, exclude_if=_omitted_when_none)
    outbound_configured_at: AwareDatetime | None = Field(
        default=None, exclude_if=_omitted_when_none, description="set while outbound (send API) credentials are stored"
    )
    webhook_url: str = Field(description="where the provider must send its webhooks")


class RotatedConnection(ConnectionView):
    previous_credentials_valid_until: str | None = Field(
        description="until when the previous credentials still verify (ISO 8601)"
    )


class ConnectionList(BaseModel):
    connections: list[ConnectionView]


# --- events ---------------------------------------------------------------------------------


class EventFilters(BaseModel):
    """The filters the listing applied (the tenant is the one the key or the connection decided)."""

    tenant: str | None
    connection: str | None
    provider: str | None
    type: str | None
    since: str | None


class EventsPage(BaseModel):
    events: list[CanonicalEvent]
    next_cursor: str | None = Field(description="pass as cursor= for the next page; null on the last one")
    filters: EventFilters


class RawRequest(BaseModel):
    """The webhook request as stored: credential-bearing headers' values are [redacted]."""

    method: str | None
    url: str | None
    headers: dict[str, str]
    redacted_headers: list[str] = Field(description="names of the headers whose values are [redacted]")
    body: str | None = Field(description="the body as UTF-8 text; null when it is not text (see body_base64)")
    body_base64: str = Field(description="the body's bytes exactly as received, base64")
    delivery_id: str | None = Field(description="the provider's delivery id (what deduplication keys on)")
    received_at: str | None


class ConsumerEntry(BaseModel):
    consumer: Literal["event_log", "routing", "replies", "subscription", "campaign"]
    status: str = Field(
        description="event_log: logged; routing: routed, in_progress; replies: sent, skipped, failed, pending; "
        "subscription: the delivery state (pending, delivered, retrying, failed, held...); campaign: the run's status"
    )
    at: AwareDatetime | None = Field(
        description="when: the event was received (event_log), routed, the reply's outcome, the delivery's last "
        "change, the run's start; null while routing is in progress or a reply pending"
    )
    ref: dict[str, str | None] = Field(
        description="ids to link to: event_id, conversation_id, contact_id, request_event_id, outcome_event_id, "
        "subscription_id, campaign_id, run_id"
    )
    detail: dict[str, Any] | None = Field(
        default=None,
        description="routing: derived_events [{id, type}]; replies: reason; subscription: attempts, "
        "last_status_code; campaign: role (started or reply), current_step, version",
    )


class EventDetail(BaseModel):
    event: CanonicalEvent
    raw: RawRequest | None = Field(description="the raw request; null for a derived event or one no longer stored")
    raw_unavailable: Literal["derived", "expired", "elsewhere"] | None = Field(
        description="why raw is null: derived (made by a consumer, not received), expired (the raw bucket no longer "
        "has it), elsewhere (a reference to a bucket this hub does not read); null when raw is shown"
    )
    consumed_by: list[ConsumerEntry] = Field(
        description="what consumed it, from the records consumers keep by event id (docs/architecture.md)"
    )


class StatsDay(BaseModel):
    date: str = Field(description="the UTC day, YYYY-MM-DD")
    accepted: int = Field(description="events accepted from this connection's webhooks (one webhook may carry several)")
    duplicates: int = Field(description="redelivered webhooks acknowledged without new events")
    rejected: dict[str, int] = Field(
        description="refused requests by reason, the error code ingest answered with (invalid_signature, "
        "unsupported_media_type, payload_too_large, malformed_payload, method_not_allowed...)"
    )


class ConnectionStatsView(BaseModel):
    connection: str
    last_received_at: AwareDatetime | None = Field(
        description="when the newest accepted event arrived; null if none in the last 90 days"
    )
    days: list[StatsDay] = Field(description="oldest first, one per day, zero-filled")


# --- routing configuration ------------------------------------------------------------------


class RulesView(BaseModel):
    rule_set: RuleSet
    version: int


class SavedRules(BaseModel):
    version: int
    rules: int = Field(description="how many rules the saved rule set has")


class TaxonomyView(BaseModel):
    taxonomy: Taxonomy
    version: int


class SavedTaxonomy(BaseModel):
    version: int
    phrases: int = Field(description="how many phrases sensing now matches")


class TeamWithMembers(Team):
    members: list[str] = Field(description="ids of the responders in this team")


class TeamList(BaseModel):
    teams: list[TeamWithMembers]


class ResponderList(BaseModel):
    responders: list[Responder]


def _profile(model: type[BaseModel], name: str, decided_elsewhere: set[str], doc: str) -> type[BaseModel]:
    """`model` without the fields the path, the key or the server decide: a body that sets
    one of them is refused (extra fields are forbidden), and the two never drift apart."""
    fields: dict[str, Any] = {
        field: (info.annotation, info) for field, info in model.model_fields.items() if field not in decided_elsewhere
    }
    return create_model(name, __config__=ConfigDict(extra="forbid"), __doc__=doc, **fields)


# Built from the domain models (mypy sees variables, hence the ignores where routes annotate with them).
TeamProfile = _profile(Team, "TeamProfile", {"name"}, "A team; its name comes from the path.")
ResponderProfile = _profile(
    Responder,
    "ResponderProfile",
    {"id", "tenant", "load"},
    "A responder; its id comes from the path, its tenant from the key, its load is the hub's.",
)


# --- simulation -----------------------------------------------------------------------------


class ProposedDecision(BaseModel):
    model_config = ConfigDict(extra="allow")

    action: str
    rule: str | None
    reason: str
    queue: str | None
    assignee: str | None
    tags: list[str] = Field(default_factory=list)
    auto_reply_rule: str | None = None


class TakenDecision(BaseModel):
    """What routing recorded; only the fields it is known for (a kept conversation has no tags)."""

    model_config = ConfigDict(extra="allow")

    action: str = Field(description="assign, unassigned, none (no rule set was in force) or kept")
    rule: str | None
    queue: str | None
    assignee: str | None
    reason: str | None = None
    tags: list[str] | None = None
    auto_reply_rule: str | None = None


class SimulatedEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    event_id: str
    type: str
    provider: str
    occurred_at: str
    topics: list[str]
    conversation: str | None
    proposed: ProposedDecision
    actual: TakenDecision | None = Field(description="what routing did with it, when that is known")
    not_compared: str | None = Field(description="why the event could not be compared, when it could not")
    changes: list[str] = Field(description="the fields that would change: queue, assignee, tags, auto_reply_rule")
    changed: bool


class SimulationReport(BaseModel):
    model_config = ConfigDict(extra="allow")

    events: list[SimulatedEvent]
    compared: int = Field(description="events whose outcome routing recorded, so the proposal is compared on them")
    changed: int = Field(description="compared events on which the proposal would change at least one field")
    not_compared: int = Field(description="events whose outcome is not in the window (listed with the reason)")
    not_routed: int = Field(description="compared events that were not routed (no rule set was in force)")


# --- contacts and conversations -------------------------------------------------------------


class TimelineEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    event_id: str
    type: str
    provider: str
    channel: str
    occurred_at: str
    conversation: str | None = None
    text: str | None = None


class Timeline(BaseModel):
    contact: str
    events: list[TimelineEntry]
    next_cursor: str | None


class ConversationsPage(BaseModel):
    conversations: list[Conversation]
    next_cursor: str | None


# --- partner subscriptions ------------------------------------------------------------------


class SubscriptionView(BaseModel):
    """A subscription as the API shows it: never its signing secret (only creation and rotation answer that)."""

    id: str
    tenant: str
    owner: str = Field(description="key_id of the key that created it")
    url: str
    event_pattern: dict[str, Any] = Field(description="as written; the bus rule also matches the tenant")
    description: str
    ordered: bool
    status: str = Field(description="active, paused (by its owner), failing (still sending) or disabled (by the hub)")
    status_reason: str | None = Field(default=None, exclude_if=_omitted_when_none)
    created_at: AwareDatetime
    updated_at: AwareDatetime
    secret_version: int = Field(description="bumped by each rotation")
    failing_since: AwareDatetime | None = Field(default=None, exclude_if=_omitted_when_none)
    failing_notified_at: AwareDatetime | None = Field(default=None, exclude_if=_omitted_when_none)


class CreatedSubscription(SubscriptionView):
    secret: str = Field(description="the Standard Webhooks signing secret (whsec_...): shown only now")


class RotatedSubscription(SubscriptionView):
    secret: str = Field(description="the new signing secret (whsec_...): shown only now")
    previous_secret_valid_until: AwareDatetime = Field(
        description="until when deliveries are signed with the previous secret too (both in one header)"
    )


class ResumedSubscription(SubscriptionView):
    resent: int = Field(description="held deliveries (not sent while paused or disabled) queued again")
    missing_events: list[str] = Field(description="held events the event log no longer has (older than 30 days)")


class SubscriptionsPage(BaseModel):
    subscriptions: list[SubscriptionView]
    next_cursor: str | None = Field(description="pass as cursor= for the next page; null on the last one")


class AttemptView(BaseModel):
    event_id: str
    attempt: int = Field(description="1 for the first send; retries and replays continue the count")
    at: AwareDatetime
    status_code: int | None = Field(description="the endpoint's HTTP status; null when no answer came")
    error: str | None = Field(description="why no answer came (timeout, refused, TLS, refused address...)")
    latency_ms: int
    response_excerpt: str
    outcome: str = Field(description="delivered, retry, failed (no more attempts) or disabled (410 Gone)")
    next_attempt_at: AwareDatetime | None
    trigger: str = Field(description="bus, retry:<id>, replay:<name> or resume:<id>")


class AttemptsPage(BaseModel):
    attempts: list[AttemptView] = Field(description="delivery attempts, newest first")
    next_cursor: str | None


class RetryQueued(BaseModel):
    subscription: str
    event_id: str
    trigger: str = Field(description="retry:<id>: the attempts it makes carry it")


class ReplayStarted(BaseModel):
    subscription: str
    replay: str = Field(description="the replay's name; its attempts carry the trigger replay:<name>")
    since: AwareDatetime
    until: AwareDatetime
    source: str = Field(description="archive (EventBridge replays the bus archive) or event_log (the local runtime)")
    queued: int | None = Field(description="events queued for delivery (event_log); null while the archive replays")


# --- answers ---------------------------------------------------------------------------------


class AnswerQueued(BaseModel):
    message_id: str
    status: Literal["queued"]
    channel: str = Field(description="the channel it goes out on (sms, whatsapp, x, zendesk...)")
    to: str = Field(description="the recipient: a number, chat, comment, tweet or ticket")


class ConversationMessage(BaseModel):
    """One message of either side; answers carry their state, author and history."""

    model_config = ConfigDict(extra="allow")

    direction: Literal["inbound", "outbound"]
    event_id: str
    at: str
    text: str | None = None


class ConversationMessages(BaseModel):
    conversation: str
    messages: list[ConversationMessage] = Field(description="oldest first")


# --- campaigns -------------------------------------------------------------------------------


class CampaignAuthor(BaseModel):
    key_id: str
    name: str


class CampaignShare(BaseModel):
    principal: str | None = Field(default=None, description="the key id given access", exclude_if=_omitted_when_none)
    team: str | None = Field(default=None, description="the team given access", exclude_if=_omitted_when_none)
    access: Literal["viewer", "editor"]
    shared_by: CampaignAuthor
    shared_at: AwareDatetime


class CampaignOrigin(BaseModel):
    campaign: str
    version: int


class CampaignView(BaseModel):
    """A campaign's head: what all its versions share."""

    id: str
    tenant: str
    name: str
    owner: CampaignAuthor = Field(description="the key that created it")
    created_at: AwareDatetime
    updated_at: AwareDatetime
    latest_version: int
    published_version: int | None = Field(description="the live version; null while only drafts exist")
    published_at: AwareDatetime | None
    published_by: CampaignAuthor | None
    forked_from: CampaignOrigin | None
    shares: list[CampaignShare]
    access: Literal["viewer", "editor", "manager"] = Field(description="what the calling key may do with it")


class CampaignDetail(CampaignView):
    """A campaign with one of its versions (the latest unless ?version= names another)."""

    version: int
    flow: Flow
    trigger: Trigger | None
    saved_at: AwareDatetime
    saved_by: CampaignAuthor
    live: bool = Field(description="this version is the published one")


class CampaignsPage(BaseModel):
    campaigns: list[CampaignView] = Field(description="oldest first; only those the key may see")
    next_cursor: str | None = Field(description="pass as cursor= for the next page; null on the last one")


class StepCounts(BaseModel):
    entered: int
    sent: int
    replied: int
    failed: int
    converted: int


class CampaignVersionRow(BaseModel):
    version: int
    saved_at: AwareDatetime
    saved_by: CampaignAuthor
    published_at: AwareDatetime | None = Field(description="when it was first published; null for a draft")
    live: bool
    steps: int
    trigger: bool
    counts: dict[str, StepCounts] = Field(
        description="per step of this version: how many runs entered it, sent, got a reply, failed, converted"
    )


class CampaignVersions(BaseModel):
    campaign: str
    latest_version: int
    published_version: int | None
    versions: list[CampaignVersionRow] = Field(description="oldest first")


class ChangedField(BaseModel):
    field: str = Field(description="a dotted path inside the step or trigger, e.g. cases.0.next")
    from_: Any = Field(alias="from", serialization_alias="from")
    to: Any


class ChangedStep(BaseModel):
    step: str
    fields: list[ChangedField]


class StepChanges(BaseModel):
    added: list[str]
    removed: list[str]
    changed: list[ChangedStep]


class StartChange(BaseModel):
    from_: str = Field(alias="from", serialization_alias="from")
    to: str


class TriggerChange(BaseModel):
    from_: dict[str, Any] | None = Field(alias="from", serialization_alias="from")
    to: dict[str, Any] | None
    fields: list[ChangedField]


class CampaignDiff(BaseModel):
    campaign: str
    from_: int = Field(alias="from", serialization_alias="from")
    to: int
    start: StartChange | None = Field(description="null when both versions start at the same step")
    steps: StepChanges
    trigger: TriggerChange | None = Field(description="null when the trigger did not change")


class CampaignCheck(BaseModel):
    valid: Literal[True]
    tenant: str
    steps: int
    trigger: bool


class RunsAccepted(BaseModel):
    campaign: str
    version: int = Field(description="the live version the runs start on (and finish on)")
    request: str = Field(description="this request's id: send it again as `request` to retry without doubling runs")
    accepted: int = Field(description="how many runs were asked of the campaign function, one per contact")


class RunContactView(BaseModel):
    id: str = Field(description="the contact's id (ct_...)")
    name: str | None
    phone: str | None


class RunStepView(BaseModel):
    step: str
    outcome: str = Field(description="requested, sent, failed, answered, not_answered, replied, timed_out, ...")
    at: AwareDatetime
    reason: str | None


class CampaignRunView(BaseModel):
    id: str
    contact: RunContactView
    version: int = Field(description="the version the run started on, and finishes on")
    state: Literal["active", "waiting", "completed", "stopped"]
    current_step: str | None = Field(description="null once the run finished")
    waiting_for: str | None = Field(description="timer, reply, call, postponed or continue; null when not waiting")
    wake_at: AwareDatetime | None = Field(description="when the wait ends at the latest")
    steps_done: list[RunStepView] = Field(description="each step entered, oldest first (the latest 200)")
    started_at: AwareDatetime
    ended_at: AwareDatetime | None
    end_reason: str | None


class CampaignRunsPage(BaseModel):
    campaign: str
    runs: list[CampaignRunView] = Field(description="newest first, every version's")
    next_cursor: str | None = Field(description="pass as cursor= for the next page; null on the last one")


class StopAccepted(BaseModel):
    campaign: str
    stopping: int = Field(description="runs in flight asked to stop (the campaign function stops each)")
    more_in_flight: bool = Field(
        default=False,
        description="more runs were in flight than one request asks to stop: each of them stops on its next "
        "input (a timer, a reply, a report), before it sends anything",
    )
