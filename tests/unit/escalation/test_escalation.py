"""SLA escalation: due conversations escalate once; an answer or a resolution stops it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.escalation.logic import escalate_due
from infra import topology
from infra.local.emulator import create_table
from switchboard_core import aws
from switchboard_core.routing.conversations import ConversationStore, Status
from switchboard_core.routing.sensing import Sensed
from tests.builders import canonical_event

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


@pytest.fixture
def store(aws_world):
    create_table(aws.client("dynamodb"), "conversations-esc", topology.TABLES["conversations"])
    return ConversationStore(aws.resource("dynamodb").Table("conversations-esc"), timedelta(hours=4))


def opened(store: ConversationStore, n: int, due: datetime) -> str:
    event = canonical_event("message.received", f"e{n}", received_at=NOW, connection="con_1")
    conversation = store.thread(event, f"ct_{n}", NOW).conversation
    store.record_routing(
        conversation.id, tenant="acme", sensed=Sensed(), decision=None, assignment=None, sla_due_at=due
    )
    return conversation.id


def test_a_conversation_past_its_sla_escalates_once(store):
    late = opened(store, 1, NOW - timedelta(minutes=5))
    opened(store, 2, NOW + timedelta(minutes=30))  # not due yet
    published: list = []
    first = escalate_due(store, published.extend, NOW)
    assert [e.conversation_key for e in first] == [late]
    event = first[0]
    assert event.type == "routing.escalated" and event.source == "switchboard.routing"
    assert event.attributes["overdue_seconds"] == 300 and event.connection == "con_1"
    assert escalate_due(store, published.extend, NOW + timedelta(minutes=1)) == []
    assert store.get(late).escalated_at == NOW


def test_an_answer_or_a_resolution_stops_the_clock(store):
    answered = opened(store, 3, NOW - timedelta(minutes=1))
    resolved = opened(store, 4, NOW - timedelta(minutes=1))
    store.record_response(answered, NOW - timedelta(minutes=2))
    store.set_status(store.get(resolved), Status.RESOLVED)
    assert escalate_due(store, lambda events: None, NOW) == []
    assert store.get(answered).first_response_at == NOW - timedelta(minutes=2)


def test_the_sla_is_set_by_the_first_routing_only(store):
    conversation = opened(store, 5, NOW + timedelta(hours=1))
    store.record_routing(
        conversation,
        tenant="acme",
        sensed=Sensed(),
        decision=None,
        assignment=None,
        sla_due_at=NOW - timedelta(hours=1),
    )
    assert store.get(conversation).sla_due_at == NOW + timedelta(hours=1)


def test_a_failed_publish_leaves_the_conversation_for_the_next_run(store):
    """Fault injection found it (tests/faults): the claim was the only record, so a publish
    that failed after it lost the escalation for good."""
    late = opened(store, 5, NOW - timedelta(minutes=5))

    def unavailable(events: list) -> None:
        raise RuntimeError("the bus is unavailable")

    with pytest.raises(RuntimeError):
        escalate_due(store, unavailable, NOW)
    published: list = []
    (event,) = escalate_due(store, published.extend, NOW + timedelta(minutes=1))
    assert event.conversation_key == late and published == [event]
    assert event.attributes["overdue_seconds"] == 300  # as of the claim: the same event, the same id
    assert escalate_due(store, published.extend, NOW + timedelta(minutes=2)) == []


def test_a_claim_applied_but_answered_with_a_timeout_is_escalated_by_the_next_run(store):
    late = opened(store, 6, NOW - timedelta(minutes=5))
    assert store.claim_escalation(late, NOW)  # AWS applied it; the run saw a timeout and stopped
    published: list = []
    (event,) = escalate_due(store, published.extend, NOW + timedelta(minutes=1))
    assert event.conversation_key == late and store.get(late).escalated_at == NOW
