"""Alarms notify an encrypted, SSL-only topic about errors, throttles, dead letters,
EventBridge delivery failures, failed publishes, a stalled delivery queue and API 5xx."""

from __future__ import annotations

import pytest

from infra import topology
from infra.aws.components.alarms import DELIVERY_BACKLOG_PERIODS, PUBLISH_FAILURES_METRIC
from tests.infra.conftest import Synthesised

pytestmark = pytest.mark.infra


BACKLOG_ALARMS = ("switchboard-dev-delivery-queue-backlog", "switchboard-dev-campaigns-queue-backlog")


def _alarms(synth: Synthesised) -> list[dict]:
    return [a["Properties"] for a in synth.resources("AWS::CloudWatch::Alarm").values()]


def _find(synth: Synthesised, namespace: str, metric: str, dimensions: list[dict]) -> dict:
    matches = [
        a
        for a in _alarms(synth)
        if a.get("Namespace") == namespace
        and a.get("MetricName") == metric
        and sorted(a.get("Dimensions", []), key=lambda d: d["Name"]) == sorted(dimensions, key=lambda d: d["Name"])
    ]
    assert len(matches) == 1, f"{namespace}/{metric} {dimensions}: {len(matches)} alarms"
    return matches[0]


def test_every_alarm_fires_on_the_first_bad_datapoint_and_notifies_the_topic(synth: Synthesised) -> None:
    topic = {"Ref": synth.logical_id(synth.stack.alarms.topic)}
    for alarm in _alarms(synth):
        assert alarm["Threshold"] == 0
        # The exceptions: a burst may build the deliveries' or the campaigns' queue backlog for a few minutes.
        backlog = alarm["AlarmName"] in BACKLOG_ALARMS
        assert alarm["EvaluationPeriods"] == (DELIVERY_BACKLOG_PERIODS if backlog else 1)
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [topic]
        assert alarm["AlarmName"].startswith("switchboard-dev-")
        assert alarm["AlarmDescription"]


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_function_errors_and_throttles(synth: Synthesised, name: str) -> None:
    dimensions = [{"Name": "FunctionName", "Value": {"Ref": synth.logical_id(synth.stack.functions.functions[name])}}]
    for metric in ("Errors", "Throttles"):
        assert _find(synth, "AWS/Lambda", metric, dimensions)["Statistic"] == "Sum"


@pytest.mark.parametrize(
    "name", sorted(f.name for f in topology.consumers() if f.consumer and f.consumer.event_pattern is not None)
)
def test_dead_letter_queue_and_rule_delivery_alarms(synth: Synthesised, name: str) -> None:
    wiring = synth.stack.consumers.consumers[name]
    dlq = synth.logical_id(wiring.dlq)
    alarm = _find(
        synth,
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}],
    )
    assert alarm["Statistic"] == "Maximum"
    # Rules on a custom bus report with both dimensions.
    rule_dimensions = [
        {"Name": "EventBusName", "Value": {"Ref": synth.logical_id(synth.stack.bus.bus)}},
        {"Name": "RuleName", "Value": {"Ref": synth.logical_id(wiring.rule)}},
    ]
    _find(synth, "AWS/Events", "FailedInvocations", rule_dimensions)
    _find(synth, "AWS/Events", "InvocationsFailedToBeSentToDlq", rule_dimensions)


def test_delivery_queue_dead_letters_and_stalled_queue(synth: Synthesised) -> None:
    subscriptions = synth.stack.subscriptions
    dlq = _find(
        synth,
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": [synth.logical_id(subscriptions.dlq), "QueueName"]}}],
    )
    assert dlq["Statistic"] == "Maximum" and dlq["Threshold"] == 0
    # Not consuming: due (visible) deliveries in every datapoint of 15 minutes. Messages waiting
    # for a retry or in an ordered line are invisible, so they never trip it.
    backlog = _find(
        synth,
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": [synth.logical_id(subscriptions.queue), "QueueName"]}}],
    )
    assert backlog["Statistic"] == "Minimum" and backlog["Period"] == 300
    assert backlog["EvaluationPeriods"] == 3 and backlog["Threshold"] == 0
    assert backlog["AlarmName"] == "switchboard-dev-delivery-queue-backlog"
    # The delivery function's own errors are among every function's alarms.
    function = synth.logical_id(synth.stack.functions.functions["delivery"])
    _find(synth, "AWS/Lambda", "Errors", [{"Name": "FunctionName", "Value": {"Ref": function}}])


def test_campaigns_dead_letters_stalled_queue_dropped_timers_and_errors(synth: Synthesised) -> None:
    campaigns = synth.stack.campaigns
    dlq = _find(
        synth,
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": [synth.logical_id(campaigns.dlq), "QueueName"]}}],
    )
    assert dlq["Statistic"] == "Maximum" and dlq["AlarmName"] == "switchboard-dev-campaigns-dead-letters"
    backlog = _find(
        synth,
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": [synth.logical_id(campaigns.queue), "QueueName"]}}],
    )
    assert backlog["Statistic"] == "Minimum" and backlog["Period"] == 300
    assert backlog["EvaluationPeriods"] == 3 and backlog["AlarmName"] == "switchboard-dev-campaigns-queue-backlog"
    # A wait's schedule that EventBridge Scheduler gave up sending: the run would wait forever.
    dropped = _find(
        synth,
        "AWS/Scheduler",
        "InvocationDroppedCount",
        [{"Name": "ScheduleGroup", "Value": "switchboard-dev-campaigns"}],
    )
    assert dropped["Statistic"] == "Sum" and dropped["AlarmName"] == "switchboard-dev-campaigns-timers-dropped"
    function = synth.logical_id(synth.stack.functions.functions["campaigns"])
    _find(synth, "AWS/Lambda", "Errors", [{"Name": "FunctionName", "Value": {"Ref": function}}])
    rule_dimensions = [
        {"Name": "EventBusName", "Value": {"Ref": synth.logical_id(synth.stack.bus.bus)}},
        {"Name": "RuleName", "Value": {"Ref": synth.logical_id(synth.stack.consumers.consumers["campaigns"].rule)}},
    ]
    _find(synth, "AWS/Events", "FailedInvocations", rule_dimensions)


def test_publish_failures_alarm_matches_powertools_emf(synth: Synthesised) -> None:
    publishers = [f for f in topology.FUNCTIONS.values() if f.publishes]
    assert publishers
    for spec in publishers:
        service = f"{topology.SERVICE}-{spec.name.replace('_', '-')}"
        alarm = _find(
            synth, topology.METRICS_NAMESPACE, PUBLISH_FAILURES_METRIC, [{"Name": "service", "Value": service}]
        )
        assert alarm["Statistic"] == "Sum"
    assert any(
        a.get("Dimensions") == [{"Name": "service", "Value": "switchboard-ingest"}]
        and a.get("MetricName") == "PublishFailures"
        and a.get("Namespace") == "Switchboard"
        for a in _alarms(synth)
    )


def test_http_api_5xx(synth: Synthesised) -> None:
    _find(synth, "AWS/ApiGateway", "5xx", [{"Name": "ApiId", "Value": {"Ref": synth.logical_id(synth.stack.api.api)}}])


def test_alarm_topic_is_encrypted_with_a_rotating_key_cloudwatch_can_use(synth: Synthesised) -> None:
    topic_id = synth.logical_id(synth.stack.alarms.topic)
    key_id = synth.logical_id(synth.stack.alarms.key)
    topic = synth.json["Resources"][topic_id]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    key = synth.json["Resources"][key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    assert any(
        s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} and "kms:Decrypt" in s["Action"]
        for s in key["KeyPolicy"]["Statement"]
    )
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.resources("AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_id} in p["Properties"]["Topics"]
    ]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy)


def test_alarm_email_is_optional(synth: Synthesised, synth_qa_destroy: Synthesised) -> None:
    assert not synth.resources("AWS::SNS::Subscription")
    (subscription,) = [s["Properties"] for s in synth_qa_destroy.resources("AWS::SNS::Subscription").values()]
    assert subscription["Protocol"] == "email"
    assert subscription["Endpoint"] == "ops@example.com"
