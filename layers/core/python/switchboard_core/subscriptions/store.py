"""Subscriptions in DynamoDB (table `subscriptions`).

One table holds a subscription (pk SUB#<id>, sk META), each event's delivery state
(sk EVENT#<event id>), each attempt (sk ATTEMPT#<time>#<event id>#<n>, with a TTL), the
ordered subscriptions' waiting lines (sk ORDER#<order key>#<event time>#<event id>) and
each tenant's endpoints' health (pk ENDPOINT#<tenant> <scheme://host:port>, sk HEALTH). Only
the META item has `tenant`, so the by_tenant index lists subscriptions and nothing else.

The pattern is stored as JSON text: DynamoDB would turn its numbers into Decimals and
cannot hold an empty string key.
"""

from __future__ import annotations

import json
from typing import Any

from switchboard_core.dynamo import conditional_write
from switchboard_core.subscriptions.models import Subscription

META = "META"


def subscription_pk(subscription_id: str) -> str:
    return f"SUB#{subscription_id}"


def to_item(subscription: Subscription) -> dict[str, Any]:
    item = subscription.model_dump(mode="json", exclude_none=True)
    item["event_pattern"] = json.dumps(subscription.event_pattern, separators=(",", ":"))
    item.update(pk=subscription_pk(subscription.id), sk=META)
    return item


def from_item(item: dict[str, Any]) -> Subscription:
    data = {k: v for k, v in item.items() if k not in ("pk", "sk")}
    data["event_pattern"] = json.loads(data["event_pattern"])
    for number in ("version", "secret_version"):
        if number in data:
            data[number] = int(data[number])
    return Subscription.model_validate(data)


class SubscriptionStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def create(self, subscription: Subscription) -> None:
        applied = conditional_write(
            self._table.put_item, Item=to_item(subscription), ConditionExpression="attribute_not_exists(pk)"
        )
        if not applied:  # ids are random: a collision means a bug, not a retry
            raise RuntimeError(f"subscription {subscription.id} already exists")

    def get(self, subscription_id: str) -> Subscription | None:
        item = self._table.get_item(Key={"pk": subscription_pk(subscription_id), "sk": META}, ConsistentRead=True)
        return from_item(item["Item"]) if "Item" in item else None

    def save(self, subscription: Subscription, expected_version: int) -> bool:
        """Replace the stored subscription if it is still at `expected_version` (False when it
        changed meanwhile, or was deleted); `subscription.version` must be the next version."""
        return conditional_write(
            self._table.put_item,
            Item=to_item(subscription),
            ConditionExpression="attribute_exists(pk) AND version = :expected",
            ExpressionAttributeValues={":expected": expected_version},
        )

    def delete(self, subscription_id: str) -> bool:
        return conditional_write(
            self._table.delete_item,
            Key={"pk": subscription_pk(subscription_id), "sk": META},
            ConditionExpression="attribute_exists(pk)",
        )

    def list_for_tenant(
        self, tenant: str, *, owner: str | None = None, limit: int = 50, start_key: dict[str, Any] | None = None
    ) -> tuple[list[Subscription], dict[str, Any] | None]:
        """A page of a tenant's subscriptions, oldest first (only `owner`'s when given), and the
        key to continue from (None on the last page)."""
        from boto3.dynamodb.conditions import Attr, Key

        request: dict[str, Any] = {
            "IndexName": "by_tenant",
            "KeyConditionExpression": Key("tenant").eq(tenant),
            "Limit": limit,
        }
        if owner is not None:
            request["FilterExpression"] = Attr("owner").eq(owner)
        if start_key:
            request["ExclusiveStartKey"] = start_key
        found: list[Subscription] = []
        while True:  # a filtered page may come back short: keep reading until it is full or done
            request["Limit"] = limit - len(found)
            page = self._table.query(**request)
            found.extend(from_item(item) for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last or len(found) >= limit:
                return found, last
            request["ExclusiveStartKey"] = last
