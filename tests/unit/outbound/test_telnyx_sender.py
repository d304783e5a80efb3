"""Telnyx: SMS replies (the address read from the recorded message.received through the adapter)
and the Call Control commands, against the loopback sandbox over real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infra.local.provider_apis import demo_outbound_credentials
from switchboard_core.errors import HubError
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound import (
    PermanentFailure,
    Refused,
    ReplyAddress,
    TransientFailure,
    reply_address,
    send,
    validate_credentials,
)
from switchboard_core.outbound.base import Attachment, DeliveryStatus, OutboundMessage, ProviderResponse
from switchboard_core.outbound.telnyx import (
    TelnyxCredentials,
    TelnyxSender,
    call_action_outcome,
    call_action_request,
)
from switchboard_core.outbound.transport import http_transport
from tests.builders import posted
from tests.unit.outbound.sms_support import status_round_trip

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
EVENTS = Path(__file__).resolve().parents[2] / "events" / "telnyx"


def credentials() -> dict[str, str]:
    return demo_outbound_credentials("telnyx")


def recorded(name: str) -> CanonicalEvent:
    [event] = posted("telnyx", (EVENTS / name).read_bytes(), received_at=NOW)
    return event


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


# ------------------------------------------------------- answers from the hub: MMS, statuses
CALLBACK = "https://hub.example.com/webhooks/telnyx/con_1"


def _finalized(**payload_changes) -> CanonicalEvent:
    event = recorded("message-finalized.json")
    payload = {**event.attributes["payload"], **payload_changes}
    return event.model_copy(update={"attributes": {**event.attributes, "payload": payload}})


def test_visibility_private_is_the_message_itself_and_public_has_no_address():
    event = recorded("message-received.json")
    assert reply_address(event, "private") == reply_address(event)
    assert reply_address(event, "public") is None


def test_an_mms_answer_is_the_documented_send_message_with_media_urls_and_webhook_url():
    creds = TelnyxCredentials.model_validate(credentials())
    message = OutboundMessage(
        "Your label",
        message_id="msg_1",
        attachments=(Attachment("https://cdn.example.com/label.png", "image/png"),),
        status_callback=CALLBACK,
    )
    request = TelnyxSender().request("https://api.telnyx.com", customer_address().fields, message, creds)
    assert (request.method, request.url) == ("POST", "https://api.telnyx.com/v2/messages")
    assert request.headers == {
        "Authorization": f"Bearer {creds.api_key}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    fields = customer_address().fields
    assert json.loads(request.body) == {
        "from": fields["from"],
        "to": fields["to"],
        "text": "Your label",
        "media_urls": ["https://cdn.example.com/label.png"],
        "webhook_url": CALLBACK,
    }


def test_a_plain_sms_carries_no_media_or_webhook_url():
    creds = TelnyxCredentials.model_validate(credentials())
    request = TelnyxSender().request("https://x", customer_address().fields, OutboundMessage("ok"), creds)
    assert set(json.loads(request.body)) == {"from", "to", "text"}


def test_no_window_on_sms_but_at_most_ten_attachments():
    fields = customer_address().fields
    old = NOW - timedelta(days=45)
    assert TelnyxSender().prepare(fields, OutboundMessage("hi"), old, NOW) == fields
    eleven = tuple(Attachment(f"https://x.io/{i}.png") for i in range(11))
    with pytest.raises(Refused) as refused:
        TelnyxSender().prepare(fields, OutboundMessage("hi", attachments=eleven), NOW, NOW)
    assert refused.value.code == "too_many_attachments"


def test_outcome_maps_documented_errors_and_rate_limits():
    stop = b'{"errors": [{"code": "40300", "title": "Blocked due to STOP message", "detail": "The recipient replied STOP"}]}'  # noqa: E501
    with pytest.raises(PermanentFailure) as blocked:
        TelnyxSender().outcome(ProviderResponse(400, stop))
    assert blocked.value.code == "telnyx_40300" and "STOP" in blocked.value.detail
    limited = b'{"errors": [{"code": "10011", "title": "Too many requests"}]}'
    with pytest.raises(TransientFailure) as transient:
        TelnyxSender().outcome(ProviderResponse(429, limited, {"retry-after": "3"}))
    assert transient.value.code == "telnyx_10011" and transient.value.retry_after == 3
    assert TelnyxSender().outcome(ProviderResponse(200, b'{"data": {"id": "abc", "record_type": "message"}}')) == "abc"


def test_the_recorded_finalized_webhook_reads_as_delivered():
    status = TelnyxSender().status(recorded("message-finalized.json"))
    assert status == DeliveryStatus("40385f64-5717-4562-b3fc-2c963f66afa6", "delivered")


@pytest.mark.parametrize(
    ("recipient_status", "errors", "state", "reason"),
    [
        ("queued", [], "queued", None),
        ("sent", [], "sent", None),
        ("delivery_unconfirmed", [], "sent", None),
        (
            "delivery_failed",
            [{"code": "40300", "title": "Blocked due to STOP message", "detail": "The recipient replied STOP"}],
            "failed",
            "telnyx_40300: The recipient replied STOP",
        ),
        ("sending_failed", [{"code": "40008", "title": "Undeliverable"}], "failed", "telnyx_40008: Undeliverable"),
        ("delivery_failed", [], "failed", "delivery_failed"),
    ],
)
def test_recipient_statuses_map_to_delivery_states(recipient_status, errors, state, reason):
    event = recorded("message-finalized.json")
    recipient = {**event.attributes["payload"]["to"][0], "status": recipient_status}
    status = TelnyxSender().status(_finalized(to=[recipient], errors=errors))
    assert status == DeliveryStatus("40385f64-5717-4562-b3fc-2c963f66afa6", state, reason)


def test_what_is_not_a_delivery_webhook_reads_as_none():
    assert TelnyxSender().status(recorded("message-received.json")) is None
    assert TelnyxSender().status(recorded("call-hangup.json")) is None
    assert TelnyxSender().status(_finalized(id=None)) is None
    assert TelnyxSender().status(_finalized(to=[])) is None


def test_an_mms_goes_through_the_sandbox_and_its_statuses_come_back(sandbox):
    apis, url = sandbox
    creds = credentials()
    apis.accept("telnyx", creds)
    message = OutboundMessage("", attachments=(Attachment("https://x.io/a.png"),), status_callback=CALLBACK)
    message_id = send(customer_address(), message, creds, http_transport, base_url=f"{url}/telnyx")
    [sent] = apis.messages
    assert sent.message_id == message_id and sent.details["media"] == ["https://x.io/a.png"]
    assert sent.details["webhook_url"] == CALLBACK
    assert status_round_trip(sent, "sent") == DeliveryStatus(message_id, "sent")
    assert status_round_trip(sent, "delivered") == DeliveryStatus(message_id, "delivered")
    failed = status_round_trip(sent, "failed", "40300: Blocked due to STOP message")
    assert failed == DeliveryStatus(message_id, "failed", "telnyx_40300: Blocked due to STOP message")


def test_the_sandbox_refuses_a_message_with_neither_text_nor_media(sandbox):
    apis, url = sandbox
    creds = credentials()
    apis.accept("telnyx", creds)
    with pytest.raises(PermanentFailure) as failure:
        send(customer_address(), "", creds, http_transport, base_url=f"{url}/telnyx")
    assert failure.value.code == "telnyx_10015" and apis.messages == []
