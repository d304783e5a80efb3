"""Realistic, correctly signed sample webhooks: the sender side of each provider.

Used by `switchboard send <provider> [sample]` and by the integration tests. Payloads
are modelled on the providers' documented examples (see tests/events/*/README.md) with
fresh random ids on every call, so two calls are two distinct deliveries. Signing uses
each provider's documented algorithm with hmac/hashlib only: this module ships in the
installed CLI, where the providers' SDKs are not available.

Phone numbers are from the fictional 555-01xx range; e-mail addresses use example.com.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

SAMPLES: dict[str, tuple[str, ...]] = {
    "twilio": ("sms", "mms", "voice-status", "event-streams"),
    "meta": ("whatsapp", "messenger", "instagram", "whatsapp-status"),
    "hubspot": ("contact-created", "property-change"),
    "standard-webhooks": ("default",),
}


@dataclass(frozen=True)
class SignedRequest:
    """An HTTP request ready to send: what the provider would POST to the hub."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def demo_credentials(provider: str) -> dict[str, str]:
    """Fresh random credentials shaped like the provider's real ones."""
    if provider == "twilio":
        return {"auth_token": secrets.token_hex(16)}
    if provider == "meta":
        return {"app_secret": secrets.token_hex(16), "verify_token": secrets.token_urlsafe(24)}
    if provider == "hubspot":
        return {"client_secret": str(uuid.uuid4())}
    if provider == "standard-webhooks":
        return {"secret": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")}
    raise ValueError(f"unknown provider {provider!r}; known: {', '.join(sorted(SAMPLES))}")


def build_sample(
    provider: str,
    sample: str | None,
    credentials: dict[str, str],
    url: str,
    now: datetime | None = None,
) -> SignedRequest:
    """A signed request for `provider`'s `sample` (None: the provider's default) to `url`."""
    if provider not in SAMPLES:
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(sorted(SAMPLES))}")
    name = sample or SAMPLES[provider][0]
    if name not in SAMPLES[provider]:
        raise ValueError(f"no sample {name!r} for {provider}; known: {', '.join(SAMPLES[provider])}")
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    builder = _BUILDERS[provider]
    return builder(name, credentials, url, now)


# --- shared -----------------------------------------------------------------------------

def _hex(n: int) -> str:
    return secrets.token_hex(n)


def _phone() -> str:
    """A fictional US number, +1 415 555 0101..0199 (0100 is the demo business number)."""
    return f"+1415555{101 + secrets.randbelow(99):04d}"


def _digits(n: int) -> str:
    return str(secrets.randbelow(9) + 1) + "".join(str(secrets.randbelow(10)) for _ in range(n - 1))


def _compact_json(payload: Any) -> bytes:
    # Meta and HubSpot send compact JSON with non-ASCII escaped.
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _millis(now: datetime) -> int:
    return int(now.timestamp() * 1000)


# --- Twilio -----------------------------------------------------------------------------

def twilio_signature(auth_token: str, url: str, params: dict[str, Any] | None = None) -> str:
    """base64(HMAC-SHA1(token, url + sorted name+value)); list values contribute each
    distinct value, sorted (what Twilio's SDK does)."""
    pieces = [url]
    for name in sorted(params or {}):
        value = params[name]  # type: ignore[index]
        values = value if isinstance(value, (list, tuple)) else [value]
        pieces.extend(name + str(v) for v in sorted(set(map(str, values))))
    digest = hmac.new(auth_token.encode("utf-8"), "".join(pieces).encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _twilio_headers(signature: str, content_type: str) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "X-Twilio-Signature": signature,
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        "User-Agent": "TwilioProxy/1.1",
    }


def _twilio_form(credentials: dict[str, str], url: str, params: dict[str, str]) -> SignedRequest:
    signature = twilio_signature(credentials["auth_token"], url, params)
    return SignedRequest("POST", url, _twilio_headers(signature, "application/x-www-form-urlencoded"),
                         urlencode(params).encode("ascii"))


def _twilio_json(credentials: dict[str, str], url: str, payload: Any) -> SignedRequest:
    body = _compact_json(payload)
    separator = "&" if urlsplit(url).query else "?"
    signed_url = f"{url}{separator}bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = twilio_signature(credentials["auth_token"], signed_url)
    return SignedRequest("POST", signed_url, _twilio_headers(signature, "application/json"), body)


def _twilio_message_params(account: str, message_sid: str, sender: str, recipient: str, body: str,
                           num_media: int) -> dict[str, str]:
    # Parameters of an inbound message webhook (Twilio Messaging docs).
    return {
        "ToCountry": "US", "ToState": "CA", "SmsMessageSid": message_sid, "NumMedia": str(num_media),
        "ToCity": "SAN FRANCISCO", "FromZip": "94105", "SmsSid": message_sid, "FromState": "CA",
        "SmsStatus": "received", "FromCity": "SAN FRANCISCO", "Body": body, "FromCountry": "US",
        "To": recipient, "MessagingServiceSid": "MG" + _hex(16), "ToZip": "94105", "NumSegments": "1",
        "MessageSid": message_sid, "AccountSid": account, "From": sender, "ApiVersion": "2010-04-01",
    }


def _build_twilio(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    account = "AC" + _hex(16)
    customer, business = _phone(), "+14155550100"
    if sample == "sms":
        params = _twilio_message_params(account, "SM" + _hex(16), customer, business,
                                        "Hi, is my order #4417 on its way?", 0)
        return _twilio_form(credentials, url, params)
    if sample == "mms":
        sid = "MM" + _hex(16)
        params = _twilio_message_params(account, sid, customer, business, "Here is the damaged box", 2)
        for index, content_type in enumerate(("image/jpeg", "image/png")):
            params[f"MediaContentType{index}"] = content_type
            params[f"MediaUrl{index}"] = (f"https://api.twilio.com/2010-04-01/Accounts/{account}"
                                          f"/Messages/{sid}/Media/ME{_hex(16)}")
        return _twilio_form(credentials, url, params)
    if sample == "voice-status":
        call_sid = "CA" + _hex(16)
        params = {
            "Called": business, "ToState": "CA", "CallerCountry": "US", "Direction": "inbound",
            "Timestamp": format_datetime(now.astimezone(UTC)),
            "CallbackSource": "call-progress-events", "CallerState": "CA", "ToZip": "94105",
            "SequenceNumber": "0", "CallSid": call_sid, "To": business, "CallerZip": "94105",
            "ToCountry": "US", "CalledZip": "94105", "ApiVersion": "2010-04-01", "CalledCity": "SAN FRANCISCO",
            "CallStatus": "completed", "Duration": "1", "From": customer, "CallDuration": "42",
            "AccountSid": account, "CalledCountry": "US", "CallerCity": "SAN FRANCISCO", "ToCity": "SAN FRANCISCO",
            "FromCountry": "US", "Caller": customer, "FromCity": "SAN FRANCISCO", "CalledState": "CA",
            "FromZip": "94105", "FromState": "CA",
        }
        return _twilio_form(credentials, url, params)
    # event-streams: an Event Streams webhook sink delivery (an array of CloudEvents, JSON).
    message_sid = "SM" + _hex(16)
    event = {
        "specversion": "1.0",
        "type": "com.twilio.messaging.inbound-message.received",
        "source": f"/2010-04-01/Accounts/{account}/Messages/{message_sid}.json",
        "id": "EZ" + _hex(16),
        "dataschema": "https://events-schemas.twilio.com/Messaging.InboundMessageV1/5",
        "datacontenttype": "application/json",
        "time": now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": {
            "numMedia": 0, "timestamp": now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "recipients": [business], "accountSid": account, "messagingServiceSid": "MG" + _hex(16),
            "to": business, "numSegments": 1, "messageSid": message_sid, "eventName": "com.twilio.messaging.inbound-message.received",
            "body": "Can I change my delivery address?", "from": customer,
        },
    }
    return _twilio_json(credentials, url, [event])


# --- Meta -------------------------------------------------------------------------------

def meta_signature(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _meta_request(credentials: dict[str, str], url: str, payload: Any) -> SignedRequest:
    body = _compact_json(payload)
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": meta_signature(credentials["app_secret"], body),
        "X-Hub-Signature": "sha1=" + hmac.new(credentials["app_secret"].encode("utf-8"), body, hashlib.sha1).hexdigest(),
        "User-Agent": "facebookexternalua",
    }
    return SignedRequest("POST", url, headers, body)


def _wamid() -> str:
    return "wamid." + base64.b64encode(secrets.token_bytes(30)).decode("ascii")


def _build_meta(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    seconds, millis = str(int(now.timestamp())), _millis(now)
    if sample in ("whatsapp", "whatsapp-status"):
        wa_id = _phone()[1:]
        metadata = {"display_phone_number": "15550100100", "phone_number_id": _digits(15)}
        if sample == "whatsapp":
            value = {
                "messaging_product": "whatsapp",
                "metadata": metadata,
                "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": wa_id}],
                "messages": [{"from": wa_id, "id": _wamid(), "timestamp": seconds, "type": "text",
                              "text": {"body": "Does it come in another color?"}}],
            }
        else:
            value = {
                "messaging_product": "whatsapp",
                "metadata": metadata,
                "statuses": [{
                    "id": _wamid(), "status": "delivered", "timestamp": seconds, "recipient_id": wa_id,
                    "conversation": {"id": _hex(16), "origin": {"type": "service"}},
                    "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"},
                }],
            }
        payload = {"object": "whatsapp_business_account",
                   "entry": [{"id": _digits(15), "changes": [{"value": value, "field": "messages"}]}]}
        return _meta_request(credentials, url, payload)
    account_id, user_id = _digits(15), _digits(16)
    if sample == "messenger":
        mid = "m_" + base64.urlsafe_b64encode(secrets.token_bytes(48)).decode("ascii").rstrip("=")
        payload = {"object": "page", "entry": [{"id": account_id, "time": millis, "messaging": [{
            "sender": {"id": user_id}, "recipient": {"id": account_id}, "timestamp": millis,
            "message": {"mid": mid, "text": "Hello, I need help with my booking"}}]}]}
    else:  # instagram
        mid = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOj" + _hex(20)
        payload = {"object": "instagram", "entry": [{"id": account_id, "time": millis, "messaging": [{
            "sender": {"id": user_id}, "recipient": {"id": account_id}, "timestamp": millis,
            "message": {"mid": mid, "text": "Do you ship to Canada?"}}]}]}
    return _meta_request(credentials, url, payload)


# --- HubSpot ----------------------------------------------------------------------------

_HUBSPOT_DECODE = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
                   "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def hubspot_signature_v3(client_secret: str, method: str, url: str, body: bytes, timestamp_ms: str) -> str:
    """base64(HMAC-SHA256(secret, method + decoded URI + body + timestamp))."""
    uri = url
    for encoded, decoded in _HUBSPOT_DECODE.items():
        uri = uri.replace(encoded, decoded).replace(encoded.lower(), decoded)
    message = method.encode("utf-8") + uri.encode("utf-8") + body + timestamp_ms.encode("ascii")
    return base64.b64encode(hmac.new(client_secret.encode("utf-8"), message, hashlib.sha256).digest()).decode("ascii")


def _build_hubspot(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    millis = _millis(now)
    common = {"subscriptionId": int(_digits(7)), "portalId": int(_digits(8)), "appId": int(_digits(7)),
              "attemptNumber": 0}
    object_id = int(_digits(11))
    if sample == "contact-created":
        events = [{"eventId": int(_digits(10)), **common, "occurredAt": millis - 1500,
                   "subscriptionType": "contact.creation", "objectId": object_id,
                   "changeFlag": "CREATED", "changeSource": "CRM"}]
    else:  # property-change: a batch of two property changes on one contact
        events = [
            {"eventId": int(_digits(10)), **common, "occurredAt": millis - 2100,
             "subscriptionType": "contact.propertyChange", "objectId": object_id, "propertyName": "email",
             "propertyValue": f"ada.{_hex(4)}@example.com", "changeSource": "CRM", "sourceId": "userId:" + _digits(8)},
            {"eventId": int(_digits(10)), **common, "occurredAt": millis - 2000,
             "subscriptionType": "contact.propertyChange", "objectId": object_id, "propertyName": "phone",
             "propertyValue": _phone(), "changeSource": "CRM", "sourceId": "userId:" + _digits(8)},
        ]
    body = _compact_json(events)
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


# --- Standard Webhooks -------------------------------------------------------------------

def standard_webhooks_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, key = base64 after whsec_."""
    encoded = secret.removeprefix("whsec_")
    key = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    content = f"{msg_id}.{timestamp}.".encode("utf-8") + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode("ascii")


def _build_standard_webhooks(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    msg_id = "msg_" + base64.b32encode(secrets.token_bytes(15)).decode("ascii").lower()
    timestamp = str(int(now.timestamp()))
    payload = {
        "type": "invoice.paid",
        "timestamp": now.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "data": {"id": "inv_" + _hex(8), "customer_email": f"billing.{_hex(3)}@example.com",
                 "amount": 4200, "currency": "EUR"},
    }
    body = json.dumps(payload).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": standard_webhooks_signature(credentials["secret"], msg_id, timestamp, body),
    }
    return SignedRequest("POST", url, headers, body)


_BUILDERS = {
    "twilio": _build_twilio,
    "meta": _build_meta,
    "hubspot": _build_hubspot,
    "standard-webhooks": _build_standard_webhooks,
}
