"""Per-connection webhook counts by day (UTC), for the console's Connections page.

Table `connection_stats` (pk `connection`, sk `day`), written with the low-level client (ingest
shares its client; no Table resource to set up):

    <connection> / <YYYY-MM-DD>   ADD counters: `accepted`, `duplicates`, `rejected_<reason>`
    <connection> / latest         `last_received_at`: the newest accepted event's receive time

Who counts what, so that nothing is added to ingest's path for an accepted webhook:
* `accepted`: the event-log consumer, per canonical event it logs for the first time that came
  from a webhook (raw_ref set), one UpdateItem per connection and day per batch. A webhook
  carrying several items counts each of its events.
* `duplicates` and `rejected_<reason>`: ingest's handler, where it already records them, per
  request (a redelivery acknowledged without new events; a refusal with its HubError code).

Every item expires (`expires_at`) RETENTION after its day (the `latest` item after its time), so
`GET /admin/connections/{id}/stats` can look back at most RETENTION_DAYS. Counts are best-effort:
a failed counter write is logged by the caller and never fails the webhook or the batch.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

RETENTION_DAYS = 90
RETENTION = timedelta(days=RETENTION_DAYS)
LATEST = "latest"  # sorts after every date, so one query reads the days and this item
REJECTED_PREFIX = "rejected_"
REASON = re.compile(r"^[a-z0-9_]{1,64}$")  # HubError codes; anything else is not an attribute name


class DayCounts(BaseModel):
    date: date
    accepted: int = Field(default=0, description="events accepted from this connection's webhooks")
    duplicates: int = Field(default=0, description="redeliveries acknowledged without new events")
    rejected: dict[str, int] = Field(default_factory=dict, description="refused requests by reason (HubError code)")


class ConnectionStats(BaseModel):
    connection: str
    last_received_at: AwareDatetime | None = Field(
        description="when the newest accepted event arrived (null: none in the last 90 days)"
    )
    days: list[DayCounts] = Field(description="oldest first, one entry per day, zero-filled")


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _expiry(moment: datetime) -> str:
    return str(int((moment + RETENTION).timestamp()))


class StatsSettings(BaseModel):
    """Where the functions that count (ingest, event_log) and read (admin) find the table."""

    model_config = ConfigDict(extra="ignore")

    stats_table: str = Field(alias="TABLE_CONNECTION_STATS")


def store_from_environment() -> ConnectionStatsStore:
    """The store on the table the function's environment names, through the shared dynamodb client."""
    from switchboard_core import aws
    from switchboard_core.settings import load_settings

    return ConnectionStatsStore(aws.client("dynamodb"), load_settings(StatsSettings).stats_table)


class ConnectionStatsStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _add(self, connection: str, day: date, counters: dict[str, int]) -> None:
        names = {f"#c{i}": name for i, name in enumerate(counters)}
        values: dict[str, Any] = {f":c{i}": {"N": str(n)} for i, n in enumerate(counters.values())}
        expires = datetime.combine(day, datetime.min.time(), UTC) + timedelta(days=1)
        values[":expires"] = {"N": _expiry(expires)}
        self._client.update_item(
            TableName=self._table,
            Key={"connection": {"S": connection}, "day": {"S": day.isoformat()}},
            UpdateExpression="ADD "
            + ", ".join(f"#c{i} :c{i}" for i in range(len(counters)))
            + " SET expires_at = :expires",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def count_accepted(self, connection: str, day: date, events: int, newest: datetime) -> None:
        """`events` accepted on `day`; `newest` becomes last_received_at unless a later one is there."""
        from botocore.exceptions import ClientError

        self._add(connection, day, {"accepted": events})
        received = newest.astimezone(UTC).isoformat()
        try:
            # Batches finish out of order: only a later time replaces the one stored.
            self._client.update_item(
                TableName=self._table,
                Key={"connection": {"S": connection}, "day": {"S": LATEST}},
                UpdateExpression="SET last_received_at = :at, expires_at = :expires",
                ConditionExpression="attribute_not_exists(last_received_at) OR last_received_at < :at",
                ExpressionAttributeValues={":at": {"S": received}, ":expires": {"N": _expiry(newest)}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def count_duplicate(self, connection: str, at: datetime) -> None:
        self._add(connection, day_of(at), {"duplicates": 1})

    def count_rejection(self, connection: str, reason: str, at: datetime) -> None:
        if not REASON.match(reason):
            reason = "other"
        self._add(connection, day_of(at), {REJECTED_PREFIX + reason: 1})

    def read(self, connection: str, last_day: date, days: int) -> ConnectionStats:
        """`days` days ending with `last_day`, oldest first (one Query, its pages followed)."""
        first_day = last_day - timedelta(days=days - 1)
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#c = :c AND #d >= :first",
            "ExpressionAttributeNames": {"#c": "connection", "#d": "day"},
            "ExpressionAttributeValues": {":c": {"S": connection}, ":first": {"S": first_day.isoformat()}},
        }
        found: dict[str, dict[str, Any]] = {}
        while True:
            page = self._client.query(**request)
            for item in page.get("Items", []):
                found[item["day"]["S"]] = item
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        latest = found.pop(LATEST, {}).get("last_received_at", {}).get("S")
        counted = []
        for offset in range(days):
            day = first_day + timedelta(days=offset)
            item = found.get(day.isoformat(), {})
            counted.append(
                DayCounts(
                    date=day,
                    accepted=_number(item, "accepted"),
                    duplicates=_number(item, "duplicates"),
                    rejected={
                        name.removeprefix(REJECTED_PREFIX): _number(item, name)
                        for name in sorted(item)
                        if name.startswith(REJECTED_PREFIX)
                    },
                )
            )
        return ConnectionStats(
            connection=connection,
            last_received_at=datetime.fromisoformat(latest) if latest else None,
            days=counted,
        )


def _number(item: dict[str, Any], name: str) -> int:
    return int(item[name]["N"]) if name in item else 0


def accepted_by_day(events: list[Any]) -> dict[tuple[str, date], tuple[int, datetime]]:
    """(connection, day) -> (events, newest receive time) of webhook events (raw_ref set):
    what one batch of the event-log consumer adds."""
    counted: dict[tuple[str, date], tuple[int, datetime]] = {}
    for event in events:
        if event.raw_ref is None:
            continue
        key = (event.connection, day_of(event.received_at))
        count, newest = counted.get(key, (0, event.received_at))
        counted[key] = (count + 1, max(newest, event.received_at))
    return counted
