"""SLA escalation: conversations whose SLA due time passed without an answer from the
business (a `message.sent` threaded into them) get one `routing.escalated` event.

Runs on a schedule (EventBridge Scheduler on AWS, the local runtime's scheduler on one
machine). Due conversations come from a sparse index (`by_sla`: only conversations whose
SLA is still open); each is marked escalated with a conditional write before its event is
published, so two overlapping runs never escalate one conversation twice.
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
    """Escalate every conversation past its SLA; returns the events published."""
    escalated = [
        escalation_event(c, now)
        for c in conversations.due_for_escalation(now)
        if conversations.mark_escalated(c.id, now)
    ]
    if escalated:
        publish(escalated)
    return escalated
