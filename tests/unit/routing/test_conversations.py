"""Threading: by thread key, then by contact within the inactivity window; races and redeliveries."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from infra import topology
from infra.local.emulator import create_table
from switchboard_core import aws
from switchboard_core.events import CanonicalEvent, Channel
from switchboard_core.routing.conversations import ConversationStore, Status
from tests.builders import canonical_event
from tests.conftest import AtomicTable

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


@pytest.fixture
def store(aws_world):
    create_table(aws.client("dynamodb"), "conversations-test", topology.Table("conversations", partition_key="pk"))
    table = AtomicTable(aws.resource("dynamodb").Table("conversations-test"))
    return ConversationStore(table, inactivity_window=timedelta(hours=4))


def event(
    n: int,
    *,
    provider: str = "twilio",
    channel: Channel = Channel.TELEPHONY,
    key: str | None = None,
    at: datetime = NOW,
    tenant: str = "acme",
) -> CanonicalEvent:
    return canonical_event(
        "message.received",
        f"id{n}",
        received_at=at,
        provider=provider,
        connection="con_1",
        tenant=tenant,
        channel=channel,
        conversation_key=key,
        occurred_at=at,
    )


def test_a_dm_a_call_and_a_ticket_from_one_contact_are_one_conversation(store):
    dm = store.thread(event(1, provider="meta", channel=Channel.SOCIAL, key="meta:dm:1"), "ct_1", NOW)
    call = store.thread(event(2, key="twilio:call:CA1", at=NOW + timedelta(minutes=20)), "ct_1", NOW)
    ticket = store.thread(
        event(3, provider="hubspot", channel=Channel.CRM, key="hubspot:ticket:9", at=NOW + timedelta(hours=1)),
        "ct_1",
        NOW,
    )
    assert dm.opened and not call.opened and not ticket.opened
    assert dm.conversation.id == call.conversation.id == ticket.conversation.id
    conversation = ticket.conversation
    assert conversation.channels == ["crm", "social", "telephony"] and conversation.event_count == 3
    assert conversation.thread_keys == ["hubspot:ticket:9", "meta:dm:1", "twilio:call:CA1"]
    assert conversation.last_activity_at == NOW + timedelta(hours=1)


def test_a_conversation_opened_by_an_event_is_answered_as_stored_without_reading_it_back(store):
    first, second = event(1, key="twilio:AC1:+1:+2"), event(2, key="twilio:AC1:+1:+2")
    opened = store.thread(first, "ct_1", NOW)
    assert opened.opened and opened.conversation == store.get(opened.conversation.id)
    assert (opened.conversation.event_count, opened.conversation.channels) == (1, ["telephony"])
    assert opened.conversation.thread_keys == ["twilio:AC1:+1:+2"] and opened.conversation.last_event_id == first.id
    # An event of the same second is the conversation's last one (a tie moves it forward).
    again = store.thread(second, "ct_1", NOW)
    assert again.conversation.event_count == 2 and again.conversation.last_event_id == second.id


def test_the_thread_key_wins_over_the_window(store):
    first = store.thread(event(1, key="zendesk:ticket:7"), "ct_1", NOW)
    # Days later, a reply on the same ticket joins the same conversation.
    reply = store.thread(event(2, key="zendesk:ticket:7", at=NOW + timedelta(days=3)), "ct_1", NOW)
    assert reply.conversation.id == first.conversation.id


def test_inactivity_or_resolution_opens_a_new_conversation(store):
    first = store.thread(event(1), "ct_1", NOW)
    later = store.thread(event(2, at=NOW + timedelta(hours=5)), "ct_1", NOW)
    assert later.opened and later.conversation.id != first.conversation.id
    store.set_status(later.conversation, Status.RESOLVED)
    after = store.thread(event(3, at=NOW + timedelta(hours=5, minutes=10)), "ct_1", NOW)
    assert after.opened and after.conversation.id != later.conversation.id


def test_a_redelivered_routed_event_never_double_threads(store):
    first = store.thread(event(1), "ct_1", NOW)
    store.mark_routed(event(1).id, first.conversation.id, NOW)
    again = store.thread(event(1), "ct_1", NOW)
    assert again.duplicate and not again.opened
    assert again.conversation.id == first.conversation.id and again.conversation.event_count == 1


def test_contacts_and_tenants_do_not_share(store):
    a = store.thread(event(1), "ct_1", NOW)
    b = store.thread(event(2), "ct_2", NOW)
    c = store.thread(event(3, tenant="globex"), "ct_1", NOW)
    assert len({a.conversation.id, b.conversation.id, c.conversation.id}) == 3


def test_two_events_of_one_contact_in_the_same_second_open_one_conversation(store):
    for attempt in range(10):
        barrier = threading.Barrier(4)
        found: list[tuple[str, bool]] = []

        def thread_one(
            n: int, attempt: int = attempt, barrier: threading.Barrier = barrier, found: list = found
        ) -> None:
            barrier.wait()
            threaded = store.thread(event(attempt * 10 + n), f"ct_race{attempt}", NOW)
            found.append((threaded.conversation.id, threaded.opened))

        threads = [threading.Thread(target=thread_one, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({cid for cid, _ in found}) == 1, found
        assert sum(opened for _, opened in found) == 1
        assert store.get(found[0][0]).event_count == 4


def test_listing_by_status_or_assignee_follows_routing_and_staff_reading_only_what_it_returns(aws_world):
    """The conversation list's status and assignee filters are indexes kept up to date by every
    write that moves a conversation (opened, assigned by routing, moved by staff)."""
    from switchboard_core.routing.assignment import Assignment
    from switchboard_core.routing.sensing import Sensed
    from tests.bench.scale import DynamoCounter

    create_table(aws.client("dynamodb"), "conversations-listed", topology.TABLES["conversations"])
    store = ConversationStore(aws.resource("dynamodb").Table("conversations-listed"), timedelta(hours=4))
    opened = [
        store.thread(event(n, key=f"k{n}", at=NOW + timedelta(minutes=n)), f"ct_{n}", NOW).conversation
        for n in range(6)
    ]
    store.thread(event(99, key="k99", tenant="globex"), "ct_99", NOW)
    for conversation in opened[:3]:
        assignment = Assignment(team="support", responder_id="agent-1", priority=3, strategy="least_busy")
        store.record_routing(
            conversation.id, tenant="acme", sensed=Sensed(), decision=None, assignment=assignment, sla_due_at=None
        )
    store.set_status(store.get(opened[0].id), Status.RESOLVED)  # keeps its assignee
    store.set_status(store.get(opened[3].id), Status.WAITING, assignee="agent-2")

    def ids(**filters):
        found, _ = store.for_tenant("acme", limit=25, **filters)
        return [c.id for c in found]

    counter = DynamoCounter(store._table.meta.client)
    with counter.measure() as calls:
        assert ids(status="assigned") == [opened[2].id, opened[1].id]
        assert ids(status="open") == [opened[5].id, opened[4].id]
        assert ids(assignee="agent-1") == [opened[2].id, opened[1].id, opened[0].id]
        assert ids(assignee="agent-2", status="waiting") == [opened[3].id]
        assert ids(status="resolved") == [opened[0].id]
        assert ids(assignee="agent-1", status="assigned") == [opened[2].id, opened[1].id]
        assert ids(assignee="agent-1", status="resolved") == [opened[0].id]
        assert ids(assignee="agent-2", status="assigned") == []
    assert calls.round_trips == {"Query": 8} and calls.items_read == 2 + 2 + 3 + 1 + 1 + 2 + 1 + 0
    assert len(ids()) == 6

    first, cursor = store.for_tenant("acme", assignee="agent-1", limit=2)
    assert cursor is not None and set(cursor) == {"pk", "tenant_assignee", "last_activity_at"}
    rest, end = store.for_tenant("acme", assignee="agent-1", limit=2, cursor=cursor)
    assert [c.id for c in first + rest] == ids(assignee="agent-1") and end is None


def test_listing_by_topic_reads_the_topics_memberships_newest_activity_first(aws_world):
    """A conversation carries a set of topics; each gets a membership item (index `by_tenant_topic`)
    that follows the conversation's last activity, so the list by topic reads what it returns."""
    from switchboard_core.routing.sensing import Sensed
    from tests.bench.scale import DynamoCounter

    create_table(aws.client("dynamodb"), "conversations-topics", topology.TABLES["conversations"])
    store = ConversationStore(aws.resource("dynamodb").Table("conversations-topics"), timedelta(hours=4))
    opened = [
        store.thread(event(n, key=f"k{n}", at=NOW + timedelta(minutes=n)), f"ct_{n}", NOW).conversation
        for n in range(5)
    ]
    other_tenant = store.thread(event(99, key="k99", tenant="globex"), "ct_99", NOW).conversation
    sensed_topics = (["billing"], ["billing", "refund"], [], ["refund"], ["billing"])
    for conversation, topics in zip(opened, sensed_topics, strict=True):
        store.record_routing(
            conversation.id,
            tenant="acme",
            sensed=Sensed(topics=topics),
            decision=None,
            assignment=None,
            sla_due_at=None,
        )
    store.record_routing(
        other_tenant.id,
        tenant="globex",
        sensed=Sensed(topics=["billing"]),
        decision=None,
        assignment=None,
        sla_due_at=None,
    )
    # A later message in the first conversation moves it to the top of its topic's list.
    store.thread(event(50, key="k0", at=NOW + timedelta(hours=1)), "ct_0", NOW)
    store.set_status(store.get(opened[4].id), Status.WAITING, assignee="agent-2")

    def ids(**filters):
        found, _ = store.for_tenant("acme", limit=25, **filters)
        return [c.id for c in found]

    counter = DynamoCounter(store._table.meta.client)
    with counter.measure() as calls:
        assert ids(topic="billing") == [opened[0].id, opened[4].id, opened[1].id]
        assert ids(topic="refund") == [opened[3].id, opened[1].id]
        assert ids(topic="shipping") == []
    assert calls.round_trips == {"Query": 3, "BatchGetItem": 2}  # nothing to read for "shipping"
    assert ids(topic="billing", status="waiting") == [opened[4].id]
    assert ids(topic="billing", assignee="agent-2") == [opened[4].id]
    assert ids(topic="refund", status="waiting") == []
    assert len(ids()) == 5  # memberships are not conversations: the plain list does not see them

    first, cursor = store.for_tenant("acme", topic="billing", limit=2)
    assert cursor is not None and set(cursor) == {"pk", "tenant_topic", "last_activity_at"}
    rest, end = store.for_tenant("acme", topic="billing", limit=2, cursor=cursor)
    assert [c.id for c in first + rest] == ids(topic="billing") and end is None
