"""Ingest's delivery dedupe (switchboard_core.dedupe): its records are the ones Powertools
Idempotency wrote before it (so records already stored, on AWS or in the local hub's saved
state, still answer duplicates), and each state of a record gets the answer it should."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from switchboard_core import aws
from switchboard_core.dedupe import DeliveryInProgress, IdempotentRunner

KEY = {"provider": "twilio", "connection": "con_00000000000000aa", "delivery_id": "SM123"}
TTL = 8 * 24 * 3600


@dataclass
class Context:
    remaining_ms: int = 10_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def table(aws_world) -> str:
    return aws_world.names.table("idempotency")


def runner(table: str, remaining_ms: int = 10_000) -> IdempotentRunner:
    run = IdempotentRunner(table, TTL, boto3_client=aws.client("dynamodb"))
    run.register_lambda_context(Context(remaining_ms))
    return run


def record(table: str, run: IdempotentRunner) -> dict:
    return aws.client("dynamodb").get_item(TableName=table, Key={"id": {"S": run.record_id(KEY)}})["Item"]


def test_the_record_is_the_one_powertools_idempotency_wrote(aws_world, table, monkeypatch):
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "switchboard-ingest")
    persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=aws.client("dynamodb"))
    config = IdempotencyConfig(expires_after_seconds=TTL, raise_on_no_idempotency_key=True)

    # What the runner wrapped before: a nested `process` of IdempotentRunner.__call__.
    class IdempotentRunnerBefore:
        def __call__(self, key):
            def process(delivery):
                return {"event_ids": ["evt_1"], "raw_key": "raw/a.json"}

            process.__module__ = "switchboard_core.dedupe"
            process.__qualname__ = "IdempotentRunner.__call__.<locals>.process"
            return idempotent_function(data_keyword_argument="delivery", persistence_store=persistence, config=config)(
                process
            )(delivery=key)

    IdempotentRunnerBefore()(KEY)

    ran = []
    result, duplicate = runner(table)(KEY, lambda: ran.append(1) or {})
    assert (result, duplicate, ran) == ({"event_ids": ["evt_1"], "raw_key": "raw/a.json"}, True, [])


def test_first_call_runs_and_completes_a_second_is_a_duplicate(aws_world, table):
    run = runner(table)
    first = run(KEY, lambda: {"event_ids": ["evt_1"]})
    stored = record(table, run)
    assert stored["status"]["S"] == "COMPLETED" and int(stored["expiration"]["N"]) > time.time() + TTL - 60
    assert run(KEY, lambda: pytest.fail("ran twice")) == ({"event_ids": ["evt_1"]}, True)
    assert first == ({"event_ids": ["evt_1"]}, False)


def test_a_call_while_another_runs_is_refused_with_a_retryable_error(aws_world, table):
    run = runner(table)

    def work():
        with pytest.raises(DeliveryInProgress):
            run(KEY, lambda: pytest.fail("ran concurrently"))
        return {"event_ids": []}

    assert run(KEY, work) == ({"event_ids": []}, False)


def test_a_failed_run_releases_the_delivery(aws_world, table):
    run = runner(table)

    def fail():
        raise RuntimeError("the bus is down")

    with pytest.raises(RuntimeError):
        run(KEY, fail)
    assert "Item" not in aws.client("dynamodb").get_item(TableName=table, Key={"id": {"S": run.record_id(KEY)}})
    assert run(KEY, lambda: {"event_ids": ["evt_1"]}) == ({"event_ids": ["evt_1"]}, False)


def test_a_run_that_died_in_progress_is_run_again_once_its_invocation_would_have_timed_out(aws_world, table):
    crashed = runner(table, remaining_ms=0)  # its in-progress record expires at once
    assert crashed._claim(crashed.record_id(KEY)) is None  # claimed; then the sandbox died: nothing released
    time.sleep(0.01)
    assert runner(table)(KEY, lambda: {"event_ids": ["evt_1"]}) == ({"event_ids": ["evt_1"]}, False)
