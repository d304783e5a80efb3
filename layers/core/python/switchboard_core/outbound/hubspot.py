"""HubSpot: an answer is a message (or an internal comment) in the customer's inbox thread.

Conversations API v3 (https://developers.hubspot.com/docs/api-reference/conversations-conversations-v3/guide,
https://developers.hubspot.com/docs/api-reference/conversations-conversations-v3/public-message/post-conversations-v3-conversations-threads-threadId-messages,
https://developers.hubspot.com/docs/api/error-handling, https://developers.hubspot.com/docs/api/usage-details):
``POST https://api.hubapi.com/conversations/v3/conversations/threads/{threadId}/messages`` with
``Authorization: Bearer <private app token>`` (scope ``conversations.write``):

* public: ``{"type": "MESSAGE", "text", "richText", "senderActorId", "channelId", "channelAccountId"}``
  -- a message on the thread's channel (chat, e-mail, Messenger...) the customer receives;
* private: ``{"type": "COMMENT", "text", "richText"}`` -- a comment only agents see.

The answer is the Message (``{"type", "id", "conversationsThreadId", "status": {"statusType":
"SENT" | "FAILED", "failureDetails"?}, ...}``); its ``id`` is the provider message id. A message
HubSpot could not send at once comes back ``statusType: FAILED`` with its reason.

What a reply needs that the webhook does not carry: HubSpot's ``conversation.newMessage``
webhook names only the thread, the message and its type, so the ``hubspot_threads`` function
fetches each new message (``message_request``: ``GET .../threads/{threadId}/messages/{messageId}``,
scope ``conversations.read``) and publishes the customer's as ``message.received`` (attributes
``threadId``, ``messageId``, ``messageType``, ``direction``, ``channelId``, ``channelAccountId``,
``senderActorId``). That event is what ``address`` answers: in its thread, on its channel and
channel account (the credentials' ``channel_id`` / ``channel_account_id`` when it names none).
``senderActorId`` is the credentials' ``sender_actor_id`` (``A-<user id>``).

Status: the business's own messages come back the same way, as ``message.sent`` (direction
``OUTGOING``): for the hub's answer its ``messageId`` is the id ``outcome`` returned, read as
``delivered`` (HubSpot's only word on it).

Errors: ``{"status": "error", "message", "correlationId", "category", "errors"?: [{"message",
"code"?}]}``: ``hubspot_<category>`` (``INVALID_AUTHENTICATION`` 401, ``MISSING_SCOPES`` 403,
``OBJECT_NOT_FOUND`` 404, ``VALIDATION_ERROR`` 400, ``RATE_LIMITS`` 429); 429 waits
``Retry-After`` or, without it, the rolling interval ``X-HubSpot-RateLimit-Interval-Milliseconds``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound.base import (
    MAX_RETRY_AFTER_SECONDS,
    DeliveryStatus,
    OutboundMessage,
    OutboundRequest,
    PermanentFailure,
    ProviderResponse,
    Sender,
    TransientFailure,
    Visibility,
    failure_for_status,
)

NEW_MESSAGE = "conversation.newMessage"
# The attributes the hubspot_threads function gives a fetched thread message (HubSpot's own names).
THREAD_ID, MESSAGE_ID, MESSAGE_TYPE, DIRECTION = "threadId", "messageId", "messageType", "direction"
MAX_TEXT_CHARS = 60_000
_ID = re.compile(r"^[0-9]{1,24}$")
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")  # message ids are opaque strings ("a1b2c3d4e5")
_CATEGORY = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


class HubSpotCredentials(BaseModel):
    """A private app's access token, the agent (actor) the answers are sent as, and the inbox
    channel account they go out on."""

    model_config = ConfigDict(extra="forbid")

    access_token: str = Field(
        pattern=r"^pat-[a-z0-9]{2,8}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )
    sender_actor_id: str = Field(pattern=r"^A-[0-9]{1,20}$", description="the agent: A-<HubSpot user id>")
    channel_id: str | None = Field(default=None, pattern=r"^[0-9]{1,24}$", description="the inbox channel")
    channel_account_id: str | None = Field(default=None, pattern=r"^[0-9]{1,24}$", description="its account")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id(value: Any) -> str | None:
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    return text if text is not None and _ID.match(text) else None


def _message_id(value: Any) -> str | None:
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    return text if text is not None and _MESSAGE_ID.match(text) else None


def as_rich_text(text: str) -> str:
    paragraphs = [p for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]
    return "".join("<p>" + html.escape(p.strip("\n")).replace("\n", "<br>") + "</p>" for p in paragraphs)


def message_request(base_url: str, thread_id: str, message_id: str, credentials: HubSpotCredentials) -> OutboundRequest:
    """``GET /conversations/v3/conversations/threads/{threadId}/messages/{messageId}`` (scope
    ``conversations.read``): the Message, with its ``direction``, ``senders``, ``text`` and channel."""
    thread, message = quote(thread_id, safe=""), quote(message_id, safe="")
    return OutboundRequest(
        method="GET",
        url=f"{base_url}/conversations/v3/conversations/threads/{thread}/messages/{message}",
        headers={"Authorization": f"Bearer {credentials.access_token}", "Accept": "application/json"},
        body=b"",
    )


class HubSpotSender(Sender):
    provider: ClassVar[str] = "hubspot"
    base_url: ClassVar[str] = "https://api.hubapi.com"
    credentials_model: ClassVar[type[BaseModel]] = HubSpotCredentials

    def address(self, event: CanonicalEvent, visibility: Visibility | None = None) -> dict[str, str] | None:
        # A customer's message in a thread (fetched by hubspot_threads; never an agent's comment
        # nor the business's own message) is answered in that thread.
        attributes = event.attributes
        if event.type != "message.received" or attributes.get(MESSAGE_TYPE) != "MESSAGE":
            return None
        if attributes.get(DIRECTION) != "INCOMING":
            return None
        thread_id = _id(attributes.get(THREAD_ID))
        if thread_id is None:
            return None
        address = {"thread_id": thread_id, "type": "COMMENT" if visibility == "private" else "MESSAGE"}
        for field, key in (("channel_id", "channelId"), ("channel_account_id", "channelAccountId")):
            value = _id(attributes.get(key))
            if value:
                address[field] = value
        return address

    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        assert isinstance(credentials, HubSpotCredentials)
        if message.attachments:
            raise PermanentFailure("attachments_unsupported", "HubSpot attaches files by File Manager id, not links")
        text = message.text[:MAX_TEXT_CHARS]
        body: dict[str, Any] = {"type": "COMMENT" if address.get("type") == "COMMENT" else "MESSAGE", "text": text}
        body["richText"] = as_rich_text(text)
        if body["type"] == "MESSAGE":
            channel = address.get("channel_id") or credentials.channel_id
            account = address.get("channel_account_id") or credentials.channel_account_id
            if not channel or not account:
                raise PermanentFailure(
                    "channel_unknown",
                    "a HubSpot thread message needs the thread's channelId and channelAccountId: the webhook "
                    "carries neither, so set channel_id and channel_account_id in the outbound credentials",
                )
            body.update(
                {"senderActorId": credentials.sender_actor_id, "channelId": channel, "channelAccountId": account}
            )
        return OutboundRequest(
            method="POST",
            url=f"{base_url}/conversations/v3/conversations/threads/{quote(address['thread_id'], safe='')}/messages",
            headers={
                "Authorization": f"Bearer {credentials.access_token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        )

    def outcome(self, response: ProviderResponse) -> str:
        payload = _dict(response.json())
        if response.status in (200, 201):
            message_id = _message_id(payload.get("id"))
            if message_id is None:
                raise PermanentFailure("unexpected_response", "HubSpot answered without a message id")
            status = _dict(payload.get("status"))
            if status.get("statusType") == "FAILED":
                details = _dict(status.get("failureDetails"))
                reason = details.get("errorMessage") if isinstance(details.get("errorMessage"), str) else None
                raise PermanentFailure("hubspot_message_failed", reason or "HubSpot could not send the message")
            return message_id
        category = payload.get("category")
        code = f"hubspot_{category}" if isinstance(category, str) and _CATEGORY.match(category) else None
        message = payload.get("message")
        detail = message if isinstance(message, str) and message else response.body[:200].decode("utf-8", "replace")
        failure = failure_for_status(response, code or f"http_{response.status}", detail)
        if isinstance(failure, TransientFailure) and failure.retry_after is None:
            interval = response.headers.get("x-hubspot-ratelimit-interval-milliseconds", "")
            if response.status == 429 and interval.isdigit():  # a rolling window: wait one interval
                failure.retry_after = min(int(interval) / 1000, MAX_RETRY_AFTER_SECONDS)
        raise failure

    def status(self, event: CanonicalEvent) -> DeliveryStatus | None:
        # The business's own thread message, fetched after its new-message webhook, is HubSpot's
        # only word on a message the hub sent; the hub matches the id to what it sent.
        if event.type != "message.sent" or event.attributes.get(DIRECTION) != "OUTGOING":
            return None
        message_id = _message_id(event.attributes.get(MESSAGE_ID))
        return DeliveryStatus(message_id, "delivered") if message_id else None
