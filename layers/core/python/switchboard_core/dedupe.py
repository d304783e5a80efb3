"""Exactly-once processing of a provider delivery, through Powertools Idempotency.

Powertools writes an INPROGRESS record for the key (conditional put), runs the
work, then stores its result as COMPLETED with a TTL. A second call with the same
key gets the stored result without running the work; a call while the first is
still running gets IdempotencyAlreadyInProgressError; if the work raises, the
record is deleted so the provider's retry can run it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from switchboard_core.errors import Unavailable


class DeliveryInProgress(Unavailable):
    code = "delivery_in_progress"


class IdempotentRunner:
    def __init__(self, table_name: str, ttl_seconds: int, boto3_client: Any = None) -> None:
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

        self._store = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=boto3_client)
        self.config = IdempotencyConfig(expires_after_seconds=ttl_seconds, raise_on_no_idempotency_key=True)

    def register_lambda_context(self, context: Any) -> None:
        """Lets Powertools expire an INPROGRESS record if the function times out."""
        self.config.register_lambda_context(context)

    def __call__(self, key: dict[str, str], work: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        from aws_lambda_powertools.utilities.idempotency import idempotent_function
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
        )

        ran = False

        def process(delivery: dict[str, str]) -> dict[str, Any]:
            nonlocal ran
            ran = True
            return work()

        once = idempotent_function(data_keyword_argument="delivery", persistence_store=self._store, config=self.config)(
            process
        )
        try:
            result = once(delivery=key)
        except IdempotencyAlreadyInProgressError:
            raise DeliveryInProgress("this delivery is being processed by another request; retry shortly") from None
        except IdempotencyPersistenceLayerError as exc:
            raise Unavailable("the deduplication store is unavailable") from exc
        return result, not ran
