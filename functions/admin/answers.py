"""Answering from the hub: POST/GET /admin/conversations/{id}/messages and a failed answer's retry.

An answer goes to one of the customer's own events in the conversation: the one named by
`in_reply_to`, else their latest message (on `channel` when given). From that event the
provider's sender works out where the answer goes (`address`, with the `visibility`
asked for) and whether the platform allows it now (`prepare`: messaging windows). Refusals
are 409s that name the rule: `opted_out`, `whatsapp_window_closed`, `not_configured`...

Accepted, the answer is stored (`queued`) and `message.sent` (provider `answers`,
`automated: false`, the author) is published: the timeline shows it at once and the answers
function, fed by that event, sends it. Nothing is acknowledged before both are done.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from switchboard_core.answers import (
    ANSWERABLE_TYPES,
    ANSWERS_PROVIDER,
    RETRY_REQUESTED,
    SENT,
    STATUS_UPDATED,
    answer_channel,
    answer_event,
    opted_out_of,
    sent_event_id,
)
from switchboard_core.answers.store import Author, MessageRecord, MessageStore, StoredAttachment, Transition
from switchboard_core.connections import ConnectionStore
from switchboard_core.errors import HubError, NotFound
from switchboard_core.event_log import EventLogStore
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound import OutboundMessage, Refused, get_sender
from switchboard_core.outbound.base import MAX_REPLY_CHARS, Attachment
from switchboard_core.principals import Principal, Role
from switchboard_core.routing.contacts import ContactStore
from switchboard_core.routing.conversations import Conversation, ConversationStore

# How far back through the contact's timeline an answer looks for the customer's latest message.
TIMELINE_LOOKBACK = 200
# A `sending` claim this old belongs to an attempt that is over (the answers function's timeout
# is 20 s): staff may retry it (its outcome is unknown).
STALE_CLAIM = timedelta(seconds=60)
MAX_ATTACHMENTS = 10


class AttachmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(description="a public https URL the provider fetches the media from")
    content_type: str | None = Field(default=None, max_length=100, pattern=r"^[\w.+-]+/[\w.+-]+$")


class TemplateIn(BaseModel):
    """An approved message template (WhatsApp), for sends outside the customer-service window."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")
    language: str = Field(min_length=2, max_length=15, pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")
    parameters: list[str] = Field(default_factory=list, max_length=20, description="the body's {{1}}, {{2}}...")


class PostMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_REPLY_CHARS, pattern=r"\S", description="what to say")
    channel: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        pattern=r"^[a-z0-9_-]+$",
        description="sms, whatsapp, messenger, instagram, facebook, x, telegram, slack, discord, zendesk, "
        "intercom, freshdesk, hubspot...; default: the channel of the customer's latest message",
    )
    visibility: Literal["private", "public"] | None = Field(
        default=None, description="a public reply (comment, post reply) or a private message, where both exist"
    )
    in_reply_to: str | None = Field(
        default=None, min_length=1, max_length=64, description="the customer's event (id) to answer"
    )
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    template: TemplateIn | None = Field(default=None, description="WhatsApp: an approved template, any time")


@dataclass
class AnswerDeps:
    messages: MessageStore
    conversations: ConversationStore
    contacts: ContactStore
    event_log: EventLogStore
    connections: ConnectionStore
    publish: Callable[[list[CanonicalEvent]], None]


def visible_conversation(principal: Principal, conversation_id: str, conversations: ConversationStore) -> Conversation:
    conversation = conversations.get(conversation_id)
    if conversation is None or not principal.can_read_tenant(conversation.tenant):
        raise NotFound(f"unknown conversation {conversation_id!r}", code="unknown_conversation")
    return conversation


def require_answerer(principal: Principal, tenant: str | None = None) -> None:
    """Admins and staff of the conversation's tenant answer customers; partners never do."""
    if principal.role is Role.PARTNER or (tenant is not None and not principal.can_read_tenant(tenant)):
        raise HubError(
            f"this {principal.role.value} key may not answer customers"
            + (f" of tenant {tenant!r}" if tenant else "")
            + ": "
            "that needs a key with role admin or staff",
            status=403,
            code="forbidden",
        )


def post_message(
    principal: Principal, conversation_id: str, request: PostMessage, deps: AnswerDeps, now: datetime
) -> dict[str, Any]:
    require_answerer(principal)
    conversation = visible_conversation(principal, conversation_id, deps.conversations)
    require_answerer(principal, conversation.tenant)
    source, inbound_at = answered_event(conversation, request, deps)
    sender = get_sender(source.provider)
    channel = answer_channel(source)
    address = sender.address(source, request.visibility) if sender is not None else None
    if sender is None or address is None:
        kind = f" {request.visibility}ly" if request.visibility else ""
        raise refusal(
            "channel_unanswerable",
            f"{channel} ({source.provider} {source.type}) cannot be answered{kind} through the hub",
            channel=channel,
            in_reply_to=source.id,
        )
    if conversation.contact_id:
        contact = deps.contacts.get(conversation.contact_id)
        if contact is not None and opted_out_of(contact.consent, source.channel.value):
            raise refusal(
                "opted_out",
                f"the contact opted out ({contact.consent.channel or 'a channel'}, {contact.consent.at}): "
                "they get nothing more until they opt back in",
                opted_out_at=contact.consent.at.isoformat() if contact.consent.at else None,
                source_event=contact.consent.source,
            )
    message = OutboundMessage(
        text=request.text,
        attachments=tuple(Attachment(str(a.url), a.content_type) for a in request.attachments),
        template=request.template.model_dump() if request.template else None,
    )
    try:
        address = sender.prepare(address, message, inbound_at, now)
    except Refused as refused:
        raise refusal(refused.code, refused.detail, channel=channel, **refused.hints) from None
    connection = connection_for(source, deps.connections)
    record = MessageRecord(
        message_id=f"msg_{secrets.token_hex(12)}",
        tenant=conversation.tenant,
        conversation=conversation.id,
        contact_id=conversation.contact_id,
        contact=source.contact.model_dump(mode="json", exclude_none=True),
        author=Author(key_id=principal.key_id, name=principal.name, role=principal.role.value),
        channel=channel,
        provider=source.provider,
        connection=connection,
        event_channel=source.channel.value,
        address=address,
        to=recipient(address),
        visibility=request.visibility,
        text=request.text,
        attachments=[StoredAttachment(url=str(a.url), content_type=a.content_type) for a in request.attachments],
        template=request.template.model_dump() if request.template else None,
        in_reply_to=source.id,
        created_at=now,
        updated_at=now,
        history=[Transition(state="queued", at=now)],
    )
    deps.messages.create(record)
    publish_or_fail(record, answer_event(record, SENT, now), deps, now)
    return {"message_id": record.message_id, "status": "queued", "channel": channel, "to": record.to}


def publish_or_fail(record: MessageRecord, event: CanonicalEvent, deps: AnswerDeps, now: datetime) -> None:
    """Publish what starts the send; if the bus refuses, the answer is `failed` (`not_queued`), so
    it can be retried, rather than `queued` with nothing to send it, and the caller gets the error."""
    try:
        deps.publish([event])
    except Exception:
        reason = "not_queued: the event bus did not take it; retry it"
        failed = answer_event(record, STATUS_UPDATED, now, state="failed", reason=reason)
        deps.messages.record_failed(
            record.message_id, record.attempt, reason, now, failed.model_dump_json(), from_states=("queued",)
        )
        raise


def retry_message(
    principal: Principal, conversation_id: str, message_id: str, deps: AnswerDeps, now: datetime
) -> dict[str, Any]:
    """A failed answer, queued again as its next attempt (a second retry of the same failure is a 409)."""
    require_answerer(principal)
    conversation = visible_conversation(principal, conversation_id, deps.conversations)
    require_answerer(principal, conversation.tenant)
    record = deps.messages.get(message_id)
    if record is None or record.conversation != conversation.id:
        raise NotFound(f"unknown message {message_id!r} in conversation {conversation_id!r}", code="unknown_message")
    stale = record.state == "sending" and record.claimed_at is not None and now - record.claimed_at >= STALE_CLAIM
    if record.state != "failed" and not stale:
        raise refusal("not_failed", f"message {message_id} is {record.state}: only a failed answer is retried")
    if not deps.messages.requeue(message_id, record.attempt, now, stale_before=now - STALE_CLAIM):
        raise refusal("not_failed", f"message {message_id} was retried meanwhile")
    requeued = deps.messages.get(message_id)
    assert requeued is not None
    publish_or_fail(requeued, answer_event(requeued, RETRY_REQUESTED, now), deps, now)
    return {"message_id": message_id, "status": "queued", "channel": record.channel, "to": record.to}


def list_messages(principal: Principal, conversation_id: str, deps: AnswerDeps) -> dict[str, Any]:
    """Both sides in order: the customer's messages (the contact's timeline in this
    conversation) and the answers, each with its current state."""
    conversation = visible_conversation(principal, conversation_id, deps.conversations)
    answers = deps.messages.for_conversation(conversation.id)
    listed: list[dict[str, Any]] = [
        {
            "direction": "outbound",
            "event_id": sent_event_id(record),
            "at": record.created_at.isoformat(),
            **record.view(),
        }
        for record in answers
    ]
    ours = {item["event_id"] for item in listed} | {echo for record in answers for echo in record.echo_events}
    for entry in timeline_of(conversation, deps.contacts):
        if entry["event_id"] in ours or entry.get("provider") == ANSWERS_PROVIDER:
            continue
        if entry["type"] in ANSWERABLE_TYPES:
            direction = "inbound"
        elif entry["type"] == "message.sent":  # the business answering elsewhere (an echo, another tool)
            direction = "outbound"
        else:
            continue
        listed.append(
            {
                "direction": direction,
                "event_id": entry["event_id"],
                "at": entry["occurred_at"],
                "type": entry["type"],
                "provider": entry["provider"],
                "text": entry.get("text"),
            }
        )
    listed.sort(key=lambda item: (datetime.fromisoformat(item["at"]), item["event_id"]))
    return {"conversation": conversation.id, "messages": listed}


# --- helpers ------------------------------------------------------------------------------


def answered_event(
    conversation: Conversation, request: PostMessage, deps: AnswerDeps
) -> tuple[CanonicalEvent, datetime]:
    """The customer's event this answer replies to (404/409 naming why there is none), and when
    the customer last wrote on that channel (the platforms' messaging windows run from it)."""
    entries = timeline_of(conversation, deps.contacts)
    echoes = {echo for record in deps.messages.for_conversation(conversation.id) for echo in record.echo_events}
    candidates = [e["event_id"] for e in entries if e["type"] in ANSWERABLE_TYPES and e["event_id"] not in echoes]
    candidates.reverse()  # newest first
    found: dict[str, CanonicalEvent] = {}
    for start in range(0, len(candidates), 25):
        found |= deps.event_log.get_many(candidates[start : start + 25])
    written = [found[i] for i in candidates if i in found and answerable(found[i], None)]
    customer = [e for e in written if answerable(e, request.visibility)]
    if request.in_reply_to:
        entry = next((e for e in entries if e["event_id"] == request.in_reply_to), None)
        if entry is None:
            raise NotFound(
                f"event {request.in_reply_to!r} is not in conversation {conversation.id!r}", code="unknown_event"
            )
        if entry["type"] not in ANSWERABLE_TYPES:
            raise refusal("not_answerable", f"a {entry['type']} is not something the customer sent")
        event = found.get(request.in_reply_to) or deps.event_log.get(request.in_reply_to)
        if event is None:
            raise refusal("event_expired", f"event {request.in_reply_to} is no longer in the event log")
        if request.channel and answer_channel(event) != request.channel:
            raise refusal(
                "channel_mismatch", f"event {event.id} came on {answer_channel(event)}, not {request.channel}"
            )
    else:
        event = next((e for e in customer if request.channel in (None, answer_channel(e))), None)
        on_channel = [e for e in written if request.channel in (None, answer_channel(e))]
        if event is None and on_channel and request.visibility:
            raise refusal(
                "channel_unanswerable",
                f"{answer_channel(on_channel[0])} cannot be answered {request.visibility}ly through the hub",
                channel=answer_channel(on_channel[0]),
                in_reply_to=on_channel[0].id,
            )
        if event is None and request.channel:
            raise refusal(
                "no_message_on_channel",
                f"the customer has not written on {request.channel} in this conversation",
                channels=sorted({answer_channel(e) for e in written}),
            )
        if event is None:
            raise refusal(
                "no_customer_message", f"conversation {conversation.id} has no message from the customer to answer"
            )
    channel = answer_channel(event)
    same_channel = [e.occurred_at for e in customer if e.provider == event.provider and answer_channel(e) == channel]
    return event, max([event.occurred_at, *same_channel])


def answerable(event: CanonicalEvent, visibility: str | None) -> bool:
    """Something the customer sent that the provider's sender can answer (not, say, an agent's
    comment on a ticket, which arrives as the same event type)."""
    sender = get_sender(event.provider)
    return sender is not None and sender.address(event, visibility) is not None  # type: ignore[arg-type]


def timeline_of(conversation: Conversation, contacts: ContactStore) -> list[dict[str, Any]]:
    """The conversation's entries on its contact's timeline, oldest first."""
    if not conversation.contact_id:
        return []
    contact = contacts.get(conversation.contact_id)
    if contact is None:
        return []
    entries, _ = contacts.timeline(contact, TIMELINE_LOOKBACK)
    mine = [e for e in entries if e.get("conversation") == conversation.id]
    mine.reverse()
    return mine


def connection_for(event: CanonicalEvent, connections: ConnectionStore) -> str:
    try:
        connection = connections.get(event.connection)
    except NotFound:
        connection = None
    if connection is None or connection.tenant != event.tenant:
        raise refusal("connection_gone", f"connection {event.connection} no longer exists")
    if connection.outbound_configured_at is None:
        raise refusal(
            "not_configured",
            f"connection {connection.id} has no outbound credentials (PUT /admin/connections/{{id}}/outbound)",
            connection=connection.id,
        )
    return connection.id


RECIPIENT_FIELDS = (
    "to",
    "chat_id",
    "channel",
    "comment_id",
    "in_reply_to_tweet_id",
    "participant_id",
    "ticket_id",
    "conversation_id",
    "thread_id",
    "interaction_id",
)


def recipient(address: dict[str, str]) -> str:
    """Who or what the answer goes to, for people: the number, chat, comment or ticket."""
    for name in RECIPIENT_FIELDS:
        if address.get(name):
            return address[name]
    return next(iter(address.values()), "")


def refusal(code: str, detail: str, **hints: Any) -> HubError:
    return HubError(detail, status=409, code=code, details={k: v for k, v in hints.items() if v is not None})
