"""Campaigns' fixed infrastructure: the campaigns queue (+ DLQ), the EventBridge Scheduler group
of the runs' waits and the role its schedules send with, and the names the functions need.

Built before the functions, because the admin and campaigns functions get the queue's URL and
ARN, the group and the role in their environment (as the subscriptions' deliveries queue is).
The consumer's own rule (topology's `$or` pattern) is added by components/consumers.py like any
consumer's, on this queue. What is created at run time is not here:

* each published campaign's trigger rule, put by the admin function and named
  <stage prefix>-cmp-<campaign id> (topology.CAMPAIGN_RULE_INFIX), targeting this queue with its
  DLQ as dead-letter queue; the queue policies below admit exactly those rules;
* each wait's one-time schedule, created by the campaigns function in the group, targeting this
  queue through the scheduler role, which may do nothing but send to it.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from infra import topology
from infra.aws.components.bus import Bus
from infra.aws.components.queues import consumer_queues
from infra.aws.config import StageConfig


def campaign_function() -> topology.Function:
    """The consumer of topology.CAMPAIGN_QUEUE."""
    (function,) = [
        f for f in topology.consumers() if f.consumer is not None and f.consumer.queue == topology.CAMPAIGN_QUEUE
    ]
    return function


class Campaigns(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, bus: Bus) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.function = campaign_function()
        self.queue, self.dlq = consumer_queues(self, "Campaign", self.function)

        # Trigger rules: arn:<partition>:events:<region>:<account>:rule/<bus name>/<prefix><campaign id>.
        self.rule_prefix = f"{config.prefix}-{topology.CAMPAIGN_RULE_INFIX}"
        self.rule_arns_suffix = f"{bus.physical_name}/{self.rule_prefix}*"
        self.rule_arns = stack.format_arn(
            service="events",
            resource="rule",
            resource_name=self.rule_arns_suffix,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        # EventBridge may send to the queue (and, for what it cannot deliver, to the DLQ: the rules'
        # DeadLetterConfig) for this stage's trigger rules only, in this account; the consumer's own
        # rule gets its statement from its target (components/consumers.py).
        for queue in (self.queue, self.dlq):
            queue.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="CampaignTriggerRulesOnly",
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["sqs:SendMessage"],
                    resources=[queue.queue_arn],
                    conditions={
                        "ArnLike": {"aws:SourceArn": self.rule_arns},
                        "StringEquals": {"aws:SourceAccount": stack.account},
                    },
                )
            )

        # The runs' waits: one-time schedules in a group of their own, so the campaigns function's
        # permissions (and a stage's removal) reach them and nothing else.
        self.schedule_group_name = topology.campaign_schedule_group(config.stage)
        self.schedule_group = scheduler.ScheduleGroup(
            self, "ScheduleGroup", schedule_group_name=self.schedule_group_name, removal_policy=config.removal_policy
        )
        self.schedule_arns_suffix = f"{self.schedule_group_name}/*"
        self.schedule_arns = stack.format_arn(
            service="scheduler",
            resource="schedule",
            resource_name=self.schedule_arns_suffix,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        # The role the schedules send with: assumed by EventBridge Scheduler for this group's schedules
        # only (the confused-deputy conditions AWS documents), allowed to send to the campaigns queue only.
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnEquals": {"aws:SourceArn": self.schedule_group.schedule_group_arn},
                },
            ),
            description=f"EventBridge Scheduler sending campaign runs' timers to the campaigns queue ({config.stage})",
        )
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.queue.queue_arn])
        )

    def physical_names(self) -> dict[str, str]:
        """The `names` entries topology.function_environment needs for campaigns."""
        return {
            f"queue_url:{topology.CAMPAIGN_QUEUE}": self.queue.queue_url,
            f"queue_arn:{topology.CAMPAIGN_QUEUE}": self.queue.queue_arn,
            f"dlq_arn:{topology.CAMPAIGN_QUEUE}": self.dlq.queue_arn,
            "campaign_rule_prefix": self.rule_prefix,
            "campaign_schedule_group": self.schedule_group_name,  # text: the campaigns function depends on the group
            "campaign_scheduler_role_arn": self.scheduler_role.role_arn,
        }
