"""Queries that cost what DynamoDB's cost: moto 5.2.5's DynamoDB, indexed.

moto answers every Query -- on the table's key or on an index -- by sorting the whole table
(`Table.all_items` builds and sorts a list of every item, comparing DynamoType keys in Python)
and then walking it for the items whose hash key matches. A query therefore costs
O(n log n) in what the table holds: the local hub slowed down as its state grew (a 20,000-webhook
run fell from 7 to 4.6 webhooks/s within ten minutes), and so did every test that shares a hub.

DynamoDB reads one partition. This patch hands moto's own query the candidates DynamoDB would
read -- the items of the one hash key, found by key in the table or through a kept index of each
secondary index's hash attribute -- and leaves everything else to moto: the hash and range
conditions are still checked item by item, the sort, pagination, limits, projections and
filters are moto's. So the answers cannot change, only their cost.

A Scan (and a query the patch does not index) walks the whole table through `Table.all_items`,
which reads the table's dicts while other threads' writes change them; the walk is taken whole
under the writes' lock, so it never sees a dict change size (it raised, a 500, under load).

How the candidates reach moto's code without copying it: `Table.all_items` is the one place
moto's query gets its items from, so while a patched query runs, `all_items` of that table on
that thread returns the candidates (a thread-local: moto's server answers on many threads).

An index is built on its first query (one walk of the table) and then kept up to date by every
write: `Table.put_item` and `Table.delete_item` (PutItem, BatchWriteItem, PartiQL and the Put
and Delete of a transaction go through them) and `DynamoDBBackend.update_item` (UpdateItem and
a transaction's Update change an item in place). A transaction that fails puts back a deep copy
of the table taken before it ran, whose index was copied with it.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

_QUERY_CANDIDATES = threading.local()
PATCHED = "switchboard_indexed"

# A key of the table: (hash value, range value or None), as moto's DynamoType values.
PrimaryKey = tuple[Any, Any]


class SecondaryIndexKeys:
    """One secondary index's hash attribute: which items hold each of its values."""

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute
        self.keys_by_value: dict[Any, set[PrimaryKey]] = {}
        self.value_of_key: dict[PrimaryKey, Any] = {}

    def place(self, key: PrimaryKey, item: Any) -> None:
        """Move `key` to the value its item holds now (out of the index when the item is gone
        or lacks the attribute: DynamoDB indexes only items that have it)."""
        old = self.value_of_key.pop(key, None)
        if old is not None:
            keys = self.keys_by_value.get(old)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.keys_by_value[old]
        value = None if item is None else item.attrs.get(self.attribute)
        if value is None:
            return
        self.keys_by_value.setdefault(value, set()).add(key)
        self.value_of_key[key] = value

    def keys_for(self, value: Any) -> tuple[PrimaryKey, ...]:
        # tuple() of a set runs in C without giving up the GIL: a consistent copy even while a
        # write on another thread moves keys.
        return tuple(self.keys_by_value.get(value, ()))


def primary_key(item: Any) -> PrimaryKey:
    return (item.hash_key, item.range_key)


def stored_item(table: Any, key: PrimaryKey) -> Any:
    hash_value, range_value = key
    stored = table.items.get(hash_value)
    if stored is None:
        return None
    if table.range_key_attr:
        return stored.get(range_value)
    return stored


def every_item(table: Any) -> list[Any]:
    if table.range_key_attr:
        return [item for by_range in list(table.items.values()) for item in list(by_range.values())]
    return list(table.items.values())


def kept_indexes(table: Any) -> dict[str, SecondaryIndexKeys]:
    # In the table's __dict__, so a snapshot (pickle) or a transaction's deep copy carries it
    # along with the items it describes.
    indexes: dict[str, SecondaryIndexKeys] = table.__dict__.setdefault("switchboard_indexes", {})
    return indexes


def index_keys(table: Any, index_name: str, attribute: str, writes_lock: Any) -> SecondaryIndexKeys:
    indexes = kept_indexes(table)
    found = indexes.get(index_name)
    if found is not None:
        return found
    # Built while no write runs (writes hold `writes_lock`), so none slips between the walk and
    # the moment later writes start keeping it.
    with writes_lock:
        found = indexes.get(index_name)
        if found is None:
            found = SecondaryIndexKeys(attribute)
            for item in every_item(table):
                found.place(primary_key(item), item)
            indexes[index_name] = found
    return found


def reindex(table: Any, key: PrimaryKey) -> None:
    indexes = table.__dict__.get("switchboard_indexes")
    if not indexes:
        return
    item = stored_item(table, key)
    for keys in indexes.values():
        keys.place(key, item)


def query_candidates(
    table: Any, hash_key: Any, index_name: str | None, hash_key_conditions: Any, writes_lock: Any
) -> list[Any] | None:
    """The items DynamoDB would read for this query, or None to let moto walk the table (an
    index moto will refuse, or a multi-attribute hash key, which this project's tables lack)."""
    if not index_name:
        if hash_key is None:
            return None
        stored = table.items.get(hash_key)
        if stored is None:
            return []
        return list(stored.values()) if table.range_key_attr else [stored]
    index = next((each for each in table.all_indexes() if each.name == index_name), None)
    if index is None:
        return None
    hash_attributes = [part["AttributeName"] for part in index.schema if part["KeyType"] == "HASH"]
    if len(hash_attributes) != 1:
        return None
    (attribute,) = hash_attributes
    value = hash_key
    if hash_key_conditions:
        named = [given for name, given in hash_key_conditions if name == attribute]
        if len(named) != 1 or len(hash_key_conditions) != 1:
            return None
        value = named[0]
    if value is None:
        return None
    keys = index_keys(table, index_name, attribute, writes_lock)
    found = (stored_item(table, key) for key in keys.keys_for(value))
    return [item for item in found if item is not None]


def patch_moto_dynamodb_queries(writes_lock: Any) -> None:
    """Apply the patch (once; calling again changes nothing). `writes_lock` is the lock every
    DynamoDB write of the emulator holds (emulator.patch_moto_atomic_operations)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    if getattr(Table.query, PATCHED, False):
        return
    moto_all_items = Table.all_items
    moto_query = Table.query
    moto_put_item = Table.put_item
    moto_delete_item = Table.delete_item
    moto_update_item = DynamoDBBackend.update_item
    query_signature = inspect.signature(moto_query)

    def all_items(self: Any) -> list[Any]:
        given = getattr(_QUERY_CANDIDATES, "given", None)
        if given is not None and given[0] is self:
            return given[1]
        # moto walks the table's dicts; a write on another thread (the event log's, while a Scan
        # read it) changed them mid-walk ("dictionary changed size during iteration", a 500).
        # DynamoDB serves a Scan beside writes: the walk is taken whole, between writes.
        with writes_lock:
            return moto_all_items(self)

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = query_signature.bind(self, *args, **kwargs).arguments
        candidates = query_candidates(
            self,
            arguments.get("hash_key"),
            arguments.get("index_name"),
            arguments.get("hash_key_conditions"),
            writes_lock,
        )
        if candidates is None:
            return moto_query(self, *args, **kwargs)
        _QUERY_CANDIDATES.given = (self, candidates)
        try:
            return moto_query(self, *args, **kwargs)
        finally:
            _QUERY_CANDIDATES.given = None

    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = moto_put_item(self, *args, **kwargs)
        reindex(self, primary_key(item))
        return item

    def delete_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = moto_delete_item(self, *args, **kwargs)
        if item is not None:
            reindex(self, primary_key(item))
        return item

    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        from moto.dynamodb.models.dynamo_type import DynamoType

        try:
            return moto_update_item(self, table_name, key, *args, **kwargs)
        finally:  # a failed update may have changed the item before it failed: look again
            table = self.tables.get(table_name)
            if table is not None and table.hash_key_attr in key:
                range_attr = table.range_key_attr
                range_value = DynamoType(key[range_attr]) if range_attr and range_attr in key else None
                reindex(table, (DynamoType(key[table.hash_key_attr]), range_value))

    replacements: dict[Any, dict[str, Callable[..., Any]]] = {
        Table: {"all_items": all_items, "query": query, "put_item": put_item, "delete_item": delete_item},
        DynamoDBBackend: {"update_item": update_item},
    }
    for owner, methods in replacements.items():
        for name, method in methods.items():
            setattr(method, PATCHED, True)
            setattr(owner, name, method)
