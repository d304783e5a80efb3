"""The local hub's state across restarts, a SIGKILL included (docs/decisions.md, "The local hub keeps
its state").

Two parts, each covering what the other cannot:

- a snapshot of the embedded moto's backends (every service the hub touched: DynamoDB, S3, SQS,
  EventBridge, Scheduler, Secrets Manager, SES...), copied while no AWS request is being served
  (a writer-preferring lock around moto's WSGI app; the copy is a fork, whose child pickles while
  the hub goes on), written atomically (temporary file, fsync,
  rename) every few seconds when something changed, after each admin change and on a graceful
  stop; restored in place at start;
- a journal of the webhooks the gateway acknowledged since the last snapshot: each one's API
  Gateway event, appended (one write to an O_APPEND file, in the OS's hands before the 2xx goes
  out, so a killed process loses none) after ingest answered 2xx. At start, after the snapshot is
  restored, every journalled event goes through ingest again: one already in the snapshot is a
  duplicate (ingest's dedupe), one that is not is stored and published as the first time (same
  receive time, so the same event ids and raw key).

A snapshot first seals the journal file (new entries go to a new file), then pickles; the sealed
files are deleted once the snapshot is on disk. An entry is sealed only after its ingest finished,
so what a sealed file holds is in the snapshot taken after it; what was acknowledged after the seal
is replayed. A kill at any point leaves either the old snapshot with every journal file since it,
or the new one with the files after it.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import select
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

SNAPSHOT_FILE = "emulator.pickle"
JOURNAL_DIR = "journal"
SNAPSHOT_FORMAT = 1
# Reads never change moto's state: they neither mark it changed nor need a snapshot's attention.
READ_ACTIONS = ("Get", "Describe", "List", "Query", "Scan", "BatchGet", "Head", "TestEventPattern")
# ReceiveMessage long-polls (the dispatcher waits up to a second): it is served outside the lock so
# a snapshot never waits behind it. What it changes (a message's visibility, receive count) only
# decides when a message comes back: a snapshot that misses it redelivers the message earlier.
UNLOCKED_ACTIONS = ("ReceiveMessage",)


# The forked writer normally answers within seconds; one that has not in this long is stuck.
SNAPSHOT_CHILD_TIMEOUT_SECONDS = 120.0


class SharedExclusiveLock:
    """Many holders of the shared side (AWS requests) or one of the exclusive side (a snapshot);
    a waiting exclusive holder stops new shared ones, so a busy hub cannot starve snapshots."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting_exclusive = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._exclusive and not self._waiting_exclusive)
            self._shared += 1
        try:
            yield
        finally:
            with self._condition:
                self._shared -= 1
                if not self._shared:
                    self._condition.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._condition:
            self._waiting_exclusive += 1
            self._condition.wait_for(lambda: not self._exclusive and not self._shared)
            self._waiting_exclusive -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._condition:
                self._exclusive = False
                self._condition.notify_all()


def aws_action(environ: dict[str, Any]) -> str:
    """The AWS action of a request to moto, as far as the headers tell it: the JSON protocols'
    X-Amz-Target (`DynamoDB_20120810.PutItem` -> `PutItem`), else the REST method (`GET`)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return str(target).rsplit(".", 1)[-1]
    return str(environ.get("REQUEST_METHOD", "POST"))


SERVICE_SCOPE = re.compile(r"Credential=[^/]*/[^/]*/[^/]*/([^/]+)/")


def aws_service(environ: dict[str, Any]) -> str:
    """The AWS service a request to moto is for: its signature's credential scope."""
    found = SERVICE_SCOPE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    return found.group(1) if found else "?"


def is_read(action: str) -> bool:
    return action in ("GET", "HEAD", "OPTIONS") or action.startswith(READ_ACTIONS)


APP_ID = re.compile(r"(?:^| )app/([A-Za-z0-9_.-]+)")


def caller(environ: dict[str, Any]) -> str | None:
    """The function that sent a request to moto: its sandbox sets AWS_SDK_UA_APP_ID to its name,
    which botocore sends in the User-Agent as `app/<name>`; None for the hub's own requests."""
    found = APP_ID.search(str(environ.get("HTTP_USER_AGENT", "")))
    return found.group(1) if found else None


class Lanes:
    """Who goes first in the emulator. Everything the hub runs shares its one process, so a
    consumer's DynamoDB writes compete with ingest's for the same interpreter: under load a
    webhook's acknowledgement waited behind the event log's and routing's calls. While a request
    of a function that answers a caller (ingest, the authorizer, the admin API) is being served,
    the consumers' requests go through one at a time (each waits at most `max_wait` seconds for
    its turn, so consumers never stop); when no caller is waiting they all go at once again.
    The hub's own requests (the dispatcher's, the timers') are never held."""

    def __init__(self, foreground: frozenset[str], max_wait: float = 0.25, background_slots: int = 1) -> None:
        self.foreground = foreground
        self.max_wait = max_wait
        self.background_slots = background_slots
        self._condition = threading.Condition()
        self._foreground = 0
        self._background = 0
        self.held = 0  # consumer requests that waited for their turn

    @contextmanager
    def lane(self, function: str | None) -> Iterator[None]:
        if function is None:
            yield
            return
        foreground = function in self.foreground
        with self._condition:
            if foreground:
                self._foreground += 1
            elif self._foreground and self._background >= self.background_slots:
                self.held += 1
                self._condition.wait_for(
                    lambda: not self._foreground or self._background < self.background_slots, self.max_wait
                )
            if not foreground:
                self._background += 1
        try:
            yield
        finally:
            with self._condition:
                if foreground:
                    self._foreground -= 1
                else:
                    self._background -= 1
                self._condition.notify_all()


class GuardedApp:
    """moto's WSGI app behind the snapshot lock and the lanes; counts the requests that may change
    state. The response is produced inside the lock (moto answers with a complete body)."""

    def __init__(self, app: Callable[..., Any], lock: SharedExclusiveLock, lanes: Lanes | None = None) -> None:
        self._app = app
        self._lock = lock
        self.lanes = lanes
        self.changes = 0
        # (caller, service, action) -> requests, and the CPU seconds moto spent answering them (the
        # serving thread's CPU time: waits for locks and long polls are not counted), while a
        # benchmark counts them (tests/bench/local_load.py --count).
        self.tally: Counter[tuple[str, str, str]] | None = None
        self.cpu_tally: dict[tuple[str, str, str], float] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.tally is None and self.cpu_tally is None:
            return self._answer(environ, start_response)
        with self._counted((caller(environ) or "hub", aws_service(environ), aws_action(environ))):
            return self._answer(environ, start_response)

    @contextmanager
    def direct(self, service: str, action: str) -> Iterator[None]:
        """Around a call the hub makes to moto's backends in its own process, without HTTP (the
        dispatcher's receives and deletes, infra/local/dispatcher.py): the same lock as a request
        of that action, the same count of changes, the same tally while a benchmark counts."""
        with self._counted(("hub", service, f"{action} (in-process)")):
            if action in UNLOCKED_ACTIONS:
                yield
            else:
                with self._lock.shared():
                    if not is_read(action):
                        self.changes += 1
                    yield

    @contextmanager
    def _counted(self, key: tuple[str, str, str]) -> Iterator[None]:
        """One request of `key` in the benchmark's tallies, with the serving thread's CPU for it."""
        tally, cpu_tally = self.tally, self.cpu_tally
        started = time.thread_time()
        try:
            yield
        finally:
            if tally is not None:
                tally[key] += 1
            if cpu_tally is not None:
                cpu_tally[key] = cpu_tally.get(key, 0.0) + time.thread_time() - started

    def _answer(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        action = aws_action(environ)
        if action in UNLOCKED_ACTIONS:
            return self._app(environ, start_response)
        with self.lanes.lane(caller(environ)) if self.lanes else nullcontext(), self._lock.shared():
            if not is_read(action):
                self.changes += 1
            return list(self._app(environ, start_response))


class _Pickler(pickle.Pickler):
    """moto's SQS queues hold a Condition for long polls: a snapshot keeps a fresh one."""

    LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, threading.Condition):
            return threading.Condition, ()
        if isinstance(obj, self.LOCK_TYPES):
            return type(obj), ()
        return NotImplemented


def backends() -> Iterator[tuple[tuple[str, str, str], Any]]:
    """Every moto backend the process has used: ((service, account, region), backend)."""
    from moto.core.base_backend import BackendDict

    used: list[Any] = vars(BackendDict)["_instances"]  # moto's own list of the services in use
    for backend_dict in list(used):
        for account, regional in list(backend_dict.items()):
            for region, backend in list(regional.items()):
                yield (backend_dict.service_name, account, region), backend


def dump_backends() -> tuple[bytes, list[str]]:
    """The pickled backends, and the services that could not be pickled (left out, named)."""
    kept: dict[tuple[str, str, str], bytes] = {}
    skipped: list[str] = []
    for key, backend in backends():
        buffer = io.BytesIO()
        try:
            _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(backend)
        except (TypeError, AttributeError, pickle.PicklingError):
            skipped.append(key[0])  # e.g. SSM (a lambda in a defaultdict), which the hub does not use
            continue
        kept[key] = buffer.getvalue()
    return pickle.dumps({"format": SNAPSHOT_FORMAT, "backends": kept}, protocol=pickle.HIGHEST_PROTOCOL), skipped


def load_backends(data: bytes) -> int:
    """Put the pickled backends in place of the running ones (in place: moto and every client
    keep their references); the number restored."""
    from moto.backends import get_backend

    document = pickle.loads(data)  # noqa: S301 - the hub's own private file (0600, its state directory)
    if document.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"snapshot format {document.get('format')!r}; this hub reads {SNAPSHOT_FORMAT}")
    for (service, account, region), pickled in document["backends"].items():
        saved = pickle.loads(pickled)  # noqa: S301 - as above
        running = get_backend(service)[account][region]
        running.__dict__.clear()
        running.__dict__.update(saved.__dict__)
    return len(document["backends"])


def write_atomically(path: Path, data: bytes) -> None:
    """The file is either the old one or the whole new one, whenever the process dies."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


class Journal:
    """Acknowledged webhooks since the last snapshot: `<n>.jsonl` files, one API event a line;
    the highest number is open for appending, lower ones are sealed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        numbers = self.numbers()
        self._number = (numbers[-1] + 1) if numbers else 1
        self._descriptor = self._open()

    def numbers(self) -> list[int]:
        return sorted(int(p.stem) for p in self.directory.glob("*.jsonl") if p.stem.isdigit())

    def _open(self) -> int:
        path = self.directory / f"{self._number}.jsonl"
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, event: dict[str, Any]) -> None:
        """One write of one line: once it returns the entry is the OS's, which outlives the process."""
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        with self._lock:
            os.write(self._descriptor, line)

    def seal(self) -> int:
        """Start a new file; the number of the last sealed one."""
        with self._lock:
            os.close(self._descriptor)
            sealed = self._number
            self._number += 1
            self._descriptor = self._open()
        return sealed

    def drop_through(self, number: int) -> None:
        for older in self.numbers():
            if older <= number:
                (self.directory / f"{older}.jsonl").unlink(missing_ok=True)

    def entries(self, through: int) -> Iterator[dict[str, Any]]:
        """Every entry of files up to `through`; a line cut short by a kill mid-write is skipped
        (its webhook was never acknowledged: the 2xx follows the write)."""
        for number in self.numbers():
            if number > through:
                break
            for line in (self.directory / f"{number}.jsonl").read_bytes().splitlines():
                try:
                    yield json.loads(line)
                except ValueError:
                    continue

    def close(self) -> None:
        with self._lock:
            os.close(self._descriptor)


def _become_snapshot_writer(parent: int, keep: int) -> None:  # pragma: no cover - runs in the child
    """The forked snapshot writer dies with the hub (a writer left behind by a kill -9 would
    replace the next hub's snapshot with an older one) and lets go of what it inherited but
    does not use (the hub's listening and connected sockets: a port stays bound while any
    process holds it)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)  # the hub died before the line above took effect
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)


class PersistentState:
    """Snapshots and journal under `directory` (the hub's state directory)."""

    def __init__(
        self,
        directory: Path,
        interval_seconds: float = 5.0,
        log: Callable[[str], None] | None = None,
        lanes: Lanes | None = None,
    ) -> None:
        self.directory = directory
        self.lanes = lanes
        self.snapshot_file = directory / SNAPSHOT_FILE
        self.interval = interval_seconds
        self.lock = SharedExclusiveLock()
        self.app: GuardedApp | None = None
        self.journal: Journal | None = None
        self._log = log
        self._saved_changes = -1
        self._snapshotting = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.snapshots = 0
        self.longest_pause = 0.0  # seconds AWS requests waited for one snapshot, at most
        self.last_pause = 0.0
        self.last_write = 0.0  # seconds from the pause to the file on disk (the child's pickling)

    @staticmethod
    def discard(directory: Path) -> None:
        """What `switchboard dev --fresh` forgets: the emulator's snapshot and the journal."""
        (directory / SNAPSHOT_FILE).unlink(missing_ok=True)
        journal = directory / JOURNAL_DIR
        if journal.is_dir():
            for entry in journal.glob("*.jsonl"):
                entry.unlink()

    def wrap(self, app: Callable[..., Any]) -> GuardedApp:
        self.app = GuardedApp(app, self.lock, self.lanes)
        return self.app

    def restore(self) -> bool:
        """Load the snapshot into the running emulator (before any resource is created); whether
        there was one. Opens the journal; what it holds is replayed by `replay`."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(self.directory / JOURNAL_DIR)
        if not self.snapshot_file.exists():
            return False
        with self.lock.exclusive():
            load_backends(self.snapshot_file.read_bytes())
        return True

    def replay(self, ingest: Callable[[dict[str, Any]], int]) -> tuple[int, int]:
        """Every journalled webhook through `ingest` (its HTTP status back), then a snapshot that
        covers them; (replayed, refused). A refused one is reported and kept for the next start."""
        assert self.journal is not None
        through = self.journal.seal()
        replayed = refused = 0
        for event in self.journal.entries(through):
            status = ingest(event)
            replayed += 1
            if not 200 <= status < 300:
                refused += 1
                if self._log:
                    self._log(f"replaying acknowledged webhook {event.get('rawPath')} answered {status}")
        if refused:
            return replayed, refused  # the files stay: the next start tries them again
        self.snapshot(force=True)
        return replayed, refused

    def snapshot(self, force: bool = False) -> bool:
        """Seal the journal, pickle the backends, write the file, drop the sealed journal files;
        whether a snapshot was taken (nothing changed since the last one: none)."""
        assert self.app is not None and self.journal is not None
        with self._snapshotting:
            changes = self.app.changes
            if not force and changes == self._saved_changes:
                return False
            sealed = self.journal.seal()
            if sys.platform == "linux":  # fork, and a child that dies with the hub (prctl)
                changes, skipped = self._snapshot_in_child()
            else:
                changes, skipped = self._snapshot_in_place()
            self.journal.drop_through(sealed)
            self._saved_changes = changes
            self.snapshots += 1
            if skipped and self._log and self.snapshots == 1:
                self._log(f"not kept across restarts (moto cannot pickle them): {', '.join(sorted(set(skipped)))}")
            return True

    def _snapshot_in_child(self) -> tuple[int, list[str]]:
        """Fork while no AWS request is being served, and let the child pickle and write its copy
        of the backends (copy-on-write) while the hub goes on: AWS requests wait only for the
        fork (a few ms), not for the pickling, which grows with what the hub holds (over a second
        at a few thousand webhooks: long enough to push acknowledgements past 2 s). The child
        runs only the pickling and the write (its one thread, no logging, no locks taken) and
        leaves with os._exit; its status says whether the file is on disk."""
        assert self.app is not None
        parent = os.getpid()
        read_end, write_end = os.pipe()
        try:
            with self.lock.exclusive():
                paused = time.monotonic()
                changes = self.app.changes
                child = os.fork()
                if child == 0:  # pragma: no cover - the child's work is seen in the file it writes
                    code = 1
                    try:
                        _become_snapshot_writer(parent, write_end)
                        data, skipped = dump_backends()
                        write_atomically(self.snapshot_file, data)
                        os.write(write_end, json.dumps(skipped).encode())
                        code = 0
                    finally:
                        os._exit(code)
                self.last_pause = time.monotonic() - paused
                self.longest_pause = max(self.longest_pause, self.last_pause)
            os.close(write_end)
            write_end = -1
            with os.fdopen(read_end, "rb") as answer:
                read_end = -1
                if not select.select([answer], [], [], SNAPSHOT_CHILD_TIMEOUT_SECONDS)[0]:
                    # A lock another thread held at the fork (the child has only ours) would stall it
                    # forever: give up on the child and pickle here, under the lock, as without fork.
                    os.kill(child, signal.SIGKILL)
                    os.waitpid(child, 0)
                    return self._snapshot_in_place()
                reported = answer.read()
        finally:
            for descriptor in (read_end, write_end):
                if descriptor >= 0:
                    os.close(descriptor)
        _, status = os.waitpid(child, 0)
        self.last_write = time.monotonic() - paused
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"the snapshot writer (pid {child}) failed with status {status}")
        return changes, json.loads(reported)

    def _snapshot_in_place(self) -> tuple[int, list[str]]:
        """Where there is no fork: pickle while AWS requests wait, then write."""
        assert self.app is not None
        for attempt in range(3):
            try:
                with self.lock.exclusive():
                    paused = time.monotonic()
                    changes = self.app.changes
                    data, skipped = dump_backends()
                    self.last_pause = time.monotonic() - paused
                    self.longest_pause = max(self.longest_pause, self.last_pause)
                break
            except RuntimeError:  # a long poll changed a queue while it was pickled: again
                if attempt == 2:
                    raise
        write_atomically(self.snapshot_file, data)
        self.last_write = time.monotonic() - paused
        return changes, skipped

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="snapshots", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # A snapshot grows with what the hub holds (~6 KB per webhook with its derived records):
        # the wait stretches to ten times the last pause and the last write, so snapshots never
        # hold AWS requests, nor take a core, more than a tenth of the time; the journal covers
        # what happens in between.
        while not self._stop.wait(max(self.interval, 10 * self.last_pause, 10 * self.last_write)):
            try:
                self.snapshot()
            except Exception as exc:  # noqa: BLE001 - keep the hub up; the journal still holds the webhooks
                if self._log:
                    self._log(f"snapshot failed: {type(exc).__name__}: {exc}")

    def stop(self) -> None:
        """A last snapshot (a graceful stop leaves no journal to replay)."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        started = time.monotonic()
        self.snapshot(force=True)
        if self._log:
            self._log(
                f"state saved in {self.snapshot_file} ({time.monotonic() - started:.1f} s; {self.snapshots} "
                f"snapshots, the longest held AWS requests for {self.longest_pause * 1000:.0f} ms)"
            )
        if self.journal:
            self.journal.close()
