"""The canonical customer-contact event: one schema for every provider.

Every webhook is normalised into one or more `CanonicalEvent`s. The event is the
EventBridge `detail`; its `type` is also the `detail-type` and
`switchboard.<provider>` is the `source`. The JSON Schema in
docs/schema/canonical-event.schema.json is generated from these models
(`switchboard schema`) and a contract test fails when the two drift.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION: Final = "1.0"

# Stable namespace for deterministic event ids: a provider's redelivery of the
# same item yields the same id, so consumers can deduplicate on `id`.
_EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a7e-2f55-4c7e-9b8e-5d1f0f3c7a10")
_EVENT_ID_NAMESPACE_BYTES: Final = _EVENT_ID_NAMESPACE.bytes

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
EVENT_TYPE = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*$")


class Channel(StrEnum):
    SOCIAL = "social"
    CRM = "crm"
    TELEPHONY = "telephony"
    GENERIC = "generic"


class SocialHandle(BaseModel):
    """A person's identity on a social or messaging platform."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: str = Field(description="Platform name, e.g. messenger, instagram, whatsapp, x.")
    id: str | None = Field(default=None, description="The platform's stable user id (PSID, IGSID, wa_id...).")
    handle: str | None = Field(default=None, description="Human-readable handle or display name, when sent.")


class Contact(BaseModel):
    """Who the event is about, as identities a router can match across channels."""

    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(default=None, description="Phone number in E.164 form, e.g. +14155550100.")
    email: str | None = Field(default=None, description="E-mail address, lower-cased.")
    name: str | None = Field(default=None, description="Display name when the provider sends one.")
    handles: list[SocialHandle] = Field(default_factory=list, description="Social and messaging identities.")
    crm_ids: dict[str, str] = Field(
        default_factory=dict, description="Identifiers in CRM or support systems, keyed by provider."
    )

    @field_validator("phone")
    @classmethod
    def _phone_is_e164(cls, value: str | None) -> str | None:
        if value is not None and not E164.match(value):
            raise ValueError(f"phone must be E.164 (+ and up to 15 digits), got {value!r}")
        return value

    @field_validator("email")
    @classmethod
    def _email_lower(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if "@" not in value:
            raise ValueError(f"email must contain '@', got {value!r}")
        return value


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    content_type: str | None = None
    provider_id: str | None = Field(default=None, description="The provider's id for the media, when no URL is sent.")


class EventDraft(BaseModel):
    """What a provider adapter produces: the provider-specific part of an event.

    The ingest path adds identity (id, connection, tenant), timing and the raw
    reference to turn a draft into a `CanonicalEvent`.
    """

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="`<entity>.<action>`, also the EventBridge detail-type.")
    provider_event_id: str = Field(min_length=1, description="The provider's id for this item; unique per connection.")
    occurred_at: AwareDatetime | None = Field(default=None, description="When it happened, per the provider.")
    contact: Contact = Field(default_factory=Contact)
    conversation_key: str | None = Field(
        default=None, description="The provider's thread, chat, ticket or call id that groups replies."
    )
    text: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="Provider fields the model has no place for; nothing is dropped."
    )

    @field_validator("type")
    @classmethod
    def _type_shape(cls, value: str) -> str:
        if not EVENT_TYPE.match(value):
            raise ValueError(f"type must look like '<entity>.<action>', got {value!r}")
        return value


class RawRef(BaseModel):
    """Where the raw request (headers and body exactly as received) is stored."""

    model_config = ConfigDict(extra="forbid")

    bucket: str
    key: str


class CanonicalEvent(EventDraft):
    """One customer-contact event, as published on the bus and read by every consumer."""

    id: str = Field(description="Deterministic event id (UUID v5 of provider, connection and provider_event_id).")
    schema_version: Literal["1.0"] = SCHEMA_VERSION
    provider: str
    connection: str
    tenant: str
    channel: Channel
    occurred_at: AwareDatetime = Field(description="When it happened; received_at when the provider sends no time.")
    received_at: AwareDatetime
    raw_ref: RawRef | None = Field(default=None, description="The stored raw request; None for derived events.")

    @property
    def source(self) -> str:
        return f"switchboard.{self.provider}"

    @classmethod
    def from_draft(
        cls,
        draft: EventDraft,
        *,
        provider: str,
        connection: str,
        tenant: str,
        channel: Channel,
        received_at: datetime,
        raw_ref: RawRef | None,
    ) -> CanonicalEvent:
        if (
            cls is CanonicalEvent
            and type(draft) is EventDraft
            and isinstance(received_at, datetime)
            and received_at.tzinfo is not None
            and isinstance(provider, str)
            and isinstance(connection, str)
            and isinstance(tenant, str)
            and (raw_ref is None or type(raw_ref) is RawRef)
        ):
            # The draft was validated when it was built and the rest is ours, checked above:
            # validating it all again (a dump and a rebuild of every nested value, the whole
            # payload in attributes) was most of an event's cost (docs/benchmarks.md). The
            # event shares the draft's nested values; drafts are not reused once published.
            fields = draft.__dict__
            event = cls.__new__(cls)
            # What `model_construct` sets, without its per-field loop (this is every webhook's path).
            object.__setattr__(
                event,
                "__dict__",
                {
                    "type": fields["type"],
                    "provider_event_id": fields["provider_event_id"],
                    "occurred_at": fields["occurred_at"] or received_at,
                    "contact": fields["contact"],
                    "conversation_key": fields["conversation_key"],
                    "text": fields["text"],
                    "attachments": list(fields["attachments"]),
                    "attributes": dict(fields["attributes"]),
                    "id": event_id(provider, connection, fields["provider_event_id"]),
                    "schema_version": SCHEMA_VERSION,
                    "provider": provider,
                    "connection": connection,
                    "tenant": tenant,
                    "channel": Channel(channel),
                    "received_at": received_at,
                    "raw_ref": raw_ref,
                },
            )
            object.__setattr__(event, "__pydantic_fields_set__", set(_ALL_EVENT_FIELDS))
            object.__setattr__(event, "__pydantic_extra__", None)
            object.__setattr__(event, "__pydantic_private__", None)
            return event
        return cls(
            **draft.model_dump(exclude={"occurred_at"}),
            id=event_id(provider, connection, draft.provider_event_id),
            provider=provider,
            connection=connection,
            tenant=tenant,
            channel=channel,
            occurred_at=draft.occurred_at or received_at,
            received_at=received_at,
            raw_ref=raw_ref,
        )


_ALL_EVENT_FIELDS: Final = frozenset(CanonicalEvent.model_fields) - {"schema_version"}


def event_id(provider: str, connection: str, provider_event_id: str) -> str:
    """`str(uuid.uuid5(namespace, "<provider>/<connection>/<provider_event_id>"))`, without
    building UUID objects (RFC 4122 section 4.3: SHA-1, then the version and variant bits)."""
    digest = bytearray(
        hashlib.sha1(_EVENT_ID_NAMESPACE_BYTES + f"{provider}/{connection}/{provider_event_id}".encode()).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


# Every event type the hub emits, with the provider(s) that produce it. docs/events.md
# documents each; a contract test keeps the two in step.
EVENT_TYPES: dict[str, str] = {
    "message.received": "An inbound message (SMS, MMS, Messenger, Instagram or WhatsApp text or media).",
    "message.status_updated": "Delivery state of a message changed (sent, delivered, read, failed); from the answers function, a staff answer's state threaded onto it.",
    "message.sent": "An outbound message the business sent: echoed back by the platform (Meta message echoes, a Slack bot's message; attributes.automated is true for bots and the hub's own auto-replies), or a staff answer written in the hub (provider answers, automated false, with its author).",
    "message.retry_requested": "Staff asked the hub to send a failed answer again (its next attempt).",
    "call.queued": "A call was queued by the telephony provider.",
    "call.initiated": "A call was created.",
    "call.ringing": "A call is ringing.",
    "call.in_progress": "A call was answered and is in progress.",
    "call.completed": "A call ended normally.",
    "call.busy": "The callee was busy.",
    "call.no_answer": "The callee did not answer.",
    "call.canceled": "The call was cancelled before it was answered.",
    "call.failed": "The call could not be placed.",
    "contact.created": "A CRM contact was created.",
    "contact.updated": "A property of a CRM contact changed.",
    "contact.deleted": "A CRM contact was deleted.",
    "company.created": "A CRM company was created (HubSpot company.creation).",
    "company.updated": "A property of a CRM company changed (HubSpot company.propertyChange).",
    "company.deleted": "A CRM company was deleted (HubSpot company.deletion).",
    "deal.created": "A CRM deal was created (HubSpot deal.creation).",
    "deal.updated": "A property of a CRM deal changed (HubSpot deal.propertyChange).",
    "deal.deleted": "A CRM deal was deleted (HubSpot deal.deletion).",
    "ticket.created": "A support ticket was created (HubSpot ticket.creation).",
    "ticket.updated": "A property of a support ticket changed (HubSpot ticket.propertyChange).",
    "ticket.deleted": "A support ticket was deleted (HubSpot ticket.deletion).",
    "crm.object_changed": "Any other CRM change (merge, restore, association change, other object types); the provider's subscription type is in attributes.",
    "webhook.received": "A generic (Standard Webhooks) delivery; the sender's own type is in attributes.",
    "message.updated": "An earlier message was edited by its author (Telegram edited_message, Slack message_changed).",
    "mention.created": "Someone mentioned the business account in a post, tweet, comment or channel (Meta, X, Slack app_mention, LinkedIn).",
    "comment.created": "Someone commented on the business's post (Meta page feed / Instagram comments, LinkedIn).",
    "reaction.created": "Someone reacted to a message or post (X like, Slack reaction_added, LinkedIn like).",
    "interaction.created": "A user invoked a bot command or pressed a component (Discord interaction, Slack slash command, Telegram callback query).",
    "content.published": "A feed published or updated an entry (WebSub/YouTube video, the business's own tweet).",
    # --- social providers (add types above this line, keep docs/events.md in step) ---
    "ticket.comment_added": "A comment or message was added to a support ticket (Zendesk ticket.comment_added, messaging_ticket.message_added); the words are in text.",
    # --- crm providers (add types above this line, keep docs/events.md in step) ---
    "call.recording_completed": "A call recording is complete and available (Twilio RecordingStatus completed, Telnyx call.recording.saved, Vonage recording callback); its URL and duration are in attributes.",
    "call.recording_failed": "A call recording failed or is absent (Twilio RecordingStatus failed/absent).",
    "call.transcribed": "A call recording was transcribed; the transcript is in text (Twilio TranscriptionStatus completed).",
    "call.dial_ended": "A <Dial> the hub put a live call through ended (Twilio's Dial action callback): DialCallStatus (completed, no-answer, busy, failed, canceled) and DialCallSid are in attributes.",
    # --- telephony providers (add types above this line, keep docs/events.md in step) ---
    "contact_center.event": "An Amazon Connect contact event with no call.* equivalent (chat/task/email contacts, COMPLETED, CONTACT_DATA_UPDATED...); the Connect event is in attributes (sns).",
    "notification.received": "An SNS notification whose Message is neither a two-way SMS nor a Connect contact event; the message (parsed when JSON) is in attributes (sns).",
    "subscription.ended": "The provider confirmed that the hub's subscription was removed (SNS UnsubscribeConfirmation); nothing more will arrive until it is re-subscribed.",
    # --- generic providers (add types above this line, keep docs/events.md in step) ---
    # --- derived by Switchboard's own functions (source switchboard.<function>) ---
    "conversation.opened": "Routing opened a conversation for this event; topics, sentiment and contact summary in attributes.",
    "conversation.updated": "An event joined an existing conversation (possibly across channels).",
    "routing.assigned": "Routing assigned the conversation: queue, assignee, priority, strategy and the reason.",
    "routing.unassigned": "No rule assigned the event: it went to the default queue, with the reason.",
    "routing.escalated": "A conversation's SLA due time passed without an answer from the business.",
    "reply.requested": "A routing rule asked for an auto-reply: the rendered text, the rule, and where it goes (reply_to: provider, connection, addressing; null where the channel cannot be answered).",
    "reply.sent": "The replies function sent an auto-reply through the provider's API; the provider's message id is in attributes.",
    "reply.skipped": "An auto-reply was not sent, by design: the contact opted out, one was already sent in the conversation, the channel cannot be answered, the connection is gone or has no outbound credentials, or the text rendered empty (reason in attributes).",
    "reply.failed": "The provider refused an auto-reply (bad recipient, revoked token...), or kept failing until the queue's last attempt; its error code and message are in attributes.",
    "call.patched": "The calls function put a live call through to a responder (Twilio: the call was updated with a <Dial> to their phone): responder, call_sid, distance_km, attempt, conversation and source_event in attributes.",
    "call.patch_failed": "A live call could not be put through: nobody answered or nobody was available (the caller was sent to voicemail), the call had ended, or the provider refused the update; reason and tried responders in attributes.",
    "subscription.failing": "Deliveries to a partner subscription's endpoint have failed for a day; the subscription, its owner, failing_since and reason are in attributes. It is disabled if they keep failing.",
    "subscription.disabled": "A partner subscription was disabled: its endpoint answered 410 Gone, or kept failing for days after subscription.failing; its undelivered events are kept for replay.",
    "notification.sent": "The notifications function told a responder or a team's on-call contact about a routing event or a campaign's notify step (or sent a digest of several): recipient (responder or team), channel, trigger_event and, for a located request, distance_km in attributes.",
    "notification.failed": "A notification was not delivered: the channel refused it, it kept failing until the queue's last attempt, the recipient's preferences held it back (quiet hours, urgent only), or a campaign's request named nobody (no_recipient) or was malformed (invalid_request); recipient, channel, trigger_event and reason in attributes.",
    "campaign.notification_requested": "A campaign's notify step asked the notifications function to tell staff: campaign, campaign_name, version, run, conversation, contact, to (assignee, team or responder), target, the rendered text, urgent and idempotency_key in attributes.",
    "campaign.run_started": "A campaign run started for a contact (from its trigger event or a runs request): campaign, campaign_name, version, run, conversation, contact and trigger_event in attributes.",
    "campaign.step_completed": "A campaign run recorded a step: step, type, visit, outcome, reason and next in attributes.",
    "campaign.message_sent": "A campaign's send_message step was taken by the provider: channel, via (provider), provider_message_id, to and step in attributes; text is the message.",
    "campaign.run_completed": "A campaign run ended: status (completed or stopped), end_reason and converted in attributes.",
    "provider.notification": "A provider notification with no specific type (e.g. Meta page feed change, WhatsApp account update, unrecognised Twilio callback); its kind and data are in attributes.",
}


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of the canonical event (what partners read)."""
    schema = CanonicalEvent.model_json_schema(mode="serialization")
    schema["$id"] = "https://switchboard.dev/schema/canonical-event/1.0.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
