"""Signing deliveries per the Standard Webhooks specification.

A subscription's secret is `whsec_` + base64 of 32 random bytes. Each delivery carries
`webhook-id`, `webhook-timestamp` and `webhook-signature`; the signature is HMAC-SHA256
of `<id>.<timestamp>.<body>`, written `v1,<base64>`. After a rotation the previous
secret keeps signing too until its grace period ends: the header then holds both
signatures separated by a space, as the specification allows, so a receiver verifying
with either secret accepts the delivery.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict

from switchboard_core.providers.standard_webhooks import SECRET_PREFIX, decode_secret, sign

SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


class SigningSecrets(BaseModel):
    """What Secrets Manager holds for one subscription (JSON)."""

    model_config = ConfigDict(extra="forbid")

    current: str
    previous: str | None = None
    previous_expires_at: AwareDatetime | None = None

    def rotated(self, new: str, grace_ends: datetime) -> SigningSecrets:
        return SigningSecrets(current=new, previous=self.current, previous_expires_at=grace_ends)

    def signing_keys(self, now: datetime) -> list[bytes]:
        keys = [decode_secret(self.current)]
        if self.previous and self.previous_expires_at and now < self.previous_expires_at:
            keys.append(decode_secret(self.previous))
        return keys


def webhook_headers(keys: list[bytes], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery, every key's signature in one header."""
    stamp = str(timestamp)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": " ".join(sign(key, msg_id, stamp, body) for key in keys),
    }
