"""Twilio: Programmable Messaging (SMS/MMS/WhatsApp) and Voice webhooks.

Contract (docs/providers.md has the sources):

* Signature: ``X-Twilio-Signature`` = base64(HMAC-SHA1(auth token, URL + every POST
  parameter as name+value, names sorted)). A multi-valued parameter contributes each
  distinct value, values sorted (what the twilio SDK does with a multi-dict).
* JSON bodies: Twilio adds ``bodySHA256=<hex sha256 of the raw body>`` to the URL query
  and signs the URL alone. Both the HMAC over the URL and the body hash must match; a
  JSON body whose URL carries no ``bodySHA256`` is refused (the signature would not
  cover it).
* Like the SDK, the URL is tried as received and with the scheme's default port added
  or removed (Twilio is inconsistent about ``:443``). Other ports must match exactly.
* No timestamp: replays are bounded only by deduplication (``delivery_id``).
* Answer 200 with empty TwiML, which tells Twilio to do nothing for an inbound message
  or call and is accepted for status callbacks (they ignore the body).

Normalisation:

* SMS/MMS/WhatsApp (``MessageSid``/``SmsSid``): ``message.received``, or
  ``message.status_updated`` for status callbacks (``MessageStatus``/``SmsStatus`` other
  than received/receiving). The contact is the remote party: ``From`` for inbound
  messages, ``To`` for status callbacks of outbound messages. ``whatsapp:+1...``
  addresses give the number plus a whatsapp handle.
* conversation_key of a message: ``twilio:{AccountSid}:{A}|{B}`` where A, B are the
  ``From``/``To`` addresses sorted, so an inbound message and the status callbacks of
  the replies sent to the same person thread together, per account.
* Voice (``CallSid``): ``call.<CallStatus>`` (in-progress -> in_progress, no-answer ->
  no_answer); contact = ``From`` for inbound calls, ``To`` for outbound-api/-dial;
  conversation_key ``twilio:call:{CallSid}``.
* Anything else (or a JSON body that does not match those fields, even
  case-insensitively or inside a CloudEvent ``data``) becomes ``provider.notification``
  with the payload in attributes. Parameters that have no place in the model are kept
  in attributes; nothing is dropped.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from hashlib import sha1
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from switchboard_core.events import EVENT_TYPES, Attachment, Channel, Contact, EventDraft, SocialHandle
from switchboard_core.providers._common import (
    body_digest_id,
    clean_str,
    draft,
    e164,
    from_iso,
    header,
    load_json,
    refuse_invalid_models,
    request_url,
    scalar_str,
    secret_bytes,
    sha256_hex,
    stable_hash,
)
from switchboard_core.providers.base import (
    Credentials,
    HttpResponse,
    MalformedPayload,
    ProviderAdapter,
    SignatureError,
    WebhookRequest,
    constant_time_equal,
)

SIGNATURE_HEADER = "X-Twilio-Signature"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

_DEFAULT_PORTS = {"https": 443, "http": 80}
_MEDIA_URL = re.compile(r"^MediaUrl([0-9]{1,3})$")
_MEDIA_TYPE = re.compile(r"^MediaContentType([0-9]{1,3})$")
_INBOUND_MESSAGE_STATES = {"received", "receiving"}
_CHANNEL_PREFIX = re.compile(r"^([a-z][a-z0-9-]{0,15}):(.*)$")

# Case-insensitive names under which JSON payloads (e.g. Event Streams CloudEvent
# data, which is camelCase) carry the same fields as the form webhooks.
_CANONICAL = {
    name.lower(): name
    for name in (
        "MessageSid", "SmsSid", "SmsMessageSid", "MessageStatus", "SmsStatus", "AccountSid",
        "From", "To", "Body", "NumMedia", "ProfileName", "WaId", "CallSid", "CallStatus",
        "SequenceNumber", "Direction", "CallerName", "Timestamp", "ErrorCode", "ErrorMessage",
        "MessagingServiceSid", "CallDuration", "ApiVersion",
    )
}


def _url_variants(url: str) -> list[str]:
    """The URL as received, plus the same URL with the scheme's default port added
    (when it has none) or removed (when it has the default one)."""
    variants = [url]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return variants
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    prefix = f"{parts.scheme}://{parts.netloc}"
    if default is None or not parts.netloc or not url.startswith(prefix):
        return variants
    rest = url[len(prefix):]
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if port is None:
        if hostport.endswith(":"):
            return variants
        variants.append(f"{parts.scheme}://{userinfo}{at}{hostport}:{default}{rest}")
    elif port == default:
        host = hostport.rsplit(":", 1)[0]
        variants.append(f"{parts.scheme}://{userinfo}{at}{host}{rest}")
    return variants


def compute_signature(auth_token: str | bytes, url: str, params: Mapping[str, list[str]] | None = None) -> str:
    """Twilio's signature of `url` and POST `params` (each name sorted; each distinct value sorted)."""
    pieces = [url]
    for name in sorted(set(params or {})):
        for value in sorted(set(params[name])):
            pieces.append(name + value)
    key = auth_token.encode("utf-8") if isinstance(auth_token, str) else auth_token
    mac = hmac.new(key, clean_str("".join(pieces)).encode("utf-8"), sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def _first(params: Mapping[str, list[str]], *names: str) -> str | None:
    for name in names:
        values = params.get(name)
        if values and values[0].strip():
            return values[0].strip()
    return None


def _body_hash_param(url: str) -> str | None:
    try:
        query = urlsplit(url).query
    except ValueError:
        return None
    values = parse_qs(query, keep_blank_values=True).get("bodySHA256")
    return values[0] if values else None


def _parse_timestamp(value: str | None) -> datetime | None:
    """Twilio's `Timestamp` parameter (RFC 2822, e.g. 'Mon, 16 Aug 2010 03:45:01 +0000')."""
    if not value or len(value) > 64:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return from_iso(value)
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _address_contact(address: str | None, *, name: str | None = None, wa_id: str | None = None) -> Contact:
    """A contact from a Twilio address: '+14155550100', 'whatsapp:+14155550100', 'client:alice'."""
    if not address:
        return Contact(name=name)
    match = _CHANNEL_PREFIX.match(address)
    if match and not address.startswith("+"):
        platform, rest = match.group(1), match.group(2)
        phone = e164(rest)
        handles = []
        if platform in ("whatsapp", "messenger", "rcs"):
            handles.append(SocialHandle(platform=platform, id=wa_id or rest or None, handle=name))
        return Contact(phone=phone, name=name, handles=handles)
    return Contact(phone=e164(address), name=name)


def _attributes(params: Mapping[str, list[str]], skip: set[str]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for name, values in params.items():
        if name in skip or _MEDIA_URL.match(name) or _MEDIA_TYPE.match(name):
            continue
        attributes[name] = values[0] if len(values) == 1 else list(values)
    return attributes


def _attachments(params: Mapping[str, list[str]]) -> list[Attachment]:
    indexes = sorted(int(m.group(1)) for name in params if (m := _MEDIA_URL.match(name)))
    attachments = []
    for index in indexes:
        url = _first(params, f"MediaUrl{index}")
        if url is None:
            continue
        attachments.append(Attachment(url=url, content_type=_first(params, f"MediaContentType{index}")))
    return attachments


class TwilioAdapter(ProviderAdapter):
    name: ClassVar[str] = "twilio"
    channel: ClassVar[Channel] = Channel.TELEPHONY
    title: ClassVar[str] = "Twilio (Messaging and Voice)"
    credential_fields: ClassVar[tuple[str, ...]] = ("auth_token",)
    content_types: ClassVar[tuple[str, ...]] = ("application/x-www-form-urlencoded", "application/json")

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        signature = header(request, SIGNATURE_HEADER)
        if signature is None:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        token = secret_bytes(credentials, "auth_token")
        if token is None:
            raise SignatureError("the connection has no auth_token to verify with")

        url = request_url(request)
        body_hash = _body_hash_param(url)
        if body_hash is not None:
            # JSON (or any body) signed through the URL: the URL alone is signed and
            # the body is bound to it by its SHA-256.
            if not constant_time_equal(sha256_hex(request.body), body_hash.strip().lower()):
                raise SignatureError("body does not match the bodySHA256 the request was signed with")
            params: dict[str, list[str]] = {}
        elif request.content_type == "application/json":
            raise SignatureError("a JSON body must be signed through bodySHA256 in the URL; it is missing")
        else:
            try:
                params = request.form()
            except MalformedPayload:
                raise SignatureError(f"body is not form encoded, so {SIGNATURE_HEADER} cannot match it") from None

        for candidate in _url_variants(url):
            if constant_time_equal(compute_signature(token, candidate, params), signature):
                return
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the request")

    # ------------------------------------------------------------- delivery id
    def delivery_id(self, request: WebhookRequest) -> str:
        token = header(request, IDEMPOTENCY_HEADER)
        if token is not None and len(token) <= 256:
            return clean_str(token)
        try:
            params = self._params_for_id(request)
        except MalformedPayload:
            params = {}
        message_sid = _first(params, "MessageSid", "SmsMessageSid", "SmsSid")
        if message_sid:
            status = _first(params, "MessageStatus", "SmsStatus")
            return f"{message_sid}:{status}" if status else message_sid
        call_sid = _first(params, "CallSid")
        if call_sid:
            parts = [call_sid, _first(params, "CallStatus") or "", _first(params, "SequenceNumber") or ""]
            return ":".join(part for part in parts if part)
        return body_digest_id(request.body)

    def _params_for_id(self, request: WebhookRequest) -> dict[str, list[str]]:
        if request.content_type == "application/json":
            payload = load_json(request)
            if isinstance(payload, dict):
                params, _ = self._json_params(payload)
                return params
            return {}
        return request.form()

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        if request.content_type == "application/json":
            payload = load_json(request)
            items = payload if isinstance(payload, list) else [payload]
            if not items:
                raise MalformedPayload("the JSON array is empty")
            if not all(isinstance(item, dict) for item in items):
                raise MalformedPayload("expected a JSON object or an array of objects")
            return [self._from_json(item, index, request.body) for index, item in enumerate(items)]
        form = request.form()
        if not form:
            raise MalformedPayload("the form body has no parameters")
        params = {clean_str(name): [clean_str(value) for value in values] for name, values in form.items()}
        return [self._from_params(params, {}, fallback_id=body_digest_id(request.body))]

    def _json_params(self, item: dict[str, Any]) -> tuple[dict[str, list[str]], dict[str, Any]]:
        """Split a JSON object into Twilio-named scalar parameters and everything else."""
        params: dict[str, list[str]] = {}
        extra: dict[str, Any] = {}
        for key, value in item.items():
            text = value if isinstance(value, str) else scalar_str(value)
            if text is None:
                extra[key] = value
                continue
            lowered = key.lower()
            name = _CANONICAL.get(lowered)
            if name is None:
                media = re.fullmatch(r"mediaurl([0-9]{1,3})", lowered) or re.fullmatch(
                    r"mediacontenttype([0-9]{1,3})", lowered)
                if media:
                    name = ("MediaUrl" if lowered.startswith("mediaurl") else "MediaContentType") + media.group(1)
                else:
                    name = key
            if name in params:
                extra[key] = value
            else:
                params[name] = [text]
        return params, extra

    def _from_json(self, item: dict[str, Any], index: int, body: bytes) -> EventDraft:
        envelope: dict[str, Any] = {}
        fields = item
        if "specversion" in item and isinstance(item.get("data"), dict):
            # An Event Streams CloudEvent: the Twilio fields are in `data`.
            envelope = {key: value for key, value in item.items() if key != "data"}
            fields = item["data"]
        params, extra = self._json_params(fields)
        if envelope:
            extra = {**extra, "cloudevent": envelope}
        if _first(params, "MessageSid", "SmsMessageSid", "SmsSid", "CallSid"):
            event = self._from_params(params, extra, fallback_id=f"{body_digest_id(body)}:{index}")
            if event.occurred_at is None and envelope:
                occurred = from_iso(envelope.get("time"))
                if occurred is not None:
                    event = event.model_copy(update={"occurred_at": occurred})
            return event
        event_id = scalar_str(item.get("id")) or scalar_str(item.get("sid")) or scalar_str(item.get("Sid"))
        return draft(
            type="provider.notification",
            provider_event_id=event_id or f"json:{stable_hash(item)}",
            occurred_at=from_iso(item.get("time")) or from_iso(item.get("timestamp")),
            attributes={"kind": scalar_str(item.get("type")) or "twilio.json", "payload": item},
        )

    def _from_params(self, params: dict[str, list[str]], extra: dict[str, Any], *, fallback_id: str) -> EventDraft:
        message_sid = _first(params, "MessageSid", "SmsMessageSid", "SmsSid")
        call_sid = _first(params, "CallSid")
        if message_sid:
            return self._message(params, extra, message_sid)
        if call_sid:
            return self._call(params, extra, call_sid)
        return draft(
            type="provider.notification",
            provider_event_id=_first(params, "Sid", "EventSid") or fallback_id,
            occurred_at=_parse_timestamp(_first(params, "Timestamp")),
            attributes={"kind": "twilio.callback", **_attributes(params, set()), **extra},
        )

    def _message(self, params: dict[str, list[str]], extra: dict[str, Any], sid: str) -> EventDraft:
        status = _first(params, "MessageStatus", "SmsStatus")
        is_status = status is not None and status.lower() not in _INBOUND_MESSAGE_STATES
        sender, recipient = _first(params, "From"), _first(params, "To")
        account = _first(params, "AccountSid") or "-"
        if is_status:
            contact = _address_contact(recipient)
        else:
            contact = _address_contact(sender, name=_first(params, "ProfileName"), wa_id=_first(params, "WaId"))
        if sender and recipient:
            low, high = sorted((sender, recipient))
            conversation_key = f"twilio:{account}:{low}|{high}"
        elif sender or recipient:
            conversation_key = f"twilio:{account}:{sender or recipient}"
        else:
            conversation_key = f"twilio:message:{sid}"
        return draft(
            type="message.status_updated" if is_status else "message.received",
            provider_event_id=f"{sid}:{status}" if is_status else sid,
            occurred_at=_parse_timestamp(_first(params, "Timestamp")),
            contact=contact,
            conversation_key=conversation_key,
            text=params["Body"][0] if params.get("Body") else None,
            attachments=_attachments(params),
            attributes={**_attributes(params, {"Body"}), **extra},
        )

    def _call(self, params: dict[str, list[str]], extra: dict[str, Any], sid: str) -> EventDraft:
        status = _first(params, "CallStatus")
        event_type = f"call.{status.lower().replace('-', '_')}" if status else ""
        if event_type not in EVENT_TYPES:
            event_type = "provider.notification"
        direction = (_first(params, "Direction") or "inbound").lower()
        if direction.startswith("outbound"):
            contact = _address_contact(_first(params, "To"))
        else:
            contact = _address_contact(_first(params, "From"), name=_first(params, "CallerName"))
        event_id = ":".join(part for part in (sid, status, _first(params, "SequenceNumber")) if part)
        attributes = _attributes(params, set())
        if event_type == "provider.notification":
            attributes = {"kind": "twilio.call", **attributes}
        return draft(
            type=event_type,
            provider_event_id=event_id,
            occurred_at=_parse_timestamp(_first(params, "Timestamp")),
            contact=contact,
            conversation_key=f"twilio:call:{sid}",
            attributes={**attributes, **extra},
        )

    # ---------------------------------------------------------------- response
    def success_response(self, request: WebhookRequest) -> HttpResponse:
        return HttpResponse(status=200, body=EMPTY_TWIML, content_type="text/xml")
