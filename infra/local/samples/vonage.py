"""Sample webhooks for `vonage`: payloads modelled on the provider's documented examples, signed with its
documented algorithms (SMS `sig` with hmac/hashlib; Messages/Voice JWT HS256 with PyJWT, a hub dependency)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import jwt

from infra.local.samples.base import SignedRequest, phone, random_hex

PROVIDER = "vonage"
SAMPLES: tuple[str, ...] = (
    "sms",
    "sms-json",
    "sms-receipt",
    "whatsapp",
    "message-status",
    "voice-event",
    "voice-answer",
)

_DIGESTS = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def demo_credentials() -> dict[str, str]:
    return {"signature_secret": secrets.token_urlsafe(32), "signature_method": "sha256"}


def sms_sig(params: dict[str, str], secret: str, method: str) -> str:
    """Vonage SMS signature: sorted `&name=value` (`&`/`=` in values -> `_`), HMAC hex or legacy md5hash."""
    signed = "".join(f"&{k}={v.replace('&', '_').replace('=', '_')}" for k, v in sorted(params.items()))
    if method == "md5hash":
        return hashlib.md5((signed + secret).encode("utf-8")).hexdigest()
    return hmac.new(secret.encode("utf-8"), signed.encode("utf-8"), _DIGESTS[method]).hexdigest()


def _digits(number: str) -> str:
    return number.lstrip("+")  # Vonage sends numbers without '+'


def _sms(credentials: dict[str, str], url: str, params: dict[str, str], now: datetime, as_json: bool) -> SignedRequest:
    params = {**params, "timestamp": str(int(now.timestamp())), "nonce": str(uuid.uuid4())}
    params["sig"] = sms_sig(params, credentials["signature_secret"], credentials["signature_method"])
    if as_json:
        return SignedRequest(
            "POST",
            url,
            {"Content-Type": "application/json", "User-Agent": "Nexmo/MessagingHUB/v1.0"},
            json.dumps(params).encode("utf-8"),
        )
    return SignedRequest(
        "POST",
        url,
        {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Nexmo/MessagingHUB/v1.0"},
        urlencode(params).encode("ascii"),
    )


def _jwt(credentials: dict[str, str], url: str, payload: dict[str, Any], now: datetime) -> SignedRequest:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    claims = {
        "iat": int(now.timestamp()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "abcd1234",
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    }
    token = jwt.encode(claims, credentials["signature_secret"], algorithm="HS256")
    return SignedRequest("POST", url, {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}, body)


def _iso(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    customer, business = _digits(phone()), "14155550100"
    stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if sample in ("sms", "sms-json"):
        # Inbound SMS webhook parameters (SMS API "Inbound SMS" guide).
        params = {
            "msisdn": customer,
            "to": business,
            "messageId": random_hex(8).upper(),
            "text": "Hi, is my order #4417 on its way?",
            "type": "text",
            "keyword": "HI,",
            "api-key": "abcd1234",
            "message-timestamp": stamp,
        }
        return _sms(credentials, url, params, now, as_json=sample == "sms-json")
    if sample == "sms-receipt":
        params = {
            "msisdn": customer,
            "to": business,
            "network-code": "310090",
            "messageId": random_hex(8).upper(),
            "price": "0.00680000",
            "status": "delivered",
            "scts": now.strftime("%y%m%d%H%M"),
            "err-code": "0",
            "api-key": "abcd1234",
            "message-timestamp": stamp,
        }
        return _sms(credentials, url, params, now, as_json=False)
    if sample == "whatsapp":
        payload: dict[str, Any] = {
            "to": business,
            "from": customer,
            "channel": "whatsapp",
            "message_uuid": str(uuid.uuid4()),
            "timestamp": _iso(now),
            "message_type": "text",
            "text": "Can I change my delivery address?",
            "profile": {"name": "Sam Rivera"},
            "context_status": "none",
        }
        return _jwt(credentials, url, payload, now)
    if sample == "message-status":
        payload = {
            "message_uuid": str(uuid.uuid4()),
            "to": customer,
            "from": business,
            "timestamp": _iso(now),
            "status": "delivered",
            "channel": "sms",
            "usage": {"currency": "EUR", "price": "0.0333"},
        }
        return _jwt(credentials, url, payload, now)
    if sample == "voice-answer":
        # The answer webhook of an inbound call (answer URL method POST): held with an NCCO, then routed.
        payload = {
            "to": business,
            "from": customer,
            "uuid": str(uuid.uuid4()),
            "conversation_uuid": f"CON-{uuid.uuid4()}",
            "region_url": "https://api-eu-3.vonage.com",
        }
        return _jwt(credentials, url, payload, now)
    # voice-event: the event_url callback of an answered inbound call.
    payload = {
        "from": customer,
        "to": business,
        "uuid": str(uuid.uuid4()),
        "conversation_uuid": f"CON-{uuid.uuid4()}",
        "status": "answered",
        "direction": "inbound",
        "timestamp": _iso(now),
    }
    return _jwt(credentials, url, payload, now)


# The Messages API status a state of ours is reported as (https://developer.vonage.com/en/api/messages#message-status).
_STATUS_OF_STATE = {"sent": "submitted", "delivered": "delivered", "read": "read", "failed": "rejected"}


def build_status(
    credentials: dict[str, str], url: str, now: datetime, sent: dict[str, Any], state: str, reason: str | None
) -> SignedRequest:
    """The Messages API status webhook for an SMS the sandbox accepted, signed like Vonage's
    (a JWT over the body's hash with the connection's signature secret)."""
    payload: dict[str, Any] = {
        "message_uuid": sent["message_id"],
        "to": sent["to"],
        "from": (sent.get("details") or {}).get("from", "14155550100"),
        "timestamp": _iso(now),
        "status": _STATUS_OF_STATE[state],
        "channel": "sms",
    }
    if state == "failed":
        code = reason if reason and reason.isdigit() else "1320"
        payload["error"] = {
            "type": f"https://developer.vonage.com/api-errors/messages#{code}",
            "title": code,
            "detail": reason or "Message failed",
        }
    return _jwt(credentials, url, payload, now)


def build_reply(credentials: dict[str, str], url: str, now: datetime, sender: str, text: str, to: str) -> SignedRequest:
    """A customer's SMS (SMS API inbound webhook, as `build("sms")`) from `sender` to the number `to`."""
    params = {
        "msisdn": _digits(sender),
        "to": _digits(to),
        "messageId": random_hex(8).upper(),
        "text": text,
        "type": "text",
        "api-key": "abcd1234",
        "message-timestamp": now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }
    return _sms(credentials, url, params, now, as_json=False)


# The Voice API's final status for each sandbox outcome (an unanswered call times out).
_CALL_STATUS = {"answered": "completed", "no-answer": "timeout", "busy": "busy", "failed": "failed"}


def build_call_callbacks(
    credentials: dict[str, str], placed: dict[str, Any], outcome: str, digits: str | None, now: datetime
) -> list[SignedRequest]:
    """What Vonage posts back for a call it placed, in order, signed: to the event_url ``answered``,
    the NCCO's ``input`` result (``dtmf``) to the input's eventUrl, then ``completed``; or only the
    final status of a call nobody took
    (https://developer.vonage.com/en/voice/voice-api/webhook-reference#event-webhook)."""
    details = placed.get("details") or {}
    call = {
        "uuid": str(placed["call_id"]),
        "conversation_uuid": str(details.get("conversation_uuid") or "CON-" + str(uuid.uuid4())),
        "from": str(placed.get("from_") or "14155550100"),
        "to": str(placed["to"]),
        "direction": "outbound",
        "timestamp": _iso(now),
    }
    event_url = placed.get("callback_url")
    requests: list[SignedRequest] = []
    if outcome == "answered":
        if event_url:
            requests.append(_jwt(credentials, str(event_url), {**call, "status": "answered"}, now))
        for action in placed.get("ncco") or []:
            if action.get("action") == "input" and action.get("eventUrl"):
                result = {
                    **{k: v for k, v in call.items() if k != "direction"},
                    "dtmf": {"digits": digits or "", "timed_out": not digits},
                    "speech": {"results": []},
                }
                requests.append(_jwt(credentials, str(action["eventUrl"][0]), result, now))
    if event_url:
        final = {**call, "status": _CALL_STATUS[outcome]}
        if outcome == "answered":
            final["duration"] = "14"
        requests.append(_jwt(credentials, str(event_url), final, now))
    return requests
