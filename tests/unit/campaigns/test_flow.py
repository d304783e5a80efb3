"""Flow validation: each step type's fields, and the graph (dangling next, unreachable steps,
cycles without a wait), every rejection naming its step; good flows pass."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from switchboard_core.campaigns.flow import STEP_TYPES, check_flow, check_trigger, parse_duration

EXAMPLE = Path(__file__).parents[3] / "docs" / "examples" / "campaign-negative-mention.yaml"


def flow(**steps: dict[str, Any]) -> dict[str, Any]:
    return {"start": next(iter(steps)), "steps": steps}


def fields(document: Any) -> list[str]:
    checked, problems = check_flow(document)
    assert checked is None
    return [problem["field"] for problem in problems]


ONE_OF_EACH = flow(
    text={"type": "send_message", "channel": "whatsapp", "text": "Hi ${name} (${attr_tier})", "next": "call"},
    call={"type": "place_call", "say": "Press 1 to talk to us", "gather": {"num_digits": 1}, "next": "keys"},
    keys={"type": "branch", "cases": [{"when": {"digits": "1"}, "next": "bridge"}], "default": "pause"},
    bridge={"type": "connect_call", "responder": {"team": "support"}, "next": "tell"},
    tell={"type": "notify", "to": {"responder": "ana"}, "text": "Connected ${name}", "next": "hook"},
    hook={"type": "webhook", "url": "https://crm.example.com/hook", "payload": {"n": 1}, "next": "tag"},
    tag={"type": "update_contact", "set": {"stage": "called"}, "remove": ["lead"], "next": "done"},
    pause={"type": "wait", "until": "09:00", "next": "ask"},
    ask={"type": "wait_for_reply", "timeout": "PT2H", "next": "done", "on_timeout": "later"},
    later={"type": "wait", "duration": "P1DT12H", "next": "done"},
    done={"type": "end", "converted": True},
)


def test_a_flow_with_every_step_type_passes():
    checked, problems = check_flow(ONE_OF_EACH)
    assert problems == [] and checked is not None
    assert {step.type for step in checked.steps.values()} == set(STEP_TYPES)


def test_the_example_campaign_validates():
    document = yaml.safe_load(EXAMPLE.read_text())
    checked, problems = check_flow(document["flow"])
    assert problems == [] and checked is not None
    trigger, problems = check_trigger(document["trigger"], "acme")
    assert problems == [] and trigger is not None
    assert trigger.event_pattern == {"detail-type": ["mention.created"]}


def test_a_loop_through_a_wait_is_fine():
    checked, problems = check_flow(
        flow(
            ask={"type": "send_message", "channel": "sms", "text": "Still there?", "next": "wait"},
            wait={"type": "wait_for_reply", "timeout": "P1D", "next": "end", "on_timeout": "ask"},
            end={"type": "end"},
        )
    )
    assert problems == [] and checked is not None


def test_an_unknown_type_names_the_step():
    checked, problems = check_flow(flow(a={"type": "send_fax", "next": "b"}, b={"type": "end"}))
    assert checked is None
    assert [p["field"] for p in problems] == ["flow.steps.a"]
    assert "send_fax" in problems[0]["problem"] and "send_message" in problems[0]["problem"]
    assert fields(flow(a={"next": "b"}, b={"type": "end"})) == ["flow.steps.a"]


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({"type": "send_message", "channel": "fax", "text": "x", "next": "z"}, "flow.steps.a.channel"),
        ({"type": "send_message", "channel": "sms", "text": "Hi ${nmae}", "next": "z"}, "flow.steps.a.text"),
        ({"type": "send_message", "channel": "sms", "text": "Hi $", "next": "z"}, "flow.steps.a.text"),
        ({"type": "send_message", "channel": "sms", "text": "x"}, "flow.steps.a.next"),
        ({"type": "send_message", "channel": "sms", "text": "x", "next": "z", "colour": 1}, "flow.steps.a.colour"),
        ({"type": "wait", "duration": "P1M", "next": "z"}, "flow.steps.a.duration"),
        ({"type": "wait", "duration": "PT0S", "next": "z"}, "flow.steps.a.duration"),
        ({"type": "wait", "duration": "30 minutes", "next": "z"}, "flow.steps.a.duration"),
        ({"type": "wait", "next": "z"}, "flow.steps.a"),
        ({"type": "wait", "duration": "PT1H", "until": "09:00", "next": "z"}, "flow.steps.a"),
        ({"type": "wait", "until": "2026-12-01T09:00:00", "next": "z"}, "flow.steps.a.until"),
        ({"type": "wait_for_reply", "timeout": "PT1H", "next": "z"}, "flow.steps.a.on_timeout"),
        ({"type": "wait_for_reply", "timeout": "P2Y", "next": "z", "on_timeout": "z"}, "flow.steps.a.timeout"),
        ({"type": "branch", "cases": [], "default": "z"}, "flow.steps.a.cases"),
        ({"type": "branch", "cases": [{"when": {}, "next": "z"}], "default": "z"}, "flow.steps.a.cases.0.when"),
        (
            {"type": "branch", "cases": [{"when": {"topic": "x", "digits": "1"}, "next": "z"}], "default": "z"},
            "flow.steps.a.cases.0.when",
        ),
        (
            {"type": "branch", "cases": [{"when": {"digits": "12a"}, "next": "z"}], "default": "z"},
            "flow.steps.a.cases.0.when.digits",
        ),
        (
            {"type": "branch", "cases": [{"when": {"sentiment": {"above": 0.5, "below": 0}}, "next": "z"}]},
            "flow.steps.a.cases.0.when.sentiment",
        ),
        (
            {"type": "branch", "cases": [{"when": {"attribute": {"name": "tier"}}, "next": "z"}], "default": "z"},
            "flow.steps.a.cases.0.when.attribute",
        ),
        ({"type": "place_call", "next": "z"}, "flow.steps.a"),
        ({"type": "place_call", "recording_url": "http://x", "next": "z"}, "flow.steps.a.recording_url"),
        ({"type": "connect_call", "responder": {"number": "555"}, "next": "z"}, "flow.steps.a.responder.number"),
        ({"type": "connect_call", "responder": {"assignee": False}, "next": "z"}, "flow.steps.a.responder.assignee"),
        ({"type": "notify", "to": {}, "text": "x", "next": "z"}, "flow.steps.a.to"),
        ({"type": "update_contact", "next": "z"}, "flow.steps.a"),
        ({"type": "update_contact", "set": {"a": "1"}, "remove": ["a"], "next": "z"}, "flow.steps.a"),
        ({"type": "end", "next": "z"}, "flow.steps.a.next"),
    ],
)
def test_a_bad_field_is_refused_naming_the_step_and_field(step, field):
    found = fields(flow(a=step, z={"type": "end"}))
    assert field in found, found
    assert all(f.startswith("flow.steps.a") for f in found), found


def test_dangling_next_names_the_step_and_the_missing_target():
    checked, problems = check_flow(
        flow(
            a={
                "type": "branch",
                "cases": [{"when": {"attribute": {"name": "vip", "exists": True}}, "next": "ghost"}],
                "default": "b",
            },
            b={"type": "wait_for_reply", "timeout": "PT1H", "next": "c", "on_timeout": "nowhere"},
            c={"type": "end"},
        )
    )
    assert checked is None
    assert {p["field"]: p["problem"] for p in problems} == {
        "flow.steps.a.cases.0.next": "names step 'ghost', which is not in steps",
        "flow.steps.b.on_timeout": "names step 'nowhere', which is not in steps",
    }
    assert fields({"start": "x", "steps": {"a": {"type": "end"}}})[0] == "flow.start"


def test_unreachable_steps_are_named():
    assert fields(
        flow(a={"type": "end"}, orphan={"type": "end"}, island={"type": "wait", "duration": "PT1M", "next": "orphan"})
    ) == [
        "flow.steps.orphan",
        "flow.steps.island",
    ]


def test_cycles_without_a_wait_name_their_first_step_each():
    checked, problems = check_flow(
        flow(
            a={"type": "send_message", "channel": "sms", "text": "x", "next": "b"},
            b={"type": "branch", "cases": [{"when": {"reply_words": ["no"]}, "next": "a"}], "default": "c"},
            c={"type": "webhook", "url": "https://example.com", "next": "c"},
        )
    )
    assert checked is None
    by_field = {p["field"]: p["problem"] for p in problems}
    assert set(by_field) == {"flow.steps.a", "flow.steps.c", "flow.steps.b.cases.0.when"}
    assert "without a wait_for_reply" in by_field["flow.steps.b.cases.0.when"]
    assert "(a -> b -> a)" in by_field["flow.steps.a"] and "(c -> c)" in by_field["flow.steps.c"]


def test_problems_are_all_reported_at_once_and_the_input_is_untouched():
    document = flow(a={"type": "send_message", "channel": "sms", "text": "x", "next": "b"}, b={"type": "nope"})
    before = copy.deepcopy(document)
    assert fields(document) == ["flow.steps.b"]
    assert document == before


@pytest.mark.parametrize(
    "bad",
    ["not a flow", {"start": "a"}, {"start": "a", "steps": {}}, {"start": "1a", "steps": {"1a": {"type": "end"}}}],
)
def test_malformed_documents_are_refused(bad):
    assert fields(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("PT30M", timedelta(minutes=30)), ("P1W", timedelta(weeks=1)), ("P1DT2H3M4S", timedelta(days=1, seconds=7384))],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


def test_trigger_patterns_are_checked_with_the_subscription_checker_naming_the_field():
    trigger, problems = check_trigger({"event_pattern": {"detail-type": []}}, "acme")
    assert trigger is None and [p["field"] for p in problems] == ["trigger.event_pattern.detail-type"]
    trigger, problems = check_trigger({"event_pattern": {"detail": {"tenant": ["globex"]}}}, "acme")
    assert trigger is None and problems[0]["field"] == "trigger.event_pattern.detail.tenant"
    assert check_trigger({"pattern": {}}, "acme")[1][0]["field"] in ("trigger.pattern", "trigger.event_pattern")
    trigger, problems = check_trigger({"event_pattern": {"detail-type": ["mention.created"]}}, "acme")
    assert problems == [] and trigger is not None


def test_a_branch_on_the_reply_or_digits_needs_them_on_every_path():
    asks = {"type": "wait_for_reply", "timeout": "PT1H", "next": "read", "on_timeout": "done"}
    calls = {"type": "place_call", "say": "Press 1", "gather": {}, "next": "read"}
    read = {
        "type": "branch",
        "cases": [{"when": {"sentiment": {"below": 0}}, "next": "done"}, {"when": {"digits": "1"}, "next": "done"}],
        "default": "done",
    }
    # Only the reply was waited for: the digits case is named, and vice versa.
    checked, problems = check_flow(flow(ask=asks, read=read, done={"type": "end"}))
    assert [p["field"] for p in problems] == ["flow.steps.read.cases.1.when"]
    assert "place_call with gather" in problems[0]["problem"]
    checked, problems = check_flow(flow(call=calls, read=read, done={"type": "end"}))
    assert [p["field"] for p in problems] == ["flow.steps.read.cases.0.when"]
    # A second way in that skips the wait is named too.
    skip = {
        "type": "branch",
        "cases": [{"when": {"attribute": {"name": "vip", "exists": True}}, "next": "read"}],
        "default": "ask",
    }
    ask_then_call = asks | {"next": "call"}
    checked, problems = check_flow(flow(start=skip, ask=ask_then_call, call=calls, read=read, done={"type": "end"}))
    assert [p["field"] for p in problems] == ["flow.steps.read.cases.0.when", "flow.steps.read.cases.1.when"]
    checked, problems = check_flow(flow(ask=ask_then_call, call=calls, read=read, done={"type": "end"}))
    assert problems == [] and checked is not None
