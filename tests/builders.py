"""Canonical events for tests, built as the hub builds them (`CanonicalEvent.from_draft`), so a
test names only what it cares about.

- `canonical_event`: a derived or hand-made event: its type, the provider's id and the draft
  fields the test checks; its origin defaults to the tests' usual Twilio connection of tenant acme.
- `posted` / `published`: what ingest publishes for a webhook body (or request) through the
  provider's adapter, as the sender tests read it (connection con_1 of tenant t)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from switchboard_core.events import CanonicalEvent, Channel, EventDraft, RawRef
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import WebhookRequest


def canonical(
    draft: EventDraft,
    *,
    received_at: datetime,
    provider: str = "twilio",
    connection: str = "con_twilio",
    tenant: str = "acme",
    channel: Channel = Channel.TELEPHONY,
    raw_ref: RawRef | None = None,
) -> CanonicalEvent:
    """`draft` as ingest (or a function deriving an event) would publish it."""
    return CanonicalEvent.from_draft(
        draft,
        provider=provider,
        connection=connection,
        tenant=tenant,
        channel=channel,
        received_at=received_at,
        raw_ref=raw_ref,
    )


# The keywords of `canonical_event` that say where an event came from (as `canonical` takes them).
ORIGIN = ("provider", "connection", "tenant", "channel", "raw_ref")


def canonical_event(type: str, provider_event_id: str, *, received_at: datetime, **fields: Any) -> CanonicalEvent:
    """An event of `type`: `fields` are `canonical`'s origin keywords (ORIGIN, defaults as
    there) and the draft's fields (occurred_at, contact, conversation_key, text, attachments,
    attributes)."""
    origin = {name: fields.pop(name) for name in ORIGIN if name in fields}
    draft = EventDraft(type=type, provider_event_id=provider_event_id, **fields)
    return canonical(draft, received_at=received_at, **origin)


def published(
    provider: str,
    request: WebhookRequest,
    *,
    received_at: datetime,
    connection: str = "con_1",
    tenant: str = "t",
) -> list[CanonicalEvent]:
    """The events ingest publishes for `request` to `provider`'s adapter, on the adapter's
    channel (normalised only: the adapters' own tests check signatures)."""
    adapter = get_adapter(provider)
    return [
        canonical(
            draft,
            received_at=received_at,
            provider=provider,
            connection=connection,
            tenant=tenant,
            channel=adapter.channel,
        )
        for draft in adapter.normalise(request)
    ]


def posted(
    provider: str,
    body: bytes | dict[str, Any] | list[Any],
    *,
    received_at: datetime,
    url: str | None = None,
    headers: dict[str, str] | None = None,
    connection: str = "con_1",
    tenant: str = "t",
) -> list[CanonicalEvent]:
    """`published` for a POST of `body` (JSON when not bytes) to the connection's webhook URL."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = WebhookRequest(
        method="POST",
        url=url or f"https://hub.example/webhooks/{provider}/{connection}",
        headers=headers or {},
        body=raw,
    )
    return published(provider, request, received_at=received_at, connection=connection, tenant=tenant)
