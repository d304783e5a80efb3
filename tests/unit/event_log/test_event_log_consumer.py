"""The event-log consumer: SQS batches of EventBridge events, partial failures, redelivery."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from infra.local.lambdas import LocalFunctions
from switchboard_core import aws
from switchboard_core.event_log import EventLogStore, EventQuery
from switchboard_core.events import CanonicalEvent
from tests.builders import canonical_event


def canonical(
    n: int, tenant: str = "acme", connection: str = "con_1", received: datetime | None = None
) -> CanonicalEvent:
    received = received or datetime(2026, 3, 1, 12, tzinfo=UTC) + timedelta(seconds=n)
    return canonical_event(
        "message.received", f"SM{n}", received_at=received, connection=connection, tenant=tenant, text=f"m{n}"
    )


def sqs_event(bodies: list[str]) -> dict:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def envelope(event: CanonicalEvent) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "x",
            "detail-type": event.type,
            "source": event.source,
            "account": "123456789012",
            "time": event.received_at.isoformat(),
            "region": "us-east-1",
            "resources": [],
            "detail": event.model_dump(mode="json"),
        }
    )


def store(aws_world) -> EventLogStore:
    return EventLogStore(aws.resource("dynamodb").Table(aws_world.names.table("event_log")), ttl=timedelta(days=30))


def test_batch_is_logged_and_bad_records_are_reported(aws_world):
    functions = LocalFunctions(aws_world.names.mapping(), "test")
    result = functions.invoke("event_log", sqs_event([envelope(canonical(1)), "not json", envelope(canonical(2))]))
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    events, _ = store(aws_world).query(EventQuery(tenant="acme"))
    assert [e.provider_event_id for e in events] == ["SM2", "SM1"]  # newest first


def test_redelivery_writes_once(aws_world):
    functions = LocalFunctions(aws_world.names.mapping(), "test")
    body = envelope(canonical(7))
    assert functions.invoke("event_log", sqs_event([body]))["batchItemFailures"] == []
    assert functions.invoke("event_log", sqs_event([body]))["batchItemFailures"] == []
    events, _ = store(aws_world).query(EventQuery(tenant="acme"))
    assert len(events) == 1


def test_query_filters_pages_and_isolates_tenants(aws_world):
    log = store(aws_world)
    for n in range(12):
        log.put(canonical(n, connection="con_a" if n % 2 else "con_b"))
    log.put(canonical(99, tenant="globex"))
    first, cursor = log.query(EventQuery(tenant="acme", limit=5))
    second, _ = log.query(EventQuery(tenant="acme", limit=5), after=cursor)
    ids = [e.provider_event_id for e in first + second]
    assert ids == [f"SM{n}" for n in range(11, 1, -1)]
    by_connection, _ = log.query(EventQuery(connection="con_a", limit=100))
    assert {e.connection for e in by_connection} == {"con_a"} and len(by_connection) == 6
    since, _ = log.query(EventQuery(tenant="acme", since=datetime(2026, 3, 1, 12, 0, 10, tzinfo=UTC)))
    assert [e.provider_event_id for e in since] == ["SM11", "SM10"]
    # The same instant written with an offset, or without a zone (taken as UTC), selects the same.
    plus_five = timezone(timedelta(hours=5))
    for same in (datetime(2026, 3, 1, 17, 0, 10, tzinfo=plus_five), datetime(2026, 3, 1, 12, 0, 10)):
        found, _ = log.query(EventQuery(tenant="acme", since=same))
        assert [e.provider_event_id for e in found] == ["SM11", "SM10"], same
    assert all(e.tenant == "acme" for e in log.query(EventQuery(tenant="acme", limit=100))[0])
