"""Plivo Messaging: answers to an inbound SMS or MMS.

API (https://www.plivo.com/docs/messaging/api/message/send-a-message):
``POST /v1/Account/{auth_id}/Message/`` with a JSON body ``src`` (the business number),
``dst`` (the customer), ``text``, ``type`` (``sms``, or ``mms`` with ``media_urls``, up to
10), ``url`` + ``method`` (the connection's webhook on the hub, where Plivo posts this
message's status callbacks); HTTP Basic auth with the Auth ID and Auth Token. 202
``{"api_id", "message": "message(s) queued", "message_uuid": ["..."]}``; errors are
``{"api_id", "error": "<words>"}`` with the HTTP status saying what kind
(https://www.plivo.com/docs/messaging/api/response): 400 a parameter is missing or
invalid, 401 authentication failed, 404 not found, 429 rate limited, 5xx server error;
mapped to ``plivo_<status>`` with Plivo's words, 429 and 5xx transient. Plivo's API has no
idempotency key: the hub's own claim on the message id keeps a retried answer single.

Address: an inbound ``message.received`` (``From`` = the customer, ``To`` = the Plivo number
they wrote to, both as Plivo sends them: E.164 digits without ``+``), of ``Type`` sms or mms
(Plivo's WhatsApp messages, which have a 24-hour window and templates, are not answered
here). Private messages only: a "public" answer has no address. No messaging window.

Statuses (https://www.plivo.com/docs/messaging/concepts/delivery-reports): the callback to
``url`` carries ``MessageUUID``, ``Status`` (queued; sent; delivered; read; undelivered,
failed, rejected -> failed) and ``ErrorCode``
(https://www.plivo.com/docs/messaging/troubleshooting/error-codes). A long text is sent in
parts, each reported with ``ParentMessageUUID`` = the uuid the send returned, which is
what a status is threaded by.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound.base import (
    E164_PATTERN,
    DeliveryState,
    DeliveryStatus,
    OutboundMessage,
    OutboundRequest,
    PermanentFailure,
    ProviderResponse,
    Sender,
    Visibility,
    clip,
    failure_for_status,
    is_e164,
)
from switchboard_core.outbound.sms import error_reason, media_urls, refuse_unsendable_media

_ANSWERABLE_TYPES = ("sms", "mms")
_STATES: dict[str, DeliveryState] = {
    "queued": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "rejected": "failed",
}
# Plivo's messaging error codes (https://www.plivo.com/docs/messaging/troubleshooting/error-codes).
ERROR_WORDS = {
    "10": "Invalid message",
    "20": "Network error",
    "30": "Spam detected",
    "40": "Invalid source number",
    "50": "Invalid destination number",
    "60": "Loop detected",
    "70": "Destination permanently unavailable",
    "80": "Destination temporarily unavailable",
    "90": "No route available",
    "100": "Prohibited by carrier",
    "110": "Message too long",
    "200": "Source number blocked by STOP from destination number",
    "300": "Failed to dispatch message",
    "420": "Message expired",
    "450": "Destination country barred (Geo Permissions)",
    "900": "Insufficient credit",
    "910": "Account disabled",
    "1000": "Unknown error",
}
_NUMBER = re.compile(r"^\+?[0-9]{6,15}$")


class PlivoCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auth_id: str = Field(pattern=r"^[MS]A[A-Z0-9]{18}$", description="the account's (MA...) or subaccount's (SA...)")
    auth_token: str = Field(pattern=r"^[A-Za-z0-9]{32,64}$")
    # The connection's own number: the sender of a campaign's first message to a contact.
    from_number: str | None = Field(default=None, pattern=E164_PATTERN, description="E.164")


def _value(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) and value else None


class PlivoSender(Sender):
    provider: ClassVar[str] = "plivo"
    base_url: ClassVar[str] = "https://api.plivo.com"
    credentials_model: ClassVar[type[BaseModel]] = PlivoCredentials

    def address(self, event: CanonicalEvent, visibility: Visibility | None = None) -> dict[str, str] | None:
        if visibility == "public" or event.type != "message.received":
            return None
        attributes = event.attributes
        if (_value(attributes, "Type") or "sms").lower() not in _ANSWERABLE_TYPES:
            return None
        customer, business = _value(attributes, "From"), _value(attributes, "To")
        if customer is None or business is None or not _NUMBER.match(customer) or not _NUMBER.match(business):
            return None  # an alphanumeric or short-code sender cannot be answered
        return {"to": customer, "from": business}

    def contact_address(self, channel: str, to: str, credentials: BaseModel) -> dict[str, str] | None:
        """SMS from the connection's `from_number`."""
        assert isinstance(credentials, PlivoCredentials)
        if channel != "sms" or not credentials.from_number or not is_e164(to):
            return None
        return {"to": to, "from": credentials.from_number}

    def prepare(
        self, address: Mapping[str, str], message: OutboundMessage, inbound_at: datetime, now: datetime
    ) -> dict[str, str]:
        refuse_unsendable_media(message)
        return dict(address)

    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        assert isinstance(credentials, PlivoCredentials)
        media = media_urls(message)
        body: dict[str, Any] = {"src": address["from"], "dst": address["to"], "type": "mms" if media else "sms"}
        if message.text:
            body["text"] = clip(message.text)
        if media:
            body["media_urls"] = media
        if message.status_callback:
            body["url"] = message.status_callback
            body["method"] = "POST"
        basic = base64.b64encode(f"{credentials.auth_id}:{credentials.auth_token}".encode()).decode()
        return OutboundRequest(
            method="POST",
            url=f"{base_url}/v1/Account/{quote(credentials.auth_id)}/Message/",
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            body=json.dumps(body).encode(),
        )

    def outcome(self, response: ProviderResponse) -> str:
        payload = response.json()
        uuids = payload.get("message_uuid") if isinstance(payload, dict) else None
        if 200 <= response.status < 300:
            if isinstance(uuids, list) and uuids and isinstance(uuids[0], str) and uuids[0]:
                return uuids[0]
            raise PermanentFailure("unexpected_response", "Plivo answered without a message_uuid")
        if isinstance(payload, dict) and isinstance(payload.get("error"), str):
            raise failure_for_status(response, f"plivo_{response.status}", payload["error"])
        raise failure_for_status(response, f"http_{response.status}", response.body[:200].decode("utf-8", "replace"))

    def status(self, event: CanonicalEvent) -> DeliveryStatus | None:
        """A status callback of a message the hub sent (threaded by the uuid the send returned)."""
        if event.type != "message.status_updated":
            return None
        attributes = event.attributes
        uuid = _value(attributes, "ParentMessageUUID") or _value(attributes, "MessageUUID")
        status = (_value(attributes, "Status") or "").lower()
        state = _STATES.get(status)
        if uuid is None or state is None:
            return None
        reason = None
        if state == "failed":
            code = _value(attributes, "ErrorCode")
            reason = error_reason("plivo", code if code not in (None, "000") else None, None, ERROR_WORDS) or status
        return DeliveryStatus(provider_message_id=uuid, state=state, reason=reason)
