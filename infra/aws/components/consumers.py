"""Bus consumers from topology.consumers(): rule (pattern) -> SQS queue (+ DLQ) -> function.

A consumer without an event pattern (the delivery function) has no rule here: its queue is
the subscriptions construct's, fed by rules the admin function creates at run time; it gets
its event source mapping here like every other consumer. The campaigns consumer's queue is the
campaigns construct's too (the functions' environment names it), with its rule added here."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, Token
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import topology
from infra.aws.components.bus import Bus
from infra.aws.components.campaigns import Campaigns
from infra.aws.components.functions import Functions, construct_id
from infra.aws.components.queues import consumer_queues
from infra.aws.components.subscriptions import Subscriptions
from infra.aws.config import StageConfig

# EventBridge keeps retrying delivery to the queue for up to this long before dead-lettering.
RULE_MAX_EVENT_AGE = Duration.hours(24)
RULE_RETRY_ATTEMPTS = 185
EVENT_SOURCE_PLACEHOLDER = "switchboard.placeholder"


@dataclass(frozen=True)
class ConsumerResources:
    function: str
    queue: sqs.Queue
    dlq: sqs.Queue
    rule: events.Rule


class Consumers(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id_: str,
        *,
        config: StageConfig,
        bus: Bus,
        functions: Functions,
        subscriptions: Subscriptions,
        campaigns: Campaigns,
    ) -> None:
        super().__init__(scope, construct_id_)
        self.consumers: dict[str, ConsumerResources] = {}

        for spec in topology.consumers():
            consumer = spec.consumer
            assert consumer is not None
            if consumer.event_pattern is None:  # fed by run-time rules: the subscriptions' queue
                assert spec.name == subscriptions.function.name, f"{spec.name}: no pattern and no run-time rules"
                _add_event_source(functions, spec, subscriptions.queue)
                continue
            cid = construct_id(spec.name)
            if spec.name == campaigns.function.name:  # its queue exists already: the functions' variables name it
                queue, dlq = campaigns.queue, campaigns.dlq
            else:
                queue, dlq = consumer_queues(self, cid, spec)
            rule = events.Rule(
                self,
                f"{cid}Rule",
                event_bus=bus.bus,
                description=f"{consumer.queue}: events for the {spec.name} function",
                event_pattern=_event_pattern(consumer.event_pattern),
            )
            if "$or" in consumer.event_pattern:
                # EventPattern has no $or: the rule gets the topology's JSON as it is.
                cfn_rule = rule.node.default_child
                assert isinstance(cfn_rule, events.CfnRule)
                cfn_rule.add_property_override("EventPattern", consumer.event_pattern)
                cfn_rule.add_property_deletion_override("EventPattern.source")  # the placeholder
            # Events EventBridge cannot put on the queue land in the same DLQ as events the
            # function gave up on: one place to look, one redrive, nothing silently dropped.
            rule.add_target(
                targets.SqsQueue(
                    queue,
                    dead_letter_queue=dlq,
                    retry_attempts=RULE_RETRY_ATTEMPTS,
                    max_event_age=RULE_MAX_EVENT_AGE,
                )
            )
            _add_event_source(functions, spec, queue)
            self.consumers[spec.name] = ConsumerResources(spec.name, queue, dlq, rule)


def _add_event_source(functions: Functions, spec: topology.Function, queue: sqs.IQueue) -> None:
    assert spec.consumer is not None
    functions.functions[spec.name].add_event_source(
        sources.SqsEventSource(
            queue,
            batch_size=spec.consumer.batch_size,
            report_batch_item_failures=True,
            max_concurrency=topology.CONSUMER_MAX_CONCURRENCY[spec.name],
        )
    )


def _event_pattern(pattern: dict) -> events.EventPattern:
    """Turn a topology pattern (EventBridge JSON) into an EventPattern.

    EventPattern wants snake_case keys and, outside `detail`, lists of strings; content
    filters such as {"prefix": "switchboard."} are passed through as tokens that resolve
    to the same JSON, so any pattern EventBridge accepts can be declared in topology.py.
    """
    if "$or" in pattern:  # replaced by the raw pattern after the rule exists (EventPattern has no $or)
        return events.EventPattern(source=[EVENT_SOURCE_PLACEHOLDER])
    known = {"source", "detail-type", "detail", "account", "region", "resources", "time", "version", "id"}
    unknown = set(pattern) - known
    if unknown:
        raise ValueError(f"unsupported event pattern keys: {sorted(unknown)}")
    fields = {}
    for key, value in pattern.items():
        if key != "detail":
            value = [item if isinstance(item, str) else Token.as_string(item) for item in value]
        fields[key.replace("-", "_")] = value
    return events.EventPattern(**fields)
