"""Routing one canonical event: who it is, which conversation, what it is about, who answers.

1. Resolve the contact from the event's identities (merging where the event links two),
   sync CRM attributes, and record opt-outs (STOP on any channel, a CRM flag).
2. Conversational events (messages, mentions, comments, calls, tickets) are threaded into
   a conversation, sensed (topics, entities, sentiment, urgency, location) and routed by
   the tenant's rule set; responder capacity is taken with a conditional write. The
   event is marked routed last, so a redelivery of a routed event is a no-op, and one
   that failed half-way is routed again.
3. The outcome is returned as derived events (`conversation.opened` / `.updated`,
   `routing.assigned` / `.unassigned`, and `reply.requested` when a rule asks for an
   auto-reply, rendered and addressed to the channel the customer wrote from) for the
   bus, with deterministic ids. The replies function sends what is requested.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from switchboard_core.answers import ANSWERS_PROVIDER
from switchboard_core.events import CanonicalEvent, EventDraft
from switchboard_core.outbound import reply_address
from switchboard_core.routing import (
    CALLS_PROVIDER,
    CAMPAIGNS_PROVIDER,
    NOTIFICATIONS_PROVIDER,
    REPLIES_PROVIDER,
    ROUTING_PROVIDER,
    is_conversational,
)
from switchboard_core.routing.assignment import Assignment, Choice, choose_in_queue, choose_nearest
from switchboard_core.routing.config_store import RoutingConfigStore, Versions
from switchboard_core.routing.contacts import ContactRecord, ContactStore, identities_of
from switchboard_core.routing.conversations import ConversationStore, Threaded
from switchboard_core.routing.rules import AssignNearest, AssignToQueue, Decision, RuleSet, decide
from switchboard_core.routing.sensing import Sensed, Sensor

OPT_OUT_WORDS = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit"}
OPT_IN_WORDS = {"start", "unstop", "subscribe"}
# Field names (lower-cased, Salesforce's __c suffix dropped) that carry consent or attributes.
CRM_OPT_OUT_PROPERTIES = (
    "hs_email_optout",
    "opted_out",
    "unsubscribed",
    "do_not_contact",
    "hasoptedoutofemail",
    "unsubscribed_from_emails",
)
SYNCED_ATTRIBUTES = {
    "tier": "tier",
    "customer_tier": "tier",
    "hubspot_owner_id": "owner",
    "owner": "owner",
    "ownerid": "owner",
    "owner_id": "owner",
    "hs_language": "language",
    "language": "language",
    "locale": "locale",
    "hs_timezone": "timezone",
}
# What a customer starts (as opposed to call progress, status or edits): only these get an
# auto-reply, so a call's ringing/in-progress/completed callbacks do not ask three times.
CUSTOMER_INITIATED = frozenset(
    {
        "message.received",
        "mention.created",
        "comment.created",
        "interaction.created",
        "ticket.created",
        "ticket.comment_added",
        "call.ringing",
    }
)
SLA_BY_PRIORITY = {
    1: timedelta(minutes=15),
    2: timedelta(hours=1),
    3: timedelta(hours=4),
    4: timedelta(hours=8),
    5: timedelta(hours=24),
}


@dataclass
class RoutingDeps:
    contacts: ContactStore
    conversations: ConversationStore
    config: RoutingConfigStore
    # Per tenant, the parsed configuration with the version it was read at, reused across events
    # for as long as a warm sandbox lives: a sensor (its taxonomy's automaton) and the rule set.
    sensors: dict[str, tuple[int, Sensor]]
    rule_sets: dict[str, tuple[int, RuleSet | None]] = field(default_factory=dict)

    def configuration(self, tenant: str) -> tuple[Sensor, RuleSet | None]:
        """The tenant's sensor and rule set in force. One small consistent read (the versions)
        per event; a document is read and parsed again only when its version moved, so a saved
        rule set routes the very next event and the work per event does not grow with the rules."""
        versions = self.config.versions(tenant)
        sensor = self.sensors.get(tenant)
        if versions is None or sensor is None or sensor[0] < versions.taxonomy:
            taxonomy, taxonomy_version = self.config.taxonomy(tenant)
            sensor = self.sensors[tenant] = (taxonomy_version, Sensor(taxonomy))
        rule_set = self.rule_sets.get(tenant)
        if versions is None or rule_set is None or rule_set[0] < versions.rules:
            found = self.config.rules(tenant)
            rule_set = self.rule_sets[tenant] = (found[1], found[0]) if found else (0, None)
        if versions is None:  # saved before versions were kept: from now on they are
            self.config.record_versions(tenant, Versions(rules=rule_set[0], taxonomy=sensor[0]))
        return sensor[1], rule_set[1]


def route(
    event: CanonicalEvent, deps: RoutingDeps, now: datetime, publish: Callable[[list[CanonicalEvent]], None]
) -> list[CanonicalEvent]:
    """Route `event`; `publish` puts the derived events on the bus. The outcome is saved
    before publishing and the event marked routed after, so a publish failure is
    retried with the same events, never recomputed (which would, say, see its own
    assignment and answer "sticky")."""
    conversational = is_conversational(event)
    # Only a conversational event's outcome is ever saved: the others need not look for one.
    progress = deps.conversations.progress(event.id) if conversational else None
    saved = progress.saved_outcome if progress else None
    if saved is not None:
        publish(saved.events)
        deps.conversations.mark_routed(event.id, saved.conversation_id, now)
        return saved.events
    contact = deps.contacts.resolve(event.tenant, identities_of(event.contact), reason=event.id, now=now)
    if contact is not None:
        sync_contact(event, contact, deps.contacts)
    if not conversational:
        conversation_id = None
        if event.provider == ANSWERS_PROVIDER:  # a staff answer from the hub, and how its delivery went
            conversation_id = event.attributes.get("conversation")
            if event.type == "message.sent" and isinstance(conversation_id, str):  # a person answered: SLA met
                deps.conversations.record_response(conversation_id, event.occurred_at)
        elif event.type == "message.sent":  # the business answered: the conversation's SLA is met...
            conversation_id = deps.conversations.find(event, contact.id if contact else None)
            if conversation_id and event.attributes.get("automated") is not True:  # ...unless a bot did
                deps.conversations.record_response(conversation_id, event.occurred_at)
        elif event.provider in (REPLIES_PROVIDER, CALLS_PROVIDER, NOTIFICATIONS_PROVIDER, CAMPAIGNS_PROVIDER):
            # an outcome of the hub's own (campaign runs among them): on the timeline, not an answer
            conversation_id = event.attributes.get("conversation")
        if contact is not None and not is_repeat_reply(event):
            deps.contacts.add_to_timeline(
                contact.id, timeline_entry(event, conversation_id), event.id, event.occurred_at
            )
        return []
    threaded = deps.conversations.thread(event, contact.id if contact else None, now, progress)
    if threaded.duplicate:
        return []
    if contact is not None:
        deps.contacts.add_to_timeline(
            contact.id, timeline_entry(event, threaded.conversation.id), event.id, event.occurred_at
        )
    sensor, rule_set = deps.configuration(event.tenant)
    sensed = sensor.sense(event)
    conversation = threaded.conversation
    decision = (
        decide(
            rule_set,
            event,
            sensed,
            contact.attributes if contact else {},
            has_assignee=conversation.assignee is not None,
            at=event.occurred_at,
        )
        if rule_set is not None
        else None
    )
    assignment = assign(event, decision, sensed, deps.config, now) if decision else None
    deps.conversations.record_routing(
        conversation.id,
        tenant=event.tenant,
        sensed=sensed,
        decision=decision,
        assignment=assignment,
        sla_due_at=sla_due(decision, event.occurred_at),
        touched_topics=conversation.topics,
    )
    reply = requested_reply(event, conversation.id, decision, assignment) if decision else None
    derived = derived_events(event, threaded, contact, sensed, decision, assignment, reply)
    deps.conversations.save_outcome(event.id, conversation.id, derived)
    publish(derived)
    deps.conversations.mark_routed(event.id, conversation.id, now)
    return derived


def is_repeat_reply(event: CanonicalEvent) -> bool:
    """A later message's auto-reply skipped because the conversation already had it: noise
    on a person's timeline (the event log keeps it)."""
    return (
        event.provider == REPLIES_PROVIDER
        and event.type == "reply.skipped"
        and event.attributes.get("reason") == "already_sent"
    )


def timeline_entry(event: CanonicalEvent, conversation_id: str | None) -> dict[str, Any]:
    return {
        "type": event.type,
        "provider": event.provider,
        "channel": event.channel.value,
        "occurred_at": event.occurred_at.isoformat(),
        "conversation": conversation_id,
        "text": (event.text or "")[:500] or None,
    }


def crm_fields(attributes: dict[str, Any]) -> dict[str, Any]:
    """A CRM event's contact fields, flat, whatever the provider's shape: HubSpot's
    propertyName/propertyValue, Salesforce's sObject `fields`, Pipedrive's `data` (v2) or
    `current` (v1), Intercom's `item`."""
    fields: dict[str, Any] = {}
    for container in ("fields", "data", "current", "item"):
        value = attributes.get(container)
        if isinstance(value, dict):
            fields.update(value)
            custom = value.get("custom_attributes")
            if isinstance(custom, dict):
                fields.update(custom)
    name = attributes.get("propertyName")
    if isinstance(name, str):
        fields[name] = attributes.get("propertyValue")
    return fields


def _field_key(name: str) -> str:
    return name.lower().removesuffix("__c")


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in {"true", "1", "yes"})


def sync_contact(event: CanonicalEvent, contact: ContactRecord, contacts: ContactStore) -> None:
    """CRM attributes onto the contact; opt-outs and opt-ins from any channel."""
    if event.type.startswith("contact."):
        fields = {_field_key(k): v for k, v in crm_fields(event.attributes).items() if isinstance(k, str)}
        synced = {
            target: str(fields[key])
            for key, target in SYNCED_ATTRIBUTES.items()
            if isinstance(fields.get(key), (str, int)) and not isinstance(fields.get(key), bool)
        }
        contacts.update_attributes(contact.id, synced, event.occurred_at)
        flags = [fields[key] for key in CRM_OPT_OUT_PROPERTIES if key in fields and fields[key] is not None]
        if flags:
            contacts.record_consent(
                contact.id,
                opted_out=any(_truthy(f) for f in flags),
                channel=event.channel.value,
                source=event.id,
                at=event.occurred_at,
            )
    if event.type == "message.received" and event.text and is_conversational(event):  # a customer's, not the hub's
        word = event.text.strip().lower().rstrip(".!")
        if word in OPT_OUT_WORDS or word in OPT_IN_WORDS:
            contacts.record_consent(
                contact.id,
                opted_out=word in OPT_OUT_WORDS,
                channel=event.channel.value,
                source=event.id,
                at=event.occurred_at,
            )


def assign(
    event: CanonicalEvent, decision: Decision, sensed: Sensed, config: RoutingConfigStore, now: datetime
) -> Assignment | None:
    """Turn a decision into an assignment, taking responder capacity with a conditional
    write (candidates that filled up meanwhile are skipped)."""
    target = decision.target
    if decision.action == "sticky" or target is None:
        return None
    responders = config.responders(event.tenant)
    while True:
        choice: Choice | None
        if isinstance(target, AssignNearest):
            choice = choose_nearest(target, responders, sensed.location, now)
        else:
            last = config.last_assigned(event.tenant, target.team) if target.strategy == "round_robin" else None
            choice = choose_in_queue(target, responders, now, last)
        if choice is None:  # nobody free: the conversation waits in the team's queue
            return Assignment(team=target.team or "", priority=target.priority, responder_id=None, strategy=None)
        if config.take_capacity(choice.responder):
            if isinstance(target, AssignToQueue) and target.strategy == "round_robin":
                config.set_last_assigned(event.tenant, target.team, choice.responder.id)
            team = target.team if isinstance(target, AssignToQueue) else (target.team or _first(choice.responder.teams))
            return Assignment(
                team=team,
                priority=target.priority,
                responder_id=choice.responder.id,
                strategy=choice.strategy,
                distance_km=choice.distance_km,
                responder_name=choice.responder.name,
            )
        responders = [r for r in responders if r.id != choice.responder.id]


def _first(items: list[str]) -> str:
    return items[0] if items else ""


def sla_due(decision: Decision | None, at: datetime) -> datetime | None:
    if decision is None or decision.target is None:
        return None
    return at + SLA_BY_PRIORITY[decision.target.priority]


def humanize(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = minutes // 60
    return f"{hours} hour{'s' if hours != 1 else ''}"


def requested_reply(
    event: CanonicalEvent,
    conversation_id: str,
    decision: Decision,
    assignment: Assignment | None,
) -> dict[str, Any] | None:
    """The auto-reply a rule asked for: rendered, and addressed to the channel the
    customer wrote from (None where that channel cannot be answered: the replies
    function reports it as skipped, so the request is never silently lost)."""
    if decision.auto_reply is None or event.type not in CUSTOMER_INITIATED:
        return None
    # The responder's name as `assign` read it to choose: not read again (a GetItem per reply).
    assignee = (assignment.responder_name or "") if assignment is not None else ""
    team = assignment.team if assignment is not None else (decision.target.team if decision.target else None)
    priority = decision.target.priority if decision.target else None
    variables = {
        "name": event.contact.name or "",
        "team": team or "",
        "assignee": assignee,
        "reply_within": humanize(SLA_BY_PRIORITY[priority]) if priority else "",
        "conversation": conversation_id,
        "channel": event.channel.value,
    }
    address = None if posts_in_public(event) else reply_address(event)
    return {
        "rule": decision.auto_reply_rule,
        "template": decision.auto_reply.template,
        "source_provider": event.provider,
        "text": decision.auto_reply.render(variables),  # the event's text; not repeated in attributes
        "reply_to": address.model_dump(mode="json") if address else None,
    }


# Where an answer to a comment or mention would be a public post (or use up Meta's one private
# reply per comment), an automatic "thanks, we're on it" is left to a person: staff answer it
# from the hub (POST /admin/conversations/{id}/messages). The request is still published, as
# `no_reply_channel`, so nothing is silently dropped.
PUBLIC_SOCIAL_PROVIDERS = frozenset({"meta", "x", "linkedin"})
PUBLIC_TYPES = frozenset({"comment.created", "mention.created"})


def posts_in_public(event: CanonicalEvent) -> bool:
    return event.provider in PUBLIC_SOCIAL_PROVIDERS and event.type in PUBLIC_TYPES


def derived_events(
    event: CanonicalEvent,
    threaded: Threaded,
    contact: ContactRecord | None,
    sensed: Sensed,
    decision: Decision | None,
    assignment: Assignment | None,
    reply: dict[str, Any] | None = None,
) -> list[CanonicalEvent]:
    conversation = threaded.conversation
    summary = contact_summary(contact)
    base: dict[str, Any] = {
        "conversation": conversation.id,
        "source_event": event.id,
        "source_type": event.type,
        "topics": sensed.topics,
        "entities": sensed.entities,
        "sentiment": sensed.sentiment,
        "urgency": sensed.urgency_level,
        "contact": summary,
    }
    call = live_call(event, sensed)
    if call is not None:
        base["call"] = call
    drafts = [("conversation.opened" if threaded.opened else "conversation.updated", base)]
    if decision is not None and decision.action != "sticky":
        routed = {
            **base,
            "rule": decision.rule,
            "reason": decision.reason,
            "matched": decision.matched,
            "tags": decision.tags,
            "auto_reply_rule": decision.auto_reply_rule,
        }
        if sensed.location is not None and sensed.location.has_coordinates:  # notifications' map link
            routed["location"] = {"latitude": sensed.location.latitude, "longitude": sensed.location.longitude}
        if assignment is not None:
            routed |= {
                "queue": assignment.team,
                "assignee": assignment.responder_id,
                "priority": assignment.priority,
                "strategy": assignment.strategy,
                "distance_km": assignment.distance_km,
            }
        kind = "routing.unassigned" if decision.action == "unassigned" else "routing.assigned"
        drafts.append((kind, routed))
    if reply is not None:
        requested = {k: v for k, v in reply.items() if k != "text"}
        drafts.append(
            (
                "reply.requested",
                {**requested, "conversation": conversation.id, "source_event": event.id, "contact": summary},
            )
        )
    return [
        CanonicalEvent.from_draft(
            EventDraft(
                type=kind,
                provider_event_id=f"{event.id}:{kind}",
                occurred_at=event.occurred_at,
                contact=event.contact,
                conversation_key=conversation.id,
                text=reply["text"] if kind == "reply.requested" and reply else event.text,
                attributes=attributes,
            ),
            provider=ROUTING_PROVIDER,
            connection=event.connection,
            tenant=event.tenant,
            channel=event.channel,
            received_at=event.received_at,
            raw_ref=None,
        )
        for kind, attributes in drafts
    ]


def live_call(event: CanonicalEvent, sensed: Sensed) -> dict[str, Any] | None:
    """What the calls function needs to put a ringing call through: the call's id (Twilio's
    CallSid, Telnyx's call_control_id, Vonage's uuid), the caller and the number they called, and where they
    are (for the next nearest responder when the first does not answer). None for anything
    but an inbound call."""
    where = sensed.location
    location = (
        {"latitude": where.latitude, "longitude": where.longitude}
        if where is not None and where.has_coordinates
        else None
    )
    attributes = event.attributes
    if event.provider == "twilio" and event.type == "call.ringing" and isinstance(attributes.get("CallSid"), str):
        return {
            "provider": event.provider,
            "sid": attributes["CallSid"],
            "from": attributes.get("From"),
            "to": attributes.get("To"),
            "location": location,
        }
    payload = attributes.get("payload")
    if event.provider == "telnyx" and event.type == "call.initiated" and isinstance(payload, dict):
        # Only the caller's own leg: a leg the hub opened (a transfer) carries its client_state.
        sid = payload.get("call_control_id")
        if payload.get("direction") != "incoming" or payload.get("client_state") or not isinstance(sid, str):
            return None
        return {
            "provider": event.provider,
            "sid": sid,
            "from": payload.get("from"),
            "to": payload.get("to"),
            "location": location,
        }
    if event.provider == "vonage" and event.type == "call.ringing" and "status" not in attributes:
        # Vonage's answer webhook (a status event always has `status`): the caller's own call.
        sid = attributes.get("uuid")
        if not isinstance(sid, str) or not sid:
            return None
        return {
            "provider": event.provider,
            "sid": sid,
            "from": str_or_none(attributes.get("from")),
            "to": str_or_none(attributes.get("to")),
            # its connect legs join the same conversation: the calls function checks their events by it
            "conversation_uuid": str_or_none(attributes.get("conversation_uuid")),
            "location": location,
        }
    return None


def str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def contact_summary(contact: ContactRecord | None) -> dict[str, Any] | None:
    if contact is None:
        return None
    return {
        "id": contact.id,
        "identities": contact.identities,
        "attributes": contact.attributes,
        "opted_out": contact.consent.opted_out,
    }
