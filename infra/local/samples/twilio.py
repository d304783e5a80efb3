"""Sample webhooks for `twilio`: payloads modelled on the provider's documented examples,
signed with its documented algorithm."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from infra.local.samples.base import SignedRequest, compact_json, failure_code, phone, random_hex

PROVIDER = "twilio"
SAMPLES: tuple[str, ...] = (
    "sms",
    "mms",
    "voice-status",
    "event-streams",
    "voice-inbound",
    "recording",
    "transcription",
    "conversations",
)


def demo_credentials() -> dict[str, str]:
    return {"auth_token": secrets.token_hex(16)}


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
    return SignedRequest(
        "POST", url, _twilio_headers(signature, "application/x-www-form-urlencoded"), urlencode(params).encode("ascii")
    )


def _twilio_json(credentials: dict[str, str], url: str, payload: Any) -> SignedRequest:
    body = compact_json(payload)
    separator = "&" if urlsplit(url).query else "?"
    signed_url = f"{url}{separator}bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = twilio_signature(credentials["auth_token"], signed_url)
    return SignedRequest("POST", signed_url, _twilio_headers(signature, "application/json"), body)


def _twilio_message_params(
    account: str, message_sid: str, sender: str, recipient: str, body: str, num_media: int
) -> dict[str, str]:
    # Parameters of an inbound message webhook (Twilio Messaging docs).
    return {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": message_sid,
        "NumMedia": str(num_media),
        "ToCity": "SAN FRANCISCO",
        "FromZip": "94105",
        "SmsSid": message_sid,
        "FromState": "CA",
        "SmsStatus": "received",
        "FromCity": "SAN FRANCISCO",
        "Body": body,
        "FromCountry": "US",
        "To": recipient,
        "MessagingServiceSid": "MG" + random_hex(16),
        "ToZip": "94105",
        "NumSegments": "1",
        "MessageSid": message_sid,
        "AccountSid": account,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }


def _build_twilio(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    account = "AC" + random_hex(16)
    customer, business = phone(), "+14155550100"
    if sample == "sms":
        params = _twilio_message_params(
            account, "SM" + random_hex(16), customer, business, "Hi, is my order #4417 on its way?", 0
        )
        return _twilio_form(credentials, url, params)
    if sample == "mms":
        sid = "MM" + random_hex(16)
        params = _twilio_message_params(account, sid, customer, business, "Here is the damaged box", 2)
        for index, content_type in enumerate(("image/jpeg", "image/png")):
            params[f"MediaContentType{index}"] = content_type
            params[f"MediaUrl{index}"] = (
                f"https://api.twilio.com/2010-04-01/Accounts/{account}/Messages/{sid}/Media/ME{random_hex(16)}"
            )
        return _twilio_form(credentials, url, params)
    if sample == "voice-status":
        call_sid = "CA" + random_hex(16)
        params = {
            "Called": business,
            "ToState": "CA",
            "CallerCountry": "US",
            "Direction": "inbound",
            "Timestamp": format_datetime(now.astimezone(UTC)),
            "CallbackSource": "call-progress-events",
            "CallerState": "CA",
            "ToZip": "94105",
            "SequenceNumber": "0",
            "CallSid": call_sid,
            "To": business,
            "CallerZip": "94105",
            "ToCountry": "US",
            "CalledZip": "94105",
            "ApiVersion": "2010-04-01",
            "CalledCity": "SAN FRANCISCO",
            "CallStatus": "completed",
            "Duration": "1",
            "From": customer,
            "CallDuration": "42",
            "AccountSid": account,
            "CalledCountry": "US",
            "CallerCity": "SAN FRANCISCO",
            "ToCity": "SAN FRANCISCO",
            "FromCountry": "US",
            "Caller": customer,
            "FromCity": "SAN FRANCISCO",
            "CalledState": "CA",
            "FromZip": "94105",
            "FromState": "CA",
        }
        return _twilio_form(credentials, url, params)
    if sample in ("voice-inbound", "recording", "transcription"):
        call_sid = "CA" + random_hex(16)
        recording_sid = "RE" + random_hex(16)
        recording_url = f"https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/{recording_sid}"
        if sample == "voice-inbound":
            # The number's "A call comes in" webhook (Twilio Voice webhook request parameters).
            params = {
                "Called": business,
                "ToState": "CA",
                "CallerCountry": "US",
                "Direction": "inbound",
                "CallerState": "CA",
                "ToZip": "94105",
                "CallSid": call_sid,
                "To": business,
                "CallerZip": "94107",
                "ToCountry": "US",
                "CalledZip": "94105",
                "ApiVersion": "2010-04-01",
                "CalledCity": "SAN FRANCISCO",
                "CallStatus": "ringing",
                "From": customer,
                "AccountSid": account,
                "CalledCountry": "US",
                "CallerCity": "OAKLAND",
                "ToCity": "SAN FRANCISCO",
                "FromCountry": "US",
                "Caller": customer,
                "FromCity": "OAKLAND",
                "CalledState": "CA",
                "FromZip": "94107",
                "FromState": "CA",
            }
        elif sample == "recording":
            # recordingStatusCallback parameters.
            params = {
                "AccountSid": account,
                "CallSid": call_sid,
                "RecordingSid": recording_sid,
                "RecordingUrl": recording_url,
                "RecordingStatus": "completed",
                "RecordingDuration": "68",
                "RecordingChannels": "1",
                "RecordingStartTime": format_datetime(now.astimezone(UTC)),
                "RecordingSource": "RecordVerb",
                "RecordingTrack": "both",
                "ErrorCode": "0",
            }
        else:
            # <Record transcribeCallback> parameters.
            params = {
                "ApiVersion": "2010-04-01",
                "TranscriptionType": "fast",
                "TranscriptionSid": "TR" + random_hex(16),
                "TranscriptionUrl": f"{recording_url}/Transcriptions/TR{random_hex(16)}",
                "Called": business,
                "RecordingSid": recording_sid,
                "CallStatus": "completed",
                "RecordingUrl": recording_url,
                "From": customer,
                "Direction": "inbound",
                "AccountSid": account,
                "Caller": customer,
                "TranscriptionText": "Hi, this is Sam about order 4417, please call me back.",
                "TranscriptionStatus": "completed",
                "CallSid": call_sid,
                "To": business,
            }
        return _twilio_form(credentials, url, params)
    if sample == "conversations":
        # Conversations post-event webhook, onMessageAdded from an SMS participant.
        params = {
            "MessagingServiceSid": "MG" + random_hex(16),
            "EventType": "onMessageAdded",
            "Attributes": "{}",
            "DateCreated": now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "Index": "0",
            "ChatServiceSid": "IS" + random_hex(16),
            "MessageSid": "IM" + random_hex(16),
            "AccountSid": account,
            "Source": "SMS",
            "RetryCount": "0",
            "Author": customer,
            "ParticipantSid": "MB" + random_hex(16),
            "Body": "Can someone call me back about the refund?",
            "ConversationSid": "CH" + random_hex(16),
            "WebhookSid": "WH" + random_hex(16),
            "WebhookType": "webhook",
        }
        return _twilio_form(credentials, url, params)
    # event-streams: an Event Streams webhook sink delivery (an array of CloudEvents, JSON).
    message_sid = "SM" + random_hex(16)
    event = {
        "specversion": "1.0",
        "type": "com.twilio.messaging.inbound-message.received",
        "source": f"/2010-04-01/Accounts/{account}/Messages/{message_sid}.json",
        "id": "EZ" + random_hex(16),
        "dataschema": "https://events-schemas.twilio.com/Messaging.InboundMessageV1/5",
        "datacontenttype": "application/json",
        "time": now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": {
            "numMedia": 0,
            "timestamp": now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "recipients": [business],
            "accountSid": account,
            "messagingServiceSid": "MG" + random_hex(16),
            "to": business,
            "numSegments": 1,
            "messageSid": message_sid,
            "eventName": "com.twilio.messaging.inbound-message.received",
            "body": "Can I change my delivery address?",
            "from": customer,
        },
    }
    return _twilio_json(credentials, url, [event])


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    return _build_twilio(sample, credentials, url, now)


# Twilio's MessageStatus for each sandbox state; a failed delivery is reported "undelivered"
# (the carrier refused it) with an ErrorCode.
_STATUS = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "undelivered"}


def build_status(
    credentials: dict[str, str], url: str, now: datetime, sent: dict[str, Any], state: str, reason: str | None
) -> SignedRequest:
    """The StatusCallback Twilio posts for a message its Messages API accepted (form parameters of
    https://www.twilio.com/docs/messaging/guides/track-outbound-message-status), signed like every
    Twilio webhook. A failure `reason` of digits ("30003") is the ErrorCode; else 30003."""
    if state not in _STATUS:
        raise ValueError(f"Twilio reports no {state!r} status")
    details = sent.get("details") or {}
    sid = str(sent["message_id"])
    status = _STATUS[state]
    params = {
        "SmsSid": sid,
        "SmsStatus": status,
        "MessageStatus": status,
        "To": str(sent["to"]),
        "MessageSid": sid,
        "AccountSid": str(details.get("account_sid") or "AC" + random_hex(16)),
        "From": str(details.get("from") or "+14155550100"),
        "ApiVersion": "2010-04-01",
    }
    if params["From"].startswith("MG"):  # sent through a Messaging Service: it picked the number
        params["MessagingServiceSid"], params["From"] = params["From"], "+14155550100"
    if state == "delivered":
        params["RawDlrDoneDate"] = now.astimezone(UTC).strftime("%y%m%d%H%M")
    if state == "failed":
        params["ErrorCode"] = failure_code(reason, "30003", "")[0]
    return _twilio_form(credentials, url, params)


def build_reply(credentials: dict[str, str], url: str, now: datetime, sender: str, text: str, to: str) -> SignedRequest:
    """A customer's SMS to the business number `to`, from `sender` (E.164): the inbound message
    webhook, as `build("sms")` makes it, with the customer's own words."""
    params = _twilio_message_params("AC" + random_hex(16), "SM" + random_hex(16), sender, to, text, 0)
    return _twilio_form(credentials, url, params)


# What Twilio's final status callback says for each sandbox outcome.
_CALL_STATUS = {"answered": "completed", "no-answer": "no-answer", "busy": "busy", "failed": "failed"}


def build_call_callbacks(
    credentials: dict[str, str], placed: dict[str, Any], outcome: str, digits: str | None, now: datetime
) -> list[SignedRequest]:
    """What Twilio posts back for a call its Calls API placed, in order: when answered, the
    result of the TwiML's <Gather> (``Digits``) to its action URL; then the StatusCallback with the
    final ``CallStatus`` (https://www.twilio.com/docs/voice/api/call-resource#statuscallback)."""
    from xml.etree import ElementTree as ET

    details = placed.get("details") or {}
    call = {
        "CallSid": str(placed["call_id"]),
        "AccountSid": str(details.get("account_sid") or "AC" + random_hex(16)),
        "From": str(placed.get("from_") or "+14155550100"),
        "To": str(placed["to"]),
        "Called": str(placed["to"]),
        "Caller": str(placed.get("from_") or "+14155550100"),
        "Direction": "outbound-api",
        "ApiVersion": "2010-04-01",
    }
    requests: list[SignedRequest] = []
    twiml = placed.get("twiml")
    if outcome == "answered" and twiml:
        gather = ET.fromstring(twiml).find("Gather")  # noqa: S314 - the hub's own TwiML
        if gather is not None and gather.get("action"):
            params = {**call, "CallStatus": "in-progress", "Digits": digits or "", "msg": "Gather End"}
            if digits:
                params["FinishedOnKey"] = ""
            requests.append(_twilio_form(credentials, str(gather.get("action")), params))
    if placed.get("callback_url"):
        status = {
            **call,
            "CallStatus": _CALL_STATUS[outcome],
            "CallDuration": "14" if outcome == "answered" else "0",
            "Timestamp": format_datetime(now.astimezone(UTC)),
            "CallbackSource": "call-progress-events",
            "SequenceNumber": "0",
        }
        requests.append(_twilio_form(credentials, str(placed["callback_url"]), status))
    return requests
