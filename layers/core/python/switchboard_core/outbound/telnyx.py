"""Telnyx: replies to an inbound SMS/MMS, and the Call Control commands of live call patching.

API v2, ``Authorization: Bearer <API key>``, JSON bodies; errors are ``{"errors": [{"code",
"title", "detail"}]}``.

* Messages: ``POST /v2/messages`` (``from``, ``to``, ``text``) -> ``data.id``. The customer
  is the inbound ``payload.from.phone_number``; the reply goes from the number they wrote to.
* Call Control: ``POST /v2/calls/{call_control_id}/actions/{answer|playback_start|speak|
  transfer}``. Every command carries a ``command_id``: Telnyx ignores a command whose id it
  has already seen on the call, so a redelivered trigger never answers or transfers twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound.base import (
    OutboundMessage,
    OutboundRequest,
    PermanentFailure,
    ProviderResponse,
    Sender,
    Visibility,
    clip,
    failure_for_status,
)

CALL_ACTIONS = frozenset({"answer", "playback_start", "speak", "transfer"})
# Telnyx's error when the call a command names has ended (the caller hung up).
CALL_ENDED_CODE = "90018"


class TelnyxCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(pattern=r"^KEY[0-9A-Za-z_\-]{16,120}$", description="a Telnyx API v2 key (KEY...)")


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

    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        text = message.text
        assert isinstance(credentials, TelnyxCredentials)
        body = {"from": address["from"], "to": address["to"], "text": clip(text)}
        return OutboundRequest("POST", f"{base_url}/v2/messages", _headers(credentials), json.dumps(body).encode())

    def outcome(self, response: ProviderResponse) -> str:
        payload = response.json()
        data = payload.get("data") if isinstance(payload, dict) else None
        if response.status in (200, 201, 202) and isinstance(data, dict) and isinstance(data.get("id"), str):
            return data["id"]
        raise _failure(response, "a message id")


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
