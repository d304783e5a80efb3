"""Notifications: telling responders and teams about routing events and campaigns' notify steps.

One trigger in (`routing.assigned`, `routing.unassigned`, `routing.escalated`, or a campaign's
`campaign.notification_requested`), one `notification.sent` or `notification.failed` out per
recipient and channel:

1. Recipients. `routing.assigned` -> the assignee (none yet: the team's on-call contact,
   since the conversation waits in its queue); `routing.unassigned` -> the queue's team's
   on-call contact points; `routing.escalated` -> the team's on-call contact points and, when
   the conversation is assigned, the assignee too. A campaign names its recipient: `to`
   `assignee` / `responder` -> that responder (`target`), `team` -> the team's on-call contact
   points; none (no assignee, an unknown responder or team) -> notification.failed
   `no_recipient`, a malformed request -> notification.failed `invalid_request`.
2. Urgency (the documented rule): urgent when the event's `urgency` is high or critical, its
   `priority` is 1 or 2, or it is an escalation; a campaign says so itself (`urgent`).
3. Preferences (responders; a team's on-call contact has none): the contact points of the
   preferred channels, in that order (default: every contact point). In quiet hours, or
   outside working hours when `urgent_only_outside_hours`, a non-urgent notification is not
   sent: notification.failed with reason `quiet_hours` / `outside_hours`.
4. Rate limit per recipient: the first `limit` triggers of a window are sent; the rest go
   into that window's digest, sent once by the scheduled run after the window ends.
5. Once: each (trigger, recipient, channel) is claimed with a conditional write before it is
   sent, so a redelivery (a repeated webhook, a queue retry) sends nothing more. A transient
   failure releases the claim and raises (the queue retries); on the queue's last attempt
   it becomes notification.failed instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator

from functions.notifications.channels import ChannelDeps, Outgoing, deliver
from functions.notifications.ledger import Digest, NotificationLedger
from functions.notifications.templates import NotificationView, render, render_digest
from switchboard_core.events import CanonicalEvent, EventDraft
from switchboard_core.outbound import PermanentFailure, TransientFailure
from switchboard_core.routing import NOTIFICATIONS_PROVIDER
from switchboard_core.routing.assignment import Responder, Team
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.contact_points import ContactPoint, NotificationPreferences

ROUTING_TRIGGERS = ("routing.assigned", "routing.unassigned", "routing.escalated")
CAMPAIGN_TRIGGER = "campaign.notification_requested"
CAMPAIGNS_PROVIDER = "campaigns"  # the campaign function publishes as switchboard.campaigns
TRIGGERS = (*ROUTING_TRIGGERS, CAMPAIGN_TRIGGER)
# Triggers that must reach someone: a recipient without contact points is reported, not skipped.
MUST_REACH = ("routing.escalated", CAMPAIGN_TRIGGER)
URGENT_LEVELS = ("high", "critical")
URGENT_PRIORITIES = (1, 2)
MAP_ZOOM = 15


class NotificationPolicy(BaseModel):
    """NOTIFICATION_POLICY (topology.notification_policy())."""

    model_config = ConfigDict(extra="forbid")

    rate_limit: int = Field(ge=1, description="notifications per recipient and window before the rest are digested")
    window_seconds: int = Field(ge=10, le=86400)
    digest_attempts: int = Field(default=5, ge=1, description="scheduled runs that try a digest before it fails")


class CampaignNotification(BaseModel):
    """The attributes of a campaign's `campaign.notification_requested` (a notify step)."""

    model_config = ConfigDict(extra="ignore")

    campaign: str = Field(min_length=1)
    campaign_name: str = Field(min_length=1)
    version: int = Field(ge=1, strict=True)
    run: str = Field(min_length=1)
    conversation: str | None = None
    to: Literal["assignee", "team", "responder"]
    target: str | None = Field(default=None, description="responder id or team name; None: an assignee-less run")
    text: str = Field(description="the notify step's text, rendered by the campaign")
    urgent: StrictBool = False
    idempotency_key: str = Field(min_length=1)

    @model_validator(mode="after")
    def _checked(self) -> CampaignNotification:
        if not self.text.strip():
            raise ValueError("text is empty: nothing to tell")
        if self.to != "assignee" and not self.target:
            raise ValueError(f"target is required when to is {self.to}")
        return self


@dataclass(frozen=True)
class Recipient:
    """A responder or a team's on-call contact."""

    kind: str  # responder | team
    id: str
    name: str
    contact_points: tuple[ContactPoint, ...]
    preferences: NotificationPreferences | None = None
    working_hours: Any = None  # BusinessHours of a responder, when set

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"

    def document(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "contact_points": [p.model_dump(mode="json", exclude_none=True) for p in self.contact_points],
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Recipient:
        return cls(
            kind=document["kind"],
            id=document["id"],
            name=document["name"],
            contact_points=tuple(ContactPoint.model_validate(p) for p in document["contact_points"]),
        )

    def attributes(self) -> dict[str, str]:
        return {"responder": self.id} if self.kind == "responder" else {"team": self.id}


@dataclass
class NotificationDeps:
    config: RoutingConfigStore
    ledger: NotificationLedger
    channels: ChannelDeps
    policy: NotificationPolicy


def of_responder(responder: Responder) -> Recipient:
    return Recipient(
        kind="responder",
        id=responder.id,
        name=responder.name,
        contact_points=tuple(responder.contact_points),
        preferences=responder.notification_preferences,
        working_hours=responder.working_hours,
    )


def of_team(team: Team) -> Recipient:
    return Recipient(kind="team", id=team.name, name=team.name, contact_points=tuple(team.contact_points))


def recipients(event: CanonicalEvent, config: RoutingConfigStore) -> list[Recipient]:
    attributes = event.attributes
    assignee = attributes.get("assignee") if isinstance(attributes.get("assignee"), str) else None
    queue = attributes.get("queue") if isinstance(attributes.get("queue"), str) else None
    found: list[Recipient] = []
    wants_assignee = event.type == "routing.escalated" or (event.type == "routing.assigned" and assignee)
    if wants_assignee and assignee:
        responder = config.responder(event.tenant, assignee)
        if responder is not None:
            found.append(of_responder(responder))
    if event.type != "routing.assigned" or not assignee:  # the team's on-call contact
        team = next((t for t in config.teams(event.tenant) if t.name == queue), None) if queue else None
        if team is not None:
            found.append(of_team(team))
    return found


def campaign_recipient(request: CampaignNotification, tenant: str, config: RoutingConfigStore) -> Recipient | None:
    """The responder or team a campaign's notify step names (None: nobody by that name, or no assignee)."""
    if not request.target:
        return None
    if request.to == "team":
        team = next((t for t in config.teams(tenant) if t.name == request.target), None)
        return of_team(team) if team is not None else None
    responder = config.responder(tenant, request.target)
    return of_responder(responder) if responder is not None else None


def is_urgent(event: CanonicalEvent) -> bool:
    attributes = event.attributes
    if event.type == CAMPAIGN_TRIGGER:
        return attributes.get("urgent") is True
    priority = attributes.get("priority")
    return (
        event.type == "routing.escalated"
        or attributes.get("urgency") in URGENT_LEVELS
        or (isinstance(priority, int) and priority in URGENT_PRIORITIES)
    )


def held_back(recipient: Recipient, urgent: bool, now: datetime) -> str | None:
    """Why a notification to `recipient` is not sent now (None: it is)."""
    preferences = recipient.preferences
    if preferences is None or urgent:
        return None
    if preferences.is_quiet(now):
        return "quiet_hours"
    outside = recipient.working_hours is not None and not recipient.working_hours.holds(now)
    if preferences.urgent_only_outside_hours and outside:
        return "outside_hours"
    return None


def chosen_points(recipient: Recipient) -> list[ContactPoint]:
    """The contact points to use, in the recipient's order of preference."""
    channels = recipient.preferences.channels if recipient.preferences else None
    if channels is None:
        return list(recipient.contact_points)
    return [point for channel in channels for point in recipient.contact_points if point.channel == channel]


def map_url(latitude: float, longitude: float) -> str:
    return (
        f"https://www.openstreetmap.org/?mlat={latitude:.5f}&mlon={longitude:.5f}"
        f"#map={MAP_ZOOM}/{latitude:.5f}/{longitude:.5f}"
    )


def view_of(event: CanonicalEvent, recipient: Recipient, urgent: bool) -> NotificationView:
    attributes = event.attributes
    if event.type == CAMPAIGN_TRIGGER:  # validated as a CampaignNotification already
        return NotificationView(
            kind="campaign",
            recipient_name=recipient.name,
            conversation=attributes.get("conversation"),
            contact=contact_line(event),
            urgent=urgent,
            text=attributes["text"],
            campaign=attributes["campaign"],
            campaign_name=attributes["campaign_name"],
            campaign_version=attributes["version"],
            run=attributes["run"],
        )
    raw_location = attributes.get("location")
    location: dict[str, Any] = raw_location if isinstance(raw_location, dict) else {}
    latitude, longitude = location.get("latitude"), location.get("longitude")
    distance = attributes.get("distance_km")
    overdue = attributes.get("overdue_seconds")
    return NotificationView(
        kind=event.type.removeprefix("routing."),
        recipient_name=recipient.name,
        conversation=attributes.get("conversation"),
        team=attributes.get("queue"),
        assignee=attributes.get("assignee"),
        contact=contact_line(event),
        message=event.text if event.type != "routing.escalated" else None,
        topics=[t for t in attributes.get("topics") or [] if isinstance(t, str)],
        sentiment=attributes.get("sentiment") if isinstance(attributes.get("sentiment"), (int, float)) else None,
        urgency=attributes.get("urgency") if isinstance(attributes.get("urgency"), str) else None,
        urgent=urgent,
        priority=attributes.get("priority") if isinstance(attributes.get("priority"), int) else None,
        distance_km=round(float(distance), 1) if isinstance(distance, (int, float)) else None,
        map_url=map_url(float(latitude), float(longitude))
        if isinstance(latitude, (int, float)) and isinstance(longitude, (int, float))
        else None,
        overdue_minutes=int(overdue) // 60 if isinstance(overdue, int) and overdue >= 60 else None,
    )


def contact_line(event: CanonicalEvent) -> str:
    """A short contact summary: name, else the first identity (a phone, a handle), else 'a customer'."""
    contact = event.contact
    if contact.name:
        return contact.name[:60]
    for value in (contact.phone, contact.email, *(h.id for h in contact.handles)):
        if value:
            return str(value)[:60]
    return "a customer"


def handle(
    event: CanonicalEvent, deps: NotificationDeps, now: datetime, last_attempt: bool = False
) -> list[CanonicalEvent]:
    """The notification.* events for one trigger (already-sent ones yield nothing)."""
    if event.type not in TRIGGERS:
        return []
    if event.type == CAMPAIGN_TRIGGER:
        return handle_campaign(event, deps, now, last_attempt)
    urgent = is_urgent(event)
    outcomes: list[CanonicalEvent] = []
    for recipient in recipients(event, deps.config):
        outcomes.extend(notify(event, recipient, urgent, deps, now, last_attempt))
    return outcomes


def handle_campaign(
    event: CanonicalEvent, deps: NotificationDeps, now: datetime, last_attempt: bool
) -> list[CanonicalEvent]:
    """A campaign's notify step: its one recipient, or a failure saying why there is none."""
    if event.provider != CAMPAIGNS_PROVIDER:
        return []  # only the campaign function asks (the queue's rule selects its source too)
    try:
        request = CampaignNotification.model_validate(event.attributes)
    except ValidationError as invalid:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'attributes'}: {error['msg']}" for error in invalid.errors()
        )
        return [outcome(event, None, None, "failed", {"reason": "invalid_request", "detail": detail}, now)]
    recipient = campaign_recipient(request, event.tenant, deps.config)
    if recipient is None:
        nobody = {"reason": "no_recipient", "to": request.to, "target": request.target}
        return [outcome(event, None, None, "failed", nobody, now)]
    return notify(event, recipient, request.urgent, deps, now, last_attempt)


def notify(
    event: CanonicalEvent, recipient: Recipient, urgent: bool, deps: NotificationDeps, now: datetime, last_attempt: bool
) -> list[CanonicalEvent]:
    ledger, policy = deps.ledger, deps.policy
    points = chosen_points(recipient)
    if not points:
        # Nobody to tell is news only for an escalation or a campaign (they must reach someone);
        # a responder or team without contact points is simply not notified of assignments.
        if event.type not in MUST_REACH:
            return []
        return [outcome(event, recipient, None, "failed", {"reason": "no_contact_point"}, now)]
    reason = held_back(recipient, urgent, now)
    if reason is not None:
        if not ledger.claim(event.id, recipient.key, "held", now):
            return settled(ledger, event, recipient, "held")
        held = outcome(event, recipient, None, "failed", {"reason": reason, "urgent": urgent}, now)
        ledger.settle(event.id, recipient.key, "held", "held", now, held.model_dump_json())
        return [held]
    if ledger.is_digested(event.id, recipient.key) or not ledger.admit(
        event.tenant, recipient.key, event.id, policy.rate_limit, policy.window_seconds, now
    ):
        if ledger.claim(event.id, recipient.key, "digest", now):
            _, line = render("sms", view_of(event, recipient, urgent))
            ledger.add_to_digest(event.tenant, recipient.document(), event.id, line, policy.window_seconds, now)
            ledger.settle(event.id, recipient.key, "digest", "digested", now)
        return []
    results: list[CanonicalEvent] = []
    view = view_of(event, recipient, urgent)
    for point in points:
        if not ledger.claim(event.id, recipient.key, point.channel, now):
            # Sent (or being sent) by an earlier delivery of the same event: its outcome again, if stored.
            results.extend(settled(ledger, event, recipient, point.channel))
            continue
        subject, text = render(point.channel, view)
        outgoing = Outgoing(
            tenant=event.tenant,
            contact_point=point,
            subject=subject,
            text=text,
            message_id=f"ntf_{event.id}_{recipient.key}_{point.channel}".replace(":", "-"),
            payload=webhook_payload(event, recipient, view, text),
        )
        try:
            message_id = deliver(outgoing, deps.channels)
        except PermanentFailure as failure:
            result = outcome(event, recipient, point, "failed", {"reason": failure.code, "detail": failure.detail}, now)
        except TransientFailure as failure:
            if not last_attempt:
                ledger.release(event.id, recipient.key, point.channel)
                raise
            detail = f"gave up after the queue's last attempt: {failure.detail}"
            result = outcome(event, recipient, point, "failed", {"reason": failure.code, "detail": detail}, now)
        else:
            result = outcome(event, recipient, point, "sent", {"provider_message_id": message_id}, now)
        ledger.settle(event.id, recipient.key, point.channel, result.type.split(".")[1], now, result.model_dump_json())
        results.append(result)
    return results


def settled(
    ledger: NotificationLedger, event: CanonicalEvent, recipient: Recipient, channel: str
) -> list[CanonicalEvent]:
    """The stored outcome of an earlier delivery (published again: same id). While another attempt
    holds the claim the record is retried rather than finished: if that attempt died (its claim goes
    stale), the retry sends it; reporting it done would lose the notification."""
    stored = ledger.settled_event(event.id, recipient.key, channel)
    if stored:
        return [CanonicalEvent.model_validate_json(stored)]
    if ledger.in_progress(event.id, recipient.key, channel):
        raise TransientFailure("in_progress", f"notification {channel} is being sent by another attempt")
    return []


def campaign_attributes(event: CanonicalEvent) -> dict[str, Any]:
    """What an outcome of a campaign's request says about where it came from (whatever was valid of it)."""
    if event.type != CAMPAIGN_TRIGGER:
        return {}
    attributes = event.attributes
    found: dict[str, Any] = {
        name: attributes[name]
        for name in ("campaign", "run", "campaign_name", "idempotency_key")
        if isinstance(attributes.get(name), str)
    }
    if isinstance(attributes.get("version"), int) and not isinstance(attributes.get("version"), bool):
        found["version"] = attributes["version"]
    return found


def webhook_payload(event: CanonicalEvent, recipient: Recipient, view: NotificationView, text: str) -> dict[str, Any]:
    return {
        "type": "notification",
        "trigger_event": event.id,
        "trigger_type": event.type,
        "tenant": event.tenant,
        "recipient": recipient.attributes(),
        "text": text,
        "details": view.model_dump(mode="json", exclude_none=True),
    }


def outcome(
    event: CanonicalEvent,
    recipient: Recipient | None,
    point: ContactPoint | None,
    kind: str,
    details: dict[str, Any],
    now: datetime,
) -> CanonicalEvent:
    """One notification.* event; `recipient` None: the trigger named nobody to tell."""
    channel = point.channel if point else None
    conversation = event.attributes.get("conversation")
    attributes: dict[str, Any] = {
        **(recipient.attributes() if recipient else {}),
        "channel": channel,
        "trigger_event": event.id,
        "trigger_type": event.type,
        "conversation": conversation if isinstance(conversation, str) else None,
        **campaign_attributes(event),
        **details,
    }
    distance = event.attributes.get("distance_km")
    if isinstance(distance, (int, float)):
        attributes["distance_km"] = round(float(distance), 1)
    return CanonicalEvent.from_draft(
        EventDraft(
            type=f"notification.{kind}",
            provider_event_id=f"{event.id}:{recipient.key if recipient else 'nobody'}:{channel or 'none'}:{kind}",
            occurred_at=now,
            contact=event.contact,
            conversation_key=event.conversation_key,
            attributes=attributes,
        ),
        provider=NOTIFICATIONS_PROVIDER,
        connection=event.connection,
        tenant=event.tenant,
        channel=event.channel,
        received_at=now,
        raw_ref=None,
    )


def flush_digests(
    deps: NotificationDeps, now: datetime, publish: Callable[[list[CanonicalEvent]], None]
) -> list[CanonicalEvent]:
    """Send every digest whose window has ended (the scheduled run)."""
    published: list[CanonicalEvent] = []
    for digest in deps.ledger.due_digests(now):
        if not deps.ledger.take_digest(digest):
            continue  # another run took it
        events = send_digest(digest, deps, now)
        publish(events)
        published.extend(events)
    return published


def send_digest(digest: Digest, deps: NotificationDeps, now: datetime) -> list[CanonicalEvent]:
    recipient = Recipient.from_document(digest.recipient)
    minutes = max(1, deps.policy.window_seconds // 60)
    text = render_digest(len(digest.triggers), minutes, digest.lines)
    results: list[CanonicalEvent] = []
    for point in recipient.contact_points:
        outgoing = Outgoing(
            tenant=digest.tenant,
            contact_point=point,
            subject=f"{len(digest.triggers)} more notifications",
            text=text,
            message_id=f"ntf_digest_{digest.key}_{point.channel}".replace("#", "-").replace(":", "-"),
            payload={
                "type": "notification.digest",
                "tenant": digest.tenant,
                "recipient": recipient.attributes(),
                "trigger_events": digest.triggers,
                "text": text,
            },
        )
        details: dict[str, Any] = {"digest": True, "count": len(digest.triggers), "triggers": digest.triggers[:50]}
        try:
            message_id = deliver(outgoing, deps.channels)
        except TransientFailure as failure:
            if digest.attempts + 1 < deps.policy.digest_attempts:
                deps.ledger.return_digest(digest)  # the next scheduled run tries again
                return results
            details |= {"reason": failure.code, "detail": failure.detail}
            results.append(digest_outcome(digest, recipient, point.channel, "failed", details, now))
            continue
        except PermanentFailure as failure:
            details |= {"reason": failure.code, "detail": failure.detail}
            results.append(digest_outcome(digest, recipient, point.channel, "failed", details, now))
            continue
        details["provider_message_id"] = message_id
        results.append(digest_outcome(digest, recipient, point.channel, "sent", details, now))
    return results


def digest_outcome(
    digest: Digest, recipient: Recipient, channel: str, kind: str, details: dict[str, Any], now: datetime
) -> CanonicalEvent:
    from switchboard_core.events import Channel

    return CanonicalEvent.from_draft(
        EventDraft(
            type=f"notification.{kind}",
            provider_event_id=f"{digest.key}:{channel}:{kind}",
            occurred_at=now,
            attributes={
                **recipient.attributes(),
                "channel": channel,
                "trigger_event": digest.triggers[0] if digest.triggers else None,
                **details,
            },
        ),
        provider=NOTIFICATIONS_PROVIDER,
        connection=NOTIFICATIONS_PROVIDER,
        tenant=digest.tenant,
        channel=Channel.GENERIC,
        received_at=now,
        raw_ref=None,
    )
