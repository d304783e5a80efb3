"""Twilio Programmable Messaging: answers to an inbound SMS, MMS or WhatsApp message.

API (https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource):
``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded ``To``, ``From`` or
``MessagingServiceSid``, ``Body``, one ``MediaUrl`` per attachment (up to 10; one on
WhatsApp), ``StatusCallback`` (the connection's webhook on the hub, so the delivery
statuses of this message come back through ingest), or ``ContentSid`` +
``ContentVariables`` for an approved template
(https://www.twilio.com/docs/content/send-templates-created-with-the-content-editor);
HTTP Basic auth with the Account SID and Auth Token; 201 with the message resource
(``sid``) on success, and a JSON error (``code``, ``message``, ``status``) otherwise
(https://www.twilio.com/docs/api/errors): ``twilio_<code>``, e.g. ``twilio_21610`` for a
recipient who replied STOP, ``twilio_21211`` for an invalid ``To``; 429 (20429) and 5xx
are transient.

Address: the customer is the inbound ``From``; the answer is sent from the number they
wrote to (``To``), or through the connection's Messaging Service when one is set.
``whatsapp:`` prefixes are kept, so a WhatsApp message is answered on WhatsApp, where
free text is only allowed within 24 hours of the customer's last message
(https://www.twilio.com/docs/whatsapp/key-concepts#the-24-hour-window-or-24-hour-session):
after that `prepare` refuses unless the answer names an approved template (its Content
SID ``HX...``). Private messages only: a "public" answer has no address. Twilio
Conversations, status callbacks and voice events have no SMS reply address here.

Statuses (https://www.twilio.com/docs/messaging/guides/track-outbound-message-status):
the StatusCallback request carries ``MessageSid`` and ``MessageStatus`` (accepted,
scheduled, queued, sending -> queued; sent; delivered; read; undelivered, failed,
canceled -> failed with ``ErrorCode`` and Twilio's words for it).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

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

WHATSAPP_WINDOW = timedelta(hours=24)
_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
_STATES: dict[str, DeliveryState] = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "partially_delivered": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}
# Twilio's words for the error codes its status callbacks carry without an ErrorMessage
# (https://www.twilio.com/docs/api/errors).
ERROR_WORDS = {
    "21610": "Attempt to send to unsubscribed recipient (the customer replied STOP)",
    "21211": "Invalid 'To' phone number",
    "21614": "'To' number is not a valid mobile number",
    "30001": "Queue overflow",
    "30002": "Account suspended",
    "30003": "Unreachable destination handset",
    "30004": "Message blocked",
    "30005": "Unknown destination handset",
    "30006": "Landline or unreachable carrier",
    "30007": "Message filtered by the carrier",
    "30008": "Unknown error",
    "30009": "Missing segment",
    "30010": "Message price exceeds max price",
    "30034": "Message from an unregistered number (A2P 10DLC)",
    "63016": "Outside the WhatsApp 24-hour window: only a template can be sent",
}


class TwilioCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: str = Field(min_length=16, max_length=128)
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    # The connection's own number: the sender of a campaign's first message (when there is no
    # Messaging Service) and the caller id of its calls.
    from_number: str | None = Field(default=None, pattern=E164_PATTERN, description="E.164")


def _value(attributes: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = attributes.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str) and value:
            return value
    return None


def _whatsapp(address: Mapping[str, str]) -> bool:
    return address.get("to", "").startswith("whatsapp:")


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

    def contact_address(self, channel: str, to: str, credentials: BaseModel) -> dict[str, str] | None:
        """SMS (or WhatsApp through Twilio) from the connection's `from_number`, or its Messaging
        Service (which picks the number; SMS only)."""
        assert isinstance(credentials, TwilioCredentials)
        if not is_e164(to):
            return None
        if channel == "sms":
            if credentials.from_number:
                return {"to": to, "from": credentials.from_number}
            return {"to": to} if credentials.messaging_service_sid else None
        if channel == "whatsapp" and credentials.from_number:
            return {"to": f"whatsapp:{to}", "from": f"whatsapp:{credentials.from_number}"}
        return None

    def prepare(
        self, address: Mapping[str, str], message: OutboundMessage, inbound_at: datetime, now: datetime
    ) -> dict[str, str]:
        whatsapp = _whatsapp(address)
        refuse_unsendable_media(message, 1 if whatsapp else 10, "a WhatsApp message" if whatsapp else "an MMS")
        if message.template is not None and not _CONTENT_SID.match(str(message.template.get("name", ""))):
            raise Refused(
                "template_invalid",
                'a Twilio template is its Content SID: send "template": {"name": "HX...", "parameters"?}',
            )
        if whatsapp and message.template is None and now - inbound_at > WHATSAPP_WINDOW:
            raise Refused(
                "whatsapp_window_closed",
                "the customer last wrote more than 24 hours ago: WhatsApp takes only an approved template now",
                window_closed_at=(inbound_at + WHATSAPP_WINDOW).isoformat(),
                template='send with "template": {"name": "<Content SID HX...>", "parameters"?: [...]}',
            )
        return dict(address)

    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        assert isinstance(credentials, TwilioCredentials)
        form: list[tuple[str, str]] = [("To", address["to"])]
        if credentials.messaging_service_sid:
            form.append(("MessagingServiceSid", credentials.messaging_service_sid))
        else:
            form.append(("From", address["from"]))
        if message.template is not None:
            form.append(("ContentSid", str(message.template["name"])))
            parameters = message.template.get("parameters")
            if parameters:
                # Content variables are numbered placeholders {{1}}, {{2}}... (or named, from a mapping).
                variables = (
                    {str(k): str(v) for k, v in parameters.items()}
                    if isinstance(parameters, Mapping)
                    else {str(i): str(v) for i, v in enumerate(parameters, 1)}
                )
                form.append(("ContentVariables", json.dumps(variables)))
        elif message.text:
            form.append(("Body", clip(message.text)))
        form.extend(("MediaUrl", url) for url in media_urls(message, 1 if _whatsapp(address) else 10))
        if message.status_callback:
            form.append(("StatusCallback", message.status_callback))
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

    def status(self, event: CanonicalEvent) -> DeliveryStatus | None:
        """A StatusCallback of a Messages API message (not a Conversations delivery receipt)."""
        attributes = event.attributes
        if event.type != "message.status_updated" or "EventType" in attributes:
            return None
        sid = _value(attributes, "MessageSid", "SmsSid", "SmsMessageSid")
        state = _STATES.get((_value(attributes, "MessageStatus", "SmsStatus") or "").lower())
        if sid is None or state is None:
            return None
        reason = None
        if state == "failed":
            reason = error_reason(
                "twilio", _value(attributes, "ErrorCode"), _value(attributes, "ErrorMessage"), ERROR_WORDS
            )
            reason = reason or (_value(attributes, "MessageStatus", "SmsStatus") or "failed")
        return DeliveryStatus(provider_message_id=sid, state=state, reason=reason)


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


# ------------------------------------------------------------------ outbound calls
# Twilio's final call statuses, which the default StatusCallbackEvent ("completed") reports
# (https://www.twilio.com/docs/voice/api/call-resource#statuscallback): completed means it was answered.
CALL_ANSWERED_STATUSES = frozenset({"completed"})
CALL_UNANSWERED_STATUSES = frozenset({"busy", "no-answer", "failed", "canceled"})
RING_TIMEOUT_SECONDS = 30  # how long the contact's phone rings before Twilio reports no-answer


def create_call_request(
    base_url: str, credentials: TwilioCredentials, to: str, twiml_document: str, status_callback: str | None
) -> OutboundRequest:
    """``POST /2010-04-01/Accounts/{AccountSid}/Calls.json``
    (https://www.twilio.com/docs/voice/api/call-resource#create-a-call-resource): ``To``, ``From``
    (the connection's ``from_number``), inline ``Twiml``, ``Timeout``, and a ``StatusCallback``
    on the hub's webhook: the call's final status comes back through ingest.
    The API takes no idempotency key: the caller claims the action before sending."""
    if not credentials.from_number:
        raise PermanentFailure("not_configured", "the Twilio connection has no from_number to call from")
    form: list[tuple[str, str]] = [
        ("To", to),
        ("From", credentials.from_number),
        ("Twiml", twiml_document),
        ("Timeout", str(RING_TIMEOUT_SECONDS)),
    ]
    if status_callback:
        form += [("StatusCallback", status_callback), ("StatusCallbackMethod", "POST")]
    basic = base64.b64encode(f"{credentials.account_sid}:{credentials.auth_token}".encode()).decode()
    return OutboundRequest(
        method="POST",
        url=f"{base_url}/2010-04-01/Accounts/{quote(credentials.account_sid)}/Calls.json",
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
        body=urlencode(form).encode(),
    )


def create_call_outcome(response: ProviderResponse) -> str:
    """The new call's sid (``CA...``), or a SendFailure (``twilio_<code>``; 429/5xx transient)."""
    payload = response.json()
    if response.status in (200, 201) and isinstance(payload, dict) and isinstance(payload.get("sid"), str):
        return payload["sid"]
    if isinstance(payload, dict) and "code" in payload:
        raise failure_for_status(response, f"twilio_{payload.get('code')}", str(payload.get("message", "")))
    if 200 <= response.status < 300:
        raise PermanentFailure("unexpected_response", "Twilio answered without a call sid")
    raise failure_for_status(response, f"http_{response.status}", response.body[:200].decode("utf-8", "replace"))
