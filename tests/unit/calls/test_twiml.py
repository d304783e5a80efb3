"""The TwiML the hub answers a live call with: parsed, and checked against the verbs and
attributes Twilio documents for each (https://www.twilio.com/docs/voice/twiml)."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

from switchboard_core.calls import twiml

# Verb -> the attributes Twilio documents for it (the subset this module may use).
ALLOWED = {
    "Response": set(),
    "Say": {"voice", "loop", "language"},
    "Play": {"loop", "digits"},
    "Pause": {"length"},
    "Dial": {
        "action",
        "method",
        "timeout",
        "callerId",
        "answerOnBridge",
        "hangupOnStar",
        "timeLimit",
        "record",
        "ringTone",
    },
    "Number": {"url", "method", "sendDigits", "statusCallback", "statusCallbackEvent", "statusCallbackMethod"},
    "Record": {"action", "method", "timeout", "finishOnKey", "maxLength", "playBeep", "trim", "transcribe"},
    "Hangup": set(),
}
NESTING = {"Response": {"Say", "Play", "Pause", "Dial", "Record", "Hangup"}, "Dial": {"Number"}}


def parse(document: str) -> ET.Element:
    assert document.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(document)  # noqa: S314 - the hub's own TwiML, not untrusted input
    assert root.tag == "Response"
    for element in root.iter():
        assert element.tag in ALLOWED, element.tag
        assert set(element.attrib) <= ALLOWED[element.tag], (element.tag, element.attrib)
        for child in element:
            assert child.tag in NESTING.get(element.tag, set()), (element.tag, child.tag)
    return root


HOOK = "https://hub.example/webhooks/twilio/con_1"


def test_holding_says_a_message_plays_the_hold_music_then_offers_voicemail(monkeypatch):
    monkeypatch.delenv(twiml.HOLD_MUSIC_ENV, raising=False)
    root = parse(twiml.holding(voicemail_action=HOOK))
    say, play, sorry, record = list(root)
    assert say.tag == "Say" and "one moment" in (say.text or "")
    assert (
        play.tag == "Play" and play.get("loop") == str(twiml.HOLD_PLAYS) and play.text == twiml.DEFAULT_HOLD_MUSIC_URL
    )
    assert int(play.get("loop") or 0) > 0  # bounded: a call nobody routes does not hold forever
    assert sorry.tag == "Say" and record.tag == "Record" and record.get("action") == HOOK


def test_the_hold_music_is_configurable(monkeypatch):
    monkeypatch.setenv(twiml.HOLD_MUSIC_ENV, "https://cdn.example.com/hold.mp3")
    root = parse(twiml.holding(voicemail_action=HOOK))
    assert root.find("Play").text == "https://cdn.example.com/hold.mp3"  # type: ignore[union-attr]


def test_dial_puts_the_call_through_with_a_callback_and_caller_id():
    root = parse(twiml.dial("+14155550199", action_url="https://hub.example/webhooks/twilio/con_1", caller_id="+1415"))
    (dial,) = list(root)
    assert dial.attrib == {
        "action": "https://hub.example/webhooks/twilio/con_1",
        "method": "POST",
        "timeout": str(twiml.DIAL_TIMEOUT_SECONDS),
        "callerId": "+1415",
    }
    (number,) = list(dial)
    assert number.tag == "Number" and number.text == "+14155550199"
    assert "callerId" not in parse(twiml.dial("+1", action_url="https://h/x", caller_id=None)).find("Dial").attrib  # type: ignore[union-attr]


def test_voicemail_records_after_a_message():
    root = parse(twiml.voicemail("https://hub.example/webhooks/twilio/con_1"))
    say, record = list(root)
    assert say.tag == "Say" and record.tag == "Record"
    assert record.get("action") == "https://hub.example/webhooks/twilio/con_1" and record.get("playBeep") == "true"


@pytest.mark.parametrize("hostile", ["</Say><Hangup/>", "<![CDATA[x]]>", "a & b < c"])
def test_text_cannot_break_out_of_its_element(hostile):
    root = parse(twiml.holding(message=hostile, voicemail_action=HOOK))
    assert root.find("Say").text == hostile and root.find("Hangup") is None  # type: ignore[union-attr]
