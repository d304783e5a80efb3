"""SLA escalation: conversations whose SLA due time passed without an answer from the
business (a `message.sent` threaded into them) get one `routing.escalated` event.

Runs on a schedule (EventBridge Scheduler on AWS, the local runtime's scheduler on one
machine). Due conversations come from a sparse index (`by_sla`: only conversations whose
SLA is still open); each is marked escalated with a conditional write before its event is
published, so two overlapping runs never escalate one conversation twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field

from functions.routing.conversations import Conversation, ConversationStore
from functions.routing.logic import ROUTING_PROVIDER
from switchboard_core import aws
from switchboard_core.bus import EventPublisher
from switchboard_core.events import CanonicalEvent, Channel, EventDraft
from switchboard_core.settings import load_settings

logger = Logger()
metrics = Metrics()
tracer = Tracer()


class EscalationSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    conversations_table: str = Field(alias="TABLE_CONVERSATIONS")
    event_bus: str = Field(alias="EVENT_BUS_NAME")


def escalation_event(conversation: Conversation, now: datetime) -> CanonicalEvent:
    due = conversation.sla_due_at or now
    channel = Channel(conversation.channels[0]) if conversation.channels else Channel.GENERIC
    attributes: dict[str, Any] = {
        "conversation": conversation.id, "sla_due_at": due.isoformat(),
        "overdue_seconds": int((now - due).total_seconds()), "queue": conversation.queue,
        "assignee": conversation.assignee, "priority": conversation.priority, "status": conversation.status.value,
        "contact": {"id": conversation.contact_id}, "reason": "SLA due time passed without an answer",
    }
    return CanonicalEvent.from_draft(
        EventDraft(type="routing.escalated", provider_event_id=f"{conversation.id}:escalated",
                   occurred_at=now, conversation_key=conversation.id, attributes=attributes),
        provider=ROUTING_PROVIDER, connection=conversation.connection or ROUTING_PROVIDER,
        tenant=conversation.tenant, channel=channel, received_at=now, raw_ref=None)


def escalate_due(conversations: ConversationStore, publish: Callable[[list[CanonicalEvent]], None],
                 now: datetime) -> list[CanonicalEvent]:
    """Escalate every conversation past its SLA; returns the events published."""
    escalated = [escalation_event(c, now) for c in conversations.due_for_escalation(now)
                 if conversations.mark_escalated(c.id, now)]
    if escalated:
        publish(escalated)
    return escalated


@cache
def dependencies() -> tuple[ConversationStore, EventPublisher]:
    config = load_settings(EscalationSettings)
    # The inactivity window only matters when threading, which escalation never does.
    store = ConversationStore(aws.resource("dynamodb").Table(config.conversations_table), timedelta(hours=4))
    return store, EventPublisher(aws.client("events"), config.event_bus)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    store, publisher = dependencies()
    escalated = escalate_due(store, publisher.publish, datetime.now(UTC))
    metrics.add_metric(name="ConversationsEscalated", unit=MetricUnit.Count, value=len(escalated))
    if escalated:
        logger.warning("conversations escalated", extra={"conversations": [e.conversation_key for e in escalated]})
    return {"escalated": len(escalated)}
