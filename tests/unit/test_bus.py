from datetime import UTC, datetime

import pytest

from switchboard_core.bus import MAX_BYTES_PER_CALL, EventPublisher, PublishError, batches, entry_size, to_entry
from switchboard_core.events import CanonicalEvent
from tests.builders import canonical_event


def make_event(n: int, text: str = "hello") -> CanonicalEvent:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return canonical_event("message.received", f"SM{n}", received_at=at, connection="con_1", tenant="t", text=text)


class FakeEvents:
    """PutEvents double: fails the entries whose index is listed, per call."""

    def __init__(self, failures_per_call: list[set[int]] | None = None, raise_times: int = 0) -> None:
        self.calls: list[list[dict]] = []
        self._failures = failures_per_call or []
        self._raise_times = raise_times

    def put_events(self, Entries):
        self.calls.append(Entries)
        if self._raise_times:
            self._raise_times -= 1
            raise ConnectionError("endpoint unreachable")
        failing = self._failures.pop(0) if self._failures else set()
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"} if i in failing else {"EventId": f"e{i}"}
            for i in range(len(Entries))
        ]
        return {"FailedEntryCount": len(failing), "Entries": results}


def test_batches_hold_at_most_ten_entries():
    entries = [to_entry(make_event(i), "bus") for i in range(23)]
    sizes = [len(b) for b in batches(entries)]
    assert sizes == [10, 10, 3]


def test_batches_respect_the_request_size_limit():
    big = "x" * 100_000
    entries = [to_entry(make_event(i, big), "bus") for i in range(5)]
    for batch in batches(entries):
        assert sum(entry_size(e) for e in batch) <= MAX_BYTES_PER_CALL
    assert sum(len(b) for b in batches(entries)) == 5


def test_an_oversized_event_is_slimmed_but_keeps_its_identity():
    event = make_event(1, "y" * 300_000)
    entry = to_entry(event, "bus")
    assert entry_size(entry) <= MAX_BYTES_PER_CALL
    slim = CanonicalEvent.model_validate_json(entry["Detail"])
    assert slim.id == event.id and slim.attributes == {"truncated": True}


def test_publish_retries_only_failed_entries_then_succeeds():
    fake = FakeEvents(failures_per_call=[{1, 3}])
    EventPublisher(fake, "bus", sleep=lambda s: None).publish([make_event(i) for i in range(5)])
    assert [len(c) for c in fake.calls] == [5, 2]
    assert [e["DetailType"] for e in fake.calls[1]] == ["message.received"] * 2


def test_publish_raises_when_entries_keep_failing():
    fake = FakeEvents(failures_per_call=[{0}, {0}, {0}])
    with pytest.raises(PublishError) as caught:
        EventPublisher(fake, "bus", attempts=3, sleep=lambda s: None).publish([make_event(1)])
    assert caught.value.status == 503
    assert "InternalFailure" in caught.value.details["errors"][0]
    assert len(fake.calls) == 3


def test_publish_retries_client_errors():
    fake = FakeEvents(raise_times=1)
    EventPublisher(fake, "bus", sleep=lambda s: None).publish([make_event(1)])
    assert len(fake.calls) == 2
