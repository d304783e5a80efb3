"""The embedded AWS: moto in server mode on loopback, and the resources of the topology.

`create_resources` walks infra/topology.py -- the same declarations the CDK app
builds from -- so the local hub has exactly the tables, bucket, bus, rules and
queues a deployment has.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from secrets import token_urlsafe
from typing import Any

from infra import topology

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


def patch_moto_event_delivery() -> None:
    """Two fixes to moto 5.2.5's EventBridge -> target delivery (both worth offering upstream):

    - it re-parses eight jsonpath expressions for every event it delivers (~9 ms
      each time, measured in design.md); parsed expressions are immutable, so the
      parser is cached;
    - its default target template drops the envelope's `account` field, which AWS
      delivers and consumers' envelope models (Powertools' EventBridgeModel) require.
    """
    import jsonpath_ng.ext
    from moto.events.utils import EventTemplateParser

    if not hasattr(jsonpath_ng.ext.parse, "cache_info"):
        jsonpath_ng.ext.parse = lru_cache(maxsize=256)(jsonpath_ng.ext.parse)
    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
            '"version": "0",', '"version": "0", "account": "<account>",'
        )


def aws_environment(endpoint: str) -> dict[str, str]:
    """What every boto3 client in this process needs to talk to the emulator."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


class Emulator:
    """moto's threaded server on 127.0.0.1 (port 0 picks a free one)."""

    def __init__(self, port: int = 0) -> None:
        from moto.server import ThreadedMotoServer

        patch_moto_event_delivery()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.endpoint = ""

    def start(self) -> str:
        # werkzeug's per-request access lines (moto's and the gateway's) are noise;
        # the gateway logs its own one-line summary per request.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        # moto keeps its state per process: start from empty, as a new account would.
        reset = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310 - loopback
        urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310 - loopback
        os.environ.update(aws_environment(self.endpoint))
        from switchboard_core import aws

        aws.reset_clients()
        return self.endpoint

    def stop(self) -> None:
        self._server.stop()


@dataclass(frozen=True)
class LocalNames:
    """Physical names of the topology's resources for one local stage."""

    stage: str

    def table(self, name: str) -> str:
        return f"switchboard-{self.stage}-{name.replace('_', '-')}"

    def bucket(self, name: str) -> str:
        return f"switchboard-{self.stage}-{name}"

    @property
    def bus(self) -> str:
        return f"switchboard-{self.stage}"

    def secret(self, name: str) -> str:
        return f"switchboard/{self.stage}/{name.replace('_', '-')}"

    def queue(self, name: str) -> str:
        return f"switchboard-{self.stage}-{name}"

    def dead_letter_queue(self, name: str) -> str:
        return f"switchboard-{self.stage}-{name}-dlq"

    def rule(self, name: str) -> str:
        return f"switchboard-{self.stage}-{name}"

    def mapping(self) -> dict[str, str]:
        """The `names` argument topology.function_environment expects."""
        names = {f"table:{t}": self.table(t) for t in topology.TABLES}
        names.update({f"bucket:{b}": self.bucket(b) for b in topology.BUCKETS})
        names.update({f"secret:{s}": self.secret(s) for s in topology.SECRETS})
        names["bus"] = self.bus
        names["rule_prefix"] = self.rule(topology.SUBSCRIPTION_RULE_INFIX)
        delivery_queue = self.queue(topology.DELIVERY_QUEUE)
        names[f"queue_url:{topology.DELIVERY_QUEUE}"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{delivery_queue}"
        names[f"queue_arn:{topology.DELIVERY_QUEUE}"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{delivery_queue}"
        return names


def create_table(dynamodb: Any, physical_name: str, table: topology.Table) -> None:
    key_names = {table.partition_key, *([table.sort_key] if table.sort_key else [])}
    for index in table.indexes:
        key_names.update(k for k in (index.partition_key, index.sort_key) if k)
    kwargs: dict[str, Any] = {
        "TableName": physical_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": k, "AttributeType": "S"} for k in sorted(key_names)],
        "KeySchema": key_schema(table.partition_key, table.sort_key),
    }
    if table.indexes:
        kwargs["GlobalSecondaryIndexes"] = [
            {
                "IndexName": i.name,
                "KeySchema": key_schema(i.partition_key, i.sort_key),
                "Projection": {"ProjectionType": "ALL"},
            }
            for i in table.indexes
        ]
    dynamodb.create_table(**kwargs)
    if table.ttl_attribute:
        dynamodb.update_time_to_live(
            TableName=physical_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
        )


def key_schema(partition_key: str, sort_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    if sort_key:
        schema.append({"AttributeName": sort_key, "KeyType": "RANGE"})
    return schema


@dataclass(frozen=True)
class ConsumerQueue:
    function: str
    queue_url: str
    queue_arn: str
    dead_letter_url: str
    batch_size: int


def create_resources(names: LocalNames) -> list[ConsumerQueue]:
    """Create every resource of the topology in the emulator; return the consumer queues."""
    from switchboard_core import aws

    dynamodb, s3, events, sqs = (aws.client(s) for s in ("dynamodb", "s3", "events", "sqs"))
    for table in topology.TABLES.values():
        create_table(dynamodb, names.table(table.name), table)
    for bucket in topology.BUCKETS.values():
        s3.create_bucket(Bucket=names.bucket(bucket.name))
    events.create_event_bus(Name=names.bus)
    for secret in topology.SECRETS:  # a fresh random value, as the CDK app generates one
        aws.client("secretsmanager").create_secret(Name=names.secret(secret), SecretString=token_urlsafe(48))

    queues: list[ConsumerQueue] = []
    for function in topology.consumers():
        consumer = function.consumer
        assert consumer is not None
        dlq_url = sqs.create_queue(QueueName=names.dead_letter_queue(consumer.queue))["QueueUrl"]
        dlq_arn = queue_arn(sqs, dlq_url)
        queue_url = sqs.create_queue(
            QueueName=names.queue(consumer.queue),
            Attributes={
                "VisibilityTimeout": str(consumer.visibility_timeout_seconds),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(consumer.max_receive_count)}
                ),
            },
        )["QueueUrl"]
        arn = queue_arn(sqs, queue_url)
        if consumer.event_pattern is not None:  # else rules made at run time target the queue
            rule = names.rule(consumer.queue)
            events.put_rule(Name=rule, EventBusName=names.bus, EventPattern=json.dumps(consumer.event_pattern))
            events.put_targets(Rule=rule, EventBusName=names.bus, Targets=[{"Id": "queue", "Arn": arn}])
        queues.append(ConsumerQueue(function.name, queue_url, arn, dlq_url, consumer.batch_size))
    return queues


def queue_arn(sqs: Any, queue_url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
