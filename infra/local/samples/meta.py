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


def _whatsapp_status(sent: dict[str, Any], state: str, reason: str | None, seconds: str) -> dict[str, Any]:
    """A Cloud API ``statuses[]`` item for a message the sandbox accepted (the shape of
    tests/events/meta/whatsapp-status.json, Meta's documented example)."""
    details = sent.get("details") or {}
    status: dict[str, Any] = {
        "id": sent["message_id"],
        "status": state,
        "timestamp": seconds,
        "recipient_id": sent["to"].lstrip("+"),
    }
    if details.get("biz_opaque_callback_data"):
        status["biz_opaque_callback_data"] = details["biz_opaque_callback_data"]
    if state in ("sent", "delivered"):
        category = "marketing" if details.get("type") == "template" else "service"
        status["conversation"] = {"id": random_hex(16), "origin": {"type": category}}
        status["pricing"] = {"billable": True, "pricing_model": "CBP", "category": category}
    if state == "failed":
        # "<code> <words>" picks the error code (131047 re-engagement, 131026 undeliverable...).
        code, _, words = (reason or "").partition(" ")
        if not code.isdigit():
            code, words = "131000", reason or "Something went wrong"
        words = words or "Message failed to send"
        status["errors"] = [
            {
                "code": int(code),
                "title": words,
                "message": words,
                "error_data": {"details": words},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }
        ]
    return status


def build_status(
    credentials: dict[str, str], url: str, now: datetime, sent: dict[str, Any], state: str, reason: str | None
) -> SignedRequest:
    """Meta's signed webhook about a message its sandbox accepted: a WhatsApp ``statuses[]``
    update (sent, delivered, read, failed with ``errors[]``); for Messenger and Instagram
    messages and private replies the ``message_echoes`` echo (``is_echo`` with the hub's
    ``metadata``), read as delivered; for a public comment reply the Page's (or Instagram
    account's) own new comment on the feed/comments field, read as delivered. Messenger and
    Instagram send no per-message failure or read-by-id webhook: those states are ValueError."""
    details = sent.get("details") or {}
    product = details.get("product")
    seconds, millis = str(int(now.timestamp())), epoch_millis(now)
    if product == "whatsapp":
        if state not in ("sent", "delivered", "read", "failed"):
            raise ValueError(f"WhatsApp reports sent, delivered, read or failed, not {state!r}")
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550100100", "phone_number_id": details.get("from")},
            "statuses": [_whatsapp_status(sent, state, reason, seconds)],
        }
        payload: dict[str, Any] = {
            "object": "whatsapp_business_account",
            "entry": [{"id": digits(15), "changes": [{"value": value, "field": "messages"}]}],
        }
        return _meta_request(credentials, url, payload)
    if state not in ("sent", "delivered"):
        raise ValueError(
            f"Meta reports {product} messages and comments through their echo only (delivered), not {state!r}"
        )
    if product in ("messenger", "instagram", "messenger_private_reply", "instagram_private_reply"):
        platform = "messenger" if product.startswith("messenger") else "instagram"
        account_id = details.get("from") or digits(15)
        message: dict[str, Any] = {"mid": sent["message_id"], "is_echo": True, "app_id": int(digits(15))}
        if details.get("metadata") is not None:
            message["metadata"] = details["metadata"]
        if sent.get("text"):
            message["text"] = sent["text"]
        attachment = details.get("attachment")
        if isinstance(attachment, dict):
            message["attachments"] = [{"type": attachment.get("type"), "payload": attachment.get("payload")}]
        payload = {
            "object": "page" if platform == "messenger" else "instagram",
            "entry": [
                {
                    "id": account_id,
                    "time": millis,
                    "messaging": [
                        {
                            "sender": {"id": account_id},
                            "recipient": {"id": sent["to"]},
                            "timestamp": millis,
                            "message": message,
                        }
                    ],
                }
            ],
        }
        return _meta_request(credentials, url, payload)
    if product == "facebook_comment":
        page_id = digits(15)
        object_id = str(details.get("object_id") or sent["to"])
        comment = {
            "from": {"id": page_id, "name": "Example Store"},
            "item": "comment",
            # A comment id is "<post>_<comment>"; the sandbox does not know the Page, so the ids around it are fresh.
            "post_id": f"{page_id}_{object_id.split('_', 1)[0]}",
            "comment_id": sent["message_id"],
            "parent_id": object_id,
            "verb": "add",
            "created_time": int(seconds),
            "message": sent.get("text") or "",
        }
        payload = {
            "object": "page",
            "entry": [{"id": page_id, "time": int(seconds), "changes": [{"field": "feed", "value": comment}]}],
        }
        return _meta_request(credentials, url, payload)
    if product == "instagram_comment":
        account_id = digits(17)
        reply = {
            "from": {"id": account_id, "username": "examplestore"},
            "media": {"id": digits(17), "media_product_type": "FEED"},
            "id": sent["message_id"],
            "parent_id": details.get("comment_id"),
            "text": sent.get("text") or "",
        }
        payload = {
            "object": "instagram",
            "entry": [{"id": account_id, "time": int(seconds), "changes": [{"field": "comments", "value": reply}]}],
        }
        return _meta_request(credentials, url, payload)
    raise ValueError(f"no status webhook for a Meta {product!r} send")
