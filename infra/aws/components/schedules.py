"""EventBridge Scheduler schedules for the topology's scheduled functions (SLA escalation).

Each scheduled function gets a recurring schedule that invokes it directly, through a role
that may invoke that one function and nothing else. The payload is the same the local
runtime's scheduler sends (infra/local/scheduler.py).
"""

from __future__ import annotations

import json

from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from infra import topology
from infra.aws.components.functions import Functions, construct_id
from infra.aws.config import StageConfig
from infra.local.scheduler import schedule_input


class Schedules(Construct):
    def __init__(self, scope: Construct, construct_id_: str, *, config: StageConfig, functions: Functions) -> None:
        super().__init__(scope, construct_id_)
        self.schedules: dict[str, scheduler.CfnSchedule] = {}
        for spec in topology.scheduled():
            assert spec.schedule is not None
            function = functions.functions[spec.name]
            role = iam.Role(
                self,
                f"{construct_id(spec.name)}SchedulerRole",
                assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
                description=f"EventBridge Scheduler invoking {spec.name} ({config.stage})",
            )
            role.add_to_policy(
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[function.function_arn])
            )
            self.schedules[spec.name] = scheduler.CfnSchedule(
                self,
                f"{construct_id(spec.name)}Schedule",
                name=f"switchboard-{config.stage}-{spec.name.replace('_', '-')}",
                description=spec.description,
                schedule_expression=spec.schedule,
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=function.function_arn,
                    role_arn=role.role_arn,
                    input=json.dumps(schedule_input(spec)),
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(maximum_retry_attempts=2),
                ),
            )
