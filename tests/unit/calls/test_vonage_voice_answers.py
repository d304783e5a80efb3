"""Ingest's answers to Vonage Voice: the answer webhook of an inbound call is held (a valid NCCO
with hold music, its voicemail posted back to the webhook) and routed as call.ringing; a connect
leg the hub opened that was not answered keeps the caller holding, its other events get an empty
204; everything else keeps Vonage's plain 200."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from switchboard_core.calls import ncco
from switchboard_core.errors import HubError
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import SignatureError
from tests.unit.calls.test_ncco import check
from tests.unit.providers.support import webhook_request

NOW = datetime(2026, 12, 2, 10, tzinfo=UTC)
SECRET = "Xq3vR9wLm2Tz8Kp4Yc7Bn1Hd6Fg0Js5A"
HUB_URL = "https://hub.example.com/webhooks/vonage/con_1"
CALLER_UUID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
ANSWER = {
    "to": "14155550100",
    "from": "14155550143",
    "uuid": CALLER_UUID,
    "conversation_uuid": "CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    "region_url": "https://api-eu-3.vonage.com",
}


def signed(payload: dict, url: str = HUB_URL, secret: str = SECRET, iat: datetime = NOW):
    body = json.dumps(payload, separators=(",", ":")).encode()
    claims = {
        "iat": int(iat.timestamp()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "abcd1234",
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    }
    token = jwt.encode(claims, secret, algorithm="HS256")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    return webhook_request(url, body, headers, received_at=NOW)


def leg(status: str) -> dict:
    return {
        "uuid": "bbbbbbbb-0000-4000-8000-000000000001",
        "conversation_uuid": ANSWER["conversation_uuid"],
        "status": status,
        "direction": "outbound",
        "from": "14155550100",
        "to": "494310001",
        "timestamp": "2026-12-02T10:00:20.000Z",
    }


def leg_url(leg_of: str = CALLER_UUID) -> str:
    return ncco.leg_event_url(HUB_URL, leg_of)


@pytest.fixture
def adapter():
    return get_adapter("vonage")


def test_the_answer_webhook_is_verified_held_with_an_ncco_and_routed_as_call_ringing(adapter):
    request = signed(ANSWER)
    adapter.verify(request, {"signature_secret": SECRET, "signature_method": "sha256"}, NOW)
    response = adapter.success_response(request)
    assert (response.status, response.content_type) == (200, "application/json")
    document = json.loads(response.body)
    assert check(document) == ["talk", "stream", "talk", "record"]
    assert document[3]["eventUrl"] == [HUB_URL]  # the voicemail comes back through ingest
    [event] = adapter.normalise(request)
    assert event.type == "call.ringing" and event.provider_event_id == f"{CALLER_UUID}:answer"
    assert (
        event.contact.phone == "+14155550143" and event.conversation_key == f"vonage:call:{ANSWER['conversation_uuid']}"
    )
    assert "status" not in event.attributes and event.attributes["uuid"] == CALLER_UUID
    assert adapter.delivery_id(request) == f"{CALLER_UUID}:answer"


def test_a_tampered_or_stale_answer_webhook_is_refused(adapter):
    request = signed(ANSWER)
    tampered = webhook_request(HUB_URL, request.body.replace(b"14155550143", b"14155550999"), request.headers)
    with pytest.raises(SignatureError):
        adapter.verify(tampered, {"signature_secret": SECRET, "signature_method": "sha256"}, NOW)
    with pytest.raises(SignatureError):
        adapter.verify(
            signed(ANSWER, iat=NOW - timedelta(minutes=10)),
            {"signature_secret": SECRET, "signature_method": "sha256"},
            NOW,
        )


def test_a_get_answer_webhook_is_405_saying_to_configure_post(adapter):
    request = webhook_request(HUB_URL + "?to=1&from=2&uuid=u&conversation_uuid=c", method="GET", received_at=NOW)
    with pytest.raises(HubError) as refused:
        adapter.handshake(request, [{"signature_secret": SECRET, "signature_method": "sha256"}])
    assert refused.value.status == 405 and "answer and event URL method POST" in refused.value.message


@pytest.mark.parametrize("status", ["timeout", "unanswered", "busy", "failed", "rejected"])
def test_an_unanswered_connect_leg_keeps_the_caller_holding(adapter, status):
    request = signed(leg(status), url=leg_url())
    document = json.loads(adapter.success_response(request).body)
    assert check(document)[:2] == ["talk", "stream"] and "someone else" in document[0]["text"]
    assert document[3]["eventUrl"] == [HUB_URL]  # without the leg_of query
    [event] = adapter.normalise(request)
    assert event.attributes[ncco.LEG_OF_PARAM] == CALLER_UUID and event.type in (
        "call.no_answer",
        "call.busy",
        "call.failed",
    )


@pytest.mark.parametrize("status", ["started", "ringing", "answered", "completed"])
def test_other_connect_leg_events_get_an_empty_204(adapter, status):
    response = adapter.success_response(signed(leg(status), url=leg_url()))
    assert response.status == 204 and response.body == ""


def test_the_callers_own_events_and_other_webhooks_keep_the_plain_200(adapter):
    caller_event = {**leg("completed"), "uuid": CALLER_UUID, "direction": "inbound"}
    for request in (signed(caller_event), signed({"message_uuid": "m", "to": "1", "from": "2", "text": "hi"})):
        response = adapter.success_response(request)
        assert (response.status, json.loads(response.body)) == (200, {"ok": True})
    [event] = adapter.normalise(signed(caller_event))
    assert ncco.LEG_OF_PARAM not in event.attributes


@pytest.mark.parametrize("bad", ["", "x" * 101, "a b", "<script>", "../.."])
def test_a_leg_of_that_is_not_a_call_uuid_is_ignored(adapter, bad):
    request = signed(leg("timeout"), url=f"{HUB_URL}?{ncco.LEG_OF_PARAM}={bad}")
    [event] = adapter.normalise(request)
    assert ncco.LEG_OF_PARAM not in event.attributes
    assert json.loads(adapter.success_response(request).body) == {"ok": True}


@pytest.mark.parametrize(
    "payload",
    [
        {**ANSWER, "payload": {"x": 1}},  # a notify callback
        {key: value for key, value in ANSWER.items() if key != "to"},
    ],
)
def test_callbacks_that_are_not_the_answer_webhook_are_not_held(adapter, payload):
    request = signed(payload)
    assert json.loads(adapter.success_response(request).body) == {"ok": True}
    [event] = adapter.normalise(request)
    assert event.type == "provider.notification"


def test_an_input_callback_is_not_held_but_thanked(adapter):
    """The input result of a campaign's call (tests/unit/campaigns/test_channels.py): never the hold music."""
    request = signed({**ANSWER, "dtmf": {"digits": "1", "timed_out": False}})
    answer = json.loads(adapter.success_response(request).body)
    assert [action["action"] for action in answer] == ["talk"]
    [event] = adapter.normalise(request)
    assert event.type == "call.in_progress" and event.attributes["dtmf"] == {"digits": "1", "timed_out": False}


def test_a_malformed_body_gets_the_plain_answer(adapter):
    request = webhook_request(HUB_URL, b"{not json", {"Content-Type": "application/json"}, received_at=NOW)
    assert adapter.success_response(request).status == 200
