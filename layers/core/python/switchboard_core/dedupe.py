"""Exactly-once processing of a provider delivery: a claim record in DynamoDB.

Per delivery key: a conditional PutItem writes an INPROGRESS record (allowed when there is
none, when the one there has expired, or when it is INPROGRESS past its in-progress expiry:
the function died in the middle), the work runs, then an UpdateItem marks the record
COMPLETED with the work's result and a TTL. A second call with the same key gets the stored
result without running the work; a call while the first is still running gets
DeliveryInProgress (503: the provider retries); if the work raises, the record is deleted so
the provider's retry can run it again.

This is what Powertools Idempotency did for us, record for record: the same attributes
(`id`, `status`, `expiration`, `in_progress_expiration`, `data`), the same key
(`<function name>.<its wrapped function>#<md5 of the sorted JSON key>`), the same conditions,
so records written before this change (on AWS, and in the local hub's saved state) are still
honoured, and what reads them (the local runtime's restart, the fault scenarios) is unchanged.
Written here because Powertools' layer cost about a sixth of a webhook's own CPU besides its two
writes (a decorator, a handler and data records built per call, the key hashed twice, a
user-agent hook on the shared DynamoDB client), and its import a few milliseconds of cold start
(docs/decisions.md, "Ingest's hot path").
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

from switchboard_core.errors import Unavailable

INPROGRESS, COMPLETED = "INPROGRESS", "COMPLETED"
# The key prefix Powertools gave this runner's records (its wrapped function's dotted name).
_WRAPPED = "switchboard_core.dedupe.IdempotentRunner.__call__.<locals>.process"
# A claim that meets a record expiring between the write and the read retries this often, as
# Powertools did (its IdempotencyInconsistentStateError), then answers 503.
_INCONSISTENT_RETRIES = 2
_CLAIMABLE = (
    "attribute_not_exists(#id) OR #expiry < :now OR "
    "(#status = :inprogress AND attribute_exists(#in_progress_expiry) AND #in_progress_expiry < :now_in_millis)"
)
_NAMES = {"#id": "id", "#expiry": "expiration", "#in_progress_expiry": "in_progress_expiration", "#status": "status"}


class DeliveryInProgress(Unavailable):
    code = "delivery_in_progress"


class _Inconsistent(Exception):
    """The record changed between the failed claim and what it returned (it expired)."""


class IdempotentRunner:
    def __init__(self, table_name: str, ttl_seconds: int, boto3_client: Any = None) -> None:
        if boto3_client is None:
            from switchboard_core import aws

            boto3_client = aws.client("dynamodb")
        self._client = boto3_client
        self._table = table_name
        self._ttl = ttl_seconds
        self._context: Any = None
        self._prefix = f"{os.getenv('AWS_LAMBDA_FUNCTION_NAME', 'test-func')}.{_WRAPPED}#"

    def register_lambda_context(self, context: Any) -> None:
        """An INPROGRESS record expires when the invocation would time out (so a retry after a
        crash or a timeout runs the work again); without a context it never does, only its TTL."""
        self._context = context

    def record_id(self, key: dict[str, str]) -> str:
        return self._prefix + hashlib.md5(json.dumps(key, sort_keys=True).encode(), usedforsecurity=False).hexdigest()

    def __call__(self, key: dict[str, str], work: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        record_id = self.record_id(key)
        for attempt in range(_INCONSISTENT_RETRIES + 1):
            try:
                stored = self._claim(record_id)
            except _Inconsistent:
                if attempt == _INCONSISTENT_RETRIES:
                    raise DeliveryInProgress(
                        "this delivery's record changed while it was read; retry shortly"
                    ) from None
                continue
            if stored is not None:
                return stored, True
            break
        try:
            result = work()
        except Exception:
            try:
                self._client.delete_item(TableName=self._table, Key={"id": {"S": record_id}})
            except Exception as exc:  # the delivery could not be released: say so
                raise Unavailable("the deduplication store is unavailable") from exc
            raise
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": record_id}},
                UpdateExpression="SET #response_data = :response_data, #expiry = :expiry, #status = :status",
                ExpressionAttributeNames={"#expiry": "expiration", "#response_data": "data", "#status": "status"},
                ExpressionAttributeValues={
                    ":expiry": {"N": str(int(time.time()) + self._ttl)},
                    ":response_data": {"S": json.dumps(result, sort_keys=True)},
                    ":status": {"S": COMPLETED},
                },
            )
        except Exception as exc:  # left INPROGRESS: a retry after its expiry runs the work again
            raise Unavailable("the deduplication store is unavailable") from exc
        return result, False

    def _claim(self, record_id: str) -> dict[str, Any] | None:
        """Write the INPROGRESS record: None when this call may run the work, else the stored
        result of a completed one. Raises DeliveryInProgress while another call runs it."""
        from botocore.exceptions import ClientError

        now = time.time()
        item = {
            "id": {"S": record_id},
            "expiration": {"N": str(int(now) + self._ttl)},
            "status": {"S": INPROGRESS},
        }
        if self._context is not None:
            remaining_ms = self._context.get_remaining_time_in_millis()
            item["in_progress_expiration"] = {"N": str(int(now * 1000) + int(remaining_ms))}
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=_CLAIMABLE,
                ExpressionAttributeNames=_NAMES,
                ExpressionAttributeValues={
                    ":now": {"N": str(int(now))},
                    ":now_in_millis": {"N": str(int(now * 1000))},
                    ":inprogress": {"S": INPROGRESS},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise Unavailable("the deduplication store is unavailable") from exc
            existing = exc.response.get("Item") or self._read(record_id)
            if existing is None:
                raise _Inconsistent from None  # gone since the write (its TTL deleted it)
            return self._stored(existing)
        except Exception as exc:  # timeouts, throttling after botocore's retries
            raise Unavailable("the deduplication store is unavailable") from exc
        return None

    def _read(self, record_id: str) -> dict[str, Any] | None:
        try:
            answer = self._client.get_item(TableName=self._table, Key={"id": {"S": record_id}}, ConsistentRead=True)
        except Exception as exc:
            raise Unavailable("the deduplication store is unavailable") from exc
        item: dict[str, Any] | None = answer.get("Item")
        return item

    @staticmethod
    def _stored(item: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        if int(item["expiration"]["N"]) < now:
            raise _Inconsistent  # expired since the write refused it
        if item["status"]["S"] == INPROGRESS:
            expiry = item.get("in_progress_expiration")
            if expiry is not None and int(expiry["N"]) < int(now * 1000):
                raise _Inconsistent  # its invocation timed out since the write refused it
            raise DeliveryInProgress("this delivery is being processed by another request; retry shortly")
        data = item.get("data", {}).get("S")
        stored: dict[str, Any] = json.loads(data) if data else {}
        return stored
