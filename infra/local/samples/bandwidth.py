"""Sample webhooks for `bandwidth`: Messaging v2 callbacks (a JSON array) modelled on the provider's documented
examples, authenticated the documented way (HTTP Basic with the application's callback credentials)."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from infra.local.samples.base import SignedRequest, failure_code, phone, random_hex

PROVIDER = "bandwidth"
SAMPLES: tuple[str, ...] = ("message-received", "message-delivered", "message-failed")


def demo_credentials() -> dict[str, str]:
    return {"username": "switchboard-" + secrets.token_hex(4), "password": secrets.token_urlsafe(24)}


def _iso(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_reply(credentials: dict[str, str], url: str, now: datetime, sender: str, text: str, to: str) -> SignedRequest:
    """A customer's SMS (the ``message-received`` callback of `build`) from `sender` to `to`."""
    return build("message-received", credentials, url, now, customer=sender, business=to, text=text)


def build(
    sample: str,
    credentials: dict[str, str],
    url: str,
    now: datetime,
    *,
    customer: str | None = None,
    business: str | None = None,
    text: str | None = None,
) -> SignedRequest:
    customer, business = customer or phone(), business or "+14155550100"
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
                "text": text or "Hi, is my order #4417 on its way?",
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
    return _signed(credentials, url, [item])


def _signed(credentials: dict[str, str], url: str, items: list[dict[str, Any]]) -> SignedRequest:
    body = json.dumps(items, separators=(",", ":")).encode("utf-8")
    token = base64.b64encode(f"{credentials['username']}:{credentials['password']}".encode()).decode("ascii")
    headers = {"Content-Type": "application/json", "Authorization": f"Basic {token}", "User-Agent": "BandwidthAPI/v2"}
    return SignedRequest("POST", url, headers, body)


# Callback type for each sandbox state (https://dev.bandwidth.com/docs/messaging/webhooks/).
_CALLBACKS = {
    "sent": "message-sending",
    "delivered": "message-delivered",
    "read": "message-read",
    "failed": "message-failed",
}


def build_status(
    credentials: dict[str, str], url: str, now: datetime, sent: dict[str, Any], state: str, reason: str | None
) -> SignedRequest:
    """The messaging application's callback for a message the API accepted, with the
    application's callback credentials. A failure `reason` of digits ("4720") is the
    errorCode; else 4720 (carrier rejected the destination address)."""
    if state not in _CALLBACKS:
        raise ValueError(f"Bandwidth reports no {state!r} status")
    details = sent.get("details") or {}
    recipients = list(details.get("to") or str(sent["to"]).split(","))
    business = str(details.get("from") or "+14155550100")
    message: dict[str, Any] = {
        "id": str(sent["message_id"]),
        "owner": business,
        "applicationId": str(details.get("application_id") or uuid.uuid4()),
        "time": _iso(now),
        "segmentCount": 1,
        "direction": "out",
        "to": recipients,
        "from": business,
        "text": "",
    }
    if details.get("media"):
        message["media"] = list(details["media"])
    if details.get("tag") is not None:
        message["tag"] = details["tag"]
    item: dict[str, Any] = {
        "type": _CALLBACKS[state],
        "time": _iso(now),
        "description": "ok",
        "to": recipients[0],
        "message": message,
    }
    if state == "failed":
        code, words = failure_code(reason, "4720", "invalid-destination-address")
        item["errorCode"] = int(code)
        item["description"] = words
    return _signed(credentials, url, [item])
