"""Sample webhooks for `pipedrive`: webhooks v2 (person change, deal create) and a v1 person
update, authenticated with HTTP Basic auth (the webhook's http_auth_user / http_auth_password)."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime, timedelta

from infra.local.samples.base import (
    SignedRequest,
    compact_json,
    digits,
    phone,
    random_hex,
)

PROVIDER = "pipedrive"
SAMPLES: tuple[str, ...] = ("person-updated", "deal-created", "person-updated-v1")


def demo_credentials() -> dict[str, str]:
    return {"username": "pipedrive-" + random_hex(4), "password": secrets.token_urlsafe(24)}


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    company, user, entity_id = digits(7), digits(8), int(digits(5))
    email = f"ada.{random_hex(3)}@example.com"
    happened = now - timedelta(seconds=1)
    if sample == "person-updated-v1":
        stamp = int(happened.timestamp())
        person = {
            "id": entity_id,
            "name": "Ada Lovelace",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": [{"label": "work", "value": email, "primary": True}],
            "phone": [{"label": "work", "value": phone(), "primary": True}],
        }
        payload = {
            "v": 1,
            "matches_filters": {"current": []},
            "meta": {
                "v": 1,
                "action": "updated",
                "object": "person",
                "id": entity_id,
                "company_id": int(company),
                "user_id": int(user),
                "host": "acme.pipedrive.com",
                "timestamp": stamp,
                "timestamp_micro": stamp * 1_000_000 + secrets.randbelow(10**6),
                "webhook_id": digits(8),
                "change_source": "app",
            },
            "retry": 0,
            "current": person,
            "previous": {**person, "name": "Ada Byron"},
            "event": "updated.person",
        }
    else:
        meta = {
            "company_id": company,
            "correlation_id": str(uuid.uuid4()),
            "entity_id": str(entity_id),
            "id": str(uuid.uuid4()),
            "is_bulk_edit": False,
            "timestamp": _iso(happened),
            "type": "general",
            "user_id": user,
            "version": "2.0",
            "webhook_id": digits(7),
            "webhook_owner_id": user,
            "attempt": 1,
            "host": "acme.pipedrive.com",
        }
        if sample == "person-updated":
            meta.update(action="change", entity="person")
            data = {
                "id": entity_id,
                "name": "Ada Lovelace",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "emails": [{"label": "work", "primary": True, "value": email}],
                "phones": [{"label": "mobile", "primary": True, "value": phone()}],
                "org_id": int(digits(3)),
                "owner_id": int(user),
                "custom_fields": {},
                "visible_to": "3",
            }
            previous = {"name": "Ada Byron"}
        else:  # deal-created
            meta.update(action="create", entity="deal")
            data = {
                "id": entity_id,
                "title": "Analytical Engine deal",
                "value": 12000,
                "currency": "EUR",
                "status": "open",
                "stage_id": 2,
                "pipeline_id": 1,
                "person_id": int(digits(4)),
                "owner_id": int(user),
                "custom_fields": {},
            }
            previous = None
        payload = {"data": data, "previous": previous, "meta": meta}
    headers = {
        "Content-Type": "application/json",
        "Authorization": basic_auth(credentials["username"], credentials["password"]),
    }
    return SignedRequest("POST", url, headers, compact_json(payload))
