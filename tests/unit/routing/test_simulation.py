"""Simulating a proposed rule set against past events and what routing did with them."""

from __future__ import annotations

from datetime import UTC, datetime

from functions.admin.simulation import simulate
from switchboard_core.events import CanonicalEvent
from switchboard_core.routing.assignment import Responder
from switchboard_core.routing.rules import RuleSet
from switchboard_core.routing.sensing import Sensor, Taxonomy, Topic
from tests.builders import canonical_event

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def canonical(
    pid: str, text: str, provider: str = "twilio", kind: str = "message.received", **attributes
) -> CanonicalEvent:
    return canonical_event(
        kind, pid, received_at=NOW, provider=provider, connection="c", text=text, attributes=attributes
    )


def test_simulation_compares_proposed_with_actual_and_changes_nothing():
    sms = canonical("1", "my brake pad squeals")
    other = canonical("2", "where is my invoice")
    history = [
        sms,
        other,
        canonical(
            "3",
            "",
            provider="routing",
            kind="routing.unassigned",
            source_event=sms.id,
            queue="front-desk",
            assignee=None,
            rule=None,
        ),
        canonical("4", "", provider="hubspot", kind="contact.updated"),
    ]
    proposal = RuleSet.model_validate(
        {
            "default_team": "front-desk",
            "rules": [
                {
                    "name": "ack-parts",
                    "when": {"topics_any": ["parts"]},
                    "then": {"kind": "auto_reply", "template": "${team} has it"},
                },
                {"name": "parts", "when": {"topics_any": ["parts"]}, "then": {"kind": "assign", "team": "parts"}},
            ],
        }
    )
    sensor = Sensor(Taxonomy(topics=[Topic(name="parts", phrases=["brake pad"])]))
    responders = [Responder(id="pia", tenant="acme", name="Pia", teams=["parts"])]
    report = simulate(proposal, history, sensor, responders)
    rows = {r["event_id"]: r for r in report["events"]}
    assert set(rows) == {sms.id, other.id}  # derived and CRM events are not routed
    assert rows[sms.id]["proposed"] == {
        "action": "assign",
        "rule": "parts",
        "reason": "rule 'parts' (topics_any)",
        "queue": "parts",
        "assignee": "pia",
        "tags": [],
        "auto_reply_rule": "ack-parts",
    }
    assert rows[sms.id]["actual"]["queue"] == "front-desk" and rows[sms.id]["changed"]
    assert rows[sms.id]["actual"]["auto_reply_rule"] is None
    assert rows[sms.id]["changes"] == ["queue", "assignee", "auto_reply_rule"]
    assert rows[other.id]["actual"] is None and rows[other.id]["proposed"]["action"] == "unassigned"
    assert rows[other.id]["not_compared"] and rows[other.id]["proposed"]["auto_reply_rule"] is None
    assert (report["compared"], report["changed"], report["not_compared"]) == (1, 1, 1)
    assert responders[0].load == 0


def derived(source: CanonicalEvent, kind: str, conversation: str, **attributes) -> CanonicalEvent:
    return canonical(
        f"{source.id}:{kind}",
        "",
        provider="routing",
        kind=kind,
        source_event=source.id,
        conversation=conversation,
        **attributes,
    )


PROPOSAL = RuleSet.model_validate(
    {
        "default_team": "front-desk",
        "rules": [
            {"name": "tag-parts", "when": {"topics_any": ["parts"]}, "then": {"kind": "tag", "tags": ["parts"]}},
            {"name": "ack", "then": {"kind": "auto_reply", "template": "Thanks! ${team} has it"}},
            {"name": "keep-agent", "then": {"kind": "sticky"}},
            {"name": "parts", "when": {"topics_any": ["parts"]}, "then": {"kind": "assign", "team": "parts"}},
        ],
    }
)
SENSOR = Sensor(Taxonomy(topics=[Topic(name="parts", phrases=["brake pad"])]))
PIA = Responder(id="pia", tenant="acme", name="Pia", teams=["parts"])


def test_events_routed_without_a_rule_set_are_compared_as_not_routed():
    """Routing threads every message; with no rule set in force it decides nothing (only
    conversation.opened). That is an outcome: queue and assignee none, no tags, no reply."""
    sms = canonical("1", "my brake pad squeals")
    history = [sms, derived(sms, "conversation.opened", "cv_1")]
    report = simulate(PROPOSAL, history, SENSOR, [PIA])
    (row,) = report["events"]
    assert row["actual"]["action"] == "none" and row["actual"]["reason"] == "not routed: no rule set was in force"
    assert row["proposed"]["queue"] == "parts" and row["proposed"]["tags"] == ["parts"]
    assert row["changes"] == ["queue", "assignee", "tags", "auto_reply_rule"] and row["changed"]
    assert (report["compared"], report["changed"], report["not_compared"], report["not_routed"]) == (1, 1, 0, 1)


def test_a_sticky_proposal_follows_the_conversation_and_matches_what_was_kept():
    first, second = canonical("1", "my brake pad squeals"), canonical("2", "hello? the brake pad again")
    history = [
        first,
        derived(first, "conversation.opened", "cv_1"),
        derived(
            first,
            "routing.assigned",
            "cv_1",
            rule="parts",
            queue="parts",
            assignee="pia",
            tags=["parts"],
            auto_reply_rule="ack",
        ),
        derived(first, "reply.requested", "cv_1", rule="ack"),
        second,
        derived(second, "conversation.updated", "cv_1"),
    ]  # sticky: no routing event
    report = simulate(PROPOSAL, history, SENSOR, [PIA])
    rows = {r["event_id"]: r for r in report["events"]}
    assert rows[first.id]["changes"] == [] and rows[first.id]["actual"]["action"] == "assign"
    kept = rows[second.id]
    assert kept["proposed"]["action"] == "sticky" and (kept["proposed"]["queue"], kept["proposed"]["assignee"]) == (
        "parts",
        "pia",
    )
    assert kept["actual"]["action"] == "kept" and (kept["actual"]["queue"], kept["actual"]["assignee"]) == (
        "parts",
        "pia",
    )
    assert "tags" not in kept["actual"] and kept["changes"] == []  # a sticky decision's tags are not recorded
    assert (report["compared"], report["changed"]) == (2, 0)


def test_a_conversation_that_began_before_the_window_is_listed_but_not_compared():
    later = canonical("2", "the brake pad again")
    report = simulate(PROPOSAL, [later, derived(later, "conversation.updated", "cv_9")], SENSOR, [PIA])
    (row,) = report["events"]
    assert row["actual"] is None and "began before" in row["not_compared"]
    assert (report["compared"], report["changed"], report["not_compared"]) == (0, 0, 1)


def test_contact_attributes_recorded_by_routing_feed_the_proposal():
    sms = canonical("1", "hello")
    gold = RuleSet.model_validate(
        {
            "default_team": "front-desk",
            "rules": [
                {
                    "name": "gold",
                    "when": {"contact_attributes": {"tier": "gold"}},
                    "then": {"kind": "assign", "team": "vip"},
                }
            ],
        }
    )
    history = [sms, derived(sms, "conversation.opened", "cv_1", contact={"id": "ct_1", "attributes": {"tier": "gold"}})]
    (row,) = simulate(gold, history, SENSOR, [])["events"]
    assert row["proposed"]["rule"] == "gold" and row["proposed"]["queue"] == "vip"


def test_a_queue_pick_that_depends_on_load_is_not_reported_as_a_change():
    """Pia took the conversation then; today she is busier than Piet. The proposal routes to
    the same queue and Pia is still eligible there: no change (who is least loaded at a
    given moment is not the rule set's doing). A responder the proposal excludes is one."""
    sms = canonical("1", "my brake pad squeals")
    history = [
        sms,
        derived(sms, "conversation.opened", "cv_1"),
        derived(
            sms,
            "routing.assigned",
            "cv_1",
            rule="parts",
            queue="parts",
            assignee="pia",
            tags=["parts"],
            auto_reply_rule="ack",
        ),
    ]
    busy_pia = PIA.model_copy(update={"load": 4})
    piet = Responder(id="piet", tenant="acme", name="Piet", teams=["parts"], skills={"brakes": 3})
    (row,) = simulate(PROPOSAL, history, SENSOR, [busy_pia, piet])["events"]
    assert row["proposed"]["assignee"] == "pia" and row["changes"] == []
    strict = PROPOSAL.model_copy(deep=True)
    strict.rules[3].then.skills = {"brakes": 2}  # Pia has no brakes skill: the proposal could not pick her
    (row,) = simulate(strict, history, SENSOR, [busy_pia, piet])["events"]
    assert row["proposed"]["assignee"] == "piet" and row["changes"] == ["assignee"]
