"""Campaigns on AWS: the campaigns queue (+ DLQ) fed by the consumer's own rule and only this
stage's trigger rules; the scheduler group of the runs' waits and the role its schedules send
with (the campaigns queue, nothing else); the campaigns function's schedule and PassRole
permissions limited to that group and role; the admin function's trigger rules limited to the
cmp- prefix and the campaigns queue; both functions' environment."""

from __future__ import annotations

import json

import pytest

from infra import topology
from infra.aws.components.functions import CAMPAIGN_RULE_ACTIONS, CAMPAIGN_SCHEDULE_ACTIONS
from infra.aws.components.queues import visibility_timeout_seconds
from tests.infra.conftest import Synthesised, referenced_ids
from tests.infra.test_iam import _actions, _statements
from tests.infra.test_subscriptions import _resolved

pytestmark = pytest.mark.infra

CAMPAIGNS = topology.FUNCTIONS["campaigns"]
RULE_ARNS = "arn:<partition>:events:<region>:<account>:rule/switchboard-dev/switchboard-dev-cmp-*"
SCHEDULE_ARNS = "arn:<partition>:scheduler:<region>:<account>:schedule/switchboard-dev-campaigns/*"


def _queue_policy(synth: Synthesised, logical_id: str) -> list[dict]:
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.resources("AWS::SQS::QueuePolicy").values()
        if {"Ref": logical_id} in p["Properties"]["Queues"]
    ]
    return policy


def _on(statements: list[dict], logical_id: str) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        if logical_id in referenced_ids(statement["Resource"]):
            found |= _actions(statement)
    return found


def _environment(synth: Synthesised, name: str) -> dict:
    function = synth.json["Resources"][synth.logical_id(synth.stack.functions.functions[name])]
    return dict(function["Properties"]["Environment"]["Variables"])


def test_the_campaigns_queue_and_dlq(synth: Synthesised) -> None:
    campaigns = synth.stack.campaigns
    assert synth.stack.consumers.consumers["campaigns"].queue is campaigns.queue  # one queue, not two
    resources = synth.json["Resources"]
    queue_id, dlq_id = synth.logical_id(campaigns.queue), synth.logical_id(campaigns.dlq)
    queue, dlq = resources[queue_id]["Properties"], resources[dlq_id]["Properties"]
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 8}
    assert queue["VisibilityTimeout"] == visibility_timeout_seconds(CAMPAIGNS) == 180  # 6 x the 30 s timeout
    for props in (queue, dlq):
        assert props["SqsManagedSseEnabled"] is True
        assert props["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert len(synth.resources("AWS::SQS::Queue")) == 2 * len(topology.consumers())


def test_the_consumer_rule_is_the_topologys_or_pattern_on_the_campaigns_queue(synth: Synthesised) -> None:
    wiring = synth.stack.consumers.consumers["campaigns"]
    rule = synth.json["Resources"][synth.logical_id(wiring.rule)]["Properties"]
    assert rule["EventPattern"] == CAMPAIGNS.consumer.event_pattern  # type: ignore[union-attr]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [synth.logical_id(wiring.queue), "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [synth.logical_id(wiring.dlq), "Arn"]}}
    function_id = synth.logical_id(synth.stack.functions.functions["campaigns"])
    (mapping,) = [
        m["Properties"]
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [synth.logical_id(wiring.queue), "Arn"]}
    assert mapping["BatchSize"] == 1
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


@pytest.mark.parametrize("which", ["queue", "dlq"])
def test_only_this_stages_trigger_rules_and_the_consumer_rule_may_send_to_the_queue(
    synth: Synthesised, which: str
) -> None:
    campaigns = synth.stack.campaigns
    queue_id = synth.logical_id(getattr(campaigns, which))
    rule_id = synth.logical_id(synth.stack.consumers.consumers["campaigns"].rule)
    policy = _queue_policy(synth, queue_id)
    allows = [s for s in policy if s["Effect"] == "Allow"]
    (triggers,) = [s for s in allows if s.get("Sid") == "CampaignTriggerRulesOnly"]
    assert triggers["Principal"] == {"Service": "events.amazonaws.com"}
    assert triggers["Action"] == "sqs:SendMessage"
    assert triggers["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert set(triggers["Condition"]) == {"ArnLike", "StringEquals"}
    assert _resolved(synth, triggers["Condition"]["ArnLike"]["aws:SourceArn"]) == RULE_ARNS
    assert triggers["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    for statement in allows:
        if statement is not triggers:  # the consumer's own rule, by its ARN
            assert rule_id in referenced_ids(statement["Condition"]), statement
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy)


@pytest.mark.parametrize(
    ("fixture", "stage", "deletion"), [("synth", "dev", "Retain"), ("synth_qa_destroy", "qa", "Delete")]
)
def test_the_schedule_group(fixture: str, stage: str, deletion: str, request: pytest.FixtureRequest) -> None:
    synth: Synthesised = request.getfixturevalue(fixture)
    (group_id, group) = next(iter(synth.resources("AWS::Scheduler::ScheduleGroup").items()))
    assert len(synth.resources("AWS::Scheduler::ScheduleGroup")) == 1
    assert group["Properties"]["Name"] == f"switchboard-{stage}-campaigns" == topology.campaign_schedule_group(stage)
    assert group["DeletionPolicy"] == deletion
    assert group_id == synth.logical_id(synth.stack.campaigns.schedule_group)


def test_the_scheduler_role_may_only_send_to_the_campaigns_queue(synth: Synthesised) -> None:
    campaigns = synth.stack.campaigns
    role_id = synth.logical_id(campaigns.scheduler_role)
    role = synth.json["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    # Only for this group's schedules, in this account (the confused-deputy conditions AWS documents).
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    group = trust["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert synth.logical_id(campaigns.schedule_group) in referenced_ids(group)
    statements = [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert statements == [
        {
            "Action": "sqs:SendMessage",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [synth.logical_id(campaigns.queue), "Arn"]},
        }
    ]


def test_the_campaigns_function_schedules_only_in_its_group_and_passes_only_the_scheduler_role(
    synth: Synthesised,
) -> None:
    statements = _statements(synth, "campaigns")
    scheduling = [s for s in statements if any(a.startswith("scheduler:") for a in _actions(s))]
    (schedules,) = scheduling
    assert (
        _actions(schedules)
        == set(CAMPAIGN_SCHEDULE_ACTIONS)
        == {
            "scheduler:CreateSchedule",
            "scheduler:DeleteSchedule",
            "scheduler:GetSchedule",
        }
    )
    assert _resolved(synth, schedules["Resource"]) == SCHEDULE_ARNS
    (pass_role,) = [s for s in statements if any(a.startswith("iam:") for a in _actions(s))]
    assert _actions(pass_role) == {"iam:PassRole"}
    role_id = synth.logical_id(synth.stack.campaigns.scheduler_role)
    assert pass_role["Resource"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    events = set().union(*(_actions(s) for s in statements if any(a.startswith("events:") for a in _actions(s))))
    assert events == {"events:PutEvents"}  # no rules: the admin function publishes triggers
    queue_id = synth.logical_id(synth.stack.campaigns.queue)
    assert {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= _on(statements, queue_id)
    function = synth.json["Resources"][synth.logical_id(synth.stack.functions.functions["campaigns"])]
    assert synth.logical_id(synth.stack.campaigns.schedule_group) in function["DependsOn"]


def test_the_campaigns_function_reads_the_notification_signing_secrets_only(synth: Synthesised) -> None:
    (statement,) = [
        s
        for s in _statements(synth, "campaigns")
        if ":secret:switchboard/dev/notifications/*" in json.dumps(s["Resource"])
    ]
    assert _actions(statement) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}


def test_admin_manages_only_the_cmp_rules_and_points_them_only_at_the_campaigns_queue(synth: Synthesised) -> None:
    statements = _statements(synth, "admin")
    on_cmp = [s for s in statements if "-cmp-*" in json.dumps(s["Resource"])]
    granted = set().union(*(_actions(s) for s in on_cmp))
    assert granted == set(CAMPAIGN_RULE_ACTIONS) | {"events:PutTargets"}
    assert not any(a.endswith("*") for a in granted)
    for statement in on_cmp:
        assert _resolved(synth, statement["Resource"]) == RULE_ARNS, statement
    (put_targets,) = [s for s in on_cmp if "events:PutTargets" in _actions(s)]
    assert _actions(put_targets) == {"events:PutTargets"}
    queue_id = synth.logical_id(synth.stack.campaigns.queue)
    assert put_targets["Condition"] == {"ArnEquals": {"events:TargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}}}
    # Start and stop requests: it sends to the campaigns queue and does nothing else with it.
    assert _on(statements, queue_id) == {"sqs:SendMessage"}
    assert not [s for s in statements if any(a.startswith(("scheduler:", "iam:")) for a in _actions(s))]


@pytest.mark.parametrize("name", sorted(set(topology.FUNCTIONS) - {"admin", "campaigns"}))
def test_no_other_function_touches_the_campaign_machinery(synth: Synthesised, name: str) -> None:
    statements = _statements(synth, name)
    campaigns = synth.stack.campaigns
    for resource in (campaigns.queue, campaigns.dlq, campaigns.scheduler_role):
        assert not _on(statements, synth.logical_id(resource)), (name, resource)
    assert not [s for s in statements if any(a.startswith(("scheduler:", "iam:")) for a in _actions(s))], name
    assert not [s for s in statements if "-cmp-*" in json.dumps(s["Resource"])], name


def test_the_environment_names_the_queue_group_role_and_rule_prefix(synth: Synthesised) -> None:
    campaigns = synth.stack.campaigns
    queue_id, dlq_id = synth.logical_id(campaigns.queue), synth.logical_id(campaigns.dlq)
    role_id = synth.logical_id(campaigns.scheduler_role)
    runner, admin = _environment(synth, "campaigns"), _environment(synth, "admin")
    for env in (runner, admin):
        assert env["CAMPAIGN_QUEUE_URL"] == {"Ref": queue_id}
        assert env["CAMPAIGN_QUEUE_ARN"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert runner["CAMPAIGN_SCHEDULE_GROUP"] == "switchboard-dev-campaigns"
    assert runner["CAMPAIGN_SCHEDULER_ROLE_ARN"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert runner["NOTIFICATION_SECRETS_PREFIX"] == "switchboard/dev/notifications/"
    assert runner["TABLE_CAMPAIGN_RUNS"] == {"Ref": synth.logical_id(synth.stack.storage.tables["campaign_runs"])}
    assert admin["CAMPAIGN_RULE_PREFIX"] == "switchboard-dev-cmp-"
    assert admin["CAMPAIGN_DLQ_ARN"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    assert "CAMPAIGN_RULE_PREFIX" not in runner and "CAMPAIGN_SCHEDULE_GROUP" not in admin


def test_the_campaign_runs_table(synth: Synthesised) -> None:
    table = synth.json["Resources"][synth.logical_id(synth.stack.storage.tables["campaign_runs"])]["Properties"]
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    indexes = {i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in table["GlobalSecondaryIndexes"]}
    assert indexes == {"by_campaign": ["campaign", "started_at"], "by_contact": ["contact_key", "started_at"]}


def test_outputs(synth: Synthesised) -> None:
    outputs = synth.json["Outputs"]
    assert outputs["CampaignRulePrefix"]["Value"] == "switchboard-dev-cmp-"
    assert outputs["CampaignScheduleGroup"]["Value"] == "switchboard-dev-campaigns"
    assert outputs["CampaignsQueueArn"]["Value"] == {
        "Fn::GetAtt": [synth.logical_id(synth.stack.campaigns.queue), "Arn"]
    }
    assert "CampaignsDeadLetterQueueArn" in outputs
