"""The local runtime's functions in worker processes: each function has a small pool of
sandboxes (infra/local/worker.py), each a process with the function's environment set once at
start, its handler imported once (the cold start) and one invocation at a time, as Lambda runs
a function in execution environments. Functions therefore run concurrently with each other and
with themselves (up to the pool's cap), and a function sees only its own environment because
it is alone in its process.

A pool starts one sandbox per function when the hub starts (all in parallel, in the background:
an invocation that arrives meanwhile waits for it rather than paying a cold start of its own),
and grows on demand up to its cap when every sandbox is busy; an invocation beyond the cap waits
for a free one. A handler's exception comes back as FunctionError (its type, message and
traceback), so the gateway answers 500 and the dispatcher leaves the batch to be retried, as
with Lambda. A sandbox that dies or outlives the function's timeout is discarded.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

from infra import topology
from infra.local.lambdas import LocalFunctions

REPOSITORY = Path(__file__).resolve().parents[2]
WORKER_SCRIPT = Path(__file__).with_name("worker.py")
CORE_LAYER = REPOSITORY / "layers" / "core" / "python"
FUNCTIONS_DIR = REPOSITORY / "functions"

# Sandboxes per function at most. Two cores serve the whole hub; more sandboxes than this only
# queue on the CPU, while these already overlap one invocation's waits on the emulator with
# another's work. SWITCHBOARD_WORKERS overrides it.
DEFAULT_MAX_WORKERS = 4
WORKERS_ENV = "SWITCHBOARD_WORKERS"
# A shared laptop is slower than Lambda (and the emulator slower than AWS): a sandbox is killed only
# when an invocation takes TIMEOUT_FACTOR times the function's timeout, plus a grace.
TIMEOUT_FACTOR = 3
TIMEOUT_GRACE_SECONDS = 10.0
BOOT_TIMEOUT_SECONDS = 120.0
# The consumers' and scheduled functions' sandboxes run at a lower CPU priority: on one machine
# they share the cores with the functions that answer callers (ingest acknowledging a provider,
# the admin API), which on AWS have compute of their own. They still get every idle cycle, so
# they catch up as soon as callers leave them room.
BACKGROUND_NICENESS = 10
# Of the consumers, the event log goes first: it is the hub's record (what `GET /admin/events`,
# replays and reconciliations read) and the cheapest consumer per event, so after a burst it is
# current within a second or two while routing and the rest work through their backlogs.
RECORD_FUNCTIONS = frozenset({"event_log"})
RECORD_NICENESS = 3
# A directory: every sandbox profiles its invocations into it (infra/local/worker.py, _Profile).
PROFILE_ENV = "SWITCHBOARD_PROFILE_FUNCTIONS"
# What a sandbox gets of the hub's own environment besides the function's variables: the emulator's
# endpoint and credentials (Lambda's role credentials and region), and what the OS needs.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
APP_ID_ENV = "AWS_SDK_UA_APP_ID"


class FunctionError(Exception):
    """The handler raised (or its sandbox failed): the function's error as the caller sees it."""

    def __init__(self, function: str, error_type: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{function}: {error_type}: {message}")
        self.function = function
        self.error_type = error_type
        self.remote_traceback = remote_traceback


def niceness(function: str, answering: Collection[str]) -> int:
    """How much lower than the hub's a sandbox of `function` runs (os.nice's increment)."""
    if function in answering:
        return 0
    return RECORD_NICENESS if function in RECORD_FUNCTIONS else BACKGROUND_NICENESS


def coverage_settings() -> dict[str, str] | None:
    """Where the sandboxes write coverage data when this process is measured (pytest --cov)."""
    coverage = sys.modules.get("coverage")
    current = coverage.Coverage.current() if coverage is not None else None
    if current is None:
        return None
    return {"data_file": os.path.abspath(current.config.data_file), "config_file": current.config.config_file or ""}


@dataclass
class Worker:
    """One sandbox process and its connection to the hub."""

    function: str
    pid: int
    connection: Connection

    def ask(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request, return the answer; FunctionError (and the process killed) when it dies or times out."""
        try:
            self.connection.send_bytes(json.dumps(message).encode())
            if not self.connection.poll(timeout):
                self.kill()
                raise FunctionError(
                    self.function, "Timeout", f"no answer within {timeout:.0f} s; the sandbox was killed"
                )
            return json.loads(self.connection.recv_bytes())
        except (EOFError, OSError) as exc:
            self.kill()
            raise FunctionError(
                self.function, "Runtime.ExitError", f"the sandbox exited ({type(exc).__name__})"
            ) from None

    def stop(self, timeout: float = 10.0) -> None:
        """Let the process end by itself (it saves its coverage data first), else kill it."""
        try:
            self.connection.send_bytes(b'{"stop": true}')
            if self.connection.poll(timeout):
                self.connection.recv_bytes()  # EOFError once the sandbox has closed its end
        except (EOFError, OSError):
            self.connection.close()
            return
        self.kill()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.connection.close()


class Zygote:
    """The process that forks sandboxes (infra/local/worker.py), and the socket they call back on."""

    def __init__(self) -> None:
        self._directory = tempfile.mkdtemp(prefix="switchboard-sandboxes-")
        self._authkey = secrets.token_bytes(32)
        self._listener = Listener(os.path.join(self._directory, "hub.sock"), family="AF_UNIX", authkey=self._authkey)
        self._arrived: dict[str, tuple[int, Connection]] = {}
        self._arrival = threading.Condition()
        self._closed = False
        read_fd, write_fd = os.pipe()
        config = {"site_packages": site_packages(), "read_fd": read_fd}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", str(WORKER_SCRIPT), json.dumps(config)],
                env={key: os.environ[key] for key in INHERITED if key in os.environ},
                stdin=subprocess.DEVNULL,
                pass_fds=(read_fd,),
            )
        finally:
            os.close(read_fd)
        self._requests = Connection(write_fd, readable=False)
        self._sending = threading.Lock()
        threading.Thread(target=self._accept, name="sandbox-listener", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                connection = self._listener.accept()
                hello = json.loads(connection.recv_bytes())
            except (OSError, EOFError, ValueError):
                continue  # closed, or a caller that failed the handshake
            with self._arrival:
                self._arrived[hello["token"]] = (int(hello["pid"]), connection)
                self._arrival.notify_all()

    def fork(self, config: dict[str, Any], timeout: float) -> tuple[int, Connection]:
        """A new sandbox with `config` (environment, handler...): its pid and connection."""
        token = secrets.token_hex(16)
        spawn = {**config, "token": token, "address": self._listener.address, "authkey": self._authkey.hex()}
        with self._sending:
            self._requests.send_bytes(json.dumps({"spawn": spawn}).encode())
        with self._arrival:
            if not self._arrival.wait_for(lambda: token in self._arrived or self._closed, timeout):
                raise FunctionError(
                    config["context"]["function_name"], "Runtime.InitTimeout", "the sandbox never called"
                )
            if token not in self._arrived:
                raise FunctionError(config["context"]["function_name"], "Runtime.Stopped", "the runtime is stopping")
            return self._arrived.pop(token)

    def stop(self) -> None:
        self._closed = True
        with self._arrival:
            self._arrival.notify_all()
        with contextlib.suppress(OSError), self._sending:
            self._requests.send_bytes(b'{"stop": true}')
        self._requests.close()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._listener.close()
        shutil.rmtree(self._directory, ignore_errors=True)


def site_packages() -> list[str]:
    return sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})


@dataclass
class Pool:
    """The sandboxes of one function."""

    name: str
    functions: WorkerFunctions
    cap: int
    idle: list[Worker] = field(default_factory=list)
    total: int = 0  # idle, busy and booting
    booting: int = 0
    waiting: int = 0
    boot_errors: list[FunctionError] = field(default_factory=list)
    closed: bool = False
    generation: int = 0  # bumped by recycle(): a sandbox of an older one is not reused
    changed: threading.Condition = field(default_factory=threading.Condition)
    line: deque[object] = field(default_factory=deque)  # the waiters for a sandbox, in order of arrival

    def booted(self) -> bool:
        return self.booting == 0

    def grow(self) -> None:
        """Boot one more sandbox in the background (caller holds `changed`)."""
        self.total += 1
        self.booting += 1
        threading.Thread(target=self._boot, args=(self.generation,), name=f"boot-{self.name}", daemon=True).start()

    def _boot(self, generation: int) -> None:
        try:
            worker: Worker | None = self.functions.spawn(self.name)
        except Exception as exc:  # noqa: BLE001 - any failure must reach the waiters, or they wait forever
            worker = None
            failure = exc if isinstance(exc, FunctionError) else FunctionError(self.name, type(exc).__name__, str(exc))
        with self.changed:
            self.booting -= 1
            if worker is None:
                self.total -= 1
                self.boot_errors.append(failure)
            elif self.closed or generation != self.generation:
                self.total -= 1
                threading.Thread(target=worker.stop, daemon=True).start()
            else:
                self.idle.append(worker)
            self.changed.notify_all()

    def acquire(self) -> Worker:
        """A free sandbox, first come first served: waiters take sandboxes in the order they came
        (a freed sandbox woke every waiter and the quickest took it, so under load some webhooks
        lost that race again and again: acknowledgements of 10 s beside a median of 2 s)."""
        turn = object()
        with self.changed:
            self.waiting += 1
            self.line.append(turn)
            try:
                while True:
                    if self.closed:
                        raise FunctionError(self.name, "Runtime.Stopped", "the local runtime is stopping")
                    if self.idle and self.line[0] is turn:
                        return self.idle.pop()
                    if self.boot_errors:
                        raise self.boot_errors.pop()
                    # Every waiter has a sandbox booting for it, or the pool is full: wait.
                    if self.booting < self.waiting and self.total < self.cap:
                        self.grow()
                    self.changed.wait()
            finally:
                self.waiting -= 1
                self.line.remove(turn)
                if self.idle and self.line:
                    self.changed.notify_all()  # the next in line may take the next free sandbox

    def release(self, worker: Worker, generation: int, healthy: bool) -> None:
        with self.changed:
            reuse = healthy and not self.closed and generation == self.generation
            if reuse:
                self.idle.append(worker)
            else:
                self.total -= 1
            self.changed.notify_all()
        if not reuse and not worker.connection.closed:
            worker.stop()

    def call(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        with self.changed:
            generation = self.generation
        worker = self.acquire()
        try:
            answer = worker.ask(message, timeout)
        except FunctionError:
            self.release(worker, generation, healthy=False)
            raise
        self.release(worker, generation, healthy=True)
        return answer

    def drain(self) -> list[Worker]:
        """Forget the idle sandboxes (caller holds `changed`); busy ones are stopped on release."""
        idle, self.idle = self.idle, []
        self.total -= len(idle)
        self.changed.notify_all()
        return idle


class WorkerFunctions(LocalFunctions):
    """LocalFunctions whose invocations run in sandbox processes, a pool per function."""

    def __init__(
        self,
        names: dict[str, str],
        stage: str,
        extra_env: dict[str, str] | None = None,
        delivery_policy: dict[str, Any] | None = None,
        max_workers: int | None = None,
        ingest_cache_seconds: int | None = None,
    ) -> None:
        super().__init__(names, stage, extra_env, delivery_policy, ingest_cache_seconds)
        cap = max_workers or int(os.environ.get(WORKERS_ENV) or DEFAULT_MAX_WORKERS)
        self._pools = {name: Pool(name, self, max(1, cap)) for name in topology.FUNCTIONS}
        self._injections: dict[str, list[dict[str, Any]]] = {name: [] for name in topology.FUNCTIONS}
        # Every sandbox started, pid -> function (a benchmark reads their CPU from /proc by it).
        self.sandboxes: dict[int, str] = {}
        self._coverage = coverage_settings()
        self._forker: Zygote | None = None
        # The functions a caller waits on (the API's routes and the authorizer) keep the CPU first.
        self._answering = {route.function for route in topology.ROUTES} | {topology.AUTHORIZER_FUNCTION}
        self._starting = threading.Lock()

    def start(self) -> None:
        """One sandbox per function, booting in parallel in the background."""
        for pool in self._pools.values():
            with pool.changed:
                if pool.total == 0:
                    pool.grow()

    def wait_ready(self, timeout: float = BOOT_TIMEOUT_SECONDS) -> None:
        """Until every pool's first sandbox has booted (or failed to)."""
        for pool in self._pools.values():
            with pool.changed:
                pool.changed.wait_for(pool.booted, timeout)

    def stop(self) -> None:
        stopping: list[Worker] = []
        for pool in self._pools.values():
            with pool.changed:
                pool.closed = True
                stopping += pool.drain()
        threads = [threading.Thread(target=worker.stop, daemon=True) for worker in stopping]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with self._starting:
            if self._forker is not None:
                self._forker.stop()
                self._forker = None

    def set_public_base_url(self, url: str) -> None:
        before = {name: self.environment(name) for name in self._pools}
        super().set_public_base_url(url)
        for name in self._pools:
            if self.environment(name) != before[name]:
                self.recycle(name)

    def recycle(self, name: str) -> None:
        """Fresh sandboxes for `name` from now on (its environment or injections changed)."""
        pool = self._pools[name]
        with pool.changed:
            pool.generation += 1
            idle = pool.drain()
        for worker in idle:
            worker.stop()

    def inject(self, name: str, path: str | Path, function: str, *args: Any) -> None:
        """Run `function(*args)` from the file at `path` in every sandbox of `name`, now and in those
        booted later, until `clear_injections(name)` (a test's fault injection: a patch made in the
        test's own process would not reach the sandboxes)."""
        injection = {"path": str(path), "function": function, "args": list(args)}
        self._injections[name].append(injection)
        self.recycle(name)  # every sandbox booted from now on applies it at start

    def clear_injections(self, name: str) -> None:
        self._injections[name] = []
        self.recycle(name)

    def spawn(self, name: str) -> Worker:
        """Start one sandbox of `name` and wait until its handler is imported."""
        function = topology.FUNCTIONS[name]
        environment = {key: os.environ[key] for key in INHERITED if key in os.environ}
        environment |= {key: value for key, value in os.environ.items() if key.startswith("AWS_")}
        environment |= self.environment(name)
        environment["AWS_LAMBDA_FUNCTION_NAME"] = self.physical_name(name)
        environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(function.memory_mb)
        # botocore puts it in every request's User-Agent (`app/<name>`): the emulator tells the
        # functions that answer callers from the consumers by it (infra/local/persistence.py, Lanes).
        environment[APP_ID_ENV] = name
        config = {
            "environment": environment,
            "handler": function.handler,
            "package": function.directory.replace("/", "."),
            "functions_dir": str(FUNCTIONS_DIR),
            "code_paths": [str(CORE_LAYER)],
            "context": {
                "function_name": self.physical_name(name),
                "memory_limit_in_mb": function.memory_mb,
                "timeout_seconds": function.timeout_seconds,
            },
            "injections": self._injections[name],
            "coverage": self._coverage,
            "profile_dir": os.environ.get(PROFILE_ENV) or None,
            "nice": niceness(name, self._answering),
        }
        pid, connection = self._zygote().fork(config, BOOT_TIMEOUT_SECONDS)
        worker = Worker(name, pid, connection)
        self.sandboxes[pid] = name
        try:
            if not connection.poll(BOOT_TIMEOUT_SECONDS):
                worker.kill()
                raise FunctionError(name, "Runtime.InitTimeout", f"not ready within {BOOT_TIMEOUT_SECONDS:.0f} s")
            ready = json.loads(connection.recv_bytes())
        except (EOFError, OSError):
            worker.kill()
            raise FunctionError(name, "Runtime.ExitError", "the sandbox exited while starting") from None
        if "init_error" in ready:
            worker.stop()
            error = ready["init_error"]
            raise FunctionError(name, error["type"], error["message"], error["traceback"])
        return worker

    def _zygote(self) -> Zygote:
        with self._starting:
            if self._forker is None:
                self._forker = Zygote()
            return self._forker

    def physical_name(self, name: str) -> str:
        return f"switchboard-{self._stage}-{name}"

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        function = topology.FUNCTIONS[name]
        answer = self._pools[name].call(
            {"event": event}, function.timeout_seconds * TIMEOUT_FACTOR + TIMEOUT_GRACE_SECONDS
        )
        if "error" in answer:
            error = answer["error"]
            raise FunctionError(name, error["type"], error["message"], error["traceback"])
        return answer["result"]
