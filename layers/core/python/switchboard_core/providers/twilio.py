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
* No timestamp: replays are bounded only by deduplication (``delivery_id``), whose key is
  derived from the signed parameters only (``I-Twilio-Idempotency-Token`` is unsigned).
* Answer 200 with empty TwiML, which tells Twilio to do nothing for an inbound message
  and is accepted for status callbacks (they ignore the body). Two answers hold a live
  call instead (``switchboard_core.calls.twiml.holding``: a short message, then hold
  music, ``TWILIO_HOLD_MUSIC_URL`` or Twilio's own, played a few times before a voicemail
  ``<Record>`` back to this webhook, so a call nobody routes cannot hold forever): an inbound call
  (``CallStatus=ringing``, ``Direction=inbound``), since routing runs after the
  acknowledgement and the calls function then redirects the call; and a Dial action
  callback saying the responder did not answer (``DialCallStatus`` no-answer, busy,
  failed), while the next one is dialled. Empty TwiML there would hang up on the caller.

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
* Whisper requests (a ``<Number url>`` the hub's ``<Dial>`` gave, ``?whisper=<text>`` in the
  signed URL, fetched when the responder picks up): ``provider.notification`` kind
  ``twilio.whisper`` (the responder's leg is not a customer's call to route), answered with
  ``<Say>`` of the text, then the caller is connected.
* Gather results of the calls the hub places for campaigns (the ``<Gather action>`` URL carries
  ``?outbound=gather``): ``call.in_progress`` with ``Digits`` (empty: none pressed) and
  ``outbound: gather``, id ``{CallSid}:gather`` (no SequenceNumber: apart from the status
  callbacks), answered with a short goodbye and ``<Hangup>``, never the holding TwiML.
* Dial action callbacks (``DialCallStatus``, posted to the ``action`` URL of the hub's
  ``<Dial>``): ``call.dial_ended``, id ``{CallSid}:dial:{DialCallSid or DialCallStatus}``
  (the parent call stays in-progress across several dials, so its status cannot tell
  them apart).
* Voice inbound call webhooks (the number's "A call comes in" URL) arrive with
  ``CallStatus=ringing`` and ``Direction=inbound``: they are ``call.ringing`` (no separate
  "call.received" type: the ringing state is what the webhook reports). Caller location
  (``FromCity``/``FromState``/``FromZip``/``FromCountry``...) stays in attributes.
* Recording status callbacks (``RecordingSid`` + ``RecordingStatus``):
  ``call.recording_completed`` (completed), ``call.recording_failed`` (failed/absent), else
  ``provider.notification``; id ``{RecordingSid}:{RecordingStatus}``, conversation_key of
  the call.
* Transcription callbacks (``TranscriptionSid``): ``call.transcribed`` with the
  ``TranscriptionText`` as text when ``TranscriptionStatus`` is completed, else
  ``provider.notification``; id ``{TranscriptionSid}:{TranscriptionStatus}``.
* Conversations webhooks (``EventType`` + ``ConversationSid``): ``onMessageAdded`` is
  ``message.received`` (text = ``Body``, contact from ``Author``, conversation_key
  ``twilio:conversation:{ConversationSid}``); ``onDeliveryUpdated`` is
  ``message.status_updated``; other EventTypes are ``provider.notification``. Id
  ``{ConversationSid}:{EventType}:{MessageSid or Sid}`` (+ ``:{Status}`` for delivery).
* Phone numbers go through ``phones.delivered_e164``; ``client:`` and ``sip:`` identities are
  not phone numbers: they become a contact handle (platform ``twilio_client`` / ``sip``)
  and the raw address stays in attributes.
* Anything else (or a JSON body that does not match those fields, even
  case-insensitively or inside a CloudEvent ``data``) becomes ``provider.notification``
  with the payload in attributes. Parameters that have no place in the model are kept
  in attributes; nothing is dropped.
"""

from __future__ import annotations

import base64
import functools
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from hashlib import sha1
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from switchboard_core.events import (
    EVENT_TYPES,
    Attachment,
    Channel,
    Contact,
    EventDraft,
    SocialHandle,
)
from switchboard_core.phones import delivered_e164
from switchboard_core.providers._common import (
    body_digest_id,
    clean_str,
    draft,
    first_value,
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
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

_DEFAULT_PORTS = {"https": 443, "http": 80}
_MEDIA_URL = re.compile(r"^MediaUrl([0-9]{1,3})$")
_MEDIA_TYPE = re.compile(r"^MediaContentType([0-9]{1,3})$")
_INBOUND_MESSAGE_STATES = {"received", "receiving"}
_CHANNEL_PREFIX = re.compile(r"^([a-z][a-z0-9-]{0,15}):(.*)$")
_CONVERSATIONS_PREFIX = "com.twilio.conversations."
_CONVERSATIONS_EVENTS = {
    "message.added": "onMessageAdded",
    "message.updated": "onMessageUpdated",
    "message.removed": "onMessageRemoved",
    "conversation.added": "onConversationAdded",
    "conversation.updated": "onConversationUpdated",
    "conversation.removed": "onConversationRemoved",
    "participant.added": "onParticipantAdded",
    "participant.updated": "onParticipantUpdated",
    "participant.removed": "onParticipantRemoved",
}
_IDENTITY_PLATFORMS = {"client": "twilio_client", "sip": "sip", "sips": "sip"}
_RECORDING_TYPES = {
    "completed": "call.recording_completed",
    "failed": "call.recording_failed",
    "absent": "call.recording_failed",
}

# Case-insensitive names under which JSON payloads (e.g. Event Streams CloudEvent
# data, which is camelCase) carry the same fields as the form webhooks.
_CANONICAL = {
    name.lower(): name
    for name in (
        "MessageSid",
        "SmsSid",
        "SmsMessageSid",
        "MessageStatus",
        "SmsStatus",
        "AccountSid",
        "From",
        "To",
        "Body",
        "NumMedia",
        "ProfileName",
        "WaId",
        "CallSid",
        "CallStatus",
        "SequenceNumber",
        "Direction",
        "CallerName",
        "Timestamp",
        "ErrorCode",
        "ErrorMessage",
        "MessagingServiceSid",
        "CallDuration",
        "ApiVersion",
        "RecordingSid",
        "RecordingStatus",
        "RecordingUrl",
        "RecordingDuration",
        "TranscriptionSid",
        "TranscriptionStatus",
        "TranscriptionText",
        "EventType",
        "ConversationSid",
        "Author",
        "Index",
        "Source",
    )
}


# A connection's webhook URL is the same on every request: what is read from it (the
# variants to verify against, bodySHA256, whisper) is worked out once per distinct URL.
@functools.lru_cache(maxsize=512)
def _url_variants(url: str) -> tuple[str, ...]:
    return tuple(_variants_of(url))


def _variants_of(url: str) -> list[str]:
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
    rest = url[len(prefix) :]
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
    given = params or {}
    pieces = [url]
    for name in sorted(given):  # a mapping's keys are distinct already
        values = given[name]
        if len(values) == 1:  # nearly always: nothing to sort
            pieces.append(name + values[0])
            continue
        for value in sorted(set(values)):
            pieces.append(name + value)
    key = auth_token.encode("utf-8") if isinstance(auth_token, str) else auth_token
    mac = hmac.new(key, clean_str("".join(pieces)).encode("utf-8"), sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


@functools.lru_cache(maxsize=512)
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
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _address_contact(address: str | None, *, name: str | None = None, wa_id: str | None = None) -> Contact:
    """A contact from a Twilio address: '+14155550100', 'whatsapp:+14155550100', 'client:alice'."""
    if not address:
        return Contact(name=name)
    match = _CHANNEL_PREFIX.match(address)
    if match and not address.startswith("+"):
        platform, rest = match.group(1), match.group(2)
        handles = []
        if platform in ("whatsapp", "messenger", "rcs"):
            handles.append(SocialHandle(platform=platform, id=wa_id or rest or None, handle=name))
            return Contact(phone=delivered_e164(rest), name=name, handles=handles)
        if platform in _IDENTITY_PLATFORMS and rest:
            # Twilio Client / SIP identities are not phone numbers.
            handles.append(SocialHandle(platform=_IDENTITY_PLATFORMS[platform], id=rest))
        return Contact(name=name, handles=handles)
    return Contact(phone=delivered_e164(address), name=name)


def _author_contact(author: str | None) -> Contact:
    """A Conversations ``Author``: a phone number (SMS participant), a ``whatsapp:``
    address, or a chat identity."""
    if not author:
        return Contact()
    if author.startswith("+") or _CHANNEL_PREFIX.match(author):
        contact = _address_contact(author)
        if contact.phone or contact.handles:
            return contact
    return Contact(handles=[SocialHandle(platform="twilio_conversations", id=author)])


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
        url = first_value(params, f"MediaUrl{index}")
        if url is None:
            continue
        attachments.append(Attachment(url=url, content_type=first_value(params, f"MediaContentType{index}")))
    return attachments


def _special_id(params: Mapping[str, list[str]]) -> str | None:
    """The id of a Conversations, transcription or recording callback, else None."""
    event_type, conversation = first_value(params, "EventType"), first_value(params, "ConversationSid")
    if event_type and conversation:
        item = first_value(params, "MessageSid", "ParticipantSid", "Sid") or ""
        parts = [conversation, event_type, item]
        if event_type == "onDeliveryUpdated":
            parts.append(first_value(params, "DeliveryReceiptSid") or "")
            parts.append(first_value(params, "Status") or "")
        return ":".join(part for part in parts if part)
    transcription = first_value(params, "TranscriptionSid")
    if transcription:
        status = first_value(params, "TranscriptionStatus")
        return f"{transcription}:{status}" if status else transcription
    recording = first_value(params, "RecordingSid")
    if recording:
        status = first_value(params, "RecordingStatus")
        return f"{recording}:{status}" if status else recording
    return None


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
        # Only signed material: the parameters (or the JSON body bound by bodySHA256).
        # I-Twilio-Idempotency-Token is not covered by X-Twilio-Signature, so a replay could
        # carry a fresh token each time; it stays in the raw request as a hint only.
        try:
            params = self._params_for_id(request)
        except MalformedPayload:
            params = {}
        special = _special_id(params)
        if special:
            return special
        message_sid = first_value(params, "MessageSid", "SmsMessageSid", "SmsSid")
        if message_sid:
            status = first_value(params, "MessageStatus", "SmsStatus")
            return f"{message_sid}:{status}" if status else message_sid
        call_sid = first_value(params, "CallSid")
        if call_sid and _whisper_text(request) is not None:
            return f"{call_sid}:whisper"
        if call_sid and _gather_result(request, params):
            return f"{call_sid}:gather"
        if call_sid and first_value(params, "DialCallStatus"):
            return _dial_id(params, call_sid)
        if call_sid:
            parts = [call_sid, first_value(params, "CallStatus") or "", first_value(params, "SequenceNumber") or ""]
            return ":".join(part for part in parts if part)
        return body_digest_id(request.body)

    def _params_for_id(self, request: WebhookRequest) -> dict[str, list[str]]:
        # Chosen by how the body was signed, not by the unsigned Content-Type: a body bound
        # through bodySHA256 is read as JSON (when it is), form parameters are signed as such.
        if _body_hash_param(request_url(request)) is not None:
            try:
                payload = load_json(request)
            except MalformedPayload:
                return request.form()
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
        whisper = _whisper_text(request)
        call_sid = first_value(params, "CallSid")
        if whisper is not None and call_sid:
            return [
                draft(
                    type="provider.notification",
                    provider_event_id=f"{call_sid}:whisper",
                    conversation_key=f"twilio:call:{first_value(params, 'ParentCallSid') or call_sid}",
                    attributes={"kind": "twilio.whisper", "whisper": whisper, **_attributes(params, set())},
                )
            ]
        event = self._from_params(params, {}, fallback_id=body_digest_id(request.body))
        if call_sid and _gather_result(request, params):
            # A campaign call's <Gather> result: one per call, apart from its status callbacks.
            event = event.model_copy(
                update={
                    "provider_event_id": f"{call_sid}:gather",
                    "attributes": {**event.attributes, "outbound": "gather"},
                }
            )
        return [event]

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
                    r"mediacontenttype([0-9]{1,3})", lowered
                )
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
            ce_type = scalar_str(envelope.get("type")) or ""
            if ce_type.startswith(_CONVERSATIONS_PREFIX) and "EventType" not in params:
                # Event Streams Conversations events carry the webhook fields, not EventType.
                params["EventType"] = [_CONVERSATIONS_EVENTS.get(ce_type[len(_CONVERSATIONS_PREFIX) :], ce_type)]
                if "MessageBody" in params and "Body" not in params:
                    params["Body"] = params.pop("MessageBody")
        if first_value(
            params, "MessageSid", "SmsMessageSid", "SmsSid", "CallSid", "RecordingSid", "TranscriptionSid"
        ) or (first_value(params, "EventType") and first_value(params, "ConversationSid")):
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
        if first_value(params, "EventType") and first_value(params, "ConversationSid"):
            return self._conversation(params, extra)
        if first_value(params, "TranscriptionSid"):
            return self._transcription(params, extra)
        if first_value(params, "RecordingSid"):
            return self._recording(params, extra)
        message_sid = first_value(params, "MessageSid", "SmsMessageSid", "SmsSid")
        call_sid = first_value(params, "CallSid")
        if message_sid:
            return self._message(params, extra, message_sid)
        if call_sid:
            return self._call(params, extra, call_sid)
        return draft(
            type="provider.notification",
            provider_event_id=first_value(params, "Sid", "EventSid") or fallback_id,
            occurred_at=_parse_timestamp(first_value(params, "Timestamp")),
            attributes={"kind": "twilio.callback", **_attributes(params, set()), **extra},
        )

    def _message(self, params: dict[str, list[str]], extra: dict[str, Any], sid: str) -> EventDraft:
        status = first_value(params, "MessageStatus", "SmsStatus")
        is_status = status is not None and status.lower() not in _INBOUND_MESSAGE_STATES
        sender, recipient = first_value(params, "From"), first_value(params, "To")
        account = first_value(params, "AccountSid") or "-"
        if is_status:
            contact = _address_contact(recipient)
        else:
            contact = _address_contact(
                sender, name=first_value(params, "ProfileName"), wa_id=first_value(params, "WaId")
            )
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
            occurred_at=_parse_timestamp(first_value(params, "Timestamp")),
            contact=contact,
            conversation_key=conversation_key,
            text=params["Body"][0] if params.get("Body") else None,
            attachments=_attachments(params),
            attributes={**_attributes(params, {"Body"}), **extra},
        )

    def _call(self, params: dict[str, list[str]], extra: dict[str, Any], sid: str) -> EventDraft:
        status = first_value(params, "CallStatus")
        event_type = f"call.{status.lower().replace('-', '_')}" if status else ""
        if event_type not in EVENT_TYPES:
            event_type = "provider.notification"
        if first_value(params, "DialCallStatus"):
            event_type = "call.dial_ended"
        direction = (first_value(params, "Direction") or "inbound").lower()
        if direction.startswith("outbound"):
            contact = _address_contact(first_value(params, "To"))
        else:
            contact = _address_contact(first_value(params, "From"), name=first_value(params, "CallerName"))
        event_id = ":".join(part for part in (sid, status, first_value(params, "SequenceNumber")) if part)
        if event_type == "call.dial_ended":
            event_id = _dial_id(params, sid)
        attributes = _attributes(params, set())
        if event_type == "provider.notification":
            attributes = {"kind": "twilio.call", **attributes}
        return draft(
            type=event_type,
            provider_event_id=event_id,
            occurred_at=_parse_timestamp(first_value(params, "Timestamp")),
            contact=contact,
            conversation_key=f"twilio:call:{sid}",
            attributes={**attributes, **extra},
        )

    def _conversation(self, params: dict[str, list[str]], extra: dict[str, Any]) -> EventDraft:
        event_type = first_value(params, "EventType") or ""
        conversation = first_value(params, "ConversationSid") or ""
        if event_type == "onMessageAdded":
            kind = "message.received"
        elif event_type == "onDeliveryUpdated":
            kind = "message.status_updated"
        else:
            kind = "provider.notification"
        attributes = _attributes(params, {"Body"} if kind == "message.received" else set())
        if kind == "provider.notification":
            attributes = {"kind": f"twilio.conversations.{event_type}", **attributes}
        return draft(
            type=kind,
            provider_event_id=_special_id(params) or conversation,
            occurred_at=from_iso(first_value(params, "DateCreated"))
            or _parse_timestamp(first_value(params, "DateCreated")),
            contact=_author_contact(first_value(params, "Author")),
            conversation_key=f"twilio:conversation:{conversation}",
            text=params["Body"][0] if kind == "message.received" and params.get("Body") else None,
            attributes={**attributes, **extra},
        )

    def _call_contact(self, params: dict[str, list[str]]) -> Contact:
        direction = (first_value(params, "Direction") or "inbound").lower()
        if direction.startswith("outbound"):
            return _address_contact(first_value(params, "To"))
        return _address_contact(first_value(params, "From"), name=first_value(params, "CallerName"))

    def _call_key(self, params: dict[str, list[str]], fallback: str) -> str:
        call_sid = first_value(params, "CallSid")
        return f"twilio:call:{call_sid}" if call_sid else f"twilio:recording:{fallback}"

    def _recording(self, params: dict[str, list[str]], extra: dict[str, Any]) -> EventDraft:
        sid = first_value(params, "RecordingSid") or ""
        status = (first_value(params, "RecordingStatus") or "").lower()
        kind = _RECORDING_TYPES.get(status, "provider.notification")
        attributes = _attributes(params, set())
        if kind == "provider.notification":
            attributes = {"kind": "twilio.recording", **attributes}
        return draft(
            type=kind,
            provider_event_id=_special_id(params) or sid,
            occurred_at=_parse_timestamp(first_value(params, "RecordingStartTime")),
            contact=self._call_contact(params),
            conversation_key=self._call_key(params, sid),
            attributes={**attributes, **extra},
        )

    def _transcription(self, params: dict[str, list[str]], extra: dict[str, Any]) -> EventDraft:
        sid = first_value(params, "TranscriptionSid") or ""
        status = (first_value(params, "TranscriptionStatus") or "").lower()
        kind = "call.transcribed" if status == "completed" else "provider.notification"
        attributes = _attributes(params, {"TranscriptionText"} if kind == "call.transcribed" else set())
        if kind == "provider.notification":
            attributes = {"kind": "twilio.transcription", **attributes}
        return draft(
            type=kind,
            provider_event_id=_special_id(params) or sid,
            contact=self._call_contact(params),
            conversation_key=self._call_key(params, first_value(params, "RecordingSid") or sid),
            text=params["TranscriptionText"][0]
            if kind == "call.transcribed" and params.get("TranscriptionText")
            else None,
            attributes={**attributes, **extra},
        )

    # ---------------------------------------------------------------- response
    def success_response(self, request: WebhookRequest) -> HttpResponse:
        from switchboard_core.calls import twiml

        if request.content_type != "application/json":
            try:
                params = request.form()
            except MalformedPayload:
                params = {}
            whisper = _whisper_text(request)
            if whisper is not None and first_value(params, "CallSid"):
                return HttpResponse(status=200, body=twiml.whisper(whisper), content_type="text/xml")
            if _gather_result(request, params):  # a campaign call's keypad input: thanks, then hang up
                return HttpResponse(status=200, body=twiml.goodbye(), content_type="text/xml")
            if _holds_the_caller(params):
                message = twiml.STILL_HOLDING_MESSAGE if "DialCallStatus" in params else twiml.HOLDING_MESSAGE
                # The voicemail comes back to this same webhook (its URL as Twilio called it, without a query).
                webhook = request_url(request).split("?", 1)[0]
                body = twiml.holding(message, voicemail_action=webhook)
                return HttpResponse(status=200, body=body, content_type="text/xml")
        return HttpResponse(status=200, body=EMPTY_TWIML, content_type="text/xml")


_UNANSWERED_DIAL = {"no-answer", "busy", "failed"}


def _whisper_text(request: WebhookRequest) -> str | None:
    """The whisper a signed ``<Number url>`` carries (``?whisper=``), else None."""
    return _whisper_of(request_url(request))


@functools.lru_cache(maxsize=512)
def _whisper_of(url: str) -> str | None:
    try:
        query = urlsplit(url).query
    except ValueError:
        return None
    values = parse_qs(query).get("whisper")
    return values[0].strip() or None if values else None


def _gather_result(request: WebhookRequest, params: Mapping[str, list[str]]) -> bool:
    """The <Gather> action of a call the hub placed (its signed URL carries ``?outbound=gather``)."""
    from switchboard_core.calls.twiml import OUTBOUND_GATHER, OUTBOUND_PARAM

    return request.query_value(OUTBOUND_PARAM) == OUTBOUND_GATHER and bool(first_value(params, "CallSid"))


def _holds_the_caller(params: Mapping[str, list[str]]) -> bool:
    """An inbound call ringing in, or a responder who did not pick up: the caller waits."""
    if not first_value(params, "CallSid") or first_value(params, "RecordingSid", "TranscriptionSid"):
        return False
    dial_status = first_value(params, "DialCallStatus")
    if dial_status is not None:
        return dial_status.lower() in _UNANSWERED_DIAL
    status = (first_value(params, "CallStatus") or "").lower()
    direction = (first_value(params, "Direction") or "").lower()
    return status == "ringing" and direction == "inbound"


def _dial_id(params: Mapping[str, list[str]], call_sid: str) -> str:
    return f"{call_sid}:dial:{first_value(params, 'DialCallSid') or first_value(params, 'DialCallStatus') or ''}"
