"""HubSpot: Webhooks API (CRM object subscriptions), signatures v3, v2 and v1.

Contract (docs/providers.md has the sources):

* ``X-HubSpot-Signature-v3`` = base64(HMAC-SHA256(app client secret,
  method + URI + raw body + X-HubSpot-Request-Timestamp)), UTF-8.
* ``X-HubSpot-Request-Timestamp`` is epoch **milliseconds**; HubSpot says to reject a
  request older than 5 minutes; we also refuse one more than 5 minutes in the future.
* The URI is the full request URL with these percent-escapes decoded first (HubSpot's
  table; the ``?`` that starts the query is literal anyway):
  ``%3A : %2F / %3F ? %40 @ %21 ! %24 $ %27 ' %28 ( %29 ) %2A * %2C , %3B ;``.
  The URL exactly as received is tried as well (that is what the hubspot-api-client
  SDK signs), which makes no difference for URLs without those escapes.
* v1/v2: ``X-HubSpot-Signature`` = hex(SHA-256(client secret + raw body)) for
  ``X-HubSpot-Signature-Version: v1``, hex(SHA-256(client secret + method + URI + raw
  body)) for ``v2`` (no timestamp, so no replay window: deduplication bounds replays).
  A request that carries a v3 signature is judged by it alone (no downgrade to v1/v2);
  without v3, the version header must say v1 or v2.
* Delivery id: HubSpot sends none, and a retry changes ``attemptNumber`` inside the
  body, so it is derived from the batch's sorted ``portalId:eventId`` pairs (stable
  across retries); a body without them falls back to the body digest.

Normalisation: the body is a JSON array (a batch); one event per item, keyed by
``eventId``. ``{object}.creation|propertyChange|deletion`` map to
``{object}.created|updated|deleted`` for contact, company, deal and ticket
(``privacyDeletion`` counts as deleted); everything else (merge, restore,
associationChange, other object types, conversations) is ``crm.object_changed`` with
HubSpot's ``subscriptionType`` in attributes. The generic ``object.*`` subscriptions
are recognised through ``objectTypeId`` (0-1 contact, 0-2 company, 0-3 deal, 0-5 ticket).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any, ClassVar

from switchboard_core.events import Channel, Contact, EventDraft
from switchboard_core.providers._common import (
    aware,
    body_digest_id,
    clean_str,
    draft,
    from_millis,
    header,
    load_json,
    refuse_invalid_models,
    request_url,
    scalar_str,
    secret_bytes,
    typed_phone,
)
from switchboard_core.providers.base import (
    Credentials,
    MalformedPayload,
    ProviderAdapter,
    SignatureError,
    WebhookRequest,
    constant_time_equal,
)

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
LEGACY_SIGNATURE_HEADER = "X-HubSpot-Signature"
VERSION_HEADER = "X-HubSpot-Signature-Version"

# HubSpot's decode table for the v3 source string.
_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_ESCAPE = re.compile("|".join(_DECODE), re.IGNORECASE)

_ACTIONS = {
    "creation": "created",
    "propertyChange": "updated",
    "deletion": "deleted",
    "privacyDeletion": "deleted",
}
_TYPED_OBJECTS = ("contact", "company", "deal", "ticket")
_OBJECT_TYPE_IDS = {"0-1": "contact", "0-2": "company", "0-3": "deal", "0-5": "ticket"}
_EMAIL_PROPERTIES = {"email", "hs_email", "work_email"}
_PHONE_PROPERTIES = {"phone", "mobilephone", "hs_whatsapp_phone_number"}


def decode_uri(uri: str) -> str:
    """`uri` with the percent-escapes of HubSpot's v3 table decoded."""
    return _ESCAPE.sub(lambda match: _DECODE[match.group(0).upper()], uri)


def compute_signature(client_secret: str | bytes, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(secret, method + uri + body + timestamp)) over the raw body bytes."""
    key = client_secret.encode("utf-8") if isinstance(client_secret, str) else client_secret
    message = method.encode("utf-8") + uri.encode("utf-8") + body + timestamp.encode("utf-8")
    return base64.b64encode(hmac.new(key, message, sha256).digest()).decode("ascii")


def compute_legacy_signature(
    client_secret: str | bytes, version: str, body: bytes, method: str = "POST", uri: str = ""
) -> str:
    """v1: hex(SHA-256(secret + body)); v2: hex(SHA-256(secret + method + uri + body))."""
    key = client_secret.encode("utf-8") if isinstance(client_secret, str) else client_secret
    if version == "v1":
        source = key + body
    elif version == "v2":
        source = key + method.encode("utf-8") + uri.encode("utf-8") + body
    else:
        raise ValueError(f"unknown HubSpot signature version {version!r}")
    return hashlib.sha256(source).hexdigest()


class HubSpotAdapter(ProviderAdapter):
    name: ClassVar[str] = "hubspot"
    channel: ClassVar[Channel] = Channel.CRM
    title: ClassVar[str] = "HubSpot (Webhooks API)"
    credential_fields: ClassVar[tuple[str, ...]] = ("client_secret",)
    replay_window: ClassVar[timedelta | None] = timedelta(minutes=5)

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        signature = header(request, SIGNATURE_HEADER)
        if signature is None:
            if header(request, LEGACY_SIGNATURE_HEADER) is not None:
                self._verify_legacy(request, credentials)
                return
            raise SignatureError(
                f"missing {SIGNATURE_HEADER} header (or {LEGACY_SIGNATURE_HEADER} with {VERSION_HEADER} v1/v2)"
            )
        timestamp = header(request, TIMESTAMP_HEADER)
        if timestamp is None:
            raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 16:
            raise SignatureError(f"{TIMESTAMP_HEADER} must be epoch milliseconds")
        secret = secret_bytes(credentials, "client_secret")
        if secret is None:
            raise SignatureError("the connection has no client_secret to verify with")

        assert self.replay_window is not None
        window_ms = int(self.replay_window.total_seconds() * 1000)
        now_ms = int(aware(now).timestamp() * 1000)
        age_ms = now_ms - int(timestamp)
        if age_ms > window_ms:
            raise SignatureError(f"{TIMESTAMP_HEADER} is older than {self.replay_window}")
        if age_ms < -window_ms:
            raise SignatureError(f"{TIMESTAMP_HEADER} is more than {self.replay_window} in the future")

        method = clean_str(request.method or "").upper()
        url = request_url(request)
        candidates = [decode_uri(url)]
        if candidates[0] != url:
            candidates.append(url)
        for uri in candidates:
            if constant_time_equal(compute_signature(secret, method, uri, request.body, timestamp), signature):
                return
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the request")

    def _verify_legacy(self, request: WebhookRequest, credentials: Credentials) -> None:
        signature = header(request, LEGACY_SIGNATURE_HEADER) or ""
        version = (header(request, VERSION_HEADER) or "").lower()
        if version not in ("v1", "v2"):
            raise SignatureError(f"{VERSION_HEADER} must be v1 or v2 for {LEGACY_SIGNATURE_HEADER}")
        secret = secret_bytes(credentials, "client_secret")
        if secret is None:
            raise SignatureError("the connection has no client_secret to verify with")
        given = signature.lower()
        if version == "v1":
            expected = [compute_legacy_signature(secret, "v1", request.body)]
        else:
            method = clean_str(request.method or "").upper()
            url = request_url(request)
            uris = [url] if decode_uri(url) == url else [url, decode_uri(url)]
            expected = [compute_legacy_signature(secret, "v2", request.body, method, uri) for uri in uris]
        if not any(constant_time_equal(candidate, given) for candidate in expected):
            raise SignatureError(f"{LEGACY_SIGNATURE_HEADER} ({version}) does not match the request")

    def delivery_id(self, request: WebhookRequest) -> str:
        # HubSpot sends no delivery id, and a retry carries another `attemptNumber` in
        # the body: the batch's event ids are what stays the same across retries.
        try:
            payload = load_json(request)
        except MalformedPayload:
            return body_digest_id(request.body)
        pairs = []
        if isinstance(payload, list):
            for item in payload:
                event_id = scalar_str(item.get("eventId")) if isinstance(item, dict) else None
                if event_id is None:
                    return body_digest_id(request.body)
                pairs.append(f"{scalar_str(item.get('portalId')) or '-'}:{event_id}")
        if not pairs:
            return body_digest_id(request.body)
        joined = ",".join(sorted(set(pairs)))
        if len(joined) <= 200:
            return "events:" + joined
        return "events-sha256:" + hashlib.sha256(joined.encode("utf-8")).hexdigest()

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        payload = load_json(request)
        if not isinstance(payload, list):
            raise MalformedPayload("a HubSpot webhook body must be a JSON array of events")
        if not payload:
            raise MalformedPayload("the event array is empty")
        events = []
        for index, item in enumerate(payload):
            if not isinstance(item, dict):
                raise MalformedPayload(f"event #{index} is not an object")
            events.append(self._event(item, index))
        return events

    def _event(self, item: dict[str, Any], index: int) -> EventDraft:
        event_id = scalar_str(item.get("eventId"))
        if event_id is None:
            raise MalformedPayload(f"event #{index} has no eventId")
        subscription = scalar_str(item.get("subscriptionType")) or ""
        subject, _, action = subscription.partition(".")
        if subject == "object":
            subject = _OBJECT_TYPE_IDS.get(scalar_str(item.get("objectTypeId")) or "", "object")
        object_id = scalar_str(item.get("objectId"))
        portal_id = scalar_str(item.get("portalId"))

        mapped = _ACTIONS.get(action)
        event_type = f"{subject}.{mapped}" if subject in _TYPED_OBJECTS and mapped else "crm.object_changed"

        crm_ids = {}
        if object_id is not None:
            crm_ids["hubspot" if subject == "contact" else f"hubspot_{subject or 'object'}"] = object_id
        email = phone = None
        if subject == "contact" and action == "propertyChange":
            prop = scalar_str(item.get("propertyName"))
            value = item.get("propertyValue")
            if prop in _EMAIL_PROPERTIES and isinstance(value, str) and "@" in value:
                email = value.strip().lower()
            elif prop in _PHONE_PROPERTIES:
                phone = typed_phone(value)
        contact = Contact(crm_ids=crm_ids, email=email, phone=phone)

        conversation_key = None
        if portal_id and object_id:
            conversation_key = f"hubspot:{portal_id}:{subject or 'object'}:{object_id}"
        attributes = {k: v for k, v in item.items() if k not in ("eventId", "occurredAt")}
        return draft(
            type=event_type,
            provider_event_id=event_id,
            occurred_at=from_millis(item.get("occurredAt")),
            contact=contact,
            conversation_key=conversation_key,
            attributes=attributes,
        )
