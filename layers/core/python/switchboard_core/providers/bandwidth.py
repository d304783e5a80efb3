"""Bandwidth: Messaging API v2 callbacks.

Contract (docs/providers/bandwidth.md has the sources):

* Authentication: HTTP Basic. The messaging application's ``InboundCallbackCreds`` /
  ``OutboundCallbackCreds`` (``UserId``, ``Password``) are sent as ``Authorization: Basic
  base64(UserId:Password)``; both halves are compared in constant time with the
  connection's ``username`` and ``password``. There is no signature over the body and no
  timestamp: integrity rests on TLS, replays on the dedupe id.
* The body is a JSON **array** of callbacks; one event per item.
* Success: any 2xx within 10 s, for every callback, or Bandwidth retries for 24 hours.

Normalisation (each item ``{"type", "time", "description", "to", "message": {...}}``):

* ``message-received`` -> ``message.received`` (contact = ``message.from`` through
  phones.delivered_e164, text, ``message.media`` URLs as attachments);
  ``message-delivered`` / ``message-failed`` / ``message-sending`` / ``message-read`` ->
  ``message.status_updated`` (contact = the first recipient; ``errorCode`` and
  ``description`` in attributes). Other types -> ``provider.notification``.
* provider_event_id ``{message.id}:{type}:{time}`` (what a redelivery repeats); the
  delivery id is the same for a one-item array, else ``batch:`` + a digest of the items'
  ids. conversation_key ``bandwidth:`` + every participant number (from and to), sorted and
  joined by ``|``, so a group thread and a one-to-one thread are told apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from switchboard_core.events import Attachment, Channel, Contact, EventDraft
from switchboard_core.phones import delivered_e164
from switchboard_core.providers._common import (
    body_digest_id,
    check_basic_auth,
    draft,
    from_iso,
    load_json,
    refuse_invalid_models,
    scalar_str,
    secret_bytes,
    stable_hash,
    text_or_none,
)
from switchboard_core.providers.base import (
    Credentials,
    MalformedPayload,
    ProviderAdapter,
    WebhookRequest,
)

_STATUS_TYPES = {"message-delivered", "message-failed", "message-sending", "message-read"}


def _item_id(item: Mapping[str, Any]) -> str:
    message = item.get("message")
    message = message if isinstance(message, dict) else {}
    parts = [scalar_str(message.get("id")), scalar_str(item.get("type")), scalar_str(item.get("time"))]
    if all(parts):
        return ":".join(parts)  # type: ignore[arg-type]
    return f"json:{stable_hash(item)}"


class BandwidthAdapter(ProviderAdapter):
    name: ClassVar[str] = "bandwidth"
    channel: ClassVar[Channel] = Channel.TELEPHONY
    title: ClassVar[str] = "Bandwidth (Messaging)"
    credential_fields: ClassVar[tuple[str, ...]] = ("username", "password")

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        check_basic_auth(request, secret_bytes(credentials, "username"), secret_bytes(credentials, "password"))

    # ------------------------------------------------------------- delivery id
    def delivery_id(self, request: WebhookRequest) -> str:
        try:
            items = load_json(request)
        except MalformedPayload:
            return body_digest_id(request.body)
        if not isinstance(items, list) or not items or not all(isinstance(item, dict) for item in items):
            return body_digest_id(request.body)
        ids = [_item_id(item) for item in items]
        if len(ids) == 1:
            return ids[0]
        return "batch:" + hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        items = load_json(request)
        if isinstance(items, dict):
            raise MalformedPayload("Bandwidth callbacks are a JSON array, got an object")
        if not isinstance(items, list) or not items:
            raise MalformedPayload("expected a non-empty JSON array of callbacks")
        if not all(isinstance(item, dict) for item in items):
            raise MalformedPayload("every callback in the array must be an object")
        return [self._item(item) for item in items]

    def _item(self, item: dict[str, Any]) -> EventDraft:
        kind = scalar_str(item.get("type")) or ""
        message = item.get("message")
        message = message if isinstance(message, dict) else {}
        attributes = {key: value for key, value in item.items() if key != "message"}
        attributes["message"] = (
            {key: value for key, value in message.items() if key != "text"} if kind == "message-received" else message
        )
        sender = scalar_str(message.get("from"))
        recipients_raw = message.get("to")
        recipients = (
            [scalar_str(v) for v in recipients_raw]
            if isinstance(recipients_raw, list)
            else [scalar_str(recipients_raw)]
        )
        recipients = [r for r in recipients if r]
        if not recipients and scalar_str(item.get("to")):
            recipients = [scalar_str(item.get("to"))]
        participants = sorted({p for p in [sender, *recipients] if p})
        key = "bandwidth:" + "|".join(participants) if participants else f"bandwidth:{_item_id(item)}"
        if kind == "message-received":
            event_type, remote = "message.received", sender
        elif kind in _STATUS_TYPES:
            event_type, remote = "message.status_updated", recipients[0] if recipients else None
        else:
            event_type, remote = "provider.notification", None
            attributes = {"kind": f"bandwidth.{kind or 'callback'}", **attributes}
        attachments = []
        media = message.get("media")
        if event_type == "message.received" and isinstance(media, list):
            attachments = [Attachment(url=url) for url in (scalar_str(m) for m in media) if url]
        return draft(
            type=event_type,
            provider_event_id=_item_id(item),
            occurred_at=from_iso(item.get("time")) or from_iso(message.get("time")),
            contact=Contact(phone=delivered_e164(remote)),
            conversation_key=key,
            text=text_or_none(message.get("text")) if event_type == "message.received" else None,
            attachments=attachments,
            attributes=attributes,
        )
