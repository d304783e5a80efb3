"""Sample webhooks for `hubspot`: payloads modelled on the provider's documented examples,
signed with its documented algorithm."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import datetime
from typing import Any

from infra.local.samples.base import SignedRequest, compact_json, digits, epoch_millis, phone, random_hex

PROVIDER = "hubspot"
SAMPLES: tuple[str, ...] = ("contact-created", "property-change", "thread-message")
# What the demo customer writes in the thread-message sample's thread (the sandbox answers it).
THREAD_MESSAGE_TEXT = "Hi, my order #4417 arrived damaged. Can you send a replacement?"


def demo_credentials() -> dict[str, str]:
    return {"client_secret": str(uuid.uuid4())}


_HUBSPOT_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def hubspot_signature_v3(client_secret: str, method: str, url: str, body: bytes, timestamp_ms: str) -> str:
    """base64(HMAC-SHA256(secret, method + decoded URI + body + timestamp))."""
    uri = url
    for encoded, decoded in _HUBSPOT_DECODE.items():
        uri = uri.replace(encoded, decoded).replace(encoded.lower(), decoded)
    message = method.encode("utf-8") + uri.encode("utf-8") + body + timestamp_ms.encode("ascii")
    return base64.b64encode(hmac.new(client_secret.encode("utf-8"), message, hashlib.sha256).digest()).decode("ascii")


def portal_id(credentials: dict[str, str]) -> int:
    """The demo portal's id, stable per connection (derived from its client secret), so a
    thread message's echo (build_status) names the same portal as the samples."""
    return 10_000_000 + int(hashlib.sha256(credentials["client_secret"].encode()).hexdigest(), 16) % 90_000_000


def _build_hubspot(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    millis = epoch_millis(now)
    common = {
        "subscriptionId": int(digits(7)),
        "portalId": portal_id(credentials),
        "appId": int(digits(7)),
        "attemptNumber": 0,
    }
    object_id = int(digits(11))
    if sample == "contact-created":
        events = [
            {
                "eventId": int(digits(10)),
                **common,
                "occurredAt": millis - 1500,
                "subscriptionType": "contact.creation",
                "objectId": object_id,
                "changeFlag": "CREATED",
                "changeSource": "CRM",
            }
        ]
    elif sample == "thread-message":  # a customer wrote in an inbox thread: the webhook names only ids
        events = [
            {
                "eventId": int(digits(10)),
                **common,
                "occurredAt": millis - 800,
                "subscriptionType": "conversation.newMessage",
                "objectId": object_id,
                "messageId": random_hex(16),
                "messageType": "MESSAGE",
                "changeFlag": "NEW_MESSAGE",
            }
        ]
    else:  # property-change: a batch of two property changes on one contact
        events = [
            {
                "eventId": int(digits(10)),
                **common,
                "occurredAt": millis - 2100,
                "subscriptionType": "contact.propertyChange",
                "objectId": object_id,
                "propertyName": "email",
                "propertyValue": f"ada.{random_hex(4)}@example.com",
                "changeSource": "CRM",
                "sourceId": "userId:" + digits(8),
            },
            {
                "eventId": int(digits(10)),
                **common,
                "occurredAt": millis - 2000,
                "subscriptionType": "contact.propertyChange",
                "objectId": object_id,
                "propertyName": "phone",
                "propertyValue": phone(),
                "changeSource": "CRM",
                "sourceId": "userId:" + digits(8),
            },
        ]
    body = compact_json(events)
    timestamp = str(millis)
    secret = credentials["client_secret"]
    headers = {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": hubspot_signature_v3(secret, "POST", url, body, timestamp),
        "X-HubSpot-Request-Timestamp": timestamp,
        # HubSpot also sends the legacy v1 signature; the hub ignores it.
        "X-HubSpot-Signature-Version": "v1",
        "X-HubSpot-Signature": hashlib.sha256(secret.encode("utf-8") + body).hexdigest(),
        "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/)",
    }
    return SignedRequest("POST", url, headers, body)


def thread_message(signed: SignedRequest, text: str = THREAD_MESSAGE_TEXT, **customer: str) -> dict[str, Any]:
    """The customer's message a thread-message sample announces, as the Conversations API returns it
    (for the provider sandbox's `add_hubspot_message`, so the hub can fetch it)."""
    import json

    from infra.local.provider_apis import hubspot_inbound_message

    (event,) = json.loads(signed.body)
    return hubspot_inbound_message(str(event["objectId"]), text, message_id=str(event["messageId"]), **customer)


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    return _build_hubspot(sample, credentials, url, now)


def build_status(
    credentials: dict[str, str], url: str, now: datetime, sent: dict[str, Any], state: str, reason: str | None
) -> SignedRequest:
    """HubSpot's ``conversation.newMessage`` webhook for the message an answer posted on a thread
    (the provider sandbox's record of it): HubSpot's only word on it, read as `delivered`."""
    if state != "delivered":
        raise ValueError(f"HubSpot reports only that a thread message was posted (delivered), never {state!r}")
    details = sent.get("details") or {}
    events = [
        {
            "eventId": int(digits(10)),
            "subscriptionId": int(digits(7)),
            "portalId": portal_id(credentials),
            "appId": int(digits(7)),
            "occurredAt": epoch_millis(now),
            "subscriptionType": "conversation.newMessage",
            "attemptNumber": 0,
            "objectId": int(str(details.get("thread_id") or sent["to"])),
            "messageId": str(sent["message_id"]),
            "messageType": str(details.get("type") or "MESSAGE"),
            "changeFlag": "NEW_MESSAGE",
        }
    ]
    body = compact_json(events)
    timestamp = str(epoch_millis(now))
    secret = credentials["client_secret"]
    headers = {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": hubspot_signature_v3(secret, "POST", url, body, timestamp),
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-Version": "v1",
        "X-HubSpot-Signature": hashlib.sha256(secret.encode("utf-8") + body).hexdigest(),
        "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/)",
    }
    return SignedRequest("POST", url, headers, body)
