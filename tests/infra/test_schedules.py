"""Scheduled functions: one EventBridge Scheduler schedule each, invoking only that function."""

from __future__ import annotations

import json

import pytest

from infra import topology
from infra.local.scheduler import schedule_input
from tests.infra.conftest import Synthesised

pytestmark = pytest.mark.infra


def test_every_scheduled_function_has_its_schedule(synth: Synthesised) -> None:
    schedules = synth.resources("AWS::Scheduler::Schedule")
    assert len(schedules) == len(topology.scheduled()) >= 1
    for spec in topology.scheduled():
        props = next(s["Properties"] for s in schedules.values() if s["Properties"]["Name"].endswith(spec.name))
        assert props["ScheduleExpression"] == spec.schedule
        assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert json.loads(props["Target"]["Input"]) == schedule_input(spec)  # the same as the local scheduler


def test_the_scheduler_role_may_invoke_only_its_function(synth: Synthesised) -> None:
    policies = [
        p
        for p in synth.resources("AWS::IAM::Policy").values()
        if any("lambda:InvokeFunction" in str(s.get("Action")) for s in p["Properties"]["PolicyDocument"]["Statement"])
    ]
    assert policies
    for policy in policies:
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Action"] == "lambda:InvokeFunction"
            assert "*" not in json.dumps(statement["Resource"])
