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


CAMPAIGN_VARIABLES = {
    "CAMPAIGN_QUEUE_URL",
    "CAMPAIGN_QUEUE_ARN",
    "CAMPAIGN_DLQ_ARN",
    "CAMPAIGN_RULE_PREFIX",
    "CAMPAIGN_SCHEDULE_GROUP",
    "CAMPAIGN_SCHEDULER_ROLE_ARN",
}


def test_the_campaigns_function_gets_its_queue_schedule_group_role_and_the_notification_secrets(
    probed: LocalFunctions,
) -> None:
    seen = probed.invoke("campaigns", {})
    assert {key for key in seen if key.startswith("CAMPAIGN_")} == CAMPAIGN_VARIABLES - {
        "CAMPAIGN_DLQ_ARN",
        "CAMPAIGN_RULE_PREFIX",
    }
    assert seen["CAMPAIGN_QUEUE_URL"] == "https://sqs.us-east-1.amazonaws.com/123456789012/switchboard-test-campaigns"
    assert seen["CAMPAIGN_QUEUE_ARN"] == "arn:aws:sqs:us-east-1:123456789012:switchboard-test-campaigns"
    assert seen["CAMPAIGN_SCHEDULE_GROUP"] == "switchboard-test-campaigns"
    assert seen["CAMPAIGN_SCHEDULER_ROLE_ARN"] == "arn:aws:iam::123456789012:role/switchboard-test-campaign-scheduler"
    # Webhook steps are signed with the tenants' notification secrets (the notifications function's prefix).
    assert seen["NOTIFICATION_SECRETS_PREFIX"] == "switchboard/test/notifications/"
    assert "NOTIFICATION_POLICY" not in seen  # it sends no notification itself
    assert seen["OUTBOUND_SECRETS_PREFIX"] == "switchboard/test/outbound/"
    assert seen["QUEUE_MAX_RECEIVE_COUNT"] == "8"
    for table in ("CAMPAIGN_RUNS", "CAMPAIGNS", "CONTACTS", "CONVERSATIONS", "ROUTING", "CONNECTIONS"):
        assert f"TABLE_{table}" in seen, table
    assert seen["TABLE_CAMPAIGN_RUNS"] == "switchboard-test-campaign-runs"


def test_the_admin_function_gets_the_campaign_queue_and_the_trigger_rules_prefix_and_dlq(
    probed: LocalFunctions,
) -> None:
    seen = probed.invoke("admin", {})
    assert {key for key in seen if key.startswith("CAMPAIGN_")} == CAMPAIGN_VARIABLES - {
        "CAMPAIGN_SCHEDULE_GROUP",
        "CAMPAIGN_SCHEDULER_ROLE_ARN",
    }
    assert seen["CAMPAIGN_RULE_PREFIX"] == "switchboard-test-cmp-"
    assert seen["CAMPAIGN_DLQ_ARN"] == "arn:aws:sqs:us-east-1:123456789012:switchboard-test-campaigns-dlq"
    assert seen["CAMPAIGN_QUEUE_ARN"] == "arn:aws:sqs:us-east-1:123456789012:switchboard-test-campaigns"
    assert "TABLE_CAMPAIGN_RUNS" in seen


@pytest.mark.parametrize("name", sorted(set(topology.FUNCTIONS) - {"admin", "campaigns"}))
def test_no_other_function_gets_campaign_variables(probed: LocalFunctions, name: str) -> None:
    assert not {key for key in probed.invoke(name, {}) if key.startswith("CAMPAIGN_")}, name


def test_ingest_keeps_its_connections_as_deployed_and_the_senders_read_credentials_at_once(
    probed: LocalFunctions, probes: None
) -> None:
    # Ingest: no CREDENTIALS_CACHE_SECONDS, so the deployed default (a minute) applies; the
    # functions that send read their send-API credentials at every send.
    assert "CREDENTIALS_CACHE_SECONDS" not in probed.invoke("ingest", {})
    assert probed.invoke("replies", {})["CREDENTIALS_CACHE_SECONDS"] == "0"
    shortened = LocalFunctions(NAMES, "test", ingest_cache_seconds=2)
    assert shortened.invoke("ingest", {})["CREDENTIALS_CACHE_SECONDS"] == "2"
    assert shortened.invoke("replies", {})["CREDENTIALS_CACHE_SECONDS"] == "0"
