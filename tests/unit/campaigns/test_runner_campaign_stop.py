"""A stopped campaign's runs that no StopRequest reached (a stop asks a bounded number): each
stops on its next input, before it sends anything; a run started after the stop runs on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from switchboard_core.campaigns.runs import RunStatus, run_id
from switchboard_core.campaigns.work import StartRequest, StopRequest, TimerMessage
from switchboard_core.outbound.base import TransientFailure
from tests.unit.campaigns.runner_world import ANA, NOW, World, failure
from tests.unit.campaigns.test_runner import GATHER_FLOW, call_report, routing_event, start


@pytest.fixture
def world(aws_world) -> World:
    return World(aws_world)


def stop_campaign(world: World, minutes: int) -> None:
    assert world.campaigns.unpublish("cmp_1", NOW + timedelta(minutes=minutes), stopped_by=ANA)


def test_a_run_started_before_the_stop_stops_on_its_next_input(world):
    world.campaign()
    contact_id = world.contact()
    run = world.runs.get(start(world, contact=contact_id).runs[0])
    stop_campaign(world, 1)
    timer = TimerMessage(run=run.id, sequence=run.waiting.sequence)
    handled = world.runner(NOW + timedelta(hours=4, seconds=1)).timer(timer)
    assert handled.outcome == "applied"
    stopped = world.runs.get(run.id)
    assert stopped.status == RunStatus.STOPPED and stopped.end_reason == "campaign stopped by ana (key k1)"
    assert world.runs.in_flight_for_campaign("cmp_1") == []
    # A reply afterwards is nobody's answer; nothing more was sent.
    reply = routing_event("conversation.updated", contact_id, occurred_at=NOW + timedelta(hours=5))
    assert world.runner(NOW + timedelta(hours=5)).bus_event(reply).outcome == "ignored"
    assert len(world.channels.sent) == 1


def test_a_send_pending_when_the_campaign_stopped_never_goes(world):
    world.campaign()
    contact_id = world.contact()
    world.channels.fail_next = [failure(TransientFailure)]
    with pytest.raises(TransientFailure):
        start(world, contact=contact_id)
    stop_campaign(world, 1)
    run = run_id("cmp_1", contact_id, "req_1")
    # The start request's retry is dropped (no version live); the stop request finds the send.
    assert start(world, contact=contact_id, now=NOW + timedelta(minutes=2)).outcome == "dropped"
    assert world.runner(NOW + timedelta(minutes=2)).stop(StopRequest(run=run, reason="stop")).outcome == "applied"
    assert world.channels.sent == []
    stopped = world.runs.get(run)
    assert stopped.status == RunStatus.STOPPED
    assert stopped.steps_done[0].outcome == "failed" and stopped.steps_done[0].reason.startswith("campaign_stopped")


def test_a_run_started_after_the_stop_and_a_new_publication_runs_on(world):
    world.campaign()
    contact_id = world.contact()
    stop_campaign(world, -1)
    world.campaigns.publish("cmp_1", 1, ANA, NOW)
    request = StartRequest(tenant="acme", campaign="cmp_1", version=1, contact=contact_id, request="r_new")
    run = world.runs.get(world.runner().start(request).runs[0])
    reply = routing_event("conversation.updated", contact_id, text="yes")
    assert world.runner(NOW + timedelta(minutes=6)).bus_event(reply).runs == (run.id,)
    assert world.runs.get(run.id).status == RunStatus.COMPLETED


def test_a_report_arriving_after_the_stop_stops_the_run_and_is_still_recorded(world):
    world.campaign(GATHER_FLOW)
    run = start(world).runs[0]
    stop_campaign(world, 1)
    completed = call_report("call.completed")
    world.channels.outcomes[completed.id] = ("twilio", "CA1", "answered", "1")
    assert world.runner(NOW + timedelta(minutes=2)).bus_event(completed).outcome == "applied"
    stopped = world.runs.get(run)
    assert stopped.status == RunStatus.STOPPED  # not on to the branch and its conversion
    assert [(r.step, r.outcome) for r in stopped.steps_done] == [("ring", "answered"), ("ring", "stopped")]
    assert world.runs.counts("cmp_1")[1]["ring"]["sent"] == 1
