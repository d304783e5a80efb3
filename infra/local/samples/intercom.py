"""Sample webhooks for `intercom`: notification envelopes (`notification_event`) around the
Conversation and Contact models, signed `X-Hub-Signature: sha1=<hex HMAC-SHA1(client_secret, body)>`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime
from typing import Any

from infra.local.samples.base import (
    SignedRequest,
    compact_json,
    digits,
    phone,
    random_hex,
)

PROVIDER = "intercom"
SAMPLES: tuple[str, ...] = ("conversation", "admin-reply", "contact-created")


def demo_credentials() -> dict[str, str]:
    return {"client_secret": secrets.token_hex(20)}


def intercom_signature(client_secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(client_secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def app_id_of(credentials: dict[str, str]) -> str:
    """The demo workspace's app id, stable per connection (derived from its client secret), so an
    answer's admin-replied webhook (build_status) lands in the same conversation."""
    return hashlib.sha256(credentials["client_secret"].encode()).hexdigest()[:8]


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    created = int(now.timestamp())
    app_id = app_id_of(credentials)
    user_id = random_hex(12)
    name = secrets.choice(["Ada Lovelace", "Charles Babbage", "Grace Hopper"])
    email = f"{name.split()[0].lower()}.{random_hex(3)}@example.com"
    author = {"type": "user", "id": user_id, "name": name, "email": email}
    conversation = {
        "type": "conversation",
        "id": digits(6),
        "created_at": created - 60,
        "updated_at": created,
        "source": {
            "type": "conversation",
            "id": digits(9),
            "delivered_as": "customer_initiated",
            "subject": "",
            "body": "<p>Hi, my order <b>#1042</b> never arrived.</p>",
            "author": author,
            "attachments": [],
        },
        "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": user_id}]},
        "open": True,
        "state": "open",
        "read": False,
        "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [], "total_count": 0},
    }
    if sample == "conversation":
        topic, item = "conversation.user.created", conversation
    elif sample == "admin-reply":
        topic = "conversation.admin.replied"
        part = {
            "type": "conversation_part",
            "id": digits(8),
            "part_type": "comment",
            "body": "<p>Sorry about that! A replacement ships today.</p>",
            "created_at": created,
            "author": {"type": "admin", "id": digits(6), "name": "Support", "email": "support@example.com"},
        }
        item = {
            **conversation,
            "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [part], "total_count": 1},
        }
    else:  # contact-created
        topic = "contact.user.created"
        item = {
            "type": "contact",
            "id": user_id,
            "workspace_id": app_id,
            "role": "user",
            "email": email,
            "phone": phone(),
            "name": name,
            "created_at": created,
            "updated_at": created,
            "custom_attributes": {},
        }
    payload = {
        "type": "notification_event",
        "app_id": app_id,
        "data": {"type": "notification_event_data", "item": item},
        "links": {},
        "id": f"notif_{uuid.uuid4()}",
        "topic": topic,
        "delivery_status": "pending",
        "delivery_attempts": 1,
        "delivered_at": 0,
        "first_sent_at": created,
        "created_at": created,
        "self": None,
    }
    body = compact_json(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "intercom-parrot-service-client/1.0",
        "X-Hub-Signature": intercom_signature(credentials["client_secret"], body),
    }
    return SignedRequest("POST", url, headers, body)


def build_status(
    credentials: dict[str, str], url: str, now: datetime, sent: dict[str, Any], state: str, reason: str | None
) -> SignedRequest:
    """Intercom's ``conversation.admin.replied`` (or ``.noted``) notification for the part an
    answer added (the provider sandbox's record of it): Intercom's only word on a part, read as
    `delivered`."""
    if state != "delivered":
        raise ValueError(f"Intercom reports only that an admin's part was added (delivered), never {state!r}")
    details = sent.get("details") or {}
    created = int(now.timestamp())
    note = details.get("message_type") == "note"
    part = {
        "type": "conversation_part",
        "id": str(sent["message_id"]),
        "part_type": "note" if note else "comment",
        "body": sent["text"],
        "created_at": created,
        "updated_at": created,
        "notified_at": created,
        "author": {"type": "admin", "id": str(details.get("admin_id") or digits(6)), "name": "Support"},
        "attachments": [],
    }
    item = {
        "type": "conversation",
        "id": str(details.get("conversation_id") or sent["to"]),
        "created_at": created - 60,
        "updated_at": created,
        "open": True,
        "state": "open",
        "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [part], "total_count": 1},
    }
    payload = {
        "type": "notification_event",
        "app_id": app_id_of(credentials),
        "data": {"type": "notification_event_data", "item": item},
        "links": {},
        "id": f"notif_{uuid.uuid4()}",
        "topic": "conversation.admin.noted" if note else "conversation.admin.replied",
        "delivery_status": "pending",
        "delivery_attempts": 1,
        "delivered_at": 0,
        "first_sent_at": created,
        "created_at": created,
        "self": None,
    }
    body = compact_json(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "intercom-parrot-service-client/1.0",
        "X-Hub-Signature": intercom_signature(credentials["client_secret"], body),
    }
    return SignedRequest("POST", url, headers, body)
