"""CloudWatch alarms and the SNS topic they notify.

Every alarm but two fires on the first bad datapoint (threshold: more than zero in a
period): in a webhook hub an error, a throttle or a dead-lettered event each means a
provider's event is not where it should be. The exceptions are the deliveries and campaigns
queues' backlogs, which a burst may build for a few minutes (see DELIVERY_BACKLOG_PERIODS).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as sns_subscriptions
from constructs import Construct

from infra import topology
from infra.aws.components.api import HttpApi
from infra.aws.components.bus import Bus
from infra.aws.components.campaigns import Campaigns
from infra.aws.components.consumers import Consumers
from infra.aws.components.functions import Functions, construct_id
from infra.aws.components.subscriptions import Subscriptions
from infra.aws.config import StageConfig

PERIOD = Duration.minutes(5)
# Emitted by publishing functions (ingest) through Powertools Metrics when PutEvents fails
# for any entry. Powertools adds its service name as the `service` dimension to every
# metric, so the alarm selects exactly {service: switchboard-<function>}.
PUBLISH_FAILURES_METRIC = "PublishFailures"
# Whether the delivery function is consuming its queue. Not the age of the oldest message:
# deliveries legitimately wait in that queue for hours (a retry up to 10 h away, an ordered
# subscription's events behind a retrying head for up to 12 h), invisible meanwhile. Visible
# messages are the ones due now, which a consuming function takes within seconds; some visible
# in every minute of this many 5-minute periods means it is not consuming (or far behind).
DELIVERY_BACKLOG_PERIODS = 3
# The campaigns queue's backlog, the same way: a runs request of 1000 contacts is 1000 messages at
# once, and a step's provider may make a message wait out a retry (invisible, so never counted).
BACKLOG_PERIODS = DELIVERY_BACKLOG_PERIODS


class Alarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id_: str,
        *,
        config: StageConfig,
        functions: Functions,
        consumers: Consumers,
        subscriptions: Subscriptions,
        campaigns: Campaigns,
        bus: Bus,
        api: HttpApi,
    ) -> None:
        super().__init__(scope, construct_id_)
        self._prefix = config.prefix
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        # CloudWatch cannot publish to a topic encrypted with the AWS-managed aws/sns key,
        # so the topic gets its own key that CloudWatch may use.
        self.key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"Switchboard {config.stage} alarm notifications",
            enable_key_rotation=True,
            removal_policy=config.removal_policy,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" means this key
            )
        )
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"Switchboard {config.stage} alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        if config.alarm_email:
            self.topic.add_subscription(sns_subscriptions.EmailSubscription(config.alarm_email))
        self._action = actions.SnsAction(self.topic)

        for name, function in functions.functions.items():
            cid = construct_id(name)
            self._alarm(
                f"{cid}Errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
                f"{name} function: invocations ended in an error (see its log group and X-Ray traces).",
            )
            self._alarm(
                f"{cid}Throttles",
                function.metric_throttles(period=PERIOD, statistic="Sum"),
                f"{name} function: invocations were throttled (account concurrency exhausted).",
            )

        for name, consumer in consumers.consumers.items():
            cid = construct_id(name)
            self._alarm(
                f"{cid}DeadLetters",
                consumer.dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                f"{name} consumer: events are waiting in the dead-letter queue; fix the cause, then redrive.",
            )
            rule_dimensions = {"EventBusName": bus.name, "RuleName": consumer.rule.rule_name}
            self._alarm(
                f"{cid}RuleFailedInvocations",
                cloudwatch.Metric(
                    namespace="AWS/Events",
                    metric_name="FailedInvocations",
                    dimensions_map=rule_dimensions,
                    period=PERIOD,
                    statistic="Sum",
                ),
                f"{name} rule: EventBridge gave up delivering events to the queue (they go to the DLQ).",
            )
            self._alarm(
                f"{cid}RuleDlqFailures",
                cloudwatch.Metric(
                    namespace="AWS/Events",
                    metric_name="InvocationsFailedToBeSentToDlq",
                    dimensions_map=rule_dimensions,
                    period=PERIOD,
                    statistic="Sum",
                ),
                f"{name} rule: undeliverable events could not even be dead-lettered - they are lost.",
            )

        # The delivery queue: its DLQ like every consumer's, and a queue that is not being consumed.
        # (The delivery function's errors and throttles are among the functions' alarms above;
        # its rules are created at run time, one per subscription, so they have no rule alarms.)
        delivery = construct_id(subscriptions.function.name)
        self._alarm(
            f"{delivery}DeadLetters",
            subscriptions.dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            "delivery: messages reached the deliveries DLQ (the function crashed on them 50 times); fix the cause, "
            "then redrive them to the deliveries queue.",
        )
        self._alarm(
            f"{delivery}QueueBacklog",
            subscriptions.queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Minimum"),
            "delivery: deliveries that are due have waited in the deliveries queue for 15 minutes; the delivery "
            "function is not consuming it (event source mapping disabled, throttled or failing) or is far behind.",
            evaluation_periods=DELIVERY_BACKLOG_PERIODS,
        )

        # The campaigns queue: its DLQ, rule and function errors are among the consumers' and functions'
        # alarms above; here, a queue that is not being consumed (runs stall between steps), and waits
        # EventBridge Scheduler gave up sending (a run then waits forever).
        campaign = construct_id(campaigns.function.name)
        self._alarm(
            f"{campaign}QueueBacklog",
            campaigns.queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Minimum"),
            "campaigns: work that is due (triggers, start and stop requests, replies, timers) has waited in the "
            "campaigns queue for 15 minutes; the campaigns function is not consuming it (event source mapping "
            "disabled, throttled or failing) or is far behind a large runs request.",
            evaluation_periods=BACKLOG_PERIODS,
        )
        self._alarm(
            f"{campaign}TimersDropped",
            campaigns.schedule_group.metric_dropped(period=PERIOD, statistic="Sum"),
            "campaigns: EventBridge Scheduler gave up sending a run's timer to the campaigns queue (24 h of "
            "retries: queue policy, scheduler role or queue broken); that run waits until it is stopped.",
        )

        for spec in topology.FUNCTIONS.values():
            if spec.publishes:
                self._alarm(
                    f"{construct_id(spec.name)}PublishFailures",
                    cloudwatch.Metric(
                        namespace=topology.METRICS_NAMESPACE,
                        metric_name=PUBLISH_FAILURES_METRIC,
                        dimensions_map={"service": functions.service_name(spec.name)},
                        period=PERIOD,
                        statistic="Sum",
                    ),
                    f"{spec.name} function: PutEvents to the bus failed; the provider got an error and will retry.",
                )

        self._alarm(
            "Api5xx",
            api.api.metric_server_error(period=PERIOD, statistic="Sum"),
            "HTTP API answered 5xx (integration errors or timeouts; see the API access logs).",
        )

    def _alarm(
        self, construct_id_: str, metric: cloudwatch.IMetric, description: str, evaluation_periods: int = 1
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id_,
            alarm_name=f"{self._prefix}-{_kebab(construct_id_)}",
            alarm_description=description,
            metric=metric,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=evaluation_periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms[construct_id_] = alarm
        return alarm


def _kebab(camel: str) -> str:
    out = []
    for i, char in enumerate(camel):
        if char.isupper() and i and not camel[i - 1].isupper():
            out.append("-")
        out.append(char.lower())
    return "".join(out)
