"""Sample webhooks for `bandwidth`: Messaging v2 callbacks (a JSON array) modelled on the provider's documented
examples, authenticated the documented way (HTTP Basic with the application's callback credentials)."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from infra.local.samples.base import SignedRequest, phone, random_hex

PROVIDER = "bandwidth"
SAMPLES: tuple[str, ...] = ("message-received", "message-delivered", "message-failed")


def demo_credentials() -> dict[str, str]:
    return {"username": "switchboard-" + secrets.token_hex(4), "password": secrets.token_urlsafe(24)}


def _iso(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    customer, business = phone(), "+14155550100"
    message_id = f"{int(now.timestamp() * 1000)}{random_hex(7)}"
    application = str(uuid.uuid4())
    if sample == "message-received":
        item: dict[str, Any] = {
            "type": "message-received",
            "time": _iso(now),
            "description": "Incoming message received",
            "to": business,
            "message": {
                "id": message_id,
                "time": _iso(now),
                "to": [business],
                "from": customer,
                "text": "Hi, is my order #4417 on its way?",
                "applicationId": application,
                "media": [],
                "owner": business,
                "direction": "in",
                "segmentCount": 1,
            },
        }
    else:
        failed = sample == "message-failed"
        item = {
            "type": sample,
            "time": _iso(now),
            "description": "forbidden to country" if failed else "ok",
            "to": customer,
            "message": {
                "id": message_id,
                "owner": business,
                "applicationId": application,
                "time": _iso(now),
                "segmentCount": 1,
                "direction": "out",
                "to": [customer],
                "from": business,
                "text": "",
                "tag": "order-4417",
            },
        }
        if failed:
            item["errorCode"] = 4432
    body = json.dumps([item], separators=(",", ":")).encode("utf-8")
    token = base64.b64encode(f"{credentials['username']}:{credentials['password']}".encode()).decode("ascii")
    headers = {"Content-Type": "application/json", "Authorization": f"Basic {token}", "User-Agent": "BandwidthAPI/v2"}
    return SignedRequest("POST", url, headers, body)
