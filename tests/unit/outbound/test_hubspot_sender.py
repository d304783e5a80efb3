"""HubSpot answers: a message (or internal comment) on the inbox thread, addressed from the
customer's `message.received` (the thread message the hubspot_threads function fetched for a
`conversation.newMessage` webhook), the documented Conversations API request (channel and channel
account from the event, else the credentials), HubSpot's answers mapped, a round trip over
loopback, and the answer's own `message.sent` (its webhook, fetched) read back as `delivered`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.hubspot_threads.logic import ThreadMessage, thread_event
from infra.local.provider_apis import demo_outbound_credentials, hubspot_inbound_message
from infra.local.samples import build_status, demo_credentials
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound import PermanentFailure, ReplyAddress, TransientFailure, reply_address
from switchboard_core.outbound.base import Attachment, OutboundMessage, ProviderResponse
from switchboard_core.outbound.hubspot import HubSpotCredentials, HubSpotSender, message_request
from switchboard_core.outbound.transport import http_transport
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import WebhookRequest
from tests.builders import posted
from tests.unit.providers.support import recorded_event

NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
HUB_URL = "https://hub.example/webhooks/hubspot/con_1"
SENDER = HubSpotSender()
TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"


def credentials() -> dict[str, str]:
    return demo_outbound_credentials("hubspot")


def events_of(body: bytes | list[dict[str, Any]]) -> list[CanonicalEvent]:
    return posted("hubspot", body, received_at=NOW)


def batch() -> list[dict[str, Any]]:
    return json.loads(recorded_event("hubspot", "batch-mixed.json"))


def webhook_event(**changes: Any) -> CanonicalEvent:
    """What ingest publishes for HubSpot's conversation.newMessage webhook: ids only."""
    [item] = [i for i in batch() if i["subscriptionType"] == "conversation.newMessage"]
    [event] = events_of([{**item, **changes}])
    return event


def thread_message(**changes: Any) -> CanonicalEvent:
    """The customer's message that webhook names, as hubspot_threads publishes it once fetched."""
    message = hubspot_inbound_message("4455667788", "Where is my parcel?", message_id="a1b2c3d4e5", contact_id="77")
    message.pop("channelId"), message.pop("channelAccountId")
    return thread_event(webhook_event(), "4455667788", ThreadMessage.model_validate({**message, **changes}))


def customer_address() -> ReplyAddress:
    address = reply_address(thread_message())
    assert address is not None
    return address


@pytest.fixture
def sandbox(sandbox):
    apis, _ = sandbox
    apis.messages.clear()
    return sandbox


# --- address ---------------------------------------------------------------------------------------
def test_a_thread_message_is_answered_in_its_thread_with_a_message_or_a_comment():
    assert SENDER.address(thread_message()) == {"thread_id": "4455667788", "type": "MESSAGE"}
    assert SENDER.address(thread_message(), "public") == {"thread_id": "4455667788", "type": "MESSAGE"}
    assert SENDER.address(thread_message(), "private") == {"thread_id": "4455667788", "type": "COMMENT"}


def test_a_channel_named_by_the_event_is_kept():
    event = thread_message(channelId="1000", channelAccountId="12345678")  # the thread's own channel
    assert SENDER.address(event) == {
        "thread_id": "4455667788",
        "type": "MESSAGE",
        "channel_id": "1000",
        "channel_account_id": "12345678",
    }


def test_the_business_messages_webhooks_crm_objects_and_odd_thread_ids_have_no_address():
    assert SENDER.address(thread_message(direction="OUTGOING")) is None  # the business's own: message.sent
    odd = thread_message()
    assert SENDER.address(odd.model_copy(update={"attributes": {**odd.attributes, "threadId": "../crm"}})) is None
    assert SENDER.address(odd.model_copy(update={"attributes": {**odd.attributes, "messageType": "COMMENT"}})) is None
    assert SENDER.address(webhook_event()) is None  # the bare webhook: who wrote it is unknown
    others = [e for e in events_of(batch()) if e.attributes.get("subscriptionType") != "conversation.newMessage"]
    assert others and all(SENDER.address(e) is None for e in others)


# --- request ---------------------------------------------------------------------------------------
def test_a_message_is_the_documented_request_with_the_credentials_channel():
    creds = HubSpotCredentials(
        access_token=TOKEN, sender_actor_id="A-1234567", channel_id="1000", channel_account_id="98765432"
    )
    message = OutboundMessage(text="Your order <ships> today.\n\nThanks & bye")
    request = SENDER.request(SENDER.base_url, {"thread_id": "4455667788", "type": "MESSAGE"}, message, creds)
    assert request.method == "POST"
    assert request.url == "https://api.hubapi.com/conversations/v3/conversations/threads/4455667788/messages"
    assert request.headers == {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    assert json.loads(request.body) == {
        "type": "MESSAGE",
        "text": "Your order <ships> today.\n\nThanks & bye",
        "richText": "<p>Your order &lt;ships&gt; today.</p><p>Thanks &amp; bye</p>",
        "senderActorId": "A-1234567",
        "channelId": "1000",
        "channelAccountId": "98765432",
    }


def test_the_events_channel_wins_and_a_comment_needs_none():
    creds = HubSpotCredentials(access_token=TOKEN, sender_actor_id="A-1")
    address = {"thread_id": "1", "type": "MESSAGE", "channel_id": "1007", "channel_account_id": "55"}
    body = json.loads(SENDER.request(SENDER.base_url, address, OutboundMessage("hi"), creds).body)
    assert (body["channelId"], body["channelAccountId"]) == ("1007", "55")
    comment = json.loads(
        SENDER.request(SENDER.base_url, {"thread_id": "1", "type": "COMMENT"}, OutboundMessage("VIP"), creds).body
    )
    assert comment == {"type": "COMMENT", "text": "VIP", "richText": "<p>VIP</p>"}


def test_a_message_without_a_known_channel_and_attachments_are_refused_before_sending():
    creds = HubSpotCredentials(access_token=TOKEN, sender_actor_id="A-1")
    with pytest.raises(PermanentFailure) as unknown:
        SENDER.request(SENDER.base_url, {"thread_id": "1", "type": "MESSAGE"}, OutboundMessage("hi"), creds)
    assert unknown.value.code == "channel_unknown"
    attached = OutboundMessage("see", attachments=(Attachment("https://example.com/a.pdf"),))
    with pytest.raises(PermanentFailure) as attachments:
        SENDER.request(SENDER.base_url, {"thread_id": "1", "type": "COMMENT"}, attached, creds)
    assert attachments.value.code == "attachments_unsupported"


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"access_token": TOKEN},
        {"access_token": "secret", "sender_actor_id": "A-1"},
        {"access_token": TOKEN, "sender_actor_id": "V-1"},
        {"access_token": TOKEN, "sender_actor_id": "A-1", "channel_id": "chat"},
        {"access_token": TOKEN, "sender_actor_id": "A-1", "portal": "1"},
    ],
)
def test_outbound_credentials_are_validated(bad):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        HubSpotCredentials.model_validate(bad)


# --- outcome ---------------------------------------------------------------------------------------
def _answer(status: int, payload: Any, headers: dict[str, str] | None = None) -> ProviderResponse:
    return ProviderResponse(status, json.dumps(payload).encode(), headers or {})


def _error(category: str, message: str) -> dict[str, Any]:
    return {"status": "error", "message": message, "correlationId": "c0ffee", "category": category}


def test_the_message_id_is_the_provider_message_id_unless_hubspot_failed_it():
    sent = {"type": "MESSAGE", "id": "a1b2c3d4e5", "conversationsThreadId": "1", "status": {"statusType": "SENT"}}
    assert SENDER.outcome(_answer(201, sent)) == "a1b2c3d4e5"
    failed = {**sent, "status": {"statusType": "FAILED", "failureDetails": {"errorMessage": "Recipient unreachable"}}}
    with pytest.raises(PermanentFailure) as failure:
        SENDER.outcome(_answer(201, failed))
    assert failure.value.code == "hubspot_message_failed" and failure.value.detail == "Recipient unreachable"
    with pytest.raises(PermanentFailure) as odd:
        SENDER.outcome(_answer(201, {"type": "MESSAGE"}))
    assert odd.value.code == "unexpected_response"


@pytest.mark.parametrize(
    ("status", "category"),
    [(401, "INVALID_AUTHENTICATION"), (403, "MISSING_SCOPES"), (404, "OBJECT_NOT_FOUND"), (400, "VALIDATION_ERROR")],
)
def test_documented_refusals_are_permanent_with_hubspots_words(status, category):
    with pytest.raises(PermanentFailure) as failure:
        SENDER.outcome(_answer(status, _error(category, "words")))
    assert failure.value.code == f"hubspot_{category}" and failure.value.detail == "words"


def test_rate_limits_wait_for_retry_after_or_the_rolling_interval():
    limited = _error("RATE_LIMITS", "You have reached your ten_secondly_rolling limit.")
    with pytest.raises(TransientFailure) as interval:
        SENDER.outcome(_answer(429, limited, {"x-hubspot-ratelimit-interval-milliseconds": "10000"}))
    assert interval.value.code == "hubspot_RATE_LIMITS" and interval.value.retry_after == 10
    with pytest.raises(TransientFailure) as told:
        SENDER.outcome(_answer(429, limited, {"retry-after": "3"}))
    assert told.value.retry_after == 3
    with pytest.raises(TransientFailure):
        SENDER.outcome(_answer(502, {"status": "error", "message": "Bad gateway"}))


# --- round trip --------------------------------------------------------------------------------------
def test_a_message_reaches_the_sandbox_once_and_its_new_message_webhook_reads_back_delivered(sandbox):
    apis, url = sandbox
    creds = credentials()
    apis.accept("hubspot", creds)
    model = HubSpotCredentials.model_validate(creds)
    request = SENDER.request(f"{url}/hubspot", SENDER.address(thread_message()), OutboundMessage("On its way"), model)
    message_id = SENDER.outcome(http_transport(request))
    [sent] = apis.messages
    assert sent.provider == "hubspot" and sent.message_id == message_id and sent.text == "On its way"
    assert sent.details["thread_id"] == "4455667788" and sent.details["channel_id"] == creds["channel_id"]

    hub = demo_credentials("hubspot")
    signed = build_status("hubspot", hub, HUB_URL, vars(sent), "delivered", now=NOW)
    headers = {k.lower(): v for k, v in signed.headers.items()}
    webhook = WebhookRequest(method=signed.method, url=signed.url, headers=headers, body=signed.body)
    get_adapter("hubspot").verify(webhook, hub, NOW)
    [event] = events_of(signed.body)
    assert SENDER.status(event) is None  # the webhook alone says nothing about who wrote it
    assert (event.attributes["objectId"], event.attributes["messageId"]) == (4455667788, message_id)
    fetch = http_transport(message_request(f"{url}/hubspot", "4455667788", message_id, model))
    echo = thread_event(event, "4455667788", ThreadMessage.model_validate(fetch.json()))
    status = SENDER.status(echo)
    assert echo.type == "message.sent" and status is not None
    assert status.provider_message_id == message_id and status.state == "delivered"
    with pytest.raises(ValueError):
        build_status("hubspot", hub, HUB_URL, vars(sent), "failed", now=NOW)


def test_the_sandbox_refuses_an_unknown_token_and_another_agent(sandbox):
    apis, url = sandbox
    creds = credentials()
    model = HubSpotCredentials.model_validate(creds)
    address = {"thread_id": "1", "type": "MESSAGE"}
    with pytest.raises(PermanentFailure) as unknown:
        SENDER.outcome(http_transport(SENDER.request(f"{url}/hubspot", address, OutboundMessage("hi"), model)))
    assert unknown.value.code == "hubspot_INVALID_AUTHENTICATION"
    apis.accept("hubspot", creds)
    stranger = model.model_copy(update={"sender_actor_id": "A-999999999"})
    with pytest.raises(PermanentFailure) as agent:
        SENDER.outcome(http_transport(SENDER.request(f"{url}/hubspot", address, OutboundMessage("hi"), stranger)))
    assert agent.value.code == "hubspot_VALIDATION_ERROR" and apis.messages == []


def test_crm_events_and_the_customers_messages_are_no_delivery_report():
    others = [e for e in events_of(batch()) if e.attributes.get("subscriptionType") != "conversation.newMessage"]
    assert all(SENDER.status(e) is None for e in others)
    assert SENDER.status(thread_message()) is None
