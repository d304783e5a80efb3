"""The local runtime gives each function only its own environment, as the CDK app does."""

from __future__ import annotations

import json
import os

import pytest

from infra import topology
from infra.local.emulator import LocalNames
from infra.local.lambdas import (
    DELIVERY_POLICY_OVERRIDE_ENV,
    InvalidDeliveryPolicy,
    LocalFunctions,
    delivery_policy_from_environment,
)

NAMES = LocalNames("test").mapping()


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every topology function's handler replaced by one that returns os.environ."""
    replaced = {
        name: topology.Function(**{**spec.__dict__, "handler": "tests.unit.local.env_probe.handler"})
        for name, spec in topology.FUNCTIONS.items()
    }
    monkeypatch.setattr(topology, "FUNCTIONS", replaced)


@pytest.fixture
def probed(probes: None) -> LocalFunctions:
    return LocalFunctions(NAMES, "test")


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_a_function_sees_its_own_variables_and_no_others(probed: LocalFunctions, name: str) -> None:
    seen = probed.invoke(name, {})
    own = topology.function_environment(topology.FUNCTIONS[name], NAMES, "test")
    assert {key: seen[key] for key in own} == own
    others = {key for other in topology.FUNCTIONS for key in probed.environment(other)} - set(probed.environment(name))
    assert not others & set(seen), f"{name} sees another function's variables: {sorted(others & set(seen))}"


def test_the_authorizer_cannot_read_the_connections_table_variable(probed: LocalFunctions) -> None:
    # The admin function gets TABLE_CONNECTIONS; the authorizer does not, locally as on AWS.
    assert "TABLE_CONNECTIONS" in probed.invoke("admin", {})
    assert "TABLE_CONNECTIONS" not in probed.invoke("authorizer", {})


def test_the_process_environment_is_restored_after_an_invocation(probed: LocalFunctions) -> None:
    before = dict(os.environ)
    probed.invoke("ingest", {})
    assert dict(os.environ) == before


def test_the_subscription_functions_get_the_local_queue_and_rule_prefix_and_no_archive(probed: LocalFunctions) -> None:
    admin = probed.invoke("admin", {})
    assert admin["SUBSCRIPTION_RULE_PREFIX"] == "switchboard-test-sub-"
    assert admin["DELIVERY_QUEUE_ARN"] == "arn:aws:sqs:us-east-1:123456789012:switchboard-test-deliveries"
    assert "EVENT_ARCHIVE_ARN" not in admin  # replays come from the event log locally
    delivery = probed.invoke("delivery", {})
    assert delivery["DELIVERY_QUEUE_URL"].endswith("/123456789012/switchboard-test-deliveries")


def test_by_default_the_real_delivery_schedule(probed: LocalFunctions) -> None:
    for name in ("admin", "delivery"):
        assert json.loads(probed.invoke(name, {})["DELIVERY_POLICY"]) == topology.delivery_policy()


def test_a_faster_delivery_policy_reaches_admin_and_delivery_only(probes: None) -> None:
    functions = LocalFunctions(NAMES, "test", delivery_policy={"retry_schedule_seconds": [0, 1, 2]})
    for name in ("admin", "delivery"):
        policy = json.loads(functions.invoke(name, {})["DELIVERY_POLICY"])
        assert policy == {**topology.delivery_policy(), "retry_schedule_seconds": [0, 1, 2]}
    for name in set(topology.FUNCTIONS) - {"admin", "delivery"}:
        assert "DELIVERY_POLICY" not in functions.invoke(name, {}), name


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        ({"retry_schedule_seconds": []}, "retry_schedule_seconds"),
        ({"retry_jitter": 3}, "retry_jitter"),
        ({"retry_schedule": [1]}, "retry_schedule"),  # a misspelt key is refused, not ignored
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_a_delivery_policy_the_functions_would_refuse_fails_at_once(probes: None, policy: object, problem: str) -> None:
    with pytest.raises(InvalidDeliveryPolicy, match=problem):
        LocalFunctions(NAMES, "test", delivery_policy=policy)  # type: ignore[arg-type]


def test_the_delivery_policy_variable() -> None:
    assert delivery_policy_from_environment({}) is None
    assert delivery_policy_from_environment({DELIVERY_POLICY_OVERRIDE_ENV: "  "}) is None
    assert delivery_policy_from_environment({DELIVERY_POLICY_OVERRIDE_ENV: '{"retry_jitter": 0}'}) == {
        "retry_jitter": 0
    }
    for raw, problem in (("{nope", "is not JSON"), ("[1]", "must be a JSON object")):
        with pytest.raises(InvalidDeliveryPolicy, match=problem):
            delivery_policy_from_environment({DELIVERY_POLICY_OVERRIDE_ENV: raw})
