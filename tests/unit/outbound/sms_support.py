"""What the SMS/MMS sender tests (Twilio, Telnyx, Plivo, Bandwidth) share: a signed webhook
through the provider's ingest adapter (verify + normalise, as ingest does) into canonical
events, and a sent message's status webhook from the samples read back by the sender."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from infra.local.provider_apis import SentMessage
from infra.local.samples import SignedRequest, build_status, demo_credentials
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound import DeliveryStatus, get_sender
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import WebhookRequest
from tests.builders import posted, published

HUB_URL = "https://hub.example.com/webhooks/{provider}/con_1"


def ingest(provider: str, signed: SignedRequest, credentials: dict[str, str], now: datetime) -> list[CanonicalEvent]:
    """The events ingest would publish for `signed` (its signature verified first)."""
    request = WebhookRequest(
        method=signed.method,
        url=signed.url,
        headers={name.lower(): value for name, value in signed.headers.items()},
        body=signed.body,
        query=parse_qs(urlsplit(signed.url).query, keep_blank_values=True),
        received_at=now,
    )
    get_adapter(provider).verify(request, credentials, now)
    return published(provider, request, received_at=now)


def status_round_trip(sent: SentMessage | dict[str, Any], state: str, reason: str | None = None) -> DeliveryStatus:
    """The provider's signed status webhook for `sent` (build_status), through its adapter, read
    by its sender: exactly one event, a `message.status_updated` the sender reads."""
    record = vars(sent) if isinstance(sent, SentMessage) else sent
    provider = record["provider"]
    now = datetime.now(UTC)
    credentials = demo_credentials(provider)
    signed = build_status(provider, credentials, HUB_URL.format(provider=provider), record, state, reason, now)
    [event] = ingest(provider, signed, credentials, now)
    assert event.type == "message.status_updated"
    status = get_sender(provider).status(event)  # type: ignore[union-attr]
    assert status is not None
    return status


RECORDED = Path(__file__).resolve().parents[2] / "events"


def recorded(provider: str, name: str, now: datetime | None = None) -> CanonicalEvent:
    """The one event ingest publishes for `tests/events/<provider>/<name>` (normalised; these
    recordings carry no signature, which the adapters' own tests check)."""
    body = (RECORDED / provider / name).read_bytes()
    content_type = "application/json" if name.endswith(".json") else "application/x-www-form-urlencoded"
    url, headers = HUB_URL.format(provider=provider), {"content-type": content_type}
    [event] = posted(provider, body, received_at=now or datetime.now(UTC), url=url, headers=headers)
    return event
