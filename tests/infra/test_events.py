"""The custom bus, its archive, and each consumer's rule -> queue (+ DLQ) -> event source mapping."""

from __future__ import annotations

import pytest

from infra import topology
from infra.aws.components.queues import visibility_timeout_seconds
from tests.infra.conftest import Synthesised, referenced_ids

pytestmark = pytest.mark.infra

# Consumers with a rule of their own; the delivery function's queue is fed by subscriptions'
# run-time rules instead (tests/infra/test_subscriptions.py).
CONSUMERS = sorted(f.name for f in topology.consumers() if f.consumer and f.consumer.event_pattern is not None)
ALL_CONSUMERS = sorted(f.name for f in topology.consumers())


def test_custom_bus_is_named_for_the_stage(synth: Synthesised, synth_qa_destroy: Synthesised) -> None:
    (bus,) = synth.resources("AWS::Events::EventBus").values()
    assert bus["Properties"]["Name"] == "switchboard-dev"
    (bus,) = synth_qa_destroy.resources("AWS::Events::EventBus").values()
    assert bus["Properties"]["Name"] == "switchboard-qa"


def test_bus_archive_keeps_canonical_events(synth: Synthesised) -> None:
    (archive,) = [a["Properties"] for a in synth.resources("AWS::Events::Archive").values()]
    bus_id = synth.logical_id(synth.stack.bus.bus)
    assert archive["SourceArn"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    assert archive["EventPattern"] == {"source": [{"prefix": topology.EVENT_SOURCE_PREFIX}]}
    assert archive["RetentionDays"] == 30


def test_one_rule_queue_and_dlq_per_consumer(synth: Synthesised) -> None:
    assert len(synth.resources("AWS::Events::Rule")) == len(CONSUMERS)
    assert len(synth.resources("AWS::SQS::Queue")) == 2 * len(ALL_CONSUMERS)
    assert len(synth.resources("AWS::Lambda::EventSourceMapping")) == len(ALL_CONSUMERS)
    assert set(synth.stack.consumers.consumers) == set(CONSUMERS)


def test_every_consumer_is_capped_and_the_caps_leave_most_of_the_account_to_ingest(synth: Synthesised) -> None:
    """Each event source mapping (the rule-less deliveries queue's too) caps its function's
    concurrency; all caps together stay well under AWS's default account limit of 1,000."""
    caps = {
        name: [
            m["Properties"].get("ScalingConfig", {}).get("MaximumConcurrency")
            for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
            if m["Properties"]["FunctionName"] == {"Ref": synth.logical_id(synth.stack.functions.functions[name])}
        ]
        for name in ALL_CONSUMERS
    }
    assert caps == {name: [topology.CONSUMER_MAX_CONCURRENCY[name]] for name in ALL_CONSUMERS}
    assert sum(topology.CONSUMER_MAX_CONCURRENCY.values()) <= 150


@pytest.mark.parametrize("name", CONSUMERS)
def test_consumer_rule_to_queue_with_dlq_to_function(synth: Synthesised, name: str) -> None:
    spec = topology.FUNCTIONS[name]
    consumer = spec.consumer
    resources = synth.json["Resources"]
    wiring = synth.stack.consumers.consumers[name]
    queue_id, dlq_id = synth.logical_id(wiring.queue), synth.logical_id(wiring.dlq)
    bus_id = synth.logical_id(synth.stack.bus.bus)
    function_id = synth.logical_id(synth.stack.functions.functions[name])

    rule = resources[synth.logical_id(wiring.rule)]["Properties"]
    assert rule["EventBusName"] == {"Ref": bus_id}
    assert rule["EventPattern"] == consumer.event_pattern
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}

    queue = resources[queue_id]["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": consumer.max_receive_count,
    }
    assert queue["VisibilityTimeout"] == visibility_timeout_seconds(spec)
    assert queue["VisibilityTimeout"] >= 6 * spec.timeout_seconds
    assert queue["VisibilityTimeout"] >= consumer.visibility_timeout_seconds
    for props in (queue, resources[dlq_id]["Properties"]):
        assert props["SqsManagedSseEnabled"] is True

    (mapping,) = [
        m["Properties"]
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert mapping["BatchSize"] == consumer.batch_size
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": topology.CONSUMER_MAX_CONCURRENCY[name]}


@pytest.mark.parametrize("name", CONSUMERS)
def test_queues_enforce_ssl_and_accept_only_their_rule(synth: Synthesised, name: str) -> None:
    wiring = synth.stack.consumers.consumers[name]
    rule_id = synth.logical_id(wiring.rule)
    for queue in (wiring.queue, wiring.dlq):
        queue_id = synth.logical_id(queue)
        (policy,) = [
            p["Properties"]["PolicyDocument"]["Statement"]
            for p in synth.resources("AWS::SQS::QueuePolicy").values()
            if {"Ref": queue_id} in p["Properties"]["Queues"]
        ]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy
        )
        # The campaigns queue also admits the published campaigns' trigger rules (tests/infra/test_campaigns.py).
        sends = [s for s in policy if s["Effect"] == "Allow" and s.get("Sid") != "CampaignTriggerRulesOnly"]
        assert sends, "EventBridge must be allowed to send (queue target and target DLQ)"
        for statement in sends:
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}
            assert rule_id in referenced_ids(statement["Condition"])
