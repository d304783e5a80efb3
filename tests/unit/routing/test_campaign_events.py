"""Campaign runs' events in routing: on the contact's timeline with their run's conversation,
never threaded, routed or answered as a customer's message, and never the business's answer."""

from __future__ import annotations

from datetime import timedelta

import pytest

from functions.routing.logic import route
from switchboard_core import aws
from switchboard_core.events import CanonicalEvent, Contact
from switchboard_core.routing import CAMPAIGNS_PROVIDER, is_conversational
from switchboard_core.routing.conversations import RoutingProgress
from tests.builders import canonical_event
from tests.unit.routing.test_auto_reply import sms
from tests.unit.routing.test_route import NOW, by_type, deps  # noqa: F401 - the deps fixture


def campaign_event(kind: str, conversation_id: str | None, n: int = 1) -> CanonicalEvent:
    return canonical_event(
        kind,
        f"run_1:{n}",
        received_at=NOW + timedelta(seconds=5),
        provider=CAMPAIGNS_PROVIDER,
        connection=CAMPAIGNS_PROVIDER,
        text="Hi, all sorted?",
        contact=Contact(phone="+14155550123"),
        attributes={"campaign": "cmp_1", "run": "run_1", "conversation": conversation_id, "contact": {"id": "x"}},
    )


@pytest.mark.parametrize("kind", ["campaign.message_sent", "campaign.run_started", "campaign.run_completed"])
def test_a_campaign_event_goes_on_the_timeline_with_its_conversation(deps, kind):  # noqa: F811
    events = by_type(route(sms(1, "brake pad"), deps, NOW, lambda _: None))
    conversation_id = events["conversation.opened"].attributes["conversation"]
    contact_id = events["conversation.opened"].attributes["contact"]["id"]
    before = deps.conversations.get(conversation_id)
    event = campaign_event(kind, conversation_id)
    assert route(event, deps, NOW, lambda _: None) == []
    item = aws.resource("dynamodb").Table("contacts-t").get_item(Key={"pk": f"TIMELINE#{event.id}"})["Item"]
    assert item["contact_id"] == contact_id
    assert (item["entry"]["type"], item["entry"]["conversation"]) == (kind, conversation_id)
    after = deps.conversations.get(conversation_id)
    assert after.event_count == before.event_count and after.first_response_at is None


def test_a_campaign_event_is_never_a_customers_message(deps):  # noqa: F811
    # Even one shaped like a customer's message is the business talking: not threaded nor routed.
    events = by_type(route(sms(1, "brake pad"), deps, NOW, lambda _: None))
    contact_id = events["conversation.opened"].attributes["contact"]["id"]
    lookalike = campaign_event("message.received", None, n=2).model_copy(update={"text": "STOP"})
    assert not is_conversational(lookalike)
    assert route(lookalike, deps, NOW, lambda _: None) == []
    assert deps.conversations.progress(lookalike.id) == RoutingProgress(routed_into=None, saved_outcome=None)
    assert deps.contacts.get(contact_id).consent.opted_out is False  # its words are not the customer's STOP


def test_the_callbacks_of_a_call_the_hub_placed_go_on_the_timeline_without_a_conversation(deps):  # noqa: F811
    from tests.unit.campaigns.test_channels import outbound_call, twilio_event, vonage_event, vonage_status

    url = "https://hub.example.com/webhooks/twilio/con_twilio?outbound=gather"
    placed = [
        twilio_event(outbound_call(CallStatus="ringing", SequenceNumber="0"))[0],  # not a caller to put through
        twilio_event(outbound_call(CallStatus="completed", SequenceNumber="1"))[0],
        twilio_event(outbound_call(CallStatus="in-progress", Digits="1"), url)[0],  # the keypad result
        vonage_event(vonage_status("completed"))[0],
    ]
    for event in placed:
        assert not is_conversational(event), event.type
        assert route(event, deps, NOW, lambda _: None) == []
        assert deps.conversations.progress(event.id) == RoutingProgress(
            None, None
        )  # nothing opened, routed or assigned
        item = aws.resource("dynamodb").Table("contacts-t").get_item(Key={"pk": f"TIMELINE#{event.id}"})["Item"]
        assert (item["entry"]["type"], item["entry"]["conversation"]) == (event.type, None)
    # A customer's own call is still a turn of a conversation.
    inbound = twilio_event(outbound_call(CallStatus="ringing", Direction="inbound", SequenceNumber="0"))[0]
    assert is_conversational(inbound)
    assert by_type(route(inbound, deps, NOW, lambda _: None))["conversation.opened"]
    assert is_conversational(vonage_event(vonage_status("completed") | {"direction": "inbound"})[0])
