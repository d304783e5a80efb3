from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from switchboard_core.events import CanonicalEvent, Channel, Contact, EventDraft, event_id


def test_phone_must_be_e164():
    assert Contact(phone="+14155550100").phone == "+14155550100"
    for bad in ("4155550100", "+0155550100", "+1 415 555 0100", "+1234567890123456"):
        with pytest.raises(ValidationError):
            Contact(phone=bad)


def test_email_is_lower_cased():
    assert Contact(email=" Ana@Example.COM ").email == "ana@example.com"
    with pytest.raises(ValidationError):
        Contact(email="not-an-address")


def test_type_must_be_entity_dot_action():
    with pytest.raises(ValidationError):
        EventDraft(type="MessageReceived", provider_event_id="1")


def test_event_ids_are_deterministic_per_provider_connection_and_item():
    assert event_id("twilio", "con_1", "SM1") == event_id("twilio", "con_1", "SM1")
    assert event_id("twilio", "con_1", "SM1") != event_id("twilio", "con_2", "SM1")


def test_from_draft_fills_identity_and_defaults_occurred_at():
    received = datetime(2026, 5, 1, 12, tzinfo=UTC)
    event = CanonicalEvent.from_draft(
        EventDraft(type="message.received", provider_event_id="SM1"),
        provider="twilio",
        connection="con_1",
        tenant="acme",
        channel=Channel.TELEPHONY,
        received_at=received,
        raw_ref=None,
    )
    assert event.occurred_at == received
    assert event.schema_version == "1.0"
    assert event.source == "switchboard.twilio"


def test_naive_times_are_refused():
    with pytest.raises(ValidationError):
        EventDraft(type="message.received", provider_event_id="1", occurred_at=datetime(2026, 1, 1))
