"""Guards before every send and call (opt-outs, quiet hours across DST changes, the frequency
cap), and properties over random input sequences: a replay gives the same actions, and no
outbound action's key is ever handed out twice."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_core.campaigns.engine import advance, channels_of, start
from switchboard_core.campaigns.guards import (
    FrequencyCap,
    SendGuards,
    check_send,
    next_local_time,
    quiet_until,
)
from switchboard_core.campaigns.runs import (
    OUTBOUND_KINDS,
    Outcome,
    Reply,
    RunStatus,
    ScheduleAction,
    SendMessageAction,
    Stop,
    TimerFired,
)
from switchboard_core.routing.contact_points import QuietHours
from tests.unit.campaigns.test_engine import CONTACT, NO_QUIET, TRIGGER, build, campaign, example_flow

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 6, 2, 10, 0, tzinfo=UTC)

REMINDERS = build(
    {
        "text": {"type": "send_message", "channel": "sms", "text": "Hi ${name}", "next": "ask"},
        "ask": {"type": "wait_for_reply", "timeout": "P1D", "next": "done", "on_timeout": "call"},
        "call": {"type": "place_call", "say": "Hello", "next": "pause"},
        "pause": {"type": "wait", "duration": "P1D", "next": "text"},
        "done": {"type": "end", "converted": True},
    }
)


def begin(now: datetime, guards: SendGuards, contact: Any = CONTACT) -> Any:
    return start(REMINDERS, campaign(), 1, contact, TRIGGER, now, guards)


# --- opt-outs -----------------------------------------------------------------------------------


def test_an_opt_out_on_the_steps_channel_stops_the_run_with_a_reason():
    waiting = begin(NOW, NO_QUIET)
    assert waiting.run.current_step == "ask"
    opted_out = NO_QUIET.model_copy(update={"opted_out": frozenset({"call"})})
    stopped = advance(waiting.run, REMINDERS, TimerFired(sequence=1), NOW + timedelta(days=1), opted_out)
    assert stopped.run.status is RunStatus.STOPPED and stopped.run.end_reason == "the contact opted out of call"
    assert [a.kind for a in stopped.actions] == ["end"]
    assert stopped.run.steps_done[-1].outcome == "stopped"


def test_a_stop_reply_ends_the_run_at_once_instead_of_branching():
    flow = example_flow()
    waiting = start(flow, campaign(), 1, CONTACT, TRIGGER, NOW, NO_QUIET)
    opted_out = NO_QUIET.model_copy(update={"opted_out": frozenset({"sms"})})
    stopped = advance(waiting.run, flow, Reply(event_id="r1", text="STOP"), NOW, opted_out)
    assert [a.kind for a in stopped.actions] == ["end"]  # no notify, no call
    assert stopped.run.status is RunStatus.STOPPED and stopped.run.end_reason == "the contact opted out of sms"
    assert stopped.run.steps_done[-1].step == "await_answer" and stopped.run.steps_done[-1].outcome == "stopped"
    again = advance(stopped.run, flow, Reply(event_id="r1", text="STOP"), NOW, opted_out)
    assert again.run == stopped.run and again.ignored is not None  # the redelivered STOP
    elsewhere = NO_QUIET.model_copy(update={"opted_out": frozenset({"telegram"})})
    goes_on = advance(waiting.run, flow, Reply(event_id="r1", text="no"), NOW, elsewhere)
    assert [a.kind for a in goes_on.actions] == ["connect_call", "notify", "end"]


def test_an_opt_out_at_the_first_send_stops_the_run_before_it():
    result = begin(NOW, NO_QUIET.model_copy(update={"opted_out": frozenset({"sms"})}))
    assert [a.kind for a in result.actions] == ["end"] and result.run.end_reason == "the contact opted out of sms"
    assert [(r.step, r.outcome) for r in result.run.steps_done] == [("text", "stopped")]


def test_an_opt_out_of_another_channel_does_not_stop_the_send():
    result = begin(NOW, NO_QUIET.model_copy(update={"opted_out": frozenset({"telegram"})}))
    assert [a.kind for a in result.actions] == ["send_message", "schedule"]


def test_an_opt_out_of_every_channel_stops_before_the_first_send():
    result = begin(NOW, NO_QUIET.model_copy(update={"opted_out": frozenset({"*"})}))
    assert [a.kind for a in result.actions] == ["end"] and result.run.status is RunStatus.STOPPED


def test_a_flows_channels_say_which_runs_a_stop_on_a_channel_ends():
    assert channels_of(REMINDERS) == {"sms", "call"}
    assert channels_of(example_flow()) == {"sms", "call"}  # connect_call calls the contact


# --- quiet hours --------------------------------------------------------------------------------


def test_quiet_hours_postpone_a_send_to_the_next_morning_across_the_spring_dst_change():
    # Saturday 28 March 2026, 22:00 in Paris (UTC+1); Sunday clocks go to UTC+2.
    evening = datetime(2026, 3, 28, 21, 0, tzinfo=UTC)
    postponed = begin(evening, SendGuards())
    morning = datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # 08:00 CEST, not 07:00 UTC
    assert [a.kind for a in postponed.actions] == ["schedule"]
    assert postponed.actions[0].at == morning and postponed.run.waiting.reason == "quiet_hours"
    assert postponed.run.steps_done[-1].outcome == "postponed"
    sent = advance(postponed.run, REMINDERS, TimerFired(sequence=1), morning, SendGuards())
    sms = next(a for a in sent.actions if isinstance(a, SendMessageAction))
    assert sms.idempotency_key == f"{postponed.run.id}:text:1"  # the same visit: the same key
    assert [(c.step, c.counter) for c in postponed.counters + sent.counters].count(("text", "entered")) == 1


def test_quiet_hours_across_the_autumn_dst_change_in_new_york():
    contact = CONTACT.model_copy(update={"time_zone": "America/New_York"})
    late = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)  # 23:00 EDT on 31 October
    postponed = begin(late, SendGuards(), contact)
    assert postponed.actions[0].at == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)  # 08:00 EST


def test_quiet_hours_end_today_when_it_is_early_morning_and_are_a_parameter():
    early = datetime(2026, 6, 2, 4, 30, tzinfo=UTC)  # 06:30 in Paris
    assert quiet_until(SendGuards(), PARIS, early) == datetime(2026, 6, 2, 6, 0, tzinfo=UTC)
    custom = SendGuards(quiet_hours=QuietHours(start=time(12, 0), end=time(14, 0)))
    assert quiet_until(custom, PARIS, NOW) == datetime(2026, 6, 2, 12, 0, tzinfo=UTC)  # 12:00 UTC = 14:00 CEST
    assert quiet_until(SendGuards(quiet_hours=None), PARIS, early) is None
    assert quiet_until(SendGuards(), PARIS, NOW) is None


def test_a_wall_time_inside_a_dst_gap_maps_to_just_after_it():
    before_gap = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)  # 01:00 CET
    at = next_local_time(before_gap, time(2, 30), PARIS)  # 02:30 does not exist that night
    assert at == datetime(2026, 3, 29, 1, 30, tzinfo=UTC) and at.astimezone(PARIS).hour == 3


def test_quiet_hours_do_not_hold_back_notifications_to_staff():
    flow = build(
        {
            "tell": {"type": "notify", "to": {"team": "sales"}, "text": "psst", "next": "done"},
            "done": {"type": "end"},
        }
    )
    night = datetime(2026, 6, 2, 23, 0, tzinfo=UTC)
    result = start(flow, campaign(), 1, CONTACT, TRIGGER, night, SendGuards())
    assert [a.kind for a in result.actions] == ["notify", "end"]


# --- the frequency cap --------------------------------------------------------------------------


def test_a_send_over_the_cap_is_postponed_until_a_slot_frees_then_stopped_after_the_limit():
    capped = NO_QUIET.model_copy(
        update={
            "cap": FrequencyCap(max_sends=3, window=timedelta(days=1), max_postponements=2),
            "recent_sends": 3,
            "oldest_recent_send": NOW - timedelta(hours=20),
        }
    )
    first = begin(NOW, capped)
    assert [a.kind for a in first.actions] == ["schedule"] and first.actions[0].at == NOW + timedelta(hours=4)
    assert first.run.waiting.reason == "frequency_cap" and first.run.waiting.cap_postponements == 1
    second = advance(first.run, REMINDERS, TimerFired(sequence=1), NOW + timedelta(hours=4), capped)
    assert second.run.waiting.cap_postponements == 2
    third = advance(second.run, REMINDERS, TimerFired(sequence=2), NOW + timedelta(hours=9), capped)
    assert third.run.status is RunStatus.STOPPED and "frequency cap" in (third.run.end_reason or "")
    # With a slot free, the postponed send goes out on its first key.
    freed = advance(second.run, REMINDERS, TimerFired(sequence=2), NOW + timedelta(hours=9), NO_QUIET)
    assert next(a for a in freed.actions if isinstance(a, SendMessageAction)).idempotency_key.endswith(":text:1")


def test_check_send_orders_opt_out_before_quiet_hours_before_the_cap():
    night = datetime(2026, 6, 2, 23, 0, tzinfo=UTC)
    everything = SendGuards(opted_out=frozenset({"sms"}), recent_sends=99)
    assert check_send(everything, "sms", PARIS, night, 0).decision == "stop"
    assert check_send(everything, "whatsapp", PARIS, night, 0).reason == "quiet_hours"
    assert check_send(everything, "whatsapp", PARIS, NOW, 0).reason == "frequency_cap"
    without_oldest = check_send(SendGuards(recent_sends=3), "sms", PARIS, NOW, 0)
    assert without_oldest.until == NOW + timedelta(days=1)
    assert check_send(SendGuards(recent_sends=2), "sms", PARIS, NOW, 0).decision == "go"


# --- properties over random inputs --------------------------------------------------------------

TEXTS = ["no", "yes", "not really", "hmm", "STOP", ""]


@st.composite
def inputs(draw: Any) -> list[tuple[str, Any, int]]:
    """(kind, parameter, minutes later) steps a run could see, redeliveries included."""
    kinds = st.one_of(
        st.tuples(st.just("reply"), st.tuples(st.integers(0, 3), st.sampled_from(TEXTS))),
        st.tuples(st.just("timer"), st.integers(-1, 1)),  # 0: the current wait; else a stale one
        st.tuples(st.just("outcome"), st.sampled_from(["sent", "failed", "answered", "not_answered"])),
        st.tuples(st.just("stop"), st.just("enough")),
    )
    return draw(st.lists(st.tuples(kinds, st.integers(0, 3000)), max_size=12))


def play(script: list[Any]) -> list[Any]:
    flow = example_flow()
    now = datetime(2026, 6, 2, 8, 0, tzinfo=UTC)
    results = [start(flow, campaign(), 1, CONTACT, TRIGGER, now, SendGuards())]
    for (kind, parameter), minutes in script:
        run, last = results[-1].run, results[-1]
        now = now + timedelta(minutes=minutes)
        if run.status in (RunStatus.COMPLETED, RunStatus.STOPPED) and kind in ("reply", "stop"):
            continue
        if kind == "reply":
            event: Any = Reply(event_id=f"r{parameter[0]}", text=parameter[1])
        elif kind == "timer":
            sequence = run.waiting.sequence if run.waiting else run.sequence
            event = TimerFired(sequence=max(0, sequence + parameter))
            schedules = [a for a in last.actions if isinstance(a, ScheduleAction)]
            if parameter == 0 and schedules:
                now = max(now, schedules[-1].at)
        elif kind == "outcome":
            keys = [r.idempotency_key for r in run.steps_done if r.idempotency_key]
            if not keys:
                continue
            event = Outcome(idempotency_key=keys[-1], result=parameter)
        else:
            event = Stop(reason=parameter)
        results.append(advance(run, flow, event, now, SendGuards()))
    return results


@settings(max_examples=150, deadline=None)
@given(inputs())
def test_a_replay_of_the_same_inputs_gives_the_same_states_and_actions(script):
    assert play(script) == play(script)


@settings(max_examples=150, deadline=None)
@given(inputs())
def test_no_outbound_key_is_handed_out_twice_and_the_sequence_moves_by_one(script):
    results = play(script)
    keys = [a.idempotency_key for r in results for a in r.actions if a.kind in OUTBOUND_KINDS]
    assert len(keys) == len(set(keys))
    for before, after in pairwise(results):
        if after.ignored is not None:
            assert after.run == before.run
        else:
            assert after.run.sequence == before.run.sequence + 1
