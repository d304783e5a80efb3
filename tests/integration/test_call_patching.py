"""A stranded driver's call, end to end on the local runtime: a signed Twilio Voice webhook
is held with TwiML, routing assigns the call to the nearest towing responder, the calls
function puts it through (one call update in the provider sandbox), and when that
responder does not answer the next nearest is dialled."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from switchboard_core.routing.assignment import GeoPoint, Responder
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.contact_points import ContactPoint
from switchboard_core.routing.rules import RuleSet
from tests.integration.conftest import wait_for
from tests.unit.calls.test_twiml import parse

pytestmark = pytest.mark.integration

RULES = {
    "default_team": "front-desk",
    "rules": [
        {
            "name": "callers-on-the-road",
            "when": {"channels": ["telephony"], "has_location": True},
            "then": {"kind": "nearest", "skill": "roadside_calls", "team": "tow-calls"},
        }
    ],
}
BUSINESS = "+14155550100"


@pytest.fixture(scope="module")
def tow_calls(hub):
    from switchboard_core import aws

    store = RoutingConfigStore(aws.resource("dynamodb").Table(hub.runtime.names.table("routing")))
    now = datetime.now(UTC)
    current = store.rules("demo")
    store.put_rules("demo", RuleSet.model_validate(RULES), current[1] if current else None, now)
    for id_, lat, lon, phone in (
        ("tow-kiel", 54.3233, 10.1228, "+494310000001"),  # 29 km from the caller
        ("tow-hamburg", 53.5511, 9.9937, "+494010000002"),  # 58 km
        ("tow-bremen", 53.0793, 8.8017, "+494210000003"),  # 137 km
    ):
        store.put_responder(
            Responder(
                id=id_,
                tenant="demo",
                name=id_,
                teams=["tow-calls"],
                skills={"roadside_calls": 3},
                capacity=100,
                location=GeoPoint(latitude=lat, longitude=lon),
                contact_points=[ContactPoint(channel="sms", to=phone)],
            )
        )
    return hub


def post_voice(hub, params: dict[str, str], url: str | None = None) -> str:
    url, token = url or hub.webhook_url("twilio"), hub.connection("twilio")["credentials"]["auth_token"]
    signature = RequestValidator(token).compute_signature(url, params)
    status, headers, body = hub.request(
        "POST",
        url,
        urlencode(params).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )
    assert status == 200 and headers["Content-Type"].startswith("text/xml")
    return body


def dialled(hub, call_sid: str) -> list[str | None]:
    updates = [u for u in hub.runtime.provider_apis.call_updates if u.call_sid == call_sid]
    return [parse(u.twiml).findtext("Dial/Number") for u in updates]


def test_a_stranded_driver_call_is_held_then_put_through_to_the_nearest_then_the_next(tow_calls):
    hub = tow_calls
    call_sid = "CA" + secrets.token_hex(16)
    ringing = {
        "CallSid": call_sid,
        "AccountSid": "AC" + "2" * 32,
        "From": "+14155550177",
        "To": BUSINESS,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        # Where the caller is (a location the app shared with the call): routing senses it.
        "Latitude": "54.0730",
        "Longitude": "9.9840",
    }
    holding = parse(post_voice(hub, ringing))
    assert [e.tag for e in holding] == ["Say", "Play", "Say", "Record"]
    assert holding.find("Record").get("action") == hub.webhook_url("twilio")  # type: ignore[union-attr]

    assert wait_for(lambda: dialled(hub, call_sid), timeout=20) == ["+494310000001"]
    [update] = [u for u in hub.runtime.provider_apis.call_updates if u.call_sid == call_sid]
    dial = parse(update.twiml).find("Dial")
    assert dial is not None and dial.get("callerId") == BUSINESS
    assert dial.get("action") == hub.webhook_url("twilio")  # the callback comes back through ingest, signed
    # Tow-kiel's phone fetches the whisper (the <Number url>) when answering: a <Say>, signed like any webhook.
    whisper_url = dial.find("Number").get("url")  # type: ignore[union-attr]
    leg = {"CallSid": "CA" + secrets.token_hex(16), "ParentCallSid": call_sid, "CallStatus": "in-progress"}
    whisper = parse(post_voice(hub, {**leg, "Direction": "outbound-dial", "To": "+494310000001"}, whisper_url))
    assert "tow-calls team" in (whisper.findtext("Say") or "") and "29 kilometres" in (whisper.findtext("Say") or "")

    # A redelivery of the same webhook changes nothing.
    post_voice(hub, ringing)
    # Tow-kiel does not pick up: Twilio posts the Dial action callback, the caller keeps holding.
    unanswered = {
        **ringing,
        "CallStatus": "in-progress",
        "DialCallStatus": "no-answer",
        "DialCallSid": "CA" + secrets.token_hex(16),
    }
    unanswered.pop("Latitude"), unanswered.pop("Longitude")
    still = parse(post_voice(hub, unanswered))
    assert [e.tag for e in still][:2] == ["Say", "Play"] and "someone else" in (still.findtext("Say") or "")
    assert wait_for(lambda: len(dialled(hub, call_sid)) >= 2, timeout=20)
    assert dialled(hub, call_sid) == ["+494310000001", "+494010000002"]

    patched = wait_for(
        lambda: (
            [e for e in hub.logged_events(type="call.patched") if e["attributes"].get("call_sid") == call_sid]
            if len([e for e in hub.logged_events(type="call.patched") if e["attributes"].get("call_sid") == call_sid])
            >= 2
            else None
        ),
        timeout=20,
    )
    assert patched, "call.patched never reached the event log"
    assert sorted(e["attributes"]["responder"] for e in patched) == ["tow-hamburg", "tow-kiel"]
    first = next(e for e in patched if e["attributes"]["responder"] == "tow-kiel")
    assert first["attributes"]["distance_km"] == pytest.approx(29.3, abs=0.5)
    contact_id = first["attributes"]["contact"]["id"]

    def timeline_types() -> list[str]:
        _, timeline = hub.admin("GET", f"/admin/contacts/{contact_id}/timeline?limit=20")
        return [e["type"] for e in timeline["events"]]

    # The contact's timeline shows who the call was put through to.
    assert wait_for(lambda: timeline_types().count("call.patched") >= 2, timeout=20), timeline_types()
    assert "call.ringing" in timeline_types()


def test_switchboard_calls_lists_the_call_updates(tow_calls, capsys):
    from infra.local.cli import main
    from infra.local.provider_apis import CallUpdate
    from switchboard_core.calls import twiml

    hub, call_sid = tow_calls, "CA" + secrets.token_hex(16)
    document = twiml.dial("+494310000009", action_url="https://hub.example/x", caller_id=None)
    hub.runtime.provider_apis.record_call_update(CallUpdate("twilio", call_sid, document, None, None))
    capsys.readouterr()
    assert main(["--state-dir", str(hub.runtime.state.path), "calls"]) == 0
    out = "".join(line for line in capsys.readouterr().out.splitlines(keepends=True) if not line.startswith('{"'))
    assert call_sid in out and "dial +494310000009" in out
