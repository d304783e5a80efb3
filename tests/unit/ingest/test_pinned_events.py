"""The bytes ingest writes for a request are pinned: the raw request's stored document and
every PutEvents entry (Source, DetailType, Detail) are compared byte for byte with what an
earlier build of the hub wrote for the same signed request (tests/unit/ingest/pinned_events.json).

It guards the CPU work on the per-webhook path (docs/benchmarks.md, warm CPU per webhook):
an optimisation of the adapters, the event models or the raw document must not change one
byte a consumer or a replay reads. The requests are every provider's default sample (SNS's
signing certificate is made per machine, so SNS is left out), plus a 2 KB one with its text
lengthened as the benchmark lengthens it, signed with stored demo credentials at a stored time.

A deliberate change of the event's shape rewrites the file:
`python -m tests.unit.ingest.test_pinned_events --write` (review the diff).
"""

from __future__ import annotations

import base64
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from functions.ingest.logic import IngestDeps, handle_webhook
from switchboard_core.bus import EventPublisher
from switchboard_core.connections import ConnectionStore, StoredCredentials
from switchboard_core.providers import PROVIDER_NAMES
from switchboard_core.providers.base import WebhookRequest
from switchboard_core.raw_store import RawStore

PINNED = Path(__file__).with_name("pinned_events.json")
CONNECTION = "con_pinned00000000000000"
PADDED_BYTES = 2048
SKIPPED = {"sns"}  # its certificate is generated per machine: nothing to pin a signature to


class _Table:
    def __init__(self, item: dict[str, Any]) -> None:
        self._item = item

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {"Item": dict(self._item)}


class _Credentials:
    def __init__(self, current: dict[str, str]) -> None:
        self._stored = StoredCredentials(current=current)

    def get(self, _connection_id: str) -> StoredCredentials:
        return self._stored


class _Recorder:
    """S3's put_object and EventBridge's put_events, keeping what they were given."""

    def __init__(self) -> None:
        self.objects: list[bytes] = []
        self.entries: list[dict[str, Any]] = []

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        self.objects.append(kwargs["Body"])
        return {}

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in Entries]}


def ingest(case: dict[str, Any]) -> dict[str, Any]:
    """What ingest stores and publishes for the case's signed request."""
    now = datetime.fromisoformat(case["now"])
    provider = case["provider"]
    recorder = _Recorder()
    deps = IngestDeps(
        connections=ConnectionStore(
            _Table({"id": CONNECTION, "provider": provider, "tenant": "acme", "created_at": "2026-01-01T00:00:00Z"})
        ),
        credentials=_Credentials(case["credentials"]),  # type: ignore[arg-type]
        raw_store=RawStore(recorder, "pinned-raw"),
        publisher=EventPublisher(recorder, "pinned-bus"),
        run_once=lambda key, work: (work(), False),
        max_body_bytes=1024 * 1024,
    )
    request = WebhookRequest(
        method=case["method"],
        url=case["url"],
        headers=case["headers"],
        body=base64.b64decode(case["body_base64"]),
        query=parse_qs(case["url"].partition("?")[2], keep_blank_values=True),
        received_at=now,
    )
    outcome = handle_webhook(request, provider, CONNECTION, deps, now)
    assert outcome.kind == "accepted", outcome
    return {
        "raw_document": [body.decode() for body in recorder.objects],
        "entries": [
            {"Source": e["Source"], "DetailType": e["DetailType"], "Detail": e["Detail"], "Time": e["Time"].isoformat()}
            for e in recorder.entries
        ],
    }


def _cases() -> list[dict[str, Any]]:
    return json.loads(PINNED.read_text())["cases"] if PINNED.exists() else []


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case["name"])
def test_ingest_writes_the_pinned_bytes(case: dict[str, Any]) -> None:
    found = ingest(case)
    assert found["raw_document"] == case["expected"]["raw_document"]
    assert found["entries"] == case["expected"]["entries"]


def test_every_provider_but_sns_is_pinned() -> None:
    pinned = {case["provider"] for case in _cases()}
    assert pinned == set(PROVIDER_NAMES) - SKIPPED


def _write() -> None:  # pragma: no cover - run by hand after a deliberate change
    from infra.local.samples import demo_credentials
    from tests.bench.providers import sized_sample

    now = datetime(2026, 12, 2, 15, 0, 0, 123456, tzinfo=UTC)
    cases = []
    for provider in PROVIDER_NAMES:
        if provider in SKIPPED:
            continue
        credentials = demo_credentials(provider)
        url = f"https://hooks.example.com/webhooks/{provider}/{CONNECTION}"
        for label, size in (("default", 0), ("2kb", PADDED_BYTES)):
            signed = sized_sample(provider, size, credentials, url, now)
            case = {
                "name": f"{provider}-{label}",
                "provider": provider,
                "now": now.isoformat(),
                "credentials": credentials,
                "method": signed.method,
                "url": signed.url,
                "headers": {k.lower(): v for k, v in signed.headers.items()},
                "body_base64": base64.b64encode(signed.body).decode(),
            }
            case["expected"] = ingest(case)
            cases.append(case)
    PINNED.write_text(json.dumps({"cases": cases}, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.unit.ingest.test_pinned_events --write")
    _write()
