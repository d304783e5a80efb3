"""Least privilege: each function's role allows exactly what topology.FUNCTIONS declares."""

from __future__ import annotations

import json

import pytest

from infra import topology
from infra.aws.components.functions import SECRETS_READ_ACTIONS, SECRETS_WRITE_ACTIONS
from tests.infra.conftest import Synthesised, referenced_ids

pytestmark = pytest.mark.infra

DYNAMODB_READ = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan"}
DYNAMODB_WRITE = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


def _actions(statement: dict) -> set[str]:
    actions = statement["Action"]
    return {actions} if isinstance(actions, str) else set(actions)


def _statements(synth: Synthesised, name: str) -> list[dict]:
    function = synth.stack.functions.functions[name]
    role_id = synth.stack.resolve(function.role.node.default_child.logical_id)
    role = synth.json["Resources"][role_id]
    assert "ManagedPolicyArns" not in role["Properties"], "no AWS-managed policies (AWSLambdaBasicExecutionRole)"
    statements = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    assert all(s["Effect"] == "Allow" for s in statements)
    return statements


def _actions_on(statements: list[dict], logical_id: str) -> set[str]:
    actions: set[str] = set()
    for statement in statements:
        if logical_id in referenced_ids(statement["Resource"]):
            actions |= _actions(statement)
    return actions


def test_ingest_cannot_write_connections(synth: Synthesised) -> None:
    connections = synth.logical_id(synth.stack.storage.tables["connections"])
    granted = _actions_on(_statements(synth, "ingest"), connections)
    assert "dynamodb:GetItem" in granted
    assert not granted & DYNAMODB_WRITE


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_table_access_is_what_topology_declares(synth: Synthesised, name: str) -> None:
    spec = topology.FUNCTIONS[name]
    statements = _statements(synth, name)
    for table_name, table in synth.stack.storage.tables.items():
        granted = _actions_on(statements, synth.logical_id(table))
        access = spec.tables.get(table_name)
        if access is None:
            assert not granted, f"{name} may touch {table_name}: {granted}"
            continue
        assert bool(granted & DYNAMODB_READ) == (access in ("read", "readwrite")), (table_name, granted)
        assert bool(granted & DYNAMODB_WRITE) == (access in ("write", "readwrite")), (table_name, granted)


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_bucket_access_is_what_topology_declares(synth: Synthesised, name: str) -> None:
    spec = topology.FUNCTIONS[name]
    statements = _statements(synth, name)
    for bucket_name, bucket in synth.stack.storage.buckets.items():
        granted = _actions_on(statements, synth.logical_id(bucket))
        access = spec.buckets.get(bucket_name)
        reads = any(a.startswith("s3:GetObject") for a in granted)
        writes = "s3:PutObject" in granted
        assert reads == (access in ("read", "readwrite")), (bucket_name, granted)
        assert writes == (access in ("write", "readwrite")), (bucket_name, granted)
        assert not any("Delete" in a for a in granted)
    access_logs = synth.logical_id(synth.stack.storage.access_logs)
    assert not _actions_on(statements, access_logs)


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_only_publishers_put_events(synth: Synthesised, name: str) -> None:
    statements = _statements(synth, name)
    puts = [s for s in statements if "events:PutEvents" in _actions(s)]
    if topology.FUNCTIONS[name].publishes:
        (statement,) = puts
        assert statement["Resource"] == {"Fn::GetAtt": [synth.logical_id(synth.stack.bus.bus), "Arn"]}
    else:
        assert not puts


SECRET_PREFIXES = ("connections", "outbound", "subscriptions", "notifications")


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_secrets_access_is_scoped_to_the_stage_prefixes(synth: Synthesised, name: str) -> None:
    """Webhook credentials (connections/), send-API credentials (outbound/) and partner
    subscriptions' signing secrets (subscriptions/) are granted separately: ingest verifies
    webhooks but can never read a token that sends messages, nor a partner's signing key."""
    spec = topology.FUNCTIONS[name]
    own_secrets = [{"Ref": synth.logical_id(synth.stack.secrets.secrets[s])} for s in spec.reads_secrets]
    statements = [
        s
        for s in _statements(synth, name)
        if any(a.startswith("secretsmanager:") for a in _actions(s)) and s["Resource"] not in own_secrets
    ]  # the stack's own secrets: see the test below
    by_prefix = {
        prefix: [s for s in statements if f":secret:switchboard/dev/{prefix}/*" in json.dumps(s["Resource"])]
        for prefix in SECRET_PREFIXES
    }
    for statement in statements:  # nothing outside the prefixes (CDK may merge several into one statement)
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert all(
            any(f":secret:switchboard/dev/{prefix}/*" in json.dumps(r) for prefix in SECRET_PREFIXES) for r in resources
        ), statement
    notification_secrets = "create" if spec.sends_notifications else spec.notification_secrets
    accesses = zip(
        SECRET_PREFIXES,
        (spec.secrets, spec.outbound_secrets, spec.subscription_secrets, notification_secrets),
        strict=True,
    )
    for prefix, access in accesses:
        if access is None:
            assert not by_prefix[prefix], (name, prefix)
            continue
        (statement,) = by_prefix[prefix]
        expected = set(SECRETS_READ_ACTIONS) | (set(SECRETS_WRITE_ACTIONS) if access == "readwrite" else set())
        if access == "create":  # the tenants' notification signing secrets: read, and create on first use only
            expected = set(SECRETS_READ_ACTIONS) | {"secretsmanager:CreateSecret"}
        assert _actions(statement) == expected
        assert ":secretsmanager:" in json.dumps(statement["Resource"])


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_stack_secrets_are_read_only_by_the_functions_that_list_them(synth: Synthesised, name: str) -> None:
    """The cursor key: GetSecretValue/DescribeSecret on that one secret, for admin alone."""
    for secret_name, secret in synth.stack.secrets.secrets.items():
        reference = {"Ref": synth.logical_id(secret)}
        granted = [s for s in _statements(synth, name) if s["Resource"] == reference]
        if secret_name in topology.FUNCTIONS[name].reads_secrets:
            (statement,) = granted
            assert _actions(statement) == set(SECRETS_READ_ACTIONS)
        else:
            assert not granted, (name, secret_name)
    assert [f for f in topology.FUNCTIONS.values() if f.reads_secrets] == [topology.FUNCTIONS["admin"]]


def test_only_admin_and_the_sending_functions_touch_outbound_credentials() -> None:
    assert {n: f.outbound_secrets for n, f in topology.FUNCTIONS.items() if f.outbound_secrets} == {
        "admin": "readwrite",
        "replies": "read",
        "answers": "read",  # staff answers go through the same senders
        "calls": "read",  # the same Twilio credentials update a live call
        "notifications": "read",
        "hubspot_threads": "read",  # the same HubSpot token reads the thread messages its webhooks name
        "campaigns": "read",  # a campaign's messages and calls go through the same senders
    }
    assert topology.FUNCTIONS["ingest"].outbound_secrets is None


def test_wildcard_resources_are_xray_and_test_event_pattern_only(synth: Synthesised) -> None:
    """Besides X-Ray, only events:TestEventPattern (which has no resource to name) is on "*",
    and only for the function that checks subscriptions' patterns."""
    for name, spec in topology.FUNCTIONS.items():
        wildcard = set().union(*(_actions(s) for s in _statements(synth, name) if s["Resource"] == "*"))
        expected = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
        if spec.manages_subscription_rules:
            expected.add("events:TestEventPattern")
        assert wildcard == expected, name


def test_logs_go_only_to_the_function_log_group(synth: Synthesised) -> None:
    for name in topology.FUNCTIONS:
        log_statements = [s for s in _statements(synth, name) if any(a.startswith("logs:") for a in _actions(s))]
        (statement,) = log_statements
        log_group = synth.logical_id(synth.stack.functions.log_groups[name])
        assert statement["Resource"] == {"Fn::GetAtt": [log_group, "Arn"]}
        assert _actions(statement) == {"logs:CreateLogStream", "logs:PutLogEvents"}


def test_other_stage_gets_its_own_secrets_prefix(synth_qa_destroy: Synthesised) -> None:
    statements = _statements(synth_qa_destroy, "admin")
    resources = json.dumps([s["Resource"] for s in statements])
    assert ":secret:switchboard/qa/connections/*" in resources
    assert "switchboard/dev/" not in resources


@pytest.mark.parametrize("stage_fixture", ["synth", "synth_qa_destroy"])
def test_ses_is_granted_to_the_notifications_function_on_the_configured_identity_only(
    stage_fixture: str, request: pytest.FixtureRequest
) -> None:
    synth: Synthesised = request.getfixturevalue(stage_fixture)
    config = synth.stack.config
    for name in topology.FUNCTIONS:
        ses = [s for s in _statements(synth, name) if any(a.startswith("ses:") for a in _actions(s))]
        if name != "notifications" or not config.notification_email_from:
            assert not ses, name  # dev configures no sender: no function may send e-mail
            continue
        (statement,) = ses
        assert _actions(statement) == {"ses:SendEmail", "ses:SendRawEmail"}
        resources = json.dumps(statement["Resource"])
        assert ":identity/dispatch@alerts.example.com" in resources and ":identity/alerts.example.com" in resources
        assert "*" not in resources
    environment = synth.stack.functions.environments["notifications"]
    assert environment.get("NOTIFICATION_EMAIL_FROM") == config.notification_email_from
    assert environment.get("NOTIFICATION_SMS_FROM") == config.notification_sms_from
