"""Vonage: replies to an inbound SMS (Messages API), and the Voice API call transfer of live
call patching.

Authentication: a Vonage application's JWT, ``Authorization: Bearer <JWT>``, signed RS256
with the application's private key, claims ``application_id``, ``iat``, ``jti`` (unique per
request) and a short ``exp``; made per request with PyJWT (docs/providers/vonage.md has the
sources). Errors are ``{"type", "title", "detail", "instance"}`` (RFC 7807 style).

* Messages: ``POST /v1/messages`` ``{"message_type": "text", "channel": "sms", "to", "from",
  "text"}`` -> 202 ``{"message_uuid"}``. The customer is the inbound SMS's ``msisdn`` (SMS API)
  or ``from`` (Messages API, channel sms); the reply goes from the number they wrote to.
  Numbers are written as Vonage writes them: digits, no '+'.
* Voice: ``PUT /v1/calls/{uuid}`` ``{"action": "transfer", "destination": {"type": "ncco",
  "ncco": [...]}}`` -> 204. 404: no such call in progress for the application (the caller hung up).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator

from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound.base import (
    E164_PATTERN,
    DeliveryState,
    DeliveryStatus,
    OutboundMessage,
    OutboundRequest,
    PermanentFailure,
    ProviderResponse,
    Refused,
    Sender,
    SendFailure,
    Visibility,
    clip,
    failure_for_status,
    is_e164,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

TOKEN_LIFETIME_SECONDS = 60  # a token per request: it only has to outlive the request
CALL_GONE_STATUS = 404  # PUT /v1/calls/{uuid} for a call that has ended (or is not this application's)
MIN_KEY_BITS = 2048  # Vonage generates 2048-bit application keys
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class VonageCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    application_id: str = Field(pattern=UUID_PATTERN, description="the Vonage application's id (a UUID)")
    private_key: str = Field(
        min_length=100, max_length=10_000, description="the application's RSA private key, PEM (unencrypted)"
    )
    # The connection's own number (one of the application's): a campaign's SMS sender and call caller id.
    from_number: str | None = Field(default=None, pattern=E164_PATTERN, description="E.164")

    @field_validator("private_key")
    @classmethod
    def _an_rsa_private_key(cls, value: str) -> str:
        # The message never echoes the key.
        from cryptography.hazmat.primitives.asymmetric import rsa

        pem = value.strip() + "\n"
        try:
            key = _load_private_key(pem)
        except (ValueError, TypeError, UnicodeError):
            raise ValueError("not an unencrypted PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("not an RSA private key (Vonage signs application JWTs with RS256)")
        if key.key_size < MIN_KEY_BITS:
            raise ValueError(f"an RSA key of at least {MIN_KEY_BITS} bits is needed")
        return pem


@lru_cache(maxsize=16)
def _load_private_key(pem: str) -> PrivateKeyTypes:
    """The parsed key, once per warm container: loading a PEM checks the RSA key (tens of ms),
    signing with the loaded key takes well under a millisecond. PyJWT and cryptography are
    imported here, for Vonage's calls only: ~40 ms off the cold start of every other path."""
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem.encode("utf-8"), password=None)


def application_jwt(credentials: VonageCredentials, now: float | None = None) -> str:
    """A fresh application JWT: RS256, its own jti, valid for TOKEN_LIFETIME_SECONDS."""
    issued = int(now if now is not None else time.time())
    claims = {
        "application_id": credentials.application_id,
        "iat": issued,
        "jti": str(uuid.uuid4()),
        "exp": issued + TOKEN_LIFETIME_SECONDS,
    }
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = _load_private_key(credentials.private_key)
    assert isinstance(key, rsa.RSAPrivateKey)  # the credentials model admits RSA keys only
    return jwt.encode(claims, key, algorithm="RS256")


def _headers(credentials: VonageCredentials) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {application_jwt(credentials)}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


def _number(value: Any) -> str | None:
    return value.strip().removeprefix("+") if isinstance(value, str) and value.strip() else None


def _failure(response: ProviderResponse, what: str) -> SendFailure:
    payload = response.json()
    if 200 <= response.status < 300:
        return PermanentFailure("unexpected_response", f"Vonage answered without {what}")
    if isinstance(payload, dict) and (payload.get("title") or payload.get("detail")):
        detail = ": ".join(str(payload[k]) for k in ("title", "detail") if payload.get(k))
    else:
        detail = response.body[:200].decode("utf-8", "replace")
    return failure_for_status(response, f"vonage_{response.status}", detail)


# Messages API statuses (https://developer.vonage.com/en/api/messages#message-status).
MESSAGES_API_STATES: dict[str, DeliveryState] = {
    "submitted": "sent",
    "delivered": "delivered",
    "read": "read",
    "rejected": "failed",
    "undeliverable": "failed",
    "failed": "failed",
}


class VonageSender(Sender):
    provider: ClassVar[str] = "vonage"
    base_url: ClassVar[str] = "https://api.nexmo.com"
    credentials_model: ClassVar[type[BaseModel]] = VonageCredentials

    def address(self, event: CanonicalEvent, visibility: Visibility | None = None) -> dict[str, str] | None:
        if event.type != "message.received" or visibility == "public":  # SMS: private messages only
            return None
        attributes = event.attributes
        if "message_uuid" in attributes:  # Messages API: answered on SMS only
            if str(attributes.get("channel") or "sms").lower() != "sms":
                return None
            customer, business = _number(attributes.get("from")), _number(attributes.get("to"))
        else:  # SMS API
            customer, business = _number(attributes.get("msisdn")), _number(attributes.get("to"))
        if customer is None or business is None:
            return None
        return {"to": customer, "from": business}

    def contact_address(self, channel: str, to: str, credentials: BaseModel) -> dict[str, str] | None:
        """SMS from the connection's `from_number`, numbers as Vonage writes them (digits)."""
        assert isinstance(credentials, VonageCredentials)
        sender, recipient = _number(credentials.from_number), _number(to)
        if channel != "sms" or sender is None or recipient is None or not is_e164(to):
            return None
        return {"to": recipient, "from": sender}

    def prepare(
        self, address: Mapping[str, str], message: OutboundMessage, inbound_at: datetime, now: datetime
    ) -> dict[str, str]:
        if message.attachments:  # the Messages API's sms channel carries text only (MMS is its own, US-only channel)
            raise Refused("attachments_unsupported", "Vonage SMS answers carry text only")
        if message.template:
            raise Refused("template_unsupported", "templates are for WhatsApp; this answer goes out as SMS")
        return dict(address)

    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        assert isinstance(credentials, VonageCredentials)
        body: dict[str, Any] = {
            "message_type": "text",
            "channel": "sms",
            "to": address["to"],
            "from": address["from"],
            "text": clip(message.text),
        }
        if message.message_id:  # echoed in every status webhook of this message
            body["client_ref"] = message.message_id[:100]
        if message.status_callback:  # per-message status URL (else the application's status_url)
            body["webhook_url"] = message.status_callback
        return OutboundRequest("POST", f"{base_url}/v1/messages", _headers(credentials), json.dumps(body).encode())

    def status(self, event: CanonicalEvent) -> DeliveryStatus | None:
        """A Messages API status webhook (`message_uuid`, `status`, `error`) for an SMS the hub sent."""
        attributes = event.attributes
        uuid_, status = attributes.get("message_uuid"), attributes.get("status")
        if event.type != "message.status_updated" or not isinstance(uuid_, str) or not isinstance(status, str):
            return None
        state = MESSAGES_API_STATES.get(status)
        if state is None:
            return None
        reason = None
        if state == "failed":
            error = attributes.get("error")
            if isinstance(error, dict):
                code = str(error.get("type", "")).rstrip("/").rsplit("/", 1)[-1] or status
                words = ": ".join(str(error[k]) for k in ("title", "detail") if error.get(k))
                reason = f"vonage_{code}: {words}" if words else f"vonage_{code}"
            else:
                reason = f"vonage_{status}"
        return DeliveryStatus(provider_message_id=uuid_, state=state, reason=reason)

    def outcome(self, response: ProviderResponse) -> str:
        payload = response.json()
        message_uuid = payload.get("message_uuid") if isinstance(payload, dict) else None
        if response.status in (200, 202) and isinstance(message_uuid, str) and message_uuid:
            return message_uuid
        raise _failure(response, "a message_uuid")


def transfer_request(
    base_url: str, credentials: VonageCredentials, call_uuid: str, ncco: list[dict[str, Any]]
) -> OutboundRequest:
    """Hand the live call `call_uuid` to a new NCCO."""
    body = {"action": "transfer", "destination": {"type": "ncco", "ncco": ncco}}
    return OutboundRequest(
        method="PUT",
        url=f"{base_url}/v1/calls/{quote(call_uuid, safe='')}",
        headers=_headers(credentials),
        body=json.dumps(body).encode(),
    )


def transfer_outcome(response: ProviderResponse) -> None:
    """None when Vonage took the transfer (204), else a SendFailure (`vonage_404`: the call has ended)."""
    if response.status in (200, 204):
        return
    raise _failure(response, "a transfer")


# Voice API call statuses (https://developer.vonage.com/en/voice/voice-api/guides/call-flow#event-objects):
# completed after answered; the others end a call nobody took.
CALL_ANSWERED_STATUSES = frozenset({"completed"})
CALL_UNANSWERED_STATUSES = frozenset({"busy", "cancelled", "failed", "rejected", "timeout", "unanswered"})
RINGING_TIMER_SECONDS = 30


def create_call_request(
    base_url: str, credentials: VonageCredentials, to: str, ncco: list[dict[str, Any]], event_url: str | None
) -> OutboundRequest:
    """``POST /v1/calls`` (https://developer.vonage.com/en/api/voice#createCall): ``to`` a phone,
    ``from`` the connection's ``from_number`` (else ``random_from_number``: one of the application's
    numbers), an inline ``ncco``, and ``event_url`` on the hub's webhook so the call's status events
    come back through ingest. The API takes no idempotency key: the caller claims the action first."""
    body: dict[str, Any] = {
        "to": [{"type": "phone", "number": _number(to) or to}],
        "ncco": ncco,
        "ringing_timer": RINGING_TIMER_SECONDS,
    }
    sender = _number(credentials.from_number)
    if sender:
        body["from"] = {"type": "phone", "number": sender}
    else:
        body["random_from_number"] = True
    if event_url:
        body["event_url"] = [event_url]
        body["event_method"] = "POST"
    return OutboundRequest("POST", f"{base_url}/v1/calls", _headers(credentials), json.dumps(body).encode())


def create_call_outcome(response: ProviderResponse) -> str:
    """The new call's ``uuid`` (201), or a SendFailure (``vonage_<status>``; 429/5xx transient)."""
    payload = response.json()
    call_uuid = payload.get("uuid") if isinstance(payload, dict) else None
    if response.status in (200, 201) and isinstance(call_uuid, str) and call_uuid:
        return call_uuid
    raise _failure(response, "a call uuid")
