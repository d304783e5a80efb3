"""Sends and other actions left pending in a run's outbox (a 429 retried, a crash, an
exception mid-action): checked against the contact's consent and quiet hours again before
they go, and never lost to an error that happened before anything went out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from switchboard_core.bus import PublishError
from switchboard_core.campaigns.runner import CLAIM_LEASE, RetryLater
from switchboard_core.campaigns.runs import RunStatus, run_id
from switchboard_core.outbound.base import TransientFailure
from tests.unit.campaigns.runner_world import NOW, World, failure
from tests.unit.campaigns.test_runner import (
    GATHER_FLOW,
    assignee,
    call_report,
    routing_event,
    start,
    trigger_message,
)


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


def throttled(operation: str = "GetItem") -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation)


def fail_once(error: Exception, real: Callable[..., Any]) -> Callable[..., Any]:
    calls = {"n": 0}

    def call(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise error
        return real(*args, **kwargs)

    return call


NOTIFY_FLOW = {
    "start": "tell",
    "steps": {
        "tell": {"type": "notify", "to": {"responder": "resp_1"}, "text": "Call ${name}", "next": "done"},
        "done": {"type": "end"},
    },
}


def test_a_notification_the_bus_refused_is_published_on_the_next_delivery(world):
    world.campaign(NOTIFY_FLOW)
    published = world.published

    def publish(events: list[Any]) -> None:
        if any(e.type == "campaign.notification_requested" for e in events) and not publish.failed:
            publish.failed = True
            raise PublishError("PutEvents failed for 1 entry")
        published.extend(events)

    publish.failed = False  # type: ignore[attr-defined]
    world.deps.publish = publish
    with pytest.raises(TransientFailure) as error:  # the handler retries it with backoff
        start(world)
    assert error.value.code == "publish_failed"
    # Redelivered, even after a claim's lease: done now, not given up as outcome_unknown.
    handled = start(world, now=NOW + CLAIM_LEASE + timedelta(seconds=1))
    assert handled.outcome == "duplicate"
    [notification] = [e for e in published if e.type == "campaign.notification_requested"]
    assert notification.attributes["target"] == "resp_1"
    run = world.runs.get(handled.runs[0])
    assert run.steps_done[0].outcome == "sent" and run.status == RunStatus.COMPLETED


HOOK_THEN_UPDATE = {
    "start": "hook",
    "steps": {
        "hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "payload": {"n": 1}, "next": "tag"},
        "tag": {"type": "update_contact", "set": {"stage": "called"}, "next": "done"},
        "done": {"type": "end"},
    },
}


@pytest.mark.parametrize("failing", ["webhook_keys", "update_contact"])
def test_an_aws_error_while_doing_a_repeatable_action_lets_its_claim_go(world, failing):
    world.campaign(HOOK_THEN_UPDATE)
    contact_id = world.contact()
    if failing == "webhook_keys":  # Secrets Manager throttled
        world.deps.webhook_keys = fail_once(throttled("GetSecretValue"), world.deps.webhook_keys)
    else:  # DynamoDB throttled
        world.contacts.update_attributes = fail_once(  # type: ignore[method-assign]
            throttled("UpdateItem"), world.contacts.update_attributes
        )
    with pytest.raises(ClientError):
        start(world, contact=contact_id)
    handled = start(world, contact=contact_id, now=NOW + CLAIM_LEASE + timedelta(seconds=1))
    run = world.runs.get(handled.runs[0])
    assert [(r.step, r.outcome) for r in run.steps_done] == [("hook", "sent"), ("tag", "sent"), ("done", "ended")]
    assert len(world.posted.calls) == 1
    assert world.contacts.get(contact_id).attributes["stage"] == "called"


def test_a_responder_lookup_failing_before_the_call_is_retried_not_given_up(world):
    world.campaign()
    contact_id = world.contact()
    assignee(world)
    world.runner().trigger(trigger_message(contact_id))
    world.config.responder = fail_once(throttled(), world.config.responder)  # type: ignore[method-assign]
    reply = routing_event("conversation.updated", contact_id, text="no")
    with pytest.raises(TransientFailure) as error:
        world.runner(NOW + timedelta(minutes=6)).bus_event(reply)
    assert error.value.code == "responders_unavailable"
    world.runner(NOW + timedelta(minutes=6) + CLAIM_LEASE).bus_event(reply)  # the reply again
    [_sms, (_call, responder_phone)] = world.channels.sent
    assert responder_phone == "+15550002222"


def test_a_call_report_that_comes_before_the_claim_is_finished_finds_its_run(world):
    world.campaign(GATHER_FLOW)
    completed = call_report("call.completed")
    world.channels.outcomes[completed.id] = ("twilio", "CA1", "answered", "1")
    real_finish = world.runs.finish_claim
    early: dict[str, Any] = {}

    def finish_after_the_report(*args: Any, **kwargs: Any) -> None:
        if not early:  # the provider's callback beats the claim's write
            try:
                early["handled"] = world.runner(NOW).bus_event(completed)
            except RetryLater as later:
                early["retry"] = later
        real_finish(*args, **kwargs)

    world.runs.finish_claim = finish_after_the_report  # type: ignore[method-assign]
    run = start(world).runs[0]
    assert "retry" in early  # its run is known; the report waits for the claim, not dropped
    handled = world.runner(NOW + timedelta(seconds=30)).bus_event(completed)  # the queue's redelivery
    assert handled.outcome == "applied"
    stored = world.runs.get(run)
    assert stored.status == RunStatus.COMPLETED and stored.steps_done[0].outcome == "answered"
    # Another connection's call with the same id is not this run's.
    foreign = completed.model_copy(update={"connection": "con_other", "id": "ev_other"})
    world.channels.outcomes["ev_other"] = ("twilio", "CA1", "not_answered", None)
    assert world.runner().bus_event(foreign).detail == "not a campaign's call"
