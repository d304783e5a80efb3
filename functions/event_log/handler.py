"""Event-log consumer: SQS batches of EventBridge events -> the event log table.

Powertools Batch reports partial failures, so one bad record is retried (and
lands in the dead-letter queue after maxReceiveCount) without holding back the rest.
Writes are conditional on the event id, so redeliveries are harmless.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ConfigDict, Field

from switchboard_core import aws
from switchboard_core.envelopes import CanonicalEventBridgeEvent
from switchboard_core.event_log import EventLogStore
from switchboard_core.settings import load_settings
from switchboard_core.tracing import LazyTracer

logger = Logger()
metrics = Metrics()
tracer = LazyTracer()
processor = BatchProcessor(event_type=EventType.SQS)


class EventLogSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_log_table: str = Field(alias="TABLE_EVENT_LOG")
    ttl_days: int = Field(default=30, alias="EVENT_LOG_TTL_DAYS")


@cache
def store() -> EventLogStore:
    config = load_settings(EventLogSettings)
    return EventLogStore(aws.resource("dynamodb").Table(config.event_log_table), ttl=timedelta(days=config.ttl_days))


def record_handler(record: SQSRecord) -> None:
    event = CanonicalEventBridgeEvent.model_validate_json(record.body).detail
    written = store().put(event)
    metrics.add_metric(name="EventsLogged" if written else "EventsAlreadyLogged", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
