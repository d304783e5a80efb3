"""Partner subscriptions on AWS: the delivery queue (+ DLQ) that only this stage's subscription
rules may feed, the admin function's rule permissions limited to the stage's rule prefix, the
delivery function's event source and retry permission, and both functions' environment."""

from __future__ import annotations

import json

import pytest

from infra import topology
from infra.aws.components.functions import SUBSCRIPTION_RULE_ACTIONS
from infra.aws.components.queues import visibility_timeout_seconds
from tests.infra.conftest import Synthesised, referenced_ids
from tests.infra.test_iam import _actions, _statements

pytestmark = pytest.mark.infra

DELIVERY = topology.FUNCTIONS["delivery"]
RULE_ARNS = "arn:<partition>:events:<region>:<account>:rule/switchboard-dev/switchboard-dev-sub-*"


def _resolved(synth: Synthesised, value: object) -> str:
    """A Fn::Join ARN as text, pseudo parameters written <partition>, <region>, <account>."""
    text = json.dumps(value)
    for parameter, name in (("AWS::Partition", "partition"), ("AWS::Region", "region"), ("AWS::AccountId", "account")):
        text = text.replace(json.dumps({"Ref": parameter}), json.dumps(f"<{name}>"))
    resolved = json.loads(text)
    if isinstance(resolved, dict) and "Fn::Join" in resolved:
        separator, parts = resolved["Fn::Join"]
        if all(isinstance(part, str) for part in parts):
            return str(separator.join(parts))
    return json.dumps(resolved)


def _events_statements(synth: Synthesised, name: str) -> list[dict]:
    """The function's EventBridge statements, but those on the campaigns' trigger rules (test_campaigns.py)."""
    return [
        s
        for s in _statements(synth, name)
        if any(a.startswith("events:") for a in _actions(s))
        and f"-{topology.CAMPAIGN_RULE_INFIX}*" not in json.dumps(s["Resource"])
    ]


def test_delivery_queue_and_dlq(synth: Synthesised) -> None:
    resources = synth.json["Resources"]
    queue_id = synth.logical_id(synth.stack.subscriptions.queue)
    dlq_id = synth.logical_id(synth.stack.subscriptions.dlq)
    queue, dlq = resources[queue_id]["Properties"], resources[dlq_id]["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": DELIVERY.consumer.max_receive_count,
    }
    assert queue["VisibilityTimeout"] == visibility_timeout_seconds(DELIVERY)
    assert queue["VisibilityTimeout"] >= 6 * DELIVERY.timeout_seconds
    # Waits (retries up to 10 h apart, ordered lines, an open breaker) must not outlive the message.
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    for props in (queue, dlq):
        assert props["SqsManagedSseEnabled"] is True
    for logical_id in (queue_id, dlq_id):
        (policy,) = [
            p["Properties"]["PolicyDocument"]["Statement"]
            for p in synth.resources("AWS::SQS::QueuePolicy").values()
            if {"Ref": logical_id} in p["Properties"]["Queues"]
        ]
        ssl_only = {"Bool": {"aws:SecureTransport": "false"}}
        assert any(s["Effect"] == "Deny" and s["Condition"] == ssl_only for s in policy)


@pytest.mark.parametrize("which", ["queue", "dlq"])
def test_only_the_stages_subscription_rules_may_send_to_the_delivery_queue(synth: Synthesised, which: str) -> None:
    # The DLQ too: the rules' targets put there what EventBridge could not deliver to the queue.
    queue_id = synth.logical_id(getattr(synth.stack.subscriptions, which))
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.resources("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    (allow,) = [s for s in policy if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert set(allow["Condition"]) == {"ArnLike", "StringEquals"}
    assert _resolved(synth, allow["Condition"]["ArnLike"]["aws:SourceArn"]) == RULE_ARNS
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_no_static_rule_targets_the_delivery_queue(synth: Synthesised) -> None:
    queue_id = synth.logical_id(synth.stack.subscriptions.queue)
    for rule in synth.resources("AWS::Events::Rule").values():
        assert queue_id not in referenced_ids(rule["Properties"].get("Targets", []))


def test_delivery_function_is_fed_one_message_at_a_time_with_partial_failures(synth: Synthesised) -> None:
    function_id = synth.logical_id(synth.stack.functions.functions["delivery"])
    (mapping,) = [
        m["Properties"]
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [synth.logical_id(synth.stack.subscriptions.queue), "Arn"]}
    assert mapping["BatchSize"] == 1
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_admin_manages_only_rules_under_the_stage_prefix(synth: Synthesised) -> None:
    statements = _events_statements(synth, "admin")
    granted = set().union(*(_actions(s) for s in statements))
    assert not any(a.endswith("*") for a in granted), "no events:* or other action wildcard"
    assert set(SUBSCRIPTION_RULE_ACTIONS) | {"events:PutTargets"} <= granted
    for statement in statements:
        actions = _actions(statement)
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if actions & (set(SUBSCRIPTION_RULE_ACTIONS) | {"events:PutTargets"}):
            assert [_resolved(synth, r) for r in resources] == [RULE_ARNS], statement
        if statement["Resource"] == "*":  # CDK merges it with X-Ray's statement
            assert {a for a in actions if a.startswith("events:")} == {"events:TestEventPattern"}


def test_admin_may_point_a_rule_only_at_the_delivery_queue(synth: Synthesised) -> None:
    (put_targets,) = [s for s in _events_statements(synth, "admin") if "events:PutTargets" in _actions(s)]
    assert _actions(put_targets) == {"events:PutTargets"}
    queue_id = synth.logical_id(synth.stack.subscriptions.queue)
    assert put_targets["Condition"] == {"ArnEquals": {"events:TargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}}}


def test_admin_replays_only_the_stages_archive(synth: Synthesised) -> None:
    statements = _events_statements(synth, "admin")
    archive_id = synth.logical_id(synth.stack.bus.archive)
    replays = "arn:<partition>:events:<region>:<account>:replay/sub_*"
    (start,) = [s for s in statements if "events:StartReplay" in _actions(s)]
    assert _actions(start) == {"events:StartReplay"}
    assert [_resolved(synth, r) for r in start["Resource"]] == [
        _resolved(synth, {"Fn::GetAtt": [archive_id, "Arn"]}),
        replays,
    ]
    (describe,) = [s for s in statements if "events:DescribeReplay" in _actions(s)]
    assert _resolved(synth, describe["Resource"]) == replays


@pytest.mark.parametrize("name", sorted(n for n, f in topology.FUNCTIONS.items() if not f.manages_subscription_rules))
def test_no_other_function_touches_rules(synth: Synthesised, name: str) -> None:
    for statement in _statements(synth, name):
        if not any(a.startswith("events:") for a in _actions(statement)):
            continue
        assert _actions(statement) == {"events:PutEvents"}, (name, statement)


def test_delivery_changes_visibility_and_admin_only_sends(synth: Synthesised) -> None:
    queue_id = synth.logical_id(synth.stack.subscriptions.queue)

    def on_queue(name: str) -> set[str]:
        found: set[str] = set()
        for statement in _statements(synth, name):
            if queue_id in referenced_ids(statement["Resource"]):
                found |= _actions(statement)
        return found

    delivery, admin = on_queue("delivery"), on_queue("admin")
    assert {"sqs:ChangeMessageVisibility", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SendMessage"} <= delivery
    assert admin == {"sqs:SendMessage"}
    for name, spec in topology.FUNCTIONS.items():
        if not spec.uses_delivery_queue:
            assert not on_queue(name), name


def test_admin_and_delivery_environment(synth: Synthesised) -> None:
    functions = synth.json["Resources"]
    queue_id = synth.logical_id(synth.stack.subscriptions.queue)
    archive_id = synth.logical_id(synth.stack.bus.archive)

    def environment(name: str) -> dict:
        variables = functions[synth.logical_id(synth.stack.functions.functions[name])]["Properties"]["Environment"]
        return dict(variables["Variables"])

    admin, delivery = environment("admin"), environment("delivery")
    policy = json.dumps(topology.delivery_policy(), separators=(",", ":"))
    for env in (admin, delivery):
        assert env["SUBSCRIPTION_SECRETS_PREFIX"] == "switchboard/dev/subscriptions/"
        assert env["DELIVERY_QUEUE_URL"] == {"Ref": queue_id}
        assert env["DELIVERY_POLICY"] == policy
        assert env["EVENT_BUS_NAME"] == {"Ref": synth.logical_id(synth.stack.bus.bus)}
    assert admin["SUBSCRIPTION_RULE_PREFIX"] == "switchboard-dev-sub-"
    assert admin["DELIVERY_QUEUE_ARN"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert admin["EVENT_ARCHIVE_ARN"] == {"Fn::GetAtt": [archive_id, "Arn"]}
    for key in ("SUBSCRIPTION_RULE_PREFIX", "DELIVERY_QUEUE_ARN", "EVENT_ARCHIVE_ARN"):
        assert key not in delivery
    assert delivery["TABLE_SUBSCRIPTIONS"] == {"Ref": synth.logical_id(synth.stack.storage.tables["subscriptions"])}
    assert delivery["QUEUE_MAX_RECEIVE_COUNT"] == str(DELIVERY.consumer.max_receive_count)


def test_another_stage_gets_its_own_rule_prefix_and_secrets(synth_qa_destroy: Synthesised) -> None:
    statements = json.dumps([s["Resource"] for s in _statements(synth_qa_destroy, "admin")])
    assert "rule/switchboard-qa/switchboard-qa-sub-*" in statements
    assert ":secret:switchboard/qa/subscriptions/*" in statements
    assert "switchboard-dev" not in statements


def test_test_event_pattern_suppression_is_explained(synth: Synthesised) -> None:
    role_id = synth.stack.resolve(synth.stack.functions.functions["admin"].role.node.default_child.logical_id)
    rules = synth.json["Resources"][role_id]["Metadata"]["cdk_nag"]["rules_to_suppress"]
    (rule,) = [r for r in rules if "TestEventPattern" in r["reason"]]
    assert rule["id"] == "AwsSolutions-IAM5" and rule["applies_to"] == ["Resource::*"]
