"""Each event's delivery to a subscription, its attempts, ordered waiting lines and endpoint
health (table `subscriptions`; the item layout is in store.py's docstring)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from pydantic import BaseModel

from switchboard_core.subscriptions.models import Attempt, Delivery, DeliveryState
from switchboard_core.subscriptions.store import subscription_pk

ModelT = TypeVar("ModelT", bound=BaseModel)
KEY_FIELDS = ("pk", "sk", "expires_at")


def event_sk(event_id: str) -> str:
    return f"EVENT#{event_id}"


def attempt_sk(attempt: Attempt) -> str:
    return f"ATTEMPT#{attempt.at.isoformat()}#{attempt.event_id}#{attempt.attempt:03d}"


def from_item(model: type[ModelT], item: dict[str, Any]) -> ModelT:
    data = {k: v for k, v in item.items() if k not in KEY_FIELDS}
    for key, value in data.items():  # DynamoDB gives numbers back as Decimal
        if type(value).__name__ == "Decimal":
            data[key] = int(value) if value == int(value) else float(value)
        elif isinstance(value, set):
            data[key] = sorted(value)
    return model.model_validate(data)


class DeliveryLog:
    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, subscription_id: str, event_id: str) -> Delivery | None:
        item = self._table.get_item(
            Key={"pk": subscription_pk(subscription_id), "sk": event_sk(event_id)}, ConsistentRead=True
        ).get("Item")
        return from_item(Delivery, item) if item else None

    def attempts(
        self,
        subscription_id: str,
        *,
        limit: int = 50,
        start_key: dict[str, Any] | None = None,
        event_id: str | None = None,
    ) -> tuple[list[Attempt], dict[str, Any] | None]:
        """A page of attempts, newest first (only `event_id`'s when given), and the key to continue from."""
        from boto3.dynamodb.conditions import Attr, Key

        partition = Key("pk").eq(subscription_pk(subscription_id))
        request: dict[str, Any] = {
            "KeyConditionExpression": partition & Key("sk").begins_with("ATTEMPT#"),
            "ScanIndexForward": False,
        }
        if event_id is not None:
            request["FilterExpression"] = Attr("event_id").eq(event_id)
        if start_key:
            request["ExclusiveStartKey"] = start_key
        found: list[Attempt] = []
        while True:
            request["Limit"] = limit - len(found)
            page = self._table.query(**request)
            found.extend(from_item(Attempt, item) for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last or len(found) >= limit:
                return found, last
            request["ExclusiveStartKey"] = last

    def in_state(self, subscription_id: str, state: DeliveryState) -> Iterator[Delivery]:
        """Every delivery of the subscription in `state` (held ones to re-send on resume, failed ones...)."""
        from boto3.dynamodb.conditions import Attr, Key

        request: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(subscription_pk(subscription_id)) & Key("sk").begins_with("EVENT#"),
            "FilterExpression": Attr("state").eq(state.value),
        }
        while True:
            page = self._table.query(**request)
            for item in page.get("Items", []):
                yield from_item(Delivery, item)
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
