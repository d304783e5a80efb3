"""Helpers the provider adapter tests share."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from switchboard_core.errors import HubError
from switchboard_core.events import EVENT_TYPES, CanonicalEvent, Channel, EventDraft
from switchboard_core.providers.base import Credentials, ProviderAdapter, WebhookRequest

RECORDED_EVENTS = Path(__file__).resolve().parents[2] / "events"
"""`tests/events`: recorded (or documented) deliveries, one folder per provider."""


def webhook_request(
    url: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "POST",
    received_at: datetime | None = None,
) -> WebhookRequest:
    """A `WebhookRequest` as the ingest function would build it from one HTTP request.

    Header names are lower-cased (a later name wins over an earlier one that differs
    only in case). The query is parsed from `url`, keeping blank values; a URL that
    `urlsplit` rejects (e.g. an unclosed IPv6 host) gets an empty query, so tests can
    hand adapters malformed URLs.
    """
    try:
        query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    except ValueError:
        query = {}
    return WebhookRequest(
        method=method,
        url=url,
        headers={k.lower(): v for k, v in (headers or {}).items()},
        body=body,
        query=query,
        received_at=received_at,
    )


def recorded_event(provider: str, name: str) -> bytes:
    """The bytes of `tests/events/<provider>/<name>`: a delivery as the provider sent (or documents) it."""
    return (RECORDED_EVENTS / provider / name).read_bytes()


def assert_drafts_publishable(
    drafts: Iterable[EventDraft], provider: str, channel: Channel, received_at: datetime
) -> None:
    """Every draft has a known event type and becomes a `CanonicalEvent` whose JSON reads back.

    Each draft is built into an event for `provider` on `channel` (placeholder connection and
    tenant, no raw reference), as the ingest function would publish it.
    """
    for draft in drafts:
        assert draft.type in EVENT_TYPES
        event = CanonicalEvent.from_draft(
            draft, provider=provider, connection="c", tenant="t", channel=channel, received_at=received_at, raw_ref=None
        )
        json.loads(event.model_dump_json())


def assert_raises_only_hub_errors(
    adapter: ProviderAdapter,
    request: WebhookRequest,
    credentials: Credentials,
    now: datetime,
    check_drafts: Callable[[list[EventDraft]], object],
    *,
    handshake_credentials: Sequence[Credentials] | None = None,
    also: Iterable[Callable[[], object]] = (),
) -> None:
    """Whatever `request` holds, the adapter's entry points refuse it only with a `HubError`.

    Calls, in turn: `verify(request, credentials, now)`; `normalise(request)`, its drafts passed
    to `check_drafts` (usually the module's `assert_publishable`); `delivery_id(request)`, which
    must encode as UTF-8; `handshake(request, handshake_credentials)` (default
    `[credentials]`), whose body must encode as UTF-8 (adapters without a handshake raise a
    405 `HubError`); then each call in `also`. A `HubError` from any call is the adapter
    refusing the input and does not stop the rest; any other exception fails the test.
    """
    handshake_with = [credentials] if handshake_credentials is None else handshake_credentials
    calls: list[Callable[[], object]] = [
        lambda: adapter.verify(request, credentials, now),
        lambda: check_drafts(adapter.normalise(request)),
        lambda: adapter.delivery_id(request).encode("utf-8"),
        lambda: adapter.handshake(request, handshake_with).body.encode("utf-8"),
        *also,
    ]
    for call in calls:
        try:
            call()
        except HubError:
            pass
