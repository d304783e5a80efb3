"""Ingest's answers to Twilio Voice: a ringing inbound call and an unanswered Dial are held
(valid TwiML with hold music), everything else gets empty TwiML; a Dial action callback is
call.dial_ended, one event per dial."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from switchboard_core.providers import get_adapter
from switchboard_core.providers.twilio import EMPTY_TWIML
from tests.unit.calls.test_twiml import parse
from tests.unit.providers.test_provider_twilio import NOW, TOKEN, signed_form

CALL = "CA" + "a" * 32
RINGING = {
    "CallSid": CALL,
    "AccountSid": "AC" + "1" * 32,
    "From": "+14155550143",
    "To": "+14155550100",
    "CallStatus": "ringing",
    "Direction": "inbound",
    "ApiVersion": "2010-04-01",
}


def answer(params: dict[str, str]) -> str:
    response = get_adapter("twilio").success_response(signed_form(urlencode(params).encode()))
    assert (response.status, response.content_type) == (200, "text/xml")
    return response.body


def test_a_ringing_inbound_call_is_held_then_offered_voicemail_on_the_same_webhook():
    root = parse(answer(RINGING))
    assert [e.tag for e in root] == ["Say", "Play", "Say", "Record"]
    assert root.find("Record").get("action") == "https://hub.example.com/webhooks/twilio/conn_01HZX"  # type: ignore[union-attr]


@pytest.mark.parametrize("status", ["no-answer", "busy", "failed"])
def test_an_unanswered_dial_keeps_the_caller_holding(status):
    root = parse(
        answer({**RINGING, "CallStatus": "in-progress", "DialCallStatus": status, "DialCallSid": "CA" + "b" * 32})
    )
    assert "trying someone else" in (root.find("Say").text or "")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "params",
    [
        {**RINGING, "CallStatus": "completed"},  # status callback
        {**RINGING, "CallStatus": "in-progress", "DialCallStatus": "completed"},  # the responder took it: hang up after
        {**RINGING, "Direction": "outbound-api"},  # a call the business placed
        {**RINGING, "RecordingSid": "RE" + "c" * 32, "RecordingUrl": "https://api.twilio.com/r"},  # the voicemail
        {"MessageSid": "SM" + "d" * 32, "From": "+1415", "To": "+1416", "Body": "hi"},
    ],
)
def test_other_webhooks_keep_the_empty_answer(params):
    assert answer(params) == EMPTY_TWIML


def test_a_dial_action_callback_is_call_dial_ended_with_one_id_per_dial():
    adapter = get_adapter("twilio")
    first = {**RINGING, "CallStatus": "in-progress", "DialCallStatus": "no-answer", "DialCallSid": "CA" + "b" * 32}
    second = {**first, "DialCallSid": "CA" + "c" * 32}
    events = [adapter.normalise(signed_form(urlencode(p).encode()))[0] for p in (first, second)]
    assert [e.type for e in events] == ["call.dial_ended", "call.dial_ended"]
    assert events[0].provider_event_id == f"{CALL}:dial:{'CA' + 'b' * 32}"
    assert events[0].provider_event_id != events[1].provider_event_id
    assert events[0].conversation_key == f"twilio:call:{CALL}" and events[0].contact.phone == "+14155550143"
    ids = [adapter.delivery_id(signed_form(urlencode(p).encode())) for p in (first, second)]
    assert ids == [e.provider_event_id for e in events]


def test_a_whisper_request_says_its_signed_text_and_is_not_a_call_to_route():
    from switchboard_core.calls import twiml

    adapter = get_adapter("twilio")
    url = "https://hub.example.com/webhooks/twilio/conn_01HZX?" + urlencode(
        {twiml.WHISPER_PARAM: "A call about towing"}
    )
    child = {
        "CallSid": "CA" + "e" * 32,
        "ParentCallSid": CALL,
        "CallStatus": "in-progress",
        "Direction": "outbound-dial",
        "From": "+14155550100",
        "To": "+494310001",
    }
    request = signed_form(urlencode(child).encode(), url=url)
    root = parse(adapter.success_response(request).body)
    assert [e.tag for e in root] == ["Say"] and root.findtext("Say") == "A call about towing"
    [event] = adapter.normalise(adapter.verified(request, {"auth_token": TOKEN}, NOW))
    assert event.type == "provider.notification" and event.attributes["kind"] == "twilio.whisper"
    assert event.conversation_key == f"twilio:call:{CALL}"
    assert adapter.delivery_id(request) == event.provider_event_id == f"{'CA' + 'e' * 32}:whisper"
