"""Ingest: from one provider request to durable canonical events.

Order matters, and is what makes a 2xx mean "durable":
1. refuse what is not ours: unknown provider or connection (404), wrong method
   (405), too large (413), wrong media type (415);
2. verify the signature on the raw bytes with every valid credential set (401),
   run the adapter's `after_verified` hook (a no-op except for protocols that must
   call back, e.g. SNS confirming its subscription), and normalise (400) -- nothing
   is stored for a request refused here;
3. once per delivery id (a dedupe claim, switchboard_core/dedupe.py, kept for 8 days): store the raw
   request (credential-bearing headers redacted), then publish the events, raising on
   any failed entry;
4. acknowledge with the provider's own success response.
A verified POST that normalises to no events is a handshake (Slack's url_verification,
Discord's PING): it is answered with the adapter's success response and stores nothing.
A failure in step 3 answers 503 and releases the delivery id, so the provider's
retry runs step 3 again (event ids are deterministic, so consumers see the same ids).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from switchboard_core.bus import EventPublisher
from switchboard_core.connections import ConnectionStore, CredentialStore
from switchboard_core.errors import HubError, NotFound, PayloadTooLarge
from switchboard_core.events import CanonicalEvent
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import (
    HttpResponse,
    ProviderAdapter,
    SignatureError,
    UnsupportedMediaType,
    WebhookRequest,
)
from switchboard_core.raw_store import RawStore

ALLOWED_METHODS = ("GET", "POST")


class RunOnce(Protocol):
    """Runs `work` once per `key`; returns its result and whether this call was a duplicate."""

    def __call__(self, key: dict[str, str], work: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]: ...


@dataclass
class IngestDeps:
    connections: ConnectionStore
    credentials: CredentialStore
    raw_store: RawStore
    publisher: EventPublisher
    run_once: RunOnce
    max_body_bytes: int


@dataclass
class IngestOutcome:
    response: HttpResponse
    kind: str  # "handshake", "accepted" or "duplicate"
    delivery_id: str | None = None
    events: list[CanonicalEvent] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)


def handle_webhook(
    request: WebhookRequest, provider: str, connection_id: str, deps: IngestDeps, now: datetime
) -> IngestOutcome:
    adapter = get_adapter(provider)
    connection = deps.connections.get(connection_id)
    if connection.provider != provider:
        raise NotFound(f"connection {connection_id!r} is not a {provider} connection", code="unknown_connection")

    if request.method not in ALLOWED_METHODS:
        raise HubError(
            f"method {request.method} is not allowed; use POST (or GET for handshakes)",
            status=405,
            code="method_not_allowed",
        )
    if request.method == "GET":
        credential_sets = deps.credentials.get(connection_id).valid_sets(now)
        return IngestOutcome(response=adapter.handshake(request, credential_sets), kind="handshake")

    if len(request.body) > deps.max_body_bytes:
        raise PayloadTooLarge(f"body is {len(request.body)} bytes; the limit is {deps.max_body_bytes}")
    if request.content_type not in adapter.content_types:
        raise UnsupportedMediaType(
            f"content type {request.content_type or '(none)'!r} is not accepted for {provider}; "
            f"expected one of {', '.join(adapter.content_types)}"
        )
    stored = deps.credentials.get(connection_id)
    credential_sets = stored.valid_sets(now)
    try:
        request = verify_with_any(adapter, request, credential_sets, now)
    except SignatureError:
        # Kept for a minute per sandbox, the credentials may predate a rotation: read them again
        # (at most every few seconds per connection) and try once more before refusing.
        fresher = deps.credentials.refreshed(connection_id)
        if fresher is None or fresher == stored:
            raise
        credential_sets = fresher.valid_sets(now)
        request = verify_with_any(adapter, request, credential_sets, now)
    adapter.after_verified(request)
    drafts = adapter.normalise(request)
    if not drafts:
        # A signed POST handshake (Slack url_verification, Discord PING...): answered, not data.
        return IngestOutcome(response=adapter.success_response(request), kind="handshake")
    delivery_id = adapter.delivery_id(request)
    # Every valid set's headers: during a rotation a sender may still send the old one too.
    credential_headers = frozenset[str]().union(*(adapter.credential_headers(c) for c in credential_sets))

    events: list[CanonicalEvent] = []

    def store_and_publish() -> dict[str, Any]:
        raw_ref = deps.raw_store.put(
            request,
            provider=provider,
            tenant=connection.tenant,
            connection=connection.id,
            delivery_id=delivery_id,
            received_at=now,
            credential_headers=credential_headers,
        )
        events.extend(
            CanonicalEvent.from_draft(
                draft,
                provider=provider,
                connection=connection.id,
                tenant=connection.tenant,
                channel=adapter.channel,
                received_at=now,
                raw_ref=raw_ref,
            )
            for draft in drafts
        )
        deps.publisher.publish(events)
        return {"event_ids": [e.id for e in events], "raw_key": raw_ref.key}

    result, duplicate = deps.run_once(
        {"provider": provider, "connection": connection.id, "delivery_id": delivery_id}, store_and_publish
    )
    return IngestOutcome(
        response=adapter.success_response(request),
        kind="duplicate" if duplicate else "accepted",
        delivery_id=delivery_id,
        events=events,
        event_ids=list(result.get("event_ids", [])),
    )


def verify_with_any(
    adapter: ProviderAdapter, request: WebhookRequest, credential_sets: list[dict[str, str]], now: datetime
) -> WebhookRequest:
    """The request, marked with the first valid credential set (current, or previous
    during a rotation's grace period) that verifies it; otherwise the current set's error."""
    first_error: SignatureError | None = None
    for credentials in credential_sets:
        try:
            return adapter.verified(request, credentials, now)
        except SignatureError as exc:
            first_error = first_error or exc
    raise first_error or SignatureError("no credentials configured for this connection")
