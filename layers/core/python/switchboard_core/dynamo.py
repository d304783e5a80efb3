"""Small DynamoDB helpers shared by the stores."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterator
from typing import Any


def scan_all(table: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a (small) table, following LastEvaluatedKey across pages."""
    while True:
        page = table.scan(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


BATCH_GET_KEYS = 100  # DynamoDB's limit per BatchGetItem


def batch_get(table: Any, keys: list[dict[str, Any]], *, consistent: bool = False) -> Iterator[dict[str, Any]]:
    """The items of `keys` the table has (BatchGetItem, 100 keys a call), in no particular order."""
    for start in range(0, len(keys), BATCH_GET_KEYS):
        request = {"Keys": keys[start : start + BATCH_GET_KEYS], "ConsistentRead": consistent}
        pending: dict[str, Any] = {table.name: request}
        while pending:  # DynamoDB may leave some keys for the next call (throughput, 16 MB)
            answer = table.meta.client.batch_get_item(RequestItems=pending)
            yield from answer.get("Responses", {}).get(table.name, [])
            pending = answer.get("UnprocessedKeys") or {}


def conditional_write(write: Callable[..., Any], **request: Any) -> bool:
    """Run one conditional DynamoDB write (`table.put_item`, `update_item`, `delete_item`
    with a ConditionExpression): True when it applied, False when its condition did not
    hold. Any other error raises."""
    return _conditionally(write, request)[0]


def conditional_answer(write: Callable[..., Any], **request: Any) -> dict[str, Any] | None:
    """`conditional_write`, answering with the write's response (its `Attributes` when it asked
    for ReturnValues) when it applied, None when its condition did not hold."""
    applied, answer = _conditionally(write, request)
    return answer if applied else None


def _conditionally(write: Callable[..., Any], request: dict[str, Any]) -> tuple[bool, Any]:
    from botocore.exceptions import ClientError

    try:
        return True, write(**request)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False, None
        raise


def all_of(conditions: list[Any]) -> Any:
    """boto3 condition objects (`Attr(...).eq(...)`) joined with AND: one FilterExpression."""
    return functools.reduce(operator.and_, conditions)


@functools.cache
def position_model(*key_names: str) -> type[Any]:
    """A pydantic model of where a listing of an index stopped (its LastEvaluatedKey: the table's
    key and the index's), all strings, nothing else: what a sealed cursor may carry back."""
    from pydantic import ConfigDict, create_model

    fields: dict[str, Any] = dict.fromkeys(key_names, (str, ...))
    return create_model("IndexPosition", __config__=ConfigDict(extra="forbid"), **fields)


class KeyReads:
    """`get_item` as a boto3 Table resource answers it (plain Python values, numbers as
    Decimal), over a low-level client. For a function that only reads items by key (ingest's
    connection read): building the resource loads its model and makes a client of its own,
    about a third of ingest's first-invocation setup (docs/benchmarks.md)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._name = table_name

    def get_item(self, *, Key: dict[str, Any], **options: Any) -> dict[str, Any]:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        serialise, deserialise = TypeSerializer().serialize, TypeDeserializer().deserialize
        answer = self._client.get_item(
            TableName=self._name, Key={name: serialise(value) for name, value in Key.items()}, **options
        )
        item = answer.get("Item")
        return {} if item is None else {"Item": {name: deserialise(value) for name, value in item.items()}}
