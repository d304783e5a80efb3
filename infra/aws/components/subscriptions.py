"""Partner subscriptions' fixed infrastructure: the delivery queue (+ DLQ) their run-time rules
target, the queue policy that admits only those rules, and the names the functions need.

The rules themselves are not here: the admin function creates one per subscription at run
time, named <stage prefix>-sub-<subscription id> (topology.SUBSCRIPTION_RULE_INFIX), and its
role reaches only rules with that prefix on the stage's bus (components/functions.py).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import topology
from infra.aws.components.bus import Bus
from infra.aws.components.queues import consumer_queues
from infra.aws.config import StageConfig

# Replays are named <subscription id>-<random> by the admin function (subscription ids start
# with "sub_"); their ARNs are per account and region, not per bus.
REPLAY_NAME_PREFIX = "sub_"


def delivery_function() -> topology.Function:
    """The consumer of topology.DELIVERY_QUEUE (fed by subscriptions' rules, no rule of its own)."""
    (function,) = [
        f for f in topology.consumers() if f.consumer is not None and f.consumer.queue == topology.DELIVERY_QUEUE
    ]
    return function


class Subscriptions(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, bus: Bus) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.function = delivery_function()
        self.queue, self.dlq = consumer_queues(self, "Delivery", self.function)
        self.rule_prefix = f"{config.prefix}-{topology.SUBSCRIPTION_RULE_INFIX}"
        # Rules on a custom bus: arn:<partition>:events:<region>:<account>:rule/<bus name>/<rule name>.
        self.rule_arns_suffix = f"{bus.physical_name}/{self.rule_prefix}*"
        self.rule_arns = stack.format_arn(
            service="events",
            resource="rule",
            resource_name=self.rule_arns_suffix,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        self.replay_arns_suffix = f"{REPLAY_NAME_PREFIX}*"
        self.replay_arns = stack.format_arn(
            service="events",
            resource="replay",
            resource_name=self.replay_arns_suffix,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        self.archive_arn = bus.archive.archive_arn
        # EventBridge may put messages on the queue only for this stage's subscription rules;
        # a rule anyone else creates (another stage's, or outside the prefix) is refused.
        # The same rules may also put what they cannot deliver to the queue on its DLQ (their
        # targets' DeadLetterConfig), so an event EventBridge gave up on is kept, not dropped.
        for queue in (self.queue, self.dlq):
            queue.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="SubscriptionRulesOnly",
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["sqs:SendMessage"],
                    resources=[queue.queue_arn],
                    conditions={
                        "ArnLike": {"aws:SourceArn": self.rule_arns},
                        "StringEquals": {"aws:SourceAccount": stack.account},
                    },
                )
            )

    def physical_names(self) -> dict[str, str]:
        """The `names` entries topology.function_environment needs for the subscription machinery."""
        return {
            "rule_prefix": self.rule_prefix,
            f"queue_url:{topology.DELIVERY_QUEUE}": self.queue.queue_url,
            f"queue_arn:{topology.DELIVERY_QUEUE}": self.queue.queue_arn,
            f"dlq_arn:{topology.DELIVERY_QUEUE}": self.dlq.queue_arn,
            "archive": self.archive_arn,
        }
