"""Bandwidth answers: the address read from recorded message-received callbacks (one-to-one
and group), the documented Messaging API v2 create-message request, the answers and errors
Bandwidth documents, its delivery callbacks read back, and the round trip through the
loopback sandbox."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

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
from switchboard_core.outbound.bandwidth import BandwidthCredentials, BandwidthSender
from switchboard_core.outbound.base import Attachment, OutboundMessage, ProviderResponse
from switchboard_core.outbound.transport import http_transport
from tests.builders import posted
from tests.unit.outbound.sms_support import RECORDED, recorded, status_round_trip

NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
SENDER = BandwidthSender()


def credentials() -> dict[str, str]:
    return demo_outbound_credentials("bandwidth")


def customer_address() -> ReplyAddress:
    address = reply_address(recorded("bandwidth", "message-received.json"))
    assert address is not None
    return address


def statuses() -> list[CanonicalEvent]:
    """Both callbacks of the recorded status batch (one delivered, one failed)."""
    body = (RECORDED / "bandwidth" / "status-batch.json").read_bytes()
    return posted("bandwidth", body, received_at=NOW, url="https://hub.example.com/webhooks/bandwidth/con_1")


def with_item(event: CanonicalEvent, **changes: Any) -> CanonicalEvent:
    return event.model_copy(update={"attributes": {**event.attributes, **changes}})


@pytest.fixture
def sandbox(sandbox):
    apis, _ = sandbox
    apis.messages.clear()
    return sandbox


# ---------------------------------------------------------------- address
def test_a_message_is_answered_from_the_number_that_received_it():
    event = recorded("bandwidth", "message-received.json")
    message = event.attributes["message"]
    address = customer_address()
    assert address.fields == {"to": message["from"], "from": message["owner"]}
    assert reply_address(event, "private") == address


def test_a_group_message_is_answered_to_the_whole_group():
    address = reply_address(recorded("bandwidth", "group-message-received.json"))
    assert address is not None
    assert address.fields == {"to": "+14155550123,+14155550142", "from": "+14155550100"}


def test_no_public_answer_and_no_answer_to_a_status_callback():
    assert reply_address(recorded("bandwidth", "message-received.json"), "public") is None
    assert all(reply_address(event) is None for event in statuses())
    received = recorded("bandwidth", "message-received.json")
    assert reply_address(with_item(received, message={**received.attributes["message"], "from": "ACME"})) is None


# ---------------------------------------------------------------- prepare
def test_sms_has_no_window_but_groups_and_media_have_limits():
    address = customer_address().fields
    assert SENDER.prepare(address, OutboundMessage("hi"), NOW - timedelta(days=60), NOW) == address
    too_many = {"to": ",".join(f"+1415555{150 + i:04d}" for i in range(10)), "from": "+14155550100"}
    with pytest.raises(Refused) as group:
        SENDER.prepare(too_many, OutboundMessage("hi"), NOW, NOW)
    assert group.value.code == "group_too_large"
    eleven = tuple(Attachment(f"https://cdn.example.com/{i}.jpg") for i in range(11))
    with pytest.raises(Refused) as media:
        SENDER.prepare(address, OutboundMessage("hi", attachments=eleven), NOW, NOW)
    assert media.value.code == "too_many_attachments"


# ---------------------------------------------------------------- request
def _model() -> BandwidthCredentials:
    return BandwidthCredentials.model_validate(credentials())


def test_an_answer_is_the_documented_create_message_call_tagged_with_the_hub_id():
    creds = _model()
    request = SENDER.request(
        "https://messaging.bandwidth.com",
        {"to": "+14155550123,+14155550142", "from": "+14155550100"},
        OutboundMessage(
            "See attached",
            message_id="msg_01JABC",
            attachments=(Attachment("https://cdn.example.com/label.png", "image/png"),),
            status_callback="https://hub.example.com/webhooks/bandwidth/con_1",
        ),
        creds,
    )
    assert request.method == "POST"
    assert request.url == f"https://messaging.bandwidth.com/api/v2/users/{creds.account_id}/messages"
    assert request.headers == {
        "Authorization": "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode(),
        "Content-Type": "application/json; charset=utf-8",
        "Accept": "application/json",
    }
    # v2 has no per-message callback URL: statuses go to the application's callback.
    assert json.loads(request.body) == {
        "applicationId": creds.application_id,
        "to": ["+14155550123", "+14155550142"],
        "from": "+14155550100",
        "text": "See attached",
        "media": ["https://cdn.example.com/label.png"],
        "tag": "msg_01JABC",
    }


def test_a_plain_sms_without_a_hub_id_has_no_tag_or_media():
    body = json.loads(SENDER.request("https://x", customer_address().fields, OutboundMessage("ok"), _model()).body)
    assert set(body) == {"applicationId", "to", "from", "text"}


# ---------------------------------------------------------------- outcome
def test_the_message_id_is_the_provider_id():
    body = b'{"id": "1589228074636lm4k2je7j7jklbn2", "owner": "+19195551234", "applicationId": "93de2206-9669-4e07-948d-329f4b722ee2", "time": "2020-05-11T20:14:34.636Z", "segmentCount": 1, "direction": "out", "to": ["+19195554321"], "from": "+19195551234", "text": "Hello", "tag": "msg_1"}'  # noqa: E501
    assert SENDER.outcome(ProviderResponse(202, body)) == "1589228074636lm4k2je7j7jklbn2"


@pytest.mark.parametrize(
    ("status", "payload", "code", "detail"),
    [
        (
            400,
            {
                "type": "request-validation",
                "description": "Your request could not be accepted",
                "fieldErrors": [{"fieldName": "from", "description": "'+1' must be a valid E164 number"}],
            },
            "bandwidth_request-validation",
            "Your request could not be accepted; from: '+1' must be a valid E164 number",
        ),
        (401, {"type": "unauthorized", "description": "Authentication Failed"}, "bandwidth_unauthorized", None),
        (403, {"type": "forbidden", "description": "Access Denied"}, "bandwidth_forbidden", None),
        (
            404,
            {"timestamp": "2019-09-09T19:02:19.253+0000", "status": 404, "error": "Not Found", "path": "/x"},
            "http_404",
            None,
        ),
    ],
)
def test_documented_errors_are_permanent_and_named(status, payload, code, detail):
    with pytest.raises(PermanentFailure) as failure:
        SENDER.outcome(ProviderResponse(status, json.dumps(payload).encode()))
    assert failure.value.code == code
    assert failure.value.detail == (detail or failure.value.detail)


def test_a_full_queue_is_transient_after_the_rate_limit_reset():
    body = b'{"type": "max-message-queue-size-exceeded", "description": "The SMS queue for your account is full"}'
    with pytest.raises(TransientFailure) as failure:
        SENDER.outcome(ProviderResponse(429, body, {"retry-after": "30"}))
    assert failure.value.code == "bandwidth_max-message-queue-size-exceeded" and failure.value.retry_after == 30
    with pytest.raises(TransientFailure):
        SENDER.outcome(ProviderResponse(503, b"upstream unavailable"))
    with pytest.raises(PermanentFailure) as empty:
        SENDER.outcome(ProviderResponse(202, b"{}"))
    assert empty.value.code == "unexpected_response"


# ---------------------------------------------------------------- status
def test_the_recorded_callbacks_read_as_delivered_and_failed_with_the_error_code():
    delivered, failed = (SENDER.status(event) for event in statuses())
    assert delivered is not None and failed is not None
    assert (delivered.provider_message_id, delivered.state, delivered.reason) == (
        "1718201340000abcdefghijklmn",
        "delivered",
        None,
    )
    assert (failed.provider_message_id, failed.state) == ("1718201341000opqrstuvwxyzab", "failed")
    assert failed.reason == "bandwidth_4432: forbidden to country"


def test_sending_and_read_callbacks_and_what_is_not_a_status():
    delivered = statuses()[0]
    sending = SENDER.status(with_item(delivered, type="message-sending"))
    read = SENDER.status(with_item(delivered, type="message-read"))
    assert sending is not None and sending.state == "sent" and read is not None and read.state == "read"
    assert SENDER.status(recorded("bandwidth", "message-received.json")) is None
    assert SENDER.status(with_item(delivered, message={"to": ["+1"]})) is None


# ---------------------------------------------------------------- sandbox
def test_an_answer_goes_through_the_sandbox_and_its_statuses_come_back(sandbox):
    apis, url = sandbox
    creds = credentials()
    apis.accept("bandwidth", creds)
    address = reply_address(recorded("bandwidth", "group-message-received.json"))
    assert address is not None
    message = OutboundMessage("Thanks both", message_id="msg_42", attachments=(Attachment("https://x.io/a.png"),))
    message_id = send(address, message, creds, http_transport, base_url=f"{url}/bandwidth")
    [sent] = apis.messages
    assert sent.message_id == message_id and sent.to == "+14155550123,+14155550142" and sent.text == "Thanks both"
    assert sent.details["tag"] == "msg_42" and sent.details["from"] == "+14155550100"
    assert sent.details["media"] == ["https://x.io/a.png"] and sent.details["application_id"] == creds["application_id"]
    for state in ("sent", "delivered", "read"):
        status = status_round_trip(sent, state)
        assert (status.provider_message_id, status.state, status.reason) == (message_id, state, None)
    failed = status_round_trip(sent, "failed", "4470: rejected-spam-detected")
    assert failed.reason == "bandwidth_4470: rejected-spam-detected"


def test_credentials_the_account_and_the_application_are_checked_as_bandwidth_does(sandbox):
    apis, url = sandbox
    creds = credentials()
    with pytest.raises(PermanentFailure) as unauthorized:
        send(customer_address(), "hi", creds, http_transport, base_url=f"{url}/bandwidth")
    assert unauthorized.value.code == "bandwidth_unauthorized"
    apis.accept("bandwidth", creds)
    with pytest.raises(PermanentFailure) as forbidden:
        send(customer_address(), "hi", {**creds, "account_id": "9999999"}, http_transport, base_url=f"{url}/bandwidth")
    assert forbidden.value.code == "bandwidth_forbidden"
    other_app = {**creds, "application_id": "00000000-0000-4000-8000-000000000000"}
    with pytest.raises(PermanentFailure) as invalid:
        send(customer_address(), "hi", other_app, http_transport, base_url=f"{url}/bandwidth")
    assert invalid.value.code == "bandwidth_request-validation" and "applicationId" in invalid.value.detail
    assert apis.messages == []


@pytest.mark.parametrize(
    "change",
    [
        {"account_id": "acct"},
        {"username": "a:b"},
        {"password": "short"},
        {"application_id": "not-a-uuid"},
        {"extra": "x"},
    ],
)
def test_outbound_credentials_are_validated(change):
    assert validate_credentials("bandwidth", credentials())
    with pytest.raises(HubError) as error:
        validate_credentials("bandwidth", {**credentials(), **change})
    assert error.value.status == 400
