"""Partner subscriptions' fixed infrastructure: the delivery queue (+ DLQ) their run-time rules
target, the queue policy that admits only those rules (queues.RuleFedQueues), and the names the
functions need.

The rules themselves are not here: the admin function creates one per subscription at run
time, named <stage prefix>-sub-<subscription id> (topology.SUBSCRIPTION_RULE_INFIX), and its
role reaches only rules with that prefix on the stage's bus (components/functions.py).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from constructs import Construct

from infra import topology
from infra.aws.components.bus import Bus
from infra.aws.components.queues import RuleFedQueues
from infra.aws.config import StageConfig

# Replays are named <subscription id>-<random> by the admin function (subscription ids start
# with "sub_"); their ARNs are per account and region, not per bus.
REPLAY_NAME_PREFIX = "sub_"


class Subscriptions(RuleFedQueues):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, bus: Bus) -> None:
        # The delivery function's queue (fed by subscriptions' rules, no rule of its own) and DLQ.
        super().__init__(
            scope,
            construct_id,
            queue_id="Delivery",
            queue_name=topology.DELIVERY_QUEUE,
            bus_name=bus.physical_name,
            rule_prefix=f"{config.prefix}-{topology.SUBSCRIPTION_RULE_INFIX}",
            sid="SubscriptionRulesOnly",
        )
        stack = Stack.of(self)
        self.replay_arns_suffix = f"{REPLAY_NAME_PREFIX}*"
        self.replay_arns = stack.format_arn(
            service="events",
            resource="replay",
            resource_name=self.replay_arns_suffix,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        self.archive_arn = bus.archive.archive_arn

    def physical_names(self) -> dict[str, str]:
        """The `names` entries topology.function_environment needs for the subscription machinery."""
        return {
            "rule_prefix": self.rule_prefix,
            f"queue_url:{topology.DELIVERY_QUEUE}": self.queue.queue_url,
            f"queue_arn:{topology.DELIVERY_QUEUE}": self.queue.queue_arn,
            f"dlq_arn:{topology.DELIVERY_QUEUE}": self.dlq.queue_arn,
            "archive": self.archive_arn,
        }
