"""Zendesk answers: a comment on the ticket (public reply or internal note), addressed from the
adapter's ticket events, the documented Tickets API update request on the account's own host
(or the sandbox with the subdomain in the path), Zendesk's answers mapped, a round trip over
loopback, and the comment webhook read back as `delivered`."""

from __future__ import annotations

import base64
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
from switchboard_core.outbound.transport import http_transport
from switchboard_core.outbound.zendesk import ZendeskCredentials, ZendeskSender
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import WebhookRequest
from tests.builders import published
from tests.unit.providers.support import recorded_event

NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
HUB_URL = "https://hub.example/webhooks/zendesk/con_1"
SENDER = ZendeskSender()


def credentials() -> dict[str, str]:
    return demo_outbound_credentials("zendesk")


def event_of(request: WebhookRequest) -> CanonicalEvent:
    [event] = published("zendesk", request, received_at=NOW)
    return event


def event_from(body: bytes | dict[str, Any]) -> CanonicalEvent:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return event_of(WebhookRequest(method="POST", url=HUB_URL, headers={}, body=raw))


def recorded(name: str) -> CanonicalEvent:
    return event_from(recorded_event("zendesk", name))


def customer_address() -> ReplyAddress:
    address = reply_address(recorded("ticket-comment-added.json"))
    assert address is not None
    return address


@pytest.fixture
def sandbox(sandbox):
    apis, _ = sandbox
    apis.messages.clear()
    return sandbox


# --- address ---------------------------------------------------------------------------------------
def test_ticket_events_are_answered_on_their_ticket_public_by_default_private_as_a_note():
    assert customer_address().fields == {"ticket_id": "35436", "public": "true"}
    assert (
        reply_address(recorded("ticket-created.json")).fields["ticket_id"]
        == json.loads(recorded_event("zendesk", "ticket-created.json"))["detail"]["id"]
    )
    assert reply_address(recorded("ticket-comment-added.json"), "public").fields["public"] == "true"
    assert reply_address(recorded("ticket-comment-added.json"), "private").fields == {
        "ticket_id": "35436",
        "public": "false",
    }


def test_a_trigger_body_is_answered_on_the_ticket_it_names():
    event = recorded("trigger-ticket-updated.json")
    ticket = json.loads(recorded_event("zendesk", "trigger-ticket-updated.json"))
    expected = str(ticket.get("ticket_id") or ticket.get("ticket", {}).get("id") or ticket.get("id"))
    assert reply_address(event).fields == {"ticket_id": expected, "public": "true"}


def test_every_default_sample_ticket_event_has_an_address():
    for sample in ("ticket-created", "ticket-comment", "trigger"):
        signed = build_sample("zendesk", sample, demo_credentials("zendesk"), HUB_URL, NOW)
        event = event_of(WebhookRequest(method="POST", url=HUB_URL, headers={}, body=signed.body))
        assert reply_address(event) is not None, sample


def _comment_event(**changes: Any) -> dict[str, Any]:
    payload = json.loads(recorded_event("zendesk", "ticket-comment-added.json"))
    payload["event"]["comment"].update(changes)
    return payload


def test_what_cannot_be_answered_has_no_address():
    staff = _comment_event(author={"id": "1", "is_staff": True, "name": "Grace"})
    assert reply_address(event_from(staff)) is None  # our own comment's echo: answering it would loop
    assert reply_address(recorded("user-active-changed.json")) is None
    deleted = json.loads(recorded_event("zendesk", "ticket-created.json"))
    deleted["type"] = "zen:event-type:ticket.soft_deleted"
    assert reply_address(event_from(deleted)) is None
    messaging = {
        "type": "zen:event-type:messaging_ticket.message_added",
        "account_id": 1,
        "id": "01HX",
        "time": "2026-12-02T05:00:00Z",
        "subject": "zen:ticket:77",
        "detail": {"id": "77"},
        "event": {"message": {"body": "hi"}},
    }
    assert reply_address(event_from(messaging)) is None  # answered in the messaging conversation, not the API
    no_ticket = json.loads(recorded_event("zendesk", "ticket-created.json"))
    no_ticket["detail"]["id"] = "x; DROP"
    no_ticket["subject"] = "zen:ticket:../../users"
    assert reply_address(event_from(no_ticket)) is None


# --- request ---------------------------------------------------------------------------------------
def test_the_request_is_the_documented_ticket_update_on_the_accounts_host():
    creds = ZendeskCredentials(subdomain="acme", email="agent@example.com", api_token="a" * 40, author_id="494820284")
    message = OutboundMessage(text="The technician is on the way.\nBring the tray.", message_id="msg_01")
    request = SENDER.request(SENDER.base_url, {"ticket_id": "35436", "public": "true"}, message, creds)
    assert request.method == "PUT"
    assert request.url == "https://acme.zendesk.com/api/v2/tickets/35436.json"
    login = base64.b64decode(request.headers["Authorization"].removeprefix("Basic ")).decode()
    assert login == f"agent@example.com/token:{'a' * 40}"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "ticket": {
            "comment": {
                "body": "The technician is on the way.\nBring the tray.",
                "public": True,
                "author_id": 494820284,
            },
            "metadata": {"switchboard_message_id": "msg_01"},
        }
    }
    note = SENDER.request(SENDER.base_url, {"ticket_id": "35436", "public": "false"}, OutboundMessage("fyi"), creds)
    assert json.loads(note.body) == {"ticket": {"comment": {"body": "fyi", "public": False, "author_id": 494820284}}}


def test_a_sandbox_base_url_replaces_the_origin_and_carries_the_subdomain():
    creds = ZendeskCredentials(subdomain="acme-eu", email="a@example.com", api_token="b" * 40)
    request = SENDER.request("http://127.0.0.1:9/zendesk", {"ticket_id": "7"}, OutboundMessage("hi"), creds)
    assert request.url == "http://127.0.0.1:9/zendesk/acme-eu/api/v2/tickets/7.json"


def test_attachments_are_refused_before_sending():
    creds = ZendeskCredentials.model_validate(credentials())
    message = OutboundMessage("see", attachments=(Attachment("https://example.com/a.png", "image/png"),))
    with pytest.raises(PermanentFailure) as failure:
        SENDER.request(SENDER.base_url, {"ticket_id": "7"}, message, creds)
    assert failure.value.code == "attachments_unsupported"


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"subdomain": "evil.com/x", "email": "a@example.com", "api_token": "a" * 40},
        {"subdomain": "acme.zendesk.com", "email": "a@example.com", "api_token": "a" * 40},
        {"subdomain": "acme@evil", "email": "a@example.com", "api_token": "a" * 40},
        {"subdomain": "-acme", "email": "a@example.com", "api_token": "a" * 40},
        {"subdomain": "acme", "email": "not-an-email", "api_token": "a" * 40},
        {"subdomain": "acme", "email": "a@example.com", "api_token": "short"},
        {"subdomain": "acme", "email": "a@example.com", "api_token": "a" * 40, "author_id": "me"},
        {"subdomain": "acme", "email": "a@example.com", "api_token": "a" * 40, "password": "x"},
    ],
)
def test_outbound_credentials_are_validated(bad):
    with pytest.raises(HubError) as error:
        validate_credentials("zendesk", bad)
    assert error.value.status == 400


# --- outcome ---------------------------------------------------------------------------------------
def _answer(status: int, payload: Any, headers: dict[str, str] | None = None) -> ProviderResponse:
    return ProviderResponse(status, json.dumps(payload).encode(), headers or {})


def test_the_comment_id_of_the_audit_is_the_provider_message_id():
    documented = {
        "ticket": {"id": 35436, "status": "open"},
        "audit": {
            "id": 1564244,
            "events": [
                {"id": 1564245, "type": "Comment", "body": "Thanks for your help!", "public": True},
                {"id": 1564246, "type": "Notification", "body": "Ticket #47 has been updated"},
            ],
        },
    }
    assert SENDER.outcome(_answer(200, documented)) == "1564245"
    with pytest.raises(PermanentFailure) as failure:
        SENDER.outcome(_answer(200, {"ticket": {"id": 1}, "audit": {"events": [{"id": 9, "type": "Change"}]}}))
    assert failure.value.code == "unexpected_response"


@pytest.mark.parametrize(
    ("status", "payload", "code", "words"),
    [
        (401, {"error": "Couldn't authenticate you"}, "zendesk_Couldn_t_authenticate_you", "authenticate"),
        (404, {"error": "RecordNotFound", "description": "Not found"}, "zendesk_RecordNotFound", "Not found"),
        (
            422,
            {
                "error": "RecordInvalid",
                "description": "Record validation errors",
                "details": {"status": [{"description": "Status: closed prevents ticket update"}]},
            },
            "zendesk_RecordInvalid",
            "closed prevents ticket update",
        ),
        (403, {"error": {"title": "Forbidden", "message": "You do not have access"}}, "zendesk_Forbidden", "access"),
    ],
)
def test_documented_refusals_are_permanent_with_zendesks_words(status, payload, code, words):
    with pytest.raises(PermanentFailure) as failure:
        SENDER.outcome(_answer(status, payload))
    assert failure.value.code == code and words in failure.value.detail


def test_rate_limits_conflicts_and_outages_are_transient_after_retry_after():
    with pytest.raises(TransientFailure) as limited:
        SENDER.outcome(_answer(429, {"error": "TooManyRequests"}, {"retry-after": "93"}))
    assert limited.value.retry_after == 93 and limited.value.code == "zendesk_TooManyRequests"
    with pytest.raises(TransientFailure) as conflict:
        SENDER.outcome(_answer(409, {"error": "UpdateConflict", "description": "Ticket was updated meanwhile"}))
    assert conflict.value.code == "zendesk_UpdateConflict"
    with pytest.raises(TransientFailure):
        SENDER.outcome(ProviderResponse(503, b"<html>maintenance</html>", {}))


# --- round trip --------------------------------------------------------------------------------------
def test_an_answer_reaches_the_sandbox_once_and_its_comment_webhook_reads_back_delivered(sandbox):
    apis, url = sandbox
    creds = credentials()
    apis.accept("zendesk", creds)
    message = OutboundMessage(text="A new tray ships today.", message_id="msg_42")
    comment_id = send(customer_address(), message, creds, http_transport, base_url=f"{url}/zendesk")
    [sent] = apis.messages
    assert sent.provider == "zendesk" and sent.message_id == comment_id and sent.text == "A new tray ships today."
    assert sent.details["ticket_id"] == "35436" and sent.details["subdomain"] == creds["subdomain"]
    assert sent.details["public"] is True

    hub = demo_credentials("zendesk")
    signed = build_status("zendesk", hub, HUB_URL, vars(sent), "delivered", now=NOW)
    headers = {k.lower(): v for k, v in signed.headers.items()}
    request = WebhookRequest(method=signed.method, url=signed.url, headers=headers, body=signed.body)
    adapter = get_adapter("zendesk")
    adapter.verify(request, hub, NOW)
    event = event_of(request)
    assert event.type == "ticket.comment_added"
    status = delivery_status(event)
    assert status is not None and status.provider_message_id == comment_id and status.state == "delivered"
    assert reply_address(event) is None  # the echo of our own comment is never answered
    with pytest.raises(ValueError):
        build_status("zendesk", hub, HUB_URL, vars(sent), "failed", "no such thing", now=NOW)


def test_a_private_note_is_recorded_as_not_public(sandbox):
    apis, url = sandbox
    creds = credentials()
    apis.accept("zendesk", creds)
    note = reply_address(recorded("ticket-comment-added.json"), "private")
    send(note, "Customer is a VIP", creds, http_transport, base_url=f"{url}/zendesk")
    [sent] = apis.messages
    assert sent.details["public"] is False


def test_the_sandbox_refuses_other_credentials_and_another_subdomain(sandbox):
    apis, url = sandbox
    creds = credentials()
    with pytest.raises(PermanentFailure) as unknown:
        send(customer_address(), "hi", creds, http_transport, base_url=f"{url}/zendesk")
    assert unknown.value.code == "zendesk_Couldn_t_authenticate_you"
    apis.accept("zendesk", creds)
    other = {**creds, "subdomain": "someone-else"}
    with pytest.raises(PermanentFailure):
        send(customer_address(), "hi", other, http_transport, base_url=f"{url}/zendesk")
    assert apis.messages == []


def test_a_customers_comment_is_no_delivery_report():
    assert SENDER.status(recorded("ticket-comment-added.json")) is None
    assert SENDER.status(recorded("ticket-created.json")) is None


def test_the_sandbox_calls_the_hub_back_with_the_signed_comment_webhook(sandbox):
    import urllib.error
    import urllib.request

    apis, url = sandbox
    creds = credentials()
    apis.accept("zendesk", creds)
    comment_id = send(customer_address(), "Fixed.", creds, http_transport, base_url=f"{url}/zendesk")
    hub = demo_credentials("zendesk")
    seen: list[str] = []

    def hub_receives(sent, state, reason) -> int:  # what the local runtime's post_status_webhook does, minus HTTP
        signed = build_status(sent.provider, hub, HUB_URL, vars(sent), state, reason)
        request = WebhookRequest(
            method="POST", url=HUB_URL, headers={k.lower(): v for k, v in signed.headers.items()}, body=signed.body
        )
        get_adapter("zendesk").verify(request, hub, datetime.now(UTC))
        status = delivery_status(event_of(request))
        seen.append(f"{status.provider_message_id}:{status.state}")
        return 200

    def order(state: str) -> int:
        body = json.dumps({"message_id": comment_id, "state": state}).encode()
        request = urllib.request.Request(f"{url}/_sandbox/status", data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    apis.status_webhook = hub_receives
    try:
        assert order("delivered") == 200 and seen == [f"{comment_id}:delivered"]
        assert order("failed") == 409  # Zendesk has no failure report to send
    finally:
        apis.status_webhook = None


def test_the_comment_webhook_joins_the_tickets_conversation(sandbox):
    apis, url = sandbox
    creds, hub = credentials(), demo_credentials("zendesk")
    apis.accept("zendesk", creds)
    signed = build_sample("zendesk", "ticket-created", hub, HUB_URL, NOW)
    ticket = event_of(WebhookRequest(method="POST", url=HUB_URL, headers={}, body=signed.body))
    send(reply_address(ticket), "On it.", creds, http_transport, base_url=f"{url}/zendesk")
    [sent] = apis.messages
    echo = build_status("zendesk", hub, HUB_URL, vars(sent), "delivered", now=NOW)
    assert event_from(echo.body).conversation_key == ticket.conversation_key
