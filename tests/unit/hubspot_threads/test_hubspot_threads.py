"""HubSpot thread messages: a `conversation.newMessage` webhook event in, the message fetched from the
Conversations API (the loopback sandbox, or a scripted answer) and published as what it is: the
customer's as `message.received` in the thread's conversation, the business's as `message.sent`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.hubspot_threads.logic import Outcome, ThreadDeps, handle
from infra.local.provider_apis import ProviderApis, demo_outbound_credentials, hubspot_inbound_message, serve
from switchboard_core.connections import Connection, StoredCredentials
from switchboard_core.errors import NotFound
from switchboard_core.events import CanonicalEvent, Channel
from switchboard_core.outbound import API_OVERRIDE_ENV, OutcomeUnknown, TransientFailure, reply_address
from switchboard_core.outbound.base import OutboundRequest, ProviderResponse
from switchboard_core.outbound.hubspot import HubSpotSender
from switchboard_core.outbound.transport import http_transport
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import WebhookRequest
from tests.builders import canonical

NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
CONNECTION = "con_hubspot1"
THREAD = "4455667788"
PORTAL = 33
OUTBOUND = demo_outbound_credentials("hubspot")


class Connections:
    def __init__(self, connection: Connection | None) -> None:
        self.connection = connection

    def get(self, connection_id: str) -> Connection:
        if self.connection is None or self.connection.id != connection_id:
            raise NotFound(f"unknown connection {connection_id!r}", code="unknown_connection")
        return self.connection


class Credentials:
    def __init__(self, current: dict[str, str]) -> None:
        self.current = current
        self.reads = 0

    def get(self, connection_id: str) -> StoredCredentials:
        self.reads += 1
        return StoredCredentials(current=self.current)


def connection(configured: bool = True) -> Connection:
    return Connection(
        id=CONNECTION,
        provider="hubspot",
        tenant="acme",
        created_at=NOW,
        outbound_configured_at=NOW if configured else None,
    )


def deps(transport: Callable[[OutboundRequest], ProviderResponse], **changes: Any) -> ThreadDeps:
    return ThreadDeps(
        connections=changes.get("connections", Connections(connection())),
        credentials=changes.get("credentials", Credentials(OUTBOUND)),
        transport=transport,
    )


def webhook(message_id: str = "a1b2c3d4e5", **changes: Any) -> CanonicalEvent:
    """The event ingest publishes for HubSpot's conversation.newMessage webhook (through the adapter)."""
    item = {
        "eventId": 3816279348,
        "subscriptionId": 33,
        "portalId": PORTAL,
        "appId": 1160452,
        "occurredAt": 1718201292000,
        "subscriptionType": "conversation.newMessage",
        "attemptNumber": 0,
        "objectId": int(THREAD),
        "messageId": message_id,
        "messageType": "MESSAGE",
        "changeFlag": "NEW_MESSAGE",
        **changes,
    }
    request = WebhookRequest(method="POST", url="https://hub.example/x", headers={}, body=json.dumps([item]).encode())
    (draft,) = get_adapter("hubspot").normalise(request)
    return canonical(draft, received_at=NOW, provider="hubspot", connection=CONNECTION, channel=Channel.CRM)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderApis]:
    apis = ProviderApis()
    server, url = serve(apis)
    apis.accept("hubspot", OUTBOUND)
    monkeypatch.setenv(API_OVERRIDE_ENV, url)
    yield apis
    server.shutdown()


def customer_message(**changes: Any) -> dict[str, Any]:
    message = hubspot_inbound_message(
        THREAD,
        "My order arrived damaged",
        message_id="a1b2c3d4e5",
        contact_id="1246965",
        email="Ada@Example.com",
        name="Ada Lovelace",
        channel_id="1000",
        channel_account_id="98765432",
    )
    return {**message, **changes}


def answered(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Callable[..., ProviderResponse]:
    calls: list[OutboundRequest] = []

    def transport(request: OutboundRequest) -> ProviderResponse:
        calls.append(request)
        return ProviderResponse(status, json.dumps(payload).encode(), headers or {})

    transport.calls = calls  # type: ignore[attr-defined]
    return transport


# --- the customer's message --------------------------------------------------------------------------
def test_a_customers_message_is_fetched_and_received_in_the_threads_conversation(sandbox):
    sandbox.add_hubspot_message(customer_message())
    outcome = handle(webhook(), deps(http_transport), NOW)
    assert outcome.skipped is None
    (event,) = outcome.events
    assert event.type == "message.received" and event.provider == "hubspot" and event.connection == CONNECTION
    assert event.tenant == "acme" and event.channel == Channel.CRM
    assert event.conversation_key == f"hubspot:{PORTAL}:thread:{THREAD}"
    assert event.text == "My order arrived damaged"
    assert event.contact.crm_ids == {"hubspot": "1246965"} and event.contact.email == "ada@example.com"
    assert event.contact.name == "Ada Lovelace"
    assert event.attributes == {
        "threadId": THREAD,
        "messageId": "a1b2c3d4e5",
        "messageType": "MESSAGE",
        "direction": "INCOMING",
        "channelId": "1000",
        "channelAccountId": "98765432",
        "senderActorId": "V-1246965",
        "portalId": str(PORTAL),
        "webhook_event": webhook().id,
    }
    # ... and it is what the HubSpot sender answers: in the thread, on its channel
    address = reply_address(event)
    assert address is not None and address.fields == {
        "thread_id": THREAD,
        "type": "MESSAGE",
        "channel_id": "1000",
        "channel_account_id": "98765432",
    }
    assert reply_address(event, "private").fields["type"] == "COMMENT"  # type: ignore[union-attr]


def test_the_fetch_is_the_documented_request_with_the_connections_token():
    transport = answered(customer_message())
    handle(webhook(), deps(transport), NOW)
    (request,) = transport.calls  # type: ignore[attr-defined]
    assert request.method == "GET" and request.body == b""
    assert request.url == f"https://api.hubapi.com/conversations/v3/conversations/threads/{THREAD}/messages/a1b2c3d4e5"
    assert request.headers["Authorization"] == f"Bearer {OUTBOUND['access_token']}"


def test_a_redelivered_webhook_publishes_the_same_event(sandbox):
    sandbox.add_hubspot_message(customer_message())
    first = handle(webhook(), deps(http_transport), NOW).events
    again = handle(webhook(), deps(http_transport), NOW).events
    assert first == again and first[0].id == again[0].id
    # another webhook item announcing the same message (HubSpot's retry has a new attemptNumber) too
    assert handle(webhook(attemptNumber=1), deps(http_transport), NOW).events[0].id == first[0].id


# --- the business's own ------------------------------------------------------------------------------
def test_the_business_message_is_message_sent_and_reads_back_as_the_answers_delivery(sandbox):
    # the hub's answer posted through the sender, then announced by HubSpot's webhook
    sender = HubSpotSender()
    from switchboard_core.outbound import send
    from switchboard_core.outbound.base import ReplyAddress

    address = ReplyAddress(provider="hubspot", connection=CONNECTION, fields={"thread_id": THREAD, "type": "MESSAGE"})
    provider_id = send(address, "A replacement ships today", OUTBOUND, http_transport)
    (event,) = handle(webhook(message_id=provider_id), deps(http_transport), NOW).events
    assert event.type == "message.sent" and event.text == "A replacement ships today"
    assert (
        event.attributes["direction"] == "OUTGOING" and event.attributes["senderActorId"] == OUTBOUND["sender_actor_id"]
    )
    assert event.attributes["automated"] is True  # posted through the API: software, not an agent in HubSpot
    assert reply_address(event) is None  # the business's own message is never answered
    status = sender.status(event)
    assert status is not None and (status.provider_message_id, status.state) == (provider_id, "delivered")


def test_a_bots_message_is_automated_and_the_customer_it_went_to_is_the_contact():
    bot = customer_message(
        direction="OUTGOING",
        senders=[{"actorId": "B-4455"}],
        recipients=[
            {"actorId": "V-1246965", "deliveryIdentifier": {"type": "HS_EMAIL_ADDRESS", "value": "a@b.example"}}
        ],
    )
    (event,) = handle(webhook(), deps(answered(bot)), NOW).events
    assert event.type == "message.sent" and event.attributes["automated"] is True
    assert event.contact.crm_ids == {"hubspot": "1246965"} and event.contact.email == "a@b.example"


def test_an_agents_message_typed_in_hubspot_is_not_automated():
    agent = customer_message(
        direction="OUTGOING", senders=[{"actorId": "A-1234567"}], client={"clientType": "HUBSPOT"}, recipients=[]
    )
    (event,) = handle(webhook(), deps(answered(agent)), NOW).events
    assert event.type == "message.sent" and "automated" not in event.attributes and event.contact.crm_ids == {}


def test_the_customers_message_is_not_a_delivery_report():
    (event,) = handle(webhook(), deps(answered(customer_message())), NOW).events
    assert HubSpotSender().status(event) is None


# --- what is not a message -----------------------------------------------------------------------------
def test_comments_are_not_fetched_and_a_fetched_comment_is_not_published():
    transport = answered(customer_message())
    outcome = handle(webhook(messageType="COMMENT"), deps(transport), NOW)
    assert outcome == Outcome(skipped="not_a_message", detail=outcome.detail) and transport.calls == []  # type: ignore[attr-defined]
    comment = customer_message(type="COMMENT", direction=None)
    assert handle(webhook(), deps(answered(comment)), NOW).skipped == "not_a_message"


def test_other_hubspot_events_and_unreadable_ids_are_skipped_without_a_call():
    transport = answered(customer_message())
    crm = webhook(subscriptionType="contact.creation")
    assert handle(crm, deps(transport), NOW).skipped == "not_a_thread_message"
    assert handle(webhook(objectId="../../crm"), deps(transport), NOW).skipped == "unreadable_webhook"
    assert handle(webhook(message_id="a/b"), deps(transport), NOW).skipped == "unreadable_webhook"
    assert transport.calls == []  # type: ignore[attr-defined]


def test_an_answer_for_another_message_or_an_unreadable_one_is_not_published():
    assert handle(webhook(), deps(answered(customer_message(id="zzz"))), NOW).skipped == "unexpected_response"
    assert handle(webhook(), deps(answered({"id": "a1b2c3d4e5"})), NOW).skipped == "unexpected_response"
    assert handle(webhook(), deps(answered(customer_message(direction="SIDEWAYS"))), NOW).skipped == (
        "unexpected_response"
    )


# --- failures ----------------------------------------------------------------------------------------
def test_rate_limits_and_outages_raise_for_the_queue_to_retry():
    limited = {"status": "error", "message": "ten_secondly_rolling limit", "category": "RATE_LIMITS"}
    with pytest.raises(TransientFailure) as rate:
        handle(webhook(), deps(answered(limited, 429, {"retry-after": "2"})), NOW)
    assert rate.value.code == "hubspot_RATE_LIMITS" and rate.value.retry_after == 2
    with pytest.raises(TransientFailure):
        handle(webhook(), deps(answered({"status": "error", "message": "Bad gateway"}, 502)), NOW)

    def lost(request: OutboundRequest) -> ProviderResponse:
        raise OutcomeUnknown("read timeout")

    with pytest.raises(TransientFailure) as unknown:  # a GET changes nothing: fetched again
        handle(webhook(), deps(lost), NOW)
    assert unknown.value.code == "network_error"


@pytest.mark.parametrize(
    ("status", "category"), [(401, "INVALID_AUTHENTICATION"), (403, "MISSING_SCOPES"), (404, "OBJECT_NOT_FOUND")]
)
def test_refusals_a_retry_cannot_change_are_reported_and_dropped(status, category):
    refusal = {"status": "error", "message": "words", "category": category}
    outcome = handle(webhook(), deps(answered(refusal, status)), NOW)
    assert outcome.events == [] and outcome.skipped == f"fetch_{status}"
    assert f"hubspot_{category}" in outcome.detail and "words" in outcome.detail


def test_the_sandbox_answers_404_for_a_message_it_does_not_know_and_401_for_a_stranger(sandbox):
    assert handle(webhook(message_id="feedface"), deps(http_transport), NOW).skipped == "fetch_404"
    stranger = Credentials({**OUTBOUND, "access_token": demo_outbound_credentials("hubspot")["access_token"]})
    sandbox.add_hubspot_message(customer_message())
    assert handle(webhook(), deps(http_transport, credentials=stranger), NOW).skipped == "fetch_401"


def test_without_outbound_credentials_or_a_connection_nothing_is_fetched():
    transport = answered(customer_message())
    credentials = Credentials(OUTBOUND)
    bare = handle(
        webhook(), deps(transport, connections=Connections(connection(configured=False)), credentials=credentials), NOW
    )
    assert bare.skipped == "not_configured" and "no outbound credentials" in bare.detail
    gone = handle(webhook(), deps(transport, connections=Connections(None), credentials=credentials), NOW)
    assert gone.skipped == "connection_gone"
    broken = Credentials({"access_token": "nope"})
    assert handle(webhook(), deps(transport, credentials=broken), NOW).skipped == "invalid_credentials"
    assert transport.calls == [] and credentials.reads == 0  # type: ignore[attr-defined]
