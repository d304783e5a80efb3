"""Event-log consumer: SQS batches of EventBridge events -> the event log table.

Powertools Batch reports partial failures, so one bad record is retried (and
lands in the dead-letter queue after maxReceiveCount) without holding back the rest.
Writes are conditional on the event id, so redeliveries are harmless.

It also counts each connection's accepted events per day (switchboard_core.connection_stats):
the events of a batch it logged for the first time, one UpdateItem per connection and day,
after the batch. That keeps the counting off ingest's acknowledgement path; a redelivered
event is not counted twice (it is not logged twice), and a failed count is logged and
dropped rather than failing events that are already logged.
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
from switchboard_core.connection_stats import ConnectionStatsStore, accepted_by_day, store_from_environment
from switchboard_core.envelopes import CanonicalEventBridgeEvent
from switchboard_core.event_log import EventLogStore
from switchboard_core.events import CanonicalEvent
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


@cache
def stats() -> ConnectionStatsStore:
    return store_from_environment()


# The events this invocation logged for the first time: counted once the batch is done.
logged: list[CanonicalEvent] = []


def record_handler(record: SQSRecord) -> None:
    event = CanonicalEventBridgeEvent.model_validate_json(record.body).detail
    written = store().put(event)
    if written:
        logged.append(event)
    metrics.add_metric(name="EventsLogged" if written else "EventsAlreadyLogged", unit=MetricUnit.Count, value=1)


def count_accepted(events: list[CanonicalEvent]) -> None:
    """Add the batch's webhook events to their connections' daily counts (best-effort)."""
    for (connection, day), (count, newest) in accepted_by_day(events).items():
        try:
            stats().count_accepted(connection, day, count, newest)
        except Exception:  # the events are logged; a lost count must not redeliver them
            logger.exception("connection stats not counted", extra={"connection": connection, "events": count})
            metrics.add_metric(name="StatsNotCounted", unit=MetricUnit.Count, value=count)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    logged.clear()
    try:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        count_accepted(logged)
        logged.clear()
