"""Sample webhooks for `hmac`: signed exactly as the connection's configuration says (header,
algorithm, encoding, prefix, template, timestamp and id headers, Stripe-style combined header),
so `switchboard send hmac` works for whatever sender a connection was set up to imitate.

The demo connection is configured like a timestamped sender (`{timestamp}.{body}`, HMAC-SHA256
hex with a `sha256=` prefix, a delivery id header); the samples differ in their body:
`json` (an order event) and `form` (a form-encoded notification).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from datetime import datetime
from urllib.parse import urlencode

from infra.local.samples.base import SignedRequest, random_hex

PROVIDER = "hmac"
SAMPLES: tuple[str, ...] = ("json", "form")
_PLACEHOLDER = re.compile(r"\{(body|timestamp|id)\}")
_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def demo_credentials() -> dict[str, str]:
    return {
        "secret": secrets.token_urlsafe(32),
        "header": "X-Signature",
        "algorithm": "sha256",
        "encoding": "hex",
        "prefix": "sha256=",
        "template": "{timestamp}.{body}",
        "timestamp_header": "X-Signature-Timestamp",
        "id_header": "X-Delivery-Id",
        "tolerance_seconds": "300",
    }


def signature(credentials: dict[str, str], body: bytes, timestamp: str, delivery: str) -> str:
    """The signature value (prefix included) a sender with this configuration sends."""
    values = {"body": body, "timestamp": timestamp.encode(), "id": delivery.encode()}
    template = credentials.get("template") or "{body}"
    content = b"".join(
        values[part] if i % 2 else part.encode("utf-8") for i, part in enumerate(_PLACEHOLDER.split(template))
    )
    algorithm = _ALGORITHMS[(credentials.get("algorithm") or "sha256").lower()]
    digest = hmac.new(credentials["secret"].encode("utf-8"), content, algorithm).digest()
    encoded = (
        base64.b64encode(digest).decode()
        if (credentials.get("encoding") or "hex").lower() == "base64"
        else digest.hex()
    )
    return (credentials.get("prefix") or "") + encoded


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    delivery = f"dlv_{random_hex(12)}"
    order = f"ord_{random_hex(6)}"
    if sample == "form":
        body = urlencode({"event": "ticket.closed", "ticket_id": order, "agent": "sam@example.com"}).encode()
        content_type = "application/x-www-form-urlencoded"
    else:
        body = json.dumps(
            {
                "type": "order.created",
                "id": order,
                "data": {"total": 4200, "currency": "EUR", "email": f"buyer.{random_hex(3)}@example.com"},
            },
            separators=(",", ":"),
        ).encode()
        content_type = "application/json"
    timestamp = str(int(now.timestamp()))
    signed = signature(credentials, body, timestamp, delivery)
    headers = {"Content-Type": content_type}
    signature_header = credentials["header"]
    stamp_header = credentials.get("timestamp_header")
    if stamp_header and stamp_header.lower() == signature_header.lower():
        headers[signature_header] = f"t={timestamp},{signed}"  # Stripe-style combined header
    else:
        headers[signature_header] = signed
        if stamp_header:
            headers[stamp_header] = timestamp
    if credentials.get("id_header"):
        headers[credentials["id_header"]] = delivery
    return SignedRequest("POST", url, headers, body)
