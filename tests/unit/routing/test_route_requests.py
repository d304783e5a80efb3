"""What routing one event costs in DynamoDB requests, per path: every request is a round trip
for each event on AWS (and a request the local hub's one process answers), so a change that
adds one shows here. Counted at botocore's API call, the requests route() makes."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from functions.routing.logic import route
from switchboard_core.events import Channel, Contact, SocialHandle
from tests.unit.routing import test_route
from tests.unit.routing.test_route import NOW, canonical

deps = test_route.deps  # the routing stores on moto, with the stories' rules and responders
PHONE = "+14155550123"


@pytest.fixture
def counted(monkeypatch):
    """The DynamoDB requests made while the block runs, by operation."""
    import botocore.client

    calls: Counter[str] = Counter()
    make_api_call = botocore.client.BaseClient._make_api_call

    def counting(client, operation, params):
        calls[operation] += 1
        return make_api_call(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return calls


def whatsapp(n: int, text: str, at=NOW):
    contact = Contact(phone=PHONE, handles=[SocialHandle(platform="whatsapp", id=PHONE[1:])])
    return canonical(
        n, text, provider="meta", channel=Channel.SOCIAL, key=f"meta:whatsapp:1:{PHONE[1:]}", contact=contact, at=at
    )


def sms(n: int, text: str, at=NOW):
    key = f"twilio:AC1:+14155550100:{PHONE}"
    return canonical(
        n, text, provider="twilio", channel=Channel.TELEPHONY, key=key, contact=Contact(phone=PHONE), at=at
    )


def requests_for(event, deps, counted) -> dict[str, int]:
    counted.clear()
    route(event, deps, NOW, lambda events: None)
    return dict(counted)


def test_a_known_persons_messages_cost_a_bounded_number_of_requests(deps, counted):
    # A new person on WhatsApp: contact, identities, conversation, pointers, rules read once.
    first = requests_for(whatsapp(1, "My BP-200 brake pad squeals"), deps, counted)
    # The same person by SMS: found by phone, threaded into the open conversation through them.
    other_channel = requests_for(sms(2, "Any news on my brakes?", NOW + timedelta(minutes=5)), deps, counted)
    # Again by SMS: the thread leads straight to the conversation (the commonest event of all).
    same_thread = requests_for(sms(3, "Hello?", NOW + timedelta(minutes=10)), deps, counted)
    # Before contacts and threads were read once: 35, 20, 19. Before a new contact and conversation
    # were written whole (not claimed, attached and read back again) and the routed mark and
    # saved outcome read together: 32, 16, 13.
    assert sum(first.values()) <= 23, first
    assert sum(other_channel.values()) <= 15, other_channel
    assert sum(same_thread.values()) <= 12, same_thread
    # Reads of one item, each at most once per event: the identity, contact, thread and the rule
    # set's versions; the routed mark and the saved outcome in one read of both.
    assert same_thread["GetItem"] == 4 and same_thread["BatchGetItem"] == 1, same_thread


def test_an_earlier_event_arriving_late_is_counted_in_without_moving_last_activity_back(deps):
    later = sms(1, "Second message", NOW + timedelta(minutes=10))
    earlier = sms(2, "First message", NOW)
    route(later, deps, NOW, lambda events: None)
    route(earlier, deps, NOW, lambda events: None)
    conversation_id = deps.conversations.threaded_into("acme", later.conversation_key)
    conversation = deps.conversations.get(conversation_id)
    assert conversation.event_count == 2
    assert conversation.last_activity_at == NOW + timedelta(minutes=10)
    assert conversation.last_event_id == earlier.id  # the last one threaded, whatever its time


def test_a_long_conversation_keeps_only_the_latest_sentiment(deps):
    """Each event appends its sentiment to the conversation's item: cut back, so the item every
    read and write carries stays small however long the conversation (and under 400 KB)."""
    from switchboard_core.routing.conversations import SENTIMENT_TREND_KEPT
    from switchboard_core.routing.sensing import Sensor

    texts = ["Thanks, that is great!", "This is terrible and useless", "Hello?"]
    events = [sms(n, texts[n % 3], NOW + timedelta(seconds=n)) for n in range(2 * SENTIMENT_TREND_KEPT + 20)]
    for event in events:
        route(event, deps, NOW, lambda derived: None)
    conversation = deps.conversations.get(deps.conversations.threaded_into("acme", events[0].conversation_key))
    trend = conversation.sentiment_trend
    assert SENTIMENT_TREND_KEPT <= len(trend) < 2 * SENTIMENT_TREND_KEPT
    sensed = [Sensor(test_route.TAXONOMY).sense(event).sentiment for event in events]
    assert len(set(sensed)) == 3  # the order below is checked on values that differ
    assert trend == sensed[-len(trend) :]  # the latest, oldest first
    assert conversation.event_count == len(events)


def test_an_outcome_of_the_hubs_own_costs_its_contact_and_timeline_only(deps, counted):
    """A reply's outcome (not conversational) is put on the person's timeline: no conversation,
    no rules, and no saved outcome to look for (only conversational events save one)."""
    from tests.builders import canonical_event

    route(sms(1, "Hello?"), deps, NOW, lambda derived: None)
    sent = canonical_event(
        "reply.sent",
        "reply-1",
        received_at=NOW,
        provider="replies",
        connection="con_1",
        channel=Channel.TELEPHONY,
        contact=Contact(phone=PHONE),
        occurred_at=NOW,
        attributes={"conversation": "cv_1"},
    )
    assert requests_for(sent, deps, counted) == {"GetItem": 2, "PutItem": 1}  # identity, contact; timeline
