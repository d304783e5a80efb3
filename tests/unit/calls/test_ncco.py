"""The NCCOs the hub gives a live Vonage call, checked against the actions and options Vonage
documents for each (https://developer.vonage.com/en/voice/voice-api/ncco-reference)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from vonage_voice.models import ncco as sdk

from switchboard_core.calls import ncco, twiml

# Action -> the options Vonage documents for it (the subset this module may use).
ALLOWED = {
    "talk": {"text", "bargeIn", "loop", "level", "language", "style", "premium"},
    "stream": {"streamUrl", "level", "bargeIn", "loop"},
    "connect": {
        "endpoint",
        "from",
        "randomFromNumber",
        "eventType",
        "timeout",
        "limit",
        "machineDetection",
        "eventUrl",
        "eventMethod",
        "ringbackTone",
    },
    "record": {
        "format",
        "split",
        "channels",
        "endOnSilence",
        "endOnKey",
        "timeOut",
        "beepStart",
        "eventUrl",
        "eventMethod",
    },
}
WEBHOOK = "https://hub.example.com/webhooks/vonage/con_1"


def check(document: ncco.Ncco) -> list[str]:
    """The document's action names, after checking each against Vonage's reference."""
    assert isinstance(document, list) and document
    json.dumps(document)  # plain JSON
    for action in document:
        name = action["action"]
        assert set(action) - {"action"} <= ALLOWED[name], (name, set(action) - ALLOWED[name])
        if "eventUrl" in action:  # "the eventUrl parameter MUST be an array"
            assert isinstance(action["eventUrl"], list) and all(isinstance(u, str) for u in action["eventUrl"])
        if name == "stream":
            assert isinstance(action["streamUrl"], list)
    return [action["action"] for action in document]


def test_holding_talks_plays_hold_music_then_takes_a_voicemail_on_the_webhook():
    document = ncco.holding(WEBHOOK)
    assert check(document) == ["talk", "stream", "talk", "record"]
    assert document[0]["text"] == twiml.HOLDING_MESSAGE
    assert document[1]["loop"] == twiml.HOLD_PLAYS >= 1  # bounded: 0 would loop forever
    assert document[1]["streamUrl"] == [twiml.hold_music_url()]
    record = document[3]
    assert record["eventUrl"] == [WEBHOOK] and record["beepStart"] is True
    assert record["timeOut"] == twiml.VOICEMAIL_MAX_SECONDS and record["endOnSilence"] > 0


def test_still_holding_says_someone_else_is_being_tried():
    document = ncco.still_holding(WEBHOOK)
    assert check(document) == ["talk", "stream", "talk", "record"]
    assert "someone else" in document[0]["text"]


def test_hold_music_can_be_configured(monkeypatch):
    monkeypatch.setenv(twiml.HOLD_MUSIC_ENV, "https://cdn.example.com/hold.mp3")
    assert ncco.holding(WEBHOOK)[1]["streamUrl"] == ["https://cdn.example.com/hold.mp3"]


def test_connect_rings_the_responder_from_the_number_called_and_names_the_callers_call():
    [connect] = ncco.connect("+494310001", webhook_url=WEBHOOK, caller_uuid="abc-123", caller_id="+14155550100")
    check([connect])
    assert connect["endpoint"] == [{"type": "phone", "number": "494310001"}]
    assert connect["from"] == "14155550100" and connect["timeout"] == twiml.DIAL_TIMEOUT_SECONDS
    assert connect["eventType"] == "synchronous" and connect["eventMethod"] == "POST"
    [url] = connect["eventUrl"]
    assert url.startswith(WEBHOOK + "?") and parse_qs(urlsplit(url).query) == {ncco.LEG_OF_PARAM: ["abc-123"]}


def test_connect_without_a_caller_id_lets_vonage_choose():
    [connect] = ncco.connect("494310001", webhook_url=WEBHOOK, caller_uuid="u", caller_id=None)
    assert "from" not in connect and connect["randomFromNumber"] is True


SDK_ACTIONS = {"talk": sdk.Talk, "stream": sdk.Stream, "connect": sdk.Connect, "record": sdk.Record}


@pytest.mark.parametrize(
    "document",
    [
        ncco.holding(WEBHOOK),
        ncco.still_holding(WEBHOOK),
        ncco.voicemail(WEBHOOK),
        ncco.connect("+494310001", webhook_url=WEBHOOK, caller_uuid="u-1", caller_id="+14155550100"),
        ncco.connect("+494310001", webhook_url=WEBHOOK, caller_uuid="u-1", caller_id=None),
    ],
)
def test_the_vonage_sdks_ncco_models_take_every_action_unchanged(document):
    """Interop: the vonage SDK's own NCCO models (vonage_voice) read each action back the same."""
    for action in document:
        given = {("from_" if key == "from" else key): value for key, value in action.items()}
        model = SDK_ACTIONS[action["action"]].model_validate(given)
        assert model.model_dump(by_alias=True, exclude_none=True, mode="json") == action


@pytest.mark.parametrize("hostile", ['", "action": "hangup', "</Say><Hangup/>", "a&b=c"])
def test_values_stay_values(hostile: str):
    document: list[dict[str, Any]] = ncco.connect(
        "+1", webhook_url=WEBHOOK, caller_uuid=hostile, caller_id=hostile
    ) + ncco.voicemail(WEBHOOK, message=hostile)
    again = json.loads(json.dumps(document))
    assert [a["action"] for a in again] == ["connect", "talk", "record"] and again[1]["text"] == hostile
    assert parse_qs(urlsplit(again[0]["eventUrl"][0]).query)[ncco.LEG_OF_PARAM] == [hostile]
