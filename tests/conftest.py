"""Shared fixtures: an in-process AWS (moto's mock_aws) holding the topology's
resources, and a capture of everything published on the bus."""

from __future__ import annotations

import copy
import json
import os
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from infra.local.sns_dev import DEV_CERT_DIR_ENV, dev_certificate_dir

# As under `switchboard dev`: the sns samples sign with a local demo certificate that the SNS
# adapter trusts only where this dev-only variable names its directory (docs/providers/sns.md).
os.environ.setdefault(DEV_CERT_DIR_ENV, str(dev_certificate_dir()))


def pytest_configure(config: pytest.Config) -> None:
    """Every run keeps its output and fails if a secret it used is in it (tests/log_secrets.py)."""
    from tests import log_secrets

    if not config.pluginmanager.is_registered(log_secrets):
        config.pluginmanager.register(log_secrets, "switchboard-log-secrets")


@pytest.fixture(scope="session", autouse=True)
def moto_untraced() -> None:
    """Under `--cov`, botocore and moto run without coverage's trace function
    (tests/untraced_moto.py; SWITCHBOARD_TRACE_EVERYTHING=1 traces them, to compare)."""
    import sys

    if sys.gettrace() is None or os.environ.get("SWITCHBOARD_TRACE_EVERYTHING"):
        return
    from infra.local.emulator import patch_moto
    from tests import untraced_moto

    patch_moto()  # our fixes first: untraced_moto measures them again when moto calls them
    untraced_moto.install()


AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


@dataclass
class BusCapture:
    """A rule on the bus that copies every Switchboard event into a queue, so a test
    can read what was published."""

    sqs: Any
    queue_url: str

    def events(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def attach_bus_capture(bus_name: str, name: str = "test-capture") -> BusCapture:
    from switchboard_core import aws

    sqs, events = aws.client("sqs"), aws.client("events")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=bus_name, EventPattern=json.dumps({"source": [{"prefix": "switchboard."}]}))
    events.put_targets(Rule=name, EventBusName=bus_name, Targets=[{"Id": "capture", "Arn": arn}])
    return BusCapture(sqs, url)


@dataclass
class AwsWorld:
    names: Any
    queues: list[Any]
    bus: BusCapture


# The services whose backends hold what `create_resources` and the bus capture make.
WORLD_SERVICES = frozenset({"dynamodb", "events", "s3", "scheduler", "secretsmanager", "ses", "sqs"})


@dataclass(frozen=True)
class WorldSnapshot:
    backends: bytes  # infra.local.persistence's pickled moto backends, WORLD_SERVICES' only
    queues: list[Any]
    capture_url: str


# Per process (each xdist worker has its own): None until the first aws_world test made the world.
_world_snapshot: WorldSnapshot | None = None


def _fresh_world(names: Any) -> tuple[list[Any], BusCapture]:
    """The topology's resources in the running mock_aws. The first call creates them (~80 AWS
    calls, ~0.3 s of CPU) and keeps a snapshot of moto's backends; later calls restore a new
    copy of it (~0.03 s), the same resources in the same state, over 600 tests."""
    global _world_snapshot
    from infra.local.emulator import create_resources
    from infra.local.persistence import dump_backends, load_backends
    from switchboard_core import aws

    if _world_snapshot is not None:
        load_backends(_world_snapshot.backends)
        return copy.deepcopy(_world_snapshot.queues), BusCapture(aws.client("sqs"), _world_snapshot.capture_url)
    queues = create_resources(names)
    bus = attach_bus_capture(names.bus)
    data, skipped = dump_backends()
    if not WORLD_SERVICES & set(skipped):  # else (moto could not pickle one) create it every time
        document = pickle.loads(data)  # noqa: S301 - made just above, in this process
        document["backends"] = {key: b for key, b in document["backends"].items() if key[0] in WORLD_SERVICES}
        _world_snapshot = WorldSnapshot(pickle.dumps(document), copy.deepcopy(queues), bus.queue_url)
    return queues, bus


@pytest.fixture
def aws_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsWorld]:
    """The topology's tables, bucket, bus and queues inside moto's mock_aws."""
    from moto import mock_aws

    from infra.local.emulator import LocalNames, patch_moto
    from switchboard_core import aws

    patch_moto()  # the embedded emulator's fixes to moto (TestEventPattern among them), here too
    for key, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # mock_aws starts from an empty account each time (moto resets every backend on start),
    # so no test sees another's data; the world is then restored from the process's snapshot.
    # What used to make this fixture cost seconds was a new boto3 session (botocore's data
    # loaded again) per client, so the clients are renewed from the process's one session
    # (docs/decisions.md).
    with mock_aws():
        aws.reset_clients(keep_session=True)
        names = LocalNames("test")
        queues, bus = _fresh_world(names)
        yield AwsWorld(names=names, queues=queues, bus=bus)
    aws.reset_clients(keep_session=True)


class AtomicTable:
    """A boto3 Table whose calls run one at a time. DynamoDB applies each conditional
    write atomically; moto checks the condition and writes in two steps without a lock,
    so concurrent threads can both pass a condition. Race tests wrap their tables in
    this to get DynamoDB's guarantee back while still interleaving freely between calls."""

    _lock = __import__("threading").Lock()

    def __init__(self, table: Any) -> None:
        self._table = table

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._table, name)
        if not callable(attribute):
            return attribute

        def serialised(*args: Any, **kwargs: Any) -> Any:
            with AtomicTable._lock:
                return attribute(*args, **kwargs)

        return serialised


def capture_function_log(service: str) -> None:
    """Powertools binds its log handler to the sys.stdout of the first import; pytest
    swaps sys.stdout per test, so point the handler of `service`'s logger at this test's
    (call it in the test body, after the handler's first invocation imported it)."""
    import logging
    import sys

    for handler in logging.getLogger(service).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = sys.stdout  # setStream would flush the old, closed stream


# `make test` runs one pytest-xdist worker per CPU with `--dist loadscope`, scoped here so
# that the fixtures costing seconds are built once per run instead of once per worker: every
# test of a module using the CDK synth fixtures (`synth`, `synth_qa_destroy`: ~20 s of jsii
# per stage) runs on one worker, and an integration module runs on one worker (its module
# fixtures; each worker starts its own local runtime, on free ports with its own state
# directory), as does any other module with a module-scoped fixture (an emulator, a pool of
# function workers, a sandbox server: built once, not once on each worker). Every other test
# is its own unit, balanced freely. xdist hands out the units with the most tests first, so
# the long ones start early and the single tests fill in at the end; one worker takes the
# integration modules back to back (pytest_xdist_make_scheduler below). (xdist's `loadgroup`
# cannot do this under pytest 9.2: it renames `item._nodeid`, which pytest no longer reads.)
REPO_ROOT = Path(__file__).resolve().parents[1]


@cache
def _uses_a_synth(module: str) -> bool:
    return "Synthesised" in (REPO_ROOT / module).read_text()


@cache
def _has_module_fixture(module: str) -> bool:
    return 'scope="module"' in (REPO_ROOT / module).read_text()


def xdist_scope(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    if module.startswith("tests/infra/") and _uses_a_synth(module):
        return "cdk-synth"
    if module.startswith("tests/integration/") or _has_module_fixture(module):
        return module
    return nodeid


def is_integration(scope: str) -> bool:
    return scope.startswith("tests/integration/")


def next_scope(queue: Iterable[str], integration_first: bool) -> str:
    """The unit a worker takes next: the first in xdist's order (most tests first) of the kind it
    prefers, else the first of the other kind."""
    fallback = None
    for scope in queue:
        if is_integration(scope) == integration_first:
            return scope
        if fallback is None:
            fallback = scope
    assert fallback is not None, "no work left"
    return fallback


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """The integration modules share the local runtime fixture (`hub`, package-scoped, seconds to
    start and stop, its sandboxes' boots on top): a worker keeps it only while its integration
    modules follow one another. One worker takes the integration modules one after the other
    (one runtime started per run), the others take everything else first; whoever runs out of
    its kind takes the other's. Under xdist's plain order (most tests first) the five modules
    with module-scoped fixtures fell between integration modules and the runtime was started
    six or seven times a run."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        hub_worker: Any = None
        integration_left: int | None = None

        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if self.integration_left is None:  # the first call: the queue is complete
                self.integration_left = sum(is_integration(scope) for scope in self.workqueue)
                self.hub_worker = node
            prefers_integration = node is self.hub_worker and self.integration_left > 0
            scope = next_scope(self.workqueue, integration_first=prefers_integration)
            self.integration_left -= is_integration(scope)
            self.workqueue.move_to_end(scope, last=False)  # xdist's own method takes the first
            super()._assign_work_unit(node)

    return SharedFixtureScheduling(config, log)
