"""Sample webhooks for `freshdesk`: an automation rule's webhook with the recommended JSON body
template (docs/providers/freshdesk.md), authenticated the way the connection is configured: a
custom header carrying a shared secret, or HTTP Basic auth."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta
from typing import Any

from infra.local.samples.base import (
    SignedRequest,
    compact_json,
    digits,
    phone,
    random_hex,
)

PROVIDER = "freshdesk"
SAMPLES: tuple[str, ...] = ("ticket-updated", "ticket-updated-simple")


def demo_credentials() -> dict[str, str]:
    # The header shape (recommended); {"username", "password"} works with every sample too.
    return {"header_name": "X-Switchboard-Secret", "header_value": secrets.token_urlsafe(32)}


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    ticket_id = digits(6)
    updated_at = (now - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    email = f"ada.{random_hex(3)}@example.com"
    if sample == "ticket-updated":
        payload: dict[str, Any] = {
            "domain": "acme.freshdesk.com",
            "ticket_id": ticket_id,
            "subject": "Order never arrived",
            "status": "Open",
            "priority": "High",
            "source": "Email",
            "ticket_type": "Incident",
            "updated_at": updated_at,
            "requester_id": digits(11),
            "requester_name": "Ada Lovelace",
            "requester_email": email,
            "requester_phone": phone(),
            "latest_public_comment": "Any news about my parcel?",
            "url": f"https://acme.freshdesk.com/helpdesk/tickets/{ticket_id}",
        }
    else:  # ticket-updated-simple: Freshdesk's "Simple" content mode
        payload = {
            "freshdesk_webhook": {
                "ticket_id": int(ticket_id),
                "ticket_subject": "Printer on fire",
                "ticket_status": "Pending",
                "ticket_requester_name": "Ada Lovelace",
                "ticket_requester_email": email,
                "ticket_requester_phone": phone(),
                "ticket_latest_public_comment": "The fire is out.",
                "ticket_updated_at": updated_at,
            }
        }
    headers = {"Content-Type": "application/json"}
    if "header_name" in credentials:
        headers[credentials["header_name"]] = credentials["header_value"]
    else:
        pair = f"{credentials['username']}:{credentials['password']}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    return SignedRequest("POST", url, headers, compact_json(payload))
