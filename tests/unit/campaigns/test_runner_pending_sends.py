"""Sends and other actions left pending in a run's outbox (a 429 retried, a crash, an
exception mid-action): checked against the contact's consent and quiet hours again before
they go, and never lost to an error that happened before anything went out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from switchboard_core.campaigns.runs import RunStatus, run_id
from switchboard_core.outbound.base import TransientFailure
from tests.unit.campaigns.runner_world import NOW, World, failure
from tests.unit.campaigns.test_runner import routing_event, start


@pytest.fixture
def world(aws_world) -> World:
    return World(aws_world)


def test_a_send_pending_in_the_outbox_does_not_go_to_a_contact_who_opted_out_since(world):
    world.campaign()
    contact_id = world.contact()
    world.channels.fail_next = [failure(TransientFailure, "http_429")]  # the SMS waits for its retry
    with pytest.raises(TransientFailure):
        start(world, contact=contact_id)
    run = run_id("cmp_1", contact_id, "req_1")
    assert world.runs.read(run).outbox  # the send is still to do
    # The customer texts STOP meanwhile (routing records it, then publishes the event).
    world.contacts.record_consent(
        contact_id, opted_out=True, channel="telephony", source="ev_stop", at=NOW + timedelta(minutes=1)
    )
    stop = routing_event("conversation.updated", contact_id, text="STOP", source_event="ev_stop")
    world.runner(NOW + timedelta(minutes=2)).bus_event(stop)
    assert world.channels.sent == []
    stored = world.runs.read(run)
    assert stored.outbox == [] and stored.run.status == RunStatus.STOPPED
    first = stored.run.steps_done[0]
    assert first.step == "text" and first.outcome == "failed" and first.reason.startswith("opted_out")
    # The retry of the start request finds the claim done: still nothing sent.
    assert start(world, contact=contact_id, now=NOW + timedelta(minutes=3)).outcome == "duplicate"
    assert world.channels.sent == []
    assert "campaign.message_sent" not in world.types()


def test_a_send_retried_into_quiet_hours_waits_for_their_end(world):
    world.campaign()
    contact_id = world.contact(timezone="America/New_York")
    evening = datetime(2026, 12, 2, 1, 55, tzinfo=UTC)  # 20:55 in New York
    world.channels.fail_next = [failure(TransientFailure, "http_503")]
    with pytest.raises(TransientFailure):
        start(world, contact=contact_id, now=evening)
    late = evening + timedelta(minutes=10)  # the retry comes at 21:05: quiet hours began
    with pytest.raises(TransientFailure) as held:
        start(world, contact=contact_id, now=late)
    assert held.value.code == "quiet_hours"
    morning = datetime(2026, 12, 2, 13, 0, tzinfo=UTC)  # 08:00 in New York
    assert held.value.retry_after == (morning - late).total_seconds()
    assert world.channels.sent == []
    # Its claim was let go: at 08:00 the same delivery sends it, once.
    assert start(world, contact=contact_id, now=morning).outcome == "duplicate"
    [sms] = world.channels.sent
    assert sms.idempotency_key == f"{run_id('cmp_1', contact_id, 'req_1')}:text:1"
