"""Meta: Messenger (Pages), Instagram messaging and the WhatsApp Cloud API.

Contract (docs/providers.md has the sources):

* Handshake: ``GET ?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...``; when the
  token equals (constant time) the verify_token of any current credential set, answer
  200 with the challenge verbatim as text/plain.
* Signature: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>``.
  The legacy SHA-1 ``X-Hub-Signature`` is not accepted. No timestamp: replays are
  bounded by deduplication only, and Meta sends no delivery id, so the delivery id is
  a digest of the body.

Normalisation (one event per item; nothing is skipped):

* ``object: page|instagram`` ``entry[].messaging[]`` (and ``standby[]``):
  ``message`` -> ``message.received`` (``message.sent`` for ``is_echo``; ``automated: true``
  when the echo carries the hub's auto-reply metadata), ``postback``
  and ``reaction`` -> ``message.received`` (postback title as text), ``delivery`` and
  ``read`` -> ``message.status_updated``; the user is a ``SocialHandle`` (platform
  messenger or instagram, id = PSID/IGSID); conversation_key
  ``meta:{platform}:{page or IG account id}:{user id}``.
* ``object: whatsapp_business_account`` ``entry[].changes[].value``: ``messages[]`` ->
  ``message.received`` (phone ``+wa_id``, whatsapp handle with the profile name),
  ``statuses[]`` -> ``message.status_updated`` (id ``{wamid}:{status}``);
  conversation_key ``meta:whatsapp:{phone_number_id}:{wa_id}``.
* ``object: page`` ``entry[].changes[]``: field ``feed`` with ``item: comment`` / ``verb: add``
  -> ``comment.created``; a visitor's post (``item`` post/status/photo/video/share, ``verb:
  add``, author not the Page) -> ``mention.created``; field ``mention`` -> ``mention.created``.
  Author = ``SocialHandle(platform="facebook", id, handle=name)``, text from ``message``,
  conversation_key ``meta:facebook:{post_id}``. The Page's own posts/comments, edits,
  removals, reactions and likes stay ``provider.notification``.
* ``object: instagram`` changes: ``comments``/``live_comments`` -> ``comment.created``
  (``from.{id,username}`` as an instagram handle, ``text``, key ``meta:instagram:{media id}``);
  ``mentions`` -> ``mention.created`` (ids only: ``media_id``, ``comment_id``).
* Anything else (other feed changes, other WhatsApp fields, unknown messaging kinds,
  other objects) -> ``provider.notification`` with the data in attributes.
* Phone numbers (WhatsApp ``wa_id``, ``recipient_id``) go through phones.delivered_e164.
* A body that is not JSON, or whose envelope (object, entry[], messaging[], changes[],
  value) has the wrong shape, is MalformedPayload.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime
from hashlib import sha256
from typing import Any, ClassVar

from switchboard_core.events import (
    Attachment,
    Channel,
    Contact,
    EventDraft,
    SocialHandle,
)
from switchboard_core.outbound.base import AUTO_REPLY_MARK
from switchboard_core.phones import delivered_e164
from switchboard_core.providers._common import (
    body_digest_id,
    clean_str,
    dig,
    draft,
    from_epoch,
    header,
    load_json,
    query_value,
    refuse_invalid_models,
    scalar_str,
    secret_bytes,
    stable_hash,
    text_or_none,
)
from switchboard_core.providers.base import (
    Credentials,
    HandshakeRefused,
    HttpResponse,
    MalformedPayload,
    ProviderAdapter,
    SignatureError,
    WebhookRequest,
    constant_time_equal,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PLATFORMS = {"page": "messenger", "instagram": "instagram", "whatsapp_business_account": "whatsapp"}
# Messenger/Instagram attachment types as media-type patterns.
_ATTACHMENT_TYPES = {"image": "image/*", "video": "video/*", "audio": "audio/*", "file": "application/octet-stream"}
_WHATSAPP_MEDIA = ("image", "video", "audio", "document", "sticker")
_MESSAGING_KNOWN = ("message", "postback", "reaction", "delivery", "read")
_MAX_CHALLENGE = 2048


def _list_of_dicts(container: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise MalformedPayload(f"{where}.{key} must be an array of objects")
    return value


class MetaAdapter(ProviderAdapter):
    name: ClassVar[str] = "meta"
    channel: ClassVar[Channel] = Channel.SOCIAL
    title: ClassVar[str] = "Meta (Messenger, Instagram, WhatsApp)"
    credential_fields: ClassVar[tuple[str, ...]] = ("app_secret", "verify_token")
    supports_handshake: ClassVar[bool] = True

    # --------------------------------------------------------------- handshake
    def handshake(self, request: WebhookRequest, credentials: Sequence[Credentials]) -> HttpResponse:
        mode = query_value(request, "hub.mode")
        token = query_value(request, "hub.verify_token")
        challenge = query_value(request, "hub.challenge")
        if mode is None or token is None or challenge is None:
            raise MalformedPayload("a Meta handshake needs hub.mode, hub.verify_token and hub.challenge")
        if mode != "subscribe":
            raise HandshakeRefused("hub.mode must be 'subscribe'")
        if len(challenge) > _MAX_CHALLENGE:
            raise MalformedPayload("hub.challenge is too long")
        matched = False
        for credential_set in credentials or ():
            expected = credential_set.get("verify_token") if isinstance(credential_set, Mapping) else None
            # No early exit: every set is compared, so timing does not tell which matched.
            if isinstance(expected, str) and expected and constant_time_equal(clean_str(expected), token):
                matched = True
        if not matched:
            raise HandshakeRefused("hub.verify_token does not match this connection")
        return HttpResponse.text(challenge)

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        signature = header(request, SIGNATURE_HEADER)
        if signature is None:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        secret = secret_bytes(credentials, "app_secret")
        if secret is None:
            raise SignatureError("the connection has no app_secret to verify with")
        expected = "sha256=" + hmac.new(secret, request.body, sha256).hexdigest()
        if not constant_time_equal(expected, signature.lower()):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")

    def delivery_id(self, request: WebhookRequest) -> str:
        return body_digest_id(request.body)

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        payload = load_json(request)
        if not isinstance(payload, dict):
            raise MalformedPayload("expected a JSON object with 'object' and 'entry'")
        kind = payload.get("object")
        if not isinstance(kind, str) or not kind:
            raise MalformedPayload("'object' must be a non-empty string")
        entries = _list_of_dicts(payload, "entry", "payload")
        if not entries:
            raise MalformedPayload("'entry' must be a non-empty array")
        platform = _PLATFORMS.get(kind)
        events: list[EventDraft] = []
        for entry in entries:
            if platform == "whatsapp":
                events.extend(self._whatsapp_entry(entry))
            elif platform is not None:
                events.extend(self._messaging_entry(platform, entry))
            else:
                events.extend(self._other_entry(kind, entry))
        return events

    # Messenger / Instagram ---------------------------------------------------
    def _messaging_entry(self, platform: str, entry: dict[str, Any]) -> list[EventDraft]:
        account_id = scalar_str(entry.get("id"))
        entry_time = entry.get("time")
        events = [
            self._messaging_item(platform, account_id, entry_time, item, standby=False)
            for item in _list_of_dicts(entry, "messaging", "entry")
        ]
        events += [
            self._messaging_item(platform, account_id, entry_time, item, standby=True)
            for item in _list_of_dicts(entry, "standby", "entry")
        ]
        for change in _list_of_dicts(entry, "changes", "entry"):
            events.append(
                self._social_change(platform, account_id, entry_time, change)
                or self._change_notification(platform, account_id, entry_time, change)
            )
        if not events:
            events.append(self._entry_notification(platform, entry))
        return events

    def _messaging_item(
        self, platform: str, account_id: str | None, entry_time: Any, item: dict[str, Any], *, standby: bool
    ) -> EventDraft:
        sender = scalar_str(dig(item, "sender", "id"))
        recipient = scalar_str(dig(item, "recipient", "id"))
        occurred = from_epoch(item.get("timestamp")) or from_epoch(entry_time)
        base: dict[str, Any] = {"sender_id": sender, "recipient_id": recipient}
        if standby:
            base["standby"] = True
        rest = {k: v for k, v in item.items() if k not in ("sender", "recipient", *_MESSAGING_KNOWN)}

        message = item.get("message")
        if isinstance(message, dict):
            is_echo = message.get("is_echo") is True
            user = recipient if is_echo else sender
            mid = scalar_str(message.get("mid"))
            # The echo of the hub's own auto-reply (its Send API metadata came back).
            automated = {"automated": True} if is_echo and message.get("metadata") == AUTO_REPLY_MARK else {}
            return draft(
                type="message.sent" if is_echo else "message.received",
                provider_event_id=mid or f"{platform}:message:{stable_hash(item)}",
                occurred_at=occurred,
                contact=self._social_contact(platform, user),
                conversation_key=self._conversation(platform, account_id, recipient if not is_echo else sender, user),
                text=text_or_none(message.get("text")),
                attachments=self._messenger_attachments(message.get("attachments")),
                attributes={
                    **base,
                    **{k: v for k, v in message.items() if k not in ("mid", "text")},
                    **rest,
                    **automated,
                },
            )
        postback = item.get("postback")
        if isinstance(postback, dict):
            mid = scalar_str(postback.get("mid"))
            return draft(
                type="message.received",
                provider_event_id=mid or f"{platform}:postback:{sender}:{stable_hash(item)}",
                occurred_at=occurred,
                contact=self._social_contact(platform, sender),
                conversation_key=self._conversation(platform, account_id, recipient, sender),
                text=text_or_none(postback.get("title")),
                attributes={**base, "postback": postback, **rest},
            )
        reaction = item.get("reaction")
        if isinstance(reaction, dict):
            parts = [scalar_str(reaction.get("mid")) or "", sender or "", scalar_str(reaction.get("action")) or ""]
            return draft(
                type="message.received",
                provider_event_id=f"{platform}:reaction:{':'.join(parts)}:{stable_hash(item)[:16]}",
                occurred_at=occurred,
                contact=self._social_contact(platform, sender),
                conversation_key=self._conversation(platform, account_id, recipient, sender),
                attributes={**base, "reaction": reaction, **rest},
            )
        for status in ("delivery", "read"):
            receipt = item.get(status)
            if isinstance(receipt, dict):
                watermark = scalar_str(receipt.get("watermark")) or ""
                mids = receipt.get("mids")
                event_id = f"{platform}:{status}:{sender}:{watermark}"
                if isinstance(mids, list) and mids:
                    event_id += ":" + stable_hash(sorted(str(mid) for mid in mids))[:16]
                elif not watermark:
                    event_id += ":" + stable_hash(item)[:16]
                return draft(
                    type="message.status_updated",
                    provider_event_id=event_id,
                    occurred_at=occurred,
                    contact=self._social_contact(platform, sender),
                    conversation_key=self._conversation(platform, account_id, recipient, sender),
                    attributes={**base, "status": "delivered" if status == "delivery" else "read", **receipt, **rest},
                )
        # optin, referral, account_linking, policy_enforcement, handover, message_edit...
        kinds = [k for k in item if k not in ("sender", "recipient", "timestamp")]
        kind = kinds[0] if kinds else "messaging"
        return draft(
            type="provider.notification",
            provider_event_id=f"{platform}:{kind}:{stable_hash(item)}",
            occurred_at=occurred,
            contact=self._social_contact(platform, sender),
            conversation_key=self._conversation(platform, account_id, recipient, sender),
            attributes={"kind": f"{platform}.{kind}", **base, "data": item},
        )

    @staticmethod
    def _social_contact(platform: str, user_id: str | None) -> Contact:
        if user_id is None:
            return Contact()
        return Contact(handles=[SocialHandle(platform=platform, id=user_id)])

    @staticmethod
    def _conversation(
        platform: str, account_id: str | None, business_id: str | None, user_id: str | None
    ) -> str | None:
        account = account_id or business_id
        if account is None or user_id is None:
            return None
        return f"meta:{platform}:{account}:{user_id}"

    @staticmethod
    def _messenger_attachments(value: Any) -> list[Attachment]:
        attachments = []
        for item in value if isinstance(value, list) else []:
            url = dig(item, "payload", "url")
            if isinstance(url, str) and url:
                kind = item.get("type") if isinstance(item, dict) else None
                attachments.append(
                    Attachment(url=url, content_type=_ATTACHMENT_TYPES.get(kind) if isinstance(kind, str) else None)
                )
        return attachments

    # WhatsApp -----------------------------------------------------------------
    def _whatsapp_entry(self, entry: dict[str, Any]) -> list[EventDraft]:
        waba_id = scalar_str(entry.get("id"))
        changes = _list_of_dicts(entry, "changes", "entry")
        if not changes:
            return [self._entry_notification("whatsapp", entry)]
        events: list[EventDraft] = []
        for change in changes:
            value = change.get("value")
            if not isinstance(value, dict):
                raise MalformedPayload("entry.changes[].value must be an object")
            messages = _list_of_dicts(value, "messages", "value")
            statuses = _list_of_dicts(value, "statuses", "value")
            if not messages and not statuses:
                events.append(self._change_notification("whatsapp", waba_id, None, change))
                continue
            metadata = value.get("metadata")
            metadata = metadata if isinstance(metadata, dict) else {}
            context = {
                "waba_id": waba_id,
                "phone_number_id": scalar_str(metadata.get("phone_number_id")),
                "display_phone_number": scalar_str(metadata.get("display_phone_number")),
            }
            extra = {k: v for k, v in value.items() if k not in ("messages", "statuses", "contacts", "metadata")}
            names = self._profile_names(value.get("contacts"))
            events += [self._whatsapp_message(message, names, context, extra) for message in messages]
            events += [self._whatsapp_status(status, context, extra) for status in statuses]
        return events

    @staticmethod
    def _profile_names(contacts: Any) -> dict[str | None, str | None]:
        names: dict[str | None, str | None] = {}
        for contact in contacts if isinstance(contacts, list) else []:
            if isinstance(contact, dict):
                names[scalar_str(contact.get("wa_id"))] = text_or_none(dig(contact, "profile", "name"))
        if len(names) == 1:
            names[None] = next(iter(names.values()))
        return names

    def _whatsapp_message(
        self,
        message: dict[str, Any],
        names: dict[str | None, str | None],
        context: dict[str, Any],
        extra: dict[str, Any],
    ) -> EventDraft:
        wa_id = scalar_str(message.get("from"))
        name = names.get(wa_id, names.get(None))
        message_type = scalar_str(message.get("type"))
        text: str | None = None
        attachments: list[Attachment] = []
        if message_type == "text":
            text = text_or_none(dig(message, "text", "body"))
        elif message_type == "button":
            text = text_or_none(dig(message, "button", "text"))
        elif message_type == "interactive":
            interactive = message.get("interactive")
            reply_kind = dig(interactive, "type")
            if reply_kind in ("button_reply", "list_reply"):
                text = text_or_none(dig(interactive, reply_kind, "title"))
            elif reply_kind == "nfm_reply":
                text = text_or_none(dig(interactive, "nfm_reply", "body"))
        elif message_type == "system":
            text = text_or_none(dig(message, "system", "body"))
        elif message_type in _WHATSAPP_MEDIA:
            media = message.get(message_type)
            if isinstance(media, dict):
                text = text_or_none(media.get("caption"))
                url = media.get("url")
                attachments.append(
                    Attachment(
                        url=url if isinstance(url, str) and url else None,
                        content_type=text_or_none(media.get("mime_type")),
                        provider_id=scalar_str(media.get("id")),
                    )
                )
        handles = [SocialHandle(platform="whatsapp", id=wa_id, handle=name)] if wa_id else []
        message_id = scalar_str(message.get("id"))
        attributes = {k: v for k, v in message.items() if k not in ("from", "id", "timestamp")}
        if message_type == "text":
            attributes.pop("text", None)
        return draft(
            type="message.received",
            provider_event_id=message_id or f"whatsapp:message:{stable_hash(message)}",
            occurred_at=from_epoch(message.get("timestamp")),
            contact=Contact(phone=delivered_e164(wa_id, international_digits=True), name=name, handles=handles),
            conversation_key=self._whatsapp_conversation(context, wa_id),
            text=text,
            attachments=attachments,
            attributes={**context, "message_type": message_type, **attributes, **extra},
        )

    def _whatsapp_status(self, status: dict[str, Any], context: dict[str, Any], extra: dict[str, Any]) -> EventDraft:
        message_id = scalar_str(status.get("id"))
        state = scalar_str(status.get("status"))
        recipient = scalar_str(status.get("recipient_id"))
        event_id = f"{message_id}:{state}" if message_id and state else f"whatsapp:status:{stable_hash(status)}"
        handles = [SocialHandle(platform="whatsapp", id=recipient)] if recipient else []
        return draft(
            type="message.status_updated",
            provider_event_id=event_id,
            occurred_at=from_epoch(status.get("timestamp")),
            contact=Contact(phone=delivered_e164(recipient, international_digits=True), handles=handles),
            conversation_key=self._whatsapp_conversation(context, recipient),
            attributes={**context, **status, **extra},
        )

    @staticmethod
    def _whatsapp_conversation(context: dict[str, Any], wa_id: str | None) -> str | None:
        business = context.get("phone_number_id") or context.get("waba_id")
        if business is None or wa_id is None:
            return None
        return f"meta:whatsapp:{business}:{wa_id}"

    # Page feed / Instagram comments and mentions -----------------------------
    def _social_change(
        self, platform: str, account_id: str | None, entry_time: Any, change: dict[str, Any]
    ) -> EventDraft | None:
        """A comment on or a mention of the business (Page ``feed``/``mention``, Instagram
        ``comments``/``live_comments``/``mentions``) as comment.created / mention.created;
        None for any other change (kept as a notification by the caller)."""
        field = change.get("field")
        value = change.get("value")
        if not isinstance(value, dict) or not isinstance(field, str):
            return None
        occurred = from_epoch(value.get("created_time")) or from_epoch(value.get("timestamp")) or from_epoch(entry_time)
        if platform == "messenger":  # object: page
            item, verb = scalar_str(value.get("item")), scalar_str(value.get("verb"))
            if verb != "add":
                return None
            post_id = scalar_str(value.get("post_id"))
            comment_id = scalar_str(value.get("comment_id"))
            sender = value.get("from")
            sender = sender if isinstance(sender, dict) else {}
            sender_id = scalar_str(sender.get("id")) or scalar_str(value.get("sender_id"))
            sender_name = text_or_none(sender.get("name")) or text_or_none(value.get("sender_name"))
            if field == "feed" and item == "comment" and comment_id:
                event_type, event_id = "comment.created", f"facebook:comment:{comment_id}"
            elif (
                field == "feed"
                and item in ("post", "status", "photo", "video", "share")
                and post_id
                and sender_id is not None
                and sender_id != account_id
            ):
                # A visitor's post on the Page's feed: it addresses the business.
                event_type, event_id = "mention.created", f"facebook:post:{post_id}"
            elif field == "mention" and (post_id or comment_id):
                event_type = "mention.created"
                event_id = f"facebook:mention:{post_id or '-'}:{comment_id or '-'}"
            else:
                return None
            if sender_id is not None and sender_id == account_id:
                return None  # the Page's own comment or post
            handles = [SocialHandle(platform="facebook", id=sender_id, handle=sender_name)] if sender_id else []
            return draft(
                type=event_type,
                provider_event_id=event_id,
                occurred_at=occurred,
                contact=Contact(name=sender_name, handles=handles),
                conversation_key=f"meta:facebook:{post_id}" if post_id else None,
                text=text_or_none(value.get("message")),
                attributes={
                    "account_id": account_id,
                    "field": field,
                    **{k: v for k, v in value.items() if k != "message"},
                },
            )
        if platform == "instagram":
            if field in ("comments", "live_comments"):
                comment_id = scalar_str(value.get("id"))
                media_id = scalar_str(dig(value, "media", "id"))
                user_id = scalar_str(dig(value, "from", "id"))
                username = text_or_none(dig(value, "from", "username"))
                if comment_id is None or (user_id is not None and user_id == account_id):
                    return None
                return draft(
                    type="comment.created",
                    provider_event_id=f"instagram:comment:{comment_id}",
                    occurred_at=occurred,
                    contact=Contact(
                        handles=[SocialHandle(platform="instagram", id=user_id, handle=username)]
                        if user_id or username
                        else []
                    ),
                    conversation_key=f"meta:instagram:{media_id}" if media_id else None,
                    text=text_or_none(value.get("text")),
                    attributes={
                        "account_id": account_id,
                        "field": field,
                        **{k: v for k, v in value.items() if k != "text"},
                    },
                )
            if field == "mentions":
                media_id = scalar_str(value.get("media_id"))
                comment_id = scalar_str(value.get("comment_id"))
                if media_id is None and comment_id is None:
                    return None
                # Meta sends only ids here; the text and author need a Graph API call.
                return draft(
                    type="mention.created",
                    provider_event_id=f"instagram:mention:{media_id or '-'}:{comment_id or '-'}",
                    occurred_at=occurred,
                    conversation_key=f"meta:instagram:{media_id}" if media_id else None,
                    attributes={"account_id": account_id, "field": field, **value},
                )
        return None

    # Notifications ------------------------------------------------------------
    def _change_notification(
        self, platform: str, account_id: str | None, entry_time: Any, change: dict[str, Any]
    ) -> EventDraft:
        field = scalar_str(change.get("field")) or "change"
        value = change.get("value")
        occurred = (
            from_epoch(dig(value, "timestamp")) or from_epoch(dig(value, "created_time")) or from_epoch(entry_time)
        )
        return draft(
            type="provider.notification",
            provider_event_id=f"{platform}:{account_id}:{field}:{stable_hash(change)}",
            occurred_at=occurred,
            attributes={"kind": f"{platform}.{field}", "account_id": account_id, "field": field, "value": value},
        )

    def _entry_notification(self, platform: str, entry: dict[str, Any]) -> EventDraft:
        return draft(
            type="provider.notification",
            provider_event_id=f"{platform}:entry:{stable_hash(entry)}",
            occurred_at=from_epoch(entry.get("time")),
            attributes={"kind": f"{platform}.entry", "entry": entry},
        )

    def _other_entry(self, kind: str, entry: dict[str, Any]) -> list[EventDraft]:
        account_id = scalar_str(entry.get("id"))
        changes = _list_of_dicts(entry, "changes", "entry")
        if changes:
            return [self._change_notification(kind, account_id, entry.get("time"), change) for change in changes]
        return [self._entry_notification(kind, entry)]
