"""What a subscription is, and what the delivery queue carries."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SUBSCRIPTION_ID_PREFIX = "sub_"
RESUME_TRIGGER_PREFIX = "resume:"
# subscription.failing / subscription.disabled come from the delivery function as this provider.
DELIVERY_PROVIDER = "delivery"


def is_resume(trigger: str) -> bool:
    return trigger.startswith(RESUME_TRIGGER_PREFIX)


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # by its owner: the rule is disabled, nothing is sent until resumed
    # Still sending, but its endpoint has failed for failing_after_seconds (subscription.failing told the tenant).
    FAILING = "failing"
    DISABLED = "disabled"  # by the hub: 410 Gone, or failing for disabled_after_seconds


class Subscription(BaseModel):
    """One partner subscription, as stored (the signing secret lives in Secrets Manager)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    tenant: str
    owner: str = Field(description="key_id of the API key that created it (partners see only their own).")
    owner_role: str | None = Field(
        default=None, description="The creating key's role: a partner's subscription gets no news of another's."
    )
    url: str
    event_pattern: dict[str, Any] = Field(description="As the partner wrote it; the rule also matches the tenant.")
    description: str = ""
    ordered: bool = False
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE
    status_reason: str | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    version: int = 1  # bumped by every change: conditional writes refuse a stale one
    secret_version: int = 1  # bumped by rotation: the delivery function's secret cache key
    failing_since: AwareDatetime | None = None
    failing_notified_at: AwareDatetime | None = None


class DeliveryState(StrEnum):
    PENDING = "pending"  # received, not yet sent (or waiting behind an earlier event when ordered)
    RETRYING = "retrying"  # an attempt failed; the next one is scheduled (next_attempt_at)
    DELIVERED = "delivered"
    FAILED = "failed"  # every scheduled attempt failed: kept for retry/replay
    HELD = "held"  # not sent because the subscription was paused or disabled; resume sends it


class Delivery(BaseModel):
    """One event's delivery to one subscription (item SUB#<id> / EVENT#<event id>)."""

    model_config = ConfigDict(extra="ignore")

    subscription: str
    event_id: str
    state: DeliveryState
    attempts: int = 0
    event_type: str
    event_time: AwareDatetime
    order_key: str | None = None
    next_attempt_at: AwareDatetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_triggers: list[str] = Field(
        default_factory=list, description="Triggers already delivered (bus, retry:<id>, replay:<name>, resume:<id>)."
    )
    trigger: str | None = Field(default=None, description="The trigger now being sent (its schedule is running).")
    trigger_attempts: int = Field(default=0, description="Attempts spent by the current trigger (its schedule).")
    triggers: list[str] = Field(
        default_factory=list, description="Every trigger that ever started sending it (a superseded one stops)."
    )
    updated_at: AwareDatetime


class Attempt(BaseModel):
    """One HTTP attempt (item SUB#<id> / ATTEMPT#<time>#<event id>#<n>), kept attempts_ttl_seconds."""

    model_config = ConfigDict(extra="ignore")

    subscription: str
    event_id: str
    attempt: int = Field(description="1 for the first send; manual retries and replays continue the count.")
    at: AwareDatetime
    status_code: int | None = Field(default=None, description="The endpoint's HTTP status; None when no answer came.")
    error: str | None = Field(default=None, description="Why no answer came: timeout, refused, TLS, SSRF...")
    latency_ms: int
    response_excerpt: str = Field(default="", description="The start of the endpoint's answer (512 characters).")
    outcome: str = Field(description="delivered, retry, failed (no more attempts) or disabled (410 Gone).")
    next_attempt_at: AwareDatetime | None = None
    trigger: str = Field(default="bus", description="bus, retry (by hand) or replay:<name>.")


class DeliveryMessage(BaseModel):
    """The delivery queue's message body. The subscription's rule puts
    `{"subscription": "<id>", "event": <aws.events.event.json>}` (its InputTransformer);
    manual retries and local replays put the same, with `trigger` saying why."""

    model_config = ConfigDict(extra="ignore")

    subscription: str
    event: dict[str, Any] = Field(description="The EventBridge envelope; the canonical event is its detail.")
    trigger: str = "bus"

    @property
    def detail(self) -> dict[str, Any]:
        detail = self.event.get("detail")
        return detail if isinstance(detail, dict) else {}

    @property
    def replay_name(self) -> str | None:
        """Set on events EventBridge replays from the archive (the envelope's replay-name)."""
        name = self.event.get("replay-name")
        return name if isinstance(name, str) else None

    @property
    def effective_trigger(self) -> str:
        return f"replay:{self.replay_name}" if self.replay_name else self.trigger


def about_another_partners_subscription(subscription: Subscription, detail: dict[str, Any]) -> bool:
    """A subscription.* event (the delivery function's) about a subscription that a partner's
    subscription does not own: partners see only their own subscriptions, news included."""
    if subscription.owner_role != "partner" or detail.get("provider") != DELIVERY_PROVIDER:
        return False
    attributes = detail.get("attributes")
    return not isinstance(attributes, dict) or attributes.get("owner") != subscription.owner


def delivery_body(detail: dict[str, Any]) -> dict[str, Any]:
    """What the partner receives: `{"type", "timestamp", "data"}` (the canonical event as data)."""
    return {"type": detail.get("type"), "timestamp": detail.get("received_at"), "data": detail}


def order_key(detail: dict[str, Any]) -> str | None:
    """Which events must arrive in order for an ordered subscription: those of one conversation
    (routing's events name it in attributes.conversation), else of one provider thread."""
    attributes = detail.get("attributes") or {}
    conversation = attributes.get("conversation") if isinstance(attributes, dict) else None
    if isinstance(conversation, str) and conversation:
        return f"conversation:{conversation}"
    if detail.get("conversation_key") and detail.get("connection"):
        return f"thread:{detail['connection']}:{detail['conversation_key']}"
    return None


def iso(moment: datetime) -> str:
    return moment.isoformat()
