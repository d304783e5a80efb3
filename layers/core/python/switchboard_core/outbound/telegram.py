"""Telegram Bot API: replies to a message (or a button press) in the chat it came from.

API (https://core.telegram.org/bots/api#sendmessage, #replyparameters, #making-requests):
``POST https://api.telegram.org/bot<token>/sendMessage`` with a JSON body ``chat_id``
(Integer or String), ``text`` (1-4096 characters) and optionally ``reply_parameters``
(``message_id``, ``allow_sending_without_reply``), ``message_thread_id`` (forum topic) and
``business_connection_id`` (send on behalf of a connected business account). The bot token
is the only credential and travels in the URL path. Every answer is JSON: ``{"ok": true,
"result": <Message>}`` on success, ``{"ok": false, "error_code": <int>, "description":
"..."}`` otherwise (error_code mirrors the HTTP status; 429 carries
``parameters.retry_after``).

Address: a ``message.received`` event is answered in its chat (``chat.id``) as a reply to
the customer's message (``message_id``; ``allow_sending_without_reply`` so a deleted
original does not block the answer); a forum topic message stays in its topic, and a
business message is answered through its business connection. A callback query
(``interaction.created``) is answered in the chat of the message whose button was pressed
(that message is the bot's own, so the reply quotes nothing). No address for channel posts
(posting would broadcast to every subscriber), messages from bots, the business account's
own outgoing messages, edits, inline-mode callbacks (no chat) and every other update kind.
Every answer is a private message to that chat: ``visibility="public"`` has no address.

Attachments (https://core.telegram.org/bots/api#sendphoto, #senddocument, #sendmediagroup,
#sending-files): one image goes by ``sendPhoto`` (``photo`` = its URL, Telegram fetches it),
any other file by ``sendDocument`` (``document`` = its URL), the text as ``caption`` (at most
1,024 characters); 2-10 files by ``sendMediaGroup`` (``media`` = InputMediaPhoto items when
all are images, else InputMediaDocument items: Telegram does not mix documents with photos),
the caption on the first, whose ``message_id`` is the answer's id. The Bot API takes no
idempotency key and sends bots no delivery reports nor their own messages: no status.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound.base import (
    MAX_REPLY_CHARS,
    MAX_RETRY_AFTER_SECONDS,
    Attachment,
    OutboundMessage,
    OutboundRequest,
    PermanentFailure,
    ProviderResponse,
    Refused,
    Sender,
    SendFailure,
    TransientFailure,
    Visibility,
    clip,
    failure_for_status,
)

# The update kinds whose message a customer wrote to the bot (or to the business account).
_ANSWERABLE_KINDS = ("message", "business_message")
_INTEGER = re.compile(r"^-?\d{1,20}$")
MAX_CAPTION_CHARS = 1024
MAX_GROUP_FILES = 10


class TelegramCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # "<bot id>:<secret>" as issued by @BotFather.
    bot_token: str = Field(pattern=r"^\d+:[A-Za-z0-9_-]{30,}$", max_length=128)


def _scalar(value: Any) -> str | None:
    """An id as text: Telegram ids are integers (chat ids of groups are negative)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return value
    return None


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


class TelegramSender(Sender):
    provider: ClassVar[str] = "telegram"
    base_url: ClassVar[str] = "https://api.telegram.org"
    credentials_model: ClassVar[type[BaseModel]] = TelegramCredentials

    def address(self, event: CanonicalEvent, visibility: Visibility | None = None) -> dict[str, str] | None:
        if visibility == "public":  # private messages only on this channel
            return None
        attributes = event.attributes
        kind = attributes.get("update_kind")
        if event.type == "interaction.created" and kind == "callback_query":
            chat_id = _scalar(_dig(attributes, "message", "chat", "id"))
            return {"chat_id": chat_id} if chat_id else None
        if event.type != "message.received" or kind not in _ANSWERABLE_KINDS:
            return None
        if _dig(attributes, "from", "is_bot") is True or "sender_business_bot" in attributes:
            return None
        chat_id = _scalar(_dig(attributes, "chat", "id"))
        if chat_id is None:
            return None
        address = {"chat_id": chat_id}
        message_id = _scalar(attributes.get("message_id"))
        if message_id:
            address["reply_to_message_id"] = message_id
        if attributes.get("is_topic_message") is True:
            thread = _scalar(attributes.get("message_thread_id"))
            if thread:
                address["message_thread_id"] = thread
        if kind == "business_message":
            connection = attributes.get("business_connection_id")
            # In a business chat the customer's own messages come from the chat's user;
            # the account owner's replies arrive as business messages too and need no answer.
            if not isinstance(connection, str) or not connection or _scalar(_dig(attributes, "from", "id")) != chat_id:
                return None
            address["business_connection_id"] = connection
        return address

    def contact_address(self, channel: str, to: str, credentials: BaseModel) -> dict[str, str] | None:
        """A chat id (a user who started the bot, a group): the bot writes first there."""
        chat = to.strip()
        if channel != "telegram" or not (_INTEGER.fullmatch(chat) or chat.startswith("@")):
            return None
        return {"chat_id": chat}

    def prepare(
        self, address: Mapping[str, str], message: OutboundMessage, inbound_at: datetime, now: datetime
    ) -> dict[str, str]:
        # No messaging window on Telegram; what would be cut is refused instead.
        if message.attachments:
            if len(message.attachments) > MAX_GROUP_FILES:
                raise Refused(
                    "telegram_too_many_attachments",
                    f"Telegram sends at most {MAX_GROUP_FILES} files in one message group",
                    limit=MAX_GROUP_FILES,
                )
            if len(message.text) > MAX_CAPTION_CHARS:
                raise Refused(
                    "telegram_caption_too_long",
                    f"the text of a Telegram message with files is a caption of at most {MAX_CAPTION_CHARS} characters",
                    limit=MAX_CAPTION_CHARS,
                    hint="send the text and the files as two answers",
                )
        elif len(message.text) > MAX_REPLY_CHARS:
            raise Refused(
                "message_too_long", f"an answer is at most {MAX_REPLY_CHARS} characters", limit=MAX_REPLY_CHARS
            )
        return dict(address)

    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        text = message.text
        assert isinstance(credentials, TelegramCredentials)
        chat_id = address["chat_id"]
        body: dict[str, Any] = {"chat_id": int(chat_id) if _INTEGER.fullmatch(chat_id) else chat_id}
        method = "sendMessage"
        if not message.attachments:
            body["text"] = clip(text)
        elif len(message.attachments) == 1:
            attachment = message.attachments[0]
            method, field = ("sendPhoto", "photo") if _is_photo(attachment) else ("sendDocument", "document")
            body[field] = attachment.url
            if text:
                body["caption"] = clip(text, MAX_CAPTION_CHARS)
        elif len(message.attachments) <= MAX_GROUP_FILES:
            method = "sendMediaGroup"
            kind = "photo" if all(_is_photo(a) for a in message.attachments) else "document"
            body["media"] = [{"type": kind, "media": a.url} for a in message.attachments]
            if text:
                body["media"][0]["caption"] = clip(text, MAX_CAPTION_CHARS)
        else:
            raise PermanentFailure("attachments_unsupported", f"Telegram groups at most {MAX_GROUP_FILES} files")
        if address.get("reply_to_message_id"):
            body["reply_parameters"] = {
                "message_id": int(address["reply_to_message_id"]),
                "allow_sending_without_reply": True,
            }
        if address.get("message_thread_id"):
            body["message_thread_id"] = int(address["message_thread_id"])
        if address.get("business_connection_id"):
            body["business_connection_id"] = address["business_connection_id"]
        return OutboundRequest(
            method="POST",
            url=f"{base_url}/bot{credentials.bot_token}/{method}",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        )

    def outcome(self, response: ProviderResponse) -> str:
        payload = response.json()
        if isinstance(payload, dict) and payload.get("ok") is True:
            result = payload.get("result")
            if isinstance(result, list):  # sendMediaGroup: the messages sent, the first carries the caption
                result = result[0] if result else None
            message_id = _scalar(_dig(result, "message_id"))
            if response.status == 200 and message_id:
                return message_id
            raise PermanentFailure("unexpected_response", "Telegram answered ok without a message_id")
        if isinstance(payload, dict) and payload.get("ok") is False:
            error_code = payload.get("error_code")
            code = f"telegram_{error_code}" if isinstance(error_code, int) else f"http_{response.status}"
            detail = str(payload.get("description", ""))
            retry_after = _dig(payload, "parameters", "retry_after")
            if isinstance(retry_after, int):
                detail += f" (retry after {retry_after}s)"
            failure = _failure(response, error_code, code, detail)
            if isinstance(retry_after, int) and not isinstance(retry_after, bool) and failure.transient:
                failure.retry_after = float(min(max(retry_after, 0), MAX_RETRY_AFTER_SECONDS))
            raise failure
        if 200 <= response.status < 300:
            raise PermanentFailure("unexpected_response", "Telegram answered without an ok field")
        raise failure_for_status(response, f"http_{response.status}", response.body[:200].decode("utf-8", "replace"))


def _is_photo(attachment: Attachment) -> bool:
    """Images Telegram shows as a photo (a GIF is an animation and an SVG is not a photo: sent as files)."""
    content_type = (attachment.content_type or "").lower()
    return content_type in ("image/jpeg", "image/png", "image/webp")


def _failure(response: ProviderResponse, error_code: Any, code: str, detail: str) -> SendFailure:
    """429 (flood control) and 5xx are worth retrying, whether the HTTP status or the body says so."""
    if isinstance(error_code, int) and (error_code == 429 or error_code >= 500):
        return TransientFailure(code, detail)
    return failure_for_status(response, code, detail)
