"""Twilio replies: the address read from real inbound payloads, the Messages API request,
and every kind of answer, against the loopback sandbox over real HTTP."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from switchboard_core.events import CanonicalEvent, Contact
from switchboard_core.outbound import PermanentFailure, Refused, TransientFailure, reply_address, send
from switchboard_core.outbound.base import Attachment, DeliveryStatus, OutboundMessage, ProviderResponse
from switchboard_core.outbound.transport import http_transport
from switchboard_core.outbound.twilio import TwilioCredentials, TwilioSender
from tests.builders import canonical_event
from tests.unit.outbound.sms_support import recorded, status_round_trip

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def credentials() -> dict[str, str]:
    return {"account_sid": "AC" + secrets.token_hex(16), "auth_token": secrets.token_hex(16)}


def inbound(attributes: dict[str, str], type_: str = "message.received") -> CanonicalEvent:
    return canonical_event(
        type_,
        "SM1",
        received_at=NOW,
        connection="con_1",
        tenant="t",
        contact=Contact(phone="+14155550178"),
        text="help",
        attributes=attributes,
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


# ------------------------------------------------------- answers from the hub: MMS, WhatsApp, statuses
CALLBACK = "https://hub.example.com/webhooks/twilio/con_1"
SMS = {"to": "+14155550178", "from": "+14155550100"}
WHATSAPP = {"to": "whatsapp:+14155550178", "from": "whatsapp:+14155550100"}
CONTENT_SID = "HX" + "b" * 32


def _form(request) -> dict[str, list[str]]:
    return parse_qs(request.body.decode())


def test_visibility_private_is_the_sms_itself_and_public_has_no_address() -> None:
    event = inbound({"From": "+14155550178", "To": "+14155550100"})
    assert reply_address(event, "private") == reply_address(event)
    assert reply_address(event, "public") is None


def test_an_mms_answer_repeats_media_url_and_asks_for_status_callbacks() -> None:
    creds = TwilioCredentials.model_validate(credentials())
    message = OutboundMessage(
        "Your label and receipt",
        message_id="msg_1",
        attachments=(Attachment("https://cdn.example.com/label.png", "image/png"), Attachment("https://x.io/r.pdf")),
        status_callback=CALLBACK,
    )
    request = TwilioSender().request("https://api.twilio.com", SMS, message, creds)
    assert request.method == "POST" and request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert _form(request) == {
        "To": ["+14155550178"],
        "From": ["+14155550100"],
        "Body": ["Your label and receipt"],
        "MediaUrl": ["https://cdn.example.com/label.png", "https://x.io/r.pdf"],
        "StatusCallback": [CALLBACK],
    }


def test_media_alone_needs_no_body() -> None:
    creds = TwilioCredentials.model_validate(credentials())
    message = OutboundMessage("", attachments=(Attachment("https://x.io/a.png"),))
    assert "Body" not in _form(TwilioSender().request("https://x", SMS, message, creds))


def test_whatsapp_free_text_only_inside_the_24_hour_window() -> None:
    sender, message = TwilioSender(), OutboundMessage("Happy to help")
    last = NOW - timedelta(hours=23, minutes=59)
    assert sender.prepare(WHATSAPP, message, last, NOW) == WHATSAPP
    with pytest.raises(Refused) as refused:
        sender.prepare(WHATSAPP, message, NOW - timedelta(hours=25), NOW)
    assert refused.value.code == "whatsapp_window_closed"
    assert refused.value.hints["window_closed_at"] == (NOW - timedelta(hours=1)).isoformat()
    assert "HX" in refused.value.hints["template"]
    # SMS has no window.
    assert sender.prepare(SMS, message, NOW - timedelta(days=30), NOW) == SMS


def test_a_template_opens_a_closed_window_and_is_sent_by_its_content_sid() -> None:
    sender = TwilioSender()
    template = OutboundMessage(
        "", template={"name": CONTENT_SID, "language": "en", "parameters": ["Sam", "4417"]}, status_callback=CALLBACK
    )
    assert sender.prepare(WHATSAPP, template, NOW - timedelta(days=3), NOW) == WHATSAPP
    form = _form(sender.request("https://x", WHATSAPP, template, TwilioCredentials.model_validate(credentials())))
    assert form["ContentSid"] == [CONTENT_SID] and "Body" not in form
    assert json.loads(form["ContentVariables"][0]) == {"1": "Sam", "2": "4417"}
    with pytest.raises(Refused) as refused:
        sender.prepare(WHATSAPP, OutboundMessage("", template={"name": "order_update"}), NOW - timedelta(days=3), NOW)
    assert refused.value.code == "template_invalid"


def test_whatsapp_takes_one_attachment_and_mms_ten() -> None:
    sender = TwilioSender()
    two = tuple(Attachment(f"https://x.io/{i}.png") for i in range(2))
    with pytest.raises(Refused) as refused:
        sender.prepare(WHATSAPP, OutboundMessage("pics", attachments=two), NOW, NOW)
    assert refused.value.code == "too_many_attachments" and refused.value.hints == {"max_attachments": 1}
    assert sender.prepare(SMS, OutboundMessage("pics", attachments=two), NOW, NOW) == SMS
    eleven = tuple(Attachment(f"https://x.io/{i}.png") for i in range(11))
    with pytest.raises(Refused):
        sender.prepare(SMS, OutboundMessage("pics", attachments=eleven), NOW, NOW)


def test_rate_limited_is_transient_after_retry_after_and_stop_is_permanent() -> None:
    limited = b'{"code": 20429, "message": "Too Many Requests", "status": 429}'
    with pytest.raises(TransientFailure) as transient:
        TwilioSender().outcome(ProviderResponse(status=429, body=limited, headers={"retry-after": "12"}))
    assert transient.value.code == "twilio_20429" and transient.value.retry_after == 12
    stop = b'{"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}'
    with pytest.raises(PermanentFailure) as permanent:
        TwilioSender().outcome(ProviderResponse(status=400, body=stop))
    assert permanent.value.code == "twilio_21610"


def test_the_recorded_status_callback_reads_as_delivered() -> None:
    status = TwilioSender().status(recorded("twilio", "message-status-delivered.txt"))
    assert status == DeliveryStatus("SM8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d", "delivered")


@pytest.mark.parametrize(
    ("twilio_status", "error", "state", "reason"),
    [
        ("queued", None, "queued", None),
        ("sending", None, "queued", None),
        ("sent", None, "sent", None),
        ("read", None, "read", None),
        ("undelivered", "30003", "failed", "twilio_30003: Unreachable destination handset"),
        (
            "failed",
            "21610",
            "failed",
            "twilio_21610: Attempt to send to unsubscribed recipient (the customer replied STOP)",
        ),
        ("failed", "39999", "failed", "twilio_39999"),
        ("canceled", None, "failed", "canceled"),
    ],
)
def test_status_callbacks_map_to_delivery_states(twilio_status, error, state, reason) -> None:
    attributes = {"MessageSid": "SM1", "MessageStatus": twilio_status, "From": "+14155550100", "To": "+14155550178"}
    if error:
        attributes["ErrorCode"] = error
    status = TwilioSender().status(inbound(attributes, "message.status_updated"))
    assert status == DeliveryStatus("SM1", state, reason)


def test_what_is_not_a_message_status_callback_reads_as_none() -> None:
    sender = TwilioSender()
    assert sender.status(recorded("twilio", "sms-inbound.txt")) is None
    conversations = {"EventType": "onDeliveryUpdated", "ConversationSid": "CH1", "MessageSid": "IM1", "Status": "read"}
    assert sender.status(inbound(conversations, "message.status_updated")) is None
    assert sender.status(inbound({"MessageSid": "SM1", "MessageStatus": "??"}, "message.status_updated")) is None


def test_an_mms_goes_through_the_sandbox_and_its_statuses_come_back(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("twilio", creds)
    address = reply_address(recorded("twilio", "mms-inbound.txt"))
    assert address is not None and address.fields == {"to": "+14155550123", "from": "+14155550100"}
    message = OutboundMessage(
        "Replacement on its way",
        attachments=(Attachment("https://cdn.example.com/label.png"),),
        status_callback=CALLBACK,
    )
    sid = send(address, message, creds, http_transport, base_url=f"{url}/twilio")
    [sent] = [m for m in apis.messages if m.message_id == sid]
    assert sid.startswith("MM") and sent.details["media"] == ["https://cdn.example.com/label.png"]
    assert sent.details["status_callback"] == CALLBACK and sent.details["account_sid"] == creds["account_sid"]
    for state in ("sent", "delivered", "read"):
        assert status_round_trip(sent, state) == DeliveryStatus(sid, state)
    assert status_round_trip(sent, "failed", "30007") == DeliveryStatus(
        sid, "failed", "twilio_30007: Message filtered by the carrier"
    )


def test_the_sandbox_refuses_an_empty_message_and_bad_media(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("twilio", creds)
    address = reply_address(inbound({"From": "+14155550178", "To": "+14155550100"}))
    with pytest.raises(PermanentFailure) as empty:
        send(address, "", creds, http_transport, base_url=f"{url}/twilio")
    assert empty.value.code == "twilio_21602"
    bad_media = TwilioSender().request(
        f"{url}/twilio", SMS, OutboundMessage("x"), TwilioCredentials.model_validate(creds)
    )
    body = bad_media.body + b"&MediaUrl=ftp%3A%2F%2Fx"
    answer = http_transport(type(bad_media)(bad_media.method, bad_media.url, bad_media.headers, body))
    with pytest.raises(PermanentFailure) as media:
        TwilioSender().outcome(answer)
    assert media.value.code == "twilio_21620"


def test_a_request_whose_answer_never_comes_is_an_unknown_outcome(monkeypatch) -> None:
    """The request went out (the server read it) and no answer came back in time."""
    import socket
    import threading

    from switchboard_core.outbound import OutcomeUnknown
    from switchboard_core.outbound import transport as transport_module

    monkeypatch.setattr(transport_module, "TIMEOUT_SECONDS", 0.5)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    taken: list[bytes] = []

    def read_and_stay_silent() -> None:
        connection, _ = server.accept()
        taken.append(connection.recv(65536))
        threading.Event().wait(2)
        connection.close()

    threading.Thread(target=read_and_stay_silent, daemon=True).start()
    address = reply_address(inbound({"From": "+14155550178", "To": "+14155550100"}))
    with pytest.raises(OutcomeUnknown) as failure:
        send(address, "hi", credentials(), http_transport, base_url=f"http://127.0.0.1:{port}/twilio")
    assert failure.value.code == "outcome_unknown" and taken and taken[0].startswith(b"POST ")
    server.close()
