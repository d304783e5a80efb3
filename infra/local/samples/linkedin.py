"""Sample notifications for `linkedin`: organization social action notifications modelled
on LinkedIn's documented OrganizationSocialActionNotification, signed like X-LI-Signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime
from typing import Any

from infra.local.samples.base import SignedRequest, digits, epoch_millis

PROVIDER = "linkedin"
SAMPLES: tuple[str, ...] = ("comment", "mention")


def demo_credentials() -> dict[str, str]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return {
        "client_secret": "WPL_AP1." + "".join(secrets.choice(alphabet) for _ in range(16)) + "." + secrets.token_hex(4)
    }


def linkedin_signature(client_secret: str, body: bytes) -> str:
    return hmac.new(client_secret.encode("utf-8"), b"hmacsha256=" + body, hashlib.sha256).hexdigest()


def _notification(sample: str, now: datetime) -> dict[str, Any]:
    organization = f"urn:li:organization:{digits(8)}"
    post = f"urn:li:share:{digits(19)}"
    person = f"urn:li:person:{secrets.token_urlsafe(7)}"
    millis = epoch_millis(now)
    if sample == "comment":
        comment = f"urn:li:comment:({post},{digits(19)})"
        return {
            "notificationId": int(digits(9)),
            "organizationalEntity": organization,
            "action": "COMMENT",
            "sourcePost": post,
            "generatedActivity": comment,
            "lastModifiedAt": millis,
            "subscriber": person,
            "decoratedGeneratedActivity": {
                "comment": {
                    "owner": person,
                    "entity": comment,
                    "object": post,
                    "createdAt": millis,
                    "message": {"text": "Will this integration be available in the EU region?"},
                }
            },
            "decoratedSourcePost": {"entity": post, "owner": organization},
        }
    share = f"urn:li:share:{digits(19)}"
    return {
        "notificationId": int(digits(9)),
        "organizationalEntity": organization,
        "action": "SHARE_MENTION",
        "sourcePost": share,
        "generatedActivity": share,
        "lastModifiedAt": millis,
        "subscriber": person,
        "decoratedGeneratedActivity": {
            "share": {
                "owner": person,
                "entity": share,
                "createdAt": millis,
                "text": "Great webinar today with Switchboard Demo on webhook reliability!",
            }
        },
    }


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    payload = {"type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS", "notifications": [_notification(sample, now)]}
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "X-LI-Signature": linkedin_signature(credentials["client_secret"], body),
    }
    return SignedRequest("POST", url, headers, body)
