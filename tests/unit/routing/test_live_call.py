"""What routing hands the calls function about a live call: Twilio's ringing call, Telnyx's
inbound call.initiated and Vonage's answer webhook (recorded samples, through the adapters),
never a leg the hub opened."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

from functions.routing.logic import live_call
from switchboard_core.events import CanonicalEvent
from switchboard_core.providers.base import WebhookRequest
from switchboard_core.routing.sensing import Location, Sensed
from tests.builders import published

NOW = datetime(2026, 12, 2, 3, tzinfo=UTC)
SAMPLE = Path(__file__).resolve().parents[2] / "events" / "telnyx" / "call-initiated.json"


def telnyx_event(**payload_changes) -> CanonicalEvent:
    body = json.loads(SAMPLE.read_bytes())
    body = copy.deepcopy(body)
    body["data"]["payload"].update(payload_changes)
    request = WebhookRequest(
        method="POST", url="https://hub/webhooks/telnyx/c", headers={}, body=json.dumps(body).encode()
    )
    [event] = published("telnyx", request, received_at=NOW, connection="c")
    return event


def test_an_inbound_telnyx_call_is_a_live_call_keyed_by_its_call_control_id():
    event = telnyx_event()
    assert event.type == "call.initiated"
    where = Sensed(location=Location(latitude=54.07, longitude=9.98))
    call = live_call(event, where)
    assert call == {
        "provider": "telnyx",
        "sid": event.attributes["payload"]["call_control_id"],
        "from": "+14155550123",
        "to": "+14155550100",
        "location": {"latitude": 54.07, "longitude": 9.98},
    }


def test_outgoing_legs_and_the_hubs_own_transfer_legs_are_not_live_calls():
    assert live_call(telnyx_event(direction="outgoing"), Sensed()) is None
    assert live_call(telnyx_event(client_state="c3dpdGNoYm9hcmQ6eA=="), Sensed()) is None
    assert live_call(telnyx_event(call_control_id=None), Sensed()) is None


VONAGE = Path(__file__).resolve().parents[2] / "events" / "vonage"


def vonage_event(payload: dict, url: str = "https://hub/webhooks/vonage/c") -> CanonicalEvent:
    request = WebhookRequest(
        method="POST",
        url=url,
        headers={"content-type": "application/json"},
        body=json.dumps(payload).encode(),
        query={"leg_of": [url.split("leg_of=", 1)[1]]} if "leg_of=" in url else {},
    )
    [event] = published("vonage", request, received_at=NOW, connection="c")
    return event


def test_a_vonage_answer_webhook_is_a_live_call_keyed_by_its_uuid():
    answer = json.loads((VONAGE / "voice-answer.json").read_bytes())
    where = Sensed(location=Location(latitude=54.07, longitude=9.98))
    assert live_call(vonage_event(answer), where) == {
        "provider": "vonage",
        "sid": answer["uuid"],
        "from": "14155550123",
        "to": "14155550100",
        "conversation_uuid": answer["conversation_uuid"],
        "location": {"latitude": 54.07, "longitude": 9.98},
    }


def test_vonage_status_events_and_connect_legs_are_not_live_calls():
    for name in ("voice-event-answered.json", "voice-event-completed.json"):
        assert live_call(vonage_event(json.loads((VONAGE / name).read_bytes())), Sensed()) is None
    ringing = {**json.loads((VONAGE / "voice-event-answered.json").read_bytes()), "status": "ringing"}
    event = vonage_event(ringing, "https://hub/webhooks/vonage/c?leg_of=aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab")
    assert event.type == "call.ringing" and live_call(event, Sensed()) is None
