"""EventLogStore.query: every filter `GET /admin/events` offers is answered by one index that
holds exactly the matching events, so a listing reads what it returns (counted with a botocore
hook, as tests/bench/scale.py does) and pages through its cursor without gaps or repeats."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from infra.topology import TABLES
from switchboard_core import aws
from switchboard_core.event_log import SELECTORS, EventLogStore, EventQuery, position_model, selector_attribute
from switchboard_core.events import CanonicalEvent
from tests.bench.scale import DynamoCounter
from tests.builders import canonical_event

pytestmark = pytest.mark.usefixtures("aws_world")
START = datetime(2026, 3, 1, 12, tzinfo=UTC)
# (connection, provider): a hub event (an auto-reply's outcome) carries the connection it answered on.
SOURCES = (("con_sms", "twilio"), ("con_sms", "switchboard.replies"), ("con_chat", "slack"))
TYPES = ("message.received", "message.sent", "ticket.created")


@pytest.fixture
def store(aws_world) -> EventLogStore:
    table = aws.resource("dynamodb").Table(aws_world.names.mapping()["table:event_log"])
    return EventLogStore(table, timedelta(days=30))


def event(n: int, connection: str, provider: str, type_: str, tenant: str = "acme") -> CanonicalEvent:
    return canonical_event(
        type_,
        f"E{n}",
        received_at=START + timedelta(seconds=n),
        provider=provider,
        connection=connection,
        tenant=tenant,
        text=f"m{n}",
    )


@pytest.fixture
def stored(store) -> list[CanonicalEvent]:
    """Every source x type, several times over, and another tenant's events alongside."""
    events = [
        event(n, connection, provider, type_)
        for n, ((connection, provider), type_) in enumerate(
            itertools.islice(itertools.cycle(itertools.product(SOURCES, TYPES)), 90)
        )
    ]
    events += [event(1000 + n, "con_other", "twilio", "message.received", tenant="globex") for n in range(10)]
    for item in events:
        assert store.put(item)
    return events


def test_the_topology_declares_an_index_for_every_selector():
    declared = {(index.name, index.partition_key, index.sort_key) for index in TABLES["event_log"].indexes}
    wanted = {(f"by_{selector_attribute(f)}", selector_attribute(f), "sort_key") for f in SELECTORS}
    assert declared == wanted and len(wanted) == 8


FILTERS = [
    base | extra | window
    for base in ({"tenant": "acme"}, {"connection": "con_sms"}, {"connection": "con_sms", "tenant": "acme"})
    for extra in (
        {},
        {"provider": "switchboard.replies"},
        {"type": "ticket.created"},
        {"provider": "twilio", "type": "message.sent"},
    )
    for window in ({}, {"since": START + timedelta(seconds=45)})
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(sorted(f)) + ":" + ",".join(map(str, f.values())))
def test_every_filter_pages_through_exactly_its_events_reading_only_those(store, stored, filters):
    def matches(e: CanonicalEvent) -> bool:
        return (
            e.tenant == "acme"
            and all(getattr(e, name) == filters[name] for name in ("connection", "provider", "type") if name in filters)
            and ("since" not in filters or e.received_at >= filters["since"])
        )

    expected = sorted((e for e in stored if matches(e)), key=lambda e: e.received_at, reverse=True)
    assert expected  # the fixture holds some of every kind
    query = EventQuery(limit=4, **filters)
    counter = DynamoCounter(store._table.meta.client)
    seen: list[CanonicalEvent] = []
    after = None
    with counter.measure() as calls:
        while True:
            page, after = store.query(query, after)
            seen += page
            if after is None:
                break
            after = position_model(query).model_validate(after).model_dump()  # as a sealed cursor carries it
    assert [e.id for e in seen] == [e.id for e in expected]
    assert calls.items_read == len(expected)  # no item read and dropped by a filter
    assert calls.round_trips == {"Query": -(-len(expected) // 4) + (len(expected) % 4 == 0)}


def test_a_filter_nothing_matches_reads_nothing(store, stored):
    counter = DynamoCounter(store._table.meta.client)
    with counter.measure() as calls:
        assert store.query(EventQuery(tenant="acme", provider="vonage")) == ([], None)
        assert store.query(EventQuery(connection="con_chat", type="ticket.created", provider="twilio")) == ([], None)
    assert calls.items_read == 0 and calls.total_round_trips == 2


def test_a_query_without_tenant_or_connection_is_refused(store):
    with pytest.raises(ValueError, match="tenant or a connection"):
        store.query(EventQuery(type="message.sent"))


def test_stored_items_carry_every_index_key(store):
    item = store.item(event(1, "con_sms", "twilio", "message.sent"))
    assert item["tenant_type"] == "acme#message.sent"
    assert item["connection_provider_type"] == "con_sms#twilio#message.sent"
    assert {selector_attribute(f) for f in SELECTORS} <= set(item)
