"""EventLogStore's reads for subscriptions: one event by id, many at once (BatchGetItem in
chunks of 100), and a tenant's events of a time range (since included, until excluded)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from switchboard_core import aws
from switchboard_core.event_log import EventLogStore
from tests.unit.event_log.test_event_log_consumer import canonical

pytestmark = pytest.mark.usefixtures("aws_world")


@pytest.fixture
def store(aws_world) -> EventLogStore:
    table = aws.resource("dynamodb").Table(aws_world.names.mapping()["table:event_log"])
    return EventLogStore(table, timedelta(days=30))


def test_get_one_and_many(store):
    events = [canonical(n) for n in range(150)]
    for event in events:
        store.put(event)
    assert store.get(events[3].id) == events[3]
    assert store.get("not-there") is None
    wanted = [e.id for e in events] + ["not-there", events[0].id]
    found = store.get_many(wanted)
    assert set(found) == {e.id for e in events} and found[events[149].id] == events[149]
    assert store.get_many([]) == {}


def test_between_is_one_tenants_range_since_included_until_excluded(store):
    start = datetime(2026, 11, 30, 12, tzinfo=UTC)
    at_start = canonical(1, received=start)
    inside = canonical(2, received=start + timedelta(minutes=5, microseconds=1))
    at_end = canonical(3, received=start + timedelta(hours=1))
    before = canonical(4, received=start - timedelta(microseconds=1))
    other_tenant = canonical(5, tenant="globex", received=start + timedelta(minutes=1))
    for event in (at_start, inside, at_end, before, other_tenant):
        store.put(event)
    # An offset other than UTC names the same moments.
    since = start.astimezone(timezone(timedelta(hours=2)))
    found = list(store.between("acme", since, start + timedelta(hours=1)))
    assert [e.id for e in found] == [at_start.id, inside.id]
    assert list(store.between("acme", start + timedelta(hours=2), start + timedelta(hours=3))) == []
