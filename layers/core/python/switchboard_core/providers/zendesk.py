"""Zendesk: webhooks subscribed to Zendesk events, and webhooks fired by triggers/automations.

Contract (docs/providers/zendesk.md has the sources):

* ``X-Zendesk-Webhook-Signature`` = base64(HMAC-SHA256(signing secret, timestamp + raw
  body)), where the timestamp is the ``X-Zendesk-Webhook-Signature-Timestamp`` header
  (RFC 3339, e.g. ``2024-04-17T17:18:10Z``) and the signing secret is used verbatim as
  UTF-8 (it looks like base64 but is not decoded). A webhook that is being tested before
  it exists signs with Zendesk's static test secret
  ``dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==``.
* Zendesk prescribes no replay window; the hub enforces 5 minutes each way.
* Every request carries ``x-zendesk-account-id``, ``x-zendesk-webhook-id`` and
  ``x-zendesk-webhook-invocation-id``; they are kept in attributes.

Normalisation:

* Event-subscription payloads (``type`` = ``zen:event-type:<domain>.<action>``, ``id``,
  ``account_id``, ``time``, ``subject``, ``detail``, ``event``): ``ticket.created``,
  ``ticket.comment_added`` (comment body as text), ``ticket.deleted`` (soft/permanent
  delete), every other ``ticket.*`` → ``ticket.updated``;
  ``messaging_ticket.message_added`` → ``ticket.comment_added`` (message body as text);
  ``user.created``/``user.deleted`` → ``contact.created``/``contact.deleted``, other
  ``user.*`` → ``contact.updated`` (e-mail from ``detail.email``); anything else →
  ``provider.notification``. provider_event_id = the event ``id`` (delivery id too).
* Trigger/automation webhooks have a user-defined body: any JSON object naming a ticket
  id (``ticket_id``, ``ticket.id`` or ``id``) becomes ``ticket.updated``, with requester
  e-mail/phone/name from ``requester_email``/``requester_phone``/``requester_name`` or a
  ``requester`` object, text from ``latest_comment``/``latest_public_comment``/``comment``.
  Their event id is ``ticket:{id}:{updated_at}`` when the body carries ``updated_at``,
  else the invocation id header, else a digest of the body; the delivery id is the body
  digest (the body is rendered once per invocation).
* conversation_key ``zendesk:{account}:{ticket id}`` (account from the payload, else the
  ``x-zendesk-account-id`` header).
"""

from __future__ import annotations

import base64
import hmac
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any, ClassVar

from switchboard_core.events import Channel, Contact, EventDraft
from switchboard_core.providers._common import (
    aware,
    body_digest_id,
    bounded_id,
    draft,
    email_or_none,
    from_iso,
    header,
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
    SignatureError,
    WebhookRequest,
    constant_time_equal,
)

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
ACCOUNT_HEADER = "X-Zendesk-Account-Id"
WEBHOOK_HEADER = "X-Zendesk-Webhook-Id"
INVOCATION_HEADER = "X-Zendesk-Webhook-Invocation-Id"
TEST_SIGNING_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="
EVENT_PREFIX = "zen:event-type:"

_DELETED_TICKET_ACTIONS = {"soft_deleted", "permanently_deleted"}


def compute_signature(signing_secret: str | bytes, timestamp: str, body: bytes) -> str:
    """base64(HMAC-SHA256(secret as UTF-8, timestamp + raw body))."""
    key = signing_secret.encode("utf-8") if isinstance(signing_secret, str) else signing_secret
    return base64.b64encode(hmac.new(key, timestamp.encode("utf-8") + body, sha256).digest()).decode("ascii")


def _is_event_payload(payload: Any) -> bool:
    return (
        isinstance(payload, dict) and isinstance(payload.get("type"), str) and payload["type"].startswith(EVENT_PREFIX)
    )


class ZendeskAdapter(ProviderAdapter):
    name: ClassVar[str] = "zendesk"
    channel: ClassVar[Channel] = Channel.CRM
    title: ClassVar[str] = "Zendesk (webhooks: event subscriptions and triggers)"
    credential_fields: ClassVar[tuple[str, ...]] = ("signing_secret",)
    replay_window: ClassVar[timedelta | None] = timedelta(minutes=5)

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        signature = header(request, SIGNATURE_HEADER)
        if signature is None:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        timestamp = header(request, TIMESTAMP_HEADER)
        if timestamp is None:
            raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
        signed_at = from_iso(timestamp) if "T" in timestamp.upper() else None
        if signed_at is None:
            raise SignatureError(f"{TIMESTAMP_HEADER} must be an RFC 3339 time")
        secret = secret_bytes(credentials, "signing_secret")
        if secret is None:
            raise SignatureError("the connection has no signing_secret to verify with")
        assert self.replay_window is not None
        try:
            age = aware(now) - signed_at
        except OverflowError:
            raise SignatureError(f"{TIMESTAMP_HEADER} is out of range") from None
        if age > self.replay_window:
            raise SignatureError(f"{TIMESTAMP_HEADER} is older than {self.replay_window}")
        if age < -self.replay_window:
            raise SignatureError(f"{TIMESTAMP_HEADER} is more than {self.replay_window} in the future")
        # The header value is signed as sent (after trimming surrounding whitespace).
        if not constant_time_equal(compute_signature(secret, timestamp, request.body), signature):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the request")

    # ------------------------------------------------------------- delivery id
    def delivery_id(self, request: WebhookRequest) -> str:
        try:
            payload = load_json(request)
        except MalformedPayload:
            return body_digest_id(request.body)
        if _is_event_payload(payload):
            event_id = scalar_str(payload.get("id"))
            if event_id is not None:
                return bounded_id("event:" + event_id)
        return body_digest_id(request.body)

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        payload = load_json(request)
        if not isinstance(payload, dict):
            raise MalformedPayload("a Zendesk webhook body must be a JSON object")
        raw_headers = {
            "zendesk_account_id": header(request, ACCOUNT_HEADER),
            "zendesk_webhook_id": header(request, WEBHOOK_HEADER),
            "zendesk_invocation_id": header(request, INVOCATION_HEADER),
        }
        headers = {key: value for key, value in raw_headers.items() if value is not None}
        if _is_event_payload(payload):
            return [self._event(payload, headers)]
        return [self._trigger(payload, headers, request.body)]

    def _event(self, payload: dict[str, Any], headers: dict[str, str]) -> EventDraft:
        event_id = scalar_str(payload.get("id"))
        if event_id is None:
            raise MalformedPayload("the Zendesk event has no id")
        kind = payload["type"][len(EVENT_PREFIX) :]
        domain, _, action = kind.partition(".")
        detail = payload.get("detail")
        detail = detail if isinstance(detail, dict) else {}
        event = payload.get("event")
        event = event if isinstance(event, dict) else {}
        account = scalar_str(payload.get("account_id")) or headers.get("zendesk_account_id") or "-"
        subject = scalar_str(payload.get("subject")) or ""
        text = None
        contact = Contact()
        conversation_key = None

        if domain in ("ticket", "messaging_ticket"):
            ticket_id = scalar_str(detail.get("id")) or (
                subject.rsplit(":", 1)[-1] if subject.startswith("zen:ticket:") else None
            )
            if domain == "messaging_ticket":
                event_type = "ticket.comment_added" if action == "message_added" else "ticket.updated"
                message = event.get("message")
                message = message if isinstance(message, dict) else {}
                text = text_or_none(message.get("body"))
            elif action == "created":
                event_type = "ticket.created"
            elif action == "comment_added":
                event_type = "ticket.comment_added"
                comment = event.get("comment")
                comment = comment if isinstance(comment, dict) else {}
                text = text_or_none(comment.get("body"))
            elif action in _DELETED_TICKET_ACTIONS:
                event_type = "ticket.deleted"
            else:
                event_type = "ticket.updated"
            requester = scalar_str(detail.get("requester_id"))
            contact = Contact(crm_ids={"zendesk": requester} if requester else {})
            if ticket_id:
                conversation_key = f"zendesk:{account}:{ticket_id}"
        elif domain == "user":
            event_type = {"created": "contact.created", "deleted": "contact.deleted"}.get(action, "contact.updated")
            user_id = scalar_str(detail.get("id"))
            contact = Contact(
                email=email_or_none(detail.get("email")),
                phone=typed_phone(detail.get("phone")),
                name=text_or_none(detail.get("name")),
                crm_ids={"zendesk": user_id} if user_id else {},
            )
        else:
            event_type = "provider.notification"

        attributes: dict[str, Any] = {key: value for key, value in payload.items() if key not in ("id", "time")}
        attributes.update(headers)
        if event_type == "provider.notification":
            attributes["kind"] = kind
        return draft(
            type=event_type,
            provider_event_id=event_id,
            occurred_at=from_iso(payload.get("time")),
            contact=contact,
            conversation_key=conversation_key,
            text=text,
            attributes=attributes,
        )

    def _trigger(self, payload: dict[str, Any], headers: dict[str, str], body: bytes) -> EventDraft:
        ticket = payload.get("ticket")
        ticket = ticket if isinstance(ticket, dict) else payload
        ticket_id = scalar_str(payload.get("ticket_id")) or scalar_str(ticket.get("id"))
        if ticket_id is None:
            raise MalformedPayload("a trigger webhook body must name the ticket (ticket_id, ticket.id or id)")
        requester = ticket.get("requester")
        requester = requester if isinstance(requester, dict) else {}

        def pick(*names: str, source: dict[str, Any] = ticket) -> Any:
            for name in names:
                for where in (source, payload):
                    if where.get(name) not in (None, ""):
                        return where.get(name)
            return None

        email = email_or_none(pick("requester_email")) or email_or_none(requester.get("email"))
        phone = typed_phone(pick("requester_phone")) or typed_phone(requester.get("phone"))
        name = text_or_none(pick("requester_name")) or text_or_none(requester.get("name"))
        requester_id = scalar_str(pick("requester_id")) or scalar_str(requester.get("id"))
        updated_at = scalar_str(pick("updated_at", "updated_at_with_timestamp"))
        account = scalar_str(payload.get("account_id")) or headers.get("zendesk_account_id") or "-"
        if updated_at:
            event_id = f"ticket:{ticket_id}:{updated_at}"
        elif headers.get("zendesk_invocation_id"):
            event_id = f"ticket:{ticket_id}:invocation:{headers['zendesk_invocation_id']}"
        else:
            event_id = f"ticket:{ticket_id}:{stable_hash(payload)}"
        text = None
        for key in ("latest_public_comment", "latest_comment", "comment", "description"):
            value = pick(key)
            if isinstance(value, dict):
                value = value.get("body")
            text = text_or_none(value)
            if text:
                break
        attributes: dict[str, Any] = {"kind": "zendesk.trigger", **payload, **headers}
        return draft(
            type="ticket.updated",
            provider_event_id=event_id,
            occurred_at=from_iso(updated_at),
            contact=Contact(
                email=email, phone=phone, name=name, crm_ids={"zendesk": requester_id} if requester_id else {}
            ),
            conversation_key=f"zendesk:{account}:{ticket_id}",
            text=text,
            attributes=attributes,
        )
