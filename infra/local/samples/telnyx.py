"""Sample webhooks for `telnyx`: payloads modelled on the provider's documented examples, signed with its
documented algorithm (Ed25519 over `{timestamp}|{body}`, with `cryptography`, a hub dependency).

Telnyx signs with its own private key; the demo connection has a generated key pair, and
its credentials carry the private seed as `signing_key` so `switchboard send` (a separate
process reading the demo connection's credentials) can sign. The adapter accepts
`signing_key` only when it belongs to `public_key` and never uses it to verify.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from infra.local.samples.base import SignedRequest, failure_code, phone

PROVIDER = "telnyx"
SAMPLES: tuple[str, ...] = ("sms", "message-finalized", "call-initiated", "call-hangup")


def demo_credentials() -> dict[str, str]:
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "public_key": base64.b64encode(public).decode("ascii"),
        "signing_key": base64.b64encode(seed).decode("ascii"),
    }


def sign(signing_key: str, timestamp: str, body: bytes) -> str:
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(signing_key))
    return base64.b64encode(key.sign(timestamp.encode("ascii") + b"|" + body)).decode("ascii")


def _iso(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="milliseconds")


def build_reply(credentials: dict[str, str], url: str, now: datetime, sender: str, text: str, to: str) -> SignedRequest:
    """A customer's SMS (the ``message.received`` webhook of `build("sms")`) from `sender` to `to`."""
    return build("sms", credentials, url, now, customer=sender, business=to, text=text)


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
    data: dict[str, Any]
    if sample in ("sms", "message-finalized"):
        inbound = sample == "sms"
        sender, recipient = (customer, business) if inbound else (business, customer)
        payload: dict[str, Any] = {
            "direction": "inbound" if inbound else "outbound",
            "encoding": "GSM-7",
            "errors": [],
            "from": {"carrier": "T-Mobile USA", "line_type": "long_code", "phone_number": sender},
            "id": str(uuid.uuid4()),
            "media": [],
            "messaging_profile_id": str(uuid.uuid4()),
            "parts": 1,
            "record_type": "message",
            "text": (text or "Hi, is my order #4417 on its way?") if inbound else "It ships today.",
            "to": [
                {
                    "carrier": "Telnyx",
                    "line_type": "Wireless",
                    "phone_number": recipient,
                    "status": "webhook_delivered" if inbound else "delivered",
                }
            ],
            "type": "SMS",
            "received_at" if inbound else "completed_at": _iso(now),
        }
        data = {
            "event_type": "message.received" if inbound else "message.finalized",
            "id": str(uuid.uuid4()),
            "occurred_at": _iso(now),
            "payload": payload,
            "record_type": "event",
        }
    else:
        payload = {
            "call_control_id": "v3:" + uuid.uuid4().hex,
            "call_leg_id": str(uuid.uuid4()),
            "call_session_id": str(uuid.uuid4()),
            "client_state": None,
            "connection_id": "1494404757140276705",
            "from": customer,
            "to": business,
            "direction": "incoming",
            "start_time": _iso(now),
        }
        if sample == "call-initiated":
            payload.update(state="parked", caller_id_name="SAM RIVERA")
        else:
            payload.update(state="hangup", hangup_cause="normal_clearing", hangup_source="caller", end_time=_iso(now))
        data = {
            "event_type": "call.initiated" if sample == "call-initiated" else "call.hangup",
            "id": str(uuid.uuid4()),
            "occurred_at": _iso(now),
            "payload": payload,
            "record_type": "event",
        }
    return _signed(credentials, url, now, {"data": data, "meta": {"attempt": 1, "delivered_to": url}})


def _signed(credentials: dict[str, str], url: str, now: datetime, envelope: dict[str, Any]) -> SignedRequest:
    body = json.dumps(envelope, separators=(",", ":")).encode("utf-8")
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "telnyx-timestamp": timestamp,
        "telnyx-signature-ed25519": sign(credentials["signing_key"], timestamp, body),
        "User-Agent": "telnyx-webhooks",
    }
    return SignedRequest("POST", url, headers, body)


def build_status(
    credentials: dict[str, str], url: str, now: datetime, sent: dict[str, Any], state: str, reason: str | None
) -> SignedRequest:
    """``message.sent`` (state sent) or ``message.finalized`` (delivered, failed) for a message
    the Messages API accepted, as https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks
    shows them, signed like every Telnyx webhook. Telnyx sends no read receipts for SMS/MMS. A
    failure `reason` of digits ("40300") is the error code; else 40008 Undeliverable."""
    statuses = {"sent": "sent", "delivered": "delivered", "failed": "delivery_failed"}
    if state not in statuses:
        raise ValueError(f"Telnyx reports no {state!r} status for SMS/MMS")
    details = sent.get("details") or {}
    media = details.get("media") or []
    errors: list[dict[str, str]] = []
    if state == "failed":
        code, words = failure_code(reason, "40008", "The message could not be delivered to the handset")
        errors.append(
            {"code": code, "title": "Undeliverable" if code == "40008" else "Delivery failed", "detail": words}
        )
    payload: dict[str, Any] = {
        "direction": "outbound",
        "encoding": "GSM-7",
        "errors": errors,
        "from": {"carrier": "Telnyx", "line_type": "Wireless", "phone_number": str(details.get("from") or "")},
        "id": str(sent["message_id"]),
        "media": [{"url": u, "content_type": None, "sha256": None, "size": None} for u in media],
        "messaging_profile_id": str(uuid.uuid4()),
        "parts": 1,
        "record_type": "message",
        "text": str(sent.get("text") or ""),
        "to": [
            {
                "carrier": "T-Mobile USA",
                "line_type": "Wireless",
                "phone_number": str(sent["to"]),
                "status": statuses[state],
            }
        ],
        "type": "MMS" if media else "SMS",
        "webhook_url": details.get("webhook_url") or url,
        "sent_at": _iso(now),
    }
    if state != "sent":
        payload["completed_at"] = _iso(now)
    data = {
        "event_type": "message.sent" if state == "sent" else "message.finalized",
        "id": str(uuid.uuid4()),
        "occurred_at": _iso(now),
        "payload": payload,
        "record_type": "event",
    }
    return _signed(credentials, url, now, {"data": data, "meta": {"attempt": 1, "delivered_to": url}})
