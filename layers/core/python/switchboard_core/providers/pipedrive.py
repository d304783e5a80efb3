"""Pipedrive: general webhooks, v2 (``meta.version`` "2.0") and v1.

Contract (docs/providers/pipedrive.md has the sources):

* No signature. The webhook is created with ``http_auth_user`` / ``http_auth_password``
  and Pipedrive sends them as HTTP Basic auth; both are compared in constant time with
  the connection's ``username`` / ``password``. Missing or wrong → 401.
* No timestamp header: replays are bounded by deduplication.

Bodies:

* v2: ``{"meta": {"action": "create|change|delete", "entity": "person|deal|…",
  "entity_id", "id", "correlation_id", "attempt", "timestamp", "version": "2.0", …},
  "data": {…} | null, "previous": {…} | null}``. The delivery and event id is
  ``meta.id`` (the event's id; the retry counter ``attempt`` is separate).
* v1: ``{"v": 1, "event": "updated.person", "meta": {"action": "updated", "object":
  "person", "id", "timestamp", "timestamp_micro", "webhook_id", …}, "current",
  "previous", "retry"}``. v1 has no event id: ``v1:{webhook_id}:{object}:{id}:{action}:
  {timestamp_micro}`` is stable across its retries (``retry`` changes, it is not used).

Normalisation: person → ``contact.created|updated|deleted`` (name, primary or first of
``emails``/``email`` and ``phones``/``phone`` arrays — E.164 through _common.typed_phone —
``crm_ids["pipedrive"]``); deal → ``deal.created|updated|deleted``; everything else (and
v1 ``merged``) → ``crm.object_changed`` with entity and action in attributes.
conversation_key ``pipedrive:{company_id}:{entity}:{entity id}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from switchboard_core.events import Channel, Contact, EventDraft
from switchboard_core.providers._common import (
    body_digest_id,
    bounded_id,
    check_basic_auth,
    clean_str,
    draft,
    email_or_none,
    from_iso,
    from_seconds,
    load_json,
    refuse_invalid_models,
    scalar_str,
    secret_bytes,
    stable_hash,
    text_or_none,
    typed_phone,
)
from switchboard_core.providers.base import (
    Credentials,
    MalformedPayload,
    ProviderAdapter,
    WebhookRequest,
)

_ACTIONS = {
    "create": "created",
    "added": "created",
    "change": "updated",
    "updated": "updated",
    "delete": "deleted",
    "deleted": "deleted",
}
_TYPED_ENTITIES = {"person": "contact", "deal": "deal"}


def _first_value(values: Any) -> Any:
    """The primary (else first) `value` of a Pipedrive emails/phones array (or a bare string)."""
    if isinstance(values, str):
        return values
    if not isinstance(values, list):
        return None
    entries = [
        entry
        for entry in values
        if isinstance(entry, dict) and isinstance(entry.get("value"), str) and entry["value"].strip()
    ]
    for entry in entries:
        if entry.get("primary") is True:
            return entry["value"]
    return entries[0]["value"] if entries else None


class PipedriveAdapter(ProviderAdapter):
    name: ClassVar[str] = "pipedrive"
    channel: ClassVar[Channel] = Channel.CRM
    title: ClassVar[str] = "Pipedrive (webhooks v2 and v1, Basic auth)"
    credential_fields: ClassVar[tuple[str, ...]] = ("username", "password")

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        check_basic_auth(request, secret_bytes(credentials, "username"), secret_bytes(credentials, "password"))

    # ------------------------------------------------------------- delivery id
    def delivery_id(self, request: WebhookRequest) -> str:
        try:
            payload = load_json(request)
        except MalformedPayload:
            return body_digest_id(request.body)
        if isinstance(payload, dict) and isinstance(payload.get("meta"), dict):
            event_id = self._event_id(payload, payload["meta"])
            if event_id is not None:
                return bounded_id(event_id)
        return body_digest_id(request.body)

    @staticmethod
    def _is_v1(payload: dict[str, Any], meta: dict[str, Any]) -> bool:
        version = scalar_str(meta.get("version")) or ""
        if version.startswith("2") or "entity" in meta:
            return False
        return "event" in payload or "current" in payload or "object" in meta

    def _event_id(self, payload: dict[str, Any], meta: dict[str, Any]) -> str | None:
        if not self._is_v1(payload, meta):
            return scalar_str(meta.get("id"))
        parts = [scalar_str(meta.get(key)) for key in ("webhook_id", "object", "id", "action")]
        stamp = scalar_str(meta.get("timestamp_micro")) or scalar_str(meta.get("timestamp"))
        if parts[2] is None or parts[3] is None or stamp is None:
            return None
        return "v1:" + ":".join(part or "-" for part in parts) + ":" + stamp

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        payload = load_json(request)
        if not isinstance(payload, dict) or not isinstance(payload.get("meta"), dict):
            raise MalformedPayload("a Pipedrive webhook body must be a JSON object with a meta object")
        meta = payload["meta"]
        v1 = self._is_v1(payload, meta)
        if v1:
            entity = scalar_str(meta.get("object"))
            action = scalar_str(meta.get("action"))
            event = scalar_str(payload.get("event"))
            if (entity is None or action is None) and event and "." in event:
                action, _, entity = event.partition(".")
            current, previous = payload.get("current"), payload.get("previous")
            entity_id = scalar_str(meta.get("id"))
            occurred_at = from_seconds(meta.get("timestamp"))
        else:
            entity = scalar_str(meta.get("entity"))
            action = scalar_str(meta.get("action"))
            current, previous = payload.get("data"), payload.get("previous")
            entity_id = scalar_str(meta.get("entity_id"))
            occurred_at = from_iso(meta.get("timestamp"))
        if entity is None or action is None:
            raise MalformedPayload("meta names no entity/object and action")
        event_id = self._event_id(payload, meta) or f"{entity}:{entity_id or '-'}:{action}:{stable_hash(payload)}"
        record = current if isinstance(current, dict) else previous if isinstance(previous, dict) else {}
        entity_id = entity_id or scalar_str(record.get("id"))

        mapped = _ACTIONS.get(action.lower())
        subject = _TYPED_ENTITIES.get(entity.lower())
        event_type = f"{subject}.{mapped}" if subject and mapped else "crm.object_changed"
        contact = Contact()
        if subject == "contact":
            contact = Contact(
                name=text_or_none(record.get("name")),
                email=email_or_none(_first_value(record.get("emails", record.get("email")))),
                phone=typed_phone(_first_value(record.get("phones", record.get("phone")))),
                crm_ids={"pipedrive": entity_id} if entity_id else {},
            )
        elif entity_id:
            contact = Contact(crm_ids={f"pipedrive_{clean_str(entity.lower())}": entity_id})
        company = scalar_str(meta.get("company_id")) or "-"
        attributes = {
            "webhooks_version": 1 if v1 else 2,
            "entity": entity,
            "action": action,
            **payload,
        }
        return [
            draft(
                type=event_type,
                provider_event_id=event_id,
                occurred_at=occurred_at,
                contact=contact,
                conversation_key=f"pipedrive:{company}:{entity.lower()}:{entity_id}" if entity_id else None,
                attributes=attributes,
            )
        ]
