"""Auto-replies: sending what a routing rule's `auto_reply` action asked for.

One `reply.requested` event in, one outcome out (`reply.sent`, `reply.skipped` or
`reply.failed`), checked in this order:

1. A request already decided (a redelivery) gets its stored outcome again: never a
   second message. Text that rendered empty -> skipped `empty_text`.
2. No reply address (the channel cannot be answered) -> skipped `no_reply_channel`.
3. The contact opted out (STOP on any channel, a CRM flag; read now, not when routed)
   -> skipped `opted_out`.
4. One auto-reply per conversation and template: a conditional write claims it; a claim
   held by another request -> skipped `already_sent`.
5. The connection is gone, or has no outbound credentials -> skipped `connection_gone`
   / `not_configured`.
6. The provider's answer: its message id -> sent; a refusal -> failed (and the claim is
   released, so a later message may try again); a 429, 5xx or network failure raises,
   so the queue retries it with the claim still held by it, and on the queue's last
   attempt becomes failed (claim released) instead of going to the dead-letter queue.

The outcome is stored before it is published, so a publish failure republishes the same
event (deterministic id). A crash between the provider's answer and that write would
send again on retry: at-least-once, as every provider's send API here offers no
idempotency key (docs/decisions.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from switchboard_core.connections import ConnectionStore, CredentialStore
from switchboard_core.dynamo import conditional_write
from switchboard_core.errors import NotFound
from switchboard_core.events import CanonicalEvent, EventDraft
from switchboard_core.outbound import PermanentFailure, ReplyAddress, TransientFailure, Transport, send
from switchboard_core.routing import REPLIES_PROVIDER
from switchboard_core.routing.contacts import ContactStore

OUTCOME_TTL = timedelta(days=30)
# Longer than the function's timeout (20 s) and shorter than the queue's visibility
# timeout (120 s): an attempt that old is over, so its request may take the claim back.
ATTEMPT_OVER_AFTER = timedelta(seconds=60)


class RequestInProgress(TransientFailure):
    """Another delivery of the same request is sending it now: retry later, when its
    outcome is stored (and then simply republished)."""

    def __init__(self, detail: str) -> None:
        super().__init__("in_progress", detail)


class ReplyRequest(BaseModel):
    """The attributes of a `reply.requested` event (routing writes them)."""

    model_config = ConfigDict(extra="ignore")

    conversation: str
    source_event: str
    rule: str | None = None
    template: str
    reply_to: ReplyAddress | None = None
    contact: dict[str, Any] | None = None


class ReplyOutbox:
    """`REQUEST#<event id>`: the outcome of one request. `ONCE#<conversation>#<template
    hash>`: which request holds a conversation's auto-reply."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def outcome(self, request_id: str) -> CanonicalEvent | None:
        item = self._table.get_item(Key={"pk": f"REQUEST#{request_id}"}, ConsistentRead=True).get("Item")
        return CanonicalEvent.model_validate_json(item["outcome"]) if item else None

    def save_outcome(self, request_id: str, outcome: CanonicalEvent, now: datetime) -> None:
        self._table.put_item(
            Item={
                "pk": f"REQUEST#{request_id}",
                "outcome": outcome.model_dump_json(),
                "expires_at": int((now + OUTCOME_TTL).timestamp()),
            }
        )

    def claim(self, conversation: str, template: str, request_id: str, now: datetime) -> bool:
        """True when `request_id` now holds this conversation's reply; False when another
        request does. The same request takes its claim back only once its earlier attempt
        is surely over (a retry after the queue's visibility timeout); a duplicate delivery
        running meanwhile gets RequestInProgress, so the two never both send."""
        key = once_key(conversation, template)
        if conditional_write(
            self._table.put_item,
            Item={"pk": key, "request": request_id, "claimed_at": now.isoformat()},
            ConditionExpression="attribute_not_exists(pk) OR (#request = :request AND claimed_at <= :stale)",
            ExpressionAttributeNames={"#request": "request"},
            ExpressionAttributeValues={":request": request_id, ":stale": (now - ATTEMPT_OVER_AFTER).isoformat()},
        ):
            return True
        holder = self._table.get_item(Key={"pk": key}, ConsistentRead=True).get("Item") or {}
        if holder.get("request") == request_id:
            raise RequestInProgress(f"request {request_id} is being sent by another attempt")
        return False

    def release(self, conversation: str, template: str, request_id: str) -> None:
        conditional_write(
            self._table.delete_item,
            Key={"pk": once_key(conversation, template)},
            ConditionExpression="#request = :request",
            ExpressionAttributeNames={"#request": "request"},
            ExpressionAttributeValues={":request": request_id},
        )


def once_key(conversation: str, template: str) -> str:
    return f"ONCE#{conversation}#{hashlib.sha256(template.encode()).hexdigest()[:32]}"


@dataclass
class ReplyDeps:
    outbox: ReplyOutbox
    contacts: ContactStore
    connections: ConnectionStore
    credentials: CredentialStore  # under the outbound prefix
    transport: Transport


def handle_reply_request(
    event: CanonicalEvent, deps: ReplyDeps, now: datetime, last_attempt: bool = False
) -> CanonicalEvent:
    """The outcome event of one `reply.requested`. A transient failure raises, so the
    queue retries it; on the `last_attempt` before the dead-letter queue it becomes
    `reply.failed` instead, so the conversation is released and the outcome published."""
    done = deps.outbox.outcome(event.id)
    if done is not None:
        return done
    request = ReplyRequest.model_validate(event.attributes)
    attributes, kind = deliver(event, request, deps, now, last_attempt)
    outcome = outcome_event(event, request, kind, attributes, now)
    deps.outbox.save_outcome(event.id, outcome, now)
    return outcome


def deliver(
    event: CanonicalEvent, request: ReplyRequest, deps: ReplyDeps, now: datetime, last_attempt: bool
) -> tuple[dict[str, Any], str]:
    address = request.reply_to
    if not (event.text or "").strip():
        return {"reason": "empty_text", "detail": f"the template of rule {request.rule!r} rendered empty"}, "skipped"
    if address is None:
        return {
            "reason": "no_reply_channel",
            "detail": f"{event.attributes.get('source_provider') or 'this channel'} cannot be answered",
        }, "skipped"
    contact_id = (request.contact or {}).get("id")
    contact = deps.contacts.get(contact_id) if isinstance(contact_id, str) else None
    if contact is not None and contact.consent.opted_out:
        return {
            "reason": "opted_out",
            "detail": f"opted out on {contact.consent.channel} at {contact.consent.at}",
        }, "skipped"
    if not deps.outbox.claim(request.conversation, request.template, event.id, now):
        return {"reason": "already_sent", "detail": "this conversation already had this auto-reply"}, "skipped"
    try:
        connection = deps.connections.get(address.connection)
    except NotFound:
        connection = None
    if connection is None or connection.tenant != event.tenant or connection.provider != address.provider:
        deps.outbox.release(request.conversation, request.template, event.id)
        return {"reason": "connection_gone", "detail": f"connection {address.connection} no longer exists"}, "skipped"
    if connection.outbound_configured_at is None:
        deps.outbox.release(request.conversation, request.template, event.id)
        return {
            "reason": "not_configured",
            "detail": f"connection {connection.id} has no outbound credentials "
            "(PUT /admin/connections/{id}/outbound)",
        }, "skipped"
    credentials = deps.credentials.get(connection.id).current  # a read failure raises: retried
    try:
        message_id = send(address, event.text or "", credentials, deps.transport)
    except PermanentFailure as failure:
        deps.outbox.release(request.conversation, request.template, event.id)
        return {"code": failure.code, "detail": failure.detail}, "failed"
    except TransientFailure as failure:
        if not last_attempt:
            raise
        deps.outbox.release(request.conversation, request.template, event.id)
        return {"code": failure.code, "detail": f"gave up after the queue's last attempt: {failure.detail}"}, "failed"
    return {"provider_message_id": message_id}, "sent"


def outcome_event(
    event: CanonicalEvent, request: ReplyRequest, kind: str, attributes: dict[str, Any], now: datetime
) -> CanonicalEvent:
    address = request.reply_to
    details = {
        "request": event.id,
        "conversation": request.conversation,
        "source_event": request.source_event,
        "rule": request.rule,
        "via": address.provider if address else None,
        "to": address.fields if address else None,
        **attributes,
    }
    return CanonicalEvent.from_draft(
        EventDraft(
            type=f"reply.{kind}",
            provider_event_id=f"{event.id}:reply",
            occurred_at=now,
            contact=event.contact,
            conversation_key=request.conversation,
            text=event.text,
            attributes=details,
        ),
        provider=REPLIES_PROVIDER,
        connection=event.connection,
        tenant=event.tenant,
        channel=event.channel,
        received_at=now,
        raw_ref=None,
    )
