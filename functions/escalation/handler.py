"""Escalation on a schedule: conversations past their SLA -> routing.escalated on the bus."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field

from functions.escalation.logic import escalate_due
from switchboard_core import aws
from switchboard_core.bus import EventPublisher
from switchboard_core.routing.conversations import ConversationStore
from switchboard_core.settings import load_settings
from switchboard_core.tracing import LazyTracer

logger = Logger()
metrics = Metrics()
tracer = LazyTracer()


class EscalationSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    conversations_table: str = Field(alias="TABLE_CONVERSATIONS")
    event_bus: str = Field(alias="EVENT_BUS_NAME")


@cache
def dependencies() -> tuple[ConversationStore, EventPublisher]:
    config = load_settings(EscalationSettings)
    store = ConversationStore(aws.resource("dynamodb").Table(config.conversations_table))
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
