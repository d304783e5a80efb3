"""Sample webhooks for `zendesk`: event-subscription payloads shaped like Zendesk's documented
event schema, and a trigger webhook with the body template docs/providers/zendesk.md recommends;
signed with base64 HMAC-SHA256(signing secret, timestamp + body)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
from datetime import datetime, timedelta
from typing import Any

from infra.local.samples.base import SignedRequest, digits, phone, random_hex

PROVIDER = "zendesk"
SAMPLES: tuple[str, ...] = ("ticket-created", "ticket-comment", "trigger")

_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def demo_credentials() -> dict[str, str]:
    # Zendesk signing secrets look like base64 text; they are used verbatim as UTF-8.
    return {"signing_secret": base64.b64encode(secrets.token_bytes(30)).decode("ascii")}


def zendesk_signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(signing_secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def _ulid() -> str:
    return "01" + "".join(secrets.choice(_ULID_ALPHABET) for _ in range(24))


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def account_id(credentials: dict[str, str]) -> int:
    """The demo account's id, stable per connection (derived from its signing secret), so an
    answer's comment webhook (build_status) lands in the same conversation as the ticket."""
    return 10_000_000 + int(hashlib.sha256(credentials["signing_secret"].encode()).hexdigest(), 16) % 90_000_000


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    account = account_id(credentials)
    ticket_id = digits(5)
    requester = digits(11)
    happened = _rfc3339(now - timedelta(seconds=1))
    detail = {
        "actor_id": requester,
        "assignee_id": None,
        "brand_id": digits(3),
        "created_at": happened,
        "description": "My printer is on fire!",
        "external_id": "",
        "form_id": digits(7),
        "group_id": digits(5),
        "id": ticket_id,
        "is_public": True,
        "organization_id": digits(5),
        "priority": "HIGH",
        "requester_id": requester,
        "status": "NEW",
        "subject": "Help, my printer is on fire!",
        "submitter_id": requester,
        "tags": ["printer"],
        "type": "INCIDENT",
        "updated_at": happened,
        "via": {"channel": "web_form"},
    }
    sequence = {"sequence": {"id": random_hex(16).upper(), "position": 1, "total": 1}}
    if sample == "ticket-created":
        payload = {
            "type": "zen:event-type:ticket.created",
            "account_id": account,
            "id": _ulid(),
            "time": happened,
            "zendesk_event_version": "2022-11-06",
            "subject": f"zen:ticket:{ticket_id}",
            "detail": detail,
            "event": {"meta": sequence},
        }
    elif sample == "ticket-comment":
        payload = {
            "type": "zen:event-type:ticket.comment_added",
            "account_id": account,
            "id": _ulid(),
            "time": happened,
            "zendesk_event_version": "2022-11-06",
            "subject": f"zen:ticket:{ticket_id}",
            "detail": {**detail, "status": "OPEN"},
            "event": {
                "comment": {
                    "id": digits(11),
                    "body": "The fire is out, but the tray melted.",
                    "is_public": True,
                    "author": {"id": requester, "is_staff": False, "name": "Ada Lovelace"},
                },
                "meta": sequence,
            },
        }
    else:  # trigger: a user-defined body (the recommended template), ticket.updated
        name = "".join(secrets.choice(string.ascii_lowercase) for _ in range(6))
        payload = {
            "ticket_id": ticket_id,
            "status": "Pending",
            "priority": "High",
            "subject": "Help, my printer is on fire!",
            "updated_at": happened,
            "requester_id": requester,
            "requester_email": f"{name}@example.com",
            "requester_phone": phone(),
            "requester_name": name.title(),
            "latest_public_comment": "We have sent a technician.",
            "url": f"example.zendesk.com/agent/tickets/{ticket_id}",
        }
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    timestamp = _rfc3339(now)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Zendesk Webhook",
        "X-Zendesk-Account-Id": str(account),
        "X-Zendesk-Webhook-Id": _ulid(),
        "X-Zendesk-Webhook-Invocation-Id": digits(10),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
        "X-Zendesk-Webhook-Signature": zendesk_signature(credentials["signing_secret"], timestamp, body),
    }
    return SignedRequest("POST", url, headers, body)


def build_status(
    credentials: dict[str, str], url: str, now: datetime, sent: dict[str, Any], state: str, reason: str | None
) -> SignedRequest:
    """Zendesk's ``ticket.comment_added`` event for the comment an answer added (the provider
    sandbox's record of it): the only word Zendesk has on a comment, read as `delivered`."""
    if state != "delivered":
        raise ValueError(f"Zendesk reports only that a comment was added (delivered), never {state!r}")
    details = sent.get("details") or {}
    ticket_id = str(details.get("ticket_id") or sent["to"])
    account = account_id(credentials)
    happened = _rfc3339(now)
    payload = {
        "type": "zen:event-type:ticket.comment_added",
        "account_id": account,
        "id": _ulid(),
        "time": happened,
        "zendesk_event_version": "2022-11-06",
        "subject": f"zen:ticket:{ticket_id}",
        "detail": {"id": ticket_id, "status": "OPEN", "updated_at": happened, "via": {"channel": "api"}},
        "event": {
            "comment": {
                "id": str(sent["message_id"]),
                "body": sent["text"],
                "is_public": bool(details.get("public", True)),
                "author": {"id": str(details.get("author_id") or digits(11)), "is_staff": True, "name": "Agent"},
            },
            "meta": {"sequence": {"id": random_hex(16).upper(), "position": 1, "total": 1}},
        },
    }
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    timestamp = _rfc3339(now)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Zendesk Webhook",
        "X-Zendesk-Account-Id": str(account),
        "X-Zendesk-Webhook-Id": _ulid(),
        "X-Zendesk-Webhook-Invocation-Id": digits(10),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
        "X-Zendesk-Webhook-Signature": zendesk_signature(credentials["signing_secret"], timestamp, body),
    }
    return SignedRequest("POST", url, headers, body)
