"""A Vonage Voice call, end to end on the local runtime: the signed answer webhook is held with a
valid NCCO, routing assigns the call, the calls function transfers it to a connect of the
assignee (one transfer in the provider sandbox, whose JWT the sandbox checks against the
application's public key), and when the connect leg times out (its events come back on the
connect's eventUrl, naming the caller's call) the caller keeps holding and the next responder
is connected."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from switchboard_core.routing.assignment import GeoPoint, Responder
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.contact_points import ContactPoint
from switchboard_core.routing.rules import RuleSet
from tests.integration.conftest import wait_for
from tests.unit.calls.test_ncco import check

pytestmark = pytest.mark.integration

RULES = {
    "default_team": "front-desk",
    "rules": [
        {
            "name": "vonage-callers",
            "when": {"channels": ["telephony"], "providers": ["vonage"]},
            "then": {"kind": "assign", "team": "vng-tow", "skills": {"roadside_calls": 1}},
        }
    ],
}
BUSINESS = "14155550100"  # as Vonage writes numbers: no '+'
PHONES = {"vng-tow-a": "+494310000021", "vng-tow-b": "+494010000022"}
OFF_DUTY = ("vng-tow-off", "+494510000023")


@pytest.fixture(scope="module")
def tow_calls(hub):
    from switchboard_core import aws

    store = RoutingConfigStore(aws.resource("dynamodb").Table(hub.runtime.names.table("routing")))
    current = store.rules("demo")
    store.put_rules("demo", RuleSet.model_validate(RULES), current[1] if current else None, datetime.now(UTC))
    responders = [(id_, phone, True) for id_, phone in PHONES.items()] + [(*OFF_DUTY, False)]
    for (id_, phone, available), (lat, lon) in zip(
        responders, ((54.32, 10.12), (53.55, 9.99), (54.0, 10.0)), strict=True
    ):
        store.put_responder(
            Responder(
                id=id_,
                tenant="demo",
                name=id_,
                teams=["vng-tow"],
                skills={"roadside_calls": 3},
                capacity=100,
                available=available,
                location=GeoPoint(latitude=lat, longitude=lon),
                contact_points=[ContactPoint(channel="sms", to=phone)],
            )
        )
    return hub


def post_vonage(hub, payload: dict[str, Any], url: str | None = None) -> tuple[int, Any]:
    """A Voice webhook signed as Vonage signs it: a JWT (HS256, signature secret) with payload_hash."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    claims = {
        "iat": int(time.time()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "abcd1234",
        "application_id": hub.connection("vonage")["outbound"]["application_id"],
    }
    token = jwt.encode(claims, hub.connection("vonage")["credentials"]["signature_secret"], algorithm="HS256")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    status, _, answer = hub.request("POST", url or hub.webhook_url("vonage"), body, headers)
    return status, answer


def transfers(hub, call_uuid: str) -> list[dict[str, Any]]:
    """The connect actions the sandbox received for this call, oldest first."""
    connects = []
    for update in hub.runtime.provider_apis.call_updates:
        if update.provider == "vonage" and update.call_sid == call_uuid:
            assert update.action == "transfer" and update.body["destination"]["type"] == "ncco"
            connects += [a for a in update.body["destination"]["ncco"] if a["action"] == "connect"]
    return connects


def test_a_vonage_call_is_held_transferred_and_on_a_timed_out_leg_connected_to_the_next(tow_calls):
    hub = tow_calls
    call_uuid, conversation = str(uuid.uuid4()), f"CON-{uuid.uuid4()}"
    answer = {
        "to": BUSINESS,
        "from": "14155550199",
        "uuid": call_uuid,
        "conversation_uuid": conversation,
        "region_url": "https://api-eu-3.vonage.com",
    }
    status, holding = post_vonage(hub, answer)
    assert status == 200 and check(holding) == ["talk", "stream", "talk", "record"]
    assert holding[3]["eventUrl"] == [hub.webhook_url("vonage")]  # the voicemail comes back through ingest

    assert wait_for(lambda: transfers(hub, call_uuid), timeout=30), hub.runtime.provider_apis.call_updates
    [first] = transfers(hub, call_uuid)
    digits = {phone.lstrip("+") for phone in PHONES.values()}
    [number] = [e["number"] for e in first["endpoint"]]
    assert number in digits  # never the responder who is off duty
    assert first["from"] == BUSINESS and first["timeout"] == 20 and first["eventType"] == "synchronous"
    [event_url] = first["eventUrl"]
    assert event_url.startswith(hub.webhook_url("vonage") + "?")
    assert parse_qs(urlsplit(event_url).query) == {"leg_of": [call_uuid]}

    # A redelivery of the answer webhook is held again and transfers nothing more.
    status, again = post_vonage(hub, answer)
    assert status == 200 and check(again)[0] == "talk"

    # The responder's phone rings out: Vonage posts the connect leg's timeout to its eventUrl,
    # and runs the NCCO the hub answers with (the connect is synchronous): keep holding.
    leg = {
        "uuid": str(uuid.uuid4()),
        "conversation_uuid": conversation,
        "status": "timeout",
        "direction": "outbound",
        "from": BUSINESS,
        "to": number,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    status, nothing = post_vonage(hub, {**leg, "status": "ringing"}, event_url)
    assert status == 204 and nothing is None  # no NCCO: the ringing leg is left alone
    status, still = post_vonage(hub, leg, event_url)
    assert status == 200 and check(still)[:2] == ["talk", "stream"] and "someone else" in still[0]["text"]

    assert wait_for(lambda: len(transfers(hub, call_uuid)) >= 2, timeout=30), transfers(hub, call_uuid)
    time.sleep(1)  # anything redelivered would have been sent by now
    connected = [e["number"] for c in transfers(hub, call_uuid) for e in c["endpoint"]]
    assert sorted(connected) == sorted(digits)

    def patched() -> list[dict[str, Any]]:
        events = hub.logged_events(type="call.patched")
        return [e for e in events if e["attributes"].get("call_sid") == call_uuid]

    assert wait_for(lambda: len(patched()) >= 2, timeout=20), patched()
    assert sorted(e["attributes"]["responder"] for e in patched()) == sorted(PHONES)


def test_switchboard_calls_lists_vonage_transfers(tow_calls, capsys):
    from infra.local.cli import main
    from infra.local.provider_apis import CallUpdate
    from switchboard_core.calls import ncco

    hub, call_uuid = tow_calls, str(uuid.uuid4())
    document = ncco.connect("+494310000099", webhook_url="https://hub.example/x", caller_uuid=call_uuid, caller_id=None)
    body = {"action": "transfer", "destination": {"type": "ncco", "ncco": document}}
    hub.runtime.provider_apis.record_call_update(
        CallUpdate("vonage", call_uuid, None, None, None, action="transfer", body=body)
    )
    voicemail = {"action": "transfer", "destination": {"type": "ncco", "ncco": ncco.voicemail("https://hub.example/x")}}
    other = secrets.token_hex(4) + "-0000-4000-8000-000000000000"
    hub.runtime.provider_apis.record_call_update(
        CallUpdate("vonage", other, None, None, None, action="transfer", body=voicemail)
    )
    capsys.readouterr()
    assert main(["--state-dir", str(hub.runtime.state.path), "calls"]) == 0
    out = "".join(line for line in capsys.readouterr().out.splitlines(keepends=True) if not line.startswith('{"'))
    assert call_uuid in out and "connect 494310000099" in out
    assert any(other in line and "voicemail" in line for line in out.splitlines())
