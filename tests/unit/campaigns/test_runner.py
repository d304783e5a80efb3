"""The campaign runner against moto: runs started from triggers and start requests, sends done
once however often an input is delivered or a write fails, replies and opt-outs correlated
through the contact, guards, timers on EventBridge Scheduler, outcomes, counts and events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from switchboard_core.campaigns.run_store import RunStore
from switchboard_core.campaigns.runner import CLAIM_LEASE, MalformedWork, RetryLater
from switchboard_core.campaigns.runs import RunStatus, run_id
from switchboard_core.campaigns.work import StartRequest, StopRequest, TimerMessage, TriggerMessage
from switchboard_core.events import CanonicalEvent, Channel, Contact, EventDraft
from switchboard_core.outbound.base import OutcomeUnknown, PermanentFailure, TransientFailure
from switchboard_core.routing.assignment import Responder
from switchboard_core.routing.contact_points import ContactPoint
from switchboard_core.routing.contacts import Identity
from tests.unit.campaigns.runner_world import NOW, PHONE, World, failure


@pytest.fixture
def world(aws_world) -> World:
    return World(aws_world)


def start(world: World, contact: str = PHONE, request: str = "req_1", now: datetime = NOW, **kwargs: Any):
    message = StartRequest(tenant="acme", campaign="cmp_1", version=1, contact=contact, request=request)
    return world.runner(now, **kwargs).start(message)


def routing_event(
    kind: str,
    contact_id: str,
    text: str = "no",
    source_event: str = "ev_reply_1",
    occurred_at: datetime = NOW + timedelta(minutes=5),
    opted_out: bool = False,
    source_type: str = "message.received",
    contact: Contact | None = None,
    **attributes: Any,
) -> CanonicalEvent:
    return CanonicalEvent.from_draft(
        EventDraft(
            type=kind,
            provider_event_id=f"{source_event}:{kind}",
            occurred_at=occurred_at,
            contact=contact or Contact(phone=PHONE),
            text=text,
            attributes={
                "conversation": "conv_1",
                "source_event": source_event,
                "source_type": source_type,
                "topics": ["billing"],
                "sentiment": -0.6,
                "contact": {
                    "id": contact_id,
                    "identities": [f"phone#{PHONE}"],
                    "attributes": {},
                    "opted_out": opted_out,
                },
                **attributes,
            },
        ),
        provider="routing",
        connection="con_twilio",
        tenant="acme",
        channel=Channel.TELEPHONY,
        received_at=occurred_at,
        raw_ref=None,
    )


def assignee(world: World, responder_id: str = "resp_1", phone: str = "+15550002222", teams: tuple = ()) -> None:
    world.config.put_responder(
        Responder(
            id=responder_id,
            tenant="acme",
            name="Rita",
            teams=list(teams),
            contact_points=[ContactPoint(channel="sms", to=phone)],
        )
    )


def trigger_message(contact_id: str, event_id_suffix: str = "1", campaign: str = "cmp_1") -> TriggerMessage:
    event = CanonicalEvent.from_draft(
        EventDraft(
            type="routing.assigned",
            provider_event_id=f"mention_{event_id_suffix}:routing.assigned",
            occurred_at=NOW,
            contact=Contact(phone=PHONE),
            text="this product is terrible",
            attributes={
                "conversation": "conv_1",
                "assignee": "resp_1",
                "queue": "support",
                "contact": {"id": contact_id, "opted_out": False},
            },
        ),
        provider="routing",
        connection="con_x",
        tenant="acme",
        channel=Channel.SOCIAL,
        received_at=NOW,
        raw_ref=None,
    )
    return TriggerMessage(
        campaign=campaign,
        event={"source": "switchboard.routing", "detail-type": event.type, "detail": event.model_dump(mode="json")},
    )


# --- starting ---------------------------------------------------------------------------------------


def test_a_start_request_by_phone_sends_once_waits_and_reports(world):
    world.campaign()
    handled = start(world)
    assert handled.outcome == "started"
    [sms] = world.channels.sent
    assert sms.channel == "sms" and sms.to == PHONE and sms.text == "Hi , all sorted?"
    run = world.runs.get(handled.runs[0])
    assert run.status == RunStatus.WAITING and run.current_step == "await"
    assert [(r.step, r.outcome) for r in run.steps_done] == [("text", "sent"), ("await", "waiting")]
    assert world.runs.read(run.id).outbox == []
    [schedule] = world.schedules()
    assert schedule["Name"] == f"{run.id}-{run.waiting.sequence}"
    assert schedule["ScheduleExpression"] == "at(2026-12-01T18:00:00)"
    assert json.loads(schedule["Target"]["Input"]) == {"kind": "timer", "run": run.id, "sequence": run.waiting.sequence}
    assert world.types() == [
        "campaign.message_sent",
        "campaign.run_started",
        "campaign.step_completed",
        "campaign.step_completed",
    ]
    sent = world.published[0]
    assert sent.attributes["provider_message_id"] == "SM1" and sent.attributes["via"] == "twilio"
    assert sent.attributes["channel"] == "sms" and sent.channel == Channel.TELEPHONY
    assert sent.attributes["contact"] == {"id": run.contact.id} and sent.contact.phone == PHONE
    assert sent.provider == "campaigns" and sent.source == "switchboard.campaigns"
    counts = world.runs.counts("cmp_1")[1]
    assert counts["text"]["entered"] == 1 and counts["text"]["sent"] == 1 and counts["await"]["entered"] == 1
    assert world.runs.pointer("twilio", "con_twilio", "SM1") == (run.id, f"{run.id}:text:1")
    assert world.runs.recent_sends("acme", run.contact.id, timedelta(days=1), NOW).count == 1


def test_a_redelivered_start_request_starts_and_sends_nothing_more(world):
    world.campaign()
    first = start(world)
    events = list(world.published)
    again = start(world, now=NOW + timedelta(seconds=30))
    assert again.outcome == "duplicate" and again.runs == first.runs
    assert len(world.channels.sent) == 1
    assert world.published == events
    assert world.runs.counts("cmp_1")[1]["text"]["entered"] == 1


def test_start_by_contact_id_and_unknown_contacts(world):
    world.campaign()
    contact_id = world.contact(name="Ana", timezone="Europe/Lisbon")
    handled = start(world, contact=contact_id)
    run = world.runs.get(handled.runs[0])
    assert run.contact.time_zone == "Europe/Lisbon" and run.contact.name == "Ana"
    assert world.channels.sent[0].text == "Hi Ana, all sorted?"
    assert start(world, contact="ct_nobody", request="req_2").outcome == "dropped"
    with pytest.raises(MalformedWork):
        start(world, contact="+1 555 abc", request="req_3")


def test_an_unpublished_or_stopped_campaign_starts_nothing(world):
    world.campaign(publish=False)
    assert start(world).outcome == "dropped"
    assert world.channels.sent == []


def test_a_trigger_starts_one_run_with_the_events_conversation_and_assignee(world):
    world.campaign()
    contact_id = world.contact()
    handled = world.runner().trigger(trigger_message(contact_id))
    run = world.runs.get(handled.runs[0])
    assert (run.trigger.conversation, run.trigger.assignee, run.trigger.team) == ("conv_1", "resp_1", "support")
    assert run.trigger.event_type == "routing.assigned"
    assert world.runner().trigger(trigger_message(contact_id)).outcome == "duplicate"
    assert len(world.channels.sent) == 1
    # Another trigger event is another run.
    assert world.runner().trigger(trigger_message(contact_id, "2")).outcome == "started"
    assert len(world.channels.sent) == 2


def test_a_trigger_on_a_providers_event_finds_the_contact_read_only(world):
    world.campaign()
    event = CanonicalEvent.from_draft(
        EventDraft(type="mention.created", provider_event_id="m1", contact=Contact(phone="+15550009999")),
        provider="x",
        connection="con_x",
        tenant="acme",
        channel=Channel.SOCIAL,
        received_at=NOW,
        raw_ref=None,
    )
    message = TriggerMessage(
        campaign="cmp_1", event={"detail-type": event.type, "detail": event.model_dump(mode="json")}
    )
    with pytest.raises(RetryLater):  # routing has not created the contact yet: try again later
        world.runner().trigger(message)
    assert world.contacts.owner("acme", Identity(kind="phone", value="+15550009999")) is None
    world.contact("+15550009999")
    assert world.runner().trigger(message).outcome == "started"


def test_a_run_started_before_routing_threaded_its_trigger_finds_the_assignee_later(world):
    """A provider's event starts the run while routing is still threading it (both consume it at
    once): the run has no conversation yet, and finds it by the event's thread key when it calls."""
    from switchboard_core.routing.conversations import Status

    world.campaign()
    contact_id = world.contact()
    assignee(world)
    mention = CanonicalEvent.from_draft(
        EventDraft(
            type="mention.created",
            provider_event_id="tweet_1",
            occurred_at=NOW,
            contact=Contact(phone=PHONE),
            conversation_key="x:tweet:1",
            text="this product is terrible",
        ),
        provider="x",
        connection="con_x",
        tenant="acme",
        channel=Channel.SOCIAL,
        received_at=NOW,
        raw_ref=None,
    )
    message = TriggerMessage(
        campaign="cmp_1", event={"detail-type": mention.type, "detail": mention.model_dump(mode="json")}
    )
    handled = world.runner().trigger(message)
    run = world.runs.get(handled.runs[0])
    assert run.trigger.conversation is None and run.trigger.conversation_key == "x:tweet:1"
    # Routing threads the mention and assigns it.
    threaded = world.conversations.thread(mention, contact_id, NOW)
    world.conversations.set_status(threaded.conversation, Status.ASSIGNED, "resp_1")
    world.runner(NOW + timedelta(minutes=6)).bus_event(routing_event("conversation.updated", contact_id))
    _sms, (call, responder_phone) = world.channels.sent
    assert call.responder == "assignee" and responder_phone == "+15550002222"
    [notification] = [e for e in world.published if e.type == "campaign.notification_requested"]
    assert notification.attributes["target"] == "resp_1"


def test_a_trigger_of_another_tenant_or_a_bad_event_is_refused(world):
    world.campaign()
    contact_id = world.contact()
    message = trigger_message(contact_id)
    other = message.event | {"detail": message.event["detail"] | {"tenant": "globex"}}
    assert world.runner().trigger(TriggerMessage(campaign="cmp_1", event=other)).outcome == "dropped"
    with pytest.raises(MalformedWork):
        world.runner().trigger(TriggerMessage(campaign="cmp_1", event={"detail": {"type": "x"}}))
    assert world.runner().trigger(trigger_message(contact_id, campaign="cmp_none")).outcome == "dropped"


# --- crashes and redeliveries -----------------------------------------------------------------------


class CrashingStore(RunStore):
    """Fails the next `save` (a state write), as a crash would."""

    crash_saves = 0

    def save(self, *args: Any, **kwargs: Any) -> bool:
        if self.crash_saves:
            self.crash_saves -= 1
            raise RuntimeError("crashed writing the state")
        return super().save(*args, **kwargs)


def test_a_crash_writing_the_state_after_a_send_resumes_without_sending_again(world):
    world.campaign()
    store = CrashingStore(world.runs_table)
    world.deps.runs = store
    store.crash_saves = 1  # the write that records the SMS as sent
    with pytest.raises(RuntimeError):
        start(world)
    assert len(world.channels.sent) == 1
    stored = store.read(run_id("cmp_1", world.contact(), "req_1"))
    assert stored is not None and stored.outbox  # the state with its outbox was written before the send
    handled = start(world, now=NOW + timedelta(minutes=2))  # the queue delivers the request again
    assert handled.outcome == "duplicate"
    assert len(world.channels.sent) == 1
    run = store.get(handled.runs[0])
    assert run is not None and run.steps_done[0].outcome == "sent"
    settled = store.read(run.id)
    assert settled is not None and settled.outbox == []
    assert store.counts("cmp_1")[1]["text"]["sent"] == 1
    assert world.types().count("campaign.message_sent") == 2  # published again, the same event
    assert len({e.id for e in world.published if e.type == "campaign.message_sent"}) == 1


def test_a_crash_in_the_middle_of_a_send_is_never_sent_blindly_again(world):
    world.campaign()
    world.channels.fail_next = [KeyboardInterrupt()]  # the process dies inside the provider call
    with pytest.raises(KeyboardInterrupt):
        start(world)
    with pytest.raises(RetryLater):  # its claim is still within the lease: someone may be sending
        start(world, now=NOW + timedelta(seconds=10))
    handled = start(world, now=NOW + CLAIM_LEASE + timedelta(seconds=1))
    assert world.channels.sent == []
    run = world.runs.get(handled.runs[0])
    assert run.steps_done[0].outcome == "failed" and run.steps_done[0].reason.startswith("outcome_unknown")
    assert world.runs.counts("cmp_1")[1]["text"]["failed"] == 1


def test_a_crash_before_the_provider_request_is_sent_once_its_claim_aged(world):
    """The claim says "I may send", the hand-off mark "it may have gone": a delivery that died
    after its claim but before the provider's request (a lookup, a timeout) left no mark, so the
    redelivery after the lease sends it, once, instead of giving it up as outcome_unknown."""
    world.campaign()
    world.channels.fail_before_request = [KeyboardInterrupt()]  # the process dies before the request
    with pytest.raises(KeyboardInterrupt):
        start(world)
    with pytest.raises(RetryLater):  # its claim is still within the lease: someone may be sending
        start(world, now=NOW + timedelta(seconds=10))
    handled = start(world, now=NOW + CLAIM_LEASE + timedelta(seconds=1))
    assert len(world.channels.sent) == 1
    run = world.runs.get(handled.runs[0])
    assert run.steps_done[0].outcome == "sent"
    start(world, now=NOW + CLAIM_LEASE * 3)  # later redeliveries send nothing more
    assert len(world.channels.sent) == 1


def test_an_error_before_the_provider_request_lets_the_claim_go_at_once(world):
    """A send whose connection or credentials read failed never reached the provider: its claim is
    released, so the next delivery sends at once instead of waiting out the lease."""
    world.campaign()
    world.channels.fail_before_request = [RuntimeError("Secrets Manager unavailable")]
    with pytest.raises(RuntimeError):
        start(world)
    handled = start(world, now=NOW + timedelta(seconds=5))
    assert len(world.channels.sent) == 1
    assert world.runs.get(handled.runs[0]).steps_done[0].outcome == "sent"


def test_a_send_whose_pointer_write_failed_is_still_recorded_sent_and_not_sent_again(world):
    world.campaign()

    class NoPointer(RunStore):
        def put_pointer(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("DynamoDB unavailable")

    world.deps.runs = NoPointer(world.runs_table)
    with pytest.raises(RuntimeError):
        start(world)
    world.deps.runs = world.runs
    # Redelivered after the lease: the claim's result stands in, and the pointer is written now.
    handled = start(world, now=NOW + CLAIM_LEASE + timedelta(seconds=1))
    assert len(world.channels.sent) == 1
    assert world.runs.get(handled.runs[0]).steps_done[0].outcome == "sent"
    assert world.runs.pointer("twilio", "con_twilio", "SM1") == (
        handled.runs[0],
        world.channels.sent[0].idempotency_key,
    )


def test_a_claim_another_delivery_holds_is_retried_soon_not_on_the_backoff(world):
    from functions.campaigns.logic import retry_delay

    world.campaign()
    world.channels.fail_next = [KeyboardInterrupt()]  # died holding the claim, after the request
    with pytest.raises(KeyboardInterrupt):
        start(world)
    with pytest.raises(RetryLater) as busy:
        start(world, now=NOW + timedelta(seconds=10))
    assert retry_delay(busy.value, receive_count=6) == 10  # the backoff would be 160 s
    assert retry_delay(busy.value, receive_count=1) == 5  # the first backoff is shorter still


def test_a_failed_first_state_write_is_simply_done_again(world):
    world.campaign()

    class NoCreate(RunStore):
        def create(self, *args: Any, **kwargs: Any) -> bool:
            raise RuntimeError("DynamoDB unavailable")

    world.deps.runs = NoCreate(world.runs_table)
    with pytest.raises(RuntimeError):
        start(world)
    assert world.channels.sent == []
    world.deps.runs = world.runs
    assert start(world).outcome == "started"
    assert len(world.channels.sent) == 1


def test_a_transient_failure_is_retried_and_an_outcome_unknown_is_not(world):
    world.campaign()
    world.channels.fail_next = [failure(TransientFailure)]
    with pytest.raises(TransientFailure):
        start(world)
    assert start(world).outcome == "duplicate"  # the retry sends it
    assert len(world.channels.sent) == 1
    world.campaign(campaign_id="cmp_2")
    world.channels.fail_next = [OutcomeUnknown("read timeout")]
    handled = world.runner().start(StartRequest(tenant="acme", campaign="cmp_2", version=1, contact=PHONE, request="r"))
    assert len(world.channels.sent) == 1
    assert world.runs.get(handled.runs[0]).steps_done[0].reason.startswith("outcome_unknown")


def test_on_the_last_attempt_a_transient_failure_is_recorded_as_failed(world):
    world.campaign()
    world.channels.fail_next = [failure(TransientFailure)]
    handled = start(world, last_attempt=True)
    run = world.runs.get(handled.runs[0])
    assert run.steps_done[0].outcome == "failed" and "gave up" in run.steps_done[0].reason
    assert run.current_step == "await"  # the run goes on


def test_a_permanent_failure_is_counted_failed_and_the_run_goes_on(world):
    world.campaign()
    world.channels.fail_next = [failure(PermanentFailure, "twilio_21211")]
    handled = start(world)
    run = world.runs.get(handled.runs[0])
    assert run.steps_done[0].outcome == "failed" and run.steps_done[0].reason.startswith("twilio_21211")
    assert world.runs.counts("cmp_1")[1]["text"]["failed"] == 1
    assert "campaign.message_sent" not in world.types()


# --- replies, calls, notifications ------------------------------------------------------------------


def test_a_no_reply_connects_the_assignee_and_notifies_them_once(world):
    world.campaign()
    contact_id = world.contact(name="Ana")
    assignee(world)
    world.runner().trigger(trigger_message(contact_id))
    reply = routing_event("conversation.updated", contact_id, text="No, not at all")
    handled = world.runner(NOW + timedelta(minutes=6)).bus_event(reply)
    assert handled.outcome == "applied"
    _sms, (call, responder_phone) = world.channels.sent
    assert call.responder == "assignee" and call.target == "resp_1" and call.to == PHONE
    assert responder_phone == "+15550002222"
    [notification] = [e for e in world.published if e.type == "campaign.notification_requested"]
    assert notification.attributes["target"] == "resp_1" and notification.text == "Calling Ana now"
    assert notification.attributes["text"] == "Calling Ana now" and notification.attributes["urgent"] is False
    assert notification.attributes["idempotency_key"] == f"{handled.runs[0]}:tell:1"
    assert notification.attributes["version"] == 1 and notification.attributes["campaign_name"] == "negative"
    run = world.runs.get(handled.runs[0])
    assert run.status == RunStatus.COMPLETED
    assert [(r.step, r.outcome) for r in run.steps_done] == [
        ("text", "sent"),
        ("await", "waiting"),
        ("await", "replied"),
        ("read", "case 0"),
        ("call", "requested"),  # settled by the call's report
        ("tell", "sent"),
        ("won", "converted"),
    ]
    assert run.last_reply.topics == ["billing"] and run.last_reply.sentiment == -0.6
    counts = world.runs.counts("cmp_1")[1]
    assert counts["await"]["replied"] == 1 and counts["won"]["converted"] == 1
    [completed] = [e for e in world.published if e.type == "campaign.run_completed"]
    assert completed.attributes["status"] == "completed" and completed.attributes["converted"] is True
    # The same reply delivered again: nothing more.
    published = len(world.published)
    assert world.runner(NOW + timedelta(minutes=7)).bus_event(reply).outcome == "ignored"
    assert len(world.channels.sent) == 2 and len(world.published) == published
    # The call's report settles the call step.
    world.channels.outcomes["rep_1"] = ("twilio", "CA2", "answered", None)
    report = CanonicalEvent.from_draft(
        EventDraft(type="call.completed", provider_event_id="rep_1"),
        provider="twilio",
        connection="con_twilio",
        tenant="acme",
        channel=Channel.TELEPHONY,
        received_at=NOW,
        raw_ref=None,
    )
    world.channels.outcomes[report.id] = world.channels.outcomes.pop("rep_1")
    assert world.runner(NOW + timedelta(minutes=9)).bus_event(report).outcome == "applied"
    assert world.runs.get(run.id).steps_done[4].outcome == "answered"
    assert world.runs.counts("cmp_1")[1]["call"]["sent"] == 1


def test_a_reply_written_before_the_question_or_the_trigger_itself_is_no_answer(world):
    world.campaign()
    contact_id = world.contact()
    handled = world.runner().trigger(trigger_message(contact_id))
    run = world.runs.get(handled.runs[0])
    early = routing_event("conversation.updated", contact_id, occurred_at=NOW - timedelta(minutes=1))
    assert world.runner().bus_event(early).outcome == "ignored"
    itself = routing_event("conversation.opened", contact_id, source_event=run.trigger.event_id)
    assert world.runner().bus_event(itself).outcome == "ignored"
    not_a_turn = routing_event("conversation.updated", contact_id, source_type="call.completed")
    assert world.runner().bus_event(not_a_turn).outcome == "ignored"
    assert world.runs.get(run.id).current_step == "await"


def test_no_assignee_fails_the_call_and_the_notification(world):
    world.campaign()
    contact_id = world.contact()
    start(world, contact=contact_id)
    world.runner(NOW + timedelta(minutes=6)).bus_event(routing_event("conversation.updated", contact_id))
    run = world.runs.list_for_campaign("cmp_1")[0][0]
    outcomes = {r.step: (r.outcome, r.reason) for r in run.steps_done}
    assert outcomes["call"] == ("failed", "no_responder: the conversation has no assignee")
    assert outcomes["tell"][0] == "failed"
    assert len(world.channels.sent) == 1


def test_the_wait_times_out_through_its_timer(world):
    world.campaign()
    handled = start(world)
    run = world.runs.get(handled.runs[0])
    timer = TimerMessage(run=run.id, sequence=run.waiting.sequence)
    early = world.runner(NOW + timedelta(hours=1)).timer(timer)
    assert early.outcome == "ignored"
    # Armed again under a new name (the early one may not be deleted yet), for the same wait.
    rearmed = [x for x in world.schedules() if x["Name"] != f"{run.id}-{run.waiting.sequence}"]
    assert [x["ScheduleExpression"] for x in rearmed] == ["at(2026-12-01T18:00:00)"]
    assert json.loads(rearmed[0]["Target"]["Input"])["sequence"] == run.waiting.sequence
    done = world.runner(NOW + timedelta(hours=4, seconds=1)).timer(timer)
    assert done.outcome == "applied"
    run = world.runs.get(run.id)
    assert run.status == RunStatus.COMPLETED and run.steps_done[2].outcome == "timed_out"
    assert world.runner(NOW + timedelta(hours=5)).timer(timer).outcome == "ignored"  # stale


def test_a_stop_request_stops_the_run(world):
    world.campaign()
    handled = start(world)
    stopped = world.runner().stop(StopRequest(run=handled.runs[0], reason="the campaign was stopped"))
    assert stopped.outcome == "applied"
    run = world.runs.get(handled.runs[0])
    assert run.status == RunStatus.STOPPED and run.end_reason == "the campaign was stopped"
    assert world.runs.in_flight_for_campaign("cmp_1") == []
    assert world.runner().stop(StopRequest(run=handled.runs[0], reason="again")).outcome == "ignored"
    assert world.runner().stop(StopRequest(run="run_missing", reason="x")).outcome == "dropped"


# --- guards -----------------------------------------------------------------------------------------


def test_a_stop_ends_the_contacts_runs_on_that_channel_only(world):
    world.campaign()
    telegram_only = {
        "start": "ask",
        "steps": {
            "ask": {"type": "wait", "duration": "PT1H", "next": "say"},
            "say": {"type": "send_message", "channel": "telegram", "text": "hello", "next": "done"},
            "done": {"type": "end"},
        },
    }
    world.campaign(telegram_only, campaign_id="cmp_tg")
    contact_id = world.contact()
    sms_run = start(world, contact=contact_id).runs[0]
    tg_run = (
        world.runner()
        .start(StartRequest(tenant="acme", campaign="cmp_tg", version=1, contact=contact_id, request="r2"))
        .runs[0]
    )
    world.contacts.record_consent(
        contact_id, opted_out=True, channel="telephony", source="ev_stop", at=NOW + timedelta(minutes=5)
    )
    # Routing's summary is read before it records the opt-out: the contact's consent names the STOP.
    stop = routing_event("conversation.updated", contact_id, text="STOP", source_event="ev_stop", opted_out=False)
    handled = world.runner(NOW + timedelta(minutes=6)).bus_event(stop)
    assert handled.runs == (sms_run,)
    run = world.runs.get(sms_run)
    assert run.status == RunStatus.STOPPED and run.end_reason == "the contact opted out of sms"
    assert world.runs.get(tg_run).status == RunStatus.WAITING
    assert "campaign.run_completed" in world.types()
    # A later message of the opted-out contact stops nothing more and is no reply.
    later = routing_event("conversation.updated", contact_id, text="hi", source_event="ev_later", opted_out=True)
    assert world.runner(NOW + timedelta(minutes=7)).bus_event(later).outcome == "ignored"
    # A new SMS campaign run for the contact stops at its first send.
    world.campaign(campaign_id="cmp_3")
    third = world.runner().start(
        StartRequest(tenant="acme", campaign="cmp_3", version=1, contact=contact_id, request="r3")
    )
    assert world.runs.get(third.runs[0]).end_reason == "the contact opted out of sms"
    assert len(world.channels.sent) == 1


@pytest.mark.parametrize(
    ("consent_channel", "stopped_at_once"),
    [
        ("telephony", {"sms", "whatsapp"}),
        ("social", {"whatsapp", "telegram"}),
        ("crm", {"sms", "whatsapp", "telegram"}),
    ],
)
def test_a_stop_ends_at_once_exactly_the_runs_the_guards_would_stop(world, consent_channel, stopped_at_once):
    from switchboard_core.campaigns.runner import opted_out_channels

    def later_on(channel: str) -> dict[str, Any]:
        return {
            "start": "pause",
            "steps": {
                "pause": {"type": "wait", "duration": "PT1H", "next": "say"},
                "say": {"type": "send_message", "channel": channel, "text": "hello", "next": "done"},
                "done": {"type": "end"},
            },
        }

    record = world.contacts.resolve(
        "acme",
        [Identity(kind="phone", value=PHONE), Identity(kind="handle", value="telegram:42")],
        reason="test",
        now=NOW,
    )
    runs = {}
    for channel in ("sms", "whatsapp", "telegram"):
        world.campaign(later_on(channel), campaign_id=f"cmp_{channel}")
        request = StartRequest(tenant="acme", campaign=f"cmp_{channel}", version=1, contact=record.id, request="r")
        runs[channel] = world.runner().start(request).runs[0]
    world.contacts.record_consent(
        record.id, opted_out=True, channel=consent_channel, source="ev_stop", at=NOW + timedelta(minutes=5)
    )
    stop = routing_event("conversation.updated", record.id, text="STOP", source_event="ev_stop")
    world.runner(NOW + timedelta(minutes=6)).bus_event(stop)
    stopped = {channel for channel, run in runs.items() if world.runs.get(run).status == RunStatus.STOPPED}
    assert stopped == stopped_at_once
    # The guards refuse the same channels: a run left waiting is one they would let send.
    refused = opted_out_channels(world.contacts.get(record.id).consent)
    assert {c for c in runs if c in refused or "*" in refused} == stopped_at_once


def test_quiet_hours_postpone_the_send_to_their_end(world):
    world.campaign()
    contact_id = world.contact(timezone="America/New_York")
    late = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)  # 22:00 in New York
    handled = start(world, contact=contact_id, now=late)
    run = world.runs.get(handled.runs[0])
    assert world.channels.sent == []
    assert run.waiting.kind == "postponed" and run.waiting.reason == "quiet_hours"
    assert run.waiting.until == datetime(2026, 12, 2, 13, 0, tzinfo=UTC)  # 08:00 in New York
    [schedule] = world.schedules()
    assert schedule["ScheduleExpression"] == "at(2026-12-02T13:00:00)"
    woke = world.runner(run.waiting.until).timer(TimerMessage(run=run.id, sequence=run.waiting.sequence))
    assert woke.outcome == "applied"
    assert len(world.channels.sent) == 1
    assert world.channels.sent[0].idempotency_key == f"{run.id}:text:1"  # the same visit, the same key


def test_the_frequency_cap_counts_sends_across_campaigns(world):
    world.campaign()
    contact_id = world.contact()
    for key in ("a", "b", "c"):
        world.runs.record_send("acme", contact_id, key, NOW - timedelta(hours=2), timedelta(days=1))
    handled = start(world, contact=contact_id)
    run = world.runs.get(handled.runs[0])
    assert world.channels.sent == []
    assert run.waiting.reason == "frequency_cap"
    assert run.waiting.until == NOW - timedelta(hours=2) + timedelta(days=1)


# --- webhooks and contact updates -------------------------------------------------------------------


HOOK_FLOW = {
    "start": "hook",
    "steps": {
        "hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "payload": {"n": 1}, "next": "tag"},
        "tag": {"type": "update_contact", "set": {"stage": "called"}, "remove": ["tier"], "next": "done"},
        "done": {"type": "end"},
    },
}


def test_a_webhook_is_signed_and_sent_to_the_checked_address_and_the_contact_updated(world):
    world.campaign(HOOK_FLOW)
    contact_id = world.contact(tier="gold", keep="yes")
    handled = start(world, contact=contact_id)
    [(endpoint, body, headers)] = world.posted.calls
    assert endpoint.addresses == ("127.0.0.1",) and endpoint.port == 9
    assert json.loads(body)["payload"] == {"n": 1} and json.loads(body)["contact"] == contact_id
    assert headers["webhook-id"] == f"{handled.runs[0]}:hook:1"
    assert headers["webhook-signature"].startswith("v1,")
    assert world.contacts.get(contact_id).attributes == {"stage": "called", "keep": "yes"}
    assert world.runs.get(handled.runs[0]).status == RunStatus.COMPLETED


def test_a_refused_or_failing_webhook_fails_its_step(world):
    world.campaign(HOOK_FLOW)
    world.deps.local_endpoints = False  # on AWS: https to a public address only
    handled = start(world)
    run = world.runs.get(handled.runs[0])
    assert run.steps_done[0].outcome == "failed" and run.steps_done[0].reason.startswith("endpoint_refused")
    assert world.posted.calls == []
    world.deps.local_endpoints = True
    world.campaign(HOOK_FLOW, campaign_id="cmp_2")
    world.posted.status = 503
    with pytest.raises(TransientFailure):
        world.runner().start(StartRequest(tenant="acme", campaign="cmp_2", version=1, contact=PHONE, request="r"))
    world.posted.status = 400
    handled = world.runner().start(StartRequest(tenant="acme", campaign="cmp_2", version=1, contact=PHONE, request="r"))
    assert world.runs.get(handled.runs[0]).steps_done[0].reason == "webhook_refused: HTTP 400"
    assert len(world.posted.calls) == 2


def test_delivery_reports_of_campaign_messages_only(world):
    world.campaign()
    start(world)
    report = CanonicalEvent.from_draft(
        EventDraft(
            type="message.status_updated",
            provider_event_id="SM1:failed",
            attributes={"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30003"},
        ),
        provider="twilio",
        connection="con_twilio",
        tenant="acme",
        channel=Channel.TELEPHONY,
        received_at=NOW,
        raw_ref=None,
    )
    # Already settled as sent when the provider took it: a later report changes nothing.
    assert world.runner().bus_event(report).outcome == "ignored"
    other = report.model_copy(update={"attributes": {"MessageSid": "SM999", "MessageStatus": "delivered"}})
    assert world.runner().bus_event(other).detail == "not a campaign's message"
    own = routing_event("campaign.message_sent", "ct").model_copy(update={"provider": "campaigns"})
    assert world.runner().bus_event(own).outcome == "ignored"


GATHER_FLOW = {
    "start": "ring",
    "steps": {
        "ring": {
            "type": "place_call",
            "say": "Press 1 to talk to us",
            "gather": {"num_digits": 1, "timeout_seconds": 5},
            "next": "pick",
        },
        "pick": {"type": "branch", "cases": [{"when": {"digits": "1"}, "next": "won"}], "default": "done"},
        "won": {"type": "end", "converted": True},
        "done": {"type": "end"},
    },
}


def call_report(kind: str, n: int = 1) -> CanonicalEvent:
    return CanonicalEvent.from_draft(
        EventDraft(type=kind, provider_event_id=f"CA1:{kind}:{n}"),
        provider="twilio",
        connection="con_twilio",
        tenant="acme",
        channel=Channel.TELEPHONY,
        received_at=NOW,
        raw_ref=None,
    )


def test_a_call_with_keypad_input_waits_for_its_report_and_branches_on_the_digits(world):
    world.campaign(GATHER_FLOW)
    handled = start(world)
    [call] = world.channels.sent
    assert call.say == "Press 1 to talk to us" and call.gather.num_digits == 1
    run = world.runs.get(handled.runs[0])
    assert run.waiting.kind == "call" and run.steps_done[0].outcome == "requested"
    ringing = call_report("call.in_progress")
    assert world.runner().bus_event(ringing).outcome == "ignored"  # not an outcome
    completed = call_report("call.completed")
    world.channels.outcomes[completed.id] = ("twilio", "CA1", "answered", "1")
    assert world.runner(NOW + timedelta(minutes=1)).bus_event(completed).outcome == "applied"
    run = world.runs.get(run.id)
    assert run.status == RunStatus.COMPLETED and run.last_digits == "1"
    assert [(r.step, r.outcome) for r in run.steps_done] == [
        ("ring", "answered"),
        ("pick", "case 0"),
        ("won", "converted"),
    ]
    # The report again: nothing more; another tenant's report of the same call id: not this run.
    assert world.runner(NOW + timedelta(minutes=2)).bus_event(completed).outcome == "ignored"
    foreign = completed.model_copy(update={"tenant": "globex", "id": "other"})
    world.channels.outcomes["other"] = ("twilio", "CA1", "not_answered", None)
    assert world.runner().bus_event(foreign).outcome == "dropped"
    assert world.runs.counts("cmp_1")[1]["ring"]["sent"] == 1


def test_a_webhook_of_a_tenant_without_a_signing_secret_fails_its_step(world):
    from switchboard_core import aws
    from switchboard_core.notification_signing import NotificationSigningKeys

    keys = NotificationSigningKeys(
        aws.client("secretsmanager"), "switchboard/test/notifications/", create_missing=False
    )
    world.deps.webhook_keys = keys.keys
    world.campaign(HOOK_FLOW)
    handled = start(world)
    record = world.runs.get(handled.runs[0]).steps_done[0]
    assert record.outcome == "failed" and record.reason.startswith("not_configured: tenant acme has no notification")
    assert world.posted.calls == []
    # Once the notifications function created it, the same step signs with it.
    NotificationSigningKeys(aws.client("secretsmanager"), "switchboard/test/notifications/").keys("acme")
    world.campaign(HOOK_FLOW, campaign_id="cmp_2")
    world.runner().start(StartRequest(tenant="acme", campaign="cmp_2", version=1, contact=PHONE, request="r"))
    assert len(world.posted.calls) == 1


TWO_SENDS = {
    "start": "ask",
    "steps": {
        "ask": {"type": "send_message", "channel": "sms", "text": "All sorted?", "next": "await"},
        "await": {"type": "wait_for_reply", "timeout": "PT4H", "next": "thanks", "on_timeout": "done"},
        "thanks": {"type": "send_message", "channel": "sms", "text": "Thanks!", "next": "done"},
        "done": {"type": "end"},
    },
}


@pytest.mark.parametrize("crash_on_save", [1, 2])  # the reply's state write; the write after the second send
def test_a_crash_between_two_steps_resumes_the_reply_without_repeating_a_send(world, crash_on_save):
    world.campaign(TWO_SENDS)
    contact_id = world.contact()
    store = CrashingStore(world.runs_table)
    world.deps.runs = store
    start(world, contact=contact_id)
    reply = routing_event("conversation.updated", contact_id, text="yes")
    saves = {"n": 0}
    original = RunStore.save

    def crash_on(self, *args: Any, **kwargs: Any) -> bool:
        saves["n"] += 1
        if saves["n"] == crash_on_save:
            raise RuntimeError("crashed writing the state")
        return original(self, *args, **kwargs)

    store.save = crash_on.__get__(store)  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        world.runner(NOW + timedelta(minutes=6)).bus_event(reply)
    assert [a.text for a in world.channels.sent] == ["All sorted?", *(["Thanks!"] if crash_on_save == 2 else [])]
    world.runner(NOW + timedelta(minutes=8)).bus_event(reply)  # the queue delivers the reply again
    assert [a.text for a in world.channels.sent] == ["All sorted?", "Thanks!"]
    [run] = world.runs.list_for_campaign("cmp_1")[0]
    assert run.status == RunStatus.COMPLETED
    assert [(r.step, r.outcome) for r in run.steps_done] == [
        ("ask", "sent"),
        ("await", "waiting"),
        ("await", "replied"),
        ("thanks", "sent"),
        ("done", "ended"),
    ]
    counts = world.runs.counts("cmp_1")[1]
    assert counts["thanks"] == {"entered": 1, "sent": 1, "replied": 0, "failed": 0, "converted": 0}
    assert counts["await"]["replied"] == 1


WAIT_AFTER_REPLY = {
    "start": "ask",
    "steps": {
        "ask": {"type": "send_message", "channel": "sms", "text": "All sorted?", "next": "await"},
        "await": {"type": "wait_for_reply", "timeout": "PT4H", "next": "later", "on_timeout": "done"},
        "later": {"type": "wait", "duration": "P1D", "next": "done"},
        "done": {"type": "end"},
    },
}


def test_a_reply_redelivered_after_a_crash_finishes_the_change_it_made(world):
    world.campaign(WAIT_AFTER_REPLY)
    contact_id = world.contact()
    start(world, contact=contact_id)

    class FailingScheduler:
        def schedule(self, *args: Any) -> None:
            raise RuntimeError("crashed before the timer was scheduled")

    real = world.deps.scheduler
    world.deps.scheduler = FailingScheduler()
    reply = routing_event("conversation.updated", contact_id, text="yes")
    with pytest.raises(RuntimeError):
        world.runner(NOW + timedelta(minutes=6)).bus_event(reply)
    [run] = world.runs.list_for_campaign("cmp_1")[0]
    assert run.waiting.kind == "timer" and world.runs.read(run.id).outbox  # no longer waits for a reply
    world.deps.scheduler = real
    before = {s["Name"] for s in world.schedules()}
    world.runner(NOW + timedelta(minutes=8)).bus_event(reply)  # the queue delivers the reply again
    assert world.runs.read(run.id).outbox == []
    [timer] = [s for s in world.schedules() if s["Name"] not in before]
    assert timer["Name"] == f"{run.id}-{run.waiting.sequence}"
