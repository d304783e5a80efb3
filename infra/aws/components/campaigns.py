"""Campaigns' fixed infrastructure: the campaigns queue (+ DLQ), the EventBridge Scheduler group
of the runs' waits and the role its schedules send with, and the names the functions need.

Built before the functions, because the admin and campaigns functions get the queue's URL and
ARN, the group and the role in their environment (as the subscriptions' deliveries queue is).
The consumer's own rule (topology's `$or` pattern) is added by components/consumers.py like any
consumer's, on this queue. What is created at run time is not here:

* each published campaign's trigger rule, put by the admin function and named
  <stage prefix>-cmp-<campaign id> (topology.CAMPAIGN_RULE_INFIX), targeting this queue with its
  DLQ as dead-letter queue; the queue policies (queues.RuleFedQueues) admit exactly those rules;
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
from infra.aws.components.queues import RuleFedQueues
from infra.aws.config import StageConfig


class Campaigns(RuleFedQueues):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, bus: Bus) -> None:
        # EventBridge may send to the queue (and its DLQ) for this stage's trigger rules only; the
        # consumer's own rule gets its statement from its target (components/consumers.py).
        super().__init__(
            scope,
            construct_id,
            queue_id="Campaign",
            queue_name=topology.CAMPAIGN_QUEUE,
            bus_name=bus.physical_name,
            rule_prefix=f"{config.prefix}-{topology.CAMPAIGN_RULE_INFIX}",
            sid="CampaignTriggerRulesOnly",
        )
        stack = Stack.of(self)

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
