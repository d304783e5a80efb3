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


# Numbers handed out in this process: the modules of one worker share its hub, and a number drawn
# twice would thread into another test's conversation (one whose customer texted STOP, say).
_HANDED_OUT: set[str] = set()


def fresh_phone() -> str:
    """A number no other test on this worker's hub has used (no other test writes from +1415558...)."""
    while (phone := f"+1415558{secrets.randbelow(10_000):04d}") in _HANDED_OUT:
        pass
    _HANDED_OUT.add(phone)
    return phone


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
    # Answer only once routing has recorded the STOP: an answer before it is rightly sent.
    contact_id = hub.admin("GET", f"/admin/conversations/{conversation}")[1]["contact_id"]
    contact = f"/admin/contacts/{contact_id}"
    assert wait_for(lambda: hub.admin("GET", contact)[1]["consent"].get("opted_out"), timeout=30)

    status, answer = hub.admin("POST", f"/admin/conversations/{conversation}/messages", {"text": "Hello?"})
    assert status == 409, answer
    assert answer["error"]["code"] == "opted_out" and "opted out" in answer["error"]["message"]
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


# --- the acceptance stories: WhatsApp, an X mention, a Zendesk ticket comment -------------------

ANSWERABLE = ("message.received", "mention.created", "ticket.comment_added", "comment.created")


def post_signed(hub, signed) -> None:
    status, _, body = hub.request(signed.method, signed.url, signed.body, signed.headers)
    assert status in (200, 204), body


def new_customer_event(hub, provider: str, send) -> dict:
    """Post what `send()` posts; the customer's event it became (the newest unseen one)."""
    before = {e["id"] for e in hub.logged_events(provider=provider, limit="100")}
    send()

    def arrived() -> list[dict]:
        return [
            e
            for e in hub.logged_events(provider=provider, limit="100")
            if e["id"] not in before and e["type"] in ANSWERABLE
        ]

    found = wait_for(arrived, timeout=30)
    assert found, f"no new {provider} event"
    return found[0]


def conversation_for(hub, event_id: str) -> str:
    def threaded() -> str | None:
        for kind in ("conversation.opened", "conversation.updated"):
            for event in hub.logged_events(type=kind, limit="100"):
                if event["attributes"].get("source_event") == event_id:
                    return event["attributes"]["conversation"]
        return None

    conversation = wait_for(threaded, timeout=30)
    assert conversation, f"routing threaded no conversation for {event_id}"
    return conversation


def sandbox_status(hub, provider_message_id: str, state: str, reason: str | None = None) -> dict:
    import json
    import urllib.request

    order = json.dumps({"message_id": provider_message_id, "state": state, "reason": reason}).encode()
    request = urllib.request.Request(
        f"{hub.runtime.provider_apis_url}/_sandbox/status",
        data=order,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def state_event(hub, message_id: str, state: str) -> dict | None:
    return next(
        (e for e in answer_events(hub, message_id, "message.status_updated") if e["attributes"]["state"] == state),
        None,
    )


def timeline_types(hub, conversation: str) -> list[str]:
    status, found = hub.admin("GET", f"/admin/conversations/{conversation}")
    assert status == 200
    status, timeline = hub.admin("GET", f"/admin/contacts/{found['contact_id']}/timeline?limit=50")
    assert status == 200
    return [e["type"] for e in timeline["events"] if e.get("conversation") == conversation]


def answered_and_delivered(hub, provider: str, conversation: str, text: str, **body) -> tuple[dict, object]:
    """Answer through the API; the one request the sandbox got; then its delivery report comes back."""
    status, queued = hub.admin("POST", f"/admin/conversations/{conversation}/messages", {"text": text, **body})
    assert status == 202, queued
    message_id = queued["message_id"]
    sent = wait_for(
        lambda: [m for m in hub.runtime.provider_apis.messages if m.provider == provider and m.text == text]
    )
    assert sent and len(sent) == 1, f"{provider}: expected one request, got {sent}"
    assert wait_for(lambda: state_event(hub, message_id, "sent"), timeout=30)
    assert sandbox_status(hub, sent[0].message_id, "delivered")["hub_status"] in (200, 204)
    delivered = wait_for(lambda: state_event(hub, message_id, "delivered"), timeout=30)
    assert delivered, f"{provider}: no delivered status threaded onto {message_id}"
    assert delivered["attributes"]["provider_message_id"] == sent[0].message_id
    types = wait_for(lambda: (t := timeline_types(hub, conversation)) and "message.status_updated" in t and t)
    assert types and "message.sent" in types and "message.status_updated" in types, types
    assert len([m for m in hub.runtime.provider_apis.messages if m.text == text]) == 1  # still one
    return queued, sent[0]


def whatsapp(hub, wa_id: str, text: str, at: float | None = None) -> None:
    import hashlib
    import hmac
    import json
    import time

    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "1",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {"display_phone_number": "15550100100", "phone_number_id": "3749"},
                                "contacts": [{"profile": {"name": "Ana"}, "wa_id": wa_id}],
                                "messages": [
                                    {
                                        "from": wa_id,
                                        "id": "wamid." + secrets.token_hex(12),
                                        "timestamp": str(int(at if at is not None else time.time())),
                                        "type": "text",
                                        "text": {"body": text},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()
    secret = hub.connection("meta")["credentials"]["app_secret"].encode()
    signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    status, _, _ = hub.request(
        "POST", hub.webhook_url("meta"), body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    )
    assert status == 200


def test_a_whatsapp_message_is_answered_on_whatsapp_and_delivered(hub):
    wa_id = f"1415557{secrets.randbelow(10_000):04d}"
    event = new_customer_event(hub, "meta", lambda: whatsapp(hub, wa_id, "Is my parcel still coming today?"))
    conversation = conversation_for(hub, event["id"])
    text = f"Yes, before 6 pm ({secrets.token_hex(3)})"
    queued, sent = answered_and_delivered(hub, "meta", conversation, text)
    assert queued["channel"] == "whatsapp" and sent.to == wa_id


def test_an_x_mention_is_answered_with_a_public_reply_and_delivered(hub):
    from infra.local.samples import build_sample

    credentials = hub.connection("x")["credentials"]
    event = new_customer_event(
        hub, "x", lambda: post_signed(hub, build_sample("x", "mention", credentials, hub.webhook_url("x")))
    )
    conversation = conversation_for(hub, event["id"])
    text = f"Sorry about that, we are on it ({secrets.token_hex(3)})"
    queued, sent = answered_and_delivered(hub, "x", conversation, text)
    assert queued["channel"] == "x" and sent.details.get("in_reply_to_tweet_id") == event["attributes"].get(
        "id_str", sent.details.get("in_reply_to_tweet_id")
    )


def test_a_zendesk_ticket_comment_is_answered_on_the_ticket_and_delivered(hub):
    from infra.local.samples import build_sample

    credentials = hub.connection("zendesk")["credentials"]
    event = new_customer_event(
        hub,
        "zendesk",
        lambda: post_signed(hub, build_sample("zendesk", "ticket-comment", credentials, hub.webhook_url("zendesk"))),
    )
    conversation = conversation_for(hub, event["id"])
    text = f"We have refunded the order ({secrets.token_hex(3)})"
    queued, sent = answered_and_delivered(hub, "zendesk", conversation, text)
    ticket = event["conversation_key"].rsplit(":", 1)[-1]
    assert queued["channel"] == "zendesk" and sent.to == ticket and sent.details["public"] is True


def test_an_answer_outside_the_whatsapp_window_is_409_naming_it_and_a_template_goes_out(hub):
    import time

    wa_id = f"1415557{secrets.randbelow(10_000):04d}"
    two_days_ago = time.time() - 2 * 24 * 3600
    event = new_customer_event(hub, "meta", lambda: whatsapp(hub, wa_id, "Hello?", at=two_days_ago))
    conversation = conversation_for(hub, event["id"])
    status, refused = hub.admin("POST", f"/admin/conversations/{conversation}/messages", {"text": "Sorry for the wait"})
    assert status == 409 and refused["error"]["code"] == "whatsapp_window_closed", refused
    assert "24" in refused["error"]["message"] and refused["error"]["details"].get("window_closed_at")
    template = {"name": "order_update", "language": "en_US", "parameters": ["4417"]}
    status, queued = hub.admin(
        "POST", f"/admin/conversations/{conversation}/messages", {"text": "Order 4417 update", "template": template}
    )
    assert status == 202, queued
    assert wait_for(lambda: state_event(hub, queued["message_id"], "sent"), timeout=30)


def test_a_failed_send_carries_the_providers_reason_and_a_retry_sends_it_again(hub):
    phone = fresh_phone()
    post_twilio_sms(hub, phone, "Can you call me back?")
    conversation = wait_for(lambda: conversation_of(hub, phone), timeout=30)
    assert conversation
    text = f"Calling you at 3 pm ({secrets.token_hex(3)})"
    status, queued = hub.admin("POST", f"/admin/conversations/{conversation}/messages", {"text": text})
    assert status == 202
    message_id = queued["message_id"]
    sent = wait_for(lambda: sent_to(hub, phone, text), timeout=30)
    assert sent and wait_for(lambda: state_event(hub, message_id, "sent"), timeout=30)
    sandbox_status(hub, sent[0].message_id, "failed", "30003")
    failed = wait_for(lambda: state_event(hub, message_id, "failed"), timeout=30)
    assert failed and failed["attributes"]["reason"].startswith("twilio_30003"), failed
    status, retried = hub.admin("POST", f"/admin/conversations/{conversation}/messages/{message_id}/retry")
    assert status == 202 and retried["status"] == "queued"
    assert wait_for(lambda: len(sent_to(hub, phone, text)) == 2, timeout=30)
    resent = wait_for(
        lambda: [
            e
            for e in answer_events(hub, message_id, "message.status_updated")
            if e["attributes"]["state"] == "sent" and e["attributes"]["attempt"] == 2
        ],
        timeout=30,
    )
    assert resent
    status, again = hub.admin("POST", f"/admin/conversations/{conversation}/messages/{message_id}/retry")
    assert status == 409 and again["error"]["code"] == "not_failed"
