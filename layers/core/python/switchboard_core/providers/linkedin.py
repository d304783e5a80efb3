"""LinkedIn webhooks (organization social action notifications, Lead Sync).

Contract (docs/providers/linkedin.md has the sources):

* Validation: ``GET ?challengeCode=<uuid>[&applicationId=...]`` -> 200 JSON
  ``{"challengeCode": ..., "challengeResponse": hex HMAC-SHA256(key=clientSecret,
  msg=challengeCode)}``. Re-run every 2 hours; the current credential set answers.
* Signature: ``X-LI-Signature = hex HMAC-SHA256(key=clientSecret, msg="hmacsha256=" + raw
  body)`` (the literal is part of the signed string, not of the header). No timestamp.
* Dedupe: notifications arrive batched (up to 10) and are retried every 5 min for 8 h;
  each event's id is ``notificationId`` (Lead Sync: ``leadGenFormResponse`` + ``leadAction``),
  the delivery id is a digest of the body.

Normalisation (one event per notification):

* ``ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS`` ``notifications[]`` by ``action``:
  ``COMMENT``/``ADMIN_COMMENT`` -> ``comment.created``; ``SHARE_MENTION`` (and
  ``COMMENT_MENTION``) -> ``mention.created``; ``LIKE`` -> ``reaction.created``; others
  (``SHARE``, ``COMMENT_EDIT``, ``COMMENT_DELETE``...) -> ``provider.notification``.
  The actor (``generatedActivity``/``decoratedGeneratedActivity`` author, else the
  notification's ``actor``) is a ``SocialHandle(platform="linkedin", id=URN)``; text from the
  decorated activity's comment/commentary; conversation_key ``linkedin:{sourcePost}``.
* ``LEAD_ACTION`` (one object) -> ``provider.notification`` (kind ``linkedin.lead_action``).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime
from hashlib import sha256
from typing import Any, ClassVar

from switchboard_core.events import Channel, Contact, EventDraft, SocialHandle
from switchboard_core.providers._common import (
    body_digest_id,
    clean_str,
    dig,
    draft,
    from_epoch,
    header,
    load_json,
    query_value,
    refuse_invalid_models,
    scalar_str,
    secret_bytes,
    stable_hash,
    text_or_none,
)
from switchboard_core.providers.base import (
    Credentials,
    HandshakeRefused,
    HttpResponse,
    MalformedPayload,
    ProviderAdapter,
    SignatureError,
    WebhookRequest,
    constant_time_equal,
)

SIGNATURE_HEADER = "X-LI-Signature"
SIGNED_PREFIX = b"hmacsha256="
_MAX_CHALLENGE = 512
_ACTIONS = {
    "COMMENT": "comment.created",
    "ADMIN_COMMENT": "comment.created",
    "SHARE_MENTION": "mention.created",
    "COMMENT_MENTION": "mention.created",
    "LIKE": "reaction.created",
}


def challenge_response(client_secret: str, challenge_code: str) -> str:
    return hmac.new(client_secret.encode("utf-8"), challenge_code.encode("utf-8"), sha256).hexdigest()


def notification_signature(client_secret: str, body: bytes) -> str:
    return hmac.new(client_secret.encode("utf-8"), SIGNED_PREFIX + body, sha256).hexdigest()


class LinkedInAdapter(ProviderAdapter):
    name: ClassVar[str] = "linkedin"
    channel: ClassVar[Channel] = Channel.SOCIAL
    title: ClassVar[str] = "LinkedIn (organization social actions, Lead Sync)"
    credential_fields: ClassVar[tuple[str, ...]] = ("client_secret",)
    supports_handshake: ClassVar[bool] = True

    # --------------------------------------------------------------- handshake
    def handshake(self, request: WebhookRequest, credentials: Sequence[Credentials]) -> HttpResponse:
        code = query_value(request, "challengeCode")
        if code is None:
            raise MalformedPayload("a LinkedIn validation needs challengeCode")
        if len(code) > _MAX_CHALLENGE:
            raise MalformedPayload("challengeCode is too long")
        for credential_set in credentials or ():
            secret = credential_set.get("client_secret") if isinstance(credential_set, Mapping) else None
            if isinstance(secret, str) and secret:
                return HttpResponse.json(
                    {"challengeCode": code, "challengeResponse": challenge_response(clean_str(secret), code)}
                )
        raise HandshakeRefused("the connection has no client_secret to answer the challenge with")

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        signature = header(request, SIGNATURE_HEADER)
        if signature is None:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        secret = secret_bytes(credentials, "client_secret")
        if secret is None:
            raise SignatureError("the connection has no client_secret to verify with")
        expected = hmac.new(secret, SIGNED_PREFIX + request.body, sha256).hexdigest()
        if not constant_time_equal(expected, signature.lower()):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")

    def delivery_id(self, request: WebhookRequest) -> str:
        return body_digest_id(request.body)

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        payload = load_json(request)
        if not isinstance(payload, dict):
            raise MalformedPayload("expected a JSON object")
        kind = payload.get("type")
        if kind == "LEAD_ACTION" or "leadGenFormResponse" in payload:
            return [self._lead(payload)]
        notifications = payload.get("notifications")
        if notifications is None:
            raise MalformedPayload("expected 'notifications' (social actions) or a LEAD_ACTION")
        if not isinstance(notifications, list) or not all(isinstance(n, dict) for n in notifications):
            raise MalformedPayload("'notifications' must be an array of objects")
        if not notifications:
            raise MalformedPayload("'notifications' is empty")
        envelope = {k: v for k, v in payload.items() if k != "notifications"}
        return [self._social_action(item, envelope) for item in notifications]

    def _social_action(self, item: dict[str, Any], envelope: dict[str, Any]) -> EventDraft:
        action = scalar_str(item.get("action")) or "UNKNOWN"
        event_type = _ACTIONS.get(action, "provider.notification")
        notification_id = scalar_str(item.get("notificationId"))
        activity = item.get("decoratedGeneratedActivity")
        # {"comment": {...}} / {"share": {...}} / {"like": {...}}: the one decorated activity.
        detail: dict[str, Any] = {}
        if isinstance(activity, dict):
            nested = [value for value in activity.values() if isinstance(value, dict)]
            detail = nested[0] if nested else activity
        actor = (
            scalar_str(detail.get("owner"))
            or scalar_str(detail.get("author"))
            or scalar_str(detail.get("actor"))
            or scalar_str(item.get("actor"))
        )
        text = (
            text_or_none(dig(detail, "message", "text"))
            or text_or_none(detail.get("text"))
            or text_or_none(detail.get("commentary"))
        )
        post = scalar_str(item.get("sourcePost")) or scalar_str(dig(item, "decoratedSourcePost", "entity"))
        attributes = {**envelope, **item}
        if event_type == "provider.notification":
            attributes = {"kind": f"linkedin.{action.lower()}", **attributes}
        return draft(
            type=event_type,
            provider_event_id=f"notification:{notification_id}"
            if notification_id
            else f"linkedin:{action}:{stable_hash(item)}",
            occurred_at=from_epoch(item.get("lastModifiedAt")) or from_epoch(detail.get("createdAt")),
            contact=Contact(handles=[SocialHandle(platform="linkedin", id=actor)] if actor else []),
            conversation_key=f"linkedin:{post}" if post else None,
            text=text,
            attributes=attributes,
        )

    def _lead(self, payload: dict[str, Any]) -> EventDraft:
        response = scalar_str(payload.get("leadGenFormResponse"))
        action = scalar_str(payload.get("leadAction")) or "UNKNOWN"
        return draft(
            type="provider.notification",
            provider_event_id=f"lead:{response}:{action}" if response else f"linkedin:lead:{stable_hash(payload)}",
            occurred_at=from_epoch(payload.get("occurredAt")),
            attributes={"kind": "linkedin.lead_action", **payload},
        )
