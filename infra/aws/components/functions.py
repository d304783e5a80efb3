"""Lambda functions from topology.FUNCTIONS, their layers, log groups, roles and permissions."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra import topology
from infra.aws.components.bus import Bus
from infra.aws.components.campaigns import Campaigns
from infra.aws.components.packaging import core_layer_code, deps_layer_code, function_code
from infra.aws.components.secrets import AppSecrets
from infra.aws.components.storage import Storage
from infra.aws.components.subscriptions import Subscriptions
from infra.aws.config import StageConfig

# The newest Python Lambda runs and the CDK offers; Powertools publishes its layer for it
# (see POWERTOOLS_LAYER_PARAMETER). Graviton (arm64) costs less per GB-second.
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64

# Powertools for AWS Lambda (Python) V3 publishes its layer (account 017000801446, layer
# AWSLambdaPowertoolsPythonV3-python314-arm64) and a public SSM parameter per architecture,
# Python version and release: /aws/service/powertools/python/<arch>/<python>/<version|latest>.
# The layer is built with `aws-lambda-powertools[all]`, so it carries pydantic v2 and the
# aws-xray-sdk that Parser, Idempotency and Tracer need. Resolving the parameter at deploy
# time (a CloudFormation SSM parameter) keeps synth free of AWS lookups.
# https://docs.aws.amazon.com/powertools/python/latest/getting-started/install/#using-ssm-parameter-store
POWERTOOLS_LAYER_PARAMETER = "/aws/service/powertools/python/{arch}/{python}/{version}"

# Functions that load provider adapters (phonenumbers, defusedxml, cryptography, PyJWT) or
# routing's sensing (pyahocorasick, vaderSentiment) get the slim deps layer: topology's
# `deps_layer`. The others import none of them and start faster without it
# (tests/infra/test_deps_layer.py checks the imports).
DEPS_LAYER_FUNCTIONS = frozenset(name for name, spec in topology.FUNCTIONS.items() if spec.deps_layer)

SECRETS_READ_ACTIONS = ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
SECRETS_WRITE_ACTIONS = (
    "secretsmanager:CreateSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecret",
    "secretsmanager:DeleteSecret",
    "secretsmanager:TagResource",
)
# Notifications' e-mail: on the configured identity (the address and its domain) only.
SES_SEND_ACTIONS = ("ses:SendEmail", "ses:SendRawEmail")
# Managing the subscriptions' own rules (names under the stage's rule prefix, on its bus).
# PutTargets is granted apart, limited to the delivery queue as the target.
SUBSCRIPTION_RULE_ACTIONS = (
    "events:PutRule",
    "events:DeleteRule",
    "events:EnableRule",
    "events:DisableRule",
    "events:DescribeRule",
    "events:ListTargetsByRule",
    "events:RemoveTargets",
)
# Published campaigns' trigger rules: put, read and removed; PutTargets apart, to the campaigns queue only.
CAMPAIGN_RULE_ACTIONS = (
    "events:PutRule",
    "events:DeleteRule",
    "events:DescribeRule",
    "events:ListTargetsByRule",
    "events:RemoveTargets",
)
# The runs' waits: one-time schedules created, read and deleted in the campaign group only.
CAMPAIGN_SCHEDULE_ACTIONS = ("scheduler:CreateSchedule", "scheduler:DeleteSchedule", "scheduler:GetSchedule")


def construct_id(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id_: str,
        *,
        config: StageConfig,
        storage: Storage,
        bus: Bus,
        secrets: AppSecrets,
        subscriptions: Subscriptions,
        campaigns: Campaigns,
    ) -> None:
        super().__init__(scope, construct_id_)
        self.functions: dict[str, lambda_.Function] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        self.environments: dict[str, dict[str, str]] = {}

        self.core_layer = lambda_.LayerVersion(
            self,
            "CoreLayer",
            code=core_layer_code(),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="switchboard_core: events, providers, store, bus, config",
        )
        self.deps_layer = lambda_.LayerVersion(
            self,
            "DepsLayer",
            code=deps_layer_code(),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="adapters' and routing's libraries (layers/deps/requirements.txt, arm64)",
        )
        self.powertools_parameter = POWERTOOLS_LAYER_PARAMETER.format(
            arch=ARCHITECTURE.name, python=RUNTIME.name, version=config.powertools_version
        )
        self.powertools_layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "PowertoolsLayer",
            ssm.StringParameter.value_for_string_parameter(self, self.powertools_parameter),
        )

        names = {
            **storage.physical_names(),
            **secrets.physical_names(),
            **subscriptions.physical_names(),
            **campaigns.physical_names(),
            "bus": bus.name,
        }
        if config.notification_email_from:
            names["notification_email_from"] = config.notification_email_from
        if config.notification_sms_from:
            names["notification_sms_from"] = config.notification_sms_from
        notification_secrets_arn = Stack.of(self).format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{topology.notification_secrets_prefix(config.stage)}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        secrets_arn = Stack.of(self).format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{topology.secrets_prefix(config.stage)}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        outbound_secrets_arn = Stack.of(self).format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{topology.outbound_secrets_prefix(config.stage)}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        subscription_secrets_arn = Stack.of(self).format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{topology.subscription_secrets_prefix(config.stage)}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

        for spec in topology.FUNCTIONS.values():
            cid = construct_id(spec.name)
            function_name = f"{config.prefix}-{spec.name.replace('_', '-')}"
            log_group = logs.LogGroup(
                self,
                f"{cid}Logs",
                log_group_name=f"/aws/lambda/{function_name}",
                retention=config.log_retention,
                removal_policy=config.removal_policy,
            )
            # Own role instead of AWSLambdaBasicExecutionRole: logs go to this one log group only.
            role = iam.Role(
                self,
                f"{cid}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"Switchboard {config.stage} {spec.name} function",
            )
            log_group.grant_write(role)

            environment = topology.function_environment(spec, names, config.stage)
            function = lambda_.Function(
                self,
                cid,
                function_name=function_name,
                description=spec.description,
                runtime=RUNTIME,
                architecture=ARCHITECTURE,
                handler=spec.handler,
                code=function_code(self, spec),
                layers=[self.core_layer, self.powertools_layer]
                + ([self.deps_layer] if spec.name in DEPS_LAYER_FUNCTIONS else []),
                memory_size=spec.memory_mb,
                timeout=Duration.seconds(spec.timeout_seconds),
                tracing=lambda_.Tracing.ACTIVE,
                environment=environment,
                role=role,
                log_group=log_group,
                # Only ingest may reserve: webhooks must be acknowledged whatever else runs.
                reserved_concurrent_executions=(
                    config.ingest_reserved_concurrency or None if spec.name == "ingest" else None
                ),
            )
            self._grant(function, spec, storage, bus, secrets_arn, outbound_secrets_arn)
            self._grant_subscriptions(function, spec, subscriptions, subscription_secrets_arn)
            for secret_name in spec.reads_secrets:  # GetSecretValue/DescribeSecret on that one secret
                secrets.secrets[secret_name].grant_read(function)
            self._suppress(role, spec, storage, config.stage)
            self._suppress_subscriptions(role, spec, subscriptions, config.stage)
            if spec.sends_notifications:
                self._grant_notifications(function, role, config, notification_secrets_arn)
            elif spec.notification_secrets:
                self._grant_notification_secrets(function, role, spec, config.stage, notification_secrets_arn)
            self._grant_campaigns(function, role, spec, campaigns, config.stage)

            self.functions[spec.name] = function
            self.log_groups[spec.name] = log_group
            self.environments[spec.name] = environment

    def service_name(self, name: str) -> str:
        """The Powertools service (the `service` metric dimension) a function runs as."""
        return self.environments[name]["POWERTOOLS_SERVICE_NAME"]

    @staticmethod
    def _grant(
        function: lambda_.Function,
        spec: topology.Function,
        storage: Storage,
        bus: Bus,
        secrets_arn: str,
        outbound_secrets_arn: str,
    ) -> None:
        for table_name, access in spec.tables.items():
            table = storage.tables[table_name]
            grant = {
                "read": table.grant_read_data,
                "write": table.grant_write_data,
                "readwrite": table.grant_read_write_data,
            }[access]
            grant(function)
        for bucket_name, access in spec.buckets.items():
            bucket = storage.buckets[bucket_name]
            if access in ("read", "readwrite"):
                bucket.grant_read(function)
            if access in ("write", "readwrite"):
                bucket.grant_put(function)
        if spec.publishes:
            bus.bus.grant_put_events_to(function)
        if spec.secrets:
            actions = SECRETS_READ_ACTIONS + (SECRETS_WRITE_ACTIONS if spec.secrets == "readwrite" else ())
            function.add_to_role_policy(iam.PolicyStatement(actions=list(actions), resources=[secrets_arn]))
        if spec.outbound_secrets:
            actions = SECRETS_READ_ACTIONS + (SECRETS_WRITE_ACTIONS if spec.outbound_secrets == "readwrite" else ())
            function.add_to_role_policy(iam.PolicyStatement(actions=list(actions), resources=[outbound_secrets_arn]))

    @staticmethod
    def _grant_notifications(function: lambda_.Function, role: iam.Role, config: StageConfig, secrets_arn: str) -> None:
        """SES as the configured identity only; the tenants' notification signing secrets (read,
        and create on a tenant's first webhook notification) under their own prefix."""
        function.add_to_role_policy(
            iam.PolicyStatement(actions=[*SECRETS_READ_ACTIONS, "secretsmanager:CreateSecret"], resources=[secrets_arn])
        )
        if config.notification_email_from:
            stack = Stack.of(function)
            identities = [
                stack.format_arn(service="ses", resource="identity", resource_name=name)
                for name in (config.notification_email_from, config.notification_email_domain)
            ]
            function.add_to_role_policy(iam.PolicyStatement(actions=list(SES_SEND_ACTIONS), resources=identities))
        NagSuppressions.add_resource_suppressions(
            role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="The tenants' notification-webhook signing secrets are created at run time, one per "
                    "tenant, under the stage's own prefix (switchboard/<stage>/notifications/); the wildcard is "
                    "that prefix only.",
                    applies_to=[
                        (
                            "Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:"
                            f"secret:{topology.notification_secrets_prefix(config.stage)}*"
                        )
                    ],
                )
            ],
            apply_to_children=True,
        )

    @staticmethod
    def _grant_notification_secrets(
        function: lambda_.Function, role: iam.Role, spec: topology.Function, stage: str, secrets_arn: str
    ) -> None:
        """The tenants' notification signing secrets for a function that signs with them but sends no
        notification (campaigns' webhook steps): read, or read and write, under their prefix only."""
        access = spec.notification_secrets
        actions = SECRETS_READ_ACTIONS + (SECRETS_WRITE_ACTIONS if access == "readwrite" else ())
        function.add_to_role_policy(iam.PolicyStatement(actions=list(actions), resources=[secrets_arn]))
        NagSuppressions.add_resource_suppressions(
            role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="The tenants' notification-webhook signing secrets are one per tenant, created at run "
                    "time under the stage's own prefix (switchboard/<stage>/notifications/); this function signs "
                    "webhook steps with them, and the wildcard is that prefix only.",
                    applies_to=[
                        (
                            "Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:"
                            f"secret:{topology.notification_secrets_prefix(stage)}*"
                        )
                    ],
                )
            ],
            apply_to_children=True,
        )

    @staticmethod
    def _grant_campaigns(
        function: lambda_.Function, role: iam.Role, spec: topology.Function, campaigns: Campaigns, stage: str
    ) -> None:
        """The campaigns queue, the runs' schedules and the trigger rules, each as narrow as IAM allows."""
        account = "arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:"
        suppressions = []
        if spec.uses_campaign_queue:  # start and stop requests (admin); work the campaigns function puts back
            function.add_to_role_policy(
                iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[campaigns.queue.queue_arn])
            )
        if spec.schedules_campaign_timers:
            # Its variable holds the group's name as text: the group must exist before the function runs.
            function.node.add_dependency(campaigns.schedule_group)
            function.add_to_role_policy(
                iam.PolicyStatement(actions=list(CAMPAIGN_SCHEDULE_ACTIONS), resources=[campaigns.schedule_arns])
            )
            # CreateSchedule names the role the schedule sends with: that one role, for the scheduler only.
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["iam:PassRole"],
                    resources=[campaigns.scheduler_role.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
                )
            )
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="Campaign runs' waits are one-time schedules created at run time, one per wait, named "
                    "<run id>-<sequence>; the wildcard is the stage's own campaign schedule group "
                    f"({topology.campaign_schedule_group(stage)}) only.",
                    applies_to=[
                        "Resource::"
                        + account.format(service="scheduler")
                        + f"schedule/{campaigns.schedule_arns_suffix}"
                    ],
                )
            )
        if spec.manages_campaign_rules:
            function.add_to_role_policy(
                iam.PolicyStatement(actions=list(CAMPAIGN_RULE_ACTIONS), resources=[campaigns.rule_arns])
            )
            # A trigger rule may target the campaigns queue and nothing else.
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["events:PutTargets"],
                    resources=[campaigns.rule_arns],
                    conditions={"ArnEquals": {"events:TargetArn": campaigns.queue.queue_arn}},
                )
            )
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="Published campaigns' trigger rules are created at run time, one per campaign, named "
                    f"<stage prefix>-{topology.CAMPAIGN_RULE_INFIX}<campaign id> on the stage's bus; the wildcard is "
                    "that name prefix on that bus only, and their one target is the campaigns queue.",
                    applies_to=["Resource::" + account.format(service="events") + f"rule/{campaigns.rule_arns_suffix}"],
                )
            )
        if suppressions:
            NagSuppressions.add_resource_suppressions(role, suppressions, apply_to_children=True)

    @staticmethod
    def _grant_subscriptions(
        function: lambda_.Function, spec: topology.Function, subscriptions: Subscriptions, secrets_arn: str
    ) -> None:
        if spec.subscription_secrets:
            actions = SECRETS_READ_ACTIONS + (SECRETS_WRITE_ACTIONS if spec.subscription_secrets == "readwrite" else ())
            function.add_to_role_policy(iam.PolicyStatement(actions=list(actions), resources=[secrets_arn]))
        if spec.uses_delivery_queue:  # manual retries, local replays, resumed held deliveries
            function.add_to_role_policy(
                iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[subscriptions.queue.queue_arn])
            )
        if spec.name == subscriptions.function.name:
            # The retry schedule: a failed delivery's message stays invisible until its next attempt.
            function.add_to_role_policy(
                iam.PolicyStatement(actions=["sqs:ChangeMessageVisibility"], resources=[subscriptions.queue.queue_arn])
            )
        if spec.manages_subscription_rules:
            function.add_to_role_policy(
                iam.PolicyStatement(actions=list(SUBSCRIPTION_RULE_ACTIONS), resources=[subscriptions.rule_arns])
            )
            # A subscription's rule may target the delivery queue and nothing else.
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["events:PutTargets"],
                    resources=[subscriptions.rule_arns],
                    conditions={"ArnEquals": {"events:TargetArn": subscriptions.queue.queue_arn}},
                )
            )
            # TestEventPattern touches no resource, so IAM accepts it only on "*".
            function.add_to_role_policy(iam.PolicyStatement(actions=["events:TestEventPattern"], resources=["*"]))
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["events:StartReplay"], resources=[subscriptions.archive_arn, subscriptions.replay_arns]
                )
            )
            function.add_to_role_policy(
                iam.PolicyStatement(actions=["events:DescribeReplay"], resources=[subscriptions.replay_arns])
            )

    @staticmethod
    def _suppress_subscriptions(
        role: iam.Role, spec: topology.Function, subscriptions: Subscriptions, stage: str
    ) -> None:
        """IAM5 suppressions for the subscription machinery's prefixes, each finding named exactly."""
        account = "arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:"
        suppressions = []
        if spec.subscription_secrets:
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="Partner subscriptions' signing secrets are created at runtime, one per subscription, "
                    "under the stage's own prefix (switchboard/<stage>/subscriptions/); the wildcard is that "
                    "prefix only.",
                    applies_to=[
                        "Resource::"
                        + account.format(service="secretsmanager")
                        + f"secret:{topology.subscription_secrets_prefix(stage)}*"
                    ],
                )
            )
        if spec.manages_subscription_rules:
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="Subscriptions' rules are created at runtime, one per subscription, named "
                    f"<stage prefix>-{topology.SUBSCRIPTION_RULE_INFIX}<id> on the stage's bus; the wildcard is that "
                    "name prefix on that bus only. Replays are named after the subscription (sub_<id>-<random>) "
                    "and can only replay this stage's archive.",
                    applies_to=[
                        "Resource::" + account.format(service="events") + f"rule/{subscriptions.rule_arns_suffix}",
                        "Resource::" + account.format(service="events") + f"replay/{subscriptions.replay_arns_suffix}",
                    ],
                )
            )
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="events:TestEventPattern (checking a partner's pattern against a sample event) reads "
                    "no resource and supports no resource-level permission, so IAM requires its resource to be '*'; "
                    "the statement grants that one action alone.",
                    applies_to=["Resource::*"],
                )
            )
        if suppressions:
            NagSuppressions.add_resource_suppressions(role, suppressions, apply_to_children=True)

    @staticmethod
    def _suppress(role: iam.Role, spec: topology.Function, storage: Storage, stage: str) -> None:
        """IAM5 (wildcard) suppressions, each narrowed to the exact finding it explains."""

        def arn_of(construct) -> str:
            return f"<{Stack.of(construct).resolve(construct.node.default_child.logical_id)}.Arn>"

        suppressions = [
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="X-Ray tracing (Tracing.ACTIVE): xray:PutTraceSegments and xray:PutTelemetryRecords "
                "do not support resource-level permissions, so their resource is '*'.",
                applies_to=["Resource::*"],
            )
        ]
        indexed = [storage.tables[name] for name in spec.tables if topology.TABLES[name].indexes]
        if indexed:
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="CDK's DynamoDB grants extend to the table's own global secondary indexes "
                    "(<table arn>/index/*, which Query on by_tenant / by_connection needs); the wildcard never "
                    "reaches another table.",
                    applies_to=[f"Resource::{arn_of(table)}/index/*" for table in indexed],
                )
            )
        if spec.buckets:
            accesses = set(spec.buckets.values())
            actions = (["Action::s3:Abort*"] if accesses & {"write", "readwrite"} else []) + (
                ["Action::s3:GetObject*", "Action::s3:GetBucket*", "Action::s3:List*"]
                if accesses & {"read", "readwrite"}
                else []
            )
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="S3 object access is granted on <bucket arn>/* of the topology bucket (object keys are "
                    "per-request ids); the action wildcards are CDK's grant_put (s3:Abort*) and grant_read "
                    "(s3:GetObject*, s3:GetBucket*, s3:List*) sets, on that bucket only.",
                    applies_to=[f"Resource::{arn_of(storage.buckets[name])}/*" for name in spec.buckets] + actions,
                )
            )
        if spec.secrets:
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="Connection credentials are created at runtime, one secret per connection, under the "
                    "stage's prefix (switchboard/<stage>/connections/); the wildcard is that prefix only.",
                    applies_to=[
                        (
                            "Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:"
                            f"secret:{topology.secrets_prefix(stage)}*"
                        )
                    ],
                )
            )
        if spec.outbound_secrets:
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="Outbound (send API) credentials are stored at runtime, one secret per connection, under "
                    "the stage's own outbound prefix (switchboard/<stage>/outbound/); the wildcard is that prefix "
                    "only, and ingest has no access to it.",
                    applies_to=[
                        (
                            "Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:"
                            f"secret:{topology.outbound_secrets_prefix(stage)}*"
                        )
                    ],
                )
            )
        NagSuppressions.add_resource_suppressions(role, suppressions, apply_to_children=True)
