"""The run engine: the negative-mention story end to end, branches, waits, timers, replies,
outcomes, stops, versions, idempotency keys, and the inputs it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from switchboard_core.campaigns.engine import (
    CALL_OUTCOME_TIMEOUT,
    MAX_STEPS_PER_CALL,
    RunError,
    advance,
    render,
    start,
)
from switchboard_core.campaigns.flow import Flow, check_flow
from switchboard_core.campaigns.guards import SendGuards
from switchboard_core.campaigns.models import Author, Campaign
from switchboard_core.campaigns.runs import (
    ACTIONS,
    RUN_INPUT,
    Advanced,
    ConnectCallAction,
    EndAction,
    NotifyAction,
    Outcome,
    PlaceCallAction,
    Reply,
    Run,
    RunContact,
    RunStatus,
    RunTrigger,
    ScheduleAction,
    SendMessageAction,
    Stop,
    TimerFired,
    UpdateContactAction,
    WebhookAction,
    run_id,
)

EXAMPLE = Path(__file__).parents[3] / "docs" / "examples" / "campaign-negative-mention.yaml"
NOW = datetime(2026, 6, 2, 10, 0, tzinfo=UTC)  # noon in Paris: no quiet hours
NO_QUIET = SendGuards(quiet_hours=None)


def campaign(cid: str = "cmp_1", name: str = "negative-mention") -> Campaign:
    author = Author(key_id="k1", name="ana")
    return Campaign(id=cid, tenant="acme", name=name, owner=author, created_at=NOW, updated_at=NOW, latest_version=1)


def build(steps: dict[str, dict[str, Any]], first: str | None = None) -> Flow:
    checked, problems = check_flow({"start": first or next(iter(steps)), "steps": steps})
    assert problems == [] and checked is not None, problems
    return checked


def example_flow() -> Flow:
    checked, problems = check_flow(yaml.safe_load(EXAMPLE.read_text())["flow"])
    assert checked is not None, problems
    return checked


CONTACT = RunContact(
    id="ct_1",
    name="Maya",
    phone="+14155550100",
    channels={"telegram": "998877"},
    time_zone="Europe/Paris",
    attributes={"tier": "gold"},
)
TRIGGER = RunTrigger(event_id="evt_mention_1", event_type="mention.created", conversation="cv_1", assignee="ana")


def begin(flow: Flow, contact: RunContact = CONTACT, version: int = 1, **kw: Any) -> Advanced:
    return start(flow, campaign(), version, contact, TRIGGER, kw.pop("now", NOW), kw.pop("guards", NO_QUIET))


def step(run: Run, flow: Flow, event: Any, now: datetime = NOW, guards: SendGuards = NO_QUIET) -> Advanced:
    return advance(run, flow, event, now, guards)


def kinds(result: Advanced) -> list[str]:
    return [action.kind for action in result.actions]


def only(result: Advanced, kind: type) -> Any:
    found = [action for action in result.actions if isinstance(action, kind)]
    assert len(found) == 1, result.actions
    return found[0]


# --- the story ----------------------------------------------------------------------------------


def test_a_negative_mention_texts_then_a_no_connects_the_assignee_and_notifies_them():
    flow = example_flow()
    started = begin(flow)
    run = started.run
    assert run.status is RunStatus.WAITING and run.current_step == "await_answer" and run.sequence == 1
    assert run.id == run_id("cmp_1", "ct_1", "evt_mention_1") and run.version == 1
    sms = only(started, SendMessageAction)
    assert sms.channel == "sms" and sms.to == "+14155550100"
    assert sms.text == "Hi Maya, we saw your post and we're sorry. Did we sort it out? Reply YES or NO."
    assert sms.idempotency_key == f"{run.id}:text_customer:1"
    wake = only(started, ScheduleAction)
    assert wake.at == NOW + timedelta(hours=4) and wake.sequence == 1 and run.wake_at == wake.at
    assert run.waiting is not None and run.waiting.kind == "reply"
    assert [(c.step, c.counter) for c in started.counters] == [
        ("text_customer", "entered"),
        ("await_answer", "entered"),
    ]

    sent = step(run, flow, Outcome(idempotency_key=sms.idempotency_key, result="sent"), NOW + timedelta(seconds=2))
    assert sent.actions == [] and [(c.step, c.counter) for c in sent.counters] == [("text_customer", "sent")]
    assert sent.run.steps_done[0].outcome == "sent" and sent.run.waiting == run.waiting  # still waits, same timer

    later = NOW + timedelta(minutes=20)
    answered = step(
        sent.run, flow, Reply(event_id="evt_reply_1", text="No, it still drops calls", sentiment=-0.6), later
    )
    assert kinds(answered) == ["connect_call", "notify", "end"]
    call = only(answered, ConnectCallAction)
    assert (call.responder, call.target, call.to) == ("assignee", "ana", "+14155550100")
    notify = only(answered, NotifyAction)
    assert notify.to == "assignee" and notify.target == "ana" and notify.urgent
    assert notify.text == (
        'Campaign negative-mention: Maya said the problem is not solved ("No, it still drops calls"); '
        "you are being connected."
    )
    assert answered.run.status is RunStatus.COMPLETED and answered.run.current_step is None
    assert answered.run.ended_at == later and answered.run.wake_at is None
    assert ("await_answer", "replied") in [(c.step, c.counter) for c in answered.counters]
    branch = next(record for record in answered.run.steps_done if record.step == "read_answer")
    assert (branch.outcome, branch.next) == ("case 0", "call_customer")
    assert answered.run.sequence == 3


def test_a_reply_of_other_words_takes_the_default():
    flow = example_flow()
    run = begin(flow).run
    result = step(run, flow, Reply(event_id="r1", text="Nothing to say", sentiment=0.1))
    assert kinds(result) == ["notify", "end"]
    assert only(result, NotifyAction).target == "front-desk"
    assert next(r for r in result.run.steps_done if r.step == "read_answer").outcome == "default"


def test_reply_words_are_whole_words_and_phrases_case_insensitive():
    flow = example_flow()
    run = begin(flow).run
    # "know" and "nobody" hold "no" but not as a word; "NOT   really" is the phrase.
    assert kinds(step(run, flow, Reply(event_id="r1", text="I know, nobody told me"))) == ["notify", "end"]
    assert kinds(step(run, flow, Reply(event_id="r2", text="NOT   really."))) == ["connect_call", "notify", "end"]
    thanked = step(run, flow, Reply(event_id="r3", text="Yep! all good"))
    assert only(thanked, SendMessageAction).text == "Glad to hear it, Maya. Thanks for letting us know!"
    assert thanked.run.status is RunStatus.COMPLETED
    assert ("resolved", "converted") in [(c.step, c.counter) for c in thanked.counters]
    assert only(thanked, EndAction).converted


def test_a_wait_for_reply_times_out_to_on_timeout_and_then_the_wait():
    flow = example_flow()
    run = begin(flow).run
    at = NOW + timedelta(hours=4)
    timed_out = step(run, flow, TimerFired(sequence=1), at)
    assert timed_out.run.current_step == "nudge_later" and timed_out.run.waiting.kind == "timer"
    assert only(timed_out, ScheduleAction).at == at + timedelta(days=1)
    assert [r.outcome for r in timed_out.run.steps_done][-2:] == ["timed_out", "waiting"]
    nudged = step(timed_out.run, flow, TimerFired(sequence=timed_out.run.sequence), at + timedelta(days=1))
    assert only(nudged, SendMessageAction).text.startswith("Hi Maya, just checking in")
    assert nudged.run.current_step == "await_last"
    ended = step(nudged.run, flow, TimerFired(sequence=nudged.run.sequence), at + timedelta(days=3))
    assert kinds(ended) == ["end"] and ended.run.status is RunStatus.COMPLETED


def test_a_branch_after_a_timeout_does_not_test_an_older_reply():
    flow = build(
        {
            "ask": {"type": "wait_for_reply", "timeout": "PT1H", "next": "again", "on_timeout": "read"},
            "again": {"type": "wait_for_reply", "timeout": "PT1H", "next": "read", "on_timeout": "read"},
            "read": {"type": "branch", "cases": [{"when": {"reply_words": ["no"]}, "next": "yes"}], "default": "d"},
            "yes": {"type": "end", "converted": True},
            "d": {"type": "end"},
        }
    )
    run = begin(flow).run
    first = step(run, flow, Reply(event_id="r1", text="no"))  # to `again`, which forgets it
    assert first.run.current_step == "again"
    ended = step(first.run, flow, TimerFired(sequence=first.run.sequence), NOW + timedelta(hours=2))
    assert ended.run.steps_done[-1].step == "d"


def test_a_stale_timer_does_nothing():
    flow = example_flow()
    run = begin(flow).run
    replied = step(run, flow, Reply(event_id="r1", text="yes"))
    stale = step(replied.run, flow, TimerFired(sequence=1), NOW + timedelta(hours=4))
    assert stale.run == replied.run and stale.actions == [] and "stale timer" in (stale.ignored or "")
    other = begin(example_flow()).run
    assert "stale" in (step(other, flow, TimerFired(sequence=7), NOW + timedelta(hours=5)).ignored or "")


def test_an_early_timer_keeps_the_same_wake_up():
    flow = example_flow()
    run = begin(flow).run
    early = step(run, flow, TimerFired(sequence=1), NOW + timedelta(hours=1))
    assert early.run == run and "early" in (early.ignored or "")
    assert only(early, ScheduleAction).at == NOW + timedelta(hours=4)


def test_a_redelivered_reply_does_nothing_new():
    flow = example_flow()
    run = begin(flow).run
    reply = Reply(event_id="evt_reply_1", text="no")
    once = step(run, flow, reply)
    again = step(once.run, flow, reply, NOW + timedelta(minutes=1))
    assert again.run == once.run and again.run.sequence == once.run.sequence
    assert again.actions == [] and again.counters == [] and "duplicate reply" in (again.ignored or "")


def test_a_redelivered_reply_is_recognised_even_when_a_later_wait_listens_again():
    flow = build(
        {
            "ask": {"type": "wait_for_reply", "timeout": "PT1H", "next": "again", "on_timeout": "done"},
            "again": {"type": "wait_for_reply", "timeout": "PT1H", "next": "done", "on_timeout": "done"},
            "done": {"type": "end"},
        }
    )
    first = step(begin(flow).run, flow, Reply(event_id="r1", text="hi"))
    assert first.run.current_step == "again"
    assert step(first.run, flow, Reply(event_id="r1", text="hi")).ignored is not None


def test_a_reply_nobody_waits_for_changes_nothing():
    flow = build(
        {
            "pause": {"type": "wait", "duration": "PT1H", "next": "done"},
            "done": {"type": "end"},
        }
    )
    run = begin(flow).run
    result = step(run, flow, Reply(event_id="r1", text="hello"))
    assert result.run == run and result.ignored == "the run is not waiting for a reply"


def test_a_stop_ends_the_run_and_later_inputs_are_refused_clearly():
    flow = example_flow()
    run = begin(flow).run
    stopped = step(run, flow, Stop(reason="the contact replied STOP"))
    assert stopped.run.status is RunStatus.STOPPED and stopped.run.end_reason == "the contact replied STOP"
    assert kinds(stopped) == ["end"] and stopped.run.waiting is None
    with pytest.raises(RunError) as raised:
        step(stopped.run, flow, Reply(event_id="r9", text="no"))
    assert raised.value.code == "run_finished" and "stopped" in raised.value.message
    with pytest.raises(RunError) as raised:
        step(stopped.run, flow, Stop(reason="again"))
    assert raised.value.code == "run_finished"
    late = step(stopped.run, flow, TimerFired(sequence=1), NOW + timedelta(hours=4))
    assert late.run == stopped.run and "stopped" in (late.ignored or "")


def test_an_outcome_after_the_run_completed_is_still_recorded():
    flow = example_flow()
    done = step(begin(flow).run, flow, Reply(event_id="r1", text="yes"))
    thanks = only(done, SendMessageAction)
    recorded = step(done.run, flow, Outcome(idempotency_key=thanks.idempotency_key, result="failed", reason="30007"))
    assert recorded.run.status is RunStatus.COMPLETED and recorded.actions == []
    assert [(c.step, c.counter) for c in recorded.counters] == [("thank", "failed")]
    duplicate = step(recorded.run, flow, Outcome(idempotency_key=thanks.idempotency_key, result="sent"))
    assert duplicate.run == recorded.run and "duplicate outcome" in (duplicate.ignored or "")


def test_an_outcome_for_an_action_never_requested_is_refused():
    flow = example_flow()
    run = begin(flow).run
    with pytest.raises(RunError) as raised:
        step(run, flow, Outcome(idempotency_key=f"{run.id}:thank:1", result="sent"))
    assert raised.value.code == "unknown_action" and "thank" in raised.value.message


def test_an_unknown_step_is_named():
    flow = example_flow()
    run = begin(flow).run
    other = build({"elsewhere": {"type": "end"}})
    with pytest.raises(RunError) as raised:
        step(run, other, Reply(event_id="r1", text="no"))
    assert raised.value.code == "unknown_step" and "'await_answer'" in raised.value.message
    with pytest.raises(RunError):
        step(run, other, TimerFired(sequence=1), NOW + timedelta(hours=5))


# --- versions and idempotency -------------------------------------------------------------------


def test_a_run_keeps_its_version_after_a_new_one_is_published():
    v1 = example_flow()
    document = yaml.safe_load(EXAMPLE.read_text())["flow"]
    document["steps"]["call_customer"]["responder"] = {"team": "escalations"}
    v2 = Flow.model_validate(document)
    on_v1 = begin(v1, version=1).run
    on_v2 = start(v2, campaign(), 2, CONTACT.model_copy(update={"id": "ct_2"}), TRIGGER, NOW, NO_QUIET).run
    assert (on_v1.version, on_v2.version) == (1, 2)
    # The caller gives each run its own version's flow: the v1 run still calls the assignee.
    assert only(step(on_v1, v1, Reply(event_id="r1", text="no")), ConnectCallAction).responder == "assignee"
    assert only(step(on_v2, v2, Reply(event_id="r2", text="no")), ConnectCallAction).target == "escalations"


def test_a_redelivered_trigger_gives_the_same_run_and_the_same_keys():
    flow = example_flow()
    first, second = begin(flow), begin(flow, now=NOW + timedelta(seconds=30))
    assert first.run.id == second.run.id
    assert only(first, SendMessageAction) == only(second, SendMessageAction)
    assert begin(flow, version=2).run.id == first.run.id  # the version is not part of the run's identity
    other = start(flow, campaign(), 1, CONTACT, TRIGGER.model_copy(update={"event_id": "evt_2"}), NOW, NO_QUIET)
    assert other.run.id != first.run.id


def test_each_visit_of_a_step_gets_its_own_key():
    flow = build(
        {
            "text": {"type": "send_message", "channel": "telegram", "text": "Still there?", "next": "ask"},
            "ask": {"type": "wait_for_reply", "timeout": "P1D", "next": "done", "on_timeout": "text"},
            "done": {"type": "end"},
        }
    )
    first = begin(flow)
    assert only(first, SendMessageAction).to == "998877"
    second = step(first.run, flow, TimerFired(sequence=1), NOW + timedelta(days=1))
    keys = [only(result, SendMessageAction).idempotency_key for result in (first, second)]
    assert keys == [f"{first.run.id}:text:1", f"{first.run.id}:text:2"]
    assert second.run.visits == {"text": 2, "ask": 2}


# --- the other steps ----------------------------------------------------------------------------


def test_a_call_with_gather_waits_for_its_digits_and_branches_on_them():
    flow = build(
        {
            "call": {"type": "place_call", "say": "Hi ${name}, press 1", "gather": {"num_digits": 1}, "next": "keys"},
            "keys": {"type": "branch", "cases": [{"when": {"digits": "1"}, "next": "bridge"}], "default": "done"},
            "bridge": {"type": "connect_call", "responder": {"number": "+14155550199"}, "next": "done"},
            "done": {"type": "end"},
        }
    )
    started = begin(flow)
    call = only(started, PlaceCallAction)
    assert call.say == "Hi Maya, press 1" and call.gather is not None
    assert started.run.waiting.kind == "call"
    assert only(started, ScheduleAction).at == NOW + CALL_OUTCOME_TIMEOUT
    answered = step(started.run, flow, Outcome(idempotency_key=call.idempotency_key, result="answered", digits="1"))
    assert only(answered, ConnectCallAction).target == "+14155550199"
    assert ("call", "sent") in [(c.step, c.counter) for c in answered.counters]
    silent = step(started.run, flow, TimerFired(sequence=1), NOW + CALL_OUTCOME_TIMEOUT)
    assert kinds(silent) == ["end"] and silent.run.steps_done[0].outcome == "no_outcome"


def test_wait_until_a_local_time_and_a_moment():
    flow = build(
        {
            "morning": {"type": "wait", "until": "09:00", "next": "moment"},
            "moment": {"type": "wait", "until": "2026-06-03T12:00:00+00:00", "next": "past"},
            "past": {"type": "wait", "until": "2020-01-01T00:00:00+00:00", "next": "done"},
            "done": {"type": "end"},
        }
    )
    started = begin(flow)  # 12:00 in Paris: the next 09:00 there is tomorrow, 07:00 UTC
    assert only(started, ScheduleAction).at == datetime(2026, 6, 3, 7, 0, tzinfo=UTC)
    woke = step(started.run, flow, TimerFired(sequence=1), datetime(2026, 6, 3, 7, 0, tzinfo=UTC))
    assert only(woke, ScheduleAction).at == datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
    done = step(woke.run, flow, TimerFired(sequence=woke.run.sequence), datetime(2026, 6, 3, 12, 0, tzinfo=UTC))
    assert kinds(done) == ["end"]  # a moment already past does not wait
    assert [r.outcome for r in done.run.steps_done if r.step == "past"] == ["waited"]


def test_notify_webhook_and_update_contact_actions():
    flow = build(
        {
            "tag": {"type": "update_contact", "set": {"stage": "asked"}, "remove": ["tier"], "next": "hook"},
            "hook": {"type": "webhook", "url": "https://crm.example.com/h", "payload": {"a": 1}, "next": "check"},
            "check": {
                "type": "branch",
                "cases": [{"when": {"attribute": {"name": "stage", "equals": "asked"}}, "next": "tell"}],
                "default": "done",
            },
            "tell": {"type": "notify", "to": {"team": "sales"}, "text": "${name} is ${attr_stage}", "next": "done"},
            "done": {"type": "end"},
        }
    )
    result = begin(flow)
    assert kinds(result) == ["update_contact", "webhook", "notify", "end"]
    update = only(result, UpdateContactAction)
    assert (update.contact, update.set, update.remove) == ("ct_1", {"stage": "asked"}, ["tier"])
    hook = only(result, WebhookAction)
    assert hook.payload == {
        "campaign": "cmp_1",
        "version": 1,
        "run": result.run.id,
        "step": "hook",
        "contact": "ct_1",
        "payload": {"a": 1},
    }
    assert only(result, NotifyAction).text == "Maya is asked"
    assert result.run.contact.attributes == {"stage": "asked"}
    assert len({a.idempotency_key for a in result.actions if hasattr(a, "idempotency_key")}) == 3


def test_a_contact_without_an_address_for_the_channel_fails_the_step_and_goes_on():
    flow = build(
        {
            "text": {"type": "send_message", "channel": "slack", "text": "hi", "next": "done"},
            "done": {"type": "end"},
        }
    )
    result = begin(flow)
    assert kinds(result) == ["end"]
    assert result.run.steps_done[0].outcome == "failed" and "slack" in (result.run.steps_done[0].reason or "")
    assert ("text", "failed") in [(c.step, c.counter) for c in result.counters]


def test_templates_fill_attributes_and_leave_absent_values_empty():
    run = begin(example_flow()).run
    assert render("${attr_tier}/${attr_missing}/${team}/$$5/${reply}", run) == "gold///$5/"


def test_a_long_chain_of_immediate_steps_is_cut_into_calls():
    count = MAX_STEPS_PER_CALL + 10
    steps = {
        f"s{i}": {"type": "update_contact", "set": {"n": str(i)}, "next": f"s{i + 1}" if i + 1 < count else "done"}
        for i in range(count)
    }
    flow = build({**steps, "done": {"type": "end"}}, first="s0")
    first = begin(flow)
    assert len(first.actions) == MAX_STEPS_PER_CALL + 1 and first.run.status is RunStatus.ACTIVE
    wake = only(first, ScheduleAction)
    assert wake.at == NOW and first.run.waiting.kind == "continue"
    rest = step(first.run, flow, TimerFired(sequence=wake.sequence))
    assert rest.run.status is RunStatus.COMPLETED and len(rest.actions) == 11


def test_a_loop_without_a_wait_is_stopped_even_if_validation_missed_it():
    # Built without check_flow (which refuses it): the engine guards anyway.
    flow = Flow.model_validate(
        {
            "start": "a",
            "steps": {
                "a": {"type": "update_contact", "set": {"x": "1"}, "next": "b"},
                "b": {"type": "update_contact", "set": {"x": "2"}, "next": "a"},
            },
        }
    )
    result = begin(flow)
    run = result.run
    for _ in range(10):
        if run.status is not RunStatus.ACTIVE:
            break
        result = step(run, flow, TimerFired(sequence=run.sequence))
        run = result.run
    assert run.status is RunStatus.STOPPED and "loop" in (run.end_reason or "")


def test_a_call_outcome_after_its_timeout_is_recorded_without_moving_the_run_twice():
    flow = build(
        {
            "call": {"type": "place_call", "say": "Press 1", "gather": {"num_digits": 1}, "next": "keys"},
            "keys": {"type": "branch", "cases": [{"when": {"digits": "1"}, "next": "yes"}], "default": "pause"},
            "pause": {"type": "wait", "duration": "P1D", "next": "yes"},
            "yes": {"type": "end"},
        }
    )
    started = begin(flow)
    key = only(started, PlaceCallAction).idempotency_key
    silent = step(started.run, flow, TimerFired(sequence=1), NOW + CALL_OUTCOME_TIMEOUT)
    assert silent.run.current_step == "pause" and silent.run.steps_done[0].outcome == "no_outcome"
    late = step(silent.run, flow, Outcome(idempotency_key=key, result="not_answered"), NOW + timedelta(hours=1))
    assert late.actions == [] and late.run.current_step == "pause" and late.run.waiting == silent.run.waiting
    assert late.run.steps_done[0].outcome == "not_answered"
    assert [(c.step, c.counter) for c in late.counters] == [("call", "failed")]


def test_a_run_its_inputs_and_its_actions_survive_a_json_round_trip():
    flow = example_flow()
    waiting = begin(flow)
    answered = step(waiting.run, flow, Reply(event_id="r1", text="no", topics=["outage"], sentiment=-0.5))
    for result in (waiting, answered):
        assert Run.model_validate_json(result.run.model_dump_json()) == result.run
        dumped = ACTIONS.dump_json(result.actions)
        assert ACTIONS.validate_json(dumped) == result.actions
    assert RUN_INPUT.validate_json('{"kind": "timer", "sequence": 3}') == TimerFired(sequence=3)
    parsed = RUN_INPUT.validate_python({"kind": "outcome", "idempotency_key": "k", "result": "sent"})
    assert isinstance(parsed, Outcome)
    with pytest.raises(ValidationError):
        RUN_INPUT.validate_python({"kind": "teleport"})
    with pytest.raises(ValidationError):
        RUN_INPUT.validate_python({"kind": "reply", "event_id": "r", "sentiment": 3})


def test_a_failed_state_write_then_a_redelivery_gives_the_same_actions_and_keys():
    # The caller applies a reply, fails to write the new state, and the queue redelivers the
    # reply later: advancing the state it still has gives the very same sends (same keys), so the
    # senders recognise any that went out before the crash.
    flow = example_flow()
    stored = begin(flow).run
    reply = Reply(event_id="evt_reply_1", text="no")
    first = step(stored, flow, reply, NOW + timedelta(minutes=5))
    retried = step(stored, flow, reply, NOW + timedelta(minutes=9))
    keys = [(a.kind, getattr(a, "idempotency_key", None)) for a in first.actions]
    assert keys == [(a.kind, getattr(a, "idempotency_key", None)) for a in retried.actions]
    assert first.run.sequence == retried.run.sequence == stored.sequence + 1
