"""Vonage Messages API statuses for an SMS the hub sent: the sandbox's signed status webhook,
verified and normalised by the ingest adapter, read back by the sender."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra.local.samples import build_status, demo_credentials
from switchboard_core.outbound.vonage import VonageSender
from tests.unit.outbound.sms_support import ingest

NOW = datetime(2026, 12, 2, 9, tzinfo=UTC)
SENT = {
    "provider": "vonage",
    "to": "14155550178",
    "text": "On it",
    "message_id": "aaaaaaaa-1111-2222-3333-444444444444",
    "details": {"from": "14155550100"},
}


@pytest.mark.parametrize(("state", "reason"), [("sent", None), ("delivered", None), ("read", None), ("failed", "1320")])
def test_a_status_webhook_comes_back_as_the_state_it_reports(state, reason) -> None:
    credentials = demo_credentials("vonage")
    signed = build_status("vonage", credentials, "https://hub.example/webhooks/vonage/con_1", SENT, state, reason, NOW)
    (event,) = ingest("vonage", signed, credentials, NOW)
    report = VonageSender().status(event)
    assert report is not None and report.provider_message_id == SENT["message_id"] and report.state == state
    assert (report.reason is not None) == (state == "failed")


def test_inbound_messages_and_voice_events_are_not_reports() -> None:
    from infra.local.samples import build_sample

    credentials = demo_credentials("vonage")
    for sample in ("whatsapp", "voice-event"):
        signed = build_sample("vonage", sample, credentials, "https://hub.example/webhooks/vonage/con_1", NOW)
        for event in ingest("vonage", signed, credentials, NOW):
            assert VonageSender().status(event) is None
