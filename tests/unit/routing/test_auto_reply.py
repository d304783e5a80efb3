"""Auto-reply rules in routing: templates validated when saved, rendered with the
assignment, addressed to the customer's channel, and their outcomes on the timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest

from functions.routing.logic import route
from switchboard_core.events import CanonicalEvent, Channel, Contact
from switchboard_core.routing.rules import RuleSet, validation_problems
from tests.builders import canonical_event
from tests.unit.routing.test_route import NOW, RULES, by_type, canonical, deps  # noqa: F401 - the deps fixture

ACK = {
    "name": "ack",
    "when": {"channels": ["telephony", "social"]},
    "then": {
        "kind": "auto_reply",
        "template": "Hi ${name}, ${team} has it. ${assignee} replies within ${reply_within}.",
    },
}
TWILIO_FIELDS = {"From": "+14155550123", "To": "+14155550100", "MessageSid": "SM1", "AccountSid": "AC1"}


@pytest.fixture
def with_auto_reply(deps):  # noqa: F811 - pytest fixture injection
    current = deps.config.rules("acme")
    deps.config.put_rules("acme", RuleSet.model_validate({**RULES, "rules": [ACK, *RULES["rules"]]}), current[1], NOW)
    return deps


def sms(n: int, text: str, **overrides) -> CanonicalEvent:
    return canonical(
        n,
        text,
        provider="twilio",
        channel=Channel.TELEPHONY,
        contact=Contact(phone="+14155550123"),
        key="twilio:AC1:+14155550100|+14155550123",
        **(TWILIO_FIELDS | overrides),
    )


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("Hello ${customer}", "unknown placeholder(s) customer"),
        ("Costs $5", "invalid placeholder"),
        ("", "at least 1 character"),
    ],
)
def test_bad_templates_are_refused_naming_the_field(template, problem):
    rule_set = {**RULES, "rules": [{"name": "ack", "then": {"kind": "auto_reply", "template": template}}]}
    problems = validation_problems(rule_set)
    assert [p["field"] for p in problems] == ["rules.0.then.auto_reply.template"], problems
    assert problem in problems[0]["problem"]


def test_dollars_and_every_known_placeholder_are_accepted():
    template = "Costs $$5. ${name} ${team} ${assignee} ${reply_within} ${conversation} ${channel}"
    rule_set = RuleSet.model_validate(
        {**RULES, "rules": [{"name": "a", "then": {"kind": "auto_reply", "template": template}}]}
    )
    assert rule_set.rules[0].then.render({"team": "parts"}).startswith("Costs $5.  parts")


def test_reply_requested_is_rendered_with_the_assignment_and_addressed_to_the_sender(with_auto_reply):
    events = by_type(route(sms(1, "My BP-200 brake pad squeals"), with_auto_reply, NOW, lambda _: None))
    requested = events["reply.requested"]
    assert requested.source == "switchboard.routing"
    assert requested.text == "Hi , parts has it. Pia replies within 1 hour."
    attributes = requested.attributes
    assert attributes["rule"] == "ack" and attributes["template"] == ACK["then"]["template"]
    assert attributes["reply_to"] == {
        "provider": "twilio",
        "connection": "con_1",
        "fields": {"to": "+14155550123", "from": "+14155550100"},
    }
    assert attributes["conversation"] == events["routing.assigned"].attributes["conversation"]
    assert attributes["contact"]["id"] and attributes["source_provider"] == "twilio"
    assert events["routing.assigned"].attributes["auto_reply_rule"] == "ack"


def test_the_reply_names_the_assignee_without_reading_the_responder_again(with_auto_reply, monkeypatch):
    read: list[str] = []
    reads = with_auto_reply.config.responder
    monkeypatch.setattr(with_auto_reply.config, "responder", lambda tenant, rid: read.append(rid) or reads(tenant, rid))
    events = by_type(route(sms(1, "My BP-200 brake pad squeals"), with_auto_reply, NOW, lambda _: None))
    assert events["reply.requested"].text == "Hi , parts has it. Pia replies within 1 hour."
    assert read == []  # `assign` had read Pia's profile to choose her


def test_sticky_messages_still_request_the_reply_and_the_replies_function_sends_it_once(with_auto_reply):
    route(sms(1, "My BP-200 brake pad squeals"), with_auto_reply, NOW, lambda _: None)
    later = by_type(route(sms(2, "Any news?"), with_auto_reply, NOW + timedelta(minutes=5), lambda _: None))
    assert set(later) == {"conversation.updated", "reply.requested"}


def test_a_channel_without_a_sender_requests_with_no_address(with_auto_reply):
    event = canonical(
        3,
        "The brake pad I bought is broken",
        provider="x",
        channel=Channel.SOCIAL,
        contact=Contact(phone="+14155550199"),
        key="x:dm:1",
    )
    requested = by_type(route(event, with_auto_reply, NOW, lambda _: None))["reply.requested"]
    assert requested.attributes["reply_to"] is None and requested.attributes["source_provider"] == "x"


def test_redelivery_requests_the_same_reply(with_auto_reply):
    first = by_type(route(sms(1, "brake pad"), with_auto_reply, NOW, lambda _: None))["reply.requested"]
    again = [e for e in route(sms(1, "brake pad"), with_auto_reply, NOW, lambda _: None) if e.type == "reply.requested"]
    assert again == [] or again[0].id == first.id


def test_no_auto_reply_rule_no_request(deps):  # noqa: F811
    assert "reply.requested" not in by_type(route(sms(1, "brake pad"), deps, NOW, lambda _: None))


def test_a_sent_reply_goes_on_the_timeline_but_does_not_meet_the_sla(with_auto_reply):
    events = by_type(route(sms(1, "brake pad"), with_auto_reply, NOW, lambda _: None))
    conversation_id = events["reply.requested"].attributes["conversation"]
    contact_id = events["reply.requested"].attributes["contact"]["id"]
    sent = canonical_event(
        "reply.sent",
        "r1:reply",
        received_at=NOW + timedelta(seconds=2),
        provider="replies",
        connection="con_1",
        text="Hi , parts has it.",
        contact=Contact(phone="+14155550123"),
        conversation_key=conversation_id,
        attributes={"conversation": conversation_id, "provider_message_id": "SM9"},
    )
    assert route(sent, with_auto_reply, NOW, lambda _: None) == []
    from switchboard_core import aws

    item = aws.resource("dynamodb").Table("contacts-t").get_item(Key={"pk": f"TIMELINE#{sent.id}"})["Item"]
    assert item["contact_id"] == contact_id
    assert (item["entry"]["type"], item["entry"]["conversation"]) == ("reply.sent", conversation_id)
    conversation = with_auto_reply.conversations.get(conversation_id)
    assert conversation.sla_due_at is not None and conversation.first_response_at is None


@pytest.mark.parametrize("kind", ["call.completed", "call.in_progress", "message.updated", "ticket.updated"])
def test_progress_and_edits_ask_for_no_reply(with_auto_reply, kind):
    event = canonical_event(
        kind,
        f"{kind}-1",
        received_at=NOW,
        connection="con_1",
        text="brake pad",
        contact=Contact(phone="+14155550123"),
        conversation_key="twilio:call:CA1",
        attributes=TWILIO_FIELDS,
    )
    assert "reply.requested" not in by_type(route(event, with_auto_reply, NOW, lambda _: None))


@pytest.mark.parametrize(("automated", "answered"), [(True, False), (False, True)])
def test_only_a_persons_message_sent_meets_the_sla(with_auto_reply, automated, answered):
    events = by_type(route(sms(1, "brake pad"), with_auto_reply, NOW, lambda _: None))
    conversation_id = events["reply.requested"].attributes["conversation"]
    echo = canonical_event(
        "message.sent",
        "out1",
        received_at=NOW + timedelta(seconds=3),
        connection="con_1",
        text="Hi , parts has it.",
        contact=Contact(phone="+14155550123"),
        conversation_key="twilio:AC1:+14155550100|+14155550123",
        attributes={"automated": True} if automated else {},
    )
    route(echo, with_auto_reply, NOW, lambda _: None)
    assert (with_auto_reply.conversations.get(conversation_id).first_response_at is not None) is answered


def test_a_rule_set_saved_before_placeholders_were_checked_still_routes(deps):  # noqa: F811
    import json

    legacy = {
        **RULES,
        "rules": [{"name": "fee", "then": {"kind": "auto_reply", "template": "Fee is $5 ${oops}"}}, *RULES["rules"]],
    }
    assert validation_problems(legacy)  # refused if saved today...
    stored = RuleSet.stored(json.dumps(legacy))  # ...but read back as it was stored
    assert stored.rules[0].then.render({}) == "Fee is $5 ${oops}"


def test_rendered_text_is_capped_whatever_the_names():
    rule_set = RuleSet.model_validate(
        {**RULES, "rules": [{"name": "a", "then": {"kind": "auto_reply", "template": "${name}" * 200}}]}
    )
    text = rule_set.rules[0].then.render({"name": "N" * 5000})
    assert len(text) == 1600 and text.endswith("…")


def test_a_repeat_reply_skip_stays_off_the_timeline(with_auto_reply):
    from switchboard_core import aws

    events = by_type(route(sms(1, "brake pad"), with_auto_reply, NOW, lambda _: None))
    conversation_id = events["reply.requested"].attributes["conversation"]
    outcomes = {}
    for reason in ("already_sent", "opted_out"):
        outcome = canonical_event(
            "reply.skipped",
            f"{reason}:reply",
            received_at=NOW,
            provider="replies",
            connection="con_1",
            contact=Contact(phone="+14155550123"),
            conversation_key=conversation_id,
            attributes={"conversation": conversation_id, "reason": reason},
        )
        route(outcome, with_auto_reply, NOW, lambda _: None)
        outcomes[reason] = outcome
    table = aws.resource("dynamodb").Table("contacts-t")
    assert "Item" not in table.get_item(Key={"pk": f"TIMELINE#{outcomes['already_sent'].id}"})
    assert "Item" in table.get_item(Key={"pk": f"TIMELINE#{outcomes['opted_out'].id}"})
