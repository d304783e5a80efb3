"""Sample webhooks for `meta`: payloads modelled on the provider's documented examples,
signed with its documented algorithm."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

from infra.local.samples.base import SignedRequest, compact_json, digits, epoch_millis, phone, random_hex

PROVIDER = "meta"
SAMPLES: tuple[str, ...] = ("whatsapp", "messenger", "instagram", "whatsapp-status")


def demo_credentials() -> dict[str, str]:
    return {"app_secret": secrets.token_hex(16), "verify_token": secrets.token_urlsafe(24)}


def meta_signature(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _meta_request(credentials: dict[str, str], url: str, payload: Any) -> SignedRequest:
    body = compact_json(payload)
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": meta_signature(credentials["app_secret"], body),
        "X-Hub-Signature": "sha1="
        + hmac.new(credentials["app_secret"].encode("utf-8"), body, hashlib.sha1).hexdigest(),
        "User-Agent": "facebookexternalua",
    }
    return SignedRequest("POST", url, headers, body)


def _wamid() -> str:
    return "wamid." + base64.b64encode(secrets.token_bytes(30)).decode("ascii")


def _build_meta(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    seconds, millis = str(int(now.timestamp())), epoch_millis(now)
    if sample in ("whatsapp", "whatsapp-status"):
        wa_id = phone()[1:]
        metadata = {"display_phone_number": "15550100100", "phone_number_id": digits(15)}
        if sample == "whatsapp":
            value = {
                "messaging_product": "whatsapp",
                "metadata": metadata,
                "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": wa_id}],
                "messages": [
                    {
                        "from": wa_id,
                        "id": _wamid(),
                        "timestamp": seconds,
                        "type": "text",
                        "text": {"body": "Does it come in another color?"},
                    }
                ],
            }
        else:
            value = {
                "messaging_product": "whatsapp",
                "metadata": metadata,
                "statuses": [
                    {
                        "id": _wamid(),
                        "status": "delivered",
                        "timestamp": seconds,
                        "recipient_id": wa_id,
                        "conversation": {"id": random_hex(16), "origin": {"type": "service"}},
                        "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"},
                    }
                ],
            }
        payload = {
            "object": "whatsapp_business_account",
            "entry": [{"id": digits(15), "changes": [{"value": value, "field": "messages"}]}],
        }
        return _meta_request(credentials, url, payload)
    account_id, user_id = digits(15), digits(16)
    if sample == "messenger":
        mid = "m_" + base64.urlsafe_b64encode(secrets.token_bytes(48)).decode("ascii").rstrip("=")
        payload = {
            "object": "page",
            "entry": [
                {
                    "id": account_id,
                    "time": millis,
                    "messaging": [
                        {
                            "sender": {"id": user_id},
                            "recipient": {"id": account_id},
                            "timestamp": millis,
                            "message": {"mid": mid, "text": "Hello, I need help with my booking"},
                        }
                    ],
                }
            ],
        }
    else:  # instagram
        mid = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOj" + random_hex(20)
        payload = {
            "object": "instagram",
            "entry": [
                {
                    "id": account_id,
                    "time": millis,
                    "messaging": [
                        {
                            "sender": {"id": user_id},
                            "recipient": {"id": account_id},
                            "timestamp": millis,
                            "message": {"mid": mid, "text": "Do you ship to Canada?"},
                        }
                    ],
                }
            ],
        }
    return _meta_request(credentials, url, payload)


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    return _build_meta(sample, credentials, url, now)
