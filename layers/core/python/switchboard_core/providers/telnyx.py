"""Telnyx: Messaging and Voice (Call Control) webhooks, API v2.

Contract (docs/providers/telnyx.md has the sources):

* Signature: ``telnyx-signature-ed25519`` = base64 of the 64-byte Ed25519 signature of
  ``{telnyx-timestamp}|{raw body}`` by Telnyx's account key; verified with the account
  **public key** (base64, 32 bytes, Mission Control -> Keys & Credentials -> Public Key)
  using ``cryptography``'s Ed25519PublicKey. ``telnyx-timestamp`` (unix seconds) must be
  within 300 s of now in both directions (what the official SDKs enforce).
* POST JSON only: Telnyx can be set to GET with query parameters
  (``webhook_url_method``); that is not supported (the hub's GET route publishes nothing).
* Success: any 2xx (200 ``{"ok": true}``); otherwise Telnyx tries the failover URL.

Credentials: ``public_key``. An optional ``signing_key`` (the base64 32-byte Ed25519 seed
whose public key is ``public_key``) is accepted only so the local demo connection can sign
its own samples (``switchboard send`` runs in another process and reads the demo
connection's credentials); verification never reads it, and a ``signing_key`` that does
not belong to ``public_key`` is refused. Real connections have no use for it: Telnyx keeps
its private key.

Normalisation (envelope ``data.event_type``, ``data.id``, ``data.occurred_at``,
``data.payload``; the dedupe id is ``data.id``):

* ``message.received`` -> ``message.received`` (contact ``payload.from.phone_number``
  through phones.delivered_e164, text, media as attachments); ``message.sent`` /
  ``message.finalized`` -> ``message.status_updated`` (contact = first ``to``).
  conversation_key ``telnyx:{A}|{B}`` of the two numbers sorted.
* ``call.initiated`` -> ``call.initiated``; ``call.answered`` -> ``call.in_progress``;
  ``call.hangup`` -> by ``hangup_cause``: ``call.busy``, ``call.no_answer``,
  ``call.canceled``, ``call.failed``, else ``call.completed``;
  ``call.recording.saved`` -> ``call.recording_completed``. Contact = ``from`` for
  incoming calls, ``to`` for outgoing; conversation_key ``telnyx:call:{call_session_id}``.
* Everything else -> ``provider.notification``; the whole ``data`` is kept in attributes.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from switchboard_core.events import Attachment, Channel, Contact, EventDraft
from switchboard_core.phones import delivered_e164
from switchboard_core.providers._common import (
    aware,
    body_digest_id,
    draft,
    from_iso,
    from_seconds,
    header,
    invalid_credentials,
    load_json,
    refuse_invalid_models,
    scalar_str,
    text_or_none,
)
from switchboard_core.providers.base import (
    Credentials,
    MalformedPayload,
    ProviderAdapter,
    SignatureError,
    WebhookRequest,
)

# The connection's key, loaded once rather than per webhook (a bad key raises, and is not kept).
_public_key = functools.lru_cache(maxsize=256)(Ed25519PublicKey.from_public_bytes)

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"

_MESSAGE_TYPES = {
    "message.received": "message.received",
    "message.sent": "message.status_updated",
    "message.finalized": "message.status_updated",
}
_CALL_TYPES = {
    "call.initiated": "call.initiated",
    "call.answered": "call.in_progress",
    "call.recording.saved": "call.recording_completed",
}
_HANGUP_TYPES = {
    "busy": "call.busy",
    "timeout": "call.no_answer",
    "no_answer": "call.no_answer",
    "originator_cancel": "call.canceled",
    "call_rejected": "call.failed",
    "unallocated_number": "call.failed",
    "normal_temporary_failure": "call.failed",
}


def _b64(value: Any, size: int) -> bytes | None:
    """Strict base64 of exactly `size` bytes, else None."""
    if not isinstance(value, str) or not value.isascii():
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


class TelnyxAdapter(ProviderAdapter):
    name: ClassVar[str] = "telnyx"
    channel: ClassVar[Channel] = Channel.TELEPHONY
    title: ClassVar[str] = "Telnyx (Messaging and Voice)"
    credential_fields: ClassVar[tuple[str, ...]] = ("public_key",)
    replay_window: ClassVar[timedelta | None] = timedelta(seconds=300)

    def validate_credentials(self, credentials: Mapping[str, Any]) -> dict[str, str]:
        unknown = sorted(set(credentials) - {"public_key", "signing_key"})
        if unknown:
            raise invalid_credentials(
                f"credentials for telnyx take public_key (and optionally signing_key): unknown "
                f"{', '.join(map(str, unknown))}"
            )
        public = _b64(credentials.get("public_key"), 32)
        if public is None:
            raise invalid_credentials("public_key must be the base64 32-byte Ed25519 public key from Mission Control")
        checked = {"public_key": credentials["public_key"]}
        if "signing_key" in credentials:
            seed = _b64(credentials.get("signing_key"), 32)
            if seed is None:
                raise invalid_credentials("signing_key must be a base64 32-byte Ed25519 seed")
            derived = (
                Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            )
            if derived != public:
                raise invalid_credentials("signing_key does not belong to public_key")
            checked["signing_key"] = credentials["signing_key"]
        return checked

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        signature_text, timestamp = header(request, SIGNATURE_HEADER), header(request, TIMESTAMP_HEADER)
        if signature_text is None:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        if timestamp is None:
            raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
        public = _b64(credentials.get("public_key") if isinstance(credentials, Mapping) else None, 32)
        if public is None:
            raise SignatureError("the connection has no valid public_key to verify with")
        signature = _b64(signature_text, 64)
        if signature is None:
            raise SignatureError(f"{SIGNATURE_HEADER} is not a base64 64-byte Ed25519 signature")
        sent = from_seconds(timestamp) if timestamp.isascii() and timestamp.isdigit() else None
        if sent is None:
            raise SignatureError(f"{TIMESTAMP_HEADER} is not a unix timestamp")
        try:
            _public_key(public).verify(signature, b"".join((timestamp.encode("ascii"), b"|", request.body)))
        except (InvalidSignature, ValueError):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the request") from None
        if abs(aware(now) - sent) > (self.replay_window or timedelta(seconds=300)):
            raise SignatureError(f"{TIMESTAMP_HEADER} is stale or from the future")

    # ------------------------------------------------------------- delivery id
    def delivery_id(self, request: WebhookRequest) -> str:
        try:
            payload = load_json(request)
        except MalformedPayload:
            return body_digest_id(request.body)
        data = payload.get("data") if isinstance(payload, dict) else None
        event_id = scalar_str(data.get("id")) if isinstance(data, dict) else None
        return event_id or body_digest_id(request.body)

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        payload = load_json(request)
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
            raise MalformedPayload("expected a JSON object with a data object")
        data = payload["data"]
        event_id = scalar_str(data.get("id")) or body_digest_id(request.body)
        event_type = scalar_str(data.get("event_type")) or ""
        body = data.get("payload") if isinstance(data.get("payload"), dict) else {}
        occurred = from_iso(data.get("occurred_at"))
        attributes = {"event_type": event_type, **{k: v for k, v in data.items() if k not in ("id", "event_type")}}
        if isinstance(payload.get("meta"), dict):
            attributes["meta"] = payload["meta"]
        if event_type in _MESSAGE_TYPES:
            return [self._message(_MESSAGE_TYPES[event_type], event_id, occurred, body, attributes)]
        if event_type.startswith("call."):
            kind = _CALL_TYPES.get(event_type)
            if event_type == "call.hangup":
                cause = (scalar_str(body.get("hangup_cause")) or "").lower()
                kind = _HANGUP_TYPES.get(cause, "call.completed")
            if kind:
                return [self._call(kind, event_id, occurred, body, attributes)]
        return [
            draft(
                type="provider.notification",
                provider_event_id=event_id,
                occurred_at=occurred,
                attributes={"kind": f"telnyx.{event_type or 'event'}", **attributes},
            )
        ]

    @staticmethod
    def _number(party: Any) -> str | None:
        if isinstance(party, list):
            party = party[0] if party else None
        if isinstance(party, dict):
            party = party.get("phone_number")
        return scalar_str(party)

    def _message(
        self, kind: str, event_id: str, occurred: datetime | None, body: dict[str, Any], attributes: dict[str, Any]
    ) -> EventDraft:
        sender, recipient = self._number(body.get("from")), self._number(body.get("to"))
        remote = sender if kind == "message.received" else recipient
        attachments = []
        media = body.get("media")
        if kind == "message.received" and isinstance(media, list):
            for item in media:
                if isinstance(item, dict) and scalar_str(item.get("url")):
                    attachments.append(
                        Attachment(url=scalar_str(item.get("url")), content_type=scalar_str(item.get("content_type")))
                    )
        if sender and recipient:
            low, high = sorted((sender, recipient))
            key = f"telnyx:{low}|{high}"
        else:
            key = f"telnyx:{sender or recipient or scalar_str(body.get('id')) or event_id}"
        return draft(
            type=kind,
            provider_event_id=event_id,
            occurred_at=occurred,
            contact=Contact(phone=delivered_e164(remote)),
            conversation_key=key,
            text=text_or_none(body.get("text")) if kind == "message.received" else None,
            attachments=attachments,
            attributes=attributes,
        )

    def _call(
        self, kind: str, event_id: str, occurred: datetime | None, body: dict[str, Any], attributes: dict[str, Any]
    ) -> EventDraft:
        direction = (scalar_str(body.get("direction")) or "incoming").lower()
        remote = body.get("to") if direction.startswith("outgoing") else body.get("from")
        session = (
            scalar_str(body.get("call_session_id"))
            or scalar_str(body.get("call_leg_id"))
            or scalar_str(body.get("call_control_id"))
            or event_id
        )
        return draft(
            type=kind,
            provider_event_id=event_id,
            occurred_at=occurred,
            contact=Contact(phone=delivered_e164(scalar_str(remote)), name=scalar_str(body.get("caller_id_name"))),
            conversation_key=f"telnyx:call:{session}",
            attributes=attributes,
        )
