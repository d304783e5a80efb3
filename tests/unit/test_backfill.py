"""The index backfill: items written before the listing indexes existed get their keys, and the
filtered listings then find them; a second run writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infra import topology
from infra.aws.backfill import backfill_conversations, backfill_event_log
from infra.local.emulator import create_table
from switchboard_core import aws
from switchboard_core.event_log import EventLogStore, EventQuery, index_keys
from switchboard_core.events import CanonicalEvent, Channel, EventDraft
from switchboard_core.routing.conversations import ConversationStore

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def canonical(n: int, type_: str) -> CanonicalEvent:
    return CanonicalEvent.from_draft(
        EventDraft(type=type_, provider_event_id=f"old{n}", occurred_at=NOW),
        provider="twilio",
        connection="con_1",
        tenant="acme",
        channel=Channel.TELEPHONY,
        received_at=NOW + timedelta(seconds=n),
        raw_ref=None,
    )


def test_old_events_and_conversations_join_the_filtered_listings(aws_world):
    dynamodb = aws.resource("dynamodb")
    create_table(aws.client("dynamodb"), "backfill-events", topology.TABLES["event_log"])
    create_table(aws.client("dynamodb"), "backfill-conversations", topology.TABLES["conversations"])
    events_table, conversations_table = dynamodb.Table("backfill-events"), dynamodb.Table("backfill-conversations")
    log = EventLogStore(events_table, ttl=timedelta(days=30))
    for n in range(6):
        item = log.item(canonical(n, "ticket.created" if n % 2 else "message.received"))
        events_table.put_item(Item={k: v for k, v in item.items() if k not in index_keys(item)})  # as once written
    old_conversation = {
        "pk": "CONV#cv_old",
        "id": "cv_old",
        "tenant": "acme",
        "status": "waiting",
        "assignee": "agent-1",
        "opened_at": NOW.isoformat(),
        "last_activity_at": NOW.isoformat(),
        "topics": {"billing", "refund"},
        "event_count": 3,
    }
    conversations_table.put_item(Item=old_conversation)
    conversations_table.put_item(Item={"pk": "THREAD#acme#k1", "conversation_id": "cv_old"})  # not a conversation
    store = ConversationStore(conversations_table)

    assert log.query(EventQuery(tenant="acme", type="ticket.created"))[0] == []
    assert store.for_tenant("acme", status="waiting")[0] == []

    dry = backfill_event_log(events_table, dry_run=True)
    assert (dry.scanned, dry.updated) == (6, 6)
    assert log.query(EventQuery(tenant="acme", type="ticket.created"))[0] == []  # a dry run writes nothing

    events, talks = backfill_event_log(events_table), backfill_conversations(conversations_table)
    assert (events.scanned, events.updated) == (6, 6)
    assert (talks.scanned, talks.updated, talks.memberships) == (1, 1, 2)
    assert len(log.query(EventQuery(tenant="acme", type="ticket.created"))[0]) == 3
    assert len(log.query(EventQuery(connection="con_1", provider="twilio", type="message.received"))[0]) == 3
    for filters in ({"status": "waiting"}, {"assignee": "agent-1"}, {"topic": "refund"}, {"topic": "billing"}):
        assert [c.id for c in store.for_tenant("acme", **filters)[0]] == ["cv_old"], filters

    again = backfill_event_log(events_table), backfill_conversations(conversations_table)
    assert [(done.updated, done.memberships) for done in again] == [(0, 0), (0, 0)]
