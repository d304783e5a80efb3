"""The connection_stats table: counters by day, the latest receive time, and the event-log
consumer counting each webhook event once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from infra.local.lambdas import LocalFunctions
from switchboard_core import aws
from switchboard_core.connection_stats import ConnectionStatsStore, accepted_by_day
from switchboard_core.events import CanonicalEvent, Channel, EventDraft, RawRef
from tests.unit.event_log.test_event_log_consumer import envelope, sqs_event

DAY = date(2026, 3, 1)
NOON = datetime(2026, 3, 1, 12, tzinfo=UTC)


def stats(aws_world) -> ConnectionStatsStore:
    return ConnectionStatsStore(aws.client("dynamodb"), aws_world.names.table("connection_stats"))


def webhook_event(n: int, connection: str = "con_1", received: datetime = NOON, raw: bool = True) -> CanonicalEvent:
    return CanonicalEvent.from_draft(
        EventDraft(type="message.received", provider_event_id=f"SM{n}"),
        provider="twilio",
        connection=connection,
        tenant="acme",
        channel=Channel.TELEPHONY,
        received_at=received,
        raw_ref=RawRef(bucket="b", key=f"raw/{n}") if raw else None,
    )


def test_counters_add_up_per_day_and_reasons_outside_the_code_shape_count_as_other(aws_world):
    store = stats(aws_world)
    store.count_accepted("con_1", DAY, 3, NOON)
    store.count_accepted("con_1", DAY, 2, NOON - timedelta(hours=1))
    store.count_duplicate("con_1", NOON)
    store.count_rejection("con_1", "invalid_signature", NOON)
    store.count_rejection("con_1", "invalid_signature", NOON + timedelta(days=1))
    store.count_rejection("con_1", "Not A Code; DROP", NOON)
    store.count_accepted("con_2", DAY, 7, NOON + timedelta(hours=1))
    read = store.read("con_1", DAY + timedelta(days=1), 3)
    assert [(d.date, d.accepted, d.duplicates, d.rejected) for d in read.days] == [
        (DAY - timedelta(days=1), 0, 0, {}),
        (DAY, 5, 1, {"invalid_signature": 1, "other": 1}),
        (DAY + timedelta(days=1), 0, 0, {"invalid_signature": 1}),
    ]
    # The latest time stays the newest one written, whatever order batches finish in.
    assert read.last_received_at == NOON
    assert store.read("con_2", DAY, 1).last_received_at == NOON + timedelta(hours=1)


def test_every_item_expires_90_days_after_its_day(aws_world):
    store = stats(aws_world)
    store.count_accepted("con_1", DAY, 1, NOON)
    items = aws.resource("dynamodb").Table(aws_world.names.table("connection_stats")).scan()["Items"]
    expiries = {item["day"]: int(item["expires_at"]) for item in items}
    assert expiries == {
        DAY.isoformat(): int(datetime(2026, 5, 31, tzinfo=UTC).timestamp()),  # end of the day + 90 days
        "latest": int((NOON + timedelta(days=90)).timestamp()),
    }


def test_a_batch_is_grouped_by_connection_and_day_and_derived_events_are_not_counted():
    events = [
        webhook_event(1),
        webhook_event(2, received=NOON + timedelta(minutes=5)),
        webhook_event(3, received=NOON + timedelta(days=1)),
        webhook_event(4, connection="con_2"),
        webhook_event(5, raw=False),  # a consumer's event: nothing was received
    ]
    assert accepted_by_day(events) == {
        ("con_1", DAY): (2, NOON + timedelta(minutes=5)),
        ("con_1", DAY + timedelta(days=1)): (1, NOON + timedelta(days=1)),
        ("con_2", DAY): (1, NOON),
    }


def test_the_event_log_consumer_counts_each_event_once_however_often_it_is_delivered(aws_world):
    functions = LocalFunctions(aws_world.names.mapping(), "test")
    batch = sqs_event([envelope(webhook_event(1)), envelope(webhook_event(2)), envelope(webhook_event(3, raw=False))])
    assert functions.invoke("event_log", batch) == {"batchItemFailures": []}
    assert functions.invoke("event_log", batch) == {"batchItemFailures": []}  # redelivered
    read = stats(aws_world).read("con_1", DAY, 1)
    assert read.days[0].accepted == 2 and read.last_received_at == NOON
