"""Twilio Programmable Messaging: replies to an inbound SMS, MMS or WhatsApp message.

API: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form-encoded ``To``,
``From`` or ``MessagingServiceSid``, ``Body``), HTTP Basic auth with the Account SID
and Auth Token; 201 with the message resource (``sid``) on success, and a JSON error
(``code``, ``message``, ``status``) otherwise.

Address: the customer is the inbound ``From``; the reply is sent from the number they
wrote to (``To``), or through the connection's Messaging Service when one is set.
``whatsapp:`` prefixes are kept, so a WhatsApp message is answered on WhatsApp.
Twilio Conversations and voice events have no SMS reply address here.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote, urlencode

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


class TwilioCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: str = Field(min_length=16, max_length=128)
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")


class TwilioSender(Sender):
    provider: ClassVar[str] = "twilio"
    base_url: ClassVar[str] = "https://api.twilio.com"
    credentials_model: ClassVar[type[BaseModel]] = TwilioCredentials

    def address(self, event: CanonicalEvent, visibility: Visibility | None = None) -> dict[str, str] | None:
        if visibility == "public":  # private messages only on this channel
            return None
        attributes = event.attributes
        if event.type != "message.received" or "EventType" in attributes:  # Conversations has its own API
            return None
        customer, business = attributes.get("From"), attributes.get("To")
        if not isinstance(customer, str) or not isinstance(business, str) or not customer or not business:
            return None
        return {"to": customer, "from": business}

    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        text = message.text
        assert isinstance(credentials, TwilioCredentials)
        form = {"To": address["to"], "Body": clip(text)}
        if credentials.messaging_service_sid:
            form["MessagingServiceSid"] = credentials.messaging_service_sid
        else:
            form["From"] = address["from"]
        basic = base64.b64encode(f"{credentials.account_sid}:{credentials.auth_token}".encode()).decode()
        return OutboundRequest(
            method="POST",
            url=f"{base_url}/2010-04-01/Accounts/{quote(credentials.account_sid)}/Messages.json",
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            body=urlencode(form).encode(),
        )

    def outcome(self, response: ProviderResponse) -> str:
        payload = response.json()
        if response.status in (200, 201) and isinstance(payload, dict) and isinstance(payload.get("sid"), str):
            return payload["sid"]
        if isinstance(payload, dict) and "code" in payload:
            raise failure_for_status(response, f"twilio_{payload.get('code')}", str(payload.get("message", "")))
        if 200 <= response.status < 300:
            raise PermanentFailure("unexpected_response", "Twilio answered without a message sid")
        raise failure_for_status(response, f"http_{response.status}", response.body[:200].decode("utf-8", "replace"))


# ------------------------------------------------------------------ live calls
# Twilio's error when the call to update is over (or not yet answered): the caller hung up.
CALL_NOT_IN_PROGRESS = 21220


def update_call_request(
    base_url: str, credentials: TwilioCredentials, call_sid: str, twiml_document: str
) -> OutboundRequest:
    """``POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`` with ``Twiml``: the live
    call leaves whatever it is doing (the hold music) and runs this TwiML."""
    basic = base64.b64encode(f"{credentials.account_sid}:{credentials.auth_token}".encode()).decode()
    return OutboundRequest(
        method="POST",
        url=f"{base_url}/2010-04-01/Accounts/{quote(credentials.account_sid)}/Calls/{quote(call_sid)}.json",
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
        body=urlencode({"Twiml": twiml_document}).encode(),
    )


def update_call_outcome(response: ProviderResponse) -> str:
    """The call's status after the update, or a SendFailure (`twilio_21220`: the call is over)."""
    payload = response.json()
    if response.status == 200 and isinstance(payload, dict) and isinstance(payload.get("sid"), str):
        return str(payload.get("status") or "in-progress")
    if isinstance(payload, dict) and "code" in payload:
        raise failure_for_status(response, f"twilio_{payload.get('code')}", str(payload.get("message", "")))
    if 200 <= response.status < 300:
        raise PermanentFailure("unexpected_response", "Twilio answered without a call sid")
    raise failure_for_status(response, f"http_{response.status}", response.body[:200].decode("utf-8", "replace"))
