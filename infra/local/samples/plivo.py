"""Sample webhooks for `plivo`: payloads modelled on the provider's documented examples, signed with its
documented V3 algorithm (hmac/hashlib)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from infra.local.samples.base import SignedRequest, failure_code, phone

PROVIDER = "plivo"
SAMPLES: tuple[str, ...] = ("sms", "message-status", "voice-hangup")


def demo_credentials() -> dict[str, str]:
    return {"auth_token": secrets.token_urlsafe(30)}


def plivo_v3_signature(auth_token: str, url: str, params: dict[str, str], nonce: str) -> str:
    """base64(HMAC-SHA256(token, base URL [? sorted query] [.] sorted name+value . nonce)) for a POST."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    sorted_query = "&".join(f"{k}={v}" for k in sorted(query) for v in sorted(query[k]))
    signed = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if sorted_query or params:
        signed += "?" + sorted_query
    if sorted_query and params:
        signed += "."
    signed += "".join(f"{k}{params[k]}" for k in sorted(params)) + "." + nonce
    digest = hmac.new(auth_token.encode("utf-8"), signed.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _post(credentials: dict[str, str], url: str, params: dict[str, str]) -> SignedRequest:
    nonce = str(secrets.randbelow(10**20))
    signature = plivo_v3_signature(credentials["auth_token"], url, params, nonce)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Plivo-Signature-V3": signature,
        "X-Plivo-Signature-V3-Nonce": nonce,
        "User-Agent": "PlivoHTTP/1.0",
    }
    return SignedRequest("POST", url, headers, urlencode(params).encode("utf-8"))


def build_reply(credentials: dict[str, str], url: str, now: datetime, sender: str, text: str, to: str) -> SignedRequest:
    """A customer's SMS (the message_url request of `build("sms")`) from `sender` to `to`."""
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
    # Plivo sends numbers without '+'.
    customer, business = (customer or phone()).lstrip("+"), (business or "14155550100").lstrip("+")
    stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if sample == "sms":
        # message_url parameters of an incoming SMS.
        params = {
            "From": customer,
            "To": business,
            "Type": "sms",
            "Text": text or "Hi, is my order #4417 on its way?",
            "MessageUUID": str(uuid.uuid4()),
            "TotalRate": "0",
            "TotalAmount": "0",
            "Units": "1",
            "MessageTime": stamp,
        }
    elif sample == "message-status":
        message = str(uuid.uuid4())
        params = {
            "MessageUUID": message,
            "ParentMessageUUID": message,
            "PartInfo": "1 of 1",
            "Sequence": "1",
            "Status": "delivered",
            "From": business,
            "To": customer,
            "TotalRate": "0.0050",
            "TotalAmount": "0.0050",
            "Units": "1",
            "MCC": "310",
            "MNC": "090",
            "ErrorCode": "",
            "MessageTime": stamp,
        }
    else:
        # hangup_url parameters of a completed inbound call.
        call = str(uuid.uuid4())
        params = {
            "Direction": "inbound",
            "From": customer,
            "To": business,
            "CallUUID": call,
            "CallStatus": "completed",
            "Event": "Hangup",
            "Duration": "74",
            "BillDuration": "120",
            "HangupCause": "NORMAL_CLEARING",
            "HangupSource": "Caller",
            "StartTime": stamp,
            "EndTime": stamp,
            "ALegUUID": call,
            "ALegRequestUUID": str(uuid.uuid4()),
        }
    return _post(credentials, url, params)


def build_status(
    credentials: dict[str, str], url: str, now: datetime, sent: dict[str, Any], state: str, reason: str | None
) -> SignedRequest:
    """The status callback Plivo posts to a sent message's ``url``
    (https://www.plivo.com/docs/messaging/concepts/delivery-reports), signed with V3. Plivo
    reports read only for WhatsApp. A failure `reason` of digits ("200") is the ErrorCode;
    else 80 (destination temporarily unavailable), reported as ``undelivered``."""
    statuses = {"sent": "sent", "delivered": "delivered", "failed": "undelivered"}
    if state not in statuses:
        raise ValueError(f"Plivo reports no {state!r} status for SMS/MMS")
    details = sent.get("details") or {}
    message = str(sent["message_id"])
    params = {
        "MessageUUID": message,
        "ParentMessageUUID": message,
        "PartInfo": "1 of 1",
        "Sequence": "1",
        "Status": statuses[state],
        "From": str(details.get("from") or "14155550100"),
        "To": str(sent["to"]),
        "TotalRate": "0.0050",
        "TotalAmount": "0.0050",
        "Units": "1",
        "MCC": "310",
        "MNC": "090",
        "ErrorCode": failure_code(reason, "80", "")[0] if state == "failed" else "",
        "MessageTime": now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }
    return _post(credentials, url, params)
