"""A campaign's calls and a customer's reply on the local runtime: the executors place a Twilio and
a Vonage call through the provider sandbox (recorded, TwiML / NCCO checked), the sandbox posts the
provider's signed callbacks for what became of each (keypad digits, no answer) back to the hub,
which publishes them as call.* events that `call_outcome` reads; and `switchboard sandbox reply`
reaches the hub as the customer's message.received."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from infra.local.cli import main
from switchboard_core.campaigns.channels import CallOutcome, ChannelDeps, call_outcome, connect_call, place_call
from switchboard_core.campaigns.keypad import Gather
from switchboard_core.campaigns.runs import ConnectCallAction, PlaceCallAction
from switchboard_core.events import CanonicalEvent
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

CONTACT = "+14155550174"  # outside the samples' random range (0101..0139) and every other module's numbers
REPLIER = "+14155550193"  # texted by no other integration test: the reply below must be the only one
RESPONDER = "+14155550173"


@pytest.fixture
def deps(hub, monkeypatch) -> ChannelDeps:
    from infra import topology
    from switchboard_core import aws
    from switchboard_core.connections import ConnectionStore, CredentialStore
    from switchboard_core.outbound import API_OVERRIDE_ENV
    from switchboard_core.outbound.transport import http_transport

    # As the campaign function runs under the local runtime: provider APIs are the sandbox.
    monkeypatch.setenv(API_OVERRIDE_ENV, hub.runtime.provider_apis_url)
    return ChannelDeps(
        connections=ConnectionStore(aws.resource("dynamodb").Table(hub.runtime.names.table("connections"))),
        credentials=CredentialStore(aws.client("secretsmanager"), topology.outbound_secrets_prefix("local")),
        transport=http_transport,
        public_base_url=hub.url,
    )


def sandbox(hub, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        hub.runtime.provider_apis_url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def placed(hub, call_id: str) -> dict[str, Any]:
    status, payload = sandbox(hub, "GET", "/_sandbox/placed_calls")
    assert status == 200
    [found] = [c for c in payload["placed_calls"] if c["call_id"] == call_id]
    return found


def outcomes_of(hub, call_id: str, attribute: str) -> list[CallOutcome]:
    """What `call_outcome` reads from the hub's logged call events of this call."""
    found = []
    for event in hub.logged_events(limit="100"):
        if event["type"].startswith("call.") and event.get("attributes", {}).get(attribute) == call_id:
            outcome = call_outcome(CanonicalEvent.model_validate(event))
            if outcome is not None:
                found.append(outcome)
    return found


def action(**fields: Any) -> PlaceCallAction:
    return PlaceCallAction(step="call", idempotency_key="run_x:call:1", to=CONTACT, **fields)


def test_a_twilio_campaign_call_is_recorded_and_its_digits_come_back_as_its_outcome(hub, deps) -> None:
    delivered = place_call(action(say="Press 1 to talk to us now.", gather=Gather(num_digits=1)), "demo", deps)
    assert delivered.provider == "twilio" and delivered.connection == hub.connection("twilio")["id"]
    call = placed(hub, delivered.provider_message_id)
    assert call["to"] == CONTACT and call["from_"] == "+15005550006"
    assert call["callback_url"] == hub.webhook_url("twilio")
    assert f'action="{hub.webhook_url("twilio")}?outbound=gather"' in call["twiml"]

    status, answer = sandbox(
        hub,
        "POST",
        "/_sandbox/call_outcome",
        {"call_id": delivered.provider_message_id, "outcome": "answered", "digits": "1"},
    )
    assert (status, answer["hub_statuses"]) == (200, [200, 200])
    expected = [
        CallOutcome("twilio", delivered.provider_message_id, "answered", "1"),
        CallOutcome("twilio", delivered.provider_message_id, "answered", None),
    ]
    got = wait_for(lambda: len(found := outcomes_of(hub, delivered.provider_message_id, "CallSid")) >= 2 and found)
    assert sorted(got, key=str) == sorted(expected, key=str)


def test_a_vonage_campaign_call_nobody_answers_is_not_answered(hub, deps) -> None:
    delivered = place_call(
        action(say="Hello", gather=Gather(num_digits=1), connection=hub.connection("vonage")["id"]), "demo", deps
    )
    call = placed(hub, delivered.provider_message_id)
    assert [a["action"] for a in call["ncco"]] == ["talk", "input"]
    assert call["callback_url"] == hub.webhook_url("vonage")
    status, answer = sandbox(
        hub, "POST", "/_sandbox/call_outcome", {"call_id": delivered.provider_message_id, "outcome": "no-answer"}
    )
    assert (status, answer["hub_statuses"]) == (200, [200])
    got = wait_for(lambda: outcomes_of(hub, delivered.provider_message_id, "uuid"))
    assert got == [CallOutcome("vonage", delivered.provider_message_id, "not_answered", None)]


def test_a_connect_call_dials_the_responder(hub, deps) -> None:
    bridge = ConnectCallAction(
        step="bridge", idempotency_key="run_x:bridge:1", to=CONTACT, responder="number", target=RESPONDER
    )
    delivered = connect_call(bridge, RESPONDER, "demo", deps)
    twiml = placed(hub, delivered.provider_message_id)["twiml"]
    assert f"<Number>{RESPONDER}</Number>" in twiml and 'callerId="+15005550006"' in twiml


def test_the_sandbox_refuses_an_outcome_for_a_call_it_never_placed(hub) -> None:
    status, answer = sandbox(hub, "POST", "/_sandbox/call_outcome", {"call_id": "CA" + "0" * 32, "outcome": "busy"})
    assert status == 404 and "no call" in answer["error"]
    status, answer = sandbox(hub, "POST", "/_sandbox/call_outcome", {"call_id": "x", "outcome": "maybe"})
    assert status == 400


def test_sandbox_reply_reaches_the_hub_as_the_customers_message(hub, capsys) -> None:
    state = str(hub.runtime.state_dir)
    code = main(["--state-dir", state, "sandbox", "reply", "--provider", "twilio", "--from", REPLIER, "--text", "no"])
    assert code == 0, capsys.readouterr()

    def received() -> list[dict[str, Any]]:
        return [
            e
            for e in hub.logged_events(type="message.received", limit="50")
            if e["provider"] == "twilio" and e["contact"].get("phone") == REPLIER
        ]

    [event] = wait_for(received)
    assert event["text"] == "no" and event["connection"] == hub.connection("twilio")["id"]
    assert event["attributes"]["To"] == "+15005550006"  # the connection's own number, which the campaign sent from


def test_sandbox_reply_refuses_what_it_cannot_send(hub, capsys) -> None:
    state = str(hub.runtime.state_dir)
    assert (
        main(["--state-dir", state, "sandbox", "reply", "--provider", "twilio", "--from", "555", "--text", "no"]) == 2
    )
    assert "E.164" in capsys.readouterr().err
    other = hub.connection("vonage")["id"]
    args = ["--state-dir", state, "sandbox", "reply", "--provider", "twilio", "--from", REPLIER, "--text", "no"]
    assert main([*args, "--connection", other]) == 2
    assert "is a vonage connection" in capsys.readouterr().err
