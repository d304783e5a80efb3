"""switchboard_core.phones: numbers a carrier or platform delivered are kept when possible;
numbers people typed into a CRM only when valid. Real examples through both paths, and
through adapters of each kind."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from switchboard_core.phones import delivered_e164, typed_e164
from switchboard_core.providers import get_adapter
from tests.unit.providers.support import recorded_event, webhook_request

# Possible numbers (right length for their country) that libphonenumber's metadata calls invalid.
POSSIBLE_NOT_VALID = [
    "+447700900123",  # Ofcom's drama range 07700 900000-900999 (a documented test range)
    "+441632960001",  # Ofcom's drama range 01632 960000-960999
    "+15555550123",  # NANP 555-01xx under area code 555, which is not assigned
    "+18685550123",  # an NANP area code whose ranges the pinned metadata does not list as valid
]


@pytest.mark.parametrize("number", POSSIBLE_NOT_VALID)
def test_a_delivered_possible_number_is_kept_a_typed_one_is_not(number):
    assert delivered_e164(number) == number
    assert typed_e164(number) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+14155550123", "+14155550123"),
        ("+1 (415) 555-0123", "+14155550123"),
        ("4915112345678", "+4915112345678"),  # bare digits: kept when valid as international digits
        ("447700900123", None),  # bare digits in a test range: maybe a national number, so they must be valid
        ("6505550100", None),  # a US number without its country code, not Singapore's +65 0555 0100
        ("+4412345", None),  # possible only locally (no area code)
        ("+12345", None),  # short code
        ("12345", None),
        ("+7123", None),
        ("+999123456789", None),  # no such country code
        ("+10000000000", None),  # all zeros: a withheld caller id's placeholder, not one person
        ("+266696687", None),  # Twilio's "Anonymous" caller id (too short for Lesotho)
        ("+7378742833", None),  # Twilio's "Restricted"
        ("client:alice", None),
        ("sip:alice@example.com", None),
        ("", None),
        (None, None),
        (4155550123, None),
        (["+14155550123"], None),
    ],
)
def test_delivered_numbers(raw, expected):
    assert delivered_e164(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("447700900123", "+447700900123"),  # Vonage msisdn / WhatsApp wa_id: international digits, no '+'
        ("15555550123", "+15555550123"),
        ("4915112345678", "+4915112345678"),
        ("12345", None),
        ("10000000000", None),
    ],
)
def test_digits_a_provider_documents_as_international_are_kept_when_possible(raw, expected):
    assert delivered_e164(raw, international_digits=True) == expected


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 415 555 0123", None, "+14155550123"),
        ("+44 20 7946 0000", None, "+442079460000"),
        ("020 7946 0000", "GB", "+442079460000"),  # a local format, read in the given region
        ("020 7946 0000", None, None),
        ("+44 7700 900123", None, None),
        ("+1 555 555 0123", None, None),
        ("not a number", None, None),
        ({"phone": "+14155550123"}, None, None),
    ],
)
def test_typed_numbers(raw, region, expected):
    assert typed_e164(raw, region) == expected


# --- through the adapters ------------------------------------------------------------------------


def test_vonage_sms_msisdn_in_a_test_range_keeps_its_contact():
    adapter = get_adapter("vonage")
    body = urlencode(
        {
            "msisdn": "447700900123",
            "to": "447700900000",
            "messageId": "0A0000001",
            "text": "Hello",
            "type": "text",
            "keyword": "HELLO",
            "message-timestamp": "2024-06-12 14:06:00",
        }
    ).encode()
    [event] = adapter.normalise(
        webhook_request(
            "https://hub.example.com/webhooks/vonage/c", body, {"Content-Type": "application/x-www-form-urlencoded"}
        )
    )
    assert event.type == "message.received"
    assert event.contact.phone == "+447700900123"


def test_sns_two_way_sms_from_a_new_range_keeps_its_contact():
    adapter = get_adapter("sns")
    inner = {
        "originationNumber": "+18685550123",
        "destinationNumber": "+14155550100",
        "messageKeyword": "KEYWORD",
        "messageBody": "hi",
        "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
    }
    message = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:sms",
        "Message": json.dumps(inner),
        "Timestamp": "2024-06-12T14:06:00.000Z",
    }
    [event] = adapter.normalise(
        webhook_request(
            "https://hub.example.com/webhooks/sns/c", json.dumps(message).encode(), {"Content-Type": "application/json"}
        )
    )
    assert event.type == "message.received"
    assert event.contact.phone == "+18685550123"


@pytest.mark.parametrize(("typed", "expected"), [("+44 20 7946 0000", "+442079460000"), ("+44 7700 900123", None)])
def test_intercom_contact_phone_must_be_valid(typed, expected):
    adapter = get_adapter("intercom")
    payload = json.loads(recorded_event("intercom", "contact-user-created.json"))
    payload["data"]["item"]["phone"] = typed
    [event] = adapter.normalise(
        webhook_request(
            "https://hub.example.com/webhooks/intercom/c",
            json.dumps(payload).encode(),
            {"Content-Type": "application/json"},
        )
    )
    assert event.contact.phone == expected


@pytest.mark.parametrize(("typed", "expected"), [("+1 (415) 555-0123", "+14155550123"), ("+1 555 555 0123", None)])
def test_zendesk_requester_phone_must_be_valid(typed, expected):
    adapter = get_adapter("zendesk")
    payload = json.loads(recorded_event("zendesk", "trigger-ticket-updated.json"))
    payload["requester_phone"] = typed
    [event] = adapter.normalise(
        webhook_request(
            "https://hub.example.com/webhooks/zendesk/c",
            json.dumps(payload).encode(),
            {"Content-Type": "application/json"},
        )
    )
    assert event.contact.phone == expected
