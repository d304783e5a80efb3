"""The local stand-in for EventBridge Scheduler: runs each scheduled function of the
topology at its rate, with the same input the deployed schedule sends, and fires the
one-time schedules the functions create (the campaign runs' waits) when they are due."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from infra import topology

Invoke = Callable[[str, dict[str, Any]], Any]


def schedule_input(function: topology.Function) -> dict[str, str]:
    """The payload the schedule delivers (the CDK app configures the same)."""
    return {"source": "switchboard.scheduler", "schedule": function.name}


class Scheduler:
    def __init__(
        self, invoke: Invoke, log: Callable[[str], None] | None = None, interval_override: float | None = None
    ) -> None:
        self._invoke = invoke
        self._log = log
        override = os.environ.get("SWITCHBOARD_SCHEDULE_SECONDS")
        self._override = interval_override or (float(override) if override else None)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for function in topology.scheduled():
            assert function.schedule is not None
            interval = self._override or topology.schedule_seconds(function.schedule)
            thread = threading.Thread(
                target=self._run, args=(function, interval), daemon=True, name=f"schedule-{function.name}"
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _run(self, function: topology.Function, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self._invoke(function.name, schedule_input(function))
            except Exception as exc:  # noqa: BLE001 - a failed run is reported; the next one runs anyway
                if self._log:
                    self._log(f"scheduled {function.name} failed: {type(exc).__name__}: {exc}")


# --- one-time schedules (campaign runs' waits) ---------------------------------------------

# EventBridge Scheduler's one-time expression: at(yyyy-mm-ddThh:mm:ss), a wall time in the
# schedule's ScheduleExpressionTimezone (UTC when absent).
AT_EXPRESSION = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
ONE_TIME_POLL_SECONDS = 0.5


def one_time_due_at(expression: str, timezone: str | None) -> datetime | None:
    """When a one-time `at(...)` schedule is due, in UTC; None for rate() and cron() expressions."""
    found = AT_EXPRESSION.fullmatch(expression.strip())
    if not found:
        return None
    wall = datetime.fromisoformat(found.group(1))
    return wall.replace(tzinfo=ZoneInfo(timezone or "UTC")).astimezone(UTC)


def queue_of(arn: str) -> tuple[str, str] | None:
    """(account, queue name) of an SQS queue ARN; None for any other target."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs":
        return None
    return parts[4], parts[5]


class OneTimeSchedules:
    """The local stand-in for EventBridge Scheduler's one-time schedules of one group (the campaign
    runs' waits, created by the campaigns function through the emulator's `scheduler` API, which
    stores schedules but never fires them). Every `interval` seconds: each enabled `at(...)` schedule
    of the group that is due sends its `Target.Input` to the SQS queue of `Target.Arn`, then is
    deleted (`ActionAfterCompletion` DELETE; one without it is remembered as done, as AWS keeps it
    without firing again). A send that fails is tried again at the next poll, so a timer is
    delivered at least once, as on AWS; a target that is not a queue is reported once and skipped.
    """

    def __init__(
        self,
        scheduler: Any,
        sqs: Any,
        group: str,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        log: Callable[[str], None] | None = None,
        interval: float = ONE_TIME_POLL_SECONDS,
    ) -> None:
        self._scheduler = scheduler
        self._sqs = sqs
        self._group = group
        self._now = now
        self._log = log
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._queue_urls: dict[str, str] = {}
        # Schedules read already (name -> (last modification, schedule)): a far-off wait is read once.
        self._known: dict[str, tuple[Any, dict[str, Any]]] = {}
        self._done: set[tuple[str, Any]] = set()  # fired (or skipped) and not deleted: never again
        self.fired = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"schedules-{self._group}")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.fire_due()
            except Exception as exc:  # noqa: BLE001 - reported; the next poll tries again
                self._report(f"one-time schedules of {self._group}: {type(exc).__name__}: {exc}")

    def fire_due(self) -> int:
        """One poll: fire every schedule of the group that is due; how many were sent."""
        now = self._now()
        listed = self._list()
        self._known = {name: known for name, known in self._known.items() if name in listed}
        sent = 0
        for name, modified in listed.items():
            if (name, modified) in self._done:
                continue
            schedule = self._schedule(name, modified)
            if schedule is None:  # deleted meanwhile (by the function, or completed)
                continue
            due = one_time_due_at(schedule["ScheduleExpression"], schedule.get("ScheduleExpressionTimezone"))
            if due is None or due > now:
                continue
            try:
                fired = self._fire(schedule)
            except Exception as exc:  # noqa: BLE001 - not sent: reported, and tried again at the next poll
                self._report(f"schedule {self._group}/{name} not sent yet: {type(exc).__name__}: {exc}")
                continue
            if not fired:
                self._done.add((name, modified))
                continue
            sent += 1
            if schedule.get("ActionAfterCompletion") == "DELETE":
                self._delete(name)
            else:
                self._done.add((name, modified))
        self.fired += sent
        return sent

    def _list(self) -> dict[str, Any]:
        """Enabled schedules of the group: name -> last modification date."""
        found: dict[str, Any] = {}
        kwargs: dict[str, Any] = {"GroupName": self._group, "State": "ENABLED"}
        while True:
            page = self._scheduler.list_schedules(**kwargs)
            for summary in page.get("Schedules", []):
                if summary.get("GroupName", self._group) == self._group:
                    found[summary["Name"]] = summary.get("LastModificationDate")
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]

    def _schedule(self, name: str, modified: Any) -> dict[str, Any] | None:
        known = self._known.get(name)
        if known is not None and known[0] == modified:
            return known[1]
        try:
            schedule = self._scheduler.get_schedule(Name=name, GroupName=self._group)
        except self._scheduler.exceptions.ResourceNotFoundException:
            return None
        self._known[name] = (modified, schedule)
        return schedule

    def _fire(self, schedule: dict[str, Any]) -> bool:
        """Send the schedule's input to its queue. False (reported once) for a target this stand-in
        cannot reach, which then counts as done; a failed send raises."""
        target = schedule.get("Target", {})
        queue = queue_of(target.get("Arn", ""))
        if queue is None or "Input" not in target:
            problem = "no Input" if queue else f"target {target.get('Arn')!r} is not an SQS queue"
            self._report(f"schedule {self._group}/{schedule['Name']} skipped: {problem} (only queues with an Input)")
            return False
        self._sqs.send_message(QueueUrl=self._queue_url(*queue), MessageBody=target["Input"])
        return True

    def _queue_url(self, account: str, name: str) -> str:
        if name not in self._queue_urls:
            self._queue_urls[name] = self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return self._queue_urls[name]

    def _delete(self, name: str) -> None:
        try:
            self._scheduler.delete_schedule(Name=name, GroupName=self._group)
        except self._scheduler.exceptions.ResourceNotFoundException:
            pass  # the function deleted it meanwhile
        self._known.pop(name, None)

    def _report(self, line: str) -> None:
        if self._log:
            self._log(line)
