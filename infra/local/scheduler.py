"""The local stand-in for EventBridge Scheduler: runs each scheduled function of the
topology at its rate, with the same input the deployed schedule sends."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

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
