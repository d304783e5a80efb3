"""Simulating a proposed rule set against past events and what routing did with them."""

from __future__ import annotations

from datetime import UTC, datetime

from switchboard_core.routing.assignment import Responder
from switchboard_core.routing.rules import RuleSet
from switchboard_core.routing.sensing import Sensor, Taxonomy, Topic
from functions.admin.simulation import simulate
from switchboard_core.events import CanonicalEvent, Channel, EventDraft

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def canonical(pid: str, text: str, provider: str = "twilio", kind: str = "message.received",
              **attributes) -> CanonicalEvent:
    return CanonicalEvent.from_draft(EventDraft(type=kind, provider_event_id=pid, text=text, attributes=attributes),
                                     provider=provider, connection="c", tenant="acme", channel=Channel.TELEPHONY,
                                     received_at=NOW, raw_ref=None)


def test_simulation_compares_proposed_with_actual_and_changes_nothing():
    sms = canonical("1", "my brake pad squeals")
    other = canonical("2", "where is my invoice")
    history = [sms, other,
               canonical("3", "", provider="routing", kind="routing.unassigned", source_event=sms.id,
                         queue="front-desk", assignee=None, rule=None),
               canonical("4", "", provider="hubspot", kind="contact.updated")]
    proposal = RuleSet.model_validate({"default_team": "front-desk", "rules": [
        {"name": "ack-parts", "when": {"topics_any": ["parts"]},
         "then": {"kind": "auto_reply", "template": "${team} has it"}},
        {"name": "parts", "when": {"topics_any": ["parts"]}, "then": {"kind": "assign", "team": "parts"}}]})
    sensor = Sensor(Taxonomy(topics=[Topic(name="parts", phrases=["brake pad"])]))
    responders = [Responder(id="pia", tenant="acme", name="Pia", teams=["parts"])]
    report = simulate(proposal, history, sensor, responders)
    rows = {r["event_id"]: r for r in report["events"]}
    assert set(rows) == {sms.id, other.id}  # derived and CRM events are not routed
    assert rows[sms.id]["proposed"] == {"action": "assign", "rule": "parts", "reason": "rule 'parts' (topics_any)",
                                        "queue": "parts", "assignee": "pia", "tags": [],
                                        "auto_reply_rule": "ack-parts"}
    assert rows[sms.id]["actual"]["queue"] == "front-desk" and rows[sms.id]["changed"]
    assert rows[sms.id]["actual"]["auto_reply_rule"] is None
    assert rows[other.id]["actual"] is None and rows[other.id]["proposed"]["action"] == "unassigned"
    assert rows[other.id]["proposed"]["auto_reply_rule"] is None
    assert (report["compared"], report["changed"]) == (1, 1)
    assert responders[0].load == 0
