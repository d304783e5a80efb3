"""A Telnyx Call Control call, end to end on the local runtime: a signed call.initiated webhook
is answered and held by commands the calls function sends to the provider sandbox, routing
assigns the call, the calls function transfers it to the assignee (one transfer), and when the
transfer's leg hangs up unanswered (its client_state names the caller's leg) the next
responder is tried."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from datetime import UTC, datetime

import pytest

from infra.local.samples.telnyx import sign
from switchboard_core.routing.assignment import GeoPoint, Responder
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.contact_points import ContactPoint
from switchboard_core.routing.rules import RuleSet
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

RULES = {
    "default_team": "front-desk",
    "rules": [
        {
            "name": "telnyx-callers",
            "when": {"channels": ["telephony"], "providers": ["telnyx"]},
            "then": {"kind": "assign", "team": "tnx-tow", "skills": {"roadside_calls": 1}},
        }
    ],
}
BUSINESS = "+14155550100"
PHONES = {"tnx-tow-a": "+494310000011", "tnx-tow-b": "+494010000012"}


@pytest.fixture(scope="module")
def tow_calls(hub):
    from switchboard_core import aws

    store = RoutingConfigStore(aws.resource("dynamodb").Table(hub.runtime.names.table("routing")))
    current = store.rules("demo")
    store.put_rules("demo", RuleSet.model_validate(RULES), current[1] if current else None, datetime.now(UTC))
    for (id_, phone), (lat, lon) in zip(PHONES.items(), ((54.32, 10.12), (53.55, 9.99)), strict=True):
        store.put_responder(
            Responder(
                id=id_,
                tenant="demo",
                name=id_,
                teams=["tnx-tow"],
                skills={"roadside_calls": 3},
                capacity=100,
                location=GeoPoint(latitude=lat, longitude=lon),
                contact_points=[ContactPoint(channel="sms", to=phone)],
            )
        )
    return hub


def post_telnyx(hub, event_type: str, payload: dict) -> None:
    body = json.dumps(
        {
            "data": {
                "record_type": "event",
                "id": str(uuid.uuid4()),
                "event_type": event_type,
                "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "payload": payload,
            },
            "meta": {"attempt": 1, "delivered_to": hub.webhook_url("telnyx")},
        }
    ).encode()
    timestamp = str(int(time.time()))
    signature = sign(hub.connection("telnyx")["credentials"]["signing_key"], timestamp, body)
    headers = {
        "Content-Type": "application/json",
        "telnyx-timestamp": timestamp,
        "telnyx-signature-ed25519": signature,
    }
    status, _, answer = hub.request("POST", hub.webhook_url("telnyx"), body, headers)
    assert status == 200, answer


def commands(hub, leg: str) -> list[tuple[str, dict]]:
    return [(u.action, u.body or {}) for u in hub.runtime.provider_apis.call_updates if u.call_sid == leg]


def test_a_telnyx_call_is_held_transferred_and_on_no_answer_transferred_to_the_next(tow_calls):
    hub = tow_calls
    leg = "v3:" + secrets.token_urlsafe(30)
    initiated = {
        "call_control_id": leg,
        "call_leg_id": str(uuid.uuid4()),
        "call_session_id": str(uuid.uuid4()),
        "client_state": None,
        "connection_id": "1494404757140276705",
        "from": "+14155550188",
        "to": BUSINESS,
        "direction": "incoming",
        "state": "parked",
    }
    post_telnyx(hub, "call.initiated", initiated)

    def actions() -> list[str]:
        return [action for action, _ in commands(hub, leg)]

    assert wait_for(lambda: "transfer" in actions(), timeout=30), actions()
    assert actions().count("answer") == 1 and actions().count("playback_start") == 1
    [(_, transfer)] = [c for c in commands(hub, leg) if c[0] == "transfer"]
    first = transfer["to"]
    assert first in PHONES.values() and transfer["from"] == BUSINESS and transfer["timeout_secs"] == 20

    # The responder's phone rings out: Telnyx posts call.hangup for the transfer's leg.
    post_telnyx(
        hub,
        "call.hangup",
        {
            "call_control_id": "v3:" + secrets.token_urlsafe(30),
            "client_state": transfer["client_state"],
            "direction": "outgoing",
            "from": BUSINESS,
            "to": first,
            "hangup_cause": "timeout",
        },
    )
    assert wait_for(lambda: actions().count("transfer") >= 2, timeout=30), actions()
    transfers = [body["to"] for action, body in commands(hub, leg) if action == "transfer"]
    assert sorted(transfers) == sorted(PHONES.values())

    patched = wait_for(
        lambda: (
            found
            if len(
                found := [e for e in hub.logged_events(type="call.patched") if e["attributes"].get("call_sid") == leg]
            )
            >= 2
            else None
        ),
        timeout=20,
    )
    assert patched and sorted(e["attributes"]["responder"] for e in patched) == sorted(PHONES)


def test_switchboard_calls_lists_telnyx_commands(tow_calls, capsys):
    from infra.local.cli import main
    from infra.local.provider_apis import CallUpdate

    hub, leg = tow_calls, "v3:" + secrets.token_urlsafe(20)
    hub.runtime.provider_apis.record_call_update(
        CallUpdate("telnyx", leg, None, None, None, action="transfer", body={"to": "+494310000099"})
    )
    capsys.readouterr()
    assert main(["--state-dir", str(hub.runtime.state.path), "calls"]) == 0
    out = "".join(line for line in capsys.readouterr().out.splitlines(keepends=True) if not line.startswith('{"'))
    assert leg in out and "transfer +494310000099" in out
