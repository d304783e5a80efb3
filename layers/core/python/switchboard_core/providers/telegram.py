"""Telegram Bot API webhooks (setWebhook with secret_token).

Contract (docs/providers/telegram.md has the sources):

* Authentication: every update carries ``X-Telegram-Bot-Api-Secret-Token`` = the
  ``secret_token`` given to setWebhook (1-256 characters ``A-Z a-z 0-9 _ -``); compared in
  constant time. No HMAC, no timestamp: replays are bounded by deduplication on ``update_id``.
* No handshake. One ``Update`` per request; the delivery id is ``update_id``.

Normalisation (one event per update):

* ``message`` / ``channel_post`` / ``business_message`` -> ``message.received``;
  ``edited_message`` / ``edited_channel_post`` / ``edited_business_message`` ->
  ``message.updated``. Contact: ``from`` as ``SocialHandle(platform="telegram", id,
  handle=username)`` and the name; a shared ``contact`` with the sender's own phone number
  becomes ``contact.phone`` (through phones.delivered_e164); conversation_key ``telegram:{chat_id}``;
  text from ``text`` or ``caption``; photos/documents/voice/... become attachments by
  ``file_id``; location, venue and the shared contact are kept in attributes (its phone
  normalised as ``contact_phone_e164``).
* ``callback_query`` -> ``interaction.created`` (data as text, the message's chat as key).
* Any other update kind (inline_query, poll, my_chat_member, message_reaction...) ->
  ``provider.notification``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from switchboard_core.events import (
    Attachment,
    Channel,
    Contact,
    EventDraft,
    SocialHandle,
)
from switchboard_core.phones import delivered_e164
from switchboard_core.providers._common import (
    ascii_int,
    dig,
    draft,
    from_seconds,
    header,
    load_json,
    refuse_invalid_models,
    scalar_str,
    secret_bytes,
    text_or_none,
)
from switchboard_core.providers.base import (
    Credentials,
    MalformedPayload,
    ProviderAdapter,
    SignatureError,
    WebhookRequest,
    constant_time_equal,
)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_MESSAGES = {
    "message": "message.received",
    "channel_post": "message.received",
    "business_message": "message.received",
    "edited_message": "message.updated",
    "edited_channel_post": "message.updated",
    "edited_business_message": "message.updated",
}
_MEDIA = {
    "photo": "image/*",
    "document": None,
    "video": "video/*",
    "audio": "audio/*",
    "voice": "audio/ogg",
    "video_note": "video/mp4",
    "animation": "video/mp4",
    "sticker": None,
}


def _name(user: Any) -> str | None:
    parts = [text_or_none(dig(user, "first_name")), text_or_none(dig(user, "last_name"))]
    name = " ".join(part for part in parts if part)
    return name or text_or_none(dig(user, "title"))


class TelegramAdapter(ProviderAdapter):
    name: ClassVar[str] = "telegram"
    channel: ClassVar[Channel] = Channel.SOCIAL
    title: ClassVar[str] = "Telegram Bot API"
    credential_fields: ClassVar[tuple[str, ...]] = ("secret_token",)
    # The secret token itself travels in this header on every update.
    secret_headers: ClassVar[tuple[str, ...]] = (SECRET_HEADER,)

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        given = header(request, SECRET_HEADER)
        if given is None:
            raise SignatureError(f"missing {SECRET_HEADER} header")
        secret = secret_bytes(credentials, "secret_token")
        if secret is None:
            raise SignatureError("the connection has no secret_token to verify with")
        if not constant_time_equal(secret, given.encode("utf-8")):
            raise SignatureError(f"{SECRET_HEADER} does not match the connection")

    def delivery_id(self, request: WebhookRequest) -> str:
        payload = load_json(request)
        update_id = ascii_int(payload.get("update_id")) if isinstance(payload, Mapping) else None
        if update_id is None:
            raise MalformedPayload("an update needs a non-negative integer update_id")
        return f"update:{update_id}"

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        update = load_json(request)
        if not isinstance(update, dict):
            raise MalformedPayload("expected a JSON Update object")
        update_id = ascii_int(update.get("update_id"))
        if update_id is None:
            raise MalformedPayload("an update needs a non-negative integer update_id")
        kinds = [key for key in update if key != "update_id"]
        if not kinds:
            raise MalformedPayload("the update carries nothing besides update_id")
        kind = kinds[0]
        item = update[kind]
        if kind in _MESSAGES:
            if not isinstance(item, dict):
                raise MalformedPayload(f"{kind} must be an object")
            return [self._message(update_id, kind, item)]
        if kind == "callback_query":
            if not isinstance(item, dict):
                raise MalformedPayload("callback_query must be an object")
            return [self._callback(update_id, item)]
        user = dig(item, "from") or dig(item, "user")
        return [
            draft(
                type="provider.notification",
                provider_event_id=f"update:{update_id}",
                occurred_at=from_seconds(dig(item, "date")),
                contact=self._contact(user),
                conversation_key=self._chat_key(dig(item, "chat")),
                attributes={"kind": f"telegram.{kind}", "update_id": update_id, "data": item},
            )
        ]

    @staticmethod
    def _chat_key(chat: Any) -> str | None:
        chat_id = scalar_str(dig(chat, "id"))
        return f"telegram:{chat_id}" if chat_id else None

    @staticmethod
    def _contact(user: Any, phone: str | None = None) -> Contact:
        user_id = scalar_str(dig(user, "id"))
        username = text_or_none(dig(user, "username"))
        handles = [SocialHandle(platform="telegram", id=user_id, handle=username)] if user_id or username else []
        return Contact(phone=phone, name=_name(user), handles=handles)

    def _message(self, update_id: int, kind: str, message: dict[str, Any]) -> EventDraft:
        sender = message.get("from")
        if not isinstance(sender, dict):
            sender = message.get("sender_chat")  # channel posts are sent on behalf of the chat
        shared = message.get("contact") if isinstance(message.get("contact"), dict) else None
        attributes: dict[str, Any] = {
            "update_kind": kind,
            "update_id": update_id,
            **{k: v for k, v in message.items() if k not in ("text", "caption")},
        }
        phone = None
        if shared is not None:
            raw_phone = shared.get("phone_number")
            # A contact the sender shares about themselves (a bot's "share my number" button) carries
            # the number Telegram verified, in international digits; any other is an address-book
            # entry as someone typed it, so its bare digits must be a valid number.
            own = bool(scalar_str(shared.get("user_id"))) and scalar_str(shared.get("user_id")) == scalar_str(
                dig(sender, "id")
            )
            shared_phone = delivered_e164(raw_phone, international_digits=own) if isinstance(raw_phone, str) else None
            attributes["contact_phone_e164"] = shared_phone
            if own and shared_phone:  # it identifies the sender
                phone = shared_phone
        message_id = scalar_str(message.get("message_id"))
        chat_id = scalar_str(dig(message, "chat", "id"))
        if message_id and chat_id:
            event_id = f"{chat_id}:{message_id}"
            if kind.startswith("edited_"):
                event_id += f":edit:{scalar_str(message.get('edit_date')) or update_id}"
        else:
            event_id = f"update:{update_id}"
        return draft(
            type=_MESSAGES[kind],
            provider_event_id=event_id,
            occurred_at=from_seconds(message.get("edit_date"))
            if kind.startswith("edited_")
            else from_seconds(message.get("date")),
            contact=self._contact(sender, phone),
            conversation_key=self._chat_key(message.get("chat")),
            text=text_or_none(message.get("text")) or text_or_none(message.get("caption")),
            attachments=self._attachments(message),
            attributes=attributes,
        )

    @staticmethod
    def _attachments(message: dict[str, Any]) -> list[Attachment]:
        attachments = []
        for field, content_type in _MEDIA.items():
            media = message.get(field)
            if field == "photo" and isinstance(media, list):
                sizes = [size for size in media if isinstance(size, dict)]
                media = sizes[-1] if sizes else None  # the largest size is last
            if isinstance(media, dict):
                file_id = scalar_str(media.get("file_id"))
                if file_id:
                    attachments.append(
                        Attachment(
                            provider_id=file_id,
                            content_type=text_or_none(media.get("mime_type")) or content_type,
                        )
                    )
        return attachments

    def _callback(self, update_id: int, query: dict[str, Any]) -> EventDraft:
        query_id = scalar_str(query.get("id"))
        message = query.get("message")
        return draft(
            type="interaction.created",
            provider_event_id=f"callback:{query_id}" if query_id else f"update:{update_id}",
            occurred_at=None,
            contact=self._contact(query.get("from")),
            conversation_key=self._chat_key(dig(message, "chat")),
            text=text_or_none(query.get("data")),
            attributes={
                "update_kind": "callback_query",
                "update_id": update_id,
                **{k: v for k, v in query.items() if k not in ("data",)},
                "data": query.get("data"),
            },
        )
