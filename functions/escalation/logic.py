"""SLA escalation: conversations whose SLA due time passed without an answer from the
business (a `message.sent` threaded into them) get one `routing.escalated` event.

Runs on a schedule (EventBridge Scheduler on AWS, the local runtime's scheduler on one
machine). Due conversations come from a sparse index (`by_sla`: only conversations whose
SLA is still open); each is claimed with a conditional write before its event is published,
so two overlapping runs never escalate one conversation twice, and leaves the index only once
its event is on the bus, so a failed publish is retried by the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from switchboard_core.events import CanonicalEvent, Channel, EventDraft
from switchboard_core.routing import ROUTING_PROVIDER
from switchboard_core.routing.conversations import Conversation, ConversationStore


def escalation_event(conversation: Conversation, now: datetime) -> CanonicalEvent:
    due = conversation.sla_due_at or now
    channel = Channel(conversation.channels[0]) if conversation.channels else Channel.GENERIC
    attributes: dict[str, Any] = {
        "conversation": conversation.id,
        "sla_due_at": due.isoformat(),
        "overdue_seconds": int((now - due).total_seconds()),
        "queue": conversation.queue,
        "assignee": conversation.assignee,
        "priority": conversation.priority,
        "status": conversation.status.value,
        "contact": {"id": conversation.contact_id},
        "reason": "SLA due time passed without an answer",
    }
    return CanonicalEvent.from_draft(
        EventDraft(
            type="routing.escalated",
            provider_event_id=f"{conversation.id}:escalated",
            occurred_at=now,
            conversation_key=conversation.id,
            attributes=attributes,
        ),
        provider=ROUTING_PROVIDER,
        connection=conversation.connection or ROUTING_PROVIDER,
        tenant=conversation.tenant,
        channel=channel,
        received_at=now,
        raw_ref=None,
    )


def escalate_due(
    conversations: ConversationStore, publish: Callable[[list[CanonicalEvent]], None], now: datetime
) -> list[CanonicalEvent]:
    """Escalate every conversation past its SLA; returns the events published.

    Claimed, published, then finished: a conversation claimed by a run that failed to publish
    (or whose claim AWS applied but answered with a timeout) is still due, and the next run
    publishes the same event (its id derives from the conversation) from the claim's time."""
    escalated: list[tuple[str, datetime, CanonicalEvent]] = []
    for conversation in conversations.due_for_escalation(now):
        if conversation.escalated_at is not None:  # claimed by an earlier run that did not finish
            escalated_at = conversation.escalated_at
        elif conversations.claim_escalation(conversation.id, now):
            escalated_at = now
        else:
            continue  # answered, resolved or claimed meanwhile (a claim that timed out: the next run)
        escalated.append((conversation.id, escalated_at, escalation_event(conversation, escalated_at)))
    if escalated:
        publish([event for _, _, event in escalated])
        for conversation_id, escalated_at, _ in escalated:
            conversations.finish_escalation(conversation_id, escalated_at)
    return [event for _, _, event in escalated]
