"""Publishing canonical events to the EventBridge bus.

PutEvents takes at most 10 entries and 256 KiB per call and reports failures per
entry rather than raising. `EventPublisher.publish` batches within both limits,
retries only the failed entries with backoff, and raises `PublishError` if any
entry still fails, so the caller never acknowledges an event that is not on the bus.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from switchboard_core.errors import Unavailable
from switchboard_core.events import CanonicalEvent

MAX_ENTRIES_PER_CALL = 10
MAX_BYTES_PER_CALL = 256 * 1024
TEXT_LIMIT_WHEN_OVERSIZED = 4096


class PublishError(Unavailable):
    code = "publish_failed"


def entry_size(entry: dict[str, Any]) -> int:
    """PutEvents entry size as EventBridge computes it (UTF-8 lengths of the fields)."""
    size = 14  # the Time field counts as 14 bytes when present
    for field in ("Source", "DetailType", "Detail", "EventBusName"):
        size += _utf8_length(entry.get(field, ""))
    for resource in entry.get("Resources", []):
        size += _utf8_length(resource)
    return size


def _utf8_length(text: str) -> int:
    # An ASCII string (str.isascii reads a flag CPython keeps) is as long in UTF-8: no copy
    # of a 256 KB Detail just to measure it.
    return len(text) if text.isascii() else len(text.encode())


def to_entry(event: CanonicalEvent, bus_name: str) -> dict[str, Any]:
    entry = {
        "Source": event.source,
        "DetailType": event.type,
        "Detail": event.model_dump_json(),
        "EventBusName": bus_name,
        "Time": event.received_at,
    }
    if entry_size(entry) > MAX_BYTES_PER_CALL:
        # The raw request keeps everything; the bus copy keeps the identity and a prefix of the text.
        slim = event.model_copy(
            update={
                "text": (event.text or "")[:TEXT_LIMIT_WHEN_OVERSIZED] or None,
                "attributes": {"truncated": True},
                "attachments": [],
            }
        )
        entry["Detail"] = slim.model_dump_json()
    return entry


def batches(entries: Sequence[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    batch_bytes = 0
    for entry in entries:
        size = entry_size(entry)
        if batch and (len(batch) == MAX_ENTRIES_PER_CALL or batch_bytes + size > MAX_BYTES_PER_CALL):
            yield batch
            batch, batch_bytes = [], 0
        batch.append(entry)
        batch_bytes += size
    if batch:
        yield batch


class EventPublisher:
    def __init__(
        self,
        events_client: Any,
        bus_name: str,
        *,
        attempts: int = 3,
        backoff_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = events_client
        self._bus = bus_name
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._sleep = sleep

    def publish(self, events: Sequence[CanonicalEvent]) -> None:
        entries = [to_entry(event, self._bus) for event in events]
        for batch in batches(entries):
            self._put_with_retries(batch)

    def _put_with_retries(self, batch: list[dict[str, Any]]) -> None:
        pending = batch
        errors: list[str] = []
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(self._backoff * 2 ** (attempt - 1))
            try:
                response = self._client.put_events(Entries=pending)
            except Exception as exc:  # noqa: BLE001 - any client failure is retried, then reported
                errors = [f"{type(exc).__name__}: {exc}"]
                continue
            if not response.get("FailedEntryCount"):
                return
            failed = [
                (entry, result)
                for entry, result in zip(pending, response["Entries"], strict=True)
                if result.get("ErrorCode")
            ]
            errors = [f"{r.get('ErrorCode')}: {r.get('ErrorMessage')}" for _, r in failed]
            pending = [entry for entry, _ in failed]
        raise PublishError(
            f"{len(pending)} event(s) could not be published to the bus after {self._attempts} attempts",
            details={"errors": sorted(set(errors))[:5]},
        )
