"""The event log: recent canonical events, kept for `GET /admin/events`.

Items are keyed by event id, so a redelivered event is written once. Every filter
`GET /admin/events` offers is answered by one index, newest first, so a listing reads
what it returns and no more, however many events are stored: the partition is the
tenant or the connection, joined with the provider and/or the type when the query
filters on them (attribute `tenant_type` = "<tenant>#<type>", index `by_tenant_type`,
and so on; `SELECTORS` names them all). `sort_key` is the receive time followed by
the id, which keeps it unique and ordered, and makes `since` a key condition.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from switchboard_core.dynamo import batch_get, conditional_write
from switchboard_core.dynamo import position_model as dynamo_position
from switchboard_core.events import CanonicalEvent

MAX_PAGE = 100
SEPARATOR = "#"  # joins a composite index key; tenant, connection and provider ids never contain it

# What a query can select on, as index partition keys: the tenant or the connection, alone or
# joined with the provider and/or the type. infra/topology.py declares one index per entry.
SELECTORS: tuple[tuple[str, ...], ...] = tuple(
    (base, *extra)
    for base in ("tenant", "connection")
    for extra in ((), ("provider",), ("type",), ("provider", "type"))
)


def selector_attribute(fields: tuple[str, ...]) -> str:
    """The item attribute (and, with `by_`, the index) a selector is keyed on: `tenant_type`."""
    return "_".join(fields)


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


class Selection(BaseModel):
    """Which index answers a query and the partition it reads."""

    model_config = ConfigDict(frozen=True)

    attribute: str
    value: str

    @property
    def index(self) -> str:
        return f"by_{self.attribute}"


def selection(query: EventQuery) -> Selection:
    """The one index that holds exactly the events `query` filters on (bar `since`, its key range).
    A connection's events are all its tenant's, so a connection with a tenant reads the connection's."""
    base = "connection" if query.connection else "tenant"
    fields = (base, *(name for name in ("provider", "type") if getattr(query, name)))
    values = [getattr(query, name) for name in fields]
    if values[0] is None:
        raise ValueError("a tenant or a connection is required")
    return Selection(attribute=selector_attribute(fields), value=SEPARATOR.join(values))


def position_model(query: EventQuery) -> type[BaseModel]:
    return dynamo_position("id", "sort_key", selection(query).attribute)


class EventLogStore:
    def __init__(self, table: Any, ttl: timedelta) -> None:
        self._table = table
        self._ttl = ttl

    def put(self, event: CanonicalEvent) -> bool:
        """Write the event once; False when it was already there (a redelivery)."""
        return conditional_write(
            self._table.put_item, Item=self.item(event), ConditionExpression="attribute_not_exists(id)"
        )

    def item(self, event: CanonicalEvent) -> dict[str, Any]:
        """The event as stored: its attributes, the keys of every index, its expiry."""
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
        return item | index_keys(item)

    def query(
        self, query: EventQuery, after: dict[str, str] | None = None
    ) -> tuple[list[CanonicalEvent], dict[str, str] | None]:
        """Newest first, continuing `after` (a position this method returned for the same
        query); the position to continue from, or None on the last page. Requires a tenant
        or a connection (each has an index)."""
        from boto3.dynamodb.conditions import Key

        chosen = selection(query)
        key = Key(chosen.attribute).eq(chosen.value)
        if query.since:
            key = key & Key("sort_key").gte(query.since.isoformat())
        kwargs: dict[str, Any] = {"IndexName": chosen.index, "KeyConditionExpression": key, "ScanIndexForward": False}
        if after:
            kwargs["ExclusiveStartKey"] = after

        events: list[CanonicalEvent] = []
        while True:
            # Every item the index holds matches, so a page asks for what is still missing.
            kwargs["Limit"] = query.limit - len(events)
            page = self._table.query(**kwargs)
            for item in page.get("Items", []):
                events.append(CanonicalEvent.model_validate_json(item["event"]))
                if len(events) == query.limit:
                    return events, {
                        "id": item["id"],
                        "sort_key": item["sort_key"],
                        chosen.attribute: item[chosen.attribute],
                    }
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
        keys = [{"id": event_id} for event_id in dict.fromkeys(event_ids)]
        for item in batch_get(self._table, keys):
            event = CanonicalEvent.model_validate_json(item["event"])
            found[event.id] = event
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


def index_keys(item: dict[str, Any]) -> dict[str, str]:
    """The composite partition keys of every selector beyond the plain tenant and connection,
    from an event-log item's own attributes."""
    return {
        selector_attribute(fields): SEPARATOR.join(item[name] for name in fields)
        for fields in SELECTORS
        if len(fields) > 1
    }
