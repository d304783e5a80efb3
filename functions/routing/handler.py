"""Routing consumer: SQS batches of canonical events from the bus -> route() -> derived
events back onto the bus. Powertools Batch reports partial failures, so one failing
event is retried (then dead-lettered) without holding back the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ConfigDict, Field

from functions.routing.logic import RoutingDeps, route
from switchboard_core import aws
from switchboard_core.bus import EventPublisher
from switchboard_core.envelopes import CanonicalEventBridgeEvent
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.contacts import ContactStore
from switchboard_core.routing.conversations import ConversationStore
from switchboard_core.settings import load_settings
from switchboard_core.tracing import LazyTracer

logger = Logger()
metrics = Metrics()
tracer = LazyTracer()
processor = BatchProcessor(event_type=EventType.SQS)


class RoutingSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    contacts_table: str = Field(alias="TABLE_CONTACTS")
    conversations_table: str = Field(alias="TABLE_CONVERSATIONS")
    routing_table: str = Field(alias="TABLE_ROUTING")
    event_bus: str = Field(alias="EVENT_BUS_NAME")
    inactivity_hours: float = Field(default=4, gt=0, alias="CONVERSATION_INACTIVITY_HOURS")


@cache
def dependencies() -> tuple[RoutingDeps, EventPublisher]:
    config = load_settings(RoutingSettings)
    dynamodb = aws.resource("dynamodb")
    deps = RoutingDeps(
        contacts=ContactStore(dynamodb.Table(config.contacts_table)),
        conversations=ConversationStore(
            dynamodb.Table(config.conversations_table), timedelta(hours=config.inactivity_hours)
        ),
        config=RoutingConfigStore(dynamodb.Table(config.routing_table)),
        sensors={},
    )
    return deps, EventPublisher(aws.client("events"), config.event_bus)


def record_handler(record: SQSRecord) -> None:
    event = CanonicalEventBridgeEvent.model_validate_json(record.body).detail
    logger.set_correlation_id(event.id)
    deps, publisher = dependencies()
    derived = route(event, deps, datetime.now(UTC), publisher.publish)
    metrics.add_metric(name="EventsSeen", unit=MetricUnit.Count, value=1)
    for item in derived:
        metrics.add_metric(name=item.type.replace(".", "_"), unit=MetricUnit.Count, value=1)
    logger.info("event routed", extra={"type": event.type, "emitted": [e.type for e in derived]})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
