"""Bandwidth Messaging API v2: answers to an inbound SMS, MMS or group message.

API (https://dev.bandwidth.com/docs/messaging/createMessage/,
https://dev.bandwidth.com/apis/messaging-apis/messaging/#tag/Messages/operation/createMessage):
``POST https://messaging.bandwidth.com/api/v2/users/{accountId}/messages`` with a JSON body
``applicationId`` (the messaging application the business number belongs to), ``to`` (a
list: several numbers make a group message), ``from`` (the business number), ``text``,
``media`` (URLs, for an MMS) and ``tag`` = the hub's message id (echoed in every callback of
this message); HTTP Basic auth with an API user's username and password. 202 with the
message (``id``). Errors (https://dev.bandwidth.com/docs/messaging/errors/) are ``{"type",
"description", "fieldErrors"?}``: ``bandwidth_<type>`` (``bandwidth_request-validation``,
``bandwidth_unauthorized``, ``bandwidth_forbidden``...) with Bandwidth's words; 429
(``max-message-queue-size-exceeded``...) and 5xx are transient. There is no idempotency
key: the hub's own claim on the message id keeps a retried answer single.

Address: an inbound ``message-received`` callback. The answer goes from the number that
received it (``message.owner``) to the sender and, for a group message, to every other
participant (``to`` is the comma-separated list), so a group thread is answered in the
group. Private messages only: a "public" answer has no address. No messaging window.

Statuses (https://dev.bandwidth.com/docs/messaging/webhooks/): Bandwidth posts them to
the messaging application's callback URL (v2 has no per-message callback, so
``status_callback`` is not sent: point the application's callback at the hub's webhook):
``message-sending`` (MMS) -> sent, ``message-delivered`` -> delivered, ``message-read`` ->
read, ``message-failed`` -> failed with ``errorCode`` and ``description``
(https://dev.bandwidth.com/docs/messaging/errors/codes/), each with ``message.id``.
"""

from __future__ import annotations

import base64
import json
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
    Refused,
    Sender,
    Visibility,
    clip,
    failure_for_status,
    is_e164,
)
from switchboard_core.outbound.sms import error_reason, media_urls, refuse_unsendable_media

_STATES: dict[str, DeliveryState] = {
    "message-sending": "sent",
    "message-delivered": "delivered",
    "message-read": "read",
    "message-failed": "failed",
}
MAX_GROUP = 10  # Bandwidth error 4435: a group message has at most 10 participants
MAX_TAG = 1024


class BandwidthCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(pattern=r"^[0-9]{4,10}$", description="the Bandwidth account id")
    username: str = Field(min_length=1, max_length=128, pattern=r"^[^:\s]+$", description="an API user")
    password: str = Field(min_length=8, max_length=128)
    application_id: str = Field(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        description="the messaging application of the business numbers",
    )
    # The connection's own number: the sender of a campaign's first message to a contact.
    from_number: str | None = Field(default=None, pattern=E164_PATTERN, description="E.164")


def _number(value: Any) -> str | None:
    return value if isinstance(value, str) and value.startswith("+") and value[1:].isdigit() else None


class BandwidthSender(Sender):
    provider: ClassVar[str] = "bandwidth"
    base_url: ClassVar[str] = "https://messaging.bandwidth.com"
    credentials_model: ClassVar[type[BaseModel]] = BandwidthCredentials

    def address(self, event: CanonicalEvent, visibility: Visibility | None = None) -> dict[str, str] | None:
        attributes = event.attributes
        if visibility == "public" or event.type != "message.received" or attributes.get("type") != "message-received":
            return None
        message = attributes.get("message")
        if not isinstance(message, dict):
            return None
        customer = _number(message.get("from"))
        business = _number(message.get("owner")) or _number(attributes.get("to"))
        listed = message.get("to")
        recipients: list[Any] = listed if isinstance(listed, list) else []
        if customer is None or business is None:
            return None
        others = [number for number in map(_number, recipients) if number and number not in (business, customer)]
        return {"to": ",".join(dict.fromkeys([customer, *others])), "from": business}

    def contact_address(self, channel: str, to: str, credentials: BaseModel) -> dict[str, str] | None:
        """SMS from the connection's `from_number`."""
        assert isinstance(credentials, BandwidthCredentials)
        if channel != "sms" or not credentials.from_number or not is_e164(to):
            return None
        return {"to": to, "from": credentials.from_number}

    def prepare(
        self, address: Mapping[str, str], message: OutboundMessage, inbound_at: datetime, now: datetime
    ) -> dict[str, str]:
        refuse_unsendable_media(message)
        if len(address["to"].split(",")) + 1 > MAX_GROUP:
            raise Refused("group_too_large", f"a Bandwidth group message has at most {MAX_GROUP} participants")
        return dict(address)

    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        assert isinstance(credentials, BandwidthCredentials)
        body: dict[str, Any] = {
            "applicationId": credentials.application_id,
            "to": [number for number in address["to"].split(",") if number],
            "from": address["from"],
        }
        if message.text:
            body["text"] = clip(message.text)
        media = media_urls(message)
        if media:
            body["media"] = media
        if message.message_id:
            body["tag"] = message.message_id[:MAX_TAG]
        basic = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
        return OutboundRequest(
            method="POST",
            url=f"{base_url}/api/v2/users/{quote(credentials.account_id)}/messages",
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/json; charset=utf-8",
                "Accept": "application/json",
            },
            body=json.dumps(body).encode(),
        )

    def outcome(self, response: ProviderResponse) -> str:
        payload = response.json()
        if 200 <= response.status < 300:
            if isinstance(payload, dict) and isinstance(payload.get("id"), str) and payload["id"]:
                return payload["id"]
            raise PermanentFailure("unexpected_response", "Bandwidth answered without a message id")
        if isinstance(payload, dict) and isinstance(payload.get("type"), str):
            detail = str(payload.get("description") or payload["type"])
            fields = payload.get("fieldErrors")
            if isinstance(fields, list):
                named = [
                    f"{f.get('fieldName')}: {f.get('description')}"
                    for f in fields
                    if isinstance(f, dict) and f.get("fieldName")
                ]
                detail = "; ".join([detail, *named])
            raise failure_for_status(response, f"bandwidth_{payload['type']}", detail)
        raise failure_for_status(response, f"http_{response.status}", response.body[:200].decode("utf-8", "replace"))

    def status(self, event: CanonicalEvent) -> DeliveryStatus | None:
        """A message-sending/-delivered/-read/-failed callback of a message the hub sent."""
        attributes = event.attributes
        kind = attributes.get("type")
        state = _STATES.get(kind) if isinstance(kind, str) else None
        message = attributes.get("message")
        if event.type != "message.status_updated" or state is None or not isinstance(message, dict):
            return None
        message_id = message.get("id")
        if not isinstance(message_id, str) or not message_id:
            return None
        reason = None
        if state == "failed":
            code = attributes.get("errorCode")
            description = attributes.get("description")
            reason = error_reason(
                "bandwidth",
                str(code) if isinstance(code, (int, str)) and not isinstance(code, bool) else None,
                description if isinstance(description, str) else None,
                {},
            )
            reason = reason or "message-failed"
        return DeliveryStatus(provider_message_id=message_id, state=state, reason=reason)
