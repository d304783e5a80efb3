"""The event log: recent canonical events, kept for `GET /admin/events`.

Items are keyed by event id, so a redelivered event is written once. Two indexes
list a tenant's or a connection's events newest first; `sort_key` is the receive
time followed by the id, which keeps it unique and ordered.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from switchboard_core.dynamo import all_of, conditional_write
from switchboard_core.events import CanonicalEvent

MAX_PAGE = 100
BATCH_GET_KEYS = 100  # DynamoDB's limit per BatchGetItem


class EventQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str | None = None
    connection: str | None = None
    provider: str | None = None
    type: str | None = None
    since: datetime | None = None
    limit: int = Field(default=25, ge=1, le=MAX_PAGE)

    @field_validator("since")
    @classmethod
    def _in_utc(cls, since: datetime | None) -> datetime | None:
        """Sort keys are UTC ISO strings, compared as strings: an offset must be applied, not kept
        (a naive time is taken as UTC)."""
        if since is None:
            return None
        return since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)

    def filters(self) -> dict[str, str | None]:
        """What the query selects on (not how much): a cursor is bound to exactly these."""
        return {
            "tenant": self.tenant,
            "connection": self.connection,
            "provider": self.provider,
            "type": self.type,
            "since": self.since.isoformat() if self.since else None,
        }


class TenantPosition(BaseModel):
    """Where a listing of the `by_tenant` index stopped (its LastEvaluatedKey)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    sort_key: str
    tenant: str


class ConnectionPosition(BaseModel):
    """Where a listing of the `by_connection` index stopped."""

    model_config = ConfigDict(extra="forbid")

    id: str
    sort_key: str
    connection: str


def position_model(query: EventQuery) -> type[BaseModel]:
    return ConnectionPosition if query.connection else TenantPosition


class EventLogStore:
    def __init__(self, table: Any, ttl: timedelta) -> None:
        self._table = table
        self._ttl = ttl

    def put(self, event: CanonicalEvent) -> bool:
        """Write the event once; False when it was already there (a redelivery)."""

        item = {
            "id": event.id,
            "tenant": event.tenant,
            "connection": event.connection,
            "provider": event.provider,
            "type": event.type,
            "sort_key": f"{event.received_at.isoformat()}#{event.id}",
            "event": event.model_dump_json(),
            "expires_at": int((event.received_at + self._ttl).timestamp()),
        }
        return conditional_write(self._table.put_item, Item=item, ConditionExpression="attribute_not_exists(id)")

    def query(
        self, query: EventQuery, after: dict[str, str] | None = None
    ) -> tuple[list[CanonicalEvent], dict[str, str] | None]:
        """Newest first, continuing `after` (a position this method returned for the same
        query); the position to continue from, or None on the last page. Requires a tenant
        or a connection (each has an index)."""
        from boto3.dynamodb.conditions import Attr, Key

        if query.connection:
            index, key = "by_connection", Key("connection").eq(query.connection)
        elif query.tenant:
            index, key = "by_tenant", Key("tenant").eq(query.tenant)
        else:
            raise ValueError("a tenant or a connection is required")
        if query.since:
            key = key & Key("sort_key").gte(query.since.isoformat())
        filters = []
        if query.tenant and query.connection:
            filters.append(Attr("tenant").eq(query.tenant))
        if query.provider:
            filters.append(Attr("provider").eq(query.provider))
        if query.type:
            filters.append(Attr("type").eq(query.type))
        kwargs: dict[str, Any] = {"IndexName": index, "KeyConditionExpression": key, "ScanIndexForward": False}
        if filters:
            kwargs["FilterExpression"] = all_of(filters)
        if after:
            kwargs["ExclusiveStartKey"] = after

        events: list[CanonicalEvent] = []
        while True:
            kwargs["Limit"] = max(query.limit - len(events), 1) if not filters else MAX_PAGE
            page = self._table.query(**kwargs)
            for item in page.get("Items", []):
                events.append(CanonicalEvent.model_validate_json(item["event"]))
                if len(events) == query.limit:
                    return events, _key_of(item, index)
            last = page.get("LastEvaluatedKey")
            if not last:
                return events, None
            kwargs["ExclusiveStartKey"] = last

    def get(self, event_id: str) -> CanonicalEvent | None:
        """One event by id (None once its TTL removed it, or if it never arrived)."""
        item = self._table.get_item(Key={"id": event_id}).get("Item")
        return CanonicalEvent.model_validate_json(item["event"]) if item else None

    def get_many(self, event_ids: list[str]) -> dict[str, CanonicalEvent]:
        """The events of `event_ids` the log still has, by id (BatchGetItem, 100 keys a call)."""
        found: dict[str, CanonicalEvent] = {}
        unique = list(dict.fromkeys(event_ids))
        for start in range(0, len(unique), BATCH_GET_KEYS):
            pending: dict[str, Any] = {
                self._table.name: {"Keys": [{"id": event_id} for event_id in unique[start : start + BATCH_GET_KEYS]]}
            }
            while pending:  # DynamoDB may leave some keys for the next call (throughput, 16 MB)
                answer = self._table.meta.client.batch_get_item(RequestItems=pending)
                for item in answer.get("Responses", {}).get(self._table.name, []):
                    event = CanonicalEvent.model_validate_json(item["event"])
                    found[event.id] = event
                pending = answer.get("UnprocessedKeys") or {}
        return found

    def between(self, tenant: str, since: datetime, until: datetime) -> Iterator[CanonicalEvent]:
        """A tenant's events received at or after `since` and before `until`, oldest first
        (what a subscription's replay re-sends, read in pages)."""
        from boto3.dynamodb.conditions import Key

        low, high = since.astimezone(UTC).isoformat(), until.astimezone(UTC).isoformat()
        # Sort keys are "<received_at>#<id>": every key of a moment before `until` sorts below it.
        request: dict[str, Any] = {
            "IndexName": "by_tenant",
            "KeyConditionExpression": Key("tenant").eq(tenant) & Key("sort_key").between(low, high),
        }
        while True:
            page = self._table.query(**request)
            for item in page.get("Items", []):
                yield CanonicalEvent.model_validate_json(item["event"])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _key_of(item: dict[str, Any], index: str) -> dict[str, Any]:
    partition = "connection" if index == "by_connection" else "tenant"
    return {"id": item["id"], "sort_key": item["sort_key"], partition: item[partition]}
