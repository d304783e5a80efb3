"""Answering from the hub, end to end on the local runtime: a customer's signed webhook in,
routing opens the conversation, staff answer through the admin API, the answers function
sends it through the provider's API (the loopback sandbox), and the provider's status
webhook, called back by the sandbox through ingest, moves it on."""

from __future__ import annotations

import secrets

import pytest

from tests.integration.conftest import wait_for
from tests.integration.test_routing_stories import post_twilio_sms

pytestmark = pytest.mark.integration


def fresh_phone() -> str:
    return f"+1415558{secrets.randbelow(10_000):04d}"  # no other test writes from these


def conversation_of(hub, phone: str) -> str | None:
    for event in hub.logged_events(type="conversation.opened", limit="100"):
        if event["contact"].get("phone") == phone:
            return event["conversation_key"]
    return None


def answer_events(hub, message_id: str, kind: str) -> list[dict]:
    return [
        e
        for e in hub.logged_events(provider="answers", limit="100")
        if e["type"] == kind and e["attributes"].get("message_id") == message_id
    ]


def sent_to(hub, phone: str, text: str) -> list:
    return [m for m in hub.runtime.provider_apis.messages if m.to == phone and m.text == text]


def test_an_sms_is_answered_on_sms_once_and_the_conversation_shows_both_sides(hub):
    phone = fresh_phone()
    post_twilio_sms(hub, phone, "My car broke down on the A7 near exit 12")
    conversation = wait_for(lambda: conversation_of(hub, phone), timeout=30)
    assert conversation, "routing opened no conversation"

    text = f"A tow truck is on its way ({secrets.token_hex(3)})"
    status, queued = hub.admin("POST", f"/admin/conversations/{conversation}/messages", {"text": text})
    assert status == 202, queued
    assert queued["status"] == "queued" and queued["channel"] == "sms" and queued["to"] == phone
    message_id = queued["message_id"]

    sent = wait_for(lambda: sent_to(hub, phone, text), timeout=30)
    assert len(sent) == 1 and sent[0].provider == "twilio"
    assert sent[0].details.get("from") in (None, "+14155550100")
    assert wait_for(lambda: answer_events(hub, message_id, "message.status_updated"), timeout=30)
    (sent_event,) = answer_events(hub, message_id, "message.sent")
    assert sent_event["attributes"]["automated"] is False and sent_event["attributes"]["author"]["role"] == "admin"
    (status_event,) = answer_events(hub, message_id, "message.status_updated")
    assert status_event["attributes"]["state"] == "sent"
    assert status_event["attributes"]["provider_message_id"] == sent[0].message_id

    status, listed = hub.admin("GET", f"/admin/conversations/{conversation}/messages")
    assert status == 200
    sides = [(m["direction"], m.get("text")) for m in listed["messages"]]
    assert ("inbound", "My car broke down on the A7 near exit 12") in sides
    assert sides[-1] == ("outbound", text) and listed["messages"][-1]["state"] == "sent"
    assert len(sent_to(hub, phone, text)) == 1  # still exactly one


def test_an_opted_out_sms_contact_gets_409_naming_the_opt_out(hub):
    phone = fresh_phone()
    post_twilio_sms(hub, phone, "Where is my order?")
    conversation = wait_for(lambda: conversation_of(hub, phone), timeout=30)
    assert conversation
    post_twilio_sms(hub, phone, "STOP")

    def refused() -> dict | None:
        status, answer = hub.admin("POST", f"/admin/conversations/{conversation}/messages", {"text": "Hello?"})
        return answer if status == 409 else None

    answer = wait_for(refused, timeout=30, interval=0.5)
    assert answer and answer["error"]["code"] == "opted_out" and "opted out" in answer["error"]["message"]
    assert sent_to(hub, phone, "Hello?") == []


def test_bad_requests_name_the_problem(hub):
    status, answer = hub.admin("POST", "/admin/conversations/cv_nope/messages", {"text": "hi"})
    assert status == 404 and answer["error"]["code"] == "unknown_conversation"
    status, answer = hub.admin("POST", "/admin/conversations/cv_nope/messages", {"txt": "hi"})
    assert status == 400


def test_switchboard_reply_sends_one_and_reports_its_outcome(hub, capsys):
    from infra.local.cli import main

    phone = fresh_phone()
    post_twilio_sms(hub, phone, "Is the shop open on Sunday?")
    conversation = wait_for(lambda: conversation_of(hub, phone), timeout=30)
    assert conversation
    capsys.readouterr()
    state = ["--state-dir", str(hub.runtime.state.path)]
    assert main([*state, "reply", conversation, "Yes, 10 to 4", "--wait", "20"]) == 0
    out = "".join(line for line in capsys.readouterr().out.splitlines(keepends=True) if not line.startswith('{"'))
    assert f"on sms to {phone}" in out and "\nsent" in out
    assert len(sent_to(hub, phone, "Yes, 10 to 4")) == 1
    assert main([*state, "reply", "cv_missing", "hello", "--wait", "0"]) != 0
