"""Staff answers: a reply written in the hub, sent on the customer's own channel.

The admin API records an answer (`MessageStore`, state `queued`) and publishes
`message.sent` (provider `answers`): the timeline shows it at once. The answers function,
fed by that event, sends it through the provider's sender (switchboard_core.outbound) and
publishes `message.status_updated` as it moves on: `sent` (the provider took it), then
`delivered` / `read` / `failed` as the provider's status webhooks arrive through ingest,
threaded onto it by the provider's message id.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from switchboard_core.events import CanonicalEvent, Channel, Contact, EventDraft

if TYPE_CHECKING:
    from switchboard_core.answers.store import MessageRecord

ANSWERS_PROVIDER = "answers"
SENT = "message.sent"
STATUS_UPDATED = "message.status_updated"
RETRY_REQUESTED = "message.retry_requested"

# What a customer starts: the events an answer can reply to.
ANSWERABLE_TYPES = frozenset(
    {
        "message.received",
        "mention.created",
        "comment.created",
        "interaction.created",
        "ticket.created",
        "ticket.comment_added",
        "ticket.updated",
    }
)
# An opt-out recorded from these (a CRM's do-not-contact flag) holds on every channel.
EVERY_CHANNEL_CONSENT = frozenset({"crm", "generic"})
SMS_PROVIDERS = frozenset({"twilio", "vonage", "plivo", "telnyx", "bandwidth", "sns"})


def opted_out_of(consent: Any, event_channel: str) -> bool:
    """Whether the contact's opt-out covers an answer on `event_channel` (the answered event's
    canonical channel): a STOP by text covers telephony (SMS, calls, Twilio WhatsApp), a STOP on
    a social channel covers social ones, a CRM's do-not-contact flag covers everything."""
    if not consent.opted_out:
        return False
    return consent.channel is None or consent.channel in EVERY_CHANNEL_CONSENT or consent.channel == event_channel


def answer_channel(event: CanonicalEvent) -> str:
    """The channel an answer to `event` goes out on, as staff name it: sms, whatsapp,
    messenger, instagram, facebook (Page comments), x, telegram, slack, discord, or the
    support tool (zendesk, intercom, freshdesk, hubspot...)."""
    attributes = event.attributes
    if event.provider in SMS_PROVIDERS:
        sender = attributes.get("From") or attributes.get("from") or ""
        channel = attributes.get("channel")
        if (isinstance(sender, str) and sender.startswith("whatsapp:")) or channel == "whatsapp":
            return "whatsapp"
        return "sms"
    if event.provider == "meta":
        key = event.conversation_key or ""
        if key.startswith("meta:"):  # meta:<whatsapp|messenger|instagram|facebook>:...
            return key.split(":", 2)[1]
        platforms = sorted({handle.platform for handle in event.contact.handles})
        if len(platforms) == 1:
            return platforms[0]
        return "facebook" if event.type in ("comment.created", "mention.created") else "messenger"
    return event.provider


def sent_event_id(record: MessageRecord) -> str:
    return answer_event(record, SENT, record.created_at).id


def answer_event(
    record: MessageRecord, kind: str, now: datetime, *, state: str | None = None, reason: str | None = None
) -> CanonicalEvent:
    """message.sent / message.retry_requested / message.status_updated for an answer; ids are
    deterministic (message, kind, attempt, state), so a republish is the same event."""
    suffix = {SENT: "sent", RETRY_REQUESTED: f"retry:{record.attempt}"}.get(kind, f"{state}:{record.attempt}")
    attributes: dict[str, Any] = {
        "message_id": record.message_id,
        "conversation": record.conversation,
        "channel": record.channel,
        "via": record.provider,
        "to": record.to,
        "visibility": record.visibility,
        "in_reply_to": record.in_reply_to,
        "author": record.author.model_dump(),
        "automated": False,
        "attempt": record.attempt,
    }
    if kind != SENT and kind != RETRY_REQUESTED:
        attributes.update({"state": state, "reason": reason, "provider_message_id": record.provider_message_id})
    return CanonicalEvent.from_draft(
        EventDraft(
            type=kind,
            provider_event_id=f"{record.message_id}:{suffix}",
            occurred_at=now,
            contact=Contact.model_validate(record.contact),
            conversation_key=record.conversation,
            text=record.text if kind != "message.status_updated" else None,
            attributes={k: v for k, v in attributes.items() if v is not None},
        ),
        provider=ANSWERS_PROVIDER,
        connection=record.connection,
        tenant=record.tenant,
        channel=Channel(record.event_channel),
        received_at=now,
        raw_ref=None,
    )
