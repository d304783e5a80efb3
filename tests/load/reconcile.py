"""Load and reconcile the local hub: signed webhooks across every provider, sent concurrently to a
real `switchboard dev`, with duplicates, bad signatures and malformed bodies mixed in and (with
--kill-at) a SIGKILL and restart of the hub in the middle; then every request is accounted for.

    python -m tests.load.reconcile --webhooks 20000 --kill-at 10000

What is expected of each request is worked out on the sending side by the provider's own adapter
(verify with the connection's credentials, then normalise): a valid webhook's event ids (UUID v5 of
provider, connection and the provider's item id), or the status a rejected one must get (401 for a
signature that does not verify, 400 for a body that does not normalise). The reconciliation reads
the event log table itself (on the hub's embedded DynamoDB) and fails unless every acknowledged,
valid webhook's events are there exactly once, every rejected request got its status, and nothing
else appeared on the load's connections. A request cut off by the kill (no answer) is sent again,
as a provider retries, until the restarted hub answers it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPOSITORY = Path(__file__).resolve().parents[2]
KINDS = ("valid", "duplicate", "bad_signature", "malformed")
MIX = (0.80, 0.10, 0.05, 0.05)
START_TIMEOUT = 180.0
ANSWER_TIMEOUT = 60.0


@dataclass
class Sent:
    index: int
    kind: str
    provider: str
    connection: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    expected_status: int | None  # None: any 2xx
    event_ids: list[str]
    status: int | None = None
    tries: int = 0


@dataclass
class Hub:
    state_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    base_url: str = ""
    endpoint: str = ""
    tables: dict[str, str] = field(default_factory=dict)
    admin_key: str = ""

    def start(self, fresh: bool) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "AWS_"))}
        command = [sys.executable, "-c", "import sys; from infra.local.cli import main; sys.exit(main(sys.argv[1:]))"]
        args = ["--state-dir", str(self.state_dir), "dev", "--port", str(self.port), "--quiet"]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = (self.state_dir.parent / "hub.log").open("ab")
        runtime = self.state_dir / "runtime.json"
        runtime.unlink(missing_ok=True)  # a killed hub leaves its own behind
        self.process = subprocess.Popen(
            [*command, *args, *(["--fresh"] if fresh else [])], cwd=REPOSITORY, env=env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"switchboard dev exited with {self.process.returncode}; see {log.name}")
            if runtime.exists():
                try:
                    info = json.loads(runtime.read_text())
                except ValueError:
                    info = {}
                if info.get("base_url"):
                    self.base_url, self.endpoint, self.tables = info["base_url"], info["aws_endpoint"], info["tables"]
                    return
            time.sleep(0.25)
        raise RuntimeError(f"switchboard dev did not start in {START_TIMEOUT:.0f} s; see {log.name}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cli(self, *args: str) -> list[str]:
        """`switchboard --state-dir ... ARGS` against this hub; its output's lines."""
        command = [sys.executable, "-c", "import sys; from infra.local.cli import main; sys.exit(main(sys.argv[1:]))"]
        done = subprocess.run(
            [*command, "--state-dir", str(self.state_dir), *args],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout.splitlines()

    def admin(self, method: str, path: str, payload: Any = None) -> Any:
        request = urllib.request.Request(
            self.base_url + path,
            data=None if payload is None else json.dumps(payload).encode(),
            method=method,
            headers={"Authorization": f"Bearer {self.admin_key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read() or b"null")

    def event_log_backlog(self) -> int:
        """Messages waiting for (or being handled by) the event-log consumer."""
        import boto3

        sqs = boto3.client(
            "sqs",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        url = sqs.get_queue_url(QueueName="switchboard-local-event-log")["QueueUrl"]
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(attributes[name]) for name in names)

    def event_log(self, connections: set[str]) -> list[dict[str, Any]]:
        """Every item of the event log table on the load's connections (a scan of the emulator's table)."""
        import boto3

        from switchboard_core.providers import PROVIDER_NAMES

        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        items: list[dict[str, Any]] = []
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=self.tables["table:event_log"],
            ProjectionExpression="id, #c, provider, #e",
            ExpressionAttributeNames={"#c": "connection", "#e": "event"},
        ):
            for item in page.get("Items", []):
                if item.get("connection", {}).get("S") in connections and item["provider"]["S"] in PROVIDER_NAMES:
                    event = json.loads(item["event"]["S"])
                    items.append(
                        {
                            "id": item["id"]["S"],
                            "connection": event["connection"],
                            "provider": event["provider"],
                            "provider_event_id": event["provider_event_id"],
                        }
                    )
        return items


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def expectation(
    provider: str, connection: str, credentials: dict[str, str], signed: Any, now: datetime
) -> tuple[int | None, list[str]]:
    """What the hub must answer and store for `signed`, by the provider's own adapter."""
    from infra.local.sns_dev import DEV_CERT_DIR_ENV, dev_certificate_dir
    from switchboard_core.errors import HubError
    from switchboard_core.events import event_id
    from switchboard_core.providers import get_adapter
    from switchboard_core.providers.base import SignatureError, WebhookRequest

    # The samples' SNS certificates are the local hub's dev ones (its functions get the same setting).
    os.environ.setdefault(DEV_CERT_DIR_ENV, str(dev_certificate_dir()))
    adapter = get_adapter(provider)
    request = WebhookRequest(
        method=signed.method,
        url=signed.url,
        headers={k.lower(): v for k, v in signed.headers.items()},
        body=signed.body,
        query=parse_qs(urlsplit(signed.url).query, keep_blank_values=True),
        received_at=now,
    )
    if request.content_type not in adapter.content_types:
        return 415, []
    try:
        drafts = adapter.normalise(adapter.verified(request, credentials, now))
    except SignatureError:
        return 401, []
    except HubError as error:
        return error.status, []
    return None, [event_id(provider, connection, draft.provider_event_id) for draft in drafts]


class Load:
    def __init__(self, hub: Hub, webhooks: int, concurrency: int, kill_at: int, seed: int) -> None:
        self.hub = hub
        self.webhooks = webhooks
        self.concurrency = concurrency
        self.kill_at = kill_at
        self.random = random.Random(seed)
        self.connections: dict[str, dict[str, Any]] = {}
        self.sent: list[Sent] = []
        self.recent: deque[Sent] = deque(maxlen=64)  # acknowledged valid webhooks a duplicate repeats
        self._lock = threading.Lock()
        self._hub_up = threading.Event()
        self._hub_up.set()
        self._killed = threading.Event()
        self.restart_seconds = 0.0
        self._slots = threading.BoundedSemaphore(2 * concurrency)

    def create_connections(self) -> None:
        from infra.local.samples import SAMPLES, demo_credentials

        tenant = f"load{self.random.randrange(10**6):06d}"
        # The tenant's own admin key, made with the CLI (it must outlive the kill as well).
        self.hub.admin_key = self.hub.cli("keys", "create", "--tenant", tenant, "--name", "load", "--role", "admin")[1]
        for provider in SAMPLES:
            credentials = demo_credentials(provider)
            created = self.hub.admin(
                "POST",
                "/admin/connections",
                {"provider": provider, "tenant": tenant, "credentials": credentials, "name": f"load {provider}"},
            )
            self.connections[provider] = {"id": created["id"], "credentials": credentials}

    def plan(self) -> Iterator[tuple[int, str, str]]:
        providers = sorted(self.connections)
        for index in range(self.webhooks):
            yield index, self.random.choices(KINDS, MIX)[0], providers[index % len(providers)]

    def build(self, index: int, kind: str, provider: str) -> Sent:
        from infra.local.samples import build_sample, demo_credentials

        if kind == "duplicate":
            with self._lock:
                original = self.random.choice(self.recent) if self.recent else None
            if original is not None:
                return Sent(
                    index,
                    kind,
                    original.provider,
                    original.connection,
                    original.method,
                    original.url,
                    original.headers,
                    original.body,
                    None,
                    original.event_ids,
                )
            kind = "valid"
        connection = self.connections[provider]
        url = f"{self.hub.base_url}/webhooks/{provider}/{connection['id']}"
        now = datetime.now(UTC)
        # A bad signature: signed with someone else's credentials of the same shape.
        signing = demo_credentials(provider) if kind == "bad_signature" else connection["credentials"]
        signed = build_sample(provider, None, signing, url, now)
        body = signed.body
        if kind == "malformed":  # the signed body cut short: what the adapter makes of it decides the status
            body = body[: len(body) // 2]
            signed = type(signed)(signed.method, signed.url, signed.headers, body)
        status, event_ids = expectation(provider, connection["id"], connection["credentials"], signed, now)
        return Sent(
            index,
            kind,
            provider,
            connection["id"],
            signed.method,
            signed.url,
            dict(signed.headers),
            body,
            status,
            event_ids,
        )

    def post(self, sent: Sent) -> None:
        """Send until answered; a request cut off by the kill is sent again, as a provider retries."""
        try:
            self._send(sent)
        finally:
            self._slots.release()

    def _send(self, sent: Sent) -> None:
        deadline = time.monotonic() + START_TIMEOUT + ANSWER_TIMEOUT
        while time.monotonic() < deadline:
            self._hub_up.wait(START_TIMEOUT)
            sent.tries += 1
            if sent.kind == "duplicate" or sent.tries > 1:
                # Sent again later: a signed timestamp may have left its window (Discord, Slack:
                # 5 minutes) while it waited, and then the right answer is a 401.
                connection = self.connections[sent.provider]
                signed = SimpleNamespace(method=sent.method, url=sent.url, headers=sent.headers, body=sent.body)
                now = datetime.now(UTC)
                sent.expected_status = expectation(
                    sent.provider, connection["id"], connection["credentials"], signed, now
                )[0]
            request = urllib.request.Request(sent.url, data=sent.body or None, headers=sent.headers, method=sent.method)
            try:
                with urllib.request.urlopen(request, timeout=ANSWER_TIMEOUT) as answer:
                    sent.status = int(answer.status)
            except urllib.error.HTTPError as error:
                sent.status = int(error.code)
            except OSError:
                time.sleep(0.5)
                continue
            if sent.kind == "valid" and 200 <= sent.status < 300:
                with self._lock:
                    self.recent.append(sent)
            return

    def kill_and_restart(self) -> None:
        self._hub_up.clear()
        time.sleep(self.random.uniform(0.0, 0.5))  # mid-request, wherever the hub is
        self.hub.kill()
        started = time.monotonic()
        self.hub.start(fresh=False)
        self.restart_seconds = time.monotonic() - started
        self._hub_up.set()

    def run(self) -> float:
        started = time.monotonic()
        with ThreadPoolExecutor(self.concurrency) as pool:
            for index, kind, provider in self.plan():
                self._hub_up.wait(START_TIMEOUT)
                sent = self.build(index, kind, provider)
                self.sent.append(sent)
                if self.kill_at and index == self.kill_at:
                    threading.Thread(target=self.kill_and_restart, name="kill", daemon=True).start()
                self._slots.acquire()  # built just before it is sent: its signed timestamp is fresh
                pool.submit(self.post, sent)
        return time.monotonic() - started


@dataclass
class Reconciliation:
    rows: list[tuple[str, int]]
    problems: list[str]

    def table(self) -> str:
        width = max(len(name) for name, _ in self.rows)
        return "\n".join(f"{name:<{width}}  {value:>8}" for name, value in self.rows)


def reconcile(load: Load, settle_seconds: float) -> Reconciliation:
    acknowledged = [s for s in load.sent if s.status is not None and 200 <= s.status < 300]
    rejected = [s for s in load.sent if s.status is not None and not 200 <= s.status < 300]
    unanswered = [s for s in load.sent if s.status is None]
    expected = {event for s in acknowledged if s.expected_status is None for event in s.event_ids}
    connections = {c["id"] for c in load.connections.values()}
    deadline = time.monotonic() + settle_seconds
    while True:  # the consumers drain their queues after the senders stop
        # The backlog first: what left the queue before it was read is in the log read after it
        # (read the other way round, a batch finishing between the two reads looked lost).
        backlog = load.hub.event_log_backlog()
        logged = load.hub.event_log(connections)
        ids = {item["id"] for item in logged}
        if expected <= ids or not backlog or time.monotonic() > deadline:
            break
        time.sleep(5)
    wrong = [s for s in load.sent if s.status is not None and not matches(s)]
    pairs = Counter((i["connection"], i["provider_event_id"]) for i in logged)
    duplicates_stored = sum(n - 1 for n in pairs.values())
    lost = expected - ids
    unexpected = ids - expected
    statuses = Counter(s.status for s in rejected)
    rows = [
        ("sent (distinct requests)", len(load.sent)),
        ("  valid", sum(s.kind == "valid" for s in load.sent)),
        ("  duplicates", sum(s.kind == "duplicate" for s in load.sent)),
        ("  bad signatures", sum(s.kind == "bad_signature" for s in load.sent)),
        ("  malformed bodies", sum(s.kind == "malformed" for s in load.sent)),
        ("sent again after no answer", sum(s.tries - 1 for s in load.sent if s.tries > 1)),
        ("acknowledged (2xx)", len(acknowledged)),
        *((f"rejected {status}", count) for status, count in sorted(statuses.items())),
        ("unanswered", len(unanswered)),
        ("wrong status", len(wrong)),
        ("events expected", len(expected)),
        ("in the event log", len(ids)),
        ("duplicates stored", duplicates_stored),
        ("unexpected in the log", len(unexpected)),
        ("not in the log yet", len(lost)),
        ("still queued for the event log", backlog),
        ("lost (not in the log, nothing queued)", 0 if backlog else len(lost)),
    ]
    problems = []
    if lost and not backlog:
        problems.append(f"{len(lost)} acknowledged event(s) missing from the event log, e.g. {sorted(lost)[:3]}")
    elif lost:
        problems.append(f"the event log did not catch up in {settle_seconds:.0f} s: {backlog} message(s) still queued")
    if unexpected:
        problems.append(f"{len(unexpected)} event(s) nobody sent as valid, e.g. {sorted(unexpected)[:3]}")
    if duplicates_stored:
        problems.append(f"{duplicates_stored} provider item(s) stored more than once")
    if unanswered:
        problems.append(f"{len(unanswered)} request(s) never answered")
    for sent in wrong[:5]:
        problems.append(
            f"#{sent.index} {sent.kind} {sent.provider}: {sent.status}, expected {sent.expected_status or '2xx'}"
        )
    if len(wrong) > 5:
        problems.append(f"... {len(wrong) - 5} more with a wrong status")
    return Reconciliation(rows, problems)


def matches(sent: Sent) -> bool:
    assert sent.status is not None
    if sent.expected_status is None:
        return 200 <= sent.status < 300
    return sent.status == sent.expected_status


def run(
    webhooks: int, concurrency: int, kill_at: int | None, seed: int, state_dir: Path | None, settle_seconds: float
) -> tuple[Reconciliation, dict[str, float]]:
    work = Path(tempfile.mkdtemp(prefix="switchboard-load-")) if state_dir is None else state_dir
    hub = Hub(work / "state", free_port())
    hub.start(fresh=True)
    try:
        load = Load(hub, webhooks, concurrency, webhooks // 2 if kill_at is None else kill_at, seed)
        load.create_connections()
        seconds = load.run()
        result = reconcile(load, settle_seconds)
        figures = {
            "send_seconds": seconds,
            "accepted_per_second": len(load.sent) / seconds,
            "restart_seconds": load.restart_seconds,
        }
        return result, figures
    finally:
        hub.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.load.reconcile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhooks", type=int, default=300, help="requests to send (default 300)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent senders (default 16)")
    parser.add_argument(
        "--kill-at",
        type=int,
        default=None,
        help="SIGKILL and restart the hub when this request goes out (default: halfway; 0: never)",
    )
    parser.add_argument("--seed", type=int, default=13, help="the mix's random seed")
    parser.add_argument(
        "--settle", type=float, default=3600.0, help="seconds to wait at most for the event log to catch up"
    )
    parser.add_argument("--work-dir", type=Path, help="where the hub keeps its state and log (default: a temp dir)")
    args = parser.parse_args(argv)
    result, figures = run(args.webhooks, args.concurrency, args.kill_at, args.seed, args.work_dir, args.settle)
    print(result.table())
    print(
        f"sent in {figures['send_seconds']:.0f} s ({figures['accepted_per_second']:.1f} requests/s at "
        f"{args.concurrency} senders); restart after the kill took {figures['restart_seconds']:.1f} s"
    )
    for problem in result.problems:
        print(f"PROBLEM: {problem}")
    return 1 if result.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
