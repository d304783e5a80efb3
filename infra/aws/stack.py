"""Switchboard-<stage>: the whole topology in one stack, one construct per capability."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from infra import topology
from infra.aws.components.alarms import Alarms
from infra.aws.components.api import HttpApi
from infra.aws.components.bus import Bus
from infra.aws.components.campaigns import Campaigns
from infra.aws.components.consumers import Consumers
from infra.aws.components.functions import Functions
from infra.aws.components.schedules import Schedules
from infra.aws.components.secrets import AppSecrets
from infra.aws.components.storage import Storage
from infra.aws.components.subscriptions import Subscriptions
from infra.aws.config import StageConfig


class SwitchboardStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Switchboard webhook integration hub ({config.stage})",
            **kwargs,
        )
        self.config = config
        Tags.of(self).add("project", topology.SERVICE)
        Tags.of(self).add("stage", config.stage)

        self.storage = Storage(self, "Storage", config=config)
        self.bus = Bus(self, "Bus", config=config)
        self.secrets = AppSecrets(self, "Secrets", config=config)
        self.subscriptions = Subscriptions(self, "Subscriptions", config=config, bus=self.bus)
        self.campaigns = Campaigns(self, "Campaigns", config=config, bus=self.bus)
        self.functions = Functions(
            self,
            "Functions",
            config=config,
            storage=self.storage,
            bus=self.bus,
            secrets=self.secrets,
            subscriptions=self.subscriptions,
            campaigns=self.campaigns,
        )
        self.api = HttpApi(self, "Api", config=config, functions=self.functions)
        if config.hold_music_url:  # what a live caller hears while held (ingest's Twilio Voice answer)
            self.functions.functions["ingest"].add_environment(topology.HOLD_MUSIC_ENV, config.hold_music_url)
            self.functions.environments["ingest"][topology.HOLD_MUSIC_ENV] = config.hold_music_url
        for spec in topology.FUNCTIONS.values():
            if spec.public_url:  # the URLs it gives providers to call back (Twilio's <Dial action>)
                self.functions.functions[spec.name].add_environment(topology.PUBLIC_BASE_URL_ENV, self.api.url)
                self.functions.environments[spec.name][topology.PUBLIC_BASE_URL_ENV] = self.api.url
        self.consumers = Consumers(
            self,
            "Consumers",
            config=config,
            bus=self.bus,
            functions=self.functions,
            subscriptions=self.subscriptions,
            campaigns=self.campaigns,
        )
        self.schedules = Schedules(self, "Schedules", config=config, functions=self.functions)
        self.alarms = Alarms(
            self,
            "Alarms",
            config=config,
            functions=self.functions,
            consumers=self.consumers,
            subscriptions=self.subscriptions,
            campaigns=self.campaigns,
            bus=self.bus,
            api=self.api,
        )

        CfnOutput(self, "ApiUrl", value=self.api.url, description="Base URL of the HTTP API")
        CfnOutput(self, "EventBusName", value=self.bus.name, description="Custom EventBridge bus")
        for name, table in self.storage.tables.items():
            CfnOutput(self, f"{_pascal(name)}TableName", value=table.table_name, description=f"DynamoDB table {name}")
        for name, bucket in self.storage.buckets.items():
            CfnOutput(self, f"{_pascal(name)}BucketName", value=bucket.bucket_name, description=f"S3 bucket {name}")
        CfnOutput(self, "AlarmTopicArn", value=self.alarms.topic.topic_arn, description="SNS topic alarms notify")
        CfnOutput(self, "ApiAccessLogGroup", value=self.api.access_logs.log_group_name, description="API access logs")
        CfnOutput(self, "EventArchiveName", value=self.bus.archive.archive_name, description="Archive for replays")
        for name, consumer in self.consumers.consumers.items():
            CfnOutput(self, f"{_pascal(name)}QueueArn", value=consumer.queue.queue_arn, description=f"{name} queue")
            CfnOutput(
                self, f"{_pascal(name)}DeadLetterQueueArn", value=consumer.dlq.queue_arn, description=f"{name} DLQ"
            )
        delivery = _pascal(self.subscriptions.function.name)
        CfnOutput(self, f"{delivery}QueueArn", value=self.subscriptions.queue.queue_arn, description="deliveries queue")
        CfnOutput(
            self,
            f"{delivery}DeadLetterQueueArn",
            value=self.subscriptions.dlq.queue_arn,
            description="deliveries DLQ",
        )
        CfnOutput(
            self,
            "CampaignRulePrefix",
            value=self.campaigns.rule_prefix,
            description="Names of published campaigns' trigger rules start with this",
        )
        CfnOutput(
            self,
            "CampaignScheduleGroup",
            value=self.campaigns.schedule_group.schedule_group_name,
            description="EventBridge Scheduler group of campaign runs' waits",
        )
        CfnOutput(
            self,
            "SubscriptionRulePrefix",
            value=self.subscriptions.rule_prefix,
            description="Names of partner subscriptions' bus rules start with this",
        )


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
