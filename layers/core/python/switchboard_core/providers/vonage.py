"""Vonage (Nexmo): SMS API, Messages API and Voice API webhooks.

Contract (docs/providers/vonage.md has the sources):

* Messages / Voice signed webhooks (any request with a Bearer ``Authorization``; other
  requests are checked as SMS): ``Authorization: Bearer <JWT>``, HS256 with the
  account **signature secret** (the dashboard's signature-method setting does not apply:
  Messages always uses SHA-256). Claims checked: the HS256 signature (PyJWT, HS256 only),
  ``payload_hash`` = hex SHA-256 of the raw body (required: without it the body is not
  covered), ``iat`` within ``replay_window`` of now in both directions, and ``exp`` /
  ``nbf`` against ``now`` when present.
* SMS API signed webhooks: parameter ``sig`` (+ ``timestamp``, ``nonce``). The signed
  string is every other parameter, names sorted, as ``&name=value`` with ``&`` and ``=``
  inside values replaced by ``_``; ``sig`` = hex HMAC-{md5,sha1,sha256,sha512}(signature
  secret, string), or for the legacy ``md5hash`` method hex MD5(string + secret). The
  method is the connection's ``signature_method``. ``timestamp`` (unix seconds) is
  required and must be within ``replay_window`` of now.
* SMS arrives as POST form or POST JSON (the dashboard's "HTTP Method" setting). GET
  webhooks are not accepted: the hub's GET route is for handshakes, which publish nothing,
  so Vonage must be configured to POST.
* Success: 200 (Vonage accepts 200 or 204 and retries otherwise), ``{"ok": true}``; a live
  call's answers are NCCOs (`switchboard_core.calls.ncco`): the Voice answer webhook is held
  (talk, hold music, voicemail), and a connect leg the hub opened (its eventUrl carries
  ``?leg_of=<caller's uuid>``) that was not answered keeps the caller holding; that leg's other
  events get an empty 204. A GET (Vonage's default answer method) is 405: configure POST.

Normalisation:

* SMS inbound (``msisdn``, ``to``, ``messageId``, ``text``): ``message.received``;
  contact = ``msisdn`` through phones.delivered_e164; id ``messageId`` (each part of a
  concatenated SMS has its own messageId; ``concat-ref``/``concat-part``/``concat-total``
  stay in attributes). SMS delivery receipts (``messageId`` + ``status``):
  ``message.status_updated``, id ``{messageId}:{status}``. ``sig`` is never kept.
* Messages API (``message_uuid``): inbound (no ``status``) ``message.received`` with
  ``text``; status ``message.status_updated`` (contact = ``to``, the recipient);
  id ``message_uuid`` or ``{message_uuid}:{status}``; sms/mms/whatsapp/viber numbers
  through delivered_e164, and a handle for every non-SMS channel (messenger ids are not numbers).
* Voice events (``uuid`` + ``conversation_uuid`` + ``status``): ``call.<status>``
  (started -> initiated, answered -> in_progress, cancelled -> canceled, rejected -> failed,
  timeout/unanswered -> no_answer); id ``{uuid}:{status}``; conversation_key
  ``vonage:call:{conversation_uuid}``.
* Voice answer webhook (``uuid`` + ``conversation_uuid`` + ``to``, no ``status``, no
  ``dtmf``/``speech``/``payload``): ``call.ringing``, id ``{uuid}:answer`` (routing adds ``call``).
  A connect leg's events keep the eventUrl's ``leg_of`` (uuid-like values only) in attributes.
* Voice input results (``uuid`` + ``conversation_uuid`` + ``dtmf``, no ``status``: the ``input``
  action of a call the hub placed for a campaign): ``call.in_progress`` (the callee answered),
  ``dtmf.digits`` in attributes, id ``{uuid}:input``; answered with an NCCO saying goodbye.
* Voice recording callbacks (``recording_uuid`` + ``recording_url`` +
  ``conversation_uuid``): ``call.recording_completed``, id ``recording:{recording_uuid}``.
* Anything else is ``provider.notification`` with the payload in attributes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

import jwt

from switchboard_core.calls import ncco
from switchboard_core.calls.ncco import LEG_OF_PARAM, UNANSWERED_LEG_STATUSES
from switchboard_core.errors import HubError
from switchboard_core.events import Channel, Contact, EventDraft, SocialHandle
from switchboard_core.phones import delivered_e164
from switchboard_core.providers._common import (
    aware,
    body_digest_id,
    clean_str,
    draft,
    from_iso,
    from_seconds,
    header,
    load_json,
    refuse_invalid_models,
    request_url,
    scalar_str,
    secret_bytes,
    sha256_hex,
    stable_hash,
    text_or_none,
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

SIGNATURE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")
_HMAC_DIGESTS = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
FORM = "application/x-www-form-urlencoded"

_CALL_TYPES = {
    "started": "call.initiated",
    "ringing": "call.ringing",
    "answered": "call.in_progress",
    "completed": "call.completed",
    "busy": "call.busy",
    "cancelled": "call.canceled",
    "failed": "call.failed",
    "rejected": "call.failed",
    "timeout": "call.no_answer",
    "unanswered": "call.no_answer",
}
_PHONE_CHANNELS = {"sms", "mms", "whatsapp", "viber_service", "viber", "rcs"}
_CALL_UUID = re.compile(r"[0-9A-Za-z-]{1,100}")


def sms_signature(params: Mapping[str, str], secret: str | bytes, method: str) -> str:
    """Vonage's SMS `sig` over `params` (without `sig`): lower-case hex."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    signed = "".join(
        f"&{name}={value.replace('&', '_').replace('=', '_')}" for name, value in sorted(params.items())
    ).encode("utf-8")
    if method == "md5hash":
        return hashlib.md5(signed + key).hexdigest()
    return hmac.new(key, signed, _HMAC_DIGESTS[method]).hexdigest()


def _scalar_param(value: Any) -> str | None:
    """A JSON value as the text Vonage signs: strings as they are, integers in decimal."""
    if isinstance(value, str):
        return clean_str(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return scalar_str(value)
    return None


class VonageAdapter(ProviderAdapter):
    name: ClassVar[str] = "vonage"
    channel: ClassVar[Channel] = Channel.TELEPHONY
    title: ClassVar[str] = "Vonage (SMS, Messages and Voice APIs)"
    credential_fields: ClassVar[tuple[str, ...]] = ("signature_secret", "signature_method")
    content_types: ClassVar[tuple[str, ...]] = ("application/json", FORM)
    replay_window: ClassVar[timedelta | None] = timedelta(minutes=5)

    def validate_credentials(self, credentials: Mapping[str, Any]) -> dict[str, str]:
        checked = super().validate_credentials(credentials)
        if checked["signature_method"] not in SIGNATURE_METHODS:
            raise HubError(
                f"signature_method must be one of {', '.join(SIGNATURE_METHODS)}",
                status=400,
                code="invalid_credentials",
            )
        return checked

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        secret = secret_bytes(credentials, "signature_secret")
        if secret is None:
            raise SignatureError("the connection has no signature_secret to verify with")
        authorization = header(request, "Authorization")
        if authorization is not None and authorization.split(" ", 1)[0].lower() == "bearer":
            self._verify_jwt(request, authorization, secret, aware(now))
        else:
            self._verify_sms(request, credentials, secret, aware(now))

    def _verify_jwt(self, request: WebhookRequest, authorization: str, secret: bytes, now: datetime) -> None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise SignatureError("the Authorization header is not a Bearer token")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                claims = jwt.decode(
                    token.strip(),
                    secret,
                    algorithms=["HS256"],
                    options={
                        "verify_exp": False,
                        "verify_nbf": False,
                        "verify_iat": False,
                        "verify_aud": False,
                        "verify_iss": False,
                    },
                )
        except (jwt.PyJWTError, ValueError, TypeError, UnicodeError):
            raise SignatureError("the Authorization JWT is not signed with the signature secret") from None
        if not isinstance(claims, dict):
            raise SignatureError("the Authorization JWT has no claims")
        payload_hash = claims.get("payload_hash")
        if not isinstance(payload_hash, str):
            raise SignatureError("the Authorization JWT has no payload_hash claim")
        if not constant_time_equal(sha256_hex(request.body), clean_str(payload_hash).strip().lower()):
            raise SignatureError("body does not match the JWT's payload_hash")
        window = self.replay_window or timedelta(minutes=5)
        issued = self._claim_time(claims.get("iat"))
        if issued is None:
            raise SignatureError("the Authorization JWT has no numeric iat claim")
        if abs(now - issued) > window:
            raise SignatureError("the Authorization JWT is stale or from the future (iat)")
        if "exp" in claims:
            expires = self._claim_time(claims.get("exp"))
            if expires is None or now > expires + timedelta(seconds=30):
                raise SignatureError("the Authorization JWT has expired")
        if "nbf" in claims:
            not_before = self._claim_time(claims.get("nbf"))
            if not_before is None or now < not_before - timedelta(seconds=30):
                raise SignatureError("the Authorization JWT is not valid yet")

    @staticmethod
    def _claim_time(value: Any) -> datetime | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return from_seconds(value)

    def _sms_params(self, request: WebhookRequest) -> dict[str, Any]:
        """The SMS parameters as a flat dict (form: single values; JSON: the object)."""
        if request.content_type == "application/json":
            payload = load_json(request)
            if not isinstance(payload, dict):
                raise MalformedPayload("expected a JSON object")
            return payload
        form = request.form()
        return {clean_str(name): values[0] if len(values) == 1 else list(values) for name, values in form.items()}

    def _verify_sms(self, request: WebhookRequest, credentials: Credentials, secret: bytes, now: datetime) -> None:
        method = credentials.get("signature_method") if isinstance(credentials, Mapping) else None
        if method not in SIGNATURE_METHODS:
            raise SignatureError("the connection's signature_method is not one Vonage uses")
        try:
            params = self._sms_params(request)
        except MalformedPayload:
            raise SignatureError("no Authorization header, and the body has no readable sig parameter") from None
        given = params.get("sig")
        if not isinstance(given, str) or not given.strip():
            raise SignatureError("missing Authorization header or sig parameter")
        signed: dict[str, str] = {}
        for name, value in params.items():
            if name == "sig":
                continue
            text = _scalar_param(value)
            if text is None:
                raise SignatureError(f"parameter {name[:40]!r} is not a single value, so sig cannot cover it")
            signed[name] = text
        expected = sms_signature(signed, secret, method)
        if not constant_time_equal(expected, clean_str(given).strip().lower()):
            raise SignatureError("sig does not match the parameters")
        sent = from_seconds(signed.get("timestamp"))
        if sent is None:
            raise SignatureError("the signed parameters have no unix timestamp")
        if abs(now - sent) > (self.replay_window or timedelta(minutes=5)):
            raise SignatureError("the sig timestamp is stale or from the future")

    # ------------------------------------------------------------- delivery id
    def delivery_id(self, request: WebhookRequest) -> str:
        try:
            payload = self._sms_params(request)
        except MalformedPayload:
            return body_digest_id(request.body)
        identity = self._identity(payload)
        return identity[1] if identity else body_digest_id(request.body)

    def _identity(self, payload: Mapping[str, Any]) -> tuple[str, str] | None:
        """(kind, provider_event_id) of a payload, or None when it is none we know."""
        message_uuid = scalar_str(payload.get("message_uuid"))
        if message_uuid:
            status = scalar_str(payload.get("status"))
            return ("messages-status", f"{message_uuid}:{status}") if status else ("messages-inbound", message_uuid)
        call_uuid, conversation = scalar_str(payload.get("uuid")), scalar_str(payload.get("conversation_uuid"))
        status = scalar_str(payload.get("status"))
        recording = scalar_str(payload.get("recording_uuid"))
        if recording and conversation and scalar_str(payload.get("recording_url")):
            return "voice-recording", f"recording:{recording}"
        if call_uuid and conversation and not status and isinstance(payload.get("dtmf"), dict):
            return "voice-input", f"{call_uuid}:input"
        if call_uuid and conversation and not status and _is_answer_webhook(payload):
            return "voice-answer", f"{call_uuid}:answer"
        if call_uuid and conversation and status:
            return "voice", f"{call_uuid}:{status}"
        message_id = scalar_str(payload.get("messageId"))
        if message_id:
            if status and "text" not in payload:
                return "sms-receipt", f"{message_id}:{status}"
            return "sms-inbound", message_id
        return None

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        payload = self._sms_params(request)
        if not payload:
            raise MalformedPayload("the body has no parameters")
        attributes = {key: value for key, value in payload.items() if key != "sig"}
        identity = self._identity(payload)
        if identity is None:
            return [
                draft(
                    type="provider.notification",
                    provider_event_id=f"json:{stable_hash(attributes)}",
                    attributes={"kind": "vonage.callback", **attributes},
                )
            ]
        kind, event_id = identity
        if kind.startswith("sms"):
            return [self._sms(payload, attributes, kind, event_id)]
        if kind.startswith("messages"):
            return [self._messages(payload, attributes, kind, event_id)]
        if kind == "voice-recording":
            return [
                draft(
                    type="call.recording_completed",
                    provider_event_id=event_id,
                    occurred_at=from_iso(payload.get("end_time")) or from_iso(payload.get("timestamp")),
                    conversation_key=f"vonage:call:{scalar_str(payload.get('conversation_uuid'))}",
                    attributes=attributes,
                )
            ]
        if kind == "voice-answer":
            return [self._answer(payload, attributes, event_id)]
        if kind == "voice-input":  # a campaign call's keypad input: the call is answered, with its digits
            return [self._voice({**payload, "status": "answered", "direction": "outbound"}, attributes, event_id)]
        leg_of = _leg_of(request)
        if leg_of is not None:  # a leg the hub's connect opened: its events name the caller's call
            attributes[LEG_OF_PARAM] = leg_of
        return [self._voice(payload, attributes, event_id)]

    def _sms(self, payload: Mapping[str, Any], attributes: dict[str, Any], kind: str, event_id: str) -> EventDraft:
        msisdn, to = scalar_str(payload.get("msisdn")), scalar_str(payload.get("to"))
        inbound = kind == "sms-inbound"
        if inbound:
            attributes.pop("text", None)
        occurred = from_iso(payload.get("message-timestamp"))
        if occurred is None and not inbound:
            occurred = from_seconds(payload.get("timestamp"))
        return draft(
            type="message.received" if inbound else "message.status_updated",
            provider_event_id=event_id,
            occurred_at=occurred,
            contact=Contact(phone=delivered_e164(msisdn, international_digits=True)),
            conversation_key=self._pair_key("sms", msisdn, to, event_id),
            text=text_or_none(payload.get("text")) if inbound else None,
            attributes=attributes,
        )

    def _messages(self, payload: Mapping[str, Any], attributes: dict[str, Any], kind: str, event_id: str) -> EventDraft:
        channel = (scalar_str(payload.get("channel")) or "sms").lower()
        sender, recipient = self._address(payload.get("from")), self._address(payload.get("to"))
        inbound = kind == "messages-inbound"
        remote = sender if inbound else recipient
        handles = []
        if remote and channel not in ("sms", "mms"):
            handles.append(SocialHandle(platform=channel, id=remote))
        phone = delivered_e164(remote, international_digits=True) if remote and channel in _PHONE_CHANNELS else None
        name = None
        profile = payload.get("profile")
        if isinstance(profile, dict):
            name = scalar_str(profile.get("name"))
        if inbound:
            attributes.pop("text", None)
        return draft(
            type="message.received" if inbound else "message.status_updated",
            provider_event_id=event_id,
            occurred_at=from_iso(payload.get("timestamp")),
            contact=Contact(phone=phone, name=name, handles=handles),
            conversation_key=self._pair_key(channel, sender, recipient, event_id),
            text=text_or_none(payload.get("text")) if inbound else None,
            attributes=attributes,
        )

    def _voice(self, payload: Mapping[str, Any], attributes: dict[str, Any], event_id: str) -> EventDraft:
        status = (scalar_str(payload.get("status")) or "").lower()
        event_type = _CALL_TYPES.get(status, "provider.notification")
        if event_type == "provider.notification":
            attributes = {"kind": "vonage.voice", **attributes}
        direction = (scalar_str(payload.get("direction")) or "inbound").lower()
        remote = self._address(payload.get("to") if direction == "outbound" else payload.get("from"))
        return draft(
            type=event_type,
            provider_event_id=event_id,
            occurred_at=from_iso(payload.get("timestamp")),
            contact=Contact(phone=delivered_e164(remote, international_digits=True)),
            conversation_key=f"vonage:call:{scalar_str(payload.get('conversation_uuid'))}",
            attributes=attributes,
        )

    def _answer(self, payload: Mapping[str, Any], attributes: dict[str, Any], event_id: str) -> EventDraft:
        """The answer webhook of an inbound call: the call ringing in (as Twilio's), to be routed."""
        return draft(
            type="call.ringing",
            provider_event_id=event_id,
            occurred_at=from_iso(payload.get("timestamp")),
            contact=Contact(phone=delivered_e164(self._address(payload.get("from")), international_digits=True)),
            conversation_key=f"vonage:call:{scalar_str(payload.get('conversation_uuid'))}",
            attributes=attributes,
        )

    @staticmethod
    def _address(value: Any) -> str | None:
        """A Messages/Voice address: a string, or an object with number/id (Voice `to`)."""
        if isinstance(value, dict):
            value = value.get("number") or value.get("id") or value.get("user")
        return scalar_str(value)

    @staticmethod
    def _pair_key(channel: str, a: str | None, b: str | None, fallback: str) -> str:
        if a and b:
            low, high = sorted((a, b))
            return f"vonage:{channel}:{low}|{high}"
        return f"vonage:{channel}:{a or b or fallback}"

    # ---------------------------------------------------------------- answers
    def handshake(self, request: WebhookRequest, credentials: Sequence[Credentials]) -> HttpResponse:
        raise HubError(
            "vonage has no GET handshake, and a GET webhook cannot be stored: configure Vonage to POST "
            "(SMS settings: POST or POST-JSON; voice application: answer and event URL method POST)",
            status=405,
            code="method_not_allowed",
        )

    def success_response(self, request: WebhookRequest) -> HttpResponse:
        """200 ``{"ok": true}``, but a live call's answers are NCCOs: the answer webhook of an
        inbound call is held (`ncco.holding`, its voicemail posted back to this webhook), a connect
        leg the hub opened that was not answered keeps the caller holding (`ncco.still_holding`,
        run by Vonage since the connect is synchronous), and its other events get an empty 204
        (no NCCO, so the bridged call is left alone)."""
        try:
            payload = self._sms_params(request) if request.content_type == "application/json" else {}
        except MalformedPayload:
            payload = {}
        webhook = request_url(request).split("?", 1)[0]
        identity = self._identity(payload) if payload else None
        if identity is not None and identity[0] == "voice-answer":
            return HttpResponse.json(ncco.holding(webhook))
        if identity is not None and identity[0] == "voice-input":  # what follows the input: goodbye
            from switchboard_core.calls.twiml import GOODBYE_MESSAGE

            return HttpResponse.json(ncco.goodbye(GOODBYE_MESSAGE))
        if identity is not None and identity[0] == "voice" and _leg_of(request) is not None:
            if _voice_status(payload) in UNANSWERED_LEG_STATUSES:
                return HttpResponse.json(ncco.still_holding(webhook))
            return HttpResponse(status=204, body="", content_type="application/json")
        return HttpResponse.ok()


def _is_answer_webhook(payload: Mapping[str, Any]) -> bool:
    """Vonage's answer webhook (``to``, ``from``, ``uuid``, ``conversation_uuid``; no ``status``),
    not an ``input`` callback (``dtmf``/``speech``) or a ``notify`` callback (``payload``)."""
    return "to" in payload and not any(key in payload for key in ("dtmf", "speech", "payload"))


def _leg_of(request: WebhookRequest) -> str | None:
    """The caller's call uuid on a connect leg's eventUrl (``?leg_of=``), else None."""
    value = request.query_value(LEG_OF_PARAM)
    return value if value is not None and _CALL_UUID.fullmatch(value) else None


def _voice_status(payload: Mapping[str, Any]) -> str:
    return (scalar_str(payload.get("status")) or "").lower()
