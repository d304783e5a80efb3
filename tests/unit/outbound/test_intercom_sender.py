"""Intercom answers: an admin's reply (or note) in the conversation, addressed from the adapter's
customer topics, the documented reply request, Intercom's answers mapped, a round trip over
loopback, and the admin-replied webhook read back as `delivered`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.local.provider_apis import demo_outbound_credentials
from infra.local.samples import build_sample, build_status, demo_credentials
from switchboard_core.errors import HubError
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound import (
    PermanentFailure,
    ReplyAddress,
    TransientFailure,
    delivery_status,
    reply_address,
    send,
    validate_credentials,
)
from switchboard_core.outbound.base import Attachment, OutboundMessage, ProviderResponse
from switchboard_core.outbound.intercom import INTERCOM_VERSION, IntercomCredentials, IntercomSender, as_html
from switchboard_core.outbound.transport import http_transport
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import WebhookRequest
from tests.builders import posted
from tests.unit.providers.support import recorded_event

NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
HUB_URL = "https://hub.example/webhooks/intercom/con_1"
SENDER = IntercomSender()
TOKEN = "dG9rOmNkZjEyMzQ1Njc4OTBhYmNkZWZfMTIzNDU2Nzg5MDoxOjA="


def credentials() -> dict[str, str]:
    return demo_outbound_credentials("intercom")


def event_of(body: bytes | dict[str, Any]) -> CanonicalEvent:
    [event] = posted("intercom", body, received_at=NOW)
    return event


def recorded(name: str) -> CanonicalEvent:
    return event_of(recorded_event("intercom", name))


def customer_address() -> ReplyAddress:
    address = reply_address(recorded("conversation-user-created.json"))
    assert address is not None
    return address


@pytest.fixture
def sandbox(sandbox):
    apis, _ = sandbox
    apis.messages.clear()
    return sandbox


# --- address ---------------------------------------------------------------------------------------
def test_a_customers_conversation_is_answered_with_a_comment_or_a_private_note():
    conversation = json.loads(recorded_event("intercom", "conversation-user-created.json"))["data"]["item"]["id"]
    assert customer_address().fields == {"conversation_id": str(conversation), "message_type": "comment"}
    assert reply_address(recorded("conversation-user-created.json"), "public").fields["message_type"] == "comment"
    assert reply_address(recorded("conversation-user-created.json"), "private").fields["message_type"] == "note"


def test_a_customers_reply_is_answered_too():
    payload = json.loads(recorded_event("intercom", "conversation-user-created.json"))
    payload["topic"] = "conversation.user.replied"
    assert reply_address(event_of(payload)) is not None


def test_admins_parts_contacts_and_pings_have_no_address():
    assert reply_address(recorded("conversation-admin-replied.json")) is None  # our own echo would loop
    assert reply_address(recorded("contact-user-created.json")) is None
    odd = json.loads(recorded_event("intercom", "conversation-user-created.json"))
    odd["data"]["item"]["id"] = "../admins"
    assert reply_address(event_of(odd)) is None


def test_the_default_sample_can_be_answered():
    signed = build_sample("intercom", "conversation", demo_credentials("intercom"), HUB_URL, NOW)
    assert reply_address(event_of(signed.body)) is not None


# --- request ---------------------------------------------------------------------------------------
def test_the_request_is_the_documented_admin_reply():
    creds = IntercomCredentials(access_token=TOKEN, admin_id="814860")
    message = OutboundMessage(text="Sorry <Ada> & co!\nA replacement ships today.\n\nTracking follows.")
    request = SENDER.request(SENDER.base_url, {"conversation_id": "147", "message_type": "comment"}, message, creds)
    assert request.method == "POST" and request.url == "https://api.intercom.io/conversations/147/reply"
    assert request.headers == {
        "Authorization": f"Bearer {TOKEN}",
        "Intercom-Version": INTERCOM_VERSION,
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    assert json.loads(request.body) == {
        "message_type": "comment",
        "type": "admin",
        "admin_id": "814860",
        "body": "<p>Sorry &lt;Ada&gt; &amp; co!<br>A replacement ships today.</p><p>Tracking follows.</p>",
    }
    note = SENDER.request(
        SENDER.base_url,
        {"conversation_id": "147", "message_type": "note"},
        OutboundMessage("VIP", attachments=(Attachment("https://example.com/a.png", "image/png"),)),
        creds,
    )
    assert json.loads(note.body) == {
        "message_type": "note",
        "type": "admin",
        "admin_id": "814860",
        "body": "<p>VIP</p>",
        "attachment_urls": ["https://example.com/a.png"],
    }


def test_more_than_ten_attachments_are_refused_before_sending():
    creds = IntercomCredentials(access_token=TOKEN, admin_id="1")
    many = tuple(Attachment(f"https://example.com/{i}.png") for i in range(11))
    with pytest.raises(PermanentFailure) as failure:
        SENDER.request(SENDER.base_url, {"conversation_id": "1"}, OutboundMessage("x", attachments=many), creds)
    assert failure.value.code == "too_many_attachments"


def test_html_in_the_text_is_shown_never_rendered():
    assert as_html('<script>alert("x")</script>') == "<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</p>"


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"access_token": TOKEN},
        {"access_token": "short", "admin_id": "1"},
        {"access_token": TOKEN, "admin_id": "admin"},
        {"access_token": TOKEN + " x", "admin_id": "1"},
        {"access_token": TOKEN, "admin_id": "1", "client_secret": "x"},
    ],
)
def test_outbound_credentials_are_validated(bad):
    with pytest.raises(HubError) as error:
        validate_credentials("intercom", bad)
    assert error.value.status == 400


# --- outcome ---------------------------------------------------------------------------------------
def _answer(status: int, payload: Any, headers: dict[str, str] | None = None) -> ProviderResponse:
    return ProviderResponse(status, json.dumps(payload).encode(), headers or {})


def test_the_admins_newest_part_is_the_provider_message_id():
    conversation = json.loads(recorded_event("intercom", "conversation-admin-replied.json"))["data"]["item"]
    assert SENDER.outcome(_answer(200, conversation)) == "2244557"
    user_part = {"type": "conversation_part", "id": "9", "author": {"type": "user", "id": "u"}}
    later = {**conversation, "conversation_parts": {"conversation_parts": [*_parts(conversation), user_part]}}
    assert SENDER.outcome(_answer(200, later)) == "2244557"  # the admin's part, not a later user part
    with pytest.raises(PermanentFailure) as failure:
        SENDER.outcome(_answer(200, {"type": "conversation", "id": "1", "conversation_parts": {}}))
    assert failure.value.code == "unexpected_response"


def _parts(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    return list(conversation["conversation_parts"]["conversation_parts"])


def _errors(code: str, message: str) -> dict[str, Any]:
    return {"type": "error.list", "request_id": "req_1", "errors": [{"code": code, "message": message}]}


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (401, "unauthorized", "Access Token Invalid"),
        (403, "action_forbidden", "Conversation is closed"),
        (404, "not_found", "Resource Not Found"),
        (400, "parameter_invalid", "Body is required"),
    ],
)
def test_documented_refusals_are_permanent_with_intercoms_words(status, code, message):
    with pytest.raises(PermanentFailure) as failure:
        SENDER.outcome(_answer(status, _errors(code, message)))
    assert failure.value.code == f"intercom_{code}" and failure.value.detail == message


def test_rate_limits_wait_for_the_reset_and_outages_are_transient():
    reset = str(int(datetime.now(UTC).timestamp()) + 8)
    with pytest.raises(TransientFailure) as limited:
        SENDER.outcome(
            _answer(429, _errors("rate_limit_exceeded", "Exceeded rate limit"), {"x-ratelimit-reset": reset})
        )
    assert limited.value.code == "intercom_rate_limit_exceeded"
    assert limited.value.retry_after is not None and 5 <= limited.value.retry_after <= 8
    with pytest.raises(TransientFailure) as outage:
        SENDER.outcome(
            _answer(503, _errors("service_unavailable", "Sorry, the API service is temporarily unavailable"))
        )
    assert outage.value.code == "intercom_service_unavailable"


# --- round trip --------------------------------------------------------------------------------------
def test_an_answer_reaches_the_sandbox_once_and_its_admin_replied_webhook_reads_back_delivered(sandbox):
    apis, url = sandbox
    creds = credentials()
    apis.accept("intercom", creds)
    part_id = send(customer_address(), "A replacement ships today.", creds, http_transport, base_url=f"{url}/intercom")
    [sent] = apis.messages
    assert sent.provider == "intercom" and sent.message_id == part_id
    assert sent.text == "<p>A replacement ships today.</p>" and sent.details["message_type"] == "comment"
    assert sent.details["conversation_id"] == customer_address().fields["conversation_id"]

    hub = demo_credentials("intercom")
    signed = build_status("intercom", hub, HUB_URL, vars(sent), "delivered", now=NOW)
    headers = {k.lower(): v for k, v in signed.headers.items()}
    request = WebhookRequest(method=signed.method, url=signed.url, headers=headers, body=signed.body)
    get_adapter("intercom").verify(request, hub, NOW)
    event = event_of(signed.body)
    assert event.type == "message.sent" and event.text == "A replacement ships today."
    status = delivery_status(event)
    assert status is not None and status.provider_message_id == part_id and status.state == "delivered"
    assert reply_address(event) is None
    with pytest.raises(ValueError):
        build_status("intercom", hub, HUB_URL, vars(sent), "read", now=NOW)


def test_a_note_round_trips_as_admin_noted(sandbox):
    apis, url = sandbox
    creds = credentials()
    apis.accept("intercom", creds)
    note = reply_address(recorded("conversation-user-created.json"), "private")
    part_id = send(note, "VIP customer", creds, http_transport, base_url=f"{url}/intercom")
    [sent] = apis.messages
    signed = build_status("intercom", demo_credentials("intercom"), HUB_URL, vars(sent), "delivered", now=NOW)
    assert json.loads(signed.body)["topic"] == "conversation.admin.noted"
    assert delivery_status(event_of(signed.body)).provider_message_id == part_id


def test_the_sandbox_refuses_an_unknown_token_and_another_admin(sandbox):
    apis, url = sandbox
    creds = credentials()
    with pytest.raises(PermanentFailure) as unknown:
        send(customer_address(), "hi", creds, http_transport, base_url=f"{url}/intercom")
    assert unknown.value.code == "intercom_unauthorized"
    apis.accept("intercom", creds)
    other_admin = {**creds, "admin_id": "1" + creds["admin_id"]}
    with pytest.raises(PermanentFailure) as admin:
        send(customer_address(), "hi", other_admin, http_transport, base_url=f"{url}/intercom")
    assert admin.value.code == "intercom_admin_not_found" and apis.messages == []


def test_a_customers_message_is_no_delivery_report():
    assert SENDER.status(recorded("conversation-user-created.json")) is None
    assert SENDER.status(recorded("contact-user-created.json")) is None


def test_the_admin_replied_webhook_joins_the_customers_conversation(sandbox):
    apis, url = sandbox
    creds, hub = credentials(), demo_credentials("intercom")
    apis.accept("intercom", creds)
    conversation = event_of(build_sample("intercom", "conversation", hub, HUB_URL, NOW).body)
    send(reply_address(conversation), "On it.", creds, http_transport, base_url=f"{url}/intercom")
    [sent] = apis.messages
    echo = build_status("intercom", hub, HUB_URL, vars(sent), "delivered", now=NOW)
    assert event_of(echo.body).conversation_key == conversation.conversation_key
