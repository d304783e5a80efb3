"""SMS/MMS answers' delivery statuses end to end on the local runtime, for Twilio, Telnyx,
Plivo and Bandwidth: a message sent through the provider sandbox with the demo connection's
outbound credentials, then `POST /_sandbox/status` makes the sandbox call the hub back with
the provider's signed status webhook; ingest takes it (200), publishes
`message.status_updated`, and the provider's sender reads it as the same message's state."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime

import pytest

from infra.local.samples import build_sample
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound import OutboundMessage, get_sender, reply_address, send
from switchboard_core.outbound.base import Attachment
from switchboard_core.outbound.transport import http_transport
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import WebhookRequest
from tests.builders import canonical
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
DEFAULT_SAMPLE = {"twilio": "sms", "telnyx": "sms", "plivo": "sms", "bandwidth": "message-received"}
FAILURE = {"twilio": "30003", "telnyx": "40300", "plivo": "200", "bandwidth": "4720"}


def _address(hub, provider: str):
    """Where an answer to the provider's sample inbound message goes (read as ingest would)."""
    credentials = hub.connection(provider)["credentials"]
    signed = build_sample(provider, DEFAULT_SAMPLE[provider], credentials, hub.webhook_url(provider))
    request = WebhookRequest(signed.method, signed.url, {k.lower(): v for k, v in signed.headers.items()}, signed.body)
    [draft] = get_adapter(provider).normalise(request)
    event = canonical(
        draft,
        received_at=datetime.now(UTC),
        provider=provider,
        connection=hub.connection(provider)["id"],
        tenant="demo",
    )
    address = reply_address(event)
    assert address is not None
    return address


def _emit(hub, message_id: str, state: str, reason: str | None = None) -> dict:
    order = json.dumps({"message_id": message_id, "state": state, "reason": reason}).encode()
    request = urllib.request.Request(
        f"{hub.runtime.provider_apis_url}/_sandbox/status",
        data=order,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


@pytest.mark.parametrize("provider", sorted(DEFAULT_SAMPLE))
def test_delivery_statuses_come_back_through_ingest(hub, provider: str) -> None:
    sender = get_sender(provider)
    assert sender is not None
    message = OutboundMessage(
        "Your replacement ships today",
        message_id=f"msg_{provider}",
        attachments=(Attachment("https://cdn.example.com/label.png", "image/png"),),
        status_callback=hub.webhook_url(provider),
    )
    provider_id = send(
        _address(hub, provider),
        message,
        hub.connection(provider)["outbound"],
        http_transport,
        base_url=f"{hub.runtime.provider_apis_url}/{provider}",
    )
    seen: list[dict] = []

    def statuses() -> list:
        seen.extend(e for e in hub.bus.events() if e["source"] == f"switchboard.{provider}")
        read = []
        for event in seen:
            if event["detail-type"] != "message.status_updated":
                continue
            status = sender.status(CanonicalEvent.model_validate(event["detail"]))
            if status is not None and status.provider_message_id == provider_id:
                read.append(status)
        return read

    assert _emit(hub, provider_id, "delivered")["hub_status"] == 200
    [delivered] = wait_for(statuses, timeout=20)
    assert delivered.state == "delivered"
    assert _emit(hub, provider_id, "failed", FAILURE[provider])["hub_status"] == 200
    both = wait_for(lambda: len(statuses()) >= 2 and statuses(), timeout=20)
    failed = [s for s in both if s.state == "failed"]
    assert failed and failed[0].reason is not None and failed[0].reason.startswith(f"{provider}_{FAILURE[provider]}")
