"""A consumer's SQS queue and its dead-letter queue, built the same way for every consumer:
the static ones (components/consumers.py) and the queues that rules made at run time feed
(partner subscriptions' delivery queue, components/subscriptions.py, and the campaigns queue,
components/campaigns.py), whose policies admit only those rules."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import topology

# Lambda's guidance for SQS event sources: visibility timeout at least six times the
# function timeout, so a batch retried after throttling is not redelivered mid-flight.
VISIBILITY_TIMEOUT_FACTOR = 6
DLQ_RETENTION = Duration.days(14)  # the SQS maximum: time to notice, fix and redrive


def visibility_timeout_seconds(function: topology.Function) -> int:
    assert function.consumer is not None
    return max(VISIBILITY_TIMEOUT_FACTOR * function.timeout_seconds, function.consumer.visibility_timeout_seconds)


def consumer_queues(scope: Construct, construct_id: str, function: topology.Function) -> tuple[sqs.Queue, sqs.Queue]:
    """(queue, dlq) for a consumer function: SQS-managed encryption, SSL only, the queue's
    visibility timeout per `visibility_timeout_seconds`, redrive after max_receive_count."""
    consumer = function.consumer
    assert consumer is not None
    dlq = sqs.Queue(
        scope,
        f"{construct_id}DeadLetterQueue",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=DLQ_RETENTION,
    )
    queue = sqs.Queue(
        scope,
        f"{construct_id}Queue",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        visibility_timeout=Duration.seconds(visibility_timeout_seconds(function)),
        # SQS's maximum: a message that waits (a retry hours away, a breaker, an ordered line)
        # or a consumer that is down for days must not lose it to the 4-day default.
        retention_period=DLQ_RETENTION,
        dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=consumer.max_receive_count),
    )
    return queue, dlq


def consumer_of(queue: str) -> topology.Function:
    """The one function consuming the topology queue `queue`."""
    (function,) = [f for f in topology.consumers() if f.consumer is not None and f.consumer.queue == queue]
    return function


class RuleFedQueues(Construct):
    """A construct owning a consumer's queue and DLQ that rules the admin function makes at run
    time feed, all named `rule_prefix`<id> on the stage's bus (partner subscriptions, campaign
    triggers); components/subscriptions.py and campaigns.py build on it.

    The queues are this construct's own children (consumer_queues), and each gets a policy
    statement `sid` letting EventBridge send to it for this account's rules with the prefix
    only: the queue for what they match, the DLQ for what they cannot deliver (their targets'
    DeadLetterConfig), so an event EventBridge gave up on is kept. A rule anyone else creates
    (another stage's, or outside the prefix) is refused."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        queue_id: str,
        queue_name: str,
        bus_name: str,
        rule_prefix: str,
        sid: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.function = consumer_of(queue_name)
        self.queue, self.dlq = consumer_queues(self, queue_id, self.function)
        self.rule_prefix = rule_prefix
        # Rules on a custom bus: arn:<partition>:events:<region>:<account>:rule/<bus name>/<rule name>;
        # the suffix is what cdk-nag's applies_to names.
        self.rule_arns_suffix = f"{bus_name}/{rule_prefix}*"
        self.rule_arns = stack.format_arn(
            service="events",
            resource="rule",
            resource_name=self.rule_arns_suffix,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        for queue in (self.queue, self.dlq):
            queue.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["sqs:SendMessage"],
                    resources=[queue.queue_arn],
                    conditions={
                        "ArnLike": {"aws:SourceArn": self.rule_arns},
                        "StringEquals": {"aws:SourceAccount": stack.account},
                    },
                )
            )
