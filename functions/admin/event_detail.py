"""One event in full: GET /admin/events/{event_id}, and a connection's daily counts.

The event comes from the event log (who may see it: as GET /admin/events, a key of its tenant
or an operator key, role admin or staff), its raw request from the raw bucket, and what
consumed it from the records the consumers already keep, each read by key or by an index
that exists for it (never a scan):

* event_log: it is listed (the item this answer was read from).
* routing: conversations `EVENT#<id>` (routed: its conversation) or `OUTCOME#<id>` (routing
  saved what it derived but had not finished), the contact from contacts `TIMELINE#<id>`, and the
  derived events' ids and types.
* replies: for a derived `reply.requested`, the replies table's `REQUEST#<its id>` outcome.
* subscription: each of the tenant's subscriptions (the `by_tenant` index) and its delivery
  record for this event (`SUB#<id>` / `EVENT#<event id>`, one BatchGetItem): state, attempts.
* campaign: runs it started (run ids derive from campaign, contact and event, so each of the
  tenant's campaigns the key may see is one key to read) and the run its reply was given to
  (`reply#<tenant>#<contact>#<event id>`).

Not shown, because no record names the event by key: notifications (keyed by the derived
routing event, recipient and channel), staff answers (keyed by message), calls (keyed by the
provider's call id). A consumer that kept no record for this event has no entry.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from switchboard_core.dynamo import batch_get
from switchboard_core.errors import NotFound
from switchboard_core.event_log import EventLogStore
from switchboard_core.events import CanonicalEvent
from switchboard_core.principals import Principal
from switchboard_core.raw_store import REDACTED, RawStore, redact_headers

if TYPE_CHECKING:
    from functions.admin.campaigns import CampaignDeps

MAX_SUBSCRIPTIONS = 500  # subscriptions read per event (a tenant's, oldest first)
MAX_CAMPAIGNS = 500  # campaigns whose run this event may have started


@dataclass
class DetailDeps:
    event_log: EventLogStore
    raw: RawStore
    raw_bucket: str
    conversations: Any  # Table resources: the items are read by key
    contacts: Any
    replies: Any
    subscriptions: Any
    campaign_runs: Any
    campaigns: CampaignDeps | None


def visible_event(principal: Principal, event_id_: str, deps: DetailDeps) -> CanonicalEvent:
    """The event, if this key may list its tenant's events; the same 404 for one it may not see
    as for one that never existed (a partner key, which may list no events, gets the 403 it gets
    from GET /admin/events, naming only its own tenant)."""
    principal.require_read(principal.tenant)
    event = deps.event_log.get(event_id_) if len(event_id_) <= 64 else None
    if event is None or not principal.can_read_tenant(event.tenant):
        raise NotFound(f"unknown event {event_id_!r} (or no longer in the event log)", code="unknown_event")
    return event


def event_detail(principal: Principal, event_id_: str, deps: DetailDeps) -> dict[str, Any]:
    event = visible_event(principal, event_id_, deps)
    raw, raw_unavailable = raw_request(event, deps)
    return {
        "event": event,
        "raw": raw,
        "raw_unavailable": raw_unavailable,
        "consumed_by": consumed_by(principal, event, deps),
    }


# --- the raw request --------------------------------------------------------------------------


def raw_request(event: CanonicalEvent, deps: DetailDeps) -> tuple[dict[str, Any] | None, str | None]:
    """The stored request with credential headers redacted (again: what ingest redacted, and every
    header the provider's adapter names), or None and why it cannot be shown."""
    from botocore.exceptions import ClientError

    if event.raw_ref is None:
        return None, "derived"  # made by a consumer, not received
    if event.raw_ref.bucket != deps.raw_bucket:
        return None, "elsewhere"  # a reference into a bucket this hub does not read
    try:
        stored = deps.raw.get(event.raw_ref)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None, "expired"
        raise
    return redacted(stored, event.provider), None


def redacted(stored: dict[str, Any], provider: str) -> dict[str, Any]:
    from switchboard_core.providers import PROVIDER_NAMES, get_adapter

    headers = stored.get("headers") or {}
    names = set(stored.get("redacted_headers") or [])
    if provider in PROVIDER_NAMES:
        # Without the connection's credentials: the generic and provider-fixed names (a connection's
        # own header, Freshdesk's, is in redacted_headers, where ingest recorded it).
        names |= get_adapter(provider).credential_headers({})
    shown = redact_headers(headers, names)
    body = base64.b64decode(stored.get("body_base64") or "")
    try:
        text: str | None = body.decode("utf-8")
    except (UnicodeDecodeError, binascii.Error):
        text = None
    return {
        "method": stored.get("method"),
        "url": stored.get("url"),
        "headers": shown,
        "redacted_headers": sorted(name for name, value in shown.items() if value == REDACTED),
        "body": text,
        "body_base64": stored.get("body_base64") or "",
        "delivery_id": stored.get("delivery_id"),
        "received_at": stored.get("received_at"),
    }


# --- what consumed it ---------------------------------------------------------------------------


def entry(
    consumer: str, status: str, at: Any, ref: dict[str, Any], detail: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"consumer": consumer, "status": status, "at": at, "ref": ref, "detail": detail}


def consumed_by(principal: Principal, event: CanonicalEvent, deps: DetailDeps) -> list[dict[str, Any]]:
    found = [entry("event_log", "logged", event.received_at, {"event_id": event.id})]
    routing, contact_id, derived = routed(event, deps)
    if routing:
        found.append(routing)
    found.extend(reply_outcomes(derived, deps))
    found.extend(deliveries(event, deps))
    if contact_id and deps.campaigns is not None:
        found.extend(campaign_runs(principal, event, contact_id, deps))
    return found


def routed(event: CanonicalEvent, deps: DetailDeps) -> tuple[dict[str, Any] | None, str | None, list[dict[str, str]]]:
    """Routing's entry, the contact it put the event on the timeline of, and what it derived."""
    from pydantic import TypeAdapter

    done = deps.conversations.get_item(Key={"pk": f"EVENT#{event.id}"}).get("Item")
    outcome = deps.conversations.get_item(Key={"pk": f"OUTCOME#{event.id}"}).get("Item")
    timeline = deps.contacts.get_item(Key={"pk": f"TIMELINE#{event.id}"}).get("Item")
    contact_id = str(timeline["contact_id"]) if timeline else None
    derived = []
    if outcome:
        events = TypeAdapter(list[CanonicalEvent]).validate_json(outcome["events"])
        derived = [{"id": e.id, "type": e.type} for e in events]
    if not (done or outcome):
        return None, contact_id, derived
    conversation = (done or outcome or {}).get("conversation_id")
    ref = {"conversation_id": conversation, "contact_id": contact_id}
    if done:
        return entry("routing", "routed", done.get("routed_at"), ref, {"derived_events": derived}), contact_id, derived
    return entry("routing", "in_progress", None, ref, {"derived_events": derived}), contact_id, derived


def reply_outcomes(derived: list[dict[str, str]], deps: DetailDeps) -> list[dict[str, Any]]:
    found = []
    for requested in (d for d in derived if d["type"] == "reply.requested"):
        item = deps.replies.get_item(Key={"pk": f"REQUEST#{requested['id']}"}).get("Item")
        if item is None:
            found.append(entry("replies", "pending", None, {"request_event_id": requested["id"]}))
            continue
        outcome = CanonicalEvent.model_validate_json(item["outcome"])
        found.append(
            entry(
                "replies",
                outcome.type.removeprefix("reply."),
                outcome.occurred_at,
                {"request_event_id": requested["id"], "outcome_event_id": outcome.id},
                {"reason": outcome.attributes.get("reason")} if outcome.attributes.get("reason") else None,
            )
        )
    return found


def deliveries(event: CanonicalEvent, deps: DetailDeps) -> list[dict[str, Any]]:
    """The delivery record of each of the tenant's subscriptions for this event (admin and staff
    keys see every subscription of their tenant, as GET /admin/subscriptions shows them)."""
    from switchboard_core.subscriptions.deliveries import event_sk
    from switchboard_core.subscriptions.store import SubscriptionStore, subscription_pk

    subscriptions: list[Any] = []
    after: dict[str, Any] | None = None
    while len(subscriptions) < MAX_SUBSCRIPTIONS:
        page, after = SubscriptionStore(deps.subscriptions).list_for_tenant(event.tenant, limit=100, start_key=after)
        subscriptions.extend(page)
        if after is None:
            break
    keys = [{"pk": subscription_pk(s.id), "sk": event_sk(event.id)} for s in subscriptions]
    records = {item["pk"]: item for item in batch_get(deps.subscriptions, keys)}
    found = []
    for subscription in subscriptions:
        item = records.get(subscription_pk(subscription.id))
        if item is None:
            continue
        found.append(
            entry(
                "subscription",
                str(item["state"]),
                item.get("updated_at"),
                {"subscription_id": subscription.id},
                {"attempts": int(item.get("attempts", 0)), "last_status_code": _int(item.get("last_status_code"))},
            )
        )
    return found


def campaign_runs(
    principal: Principal, event: CanonicalEvent, contact_id: str, deps: DetailDeps
) -> list[dict[str, Any]]:
    """Runs this event started, and the run its reply was given to: those of campaigns the key may see."""
    from functions.admin.campaigns import level_of
    from switchboard_core.campaigns.run_store import REPLY_SK, STATE_SK, reply_pk, run_pk
    from switchboard_core.campaigns.runs import Run, run_id

    campaigns = deps.campaigns
    assert campaigns is not None
    teams: dict[str, set[str]] = {}
    seen: list[Any] = []
    after: dict[str, Any] | None = None
    while len(seen) < MAX_CAMPAIGNS:
        page, after = campaigns.store.list_for_tenant(
            event.tenant, lambda c: level_of(principal, c, campaigns, teams) is not None, start_key=after
        )
        seen.extend(page)
        if after is None:
            break
    visible = {c.id for c in seen}
    started = {run_id(c.id, contact_id, event.id): "started" for c in seen}
    reply = deps.campaign_runs.get_item(Key={"pk": reply_pk(event.tenant, contact_id, event.id), "sk": REPLY_SK})
    if "Item" in reply:
        started.setdefault(str(reply["Item"]["run"]), "reply")
    keys = [{"pk": run_pk(run), "sk": STATE_SK} for run in started]
    found = []
    for item in batch_get(deps.campaign_runs, keys):
        run = Run.model_validate_json(item["run"])
        if run.campaign not in visible or run.tenant != event.tenant:
            continue
        found.append(
            entry(
                "campaign",
                run.status.value,
                run.started_at,
                {"campaign_id": run.campaign, "run_id": run.id},
                {"role": started[run.id], "current_step": run.current_step, "version": run.version},
            )
        )
    return sorted(found, key=lambda e: e["ref"]["run_id"])


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None
