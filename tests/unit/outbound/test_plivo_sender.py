"""Plivo answers: the address read from recorded inbound messages, the documented Send
Message request (SMS and MMS, with the status callback), the answers and errors Plivo
documents, its delivery reports read back, and the round trip through the loopback sandbox."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

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
from switchboard_core.outbound.base import Attachment, OutboundMessage, ProviderResponse
from switchboard_core.outbound.plivo import PlivoCredentials, PlivoSender
from switchboard_core.outbound.transport import http_transport
from tests.unit.outbound.sms_support import recorded, status_round_trip

NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
SENDER = PlivoSender()
CALLBACK = "https://hub.example.com/webhooks/plivo/con_1"


def credentials() -> dict[str, str]:
    return demo_outbound_credentials("plivo")


def customer_address() -> ReplyAddress:
    address = reply_address(recorded("plivo", "sms-inbound.txt"))
    assert address is not None
    return address


def inbound(**changes: str) -> CanonicalEvent:
    event = recorded("plivo", "sms-inbound.txt")
    return event.model_copy(update={"attributes": {**event.attributes, **changes}})


@pytest.fixture
def sandbox(sandbox):
    apis, _ = sandbox
    apis.messages.clear()
    return sandbox


# ---------------------------------------------------------------- address
def test_an_inbound_sms_is_answered_from_the_number_it_was_sent_to():
    address = customer_address()
    assert (address.provider, address.connection) == ("plivo", "con_1")
    assert address.fields == {"to": "14155550123", "from": "14155550100"}  # as Plivo sends them, without '+'
    assert reply_address(recorded("plivo", "sms-inbound.txt"), "private") == address


def test_an_inbound_mms_is_answered_too():
    assert reply_address(inbound(Type="mms")) == customer_address()


def test_no_public_answer_on_sms():
    assert reply_address(recorded("plivo", "sms-inbound.txt"), "public") is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: recorded("plivo", "message-status-delivered.txt"),  # a delivery report, not the customer
        lambda: recorded("plivo", "voice-hangup-completed.txt"),  # a call
        lambda: inbound(Type="whatsapp"),  # WhatsApp through Plivo: not answered here
        lambda: inbound(From="ACME"),  # an alphanumeric sender cannot be answered
        lambda: inbound(From=""),
    ],
)
def test_no_address_where_an_sms_cannot_answer(make):
    assert reply_address(make()) is None


# ---------------------------------------------------------------- prepare
def test_sms_has_no_messaging_window():
    address = customer_address().fields
    message = OutboundMessage("Still here for you")
    assert SENDER.prepare(address, message, NOW - timedelta(days=90), NOW) == address


def test_more_than_ten_attachments_or_a_relative_url_are_refused_before_sending():
    address = customer_address().fields
    eleven = tuple(Attachment(f"https://cdn.example.com/{i}.jpg") for i in range(11))
    with pytest.raises(Refused) as refused:
        SENDER.prepare(address, OutboundMessage("pics", attachments=eleven), NOW, NOW)
    assert refused.value.code == "too_many_attachments" and refused.value.hints == {"max_attachments": 10}
    with pytest.raises(Refused) as relative:
        SENDER.prepare(address, OutboundMessage("pic", attachments=(Attachment("/media/1.jpg"),)), NOW, NOW)
    assert relative.value.code == "attachment_url_invalid"
    with pytest.raises(PermanentFailure):  # and request never builds such a send either
        SENDER.request("https://api.plivo.com", address, OutboundMessage("x", attachments=eleven), _model())


# ---------------------------------------------------------------- request
def _model() -> PlivoCredentials:
    return PlivoCredentials.model_validate(credentials())


def test_an_sms_is_the_documented_send_message_call():
    creds = _model()
    request = SENDER.request(
        "https://api.plivo.com",
        customer_address().fields,
        OutboundMessage("Your order ships today", message_id="msg_1", status_callback=CALLBACK),
        creds,
    )
    assert request.method == "POST"
    assert request.url == f"https://api.plivo.com/v1/Account/{creds.auth_id}/Message/"
    assert request.headers == {
        "Authorization": "Basic " + base64.b64encode(f"{creds.auth_id}:{creds.auth_token}".encode()).decode(),
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    assert json.loads(request.body) == {
        "src": "14155550100",
        "dst": "14155550123",
        "type": "sms",
        "text": "Your order ships today",
        "url": CALLBACK,
        "method": "POST",
    }


def test_an_mms_carries_media_urls_and_no_callback_when_none_is_given():
    media = (Attachment("https://cdn.example.com/label.pdf", "application/pdf"), Attachment("https://x.io/a.png"))
    request = SENDER.request(
        "https://api.plivo.com", customer_address().fields, OutboundMessage("", attachments=media), _model()
    )
    assert json.loads(request.body) == {
        "src": "14155550100",
        "dst": "14155550123",
        "type": "mms",
        "media_urls": ["https://cdn.example.com/label.pdf", "https://x.io/a.png"],
    }


def test_long_text_is_clipped():
    request = SENDER.request("https://x", {"to": "1", "from": "2"}, OutboundMessage("x" * 3000), _model())
    assert len(json.loads(request.body)["text"]) == 1600


# ---------------------------------------------------------------- outcome
def test_the_message_uuid_is_the_provider_id():
    body = b'{"api_id": "db342550-7f1d-11e1-8ea7-1231380bc196", "message": "message(s) queued", "message_uuid": ["db3ce55a-7f1d-11e1-8ea7-1231380bc196"]}'  # noqa: E501
    assert SENDER.outcome(ProviderResponse(202, body)) == "db3ce55a-7f1d-11e1-8ea7-1231380bc196"


@pytest.mark.parametrize(
    ("status", "error", "code", "transient"),
    [
        (400, "dst parameter is invalid", "plivo_400", False),
        (401, "authentication failed", "plivo_401", False),
        (404, "not found", "plivo_404", False),
        (500, "internal server error", "plivo_500", True),
    ],
)
def test_documented_errors_name_the_status_and_keep_plivos_words(status, error, code, transient):
    body = json.dumps({"api_id": "97ceeb52-58b6-11e1-86da-77300b68f8bb", "error": error}).encode()
    with pytest.raises((TransientFailure, PermanentFailure)) as failure:
        SENDER.outcome(ProviderResponse(status, body))
    assert failure.value.code == code and failure.value.detail == error and failure.value.transient is transient


def test_rate_limited_is_transient_after_retry_after():
    body = b'{"api_id": "a", "error": "too many requests"}'
    with pytest.raises(TransientFailure) as failure:
        SENDER.outcome(ProviderResponse(429, body, {"retry-after": "7"}))
    assert failure.value.code == "plivo_429" and failure.value.retry_after == 7


def test_a_success_without_a_uuid_or_an_unreadable_error_is_not_taken_for_sent():
    with pytest.raises(PermanentFailure) as empty:
        SENDER.outcome(ProviderResponse(202, b'{"api_id": "a", "message_uuid": []}'))
    assert empty.value.code == "unexpected_response"
    with pytest.raises(TransientFailure) as html:
        SENDER.outcome(ProviderResponse(502, b"<html>Bad gateway</html>"))
    assert html.value.code == "http_502"


# ---------------------------------------------------------------- status
def test_the_recorded_delivery_report_reads_as_delivered():
    status = SENDER.status(recorded("plivo", "message-status-delivered.txt"))
    assert status is not None
    assert (status.provider_message_id, status.state, status.reason) == (
        "7c8d9e0f-2a3b-4c4d-9e5f-6a7b8c9d0e1f",
        "delivered",
        None,
    )


def _report(**changes: str) -> CanonicalEvent:
    event = recorded("plivo", "message-status-delivered.txt")
    return event.model_copy(update={"attributes": {**event.attributes, **changes}})


@pytest.mark.parametrize(
    ("status", "code", "state", "reason"),
    [
        ("queued", "", "queued", None),
        ("sent", "", "sent", None),
        ("undelivered", "200", "failed", "plivo_200: Source number blocked by STOP from destination number"),
        ("failed", "900", "failed", "plivo_900: Insufficient credit"),
        ("rejected", "", "failed", "rejected"),
        ("undelivered", "4242", "failed", "plivo_4242"),
    ],
)
def test_statuses_and_error_codes(status, code, state, reason):
    read = SENDER.status(_report(Status=status, ErrorCode=code))
    assert read is not None and (read.state, read.reason) == (state, reason)


def test_a_later_part_of_a_long_message_is_threaded_by_its_parent():
    read = SENDER.status(_report(MessageUUID="11111111-2222-3333-4444-555555555555", PartInfo="2 of 2"))
    assert read is not None and read.provider_message_id == "7c8d9e0f-2a3b-4c4d-9e5f-6a7b8c9d0e1f"


def test_what_is_not_a_delivery_report_reads_as_none():
    assert SENDER.status(recorded("plivo", "sms-inbound.txt")) is None
    assert SENDER.status(recorded("plivo", "voice-hangup-completed.txt")) is None
    assert SENDER.status(_report(Status="exploded")) is None


# ---------------------------------------------------------------- sandbox
def test_an_answer_goes_through_the_sandbox_and_its_status_comes_back(sandbox):
    apis, url = sandbox
    creds = credentials()
    apis.accept("plivo", creds)
    message = OutboundMessage(
        "Here is your label",
        message_id="msg_7",
        attachments=(Attachment("https://cdn.example.com/label.png", "image/png"),),
        status_callback=CALLBACK,
    )
    uuid = send(customer_address(), message, creds, http_transport, base_url=f"{url}/plivo")
    [sent] = apis.messages
    assert sent.message_id == uuid and sent.to == "14155550123" and sent.text == "Here is your label"
    assert sent.details["from"] == "14155550100" and sent.details["type"] == "mms"
    assert sent.details["media"] == ["https://cdn.example.com/label.png"] and sent.details["url"] == CALLBACK
    delivered = status_round_trip(sent, "delivered")
    assert (delivered.provider_message_id, delivered.state) == (uuid, "delivered")
    failed = status_round_trip(sent, "failed", "200")
    assert failed.state == "failed" and failed.reason is not None and failed.reason.startswith("plivo_200")
    assert status_round_trip(sent, "sent").state == "sent"


def test_wrong_credentials_are_plivos_401_and_nothing_is_sent(sandbox):
    apis, url = sandbox
    with pytest.raises(PermanentFailure) as failure:
        send(customer_address(), "hi", credentials(), http_transport, base_url=f"{url}/plivo")
    assert failure.value.code == "plivo_401" and apis.messages == []


def test_the_sandbox_refuses_what_plivo_refuses(sandbox):
    apis, url = sandbox
    creds = credentials()
    apis.accept("plivo", creds)
    bad = ReplyAddress(provider="plivo", connection="con_1", fields={"to": "not-a-number", "from": "14155550100"})
    with pytest.raises(PermanentFailure) as failure:
        send(bad, "hi", creds, http_transport, base_url=f"{url}/plivo")
    assert failure.value.code == "plivo_400" and "dst" in failure.value.detail and apis.messages == []


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"auth_id": "MAXXXXXXXXXXXXXXXXXX"},
        {"auth_id": "XX" + "A" * 18, "auth_token": "a" * 40},
        {"auth_id": "MA" + "A" * 18, "auth_token": "short"},
        {"auth_id": "MA" + "A" * 18, "auth_token": "a" * 40, "extra": "x"},
    ],
)
def test_outbound_credentials_are_validated(bad):
    with pytest.raises(HubError) as error:
        validate_credentials("plivo", bad)
    assert error.value.status == 400
    assert validate_credentials("plivo", {"auth_id": "SA" + "B1" * 9, "auth_token": "c" * 40})
