"""Running one function's handler in-process against moto with faults on, with the platform's
retry semantics around it, and reconciling what came in with what came out.

- API Gateway: the provider sees the handler's status; anything but a 2xx (an exception is
  API Gateway's 500) makes it send the same request again, up to `PROVIDER_ATTEMPTS` times.
  Only a 2xx is acknowledged, and every acknowledged request must have its effect.
- SQS event sources (ReportBatchItemFailures): the batch is received from the function's real
  queue (moto's, with the topology's redrive policy), the records the handler did not report
  failed are deleted, the failed ones come back when their visibility ends (the harness moves
  the clock of the queue instead of waiting) and reach the dead-letter queue after
  maxReceiveCount receives, as moto applies the redrive policy on receive.
- The injector is on only while a handler runs: the platform's own calls (receive, delete, the
  harness's seeding and reading back) are not the function's and are not faulted.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, redirect_stdout
from dataclasses import dataclass, field
from typing import Any

from infra import topology
from tests.conftest import AWS_TEST_ENV as UNIT_TEST_ENV
from tests.faults.injector import FaultInjector, FaultStats, no_retry_sleep

# Providers retry a webhook that got no 2xx: Stripe for 3 days, Twilio a few times. Enough
# attempts that a request whose faults all surface still gets through eventually.
PROVIDER_ATTEMPTS = 8
# The unit tests' fake AWS environment, with the functions quiet (the table is the output).
AWS_TEST_ENV = {**UNIT_TEST_ENV, "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "CRITICAL"}


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


_DISCARD = _Discard()


@dataclass
class Row:
    """One function's reconciliation (the table `python -m tests.faults` prints)."""

    function: str
    source: str  # how requests reach it: api, sqs, schedule
    requests: int = 0
    attempts: int = 0  # invocations, the platform's retries included
    acknowledged: int = 0  # api: a 2xx answered; sqs: the record deleted as done
    delivered: int = 0  # acknowledged and its effect found (written, on the bus, at the partner)
    in_dlq: int = 0
    lost: int = 0  # acknowledged without its effect, or neither done nor in the DLQ
    unacknowledged: int = 0  # api only: the provider gave up (still retrying on AWS); never acknowledged
    partner_sends: int = 0  # requests reaching a partner or provider
    partner_duplicates: int = 0  # sends beyond one per key
    duplicate_bound: int = 0  # redeliveries of the records that sent: at-least-once allows this many
    faults: FaultStats = field(default_factory=FaultStats)
    notes: list[str] = field(default_factory=list)

    def check(self) -> list[str]:
        problems = []
        if self.lost:
            problems.append(f"{self.function}: {self.lost} lost")
        if self.partner_duplicates > self.duplicate_bound:
            problems.append(
                f"{self.function}: {self.partner_duplicates} duplicate sends beyond {self.duplicate_bound} retries"
            )
        return problems


@dataclass
class FaultWorld:
    names: Any
    queues: dict[str, Any]
    functions: Any
    injector: FaultInjector
    bus: Any

    def queue(self, function: str) -> Any:
        return self.queues[function]


@contextmanager
def fault_world(rate: float, seed: int, extra_env: dict[str, str] | None = None) -> Iterator[FaultWorld]:
    """moto with the topology's resources, the functions as LocalFunctions, and the injector
    installed on the session their clients come from."""
    from moto import mock_aws

    from infra.local.emulator import LocalNames, create_resources, patch_moto
    from infra.local.lambdas import LocalFunctions
    from switchboard_core import aws
    from tests.conftest import attach_bus_capture

    patch_moto()
    modules_before, loggers_before = set(sys.modules), logger_levels()
    saved = {key: os.environ.get(key) for key in AWS_TEST_ENV}
    os.environ.update(AWS_TEST_ENV)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    injector = FaultInjector(rate, seed)
    with ExitStack() as stack:
        stack.enter_context(mock_aws())
        stack.enter_context(no_retry_sleep())
        aws.reset_clients()  # a session of its own: the hooks stay off other tests' clients
        injector.install()
        names = LocalNames("test")
        queues = {q.function: q for q in create_resources(names)}
        bus = attach_bus_capture(names.bus, "faults-capture")
        # Quiet: the functions' logs and EMF lines at this volume would drown the table.
        quiet = {"POWERTOOLS_LOG_LEVEL": "CRITICAL", "POWERTOOLS_METRICS_DISABLED": "true"}
        functions = LocalFunctions(names.mapping(), "test", extra_env={**quiet, **(extra_env or {})})
        try:
            yield FaultWorld(names, queues, functions, injector, bus)
        finally:
            aws.reset_clients()
            forget_quiet_functions(modules_before, loggers_before)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def logger_levels() -> dict[str, int]:
    return {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }


def forget_quiet_functions(modules_before: set[str], loggers_before: dict[str, int]) -> None:
    """The handlers imported here log at CRITICAL into a discarded stdout: later tests in this
    process must import them afresh and get loggers of their own, at the levels they had."""
    for name in set(sys.modules) - modules_before:
        if name.startswith("functions."):
            del sys.modules[name]
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        if name in loggers_before:
            logger.setLevel(loggers_before[name])
        elif name.startswith("switchboard"):  # a Powertools Logger's: configured once per name
            del logging.root.manager.loggerDict[name]


def invoke(world: FaultWorld, function: str, event: dict[str, Any]) -> tuple[Any, BaseException | None]:
    """The handler's answer with faults on, or the exception it raised (Lambda's error)."""
    with world.injector.active(), redirect_stdout(_DISCARD):
        try:
            return world.functions.invoke(function, event), None
        except Exception as exc:  # noqa: BLE001 - an invocation error is the platform's to handle
            return None, exc


# --- API Gateway ---


@dataclass
class ApiOutcome:
    attempts: int
    status: int | None  # the last answer's status (None: the handler raised, API Gateway's 500)
    acknowledged: bool
    answer: Any = None


def call_api(
    world: FaultWorld,
    function: str,
    event: Callable[[], dict[str, Any]],
    between_attempts: Callable[[], None] | None = None,
) -> ApiOutcome:
    """Send the request until a 2xx or PROVIDER_ATTEMPTS; `event` builds each attempt's event
    (a provider re-sends the same body and signature); `between_attempts` moves the world on
    by the provider's retry delay."""
    status: int | None = None
    answer: Any = None
    for attempt in range(1, PROVIDER_ATTEMPTS + 1):
        if attempt > 1 and between_attempts is not None:
            between_attempts()
        answer, error = invoke(world, function, event())
        status = None if error else int(answer.get("statusCode", 200)) if isinstance(answer, dict) else 200
        if status is not None and 200 <= status < 300:
            return ApiOutcome(attempt, status, True, answer)
        if status is not None and 400 <= status < 500 and status not in (408, 429):
            return ApiOutcome(attempt, status, False, answer)  # a client error: not retried
    return ApiOutcome(PROVIDER_ATTEMPTS, status, False, answer)


# --- SQS event source ---


@dataclass
class QueueOutcome:
    invocations: int = 0
    done: list[dict[str, Any]] = field(default_factory=list)  # the messages deleted as processed
    dead: list[dict[str, Any]] = field(default_factory=list)  # the messages in the DLQ
    receives: Counter[str] = field(default_factory=Counter)  # per message id
    left: int = 0  # still on the queue when the rounds ran out


def send_records(world: FaultWorld, function: str, bodies: list[str]) -> list[str]:
    from switchboard_core import aws

    sqs, url = aws.client("sqs"), world.queue(function).queue_url
    return [sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"] for body in bodies]


def _expire_visibility(queue_url: str) -> None:
    """Let every in-flight and delayed message of the queue become visible: the visibility
    timeouts and delays (the retry schedule's waits) pass without the harness sleeping."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_queue(queue_url.rsplit("/", 1)[-1])
    for message in queue._messages:
        message.visible_at = 0
        message.delayed_until = 0


def drain(
    world: FaultWorld, function: str, max_rounds: int = 5000, advance: Callable[[], None] | None = None
) -> QueueOutcome:
    """Feed the function from its queue until the queue is empty: every message ends deleted
    as done or in the dead-letter queue. When only invisible messages are left, time skips to
    when they are visible again; `advance` moves the function's own timers (leases,
    schedules) on by as much."""
    from infra.local.dispatcher import sqs_record
    from switchboard_core import aws

    sqs = aws.client("sqs")
    queue = world.queue(function)
    outcome = QueueOutcome()
    for _ in range(max_rounds):
        messages = sqs.receive_message(
            QueueUrl=queue.queue_url,
            MaxNumberOfMessages=queue.batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            attributes = sqs.get_queue_attributes(QueueUrl=queue.queue_url, AttributeNames=["All"])["Attributes"]
            waiting = sum(
                int(attributes.get(name, 0))
                for name in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
            ) + int(attributes.get("ApproximateNumberOfMessagesDelayed", 0))
            if not waiting:
                break
            _expire_visibility(queue.queue_url)
            if advance is not None:
                advance()
            continue
        for message in messages:
            outcome.receives[message["MessageId"]] += 1
        outcome.invocations += 1
        result, error = invoke(world, function, {"Records": [sqs_record(m, queue.queue_arn) for m in messages]})
        if error is not None:
            continue  # the whole batch comes back
        failed = {item["itemIdentifier"] for item in (result or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for message in done:
            sqs.delete_message(QueueUrl=queue.queue_url, ReceiptHandle=message["ReceiptHandle"])
        outcome.done.extend(done)
    else:
        outcome.left = -1
    outcome.dead = read_all(queue.dead_letter_url)
    return outcome


def read_all(queue_url: str) -> list[dict[str, Any]]:
    """Every message of a queue (read without deleting: each is received once here)."""
    from switchboard_core import aws

    sqs = aws.client("sqs")
    found: dict[str, dict[str, Any]] = {}
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return list(found.values())
        for message in messages:
            found[message["MessageId"]] = message


def bus_events(world: FaultWorld) -> list[dict[str, Any]]:
    """Everything published on the bus since the last call (EventBridge envelopes)."""
    return world.bus.events()


def detail_of(body: str) -> dict[str, Any]:
    return json.loads(body)["detail"]


def consumer(function: str) -> topology.Consumer:
    found = topology.FUNCTIONS[function].consumer
    assert found is not None
    return found
