"""Scale benchmark: `make bench` (full) or `python -m tests.bench.scale --quick`.

Does a listing's cost depend on how much is stored? Each of the admin API's listings --
`GET /admin/events` with every filter it offers (alone and with `since`, first page and the
next one through its cursor), a contact's timeline and the conversation list -- is run
against moto's DynamoDB holding a small and a large store (1,000 and 100,000 events: the
full form; 400 and 4,000: the quick form CI runs), and the DynamoDB work it does is counted
by a botocore event hook: round trips, and items read (`ScannedCount` of a Query or Scan:
what DynamoDB bills a read by, before any filter expression drops items). The figure that
matters is the ratio large/small: flat (1.0x) when a listing reads only what it returns.
Wall time is printed too, on the local hub's emulator: moto with the project's patches, whose
queries read one partition as DynamoDB's do (infra/local/moto_dynamodb.py). `--plain-moto`
measures moto as released, which sorts and walks the whole table on every query, so its
milliseconds grow with the store even where DynamoDB's would not; the counts are the verdict.

Items are written with `batch_writer`, in the shape the stores write them (EventLogStore.item,
a contact's timeline entries, conversations), not through the functions: seeding 100,000
events through routing would take hours and measures nothing this benchmark is about.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.bench import use_in_process_moto

TENANT = "acme"
CONNECTIONS = (("con_sms", "twilio"), ("con_chat", "slack"), ("con_desk", "zendesk"), ("con_wa", "meta"))
# Event types by share of the store: the rare ones are what a filter without an index walks for.
TYPES = (("message.received", 70), ("message.sent", 20), ("call.completed", 9), ("ticket.created", 1))
CONTACTS = 10  # the timeline's contact has a tenth of all events
STATUSES = ("open", "assigned", "waiting", "resolved")
TOPICS = ("billing", "delivery", "refund", "outage", "account", "praise", "complaint", "upgrade")
START = datetime(2026, 11, 1, tzinfo=UTC)
PAGE = 25
BEFORE = "(before)"  # the pattern the listings replaced, measured on the same store for comparison


@dataclass
class Calls:
    """What one listing cost DynamoDB: round trips by operation and items read."""

    round_trips: dict[str, int] = field(default_factory=dict)
    items_read: int = 0
    response_bytes: int = 0

    @property
    def total_round_trips(self) -> int:
        return sum(self.round_trips.values())


class DynamoCounter:
    """A botocore `after-call` hook on the DynamoDB client: counts each call and the items it
    read (ScannedCount for Query/Scan; the items returned for GetItem and BatchGetItem)."""

    def __init__(self, client: Any) -> None:
        self.calls = Calls()
        client.meta.events.register("after-call.dynamodb", self._count)

    def _count(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.round_trips[model.name] = self.calls.round_trips.get(model.name, 0) + 1
        self.calls.response_bytes += len(http_response.content or b"")
        if "ScannedCount" in parsed:
            self.calls.items_read += parsed["ScannedCount"]
        elif model.name == "GetItem":
            self.calls.items_read += 1 if parsed.get("Item") else 0
        elif model.name == "BatchGetItem":
            self.calls.items_read += sum(len(items) for items in parsed.get("Responses", {}).values())

    @contextmanager
    def measure(self) -> Iterator[Calls]:
        self.calls = Calls()
        yield self.calls


def event_type(n: int) -> str:
    slot = (n // len(CONNECTIONS)) % 100  # every connection gets every type
    for name, share in TYPES:
        if slot < share:
            return name
        slot -= share
    raise AssertionError("shares add up to 100")


def canonical_events(count: int) -> Iterator[Any]:
    """`count` events of one tenant, spread over four connections, four types (one of them
    1% of the store) and ten contacts, a minute apart."""
    from switchboard_core.events import CanonicalEvent, Channel, Contact, EventDraft

    for n in range(count):
        connection, provider = CONNECTIONS[n % len(CONNECTIONS)]
        yield CanonicalEvent.from_draft(
            EventDraft(
                type=event_type(n),
                provider_event_id=f"E{n}",
                text=f"message {n}",
                contact=Contact(phone=f"+4917000000{n % CONTACTS:02d}"),
            ),
            provider=provider,
            connection=connection,
            tenant=TENANT,
            channel=Channel.TELEPHONY,
            received_at=START + timedelta(minutes=n),
            raw_ref=None,
        )


@dataclass
class World:
    counter: DynamoCounter
    listings: dict[str, Callable[[], tuple[int, int]]]  # each runs a listing: the items and pages it returned


def seed(count: int) -> World:
    """Create the tables the listings read (from the topology) and fill them for `count` events."""
    from infra import topology
    from infra.local.emulator import create_table
    from switchboard_core import aws
    from switchboard_core.event_log import EventLogStore, EventQuery
    from switchboard_core.routing.contacts import ContactRecord, ContactStore, timeline_item
    from switchboard_core.routing.conversations import ConversationStore, topic_membership

    dynamodb = aws.resource("dynamodb")
    for name in ("event_log", "contacts", "conversations"):
        create_table(dynamodb.meta.client, f"bench-{name}", topology.TABLES[name])
    log = EventLogStore(dynamodb.Table("bench-event_log"), ttl=timedelta(days=30))
    contacts = ContactStore(dynamodb.Table("bench-contacts"))
    conversations = ConversationStore(dynamodb.Table("bench-conversations"), timedelta(hours=4))

    with (
        dynamodb.Table("bench-event_log").batch_writer() as events_out,
        dynamodb.Table("bench-contacts").batch_writer() as contacts_out,
        dynamodb.Table("bench-conversations").batch_writer() as conversations_out,
    ):
        for n, event in enumerate(canonical_events(count)):
            events_out.put_item(Item=log.item(event))
            contacts_out.put_item(
                Item=timeline_item(f"ct_{n % CONTACTS}", {"type": event.type}, event.id, event.received_at)
            )
            if n % 10 == 0:  # a conversation per ten events, with a topic or two
                conversation = conversation_item(n, event.received_at)
                conversations_out.put_item(Item=conversation)
                for topic in conversation["topics"]:
                    conversations_out.put_item(
                        Item=topic_membership(conversation["id"], TENANT, topic, conversation["last_activity_at"])
                    )
    created = START.isoformat()
    contacts_out_table = dynamodb.Table("bench-contacts")
    contacts_out_table.put_item(
        Item=ContactRecord(id="ct_0", tenant=TENANT, created_at=created, updated_at=created).model_dump(mode="json")
        | {"pk": "CONTACT#ct_0"}
    )
    contact = contacts.get("ct_0")
    assert contact is not None

    since = START + timedelta(minutes=count // 2)  # half the store is newer than this

    def events(**filters: Any) -> Callable[[], Any]:
        query = EventQuery(limit=PAGE, **filters)

        def first_and_next() -> tuple[int, int]:
            first, after = log.query(query)
            second, _ = log.query(query, after) if after else ([], None)
            return len(first) + len(second), 2 if after else 1

        return first_and_next

    listings: dict[str, Callable[[], tuple[int, int]]] = {}
    for base in ({"tenant": TENANT}, {"connection": "con_sms", "tenant": TENANT}):
        for extra in (
            {},
            {"provider": "twilio"},
            {"type": "ticket.created"},
            {"provider": "twilio", "type": "ticket.created"},
        ):
            for window in ({}, {"since": since}):
                filters = base | extra | window
                label = "events " + " ".join(f"{k}={'<mid>' if k == 'since' else v}" for k, v in filters.items())
                listings[label] = events(**filters)
    listings["events tenant provider=<none of its events>"] = events(tenant=TENANT, provider="vonage")
    event_table = dynamodb.Table("bench-event_log")
    listings[f"{BEFORE} events tenant=acme type=ticket.created"] = lambda: filtered_walk(
        event_table, "by_tenant", "tenant", TENANT, "type", "ticket.created", page=100
    )
    listings[f"{BEFORE} conversations status=waiting"] = lambda: filtered_walk(
        dynamodb.Table("bench-conversations"), "by_tenant", "tenant", TENANT, "status", "waiting", page=None
    )
    listings[f"{BEFORE} conversations topic=outage"] = lambda: filtered_walk(
        dynamodb.Table("bench-conversations"), "by_tenant", "tenant", TENANT, "topics", "outage", page=None
    )
    listings["contact timeline (first page)"] = lambda: (len(contacts.timeline(contact, PAGE)[0]), 1)
    listings["conversations (first page)"] = lambda: (len(conversations.for_tenant(TENANT, limit=PAGE)[0]), 1)
    for filters in (
        {"status": "waiting"},
        {"assignee": "agent-7"},
        {"status": "resolved", "assignee": "agent-7"},
        {"topic": "outage"},
        {"topic": "refund", "status": "waiting"},
    ):
        label = "conversations " + " ".join(f"{k}={v}" for k, v in filters.items())
        listings[label] = lambda filters=filters: (len(conversations.for_tenant(TENANT, limit=PAGE, **filters)[0]), 1)
    return World(DynamoCounter(dynamodb.meta.client), listings)


def filtered_walk(
    table: Any, index: str, key: str, value: str, attribute: str, wanted: str, page: int | None
) -> tuple[int, int]:
    """The first page as the code before the listing indexes read it: the tenant's index with a
    filter expression, `page` items a round trip (the event log asked for 100; conversations for
    DynamoDB's 1 MB pages), until a page of matches is found or the partition ends."""
    from boto3.dynamodb.conditions import Attr, Key

    request: dict[str, Any] = {
        "IndexName": index,
        "KeyConditionExpression": Key(key).eq(value),
        # A set attribute (a conversation's topics) matches when it contains the value.
        "FilterExpression": Attr(attribute).contains(wanted) if attribute == "topics" else Attr(attribute).eq(wanted),
        "ScanIndexForward": False,
    }
    if page:
        request["Limit"] = page
    found = 0
    while found < PAGE:
        answer = table.query(**request)
        found += len(answer.get("Items", []))
        if "LastEvaluatedKey" not in answer:
            break
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    return min(found, PAGE), 1


def conversation_item(n: int, at: datetime) -> dict[str, Any]:
    status = STATUSES[(n // 10) % len(STATUSES)]
    item: dict[str, Any] = {
        "pk": f"CONV#cv_{n:08d}",
        "id": f"cv_{n:08d}",
        "tenant": TENANT,
        "status": status,
        "opened_at": at.isoformat(),
        "last_activity_at": at.isoformat(),
        "event_count": 10,
        # One topic in eight conversations each (two for every third conversation).
        "topics": {TOPICS[(n // 10) % len(TOPICS)]} | ({TOPICS[(n // 30) % len(TOPICS)]} if n % 30 == 0 else set()),
    }
    if status != "open":  # assigned, waiting and resolved conversations have an assignee
        item["assignee"] = f"agent-{(n // 40) % 10}"
    from switchboard_core.routing.conversations import index_keys

    return item | index_keys(item)


def measure(count: int, plain_moto: bool = False) -> dict[str, dict[str, float]]:
    """Each listing's DynamoDB work (and moto's wall time) over a store of `count` events."""
    from moto import mock_aws

    from switchboard_core import aws

    if not plain_moto:
        from infra.local.emulator import patch_moto

        patch_moto()

    use_in_process_moto()
    with mock_aws():
        aws.reset_clients(keep_session=True)
        started = time.perf_counter()
        world = seed(count)
        seeded_s = time.perf_counter() - started
        figures: dict[str, dict[str, float]] = {"(seeding)": {"seconds": round(seeded_s, 1)}}
        for label, listing in world.listings.items():
            with world.counter.measure() as calls:
                started = time.perf_counter()
                returned, pages = listing()
                wall_ms = (time.perf_counter() - started) * 1000
            figures[label] = {
                "round_trips": calls.total_round_trips,
                "items_read": calls.items_read,
                "items_returned": returned,
                "round_trips_per_page": round(calls.total_round_trips / pages, 2),
                "read_per_returned": round(calls.items_read / max(returned, 1), 2),
                "moto_ms": round(wall_ms, 1),
            }
    aws.reset_clients(keep_session=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (CI): 400 and 4,000 events")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--plain-moto", action="store_true", help="moto without the local emulator's patches")
    args = parser.parse_args(argv)
    small, large = (400, 4_000) if args.quick else (1_000, 100_000)
    at_small, at_large = measure(small, args.plain_moto), measure(large, args.plain_moto)
    listings = [label for label in at_small if label != "(seeding)"]
    ratios = {label: ratio(at_small[label], at_large[label]) for label in listings}
    report = {
        "quick": args.quick,
        "events": [small, large],
        "seeding_seconds": [at_small["(seeding)"]["seconds"], at_large["(seeding)"]["seconds"]],
        "listings": {label: {"small": at_small[label], "large": at_large[label]} for label in listings},
        "ratio": ratios,
        "worst_ratio": max(max(r.values()) for label, r in ratios.items() if not label.startswith(BEFORE)),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"DynamoDB work per listing, {small:,} -> {large:,} stored events "
        f"(page of {PAGE}; events: the first page and the next through its cursor):"
    )
    print(
        f"  {'listing':<84} {'round trips':>11} {'items read':>15} {'returned':>11} "
        f"{'read/returned':>13} {'ratio':>6} {'moto ms':>15}"
    )
    for label in listings:
        a, b = at_small[label], at_large[label]
        print(
            f"  {label:<84} {a['round_trips']:>5} {b['round_trips']:>5} {a['items_read']:>7} {b['items_read']:>7}"
            f" {a['items_returned']:>5} {b['items_returned']:>5} {a['read_per_returned']:>6.2f} "
            f"{b['read_per_returned']:>6.2f} {max(ratios[label].values()):>5.2f}x "
            f"{a['moto_ms']:>7.1f} {b['moto_ms']:>7.1f}"
        )
    print(f"seeded in {report['seeding_seconds'][0]:.1f} s and {report['seeding_seconds'][1]:.1f} s")
    print(
        "worst ratio large/small of the listings (round trips per page, items read per item returned): "
        f"{report['worst_ratio']:.2f}x (flat is 1.00x)"
    )
    return 0


def ratio(small: dict[str, float], large: dict[str, float]) -> dict[str, float]:
    """How a listing's cost grew with the store: round trips per page, and items read per item
    returned (a listing that returns fewer items, or one page, because fewer match is not cheaper)."""
    return {
        "round_trips_per_page": round(large["round_trips_per_page"] / max(small["round_trips_per_page"], 1), 2),
        "read_per_returned": round(large["read_per_returned"] / max(small["read_per_returned"], 0.01), 2)
        if small["read_per_returned"] or large["read_per_returned"]
        else 1.0,
    }


if __name__ == "__main__":
    sys.exit(main())
