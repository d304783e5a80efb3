from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from switchboard_core.events import CanonicalEvent, Channel, Contact, EventDraft, RawRef, event_id


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


def _validated(draft: EventDraft, **identity) -> CanonicalEvent:
    """What from_draft built before its fast path: the draft dumped and validated again."""
    return CanonicalEvent(
        **draft.model_dump(exclude={"occurred_at"}),
        id=event_id(identity["provider"], identity["connection"], draft.provider_event_id),
        occurred_at=draft.occurred_at or identity["received_at"],
        **identity,
    )


@pytest.mark.parametrize(
    "draft",
    [
        EventDraft(type="message.received", provider_event_id="m1"),
        EventDraft(
            type="message.received",
            provider_event_id="SM\u00e9\U0001f600",
            occurred_at=datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
            contact={
                "phone": "+14155550100",
                "email": " Ann@Example.COM ",
                "name": "Ann \u2713",
                "handles": [{"platform": "x", "id": "42", "handle": "ann"}],
                "crm_ids": {"hubspot": "7"},
            },
            conversation_key="k",
            text="hello \u00e9 " * 50,
            attachments=[{"url": "https://example.com/a.jpg", "content_type": "image/jpeg"}, {"provider_id": "9"}],
            attributes={"nested": {"list": [1, 2.5, None, True, "x"]}, "empty": {}, "big": 10**20},
        ),
    ],
)
@pytest.mark.parametrize("channel", [Channel.SOCIAL, "crm"])
@pytest.mark.parametrize("raw_ref", [None, RawRef(bucket="b", key="raw/k.json")])
def test_from_draft_builds_what_validating_the_dumped_draft_builds(draft, channel, raw_ref):
    identity = {
        "provider": "twilio",
        "connection": "con_1",
        "tenant": "acme",
        "channel": channel,
        "received_at": datetime(2026, 12, 2, 15, 0, tzinfo=UTC),
        "raw_ref": raw_ref,
    }
    built = CanonicalEvent.from_draft(draft, **identity)
    expected = _validated(draft, **identity)
    assert built == expected
    assert built.model_dump_json() == expected.model_dump_json()
    assert built.model_dump() == expected.model_dump()
    assert built.model_fields_set == expected.model_fields_set
    assert type(built.channel) is Channel
    # The event does not share the draft's top-level containers.
    assert built.attributes is not draft.attributes and built.attachments is not draft.attachments


def test_event_ids_are_uuid5_of_provider_connection_and_item():
    import uuid

    namespace = uuid.UUID("6f1c2a7e-2f55-4c7e-9b8e-5d1f0f3c7a10")
    for item in ["", "1", "SM" + "a" * 300, "\u00e9\U0001f600/x"]:
        assert event_id("meta", "con_2", item) == str(uuid.uuid5(namespace, f"meta/con_2/{item}"))


def test_from_draft_still_refuses_a_naive_received_at():
    with pytest.raises(ValidationError):
        CanonicalEvent.from_draft(
            EventDraft(type="message.received", provider_event_id="1"),
            provider="twilio",
            connection="con_1",
            tenant="acme",
            channel=Channel.TELEPHONY,
            received_at=datetime(2026, 1, 1),
            raw_ref=None,
        )
