"""Simulation: what a proposed rule set would have done with past events, next to what
happened, without changing anything (no capacity taken, nothing written).

What happened is read from routing's own derived events in the same window: for each
customer event, `routing.assigned` / `routing.unassigned` (a rule set decided),
`conversation.opened` / `.updated` alone (routing ran but decided nothing: no rule set
was in force, or a sticky rule kept the conversation where it was) and `reply.requested`.
An event is compared only when its outcome is known that way; the rest are listed with
the reason they were not compared, so the counts say exactly what was compared.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from switchboard_core.events import CanonicalEvent
from switchboard_core.routing import ROUTING_PROVIDER, is_conversational
from switchboard_core.routing.assignment import Responder, choose_in_queue, choose_nearest
from switchboard_core.routing.rules import AssignNearest, RuleSet, decide
from switchboard_core.routing.sensing import Sensor

ROUTED = ("routing.assigned", "routing.unassigned")
THREADED = ("conversation.opened", "conversation.updated")
# The parts of an outcome a proposal is compared on.
COMPARED_FIELDS = ("queue", "assignee", "tags", "auto_reply_rule")
OUTSIDE_WINDOW = "routing's outcome for this event is not among the events simulated"
EARLIER_CONVERSATION = "its conversation began before the events simulated, so its queue and assignee are unknown"


def simulate(
    rule_set: RuleSet, events: Iterable[CanonicalEvent], sensor: Sensor, responders: list[Responder]
) -> dict[str, Any]:
    """One row per past conversational event, oldest first: the proposed outcome, the one
    that happened (or why it is not known), and which of queue, assignee, tags and
    auto-reply rule would change. Responders are today's (their load included): a queue's
    pick is compared as "could the proposal have picked the same responder", since who
    was least loaded then is not recorded; the nearest responder is compared as is."""
    events = list(events)
    derived: dict[tuple[str, str], CanonicalEvent] = {}
    for event in events:
        if event.provider == ROUTING_PROVIDER and (source := event.attributes.get("source_event")):
            derived[(str(source), event.type)] = event
    # Each conversation's (queue, assignee) as the events go by, in what happened and in the proposal,
    # so a sticky rule keeps what the conversation had (unknown for one that began before the window).
    actual_state: dict[str, tuple[str | None, str | None]] = {}
    proposed_state: dict[str, tuple[str | None, str | None]] = {}
    rows: list[dict[str, Any]] = []
    for event in events:
        if not is_conversational(event):
            continue
        threaded = derived.get((event.id, "conversation.opened")) or derived.get((event.id, "conversation.updated"))
        conversation = str(threaded.attributes.get("conversation")) if threaded else None
        if threaded is not None and threaded.type == "conversation.opened":
            actual_state[conversation] = proposed_state[conversation] = (None, None)  # type: ignore[index]
        actual, not_compared = what_happened(event, derived, conversation, actual_state)
        contact = (threaded.attributes.get("contact") or {}) if threaded else {}
        sensed = sensor.sense(event)
        before = proposed_state.get(conversation) if conversation else None
        decision = decide(
            rule_set,
            event,
            sensed,
            dict(contact.get("attributes") or {}),
            has_assignee=bool(before and before[1]),
            at=event.occurred_at,
        )
        queue, assignee = before if decision.action == "sticky" and before else (None, None)
        target = decision.target
        if isinstance(target, AssignNearest):
            choice = choose_nearest(target, responders, sensed.location, event.occurred_at)
            queue = target.team or (choice.responder.teams[0] if choice and choice.responder.teams else None)
            assignee = choice.responder.id if choice else None
        elif target is not None:
            choice = choose_in_queue(target, responders, event.occurred_at)
            queue, assignee = target.team, choice.responder.id if choice else None
            # Who is least loaded (or next in turn) depends on the moment: the responder who got it
            # then is what the proposal would do too, if the queue's skills still admit them.
            if (
                actual
                and actual.get("queue") == queue
                and actual.get("assignee")
                in {r.id for r in responders if queue in r.teams and r.has_skills(target.skills)}
            ):
                assignee = actual["assignee"]
        proposed = {
            "action": decision.action,
            "rule": decision.rule,
            "reason": decision.reason,
            "queue": queue,
            "assignee": assignee,
            "tags": decision.tags,
            "auto_reply_rule": decision.auto_reply_rule,
        }
        if conversation:
            proposed_state[conversation] = (queue, assignee)

        changes = [f for f in COMPARED_FIELDS if actual is not None and f in actual and actual[f] != proposed[f]]
        rows.append(
            {
                "event_id": event.id,
                "type": event.type,
                "provider": event.provider,
                "occurred_at": event.occurred_at.isoformat(),
                "topics": sensed.topics,
                "conversation": conversation,
                "proposed": proposed,
                "actual": actual,
                "not_compared": not_compared,
                "changes": changes,
                "changed": bool(changes),
            }
        )
    compared = sum(1 for r in rows if r["actual"] is not None)
    return {
        "events": rows,
        "compared": compared,
        "changed": sum(1 for r in rows if r["changed"]),
        "not_compared": len(rows) - compared,
        "not_routed": sum(1 for r in rows if (r["actual"] or {}).get("action") == "none"),
    }


def what_happened(
    event: CanonicalEvent,
    derived: dict[tuple[str, str], CanonicalEvent],
    conversation: str | None,
    state: dict[str, tuple[str | None, str | None]],
) -> tuple[dict[str, Any] | None, str | None]:
    """The outcome routing recorded for `event` (only the fields it is known for), or None
    and why it is not known. Updates the conversation's (queue, assignee) in `state`."""
    routed = derived.get((event.id, "routing.assigned")) or derived.get((event.id, "routing.unassigned"))
    requested = derived.get((event.id, "reply.requested"))
    if routed is not None:
        found = routed.attributes
        queue, assignee = found.get("queue"), found.get("assignee")
        if conversation:
            previous = state.get(conversation, (None, None))
            state[conversation] = (queue, assignee or previous[1])  # nobody free: the assignee stays
        return {
            "action": "unassigned" if routed.type == "routing.unassigned" else "assign",
            "rule": found.get("rule"),
            "reason": found.get("reason"),
            "queue": queue,
            "assignee": assignee,
            "tags": list(found.get("tags") or []),
            "auto_reply_rule": found.get("auto_reply_rule"),
        }, None
    if conversation is None:
        return None, OUTSIDE_WINDOW
    if conversation not in state:
        return None, EARLIER_CONVERSATION
    queue, assignee = state[conversation]
    if (queue, assignee) == (None, None) and not requested:
        # Threaded but never decided: with a rule set in force a new conversation is always decided.
        return {
            "action": "none",
            "rule": None,
            "reason": "not routed: no rule set was in force",
            "queue": None,
            "assignee": None,
            "tags": [],
            "auto_reply_rule": None,
        }, None
    # Decided nothing new (a sticky rule, or no rule set): the conversation kept its queue and
    # assignee. Tags of such a decision are not recorded, so they are not compared.
    kept: dict[str, Any] = {
        "action": "kept",
        "rule": None,
        "queue": queue,
        "assignee": assignee,
        "reason": "kept its queue and assignee (a sticky rule, or no rule set in force)",
    }
    if requested is not None:
        kept["auto_reply_rule"] = requested.attributes.get("rule")
    return kept, None
