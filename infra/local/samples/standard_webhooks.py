"""Sample webhooks for `standard-webhooks`: payloads modelled on the provider's documented examples,
signed with its documented algorithm."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime

from infra.local.samples.base import SignedRequest, random_hex

PROVIDER = "standard-webhooks"
SAMPLES: tuple[str, ...] = ("default",)


def demo_credentials() -> dict[str, str]:
    return {"secret": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")}


def standard_webhooks_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, key = base64 after whsec_."""
    encoded = secret.removeprefix("whsec_")
    key = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode("ascii")


def _build_standard_webhooks(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    msg_id = "msg_" + base64.b32encode(secrets.token_bytes(15)).decode("ascii").lower()
    timestamp = str(int(now.timestamp()))
    payload = {
        "type": "invoice.paid",
        "timestamp": now.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "data": {
            "id": "inv_" + random_hex(8),
            "customer_email": f"billing.{random_hex(3)}@example.com",
            "amount": 4200,
            "currency": "EUR",
        },
    }
    body = json.dumps(payload).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": standard_webhooks_signature(credentials["secret"], msg_id, timestamp, body),
    }
    return SignedRequest("POST", url, headers, body)


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    return _build_standard_webhooks(sample, credentials, url, now)
