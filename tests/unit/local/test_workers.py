"""The local runtime's sandboxes (infra/local/workers.py): a function runs in a process of its
own, with only its own environment and only its own folder of functions/ importable, and its
errors come back to the caller as exceptions."""

from __future__ import annotations

import contextlib
import json
import os
import pstats
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import topology
from infra.local.emulator import LocalNames
from infra.local.workers import (
    BACKGROUND_NICENESS,
    PROFILE_ENV,
    RECORD_NICENESS,
    REPOSITORY,
    FunctionError,
    Pool,
    Worker,
    WorkerFunctions,
)
from tests.unit.local import sandbox_probe

NAMES = LocalNames("test").mapping()


@pytest.fixture(scope="module")
def functions() -> Iterator[WorkerFunctions]:
    """One zygote for the module (its start-up is the costly part); no emulator: nothing here
    reaches AWS (port 9 refuses)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for key, value in {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "us-east-1"}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("SWITCHBOARD_NOT_A_FUNCTION_VARIABLE", "hub only")
        runtime = WorkerFunctions(NAMES, "test", max_workers=2)
        yield runtime
        runtime.stop()


def test_a_sandbox_sees_its_own_environment_and_folder_only(functions: WorkerFunctions, tmp_path: Path) -> None:
    report = tmp_path / "seen.json"
    functions.inject("authorizer", sandbox_probe.__file__, "report", str(report))
    with pytest.raises(FunctionError):  # booted (the probe ran), then refused an event that is not one
        functions.invoke("authorizer", {})
    seen = json.loads(report.read_text())
    own = topology.function_environment(topology.FUNCTIONS["authorizer"], NAMES, "test")
    assert {key: seen["environment"][key] for key in own} == own
    others = {key for name in topology.FUNCTIONS for key in functions.environment(name)}
    others -= set(functions.environment("authorizer"))
    assert not others & set(seen["environment"]), sorted(others & set(seen["environment"]))
    assert "TABLE_CONNECTIONS" not in seen["environment"]  # the admin function's, not the authorizer's
    assert "SWITCHBOARD_NOT_A_FUNCTION_VARIABLE" not in seen["environment"]
    assert seen["environment"]["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"  # the emulator, as Lambda's role
    assert str(REPOSITORY) not in seen["path"]
    assert seen["own_function"] == "ok"
    assert seen["other_function"].startswith("ModuleNotFoundError") and "functions.ingest" in seen["other_function"]
    assert seen["infra"].startswith("ModuleNotFoundError") and seen["tests"].startswith("ModuleNotFoundError")


@pytest.mark.parametrize(
    ("function", "increment"),
    [("authorizer", 0), ("event_log", RECORD_NICENESS), ("routing", BACKGROUND_NICENESS)],
)
def test_callers_functions_run_first_then_the_event_log_then_the_other_consumers(
    functions: WorkerFunctions, tmp_path: Path, function: str, increment: int
) -> None:
    report = tmp_path / "seen.json"
    functions.inject(function, sandbox_probe.__file__, "report", str(report))
    try:
        with contextlib.suppress(FunctionError):  # the probe runs at boot; the empty event may be refused
            functions.invoke(function, {})
    finally:
        functions.clear_injections(function)
    assert json.loads(report.read_text())["niceness"] == min(19, os.nice(0) + increment)


def test_a_handler_error_comes_back_as_an_exception_and_the_sandbox_stays(functions: WorkerFunctions) -> None:
    # Not an event at all (an unmatched API Gateway event is answered 404, not raised).
    with pytest.raises(FunctionError) as raised:
        functions.invoke("ingest", ["not", "an API Gateway event"])
    assert raised.value.function == "ingest" and raised.value.error_type == "AttributeError"
    assert "Traceback" in raised.value.remote_traceback
    with pytest.raises(FunctionError):
        functions.invoke("ingest", [])
    pool = functions._pools["ingest"]
    assert pool.total == 1 and len(pool.idle) == 1  # the same sandbox answered both: errors do not kill it


def test_sandboxes_profile_their_invocations_into_a_directory_when_asked(
    functions: WorkerFunctions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PROFILE_ENV, str(tmp_path))
    functions.recycle("ingest")  # sandboxes booted from now on profile
    with pytest.raises(FunctionError):
        functions.invoke("ingest", [])
    monkeypatch.delenv(PROFILE_ENV)
    functions.recycle("ingest")  # a sandbox that stops writes what it profiled
    (written,) = tmp_path.glob("ingest-*.pstats")
    profiled = pstats.Stats(str(written)).stats  # type: ignore[attr-defined]
    assert any(name == "handler" and file.endswith("functions/ingest/handler.py") for file, _, name in profiled)


def test_an_init_error_is_raised_to_the_caller(functions: WorkerFunctions, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def fail():\n    raise RuntimeError('init failed here')\n")
    functions.inject("escalation", broken, "fail")
    with pytest.raises(FunctionError, match="init failed here"):
        functions.invoke("escalation", {})
    functions.clear_injections("escalation")
    assert functions._pools["escalation"].total == 0


def test_waiters_get_a_free_sandbox_in_the_order_they_came() -> None:
    pool = Pool("ingest", functions=None, cap=1)  # type: ignore[arg-type]  # full: nothing boots
    pool.total = 1
    sandbox = Worker("ingest", pid=0, connection=None)  # type: ignore[arg-type]
    pool.idle.append(sandbox)
    held = pool.acquire()
    served: list[int] = []

    def wait_in_line(index: int) -> None:
        worker = pool.acquire()
        served.append(index)
        time.sleep(0.01)
        pool.release(worker, pool.generation, healthy=True)

    waiters = []
    for index in range(4):
        waiter = threading.Thread(target=wait_in_line, args=(index,))
        waiter.start()
        waiters.append(waiter)
        while pool.waiting <= index:  # in line before the next one comes
            time.sleep(0.005)
    pool.release(held, pool.generation, healthy=True)
    for waiter in waiters:
        waiter.join(5)
    assert served == [0, 1, 2, 3]
