"""Plivo: Messaging (SMS/MMS) and Voice callbacks.

Contract (docs/providers/plivo.md has the sources):

* Signature V3: ``X-Plivo-Signature-V3`` (one signature, or a comma-separated list: any
  entry may match) and ``X-Plivo-Signature-V3-Nonce``. For a POST the signed string is,
  as the official SDK builds it (plivo-python ``utils/signature_v3.py``):

      scheme://host[:port]/path
      + ("?" + the URL's query parameters sorted as "name=value" joined by "&"),
        present when the URL has a query or the body has parameters
      + "." when the URL has a query and the body has parameters
      + every POST parameter as name+value, names sorted (each value of a repeated name, sorted)
      + "." + nonce

  and the signature is base64(HMAC-SHA256(auth token, string)).
* V2 (``X-Plivo-Signature-V2``) signs only the URL without its query and the nonce, not the
  body: it is not accepted (a V2-only request is 401). ``v2_signature`` exists for the
  published vector and for documentation.
* No timestamp: replays are bounded only by the dedupe id.
* POST form bodies only: the hub's GET route is for handshakes, which publish nothing, so
  callbacks must be configured with method POST.
* Answer 200 with an empty Plivo XML ``<Response></Response>`` (valid for message URLs and
  ignored by status callbacks).

Normalisation:

* Messages (``MessageUUID``): with ``Text`` and no ``Status``, ``message.received``
  (contact = ``From`` through phones.delivered_e164; id ``MessageUUID``); with ``Status``,
  ``message.status_updated`` (contact = ``To``; id ``{MessageUUID}:{Status}``);
  conversation_key ``plivo:{A}|{B}`` of the two numbers sorted.
* Voice (``CallUUID``): ``call.<CallStatus>`` (in-progress -> in_progress, no-answer and
  timeout -> no_answer, cancel -> canceled); contact = ``From`` for inbound, ``To`` for
  outbound; id ``{CallUUID}:{CallStatus}[:{Event}]``; key ``plivo:call:{CallUUID}``.
* Everything else is ``provider.notification``; every parameter stays in attributes.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from datetime import datetime
from hashlib import sha256
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from switchboard_core.events import EVENT_TYPES, Channel, Contact, EventDraft
from switchboard_core.phones import delivered_e164
from switchboard_core.providers._common import (
    body_digest_id,
    clean_str,
    draft,
    first_value,
    from_iso,
    header,
    refuse_invalid_models,
    request_url,
    secret_bytes,
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

SIGNATURE_HEADER = "X-Plivo-Signature-V3"
NONCE_HEADER = "X-Plivo-Signature-V3-Nonce"
EMPTY_XML = '<?xml version="1.0" encoding="utf-8"?><Response></Response>'
FORM = "application/x-www-form-urlencoded"

_CALL_STATUS = {
    "in-progress": "call.in_progress",
    "no-answer": "call.no_answer",
    "timeout": "call.no_answer",
    "cancel": "call.canceled",
    "cancelled": "call.canceled",
}


def _sorted_query(query: Mapping[str, list[str]]) -> str:
    return "&".join(f"{name}={value}" for name in sorted(query) for value in sorted(query[name]))


def _sorted_params(params: Mapping[str, list[str]]) -> str:
    return "".join(f"{name}{value}" for name in sorted(params) for value in sorted(params[name]))


def v3_string(url: str, params: Mapping[str, list[str]], nonce: str) -> str:
    """The string Plivo V3 signs for a POST to `url` with form `params`."""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    query = _sorted_query(parse_qs(parts.query, keep_blank_values=True))
    if query or params:
        base += "?" + query
    if query and params:
        base += "."
    return f"{base}{_sorted_params(params)}.{nonce}"


def v3_signature(auth_token: str | bytes, url: str, params: Mapping[str, list[str]], nonce: str) -> str:
    key = auth_token.encode("utf-8") if isinstance(auth_token, str) else auth_token
    mac = hmac.new(key, clean_str(v3_string(url, params, nonce)).encode("utf-8"), sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def v2_signature(auth_token: str, url: str, nonce: str) -> str:
    """Legacy V2: base64(HMAC-SHA256(token, URL without query + nonce)). Not accepted (no body)."""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    mac = hmac.new(auth_token.encode("utf-8"), (base + nonce).encode("utf-8"), sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


class PlivoAdapter(ProviderAdapter):
    name: ClassVar[str] = "plivo"
    channel: ClassVar[Channel] = Channel.TELEPHONY
    title: ClassVar[str] = "Plivo (Messaging and Voice)"
    credential_fields: ClassVar[tuple[str, ...]] = ("auth_token",)
    content_types: ClassVar[tuple[str, ...]] = (FORM,)

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        signatures = header(request, SIGNATURE_HEADER)
        nonce = header(request, NONCE_HEADER)
        if signatures is None or nonce is None:
            missing = SIGNATURE_HEADER if signatures is None else NONCE_HEADER
            if header(request, "X-Plivo-Signature-V2") is not None and signatures is None:
                raise SignatureError(
                    f"missing {SIGNATURE_HEADER} header (V2 signatures do not cover the body and are not accepted)"
                )
            raise SignatureError(f"missing {missing} header")
        token = secret_bytes(credentials, "auth_token")
        if token is None:
            raise SignatureError("the connection has no auth_token to verify with")
        try:
            params = request.form()
        except MalformedPayload:
            raise SignatureError(f"body is not form encoded, so {SIGNATURE_HEADER} cannot match it") from None
        try:
            expected = v3_signature(token, request_url(request), params, nonce)
        except ValueError:
            raise SignatureError(f"the request URL cannot be read, so {SIGNATURE_HEADER} cannot match") from None
        if not any(constant_time_equal(expected, candidate.strip()) for candidate in signatures.split(",")):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the request")

    # ------------------------------------------------------------- delivery id
    def delivery_id(self, request: WebhookRequest) -> str:
        try:
            params = request.form()
        except MalformedPayload:
            return body_digest_id(request.body)
        return self._event_id(params) or body_digest_id(request.body)

    @staticmethod
    def _event_id(params: Mapping[str, list[str]]) -> str | None:
        message = first_value(params, "MessageUUID")
        if message:
            status = first_value(params, "Status")
            return f"{message}:{status}" if status else message
        call = first_value(params, "CallUUID")
        if call:
            parts = [call, first_value(params, "CallStatus") or "", first_value(params, "Event") or ""]
            return ":".join(part for part in parts if part)
        return None

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        form = request.form()
        if not form:
            raise MalformedPayload("the form body has no parameters")
        params = {clean_str(name): [clean_str(value) for value in values] for name, values in form.items()}
        attributes: dict[str, Any] = {
            name: values[0] if len(values) == 1 else values for name, values in params.items()
        }
        event_id = self._event_id(params)
        if first_value(params, "MessageUUID"):
            return [self._message(params, attributes, event_id or "")]
        if first_value(params, "CallUUID"):
            return [self._call(params, attributes, event_id or "")]
        return [
            draft(
                type="provider.notification",
                provider_event_id=body_digest_id(request.body),
                attributes={"kind": "plivo.callback", **attributes},
            )
        ]

    def _message(self, params: dict[str, list[str]], attributes: dict[str, Any], event_id: str) -> EventDraft:
        status = first_value(params, "Status")
        sender, recipient = first_value(params, "From"), first_value(params, "To")
        inbound = status is None
        text = params["Text"][0] if inbound and params.get("Text") else None
        if inbound:
            attributes.pop("Text", None)
        if sender and recipient:
            low, high = sorted((sender, recipient))
            key = f"plivo:{low}|{high}"
        else:
            key = f"plivo:{sender or recipient or event_id}"
        return draft(
            type="message.received" if inbound else "message.status_updated",
            provider_event_id=event_id,
            occurred_at=from_iso(first_value(params, "MessageTime")),
            contact=Contact(phone=delivered_e164(sender if inbound else recipient, international_digits=True)),
            conversation_key=key,
            text=text,
            attributes=attributes,
        )

    def _call(self, params: dict[str, list[str]], attributes: dict[str, Any], event_id: str) -> EventDraft:
        status = (first_value(params, "CallStatus") or "").lower()
        event_type = _CALL_STATUS.get(status, f"call.{status}")
        if event_type not in EVENT_TYPES or not status:
            event_type = "provider.notification"
            attributes = {"kind": "plivo.call", **attributes}
        direction = (first_value(params, "Direction") or "inbound").lower()
        remote = first_value(params, "To") if direction.startswith("outbound") else first_value(params, "From")
        call = first_value(params, "CallUUID")
        return draft(
            type=event_type,
            provider_event_id=event_id,
            occurred_at=from_iso(first_value(params, "EndTime", "AnswerTime", "StartTime")),
            contact=Contact(
                phone=delivered_e164(remote, international_digits=True), name=first_value(params, "CallerName")
            ),
            conversation_key=f"plivo:call:{call}",
            attributes=attributes,
        )

    # ---------------------------------------------------------------- response
    def success_response(self, request: WebhookRequest) -> HttpResponse:
        return HttpResponse(status=200, body=EMPTY_XML, content_type="application/xml")
