"""Telnyx: SMS replies (the address read from the recorded message.received through the adapter)
and the Call Control commands, against the loopback sandbox over real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.local.provider_apis import demo_outbound_credentials
from switchboard_core.errors import HubError
from switchboard_core.events import CanonicalEvent, Channel
from switchboard_core.outbound import PermanentFailure, ReplyAddress, reply_address, send, validate_credentials
from switchboard_core.outbound.telnyx import TelnyxCredentials, call_action_outcome, call_action_request
from switchboard_core.outbound.transport import http_transport
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import WebhookRequest

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
EVENTS = Path(__file__).resolve().parents[2] / "events" / "telnyx"


def credentials() -> dict[str, str]:
    return demo_outbound_credentials("telnyx")


def recorded(name: str) -> CanonicalEvent:
    body = (EVENTS / name).read_bytes()
    request = WebhookRequest(method="POST", url="https://hub.example/webhooks/telnyx/con_1", headers={}, body=body)
    [draft] = get_adapter("telnyx").normalise(request)
    return CanonicalEvent.from_draft(
        draft,
        provider="telnyx",
        connection="con_1",
        tenant="t",
        channel=Channel.TELEPHONY,
        received_at=NOW,
        raw_ref=None,
    )


@pytest.fixture
def sandbox(sandbox):
    """The module's sandbox, emptied: each test sees only what it sent."""
    apis, _ = sandbox
    apis.messages.clear()
    apis.call_updates.clear()
    return sandbox


def customer_address() -> ReplyAddress:
    address = reply_address(recorded("message-received.json"))
    assert address is not None
    return address


def test_a_received_message_is_answered_from_the_number_it_was_sent_to():
    payload = recorded("message-received.json").attributes["payload"]
    address = customer_address()
    assert address.fields == {"to": payload["from"]["phone_number"], "from": payload["to"][0]["phone_number"]}
    assert reply_address(recorded("call-initiated.json")) is None
    assert reply_address(recorded("message-finalized.json")) is None


def test_a_reply_reaches_the_sandbox_with_the_bearer_key(sandbox):
    apis, url = sandbox
    creds = credentials()
    apis.accept("telnyx", creds)
    message_id = send(customer_address(), "on our way", creds, http_transport, base_url=f"{url}/telnyx")
    [sent] = apis.messages
    assert sent.message_id == message_id and sent.text == "on our way" and sent.to == customer_address().fields["to"]


def test_an_unknown_key_is_a_permanent_failure(sandbox):
    apis, url = sandbox
    with pytest.raises(PermanentFailure) as failure:
        send(customer_address(), "hi", credentials(), http_transport, base_url=f"{url}/telnyx")
    assert failure.value.code == "telnyx_10009" and apis.messages == []


@pytest.mark.parametrize(
    "bad", [{}, {"api_key": "secret"}, {"api_key": "KEYshort"}, {"api_key": "KEY" + "a" * 20, "x": 1}]
)
def test_outbound_credentials_are_validated(bad):
    with pytest.raises(HubError) as error:
        validate_credentials("telnyx", bad)
    assert error.value.status == 400


def test_call_commands_are_recorded_once_per_command_id(sandbox):
    apis, url = sandbox
    creds = TelnyxCredentials.model_validate(credentials())
    apis.accept("telnyx", creds.model_dump())
    leg = "v3:caller-leg"
    transfer = {"to": "+494310001", "from": "+494000000100", "timeout_secs": 20}
    for _ in range(2):
        call_action_outcome(
            http_transport(call_action_request(f"{url}/telnyx", creds, leg, "transfer", transfer, "ev1:transfer:1"))
        )
    [update] = apis.call_updates
    assert update.provider == "telnyx" and update.call_sid == leg and update.action == "transfer"
    assert update.body is not None and update.body["to"] == "+494310001" and update.body["timeout_secs"] == 20


@pytest.mark.parametrize(
    ("action", "body", "code"),
    [
        ("transfer", {}, "telnyx_10015"),  # no destination
        ("playback_start", {}, "telnyx_10015"),  # no audio
        ("speak", {"payload": "hello"}, "telnyx_10015"),  # no voice
    ],
)
def test_incomplete_commands_are_refused(sandbox, action, body, code):
    apis, url = sandbox
    creds = TelnyxCredentials.model_validate(credentials())
    apis.accept("telnyx", creds.model_dump())
    with pytest.raises(PermanentFailure) as failure:
        call_action_outcome(http_transport(call_action_request(f"{url}/telnyx", creds, "v3:x", action, body, "c1")))
    assert failure.value.code == code and apis.call_updates == []


def test_a_command_on_an_ended_call_is_90018_and_a_wrong_key_is_10009(sandbox):
    apis, url = sandbox
    creds = TelnyxCredentials.model_validate(credentials())
    apis.ended_calls.add("v3:gone")
    with pytest.raises(PermanentFailure) as unauthenticated:
        call_action_outcome(http_transport(call_action_request(f"{url}/telnyx", creds, "v3:gone", "answer", {}, "c")))
    assert unauthenticated.value.code == "telnyx_10009"
    apis.accept("telnyx", creds.model_dump())
    with pytest.raises(PermanentFailure) as ended:
        call_action_outcome(http_transport(call_action_request(f"{url}/telnyx", creds, "v3:gone", "answer", {}, "c")))
    assert ended.value.code == "telnyx_90018" and apis.call_updates == []


def test_unknown_actions_are_refused_before_sending():
    creds = TelnyxCredentials.model_validate(credentials())
    with pytest.raises(ValueError):
        call_action_request("https://api.telnyx.com", creds, "v3:x", "hangup", {}, "c")


def test_the_request_is_json_with_the_command_id():
    creds = TelnyxCredentials.model_validate(credentials())
    request = call_action_request("https://api.telnyx.com", creds, "v3:a/b", "answer", {}, "ev:answer")
    assert request.url == "https://api.telnyx.com/v2/calls/v3%3Aa%2Fb/actions/answer"
    assert json.loads(request.body) == {"command_id": "ev:answer"}
