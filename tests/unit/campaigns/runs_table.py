"""The `campaign_runs` table as the plan lays it out, created inside moto for the runner's
tests (the topology entry belongs to the infra work; these tests must not depend on it)."""

from __future__ import annotations

from typing import Any

from switchboard_core import aws

RUNS_TABLE = "test-campaign-runs"


def create_runs_table(name: str = RUNS_TABLE) -> Any:
    client = aws.client("dynamodb")
    attributes = ["pk", "sk", "campaign", "started_at", "contact_key"]
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attributes],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": key, "KeyType": "HASH"},
                    {"AttributeName": "started_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, key in (("by_campaign", "campaign"), ("by_contact", "contact_key"))
        ],
    )
    return aws.resource("dynamodb").Table(name)
