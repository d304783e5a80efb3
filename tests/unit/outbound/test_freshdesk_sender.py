"""Freshdesk answers: a reply on the ticket (or a private note), addressed from the adapter's
automation-rule events, the documented reply/notes requests on the helpdesk's own host (or the
sandbox with the domain in the path), Freshdesk's answers mapped, and a round trip over loopback."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.local.provider_apis import demo_outbound_credentials
from infra.local.samples import build_sample, build_status, demo_credentials, sends_statuses
from switchboard_core.errors import HubError
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound import (
    PermanentFailure,
    ReplyAddress,
    TransientFailure,
    reply_address,
    send,
    validate_credentials,
)
from switchboard_core.outbound.base import Attachment, OutboundMessage, ProviderResponse
from switchboard_core.outbound.freshdesk import FreshdeskCredentials, FreshdeskSender
from switchboard_core.outbound.transport import http_transport
from tests.builders import posted
from tests.unit.providers.support import recorded_event

NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
HUB_URL = "https://hub.example/webhooks/freshdesk/con_1"
SENDER = FreshdeskSender()
KEY = "sjhdfgjHGJSDF67sdfa1"


def credentials() -> dict[str, str]:
    return demo_outbound_credentials("freshdesk")


def event_of(body: bytes | dict[str, Any]) -> CanonicalEvent:
    [event] = posted("freshdesk", body, received_at=NOW)
    return event


def recorded(name: str) -> CanonicalEvent:
    return event_of(recorded_event("freshdesk", name))


def customer_address() -> ReplyAddress:
    address = reply_address(recorded("recommended-template.json"))
    assert address is not None
    return address


@pytest.fixture
def sandbox(sandbox):
    apis, _ = sandbox
    apis.messages.clear()
    return sandbox


# --- address ---------------------------------------------------------------------------------------
def test_a_ticket_is_answered_with_a_reply_or_a_private_note_on_its_helpdesk():
    assert customer_address().fields == {"ticket_id": "1042", "kind": "reply", "domain": "acme"}
    private = reply_address(recorded("recommended-template.json"), "private")
    assert private.fields == {"ticket_id": "1042", "kind": "note", "domain": "acme"}
    simple = reply_address(recorded("simple-mode-wrapper.json"))  # domain from the ticket URL
    assert simple.fields == {"ticket_id": "2048", "kind": "reply", "domain": "acme"}


def test_the_default_samples_can_be_answered():
    for sample in ("ticket-updated", "ticket-updated-simple"):
        signed = build_sample("freshdesk", sample, demo_credentials("freshdesk"), HUB_URL, NOW)
        assert reply_address(event_of(signed.body)) is not None, sample


def test_an_unreadable_ticket_id_or_a_foreign_host_is_not_taken_for_an_address():
    payload = json.loads(recorded_event("freshdesk", "recommended-template.json"))
    assert reply_address(event_of({**payload, "ticket_id": "#1042"})).fields["ticket_id"] == "1042"
    assert reply_address(event_of({**payload, "ticket_id": "1042/../../contacts"})) is None
    foreign = reply_address(event_of({**payload, "domain": "evil.example.com", "url": "https://evil.example.com/x"}))
    assert foreign.fields == {"ticket_id": "1042", "kind": "reply"}  # no domain named: the credentials' is used


# --- request ---------------------------------------------------------------------------------------
def test_a_reply_is_the_documented_request_on_the_helpdesks_host():
    creds = FreshdeskCredentials(domain="acme", api_key=KEY, user_id="43012345678")
    message = OutboundMessage(text="Your parcel <ships> today & tomorrow.\nTracking: 1Z999")
    request = SENDER.request(SENDER.base_url, customer_address().fields, message, creds)
    assert request.method == "POST" and request.url == "https://acme.freshdesk.com/api/v2/tickets/1042/reply"
    assert base64.b64decode(request.headers["Authorization"].removeprefix("Basic ")).decode() == f"{KEY}:X"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "body": "Your parcel &lt;ships&gt; today &amp; tomorrow.<br>Tracking: 1Z999",
        "user_id": 43012345678,
    }


def test_a_private_answer_is_a_private_note():
    creds = FreshdeskCredentials(domain="acme", api_key=KEY)
    request = SENDER.request(SENDER.base_url, {"ticket_id": "7", "kind": "note"}, OutboundMessage("VIP"), creds)
    assert request.url == "https://acme.freshdesk.com/api/v2/tickets/7/notes"
    assert json.loads(request.body) == {"body": "VIP", "private": True}


def test_a_sandbox_base_url_replaces_the_origin_and_carries_the_domain():
    creds = FreshdeskCredentials(domain="acme-eu", api_key=KEY)
    request = SENDER.request("http://127.0.0.1:9/freshdesk", {"ticket_id": "7"}, OutboundMessage("hi"), creds)
    assert request.url == "http://127.0.0.1:9/freshdesk/acme-eu/api/v2/tickets/7/reply"


def test_a_ticket_of_another_helpdesk_and_attachments_are_refused_before_sending():
    creds = FreshdeskCredentials(domain="other", api_key=KEY)
    with pytest.raises(PermanentFailure) as mismatch:
        SENDER.request(SENDER.base_url, customer_address().fields, OutboundMessage("hi"), creds)
    assert mismatch.value.code == "domain_mismatch" and "acme.freshdesk.com" in mismatch.value.detail
    attached = OutboundMessage("see", attachments=(Attachment("https://example.com/a.pdf"),))
    with pytest.raises(PermanentFailure) as attachments:
        SENDER.request(SENDER.base_url, {"ticket_id": "7"}, attached, FreshdeskCredentials(domain="acme", api_key=KEY))
    assert attachments.value.code == "attachments_unsupported"


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"domain": "acme", "api_key": "short"},
        {"domain": "acme.freshdesk.com", "api_key": KEY},
        {"domain": "evil.com/", "api_key": KEY},
        {"domain": "Acme", "api_key": KEY},
        {"domain": "acme", "api_key": KEY + "!"},
        {"domain": "acme", "api_key": KEY, "user_id": "agent"},
        {"domain": "acme", "api_key": KEY, "password": "X"},
    ],
)
def test_outbound_credentials_are_validated(bad):
    with pytest.raises(HubError) as error:
        validate_credentials("freshdesk", bad)
    assert error.value.status == 400


# --- outcome ---------------------------------------------------------------------------------------
def _answer(status: int, payload: Any, headers: dict[str, str] | None = None) -> ProviderResponse:
    body = b"" if payload is None else json.dumps(payload).encode()
    return ProviderResponse(status, body, headers or {})


def test_the_conversation_id_is_the_provider_message_id():
    reply = {"body_text": "Hi", "body": "<div>Hi</div>", "id": 19006541, "ticket_id": 1042, "user_id": 43012345678}
    assert SENDER.outcome(_answer(201, reply)) == "19006541"
    with pytest.raises(PermanentFailure) as failure:
        SENDER.outcome(_answer(201, {"body": "Hi"}))
    assert failure.value.code == "unexpected_response"


@pytest.mark.parametrize(
    ("status", "payload", "code", "words"),
    [
        (
            400,
            {
                "description": "Validation failed",
                "errors": [{"field": "body", "message": "Mandatory attribute missing", "code": "missing_field"}],
            },
            "freshdesk_missing_field",
            "Validation failed: body: Mandatory attribute missing",
        ),
        (
            401,
            {"code": "invalid_credentials", "message": "You have to be logged in to perform this action."},
            "freshdesk_invalid_credentials",
            "You have to be logged in to perform this action.",
        ),
        (
            403,
            {"code": "access_denied", "message": "You are not authorized to perform this action."},
            "freshdesk_access_denied",
            "You are not authorized to perform this action.",
        ),
        (404, None, "http_404", "no such ticket"),
    ],
)
def test_documented_refusals_are_permanent_with_freshdesks_words(status, payload, code, words):
    with pytest.raises(PermanentFailure) as failure:
        SENDER.outcome(_answer(status, payload))
    assert failure.value.code == code and failure.value.detail == words


def test_rate_limits_wait_for_retry_after_and_outages_are_transient():
    with pytest.raises(TransientFailure) as limited:
        SENDER.outcome(_answer(429, None, {"retry-after": "37", "x-ratelimit-remaining": "0"}))
    assert limited.value.retry_after == 37
    with pytest.raises(TransientFailure):
        SENDER.outcome(_answer(502, None))


# --- round trip --------------------------------------------------------------------------------------
def test_a_reply_and_a_note_reach_the_sandbox_once_each(sandbox):
    apis, url = sandbox
    creds = credentials()
    apis.accept("freshdesk", creds)
    reply_id = send(customer_address(), "It ships today.", creds, http_transport, base_url=f"{url}/freshdesk")
    note = reply_address(recorded("recommended-template.json"), "private")
    note_id = send(note, "VIP", creds, http_transport, base_url=f"{url}/freshdesk")
    reply, private = apis.messages
    assert (reply.message_id, reply.text, reply.details["kind"]) == (reply_id, "It ships today.", "reply")
    assert (private.message_id, private.details["kind"], private.details["private"]) == (note_id, "note", True)
    assert reply.details["domain"] == "acme" and reply.details["ticket_id"] == "1042"


def test_the_sandbox_refuses_an_unknown_key(sandbox):
    apis, url = sandbox
    with pytest.raises(PermanentFailure) as unknown:
        send(customer_address(), "hi", credentials(), http_transport, base_url=f"{url}/freshdesk")
    assert unknown.value.code == "freshdesk_invalid_credentials" and apis.messages == []


def test_freshdesk_reports_nothing_back():
    # No Freshdesk webhook names a reply's id: no status sample, no status reading.
    assert not sends_statuses("freshdesk")
    with pytest.raises(ValueError):
        build_status("freshdesk", demo_credentials("freshdesk"), HUB_URL, {}, "delivered")
    assert SENDER.status(recorded("recommended-template.json")) is None
