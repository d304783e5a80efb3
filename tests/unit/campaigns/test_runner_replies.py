"""Which waiting run a customer's reply answers: the one asked in the reply's conversation, else
on its channel (and phone), else one that asked on none; among several, the one that started
waiting last; a redelivered reply answers the same run and no other."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from switchboard_core.campaigns.runs import RunStatus
from switchboard_core.campaigns.work import StartRequest
from switchboard_core.events import Contact, SocialHandle
from switchboard_core.routing.contacts import Identity
from tests.unit.campaigns.runner_world import NEGATIVE_MENTION, NOW, PHONE, World
from tests.unit.campaigns.test_runner import routing_event, trigger_message


@pytest.fixture
def world(aws_world) -> World:
    return World(aws_world)


def ask_on(channel: str) -> dict[str, Any]:
    return {
        "start": "ask",
        "steps": {
            "ask": {"type": "send_message", "channel": channel, "text": "All sorted?", "next": "await"},
            "await": {"type": "wait_for_reply", "timeout": "PT4H", "next": "thanks", "on_timeout": "done"},
            "thanks": {"type": "end", "converted": True},
            "done": {"type": "end"},
        },
    }


def start_on(world: World, campaign: str, contact_id: str, minutes: int) -> str:
    request = StartRequest(tenant="acme", campaign=campaign, version=1, contact=contact_id, request=f"r_{campaign}")
    handled = world.runner(NOW + timedelta(minutes=minutes)).start(request)
    return handled.runs[0]


def replied(world: World, run: str) -> bool:
    return any(record.outcome == "replied" for record in world.runs.get(run).steps_done)


def test_the_question_is_recorded_on_the_wait(world):
    world.campaign()
    contact_id = world.contact()
    run = world.runs.get(world.runner().trigger(trigger_message(contact_id)).runs[0])
    waiting = run.waiting
    assert (waiting.asked_on, waiting.asked_to, waiting.asked_via, waiting.conversation) == (
        "sms",
        PHONE,
        None,
        "conv_1",
    )


def test_one_reply_answers_only_the_run_that_asked_last_on_its_channel(world):
    world.campaign(ask_on("sms"), campaign_id="cmp_a")
    world.campaign(ask_on("sms"), campaign_id="cmp_b")
    contact_id = world.contact()
    older = start_on(world, "cmp_a", contact_id, 0)
    newer = start_on(world, "cmp_b", contact_id, 1)
    reply = routing_event("conversation.updated", contact_id, text="yes", conversation="conv_sms")
    handled = world.runner(NOW + timedelta(minutes=5)).bus_event(reply)
    assert handled.runs == (newer,)
    assert world.runs.get(newer).status == RunStatus.COMPLETED
    assert world.runs.get(older).current_step == "await" and not replied(world, older)
    # Redelivered after the answered run finished: still nobody else's answer.
    again = world.runner(NOW + timedelta(minutes=6)).bus_event(reply)
    assert again.outcome == "ignored" and not replied(world, older)
    # The customer's next message answers the older question.
    second = routing_event("conversation.updated", contact_id, text="yes", source_event="ev_reply_2")
    assert world.runner(NOW + timedelta(minutes=7)).bus_event(second).runs == (older,)


def test_a_reply_answers_the_question_asked_on_its_channel(world):
    world.campaign(ask_on("sms"), campaign_id="cmp_sms")
    world.campaign(ask_on("telegram"), campaign_id="cmp_tg")
    record = world.contacts.resolve(
        "acme",
        [Identity(kind="phone", value=PHONE), Identity(kind="handle", value="telegram:4242")],
        reason="test",
        now=NOW,
    )
    sms_run = start_on(world, "cmp_sms", record.id, 0)
    tg_run = start_on(world, "cmp_tg", record.id, 1)  # waiting since later
    assert world.runs.get(tg_run).waiting.asked_to == "4242"
    by_sms = routing_event("conversation.updated", record.id, text="yes", source_event="ev_sms")
    assert world.runner(NOW + timedelta(minutes=5)).bus_event(by_sms).runs == (sms_run,)
    assert not replied(world, tg_run)
    on_telegram = Contact(handles=[SocialHandle(platform="telegram", id="4242")])
    by_tg = routing_event("conversation.updated", record.id, text="yes", source_event="ev_tg", contact=on_telegram)
    assert world.runner(NOW + timedelta(minutes=6)).bus_event(by_tg).runs == (tg_run,)
    # A message on a channel no question went out on (another phone) answers neither.
    world.campaign(ask_on("sms"), campaign_id="cmp_sms2")
    third = start_on(world, "cmp_sms2", record.id, 7)
    elsewhere = routing_event(
        "conversation.updated", record.id, source_event="ev_other", contact=Contact(phone="+15550009999")
    )
    assert world.runner(NOW + timedelta(minutes=10)).bus_event(elsewhere).outcome == "ignored"
    assert not replied(world, third)


def test_a_reply_in_the_triggers_conversation_answers_that_run_first(world):
    world.campaign(NEGATIVE_MENTION)
    world.campaign(ask_on("sms"), campaign_id="cmp_later")
    contact_id = world.contact()
    triggered = world.runner().trigger(trigger_message(contact_id)).runs[0]  # conversation conv_1
    later = start_on(world, "cmp_later", contact_id, 1)  # no conversation, asked later
    in_thread = routing_event("conversation.updated", contact_id, text="yes", conversation="conv_1")
    assert world.runner(NOW + timedelta(minutes=5)).bus_event(in_thread).runs == (triggered,)
    assert not replied(world, later)
    other = routing_event(
        "conversation.updated", contact_id, text="yes", source_event="ev_reply_2", conversation="conv_9"
    )
    assert world.runner(NOW + timedelta(minutes=6)).bus_event(other).runs == (later,)
