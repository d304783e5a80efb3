"""The local runtime's stand-in for EventBridge Scheduler's one-time schedules: a campaign run's
wait, created as the campaigns function creates it on AWS, reaches the campaigns queue once it
is due (by a clock the test controls), and only then; it is deleted after it fired, and a
schedule of another group, a recurring one or one not due yet is left alone."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra import topology
from infra.local.scheduler import OneTimeSchedules, one_time_due_at, queue_of
from tests.conftest import AwsWorld

T0 = datetime(2030, 3, 1, 9, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(aws_world: AwsWorld) -> dict[str, Any]:
    from switchboard_core import aws

    names = aws_world.names.mapping()
    return {
        "scheduler": aws.client("scheduler"),
        "sqs": aws.client("sqs"),
        "group": names["campaign_schedule_group"],
        "queue_url": names[f"queue_url:{topology.CAMPAIGN_QUEUE}"],
        "queue_arn": names[f"queue_arn:{topology.CAMPAIGN_QUEUE}"],
        "role_arn": names["campaign_scheduler_role_arn"],
    }


def create_timer(world: dict[str, Any], name: str, at: datetime, body: dict[str, Any], **overrides: Any) -> None:
    """The create_schedule call of the shared plan (Timers)."""
    kwargs: dict[str, Any] = {
        "Name": name,
        "GroupName": world["group"],
        "ScheduleExpression": f"at({at.strftime('%Y-%m-%dT%H:%M:%S')})",
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "ActionAfterCompletion": "DELETE",
        "Target": {"Arn": world["queue_arn"], "RoleArn": world["role_arn"], "Input": json.dumps(body)},
    }
    kwargs.update(overrides)
    world["scheduler"].create_schedule(**kwargs)


def received(world: dict[str, Any]) -> list[dict[str, Any]]:
    messages = (
        world["sqs"]
        .receive_message(QueueUrl=world["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=0)
        .get("Messages", [])
    )
    for message in messages:
        world["sqs"].delete_message(QueueUrl=world["queue_url"], ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages]


def schedule_names(world: dict[str, Any]) -> set[str]:
    return {s["Name"] for s in world["scheduler"].list_schedules(GroupName=world["group"])["Schedules"]}


def timers(world: dict[str, Any], clock: Clock, log: list[str] | None = None) -> OneTimeSchedules:
    return OneTimeSchedules(
        world["scheduler"], world["sqs"], world["group"], now=clock, log=(log.append if log is not None else None)
    )


def test_a_wait_fires_when_due_sends_its_input_to_the_queue_once_and_is_deleted(world: dict[str, Any]) -> None:
    clock = Clock(T0)
    body = {"kind": "timer", "run": "run_" + "a" * 32, "sequence": 3}
    create_timer(world, "run_" + "a" * 32 + "-3", T0 + timedelta(minutes=10), body)
    runner = timers(world, clock)

    assert runner.fire_due() == 0
    clock.now = T0 + timedelta(minutes=9, seconds=59)
    assert runner.fire_due() == 0
    assert received(world) == []

    clock.now = T0 + timedelta(minutes=10)
    assert runner.fire_due() == 1
    assert received(world) == [body]
    assert schedule_names(world) == set()  # ActionAfterCompletion DELETE
    assert runner.fire_due() == 0
    assert received(world) == []
    assert runner.fired == 1


def test_several_due_waits_fire_in_one_poll_and_a_later_one_waits(world: dict[str, Any]) -> None:
    clock = Clock(T0 + timedelta(hours=1))
    for n in range(3):
        create_timer(world, f"run_x-{n}", T0 + timedelta(minutes=n), {"kind": "timer", "run": "run_x", "sequence": n})
    create_timer(world, "run_x-9", T0 + timedelta(days=2), {"kind": "timer", "run": "run_x", "sequence": 9})
    runner = timers(world, clock)
    assert runner.fire_due() == 3
    assert sorted(m["sequence"] for m in received(world)) == [0, 1, 2]
    assert schedule_names(world) == {"run_x-9"}
    clock.now = T0 + timedelta(days=2)
    assert runner.fire_due() == 1
    assert [m["sequence"] for m in received(world)] == [9]


def test_the_schedules_time_zone_is_honoured(world: dict[str, Any]) -> None:
    # 10:00 in Paris on 1 March is 09:00 UTC (CET, UTC+1).
    create_timer(
        world,
        "paris",
        datetime(2030, 3, 1, 10, 0, 0),
        {"kind": "timer", "run": "run_p", "sequence": 1},
        ScheduleExpressionTimezone="Europe/Paris",
    )
    clock = Clock(T0 - timedelta(seconds=1))
    runner = timers(world, clock)
    assert runner.fire_due() == 0
    clock.now = T0
    assert runner.fire_due() == 1


def test_other_groups_and_recurring_schedules_are_not_fired(world: dict[str, Any]) -> None:
    scheduler = world["scheduler"]
    scheduler.create_schedule_group(Name="someone-else")
    create_timer(world, "elsewhere", T0, {"kind": "timer", "run": "run_o", "sequence": 1}, GroupName="someone-else")
    create_timer(
        world, "recurring", T0, {"kind": "timer", "run": "run_r", "sequence": 1}, ScheduleExpression="rate(1 minute)"
    )
    runner = timers(world, Clock(T0 + timedelta(days=1)))
    assert runner.fire_due() == 0
    assert received(world) == []
    assert schedule_names(world) == {"recurring"}
    assert {s["Name"] for s in scheduler.list_schedules(GroupName="someone-else")["Schedules"]} == {"elsewhere"}


def test_a_disabled_schedule_does_not_fire(world: dict[str, Any]) -> None:
    create_timer(world, "off", T0, {"kind": "timer", "run": "run_d", "sequence": 1}, State="DISABLED")
    assert timers(world, Clock(T0 + timedelta(hours=1))).fire_due() == 0
    assert received(world) == []


def test_one_kept_after_completion_fires_once_and_stays(world: dict[str, Any]) -> None:
    create_timer(world, "kept", T0, {"kind": "timer", "run": "run_k", "sequence": 1}, ActionAfterCompletion="NONE")
    runner = timers(world, Clock(T0))
    assert runner.fire_due() == 1
    assert runner.fire_due() == 0
    assert len(received(world)) == 1
    assert schedule_names(world) == {"kept"}


def test_a_failed_send_is_tried_again_at_the_next_poll(world: dict[str, Any]) -> None:
    sqs, log = world["sqs"], list[str]()
    sqs.delete_queue(QueueUrl=world["queue_url"])
    create_timer(world, "retry", T0, {"kind": "timer", "run": "run_f", "sequence": 1})
    runner = timers(world, Clock(T0), log)
    assert runner.fire_due() == 0
    assert schedule_names(world) == {"retry"}  # not sent, so not deleted
    assert log and "not sent yet" in log[0] and "retry" in log[0]
    sqs.create_queue(QueueName=world["queue_url"].rsplit("/", 1)[1])
    assert runner.fire_due() == 1
    assert received(world) == [{"kind": "timer", "run": "run_f", "sequence": 1}]
    assert schedule_names(world) == set()


def test_a_target_that_is_not_a_queue_is_reported_once_and_left(world: dict[str, Any]) -> None:
    log: list[str] = []
    create_timer(
        world,
        "lambda",
        T0,
        {"kind": "timer", "run": "run_l", "sequence": 1},
        Target={"Arn": "arn:aws:lambda:us-east-1:123456789012:function:x", "RoleArn": world["role_arn"], "Input": "{}"},
    )
    runner = timers(world, Clock(T0), log)
    assert runner.fire_due() == 0
    assert runner.fire_due() == 0
    assert len(log) == 1 and "is not an SQS queue" in log[0]


def test_a_schedule_changed_after_it_was_read_is_read_again(world: dict[str, Any]) -> None:
    scheduler, clock = world["scheduler"], Clock(T0)
    create_timer(world, "moved", T0 + timedelta(hours=1), {"kind": "timer", "run": "run_m", "sequence": 1})
    runner = timers(world, clock)
    assert runner.fire_due() == 0
    time.sleep(0.01)  # moto's modification dates are in seconds with a fraction
    scheduler.update_schedule(
        Name="moved",
        GroupName=world["group"],
        ScheduleExpression=f"at({T0.strftime('%Y-%m-%dT%H:%M:%S')})",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": world["queue_arn"], "RoleArn": world["role_arn"], "Input": '{"moved": true}'},
        State="ENABLED",  # UpdateSchedule replaces every field (moto would leave the state unset)
    )
    assert runner.fire_due() == 1
    assert received(world) == [{"moved": True}]


def test_the_runner_polls_on_its_own_thread(world: dict[str, Any]) -> None:
    create_timer(world, "threaded", T0, {"kind": "timer", "run": "run_t", "sequence": 1})
    runner = OneTimeSchedules(world["scheduler"], world["sqs"], world["group"], now=Clock(T0), interval=0.05)
    runner.start()
    try:
        deadline = time.monotonic() + 5
        while runner.fired == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        runner.stop()
    assert runner.fired == 1
    assert received(world) == [{"kind": "timer", "run": "run_t", "sequence": 1}]


@pytest.mark.parametrize(
    ("expression", "zone", "expected"),
    [
        ("at(2030-03-01T09:00:00)", "UTC", T0),
        ("at(2030-03-01T09:00:00)", None, T0),
        ("at(2030-07-01T11:00:00)", "Europe/Paris", datetime(2030, 7, 1, 9, 0, tzinfo=UTC)),  # CEST, UTC+2
        ("rate(1 minute)", "UTC", None),
        ("cron(0 9 * * ? *)", "UTC", None),
        ("at(2030-03-01 09:00:00)", "UTC", None),
    ],
)
def test_one_time_due_at(expression: str, zone: str | None, expected: datetime | None) -> None:
    assert one_time_due_at(expression, zone) == expected


def test_queue_of() -> None:
    assert queue_of("arn:aws:sqs:us-east-1:123456789012:switchboard-local-campaigns") == (
        "123456789012",
        "switchboard-local-campaigns",
    )
    assert queue_of("arn:aws:lambda:us-east-1:123456789012:function:x") is None
    assert queue_of("nonsense") is None


def test_on_the_embedded_emulator_a_due_wait_reaches_the_campaigns_queue_on_the_real_clock() -> None:
    """As `switchboard dev` runs it: moto's server over HTTP, the group and queue create_resources
    makes, the campaigns function's environment naming them, and the poller on its own thread."""
    import os

    from infra.local.emulator import Emulator, LocalNames, aws_environment, create_resources
    from switchboard_core import aws

    saved = {key: os.environ.get(key) for key in aws_environment("")}
    server = Emulator()
    server.start()
    runner: OneTimeSchedules | None = None
    try:
        names = LocalNames("timers")
        create_resources(names)
        env = topology.function_environment(topology.FUNCTIONS["campaigns"], names.mapping(), "timers")
        world = {
            "scheduler": aws.client("scheduler"),
            "sqs": aws.client("sqs"),
            "group": env["CAMPAIGN_SCHEDULE_GROUP"],
            "queue_url": aws.client("sqs").get_queue_url(QueueName=names.queue(topology.CAMPAIGN_QUEUE))["QueueUrl"],
            "queue_arn": env["CAMPAIGN_QUEUE_ARN"],
            "role_arn": env["CAMPAIGN_SCHEDULER_ROLE_ARN"],
        }
        body = {"kind": "timer", "run": "run_" + "e" * 32, "sequence": 1}
        create_timer(world, "run_" + "e" * 32 + "-1", datetime.now(UTC) - timedelta(seconds=1), body)
        create_timer(world, "later", datetime.now(UTC) + timedelta(hours=1), {**body, "sequence": 2})
        runner = OneTimeSchedules(world["scheduler"], world["sqs"], world["group"], interval=0.05)
        runner.start()
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while not messages and time.monotonic() < deadline:
            messages = received(world)
            time.sleep(0.05)
        assert messages == [body]
        assert schedule_names(world) == {"later"}
    finally:
        if runner is not None:
            runner.stop()
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        aws.reset_clients()
