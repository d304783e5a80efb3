"""Standard Webhooks (https://www.standardwebhooks.com): any sender that follows the spec.

Contract (docs/providers.md has the sources):

* Headers ``webhook-id``, ``webhook-timestamp`` (integer unix seconds) and
  ``webhook-signature``: a space-delimited list of ``<version>,<base64 signature>``.
  A request is accepted when any ``v1`` entry matches; other versions (``v1a``
  Ed25519...) are ignored, like the reference libraries do.
* ``v1`` = HMAC-SHA256 over ``{id}.{timestamp}.{raw body}`` keyed with the base64
  decoding of the secret after its ``whsec_`` prefix.
* Timestamps more than 5 minutes old or in the future are refused (the libraries'
  tolerance). ``webhook-id`` is stable across retries: it is the delivery id.

Normalisation: one ``webhook.received`` event per delivery, provider_event_id =
webhook-id; attributes carry the payload's ``type`` and ``data`` and any other
top-level fields; occurred_at is the payload ``timestamp`` when it parses.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any, ClassVar

from switchboard_core.errors import HubError
from switchboard_core.events import Channel, EventDraft
from switchboard_core.providers._common import (
    aware,
    body_digest_id,
    clean_str,
    draft,
    from_iso,
    from_seconds,
    header,
    load_json,
    refuse_invalid_models,
)
from switchboard_core.providers.base import (
    Credentials,
    ProviderAdapter,
    SignatureError,
    WebhookRequest,
    constant_time_equal,
)

SECRET_PREFIX = "whsec_"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
_MAX_SIGNATURES = 32


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; ValueError when it is not one."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"the secret must start with {SECRET_PREFIX}")
    encoded = secret[len(SECRET_PREFIX) :]
    if not encoded or not encoded.isascii():
        raise ValueError("the secret has no base64 key after the prefix")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the secret after the prefix is not valid base64") from None
    if not key:
        raise ValueError("the secret decodes to an empty key")
    return key


def sign(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """The `v1,<base64>` signature of one message."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, sha256).digest()).decode("ascii")


class StandardWebhooksAdapter(ProviderAdapter):
    name: ClassVar[str] = "standard-webhooks"
    channel: ClassVar[Channel] = Channel.GENERIC
    title: ClassVar[str] = "Standard Webhooks (any compliant sender)"
    credential_fields: ClassVar[tuple[str, ...]] = ("secret",)
    replay_window: ClassVar[timedelta | None] = timedelta(minutes=5)

    def validate_credentials(self, credentials: Mapping[str, Any]) -> dict[str, str]:
        checked = super().validate_credentials(credentials)
        try:
            decode_secret(checked["secret"])
        except ValueError as exc:
            raise HubError(
                f"standard-webhooks secret must be {SECRET_PREFIX}<base64>: {exc}",
                status=400,
                code="invalid_credentials",
            ) from None
        return checked

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        msg_id = header(request, ID_HEADER)
        if msg_id is None:
            raise SignatureError(f"missing {ID_HEADER} header")
        timestamp = header(request, TIMESTAMP_HEADER)
        if timestamp is None:
            raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
        signatures = header(request, SIGNATURE_HEADER)
        if signatures is None:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise SignatureError(f"{TIMESTAMP_HEADER} must be integer unix seconds")
        secret = credentials.get("secret") if isinstance(credentials, Mapping) else None
        try:
            key = decode_secret(secret)  # type: ignore[arg-type]
        except ValueError:
            raise SignatureError("the connection's secret is not a whsec_ base64 secret") from None

        assert self.replay_window is not None
        age = int(aware(now).timestamp()) - int(timestamp)
        window = int(self.replay_window.total_seconds())
        if age > window:
            raise SignatureError(f"{TIMESTAMP_HEADER} is older than {self.replay_window}")
        if age < -window:
            raise SignatureError(f"{TIMESTAMP_HEADER} is more than {self.replay_window} in the future")

        expected = sign(key, msg_id, timestamp, request.body).encode("ascii")
        matched = False
        for entry in signatures.split()[:_MAX_SIGNATURES]:
            version, _, value = entry.partition(",")
            if version != "v1" or not value:
                continue
            # Compare the decoded bytes' canonical base64 (tolerates missing padding).
            try:
                given = base64.b64decode(value + "=" * (-len(value) % 4), validate=True) if value.isascii() else None
            except (binascii.Error, ValueError):
                given = None
            if given is not None and constant_time_equal(expected, b"v1," + base64.b64encode(given)):
                matched = True
        if not matched:
            raise SignatureError(f"no v1 entry of {SIGNATURE_HEADER} matches the request")

    def delivery_id(self, request: WebhookRequest) -> str:
        msg_id = header(request, ID_HEADER)
        return clean_str(msg_id) if msg_id is not None else body_digest_id(request.body)

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        payload = load_json(request)
        msg_id = self.delivery_id(request)
        if isinstance(payload, dict):
            attributes = {"type": payload.get("type"), "data": payload.get("data")}
            attributes.update((k, v) for k, v in payload.items() if k not in ("type", "data"))
            stamp = payload.get("timestamp")
            occurred = from_iso(stamp) or from_seconds(stamp)
        else:
            attributes = {"type": None, "data": None, "payload": payload}
            occurred = None
        return [draft(type="webhook.received", provider_event_id=msg_id, occurred_at=occurred, attributes=attributes)]
