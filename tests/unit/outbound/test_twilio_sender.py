"""Twilio replies: the address read from real inbound payloads, the Messages API request,
and every kind of answer, against the loopback sandbox over real HTTP."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest

from switchboard_core.events import CanonicalEvent, Channel, Contact, EventDraft
from switchboard_core.outbound import PermanentFailure, TransientFailure, reply_address, send
from switchboard_core.outbound.base import OutboundMessage, ProviderResponse
from switchboard_core.outbound.transport import http_transport
from switchboard_core.outbound.twilio import TwilioCredentials, TwilioSender

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def credentials() -> dict[str, str]:
    return {"account_sid": "AC" + secrets.token_hex(16), "auth_token": secrets.token_hex(16)}


def inbound(attributes: dict[str, str], type_: str = "message.received") -> CanonicalEvent:
    return CanonicalEvent.from_draft(
        EventDraft(
            type=type_,
            provider_event_id="SM1",
            contact=Contact(phone="+14155550178"),
            text="help",
            attributes=attributes,
        ),
        provider="twilio",
        connection="con_1",
        tenant="t",
        channel=Channel.TELEPHONY,
        received_at=NOW,
        raw_ref=None,
    )


def test_address_answers_from_the_number_the_customer_wrote_to() -> None:
    address = reply_address(inbound({"From": "+14155550178", "To": "+14155550100", "MessageSid": "SM1"}))
    assert address is not None
    assert (address.provider, address.connection) == ("twilio", "con_1")
    assert address.fields == {"to": "+14155550178", "from": "+14155550100"}


def test_whatsapp_prefix_is_kept_so_the_reply_goes_back_on_whatsapp() -> None:
    address = reply_address(inbound({"From": "whatsapp:+14155550178", "To": "whatsapp:+14155550100"}))
    assert address is not None and address.fields["to"] == "whatsapp:+14155550178"


@pytest.mark.parametrize(
    "attributes,type_",
    [
        ({"From": "+1415", "To": "+1416", "EventType": "onMessageAdded"}, "message.received"),  # Conversations
        ({"From": "+14155550178", "To": "+14155550100", "CallSid": "CA1"}, "call.ringing"),
        ({"To": "+14155550100"}, "message.received"),
        ({"From": "", "To": "+14155550100"}, "message.received"),
    ],
)
def test_no_address_where_the_messages_api_cannot_answer(attributes: dict[str, str], type_: str) -> None:
    assert reply_address(inbound(attributes, type_)) is None


def test_request_is_the_documented_messages_call() -> None:
    creds = TwilioCredentials.model_validate(credentials())
    request = TwilioSender().request(
        "https://api.twilio.com",
        {"to": "+14155550178", "from": "+14155550100"},
        OutboundMessage("Thanks, we're on it"),
        creds,
    )
    assert request.url == f"https://api.twilio.com/2010-04-01/Accounts/{creds.account_sid}/Messages.json"
    assert (
        request.headers["Authorization"]
        == "Basic " + base64.b64encode(f"{creds.account_sid}:{creds.auth_token}".encode()).decode()
    )
    assert parse_qs(request.body.decode()) == {
        "To": ["+14155550178"],
        "From": ["+14155550100"],
        "Body": ["Thanks, we're on it"],
    }


def test_messaging_service_replaces_from() -> None:
    creds = TwilioCredentials.model_validate(credentials() | {"messaging_service_sid": "MG" + "a" * 32})
    request = TwilioSender().request("https://x", {"to": "+1", "from": "+2"}, OutboundMessage("hi"), creds)
    form = parse_qs(request.body.decode())
    assert form["MessagingServiceSid"] == ["MG" + "a" * 32] and "From" not in form


def test_long_text_is_clipped_to_one_message() -> None:
    creds = TwilioCredentials.model_validate(credentials())
    request = TwilioSender().request("https://x", {"to": "+1", "from": "+2"}, OutboundMessage("x" * 5000), creds)
    assert len(parse_qs(request.body.decode())["Body"][0]) == 1600


def test_sends_through_the_sandbox_over_http(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("twilio", creds)
    address = reply_address(inbound({"From": "+14155550178", "To": "+14155550100"}))
    sid = send(address, "We got your message", creds, http_transport, base_url=f"{url}/twilio")
    assert sid.startswith("SM")
    sent = [m for m in apis.messages if m.message_id == sid]
    assert len(sent) == 1 and sent[0].to == "+14155550178" and sent[0].text == "We got your message"
    assert sent[0].details["from"] == "+14155550100"


def test_wrong_token_is_a_permanent_failure(sandbox) -> None:
    _, url = sandbox
    address = reply_address(inbound({"From": "+14155550178", "To": "+14155550100"}))
    with pytest.raises(PermanentFailure) as failure:
        send(address, "hi", credentials(), http_transport, base_url=f"{url}/twilio")
    assert failure.value.code == "twilio_20003"


def test_unreachable_api_is_transient() -> None:
    address = reply_address(inbound({"From": "+14155550178", "To": "+14155550100"}))
    with pytest.raises(TransientFailure) as failure:
        send(address, "hi", credentials(), http_transport, base_url="http://127.0.0.1:9/twilio")
    assert failure.value.code == "network_error"


def test_documented_error_body_names_twilio_code() -> None:
    response = ProviderResponse(
        status=400, body=b'{"code": 21211, "message": "The \'To\' number is not valid", "status": 400}'
    )
    with pytest.raises(PermanentFailure) as failure:
        TwilioSender().outcome(response)
    assert failure.value.code == "twilio_21211" and "not valid" in failure.value.detail


def test_success_without_sid_is_not_taken_for_sent() -> None:
    with pytest.raises(PermanentFailure):
        TwilioSender().outcome(ProviderResponse(status=201, body=b"{}"))


def test_invalid_stored_credentials_fail_permanently() -> None:
    address = reply_address(inbound({"From": "+14155550178", "To": "+14155550100"}))
    with pytest.raises(PermanentFailure) as failure:
        send(address, "hi", {"account_sid": "nope"}, http_transport, base_url="http://127.0.0.1:9/twilio")
    assert failure.value.code == "invalid_credentials"


def test_the_sandbox_override_is_honoured_on_loopback_only(monkeypatch) -> None:
    from switchboard_core.outbound import API_OVERRIDE_ENV

    address = reply_address(inbound({"From": "+14155550178", "To": "+14155550100"}))
    seen = []

    def transport(request):
        seen.append(request.url)
        return ProviderResponse(status=201, body=b'{"sid": "SM1"}')

    monkeypatch.setenv(API_OVERRIDE_ENV, "http://127.0.0.1:9999")
    assert send(address, "hi", credentials(), transport) == "SM1"
    assert seen[0].startswith("http://127.0.0.1:9999/twilio/2010-04-01/Accounts/")
    monkeypatch.setenv(API_OVERRIDE_ENV, "https://collector.example.com")
    with pytest.raises(PermanentFailure) as failure:
        send(address, "hi", credentials(), transport)
    assert failure.value.code == "bad_override" and len(seen) == 1
    monkeypatch.delenv(API_OVERRIDE_ENV)
    send(address, "hi", credentials(), transport)
    assert seen[1].startswith("https://api.twilio.com/2010-04-01/Accounts/")
