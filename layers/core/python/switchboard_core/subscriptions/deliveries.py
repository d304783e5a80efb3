"""Each event's delivery to a subscription, its attempts, ordered waiting lines and endpoint
health (table `subscriptions`; the item layout is in store.py's docstring)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import AwareDatetime, BaseModel, ConfigDict

from switchboard_core.dynamo import conditional_answer, conditional_write
from switchboard_core.subscriptions.models import Attempt, Delivery, DeliveryState
from switchboard_core.subscriptions.store import subscription_pk

ModelT = TypeVar("ModelT", bound=BaseModel)
KEY_FIELDS = ("pk", "sk", "expires_at")
# A delivery's record lives as long as the event log keeps its event (30 days after its last
# change): a retry, replay or resume needs the event, so a record outliving it could not be used.
DELIVERY_RECORD_TTL_SECONDS = 30 * 24 * 3600


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


# --- the write side: used by the delivery function only ---

HEALTH = "HEALTH"
HEALTH_TTL_SECONDS = 30 * 24 * 3600  # an endpoint nobody sends to any more is forgotten


def order_prefix(key: str) -> str:
    # Percent-encoded, so a key holding '#' cannot reach into another key's line.
    return f"ORDER#{quote(key, safe=':')}#"


def order_sk(key: str, event_time: datetime, event_id: str) -> str:
    stamp = event_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # one width: sorts as time
    return f"{order_prefix(key)}{stamp}#{event_id}"


def endpoint_pk(endpoint: str) -> str:
    return f"ENDPOINT#{endpoint}"


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a delivery: the delivery (held by this caller) or, when another
    caller holds it, when that caller's lease ends."""

    delivery: Delivery | None
    held_until: datetime | None = None


@dataclass(frozen=True)
class LinePlace:
    """One event waiting in an ordered subscription's line (item ORDER#<key>#<time>#<event id>)."""

    event_id: str
    event_time: datetime
    order_key: str
    joined_at: datetime
    receipt: str | None  # the waiting message's SQS receipt handle: the head wakes it when done


class EndpointHealth(BaseModel):
    """An endpoint's circuit breaker (item ENDPOINT#<tenant> <scheme://host:port> / HEALTH)."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str
    consecutive_failures: int = 0
    open_until: AwareDatetime | None = None
    # Set while a half-open breaker's probe is out (open_until is then the probe's window; this
    # is the end of the cool-down the probe took over from): waiting copies look again once the
    # probe's send is over rather than at the window's end.
    probe_started_at: AwareDatetime | None = None
    last_success_at: AwareDatetime | None = None
    last_failure_at: AwareDatetime | None = None
    last_error: str | None = None


@dataclass
class _Update:
    """One UpdateExpression, every attribute name aliased (state, trigger... are reserved words)."""

    sets: dict[str, Any] = field(default_factory=dict)
    set_if_absent: dict[str, Any] = field(default_factory=dict)
    removes: tuple[str, ...] = ()
    adds: dict[str, Any] = field(default_factory=dict)

    def request(self) -> dict[str, Any]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}

        def alias(name: str, value: Any = None, *, with_value: bool = True) -> tuple[str, str]:
            names[f"#{name}"] = name
            if with_value:
                values[f":{name}"] = value
            return f"#{name}", f":{name}"

        clauses = [" = ".join(alias(k, v)) for k, v in self.sets.items()]
        for key, value in self.set_if_absent.items():
            name, placeholder = alias(key, value)
            clauses.append(f"{name} = if_not_exists({name}, {placeholder})")
        expression = f"SET {', '.join(clauses)}" if clauses else ""
        if self.adds:
            expression += " ADD " + ", ".join(" ".join(alias(k, v)) for k, v in self.adds.items())
        if self.removes:
            expression += " REMOVE " + ", ".join(alias(k, with_value=False)[0] for k in self.removes)
        request: dict[str, Any] = {"UpdateExpression": expression.strip(), "ExpressionAttributeNames": names}
        if values:
            request["ExpressionAttributeValues"] = values
        return request


LEASE = ("lease_until", "lease_owner")


class DeliveryWriter(DeliveryLog):
    """The delivery log as the delivery function writes it: claims (a lease, so two copies of
    one queue message never send at once), states, attempts, ordered lines and endpoint health."""

    def _update(
        self,
        key: dict[str, str],
        update: _Update,
        *,
        condition: str | None = None,
        condition_values: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Apply `update` (under `condition`); the item as it is now, or None when the condition failed."""
        request = {"Key": key, "ReturnValues": "ALL_NEW", **update.request()}
        if condition:
            request["ConditionExpression"] = condition
            request.setdefault("ExpressionAttributeValues", {}).update(condition_values or {})
        answer = conditional_answer(self._table.update_item, **request)
        return None if answer is None else dict(answer.get("Attributes", {}))

    @staticmethod
    def _event_key(subscription_id: str, event_id: str) -> dict[str, str]:
        return {"pk": subscription_pk(subscription_id), "sk": event_sk(event_id)}

    def claim(
        self,
        subscription_id: str,
        event_id: str,
        *,
        owner: str,
        now: datetime,
        lease_seconds: float,
        event_type: str,
        event_time: datetime,
        order_key: str | None,
    ) -> Claim:
        """Hold the event's delivery for `lease_seconds` (creating it, pending, on first sight).

        `owner` is this turn's own token: when AWS applied the write but its answer was lost,
        botocore's retry meets our own lease, which the condition (and the read-back, when the
        retries ran out before an answer) recognise, instead of waiting the lease out."""
        first_sight = {
            "subscription": subscription_id,
            "event_id": event_id,
            "state": DeliveryState.PENDING.value,
            "attempts": 0,
            "trigger_attempts": 0,
            "event_type": event_type,
            "event_time": event_time.isoformat(),
            "updated_at": now.isoformat(),
            "expires_at": int(now.timestamp()) + DELIVERY_RECORD_TTL_SECONDS,
        }
        if order_key is not None:
            first_sight["order_key"] = order_key
        update = _Update(
            sets={"lease_until": int(now.timestamp() + lease_seconds), "lease_owner": owner},
            set_if_absent=first_sight,
        )
        item = self._update(
            self._event_key(subscription_id, event_id),
            update,
            condition="attribute_not_exists(#lease_until) OR #lease_until < :now_epoch OR #lease_owner = :owner",
            condition_values={":now_epoch": int(now.timestamp()), ":owner": owner},
        )
        if item is not None:
            return Claim(from_item(Delivery, item))
        current = self._table.get_item(Key=self._event_key(subscription_id, event_id), ConsistentRead=True)
        found = current.get("Item", {})
        if found.get("lease_owner") == owner:  # ours: applied, its answer lost
            return Claim(from_item(Delivery, found))
        until = int(found.get("lease_until", now.timestamp()))
        return Claim(None, held_until=datetime.fromtimestamp(until, UTC))

    def release(self, subscription_id: str, event_id: str, owner: str) -> bool:
        """Give the lease back (a no-op when a state write already did, or another holds it)."""
        return conditional_write(
            self._table.update_item,
            Key=self._event_key(subscription_id, event_id),
            UpdateExpression="REMOVE lease_until, lease_owner",
            ConditionExpression="lease_owner = :owner",
            ExpressionAttributeValues={":owner": owner},
        )

    def start_trigger(self, subscription_id: str, event_id: str, trigger: str, now: datetime) -> Delivery:
        """A new trigger (retry by hand, replay, resume) takes the delivery over: its own schedule."""
        item = self._update(
            self._event_key(subscription_id, event_id),
            _Update(
                sets={
                    "trigger": trigger,
                    "trigger_attempts": 0,
                    "state": DeliveryState.PENDING.value,
                    "updated_at": now.isoformat(),
                },
                adds={"triggers": {trigger}},
                removes=("next_attempt_at",),
            ),
        )
        assert item is not None  # unconditional
        return from_item(Delivery, item)

    def _settle(self, delivery: Delivery, sets: dict[str, Any], *, removes: tuple[str, ...] = (), **adds: Any) -> None:
        """Write the outcome of one turn and give the lease back."""
        sets = {
            "attempts": delivery.attempts,
            "trigger_attempts": delivery.trigger_attempts,
            "updated_at": delivery.updated_at.isoformat(),
            "expires_at": int(delivery.updated_at.timestamp()) + DELIVERY_RECORD_TTL_SECONDS,
            **sets,
        }
        for name in ("last_status_code", "last_error"):
            if name in sets and sets[name] is None:
                del sets[name]
                removes += (name,)
        self._update(
            self._event_key(delivery.subscription, delivery.event_id),
            _Update(sets=sets, removes=removes + LEASE, adds=adds),
        )

    def mark_delivered(self, delivery: Delivery, trigger: str, status_code: int) -> None:
        self._settle(
            delivery,
            {"state": DeliveryState.DELIVERED.value, "last_status_code": status_code, "last_error": None},
            removes=("next_attempt_at",),
            delivered_triggers={trigger},
        )

    def mark_retrying(
        self, delivery: Delivery, next_attempt_at: datetime, status_code: int | None, error: str | None
    ) -> None:
        self._settle(
            delivery,
            {
                "state": DeliveryState.RETRYING.value,
                "next_attempt_at": next_attempt_at.isoformat(),
                "last_status_code": status_code,
                "last_error": error,
            },
        )

    def mark_failed(self, delivery: Delivery, status_code: int | None, error: str | None) -> None:
        """Every scheduled attempt failed: kept (failed) for a retry by hand or a replay."""
        self._settle(
            delivery,
            {"state": DeliveryState.FAILED.value, "last_status_code": status_code, "last_error": error},
            removes=("next_attempt_at",),
        )

    def mark_pending(self, delivery: Delivery) -> None:
        """Back to pending (a held delivery whose subscription was resumed during its turn)."""
        self._settle(delivery, {"state": DeliveryState.PENDING.value}, removes=("next_attempt_at",))

    def mark_held(self, delivery: Delivery) -> None:
        """Not sent: the subscription is paused or disabled. Resuming it sends held deliveries."""
        self._settle(delivery, {"state": DeliveryState.HELD.value}, removes=("next_attempt_at",))

    def record_attempt(self, attempt: Attempt, ttl_seconds: int) -> None:
        item = attempt.model_dump(mode="json", exclude_none=True)
        item.update(
            pk=subscription_pk(attempt.subscription),
            sk=attempt_sk(attempt),
            expires_at=int(attempt.at.timestamp()) + ttl_seconds,
        )
        self._table.put_item(Item=item)

    # --- ordered subscriptions: one waiting line per order key ---

    def join_line(
        self, subscription_id: str, key: str, event_time: datetime, event_id: str, now: datetime, ttl_seconds: int
    ) -> None:
        """Take the event's place in its line (once: a redelivered message keeps the place it had)."""
        conditional_write(
            self._table.put_item,
            Item={
                "pk": subscription_pk(subscription_id),
                "sk": order_sk(key, event_time, event_id),
                "event_id": event_id,
                "event_time": event_time.isoformat(),
                "order_key": key,
                "joined_at": now.isoformat(),
                "expires_at": int(now.timestamp()) + ttl_seconds,
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def line(self, subscription_id: str, key: str, limit: int = 2) -> list[LinePlace]:
        """The first `limit` events waiting in a line, oldest first."""
        from boto3.dynamodb.conditions import Key

        page = self._table.query(
            KeyConditionExpression=Key("pk").eq(subscription_pk(subscription_id))
            & Key("sk").begins_with(order_prefix(key)),
            Limit=limit,
            ConsistentRead=True,
        )
        return [
            LinePlace(
                event_id=item["event_id"],
                event_time=datetime.fromisoformat(item["event_time"]),
                order_key=item["order_key"],
                joined_at=datetime.fromisoformat(item["joined_at"]),
                receipt=item.get("receipt"),
            )
            for item in page.get("Items", [])
        ]

    def wait_in_line(self, subscription_id: str, place: LinePlace, receipt: str) -> None:
        """Note the waiting message's receipt handle, so whoever leaves the head can wake it."""
        conditional_write(
            self._table.update_item,
            Key={
                "pk": subscription_pk(subscription_id),
                "sk": order_sk(place.order_key, place.event_time, place.event_id),
            },
            UpdateExpression="SET receipt = :receipt",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":receipt": receipt},
        )

    def leave_line(self, subscription_id: str, key: str, event_time: datetime, event_id: str) -> None:
        self._table.delete_item(Key={"pk": subscription_pk(subscription_id), "sk": order_sk(key, event_time, event_id)})

    # --- endpoint health: the circuit breaker ---

    @staticmethod
    def _health_key(endpoint: str) -> dict[str, str]:
        return {"pk": endpoint_pk(endpoint), "sk": HEALTH}

    def health(self, endpoint: str) -> EndpointHealth:
        item = self._table.get_item(Key=self._health_key(endpoint), ConsistentRead=True).get("Item")
        return from_item(EndpointHealth, item) if item else EndpointHealth(endpoint=endpoint)

    def take_probe(self, endpoint: str, seen_open_until: datetime, probe_until: datetime) -> bool:
        """An open breaker whose cool-down ended lets one send through (half-open): the caller
        that moves open_until from what it saw to `probe_until` sends; the others keep waiting."""
        return conditional_write(
            self._table.update_item,
            Key=self._health_key(endpoint),
            UpdateExpression="SET open_until = :probe, probe_started_at = :seen",
            ConditionExpression="open_until = :seen OR (open_until = :probe AND probe_started_at = :seen)",
            ExpressionAttributeValues={":probe": probe_until.isoformat(), ":seen": seen_open_until.isoformat()},
        )

    def count_failure(self, endpoint: str, now: datetime, error: str) -> EndpointHealth:
        item = self._update(
            self._health_key(endpoint),
            _Update(
                sets={
                    "endpoint": endpoint,
                    "last_failure_at": now.isoformat(),
                    "last_error": error[:512],
                    "expires_at": int(now.timestamp()) + HEALTH_TTL_SECONDS,
                },
                adds={"consecutive_failures": 1},
            ),
        )
        assert item is not None  # unconditional
        return from_item(EndpointHealth, item)

    def open_breaker(self, endpoint: str, until: datetime) -> None:
        self._table.update_item(
            Key=self._health_key(endpoint),
            UpdateExpression="SET open_until = :until, endpoint = :endpoint REMOVE probe_started_at",
            ExpressionAttributeValues={":until": until.isoformat(), ":endpoint": endpoint},
        )

    def count_success(self, endpoint: str, now: datetime) -> None:
        """A delivered send closes the breaker and starts the failure count again."""
        self._update(
            self._health_key(endpoint),
            _Update(
                sets={
                    "endpoint": endpoint,
                    "consecutive_failures": 0,
                    "last_success_at": now.isoformat(),
                    "expires_at": int(now.timestamp()) + HEALTH_TTL_SECONDS,
                },
                removes=("open_until", "probe_started_at"),
            ),
        )
