"""Telnyx: replies to an inbound SMS/MMS, and the Call Control commands of live call patching.

API v2, ``Authorization: Bearer <API key>``, JSON bodies; errors are ``{"errors": [{"code",
"title", "detail"}]}``.

* Messages (https://developers.telnyx.com/api/messaging/send-message): ``POST /v2/messages``
  (``from``, ``to``, ``text``, ``media_urls`` for an MMS, up to 10; ``webhook_url`` = the
  connection's webhook on the hub, so this message's delivery statuses come back through
  ingest whatever the messaging profile says) -> ``data.id``. The customer is the inbound
  ``payload.from.phone_number``; the answer goes from the number they wrote to. Private
  messages only (a "public" answer has no address); no messaging window. Errors map to
  ``telnyx_<code>`` (e.g. ``telnyx_40300``: the recipient replied STOP; ``telnyx_10009``:
  the API key is not valid); 429 and 5xx are transient.
* Statuses (https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks):
  ``message.sent`` and ``message.finalized`` carry the message ``id`` and each recipient's
  ``to[].status``: queued, sending -> queued; sent, delivery_unconfirmed (no receipt from
  the carrier) -> sent; delivered; sending_failed, delivery_failed -> failed with the first
  of ``errors`` (``code``, ``title``, ``detail``).
* Call Control: ``POST /v2/calls/{call_control_id}/actions/{answer|playback_start|speak|
  transfer}``. Every command carries a ``command_id``: Telnyx ignores a command whose id it
  has already seen on the call, so a redelivered trigger never answers or transfers twice.
"""

from __future__ import annotations

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
    Sender,
    Visibility,
    clip,
    failure_for_status,
    is_e164,
)
from switchboard_core.outbound.sms import error_reason, media_urls, refuse_unsendable_media

CALL_ACTIONS = frozenset({"answer", "playback_start", "speak", "transfer"})
# Telnyx's error when the call a command names has ended (the caller hung up).
CALL_ENDED_CODE = "90018"
_STATES: dict[str, DeliveryState] = {
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivery_unconfirmed": "sent",
    "delivered": "delivered",
    "sending_failed": "failed",
    "delivery_failed": "failed",
}


class TelnyxCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(pattern=r"^KEY[0-9A-Za-z_\-]{16,120}$", description="a Telnyx API v2 key (KEY...)")
    # The connection's own number: the sender of a campaign's first message to a contact.
    from_number: str | None = Field(default=None, pattern=E164_PATTERN, description="E.164")


def _headers(credentials: TelnyxCredentials) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {credentials.api_key}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


def _number(party: Any) -> str | None:
    if isinstance(party, list):
        party = party[0] if party else None
    if isinstance(party, dict):
        party = party.get("phone_number")
    return party if isinstance(party, str) and party else None


def _failure(response: ProviderResponse, what: str) -> Exception:
    payload = response.json()
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        detail = str(first.get("detail") or first.get("title") or "")
        return failure_for_status(response, f"telnyx_{first.get('code')}", detail)
    if 200 <= response.status < 300:
        return PermanentFailure("unexpected_response", f"Telnyx answered without {what}")
    return failure_for_status(response, f"http_{response.status}", response.body[:200].decode("utf-8", "replace"))


class TelnyxSender(Sender):
    provider: ClassVar[str] = "telnyx"
    base_url: ClassVar[str] = "https://api.telnyx.com"
    credentials_model: ClassVar[type[BaseModel]] = TelnyxCredentials

    def address(self, event: CanonicalEvent, visibility: Visibility | None = None) -> dict[str, str] | None:
        if visibility == "public":  # private messages only on this channel
            return None
        if event.type != "message.received":
            return None
        payload = event.attributes.get("payload")
        if not isinstance(payload, dict):
            return None
        customer, business = _number(payload.get("from")), _number(payload.get("to"))
        if customer is None or business is None:
            return None
        return {"to": customer, "from": business}

    def contact_address(self, channel: str, to: str, credentials: BaseModel) -> dict[str, str] | None:
        """SMS from the connection's `from_number`."""
        assert isinstance(credentials, TelnyxCredentials)
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
        assert isinstance(credentials, TelnyxCredentials)
        body: dict[str, Any] = {"from": address["from"], "to": address["to"]}
        if message.text:
            body["text"] = clip(message.text)
        media = media_urls(message)
        if media:
            body["media_urls"] = media
        if message.status_callback:
            body["webhook_url"] = message.status_callback
        return OutboundRequest("POST", f"{base_url}/v2/messages", _headers(credentials), json.dumps(body).encode())

    def outcome(self, response: ProviderResponse) -> str:
        payload = response.json()
        data = payload.get("data") if isinstance(payload, dict) else None
        if response.status in (200, 201, 202) and isinstance(data, dict) and isinstance(data.get("id"), str):
            return data["id"]
        raise _failure(response, "a message id")

    def status(self, event: CanonicalEvent) -> DeliveryStatus | None:
        """``message.sent`` / ``message.finalized`` of a message the hub sent: the first recipient's status."""
        attributes = event.attributes
        if event.type != "message.status_updated" or attributes.get("event_type") not in (
            "message.sent",
            "message.finalized",
        ):
            return None
        payload = attributes.get("payload")
        if not isinstance(payload, dict) or not isinstance(payload.get("id"), str) or not payload["id"]:
            return None
        recipients = payload.get("to")
        first = recipients[0] if isinstance(recipients, list) and recipients else None
        status = first.get("status") if isinstance(first, dict) else None
        state = _STATES.get(status) if isinstance(status, str) else None
        if state is None:
            return None
        reason = None
        if state == "failed":
            errors = payload.get("errors")
            error = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
            words = error.get("detail") or error.get("title")
            reason = error_reason(
                "telnyx", str(error["code"]) if error.get("code") else None, str(words) if words else None, {}
            )
            reason = reason or str(status)
        return DeliveryStatus(provider_message_id=payload["id"], state=state, reason=reason)


def call_action_request(
    base_url: str,
    credentials: TelnyxCredentials,
    call_control_id: str,
    action: str,
    body: Mapping[str, Any],
    command_id: str,
) -> OutboundRequest:
    """One Call Control command on a live call."""
    if action not in CALL_ACTIONS:
        raise ValueError(f"unknown Telnyx call action {action!r}")
    return OutboundRequest(
        method="POST",
        url=f"{base_url}/v2/calls/{quote(call_control_id, safe='')}/actions/{action}",
        headers=_headers(credentials),
        body=json.dumps({**body, "command_id": command_id}).encode(),
    )


def call_action_outcome(response: ProviderResponse) -> None:
    """None when Telnyx took the command (``data.result`` "ok"), else a SendFailure
    (`telnyx_90018`: the call has ended)."""
    payload = response.json()
    data = payload.get("data") if isinstance(payload, dict) else None
    if 200 <= response.status < 300 and isinstance(data, dict) and data.get("result") == "ok":
        return
    raise _failure(response, "a command result")
