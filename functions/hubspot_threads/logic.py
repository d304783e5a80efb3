"""HubSpot inbox threads: each `conversation.newMessage` webhook names a thread and a message but
carries neither the text, nor who wrote it, nor the channel. This fetches the message with the
connection's outbound credentials (ingest holds none, by design) and publishes what it is:

* a `MESSAGE` written by the customer (`direction: INCOMING`) -> `message.received`, so routing
  threads it into the conversation `hubspot:{portal}:thread:{threadId}` and staff can answer it;
* a `MESSAGE` written by the business (`OUTGOING`: an agent in HubSpot, or the hub's own answer)
  -> `message.sent`, the echo the HubSpot sender's `status()` reads as `delivered`;
* anything else (an agent's internal `COMMENT`, thread status changes...) -> nothing.

Source: HubSpot's "Retrieve a single message from a thread" reference
(https://developers.hubspot.com/docs/api-reference/legacy/conversations/conversations/messages/get-conversation).

The event id derives from the message id, so a redelivered webhook publishes the same event.
HubSpot's 429/5xx (and the network) raise `TransientFailure` for the queue to retry; a refusal a
retry cannot change (401, 403, 404...) is `Skipped`, reported once by the handler and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from switchboard_core.connections import ConnectionStore, CredentialStore
from switchboard_core.errors import NotFound
from switchboard_core.events import Attachment, CanonicalEvent, Channel, Contact, EventDraft
from switchboard_core.outbound import OutcomeUnknown, TransientFailure, Transport, api_base_url
from switchboard_core.outbound.base import failure_for_status
from switchboard_core.outbound.hubspot import (
    DIRECTION,
    MESSAGE_ID,
    MESSAGE_TYPE,
    NEW_MESSAGE,
    THREAD_ID,
    HubSpotCredentials,
    message_request,
)
from switchboard_core.phones import delivered_e164

PROVIDER = "hubspot"
_DIGITS = frozenset("0123456789")
_OPAQUE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class Actor(BaseModel):
    """A sender or recipient: `actorId` is `V-<contact id>` for a known contact, `A-` an agent,
    `B-` a bot, `S-` the system, `I-` an integration; `deliveryIdentifier` its e-mail or number."""

    model_config = ConfigDict(extra="ignore")

    actor_id: str | None = Field(default=None, alias="actorId")
    name: str | None = None
    delivery_identifier: dict[str, Any] | None = Field(default=None, alias="deliveryIdentifier")


class ThreadMessage(BaseModel):
    """HubSpot's Message, as `GET .../threads/{threadId}/messages/{messageId}` answers it."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=64)
    type: str
    conversations_thread_id: str | None = Field(default=None, alias="conversationsThreadId")
    created_at: AwareDatetime | None = Field(default=None, alias="createdAt")
    senders: list[Actor] = Field(default_factory=list)
    recipients: list[Actor] = Field(default_factory=list)
    text: str | None = None
    attachments: list[dict[str, Any]] = Field(default_factory=list)
    direction: Literal["INCOMING", "OUTGOING"] | None = None
    channel_id: str | None = Field(default=None, alias="channelId")
    channel_account_id: str | None = Field(default=None, alias="channelAccountId")
    truncation_status: str | None = Field(default=None, alias="truncationStatus")
    client: dict[str, Any] = Field(default_factory=dict)  # {"clientType": HUBSPOT | INTEGRATION..., ...}


@dataclass
class ThreadDeps:
    connections: ConnectionStore
    credentials: CredentialStore  # under the outbound prefix
    transport: Transport


@dataclass
class Outcome:
    """What one webhook event led to: the events to publish, or why nothing (`skipped` is a
    short code for the metric, `detail` the log line)."""

    events: list[CanonicalEvent] = field(default_factory=list)
    skipped: str | None = None
    detail: str = ""


def _skip(code: str, detail: str) -> Outcome:
    return Outcome(skipped=code, detail=detail)


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value)


def handle(event: CanonicalEvent, deps: ThreadDeps, now: datetime) -> Outcome:
    """The message named by one `conversation.newMessage` event, fetched and published as what it is."""
    attributes = event.attributes
    if event.provider != PROVIDER or attributes.get("subscriptionType") != NEW_MESSAGE:
        return _skip("not_a_thread_message", f"{event.type} is not a HubSpot {NEW_MESSAGE} event")
    thread_id, message_id = _text(attributes.get("objectId")), _text(attributes.get("messageId"))
    if not thread_id or not set(thread_id) <= _DIGITS or len(thread_id) > 24:
        return _skip("unreadable_webhook", f"objectId {thread_id!r} is not a thread id")
    if not message_id or not set(message_id) <= _OPAQUE or len(message_id) > 64:
        return _skip("unreadable_webhook", f"messageId {message_id!r} is not a message id")
    if attributes.get("messageType") not in (None, "MESSAGE"):  # comments and the like: nothing to fetch
        return _skip("not_a_message", f"thread {thread_id} message {message_id} is a {attributes.get('messageType')}")

    try:
        connection = deps.connections.get(event.connection)
    except NotFound:
        return _skip("connection_gone", f"connection {event.connection} no longer exists")
    if connection.outbound_configured_at is None:
        return _skip(
            "not_configured",
            f"connection {connection.id} has no outbound credentials: HubSpot thread messages cannot be read "
            "(PUT /admin/connections/{id}/outbound with a private app token with conversations.read)",
        )
    stored = deps.credentials.get(connection.id).current  # unreadable now: raises, and the queue retries
    try:
        credentials = HubSpotCredentials.model_validate(dict(stored))
    except ValidationError:
        return _skip("invalid_credentials", f"connection {connection.id}'s outbound credentials are not valid")

    request = message_request(api_base_url(PROVIDER), thread_id, message_id, credentials)
    try:
        response = deps.transport(request)
    except OutcomeUnknown as unknown:  # a GET changes nothing: asking again is safe
        raise TransientFailure("network_error", unknown.detail) from None
    if response.status != 200:
        payload = response.json()
        category = payload.get("category") if isinstance(payload, dict) else None
        words = payload.get("message") if isinstance(payload, dict) else None
        code = f"hubspot_{category}" if isinstance(category, str) and category.isidentifier() else None
        failure = failure_for_status(response, code or f"http_{response.status}", str(words or "")[:200])
        if isinstance(failure, TransientFailure):
            raise failure
        return _skip(f"fetch_{response.status}", f"HubSpot refused thread {thread_id} message {message_id}: {failure}")
    try:
        message = ThreadMessage.model_validate(response.json())
    except ValidationError:
        return _skip("unexpected_response", f"HubSpot answered thread {thread_id} message {message_id} unreadably")
    if message.id != message_id:
        return _skip("unexpected_response", f"HubSpot answered message {message.id} for {message_id}")
    if message.type != "MESSAGE" or message.direction is None:
        return _skip("not_a_message", f"thread {thread_id} message {message_id} is a {message.type}")
    return Outcome(events=[thread_event(event, thread_id, message)])


def contact_of(actor: Actor | None) -> Contact:
    """The customer as the HubSpot adapter names contacts: `crm_ids.hubspot` (a `V-<contact id>`
    actor), the e-mail or phone number HubSpot delivers to, the display name."""
    if actor is None:
        return Contact()
    crm_ids = {}
    if actor.actor_id and actor.actor_id.startswith("V-") and actor.actor_id[2:].isdigit():
        crm_ids["hubspot"] = actor.actor_id[2:]
    email = phone = None
    identifier = actor.delivery_identifier or {}
    value = identifier.get("value")
    if isinstance(value, str):
        if identifier.get("type") == "HS_EMAIL_ADDRESS" and "@" in value:
            email = value.strip().lower()
        elif identifier.get("type") == "HS_PHONE_NUMBER":
            phone = delivered_e164(value.strip())
    name = actor.name.strip()[:200] if isinstance(actor.name, str) and actor.name.strip() else None
    return Contact(crm_ids=crm_ids, email=email, phone=phone, name=name)


def thread_event(webhook: CanonicalEvent, thread_id: str, message: ThreadMessage) -> CanonicalEvent:
    """The fetched message as a canonical event on the webhook's connection: `message.received` for
    the customer's, `message.sent` for the business's (its contact the customer it went to)."""
    incoming = message.direction == "INCOMING"
    sender = message.senders[0] if message.senders else None
    customer = sender if incoming else (message.recipients[0] if message.recipients else None)
    portal = _text(webhook.attributes.get("portalId"))
    attributes: dict[str, Any] = {
        THREAD_ID: thread_id,
        MESSAGE_ID: message.id,
        MESSAGE_TYPE: message.type,
        DIRECTION: message.direction,
        "channelId": message.channel_id,
        "channelAccountId": message.channel_account_id,
        "senderActorId": sender.actor_id if sender else None,
        "portalId": portal,
        "webhook_event": webhook.id,
    }
    if message.truncation_status and message.truncation_status != "NOT_TRUNCATED":
        attributes["truncationStatus"] = message.truncation_status
    if not incoming and (
        (sender is not None and (sender.actor_id or "")[:2] in ("B-", "S-"))
        or message.client.get("clientType") == "INTEGRATION"
    ):
        # A HubSpot bot, the system, or software through the API (the hub's own auto-replies among them):
        # not an agent's answer, so routing does not count it for the SLA. A staff answer sent from the hub
        # has already counted through its own message.sent (provider answers).
        attributes["automated"] = True
    draft = EventDraft(
        type="message.received" if incoming else "message.sent",
        provider_event_id=f"message:{message.id}",
        occurred_at=message.created_at,
        contact=contact_of(customer),
        conversation_key=f"hubspot:{portal}:thread:{thread_id}" if portal else None,
        text=message.text,
        attachments=[
            Attachment(url=a["url"], content_type=a.get("type") if isinstance(a.get("type"), str) else None)
            for a in message.attachments
            if isinstance(a.get("url"), str) and a["url"].startswith("https://")
        ],
        attributes={k: v for k, v in attributes.items() if v is not None},
    )
    # received_at and raw_ref are the webhook's: a redelivery builds the same event, byte for byte.
    return CanonicalEvent.from_draft(
        draft,
        provider=PROVIDER,
        connection=webhook.connection,
        tenant=webhook.tenant,
        channel=Channel.CRM,
        received_at=webhook.received_at,
        raw_ref=webhook.raw_ref,
    )
