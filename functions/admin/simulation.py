"""Simulation: what a proposed rule set would have done with past events, next to what
happened, without changing anything (no capacity taken, nothing written)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from switchboard_core.routing.assignment import Responder, choose_in_queue, choose_nearest
from switchboard_core.routing import ROUTING_PROVIDER, is_conversational
from switchboard_core.routing.rules import AssignNearest, RuleSet, decide
from switchboard_core.routing.sensing import Sensor
from switchboard_core.events import CanonicalEvent


def simulate(rule_set: RuleSet, events: Iterable[CanonicalEvent], sensor: Sensor,
             responders: list[Responder]) -> dict[str, Any]:
    """One row per past conversational event: the proposed decision and the one taken."""
    events = list(events)
    actual = {e.attributes.get("source_event"): e for e in events
              if e.provider == ROUTING_PROVIDER and e.type in ("routing.assigned", "routing.unassigned")}
    rows: list[dict[str, Any]] = []
    for event in events:
        if not is_conversational(event):
            continue
        sensed = sensor.sense(event)
        decision = decide(rule_set, event, sensed, {}, has_assignee=False, at=event.occurred_at)
        proposed: dict[str, Any] = {"action": decision.action, "rule": decision.rule, "reason": decision.reason,
                                    "queue": None, "assignee": None, "tags": decision.tags,
                                    "auto_reply_rule": decision.auto_reply_rule}
        target = decision.target
        if isinstance(target, AssignNearest):
            choice = choose_nearest(target, responders, sensed.location, event.occurred_at)
            proposed |= {"queue": target.team, "assignee": choice.responder.id if choice else None}
        elif target is not None:
            choice = choose_in_queue(target, responders, event.occurred_at)
            proposed |= {"queue": target.team, "assignee": choice.responder.id if choice else None}
        happened = actual.get(event.id)
        taken = None if happened is None else {
            "action": "unassigned" if happened.type == "routing.unassigned" else "assign",
            "rule": happened.attributes.get("rule"), "queue": happened.attributes.get("queue"),
            "assignee": happened.attributes.get("assignee"),
            "auto_reply_rule": happened.attributes.get("auto_reply_rule")}
        rows.append({"event_id": event.id, "type": event.type, "provider": event.provider,
                     "topics": sensed.topics, "proposed": proposed, "actual": taken,
                     "changed": taken is not None and (taken["queue"], taken["assignee"])
                     != (proposed["queue"], proposed["assignee"])})
    return {"events": rows, "compared": sum(1 for r in rows if r["actual"] is not None),
            "changed": sum(1 for r in rows if r["changed"])}
