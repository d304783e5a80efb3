"""Telegram adapter: X-Telegram-Bot-Api-Secret-Token, update_id dedupe, normalisation of updates, fuzzing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard_core.errors import HubError
from switchboard_core.events import Channel
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import (
    MalformedPayload,
    SignatureError,
    WebhookRequest,
)
from tests.unit.providers.fuzz import FUZZ
from tests.unit.providers.support import (
    assert_drafts_publishable,
    assert_raises_only_hub_errors,
    recorded_event,
    webhook_request,
)

NOW = datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
HUB_URL = "https://hub.example.com/webhooks/telegram/conn_01HZY"
CREDENTIALS = {"secret_token": "s3cr3t_T0ken-for_setWebhook"}


def make_request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return webhook_request(HUB_URL, body, headers, received_at=NOW)


def signed(body: bytes, secret: str = CREDENTIALS["secret_token"]) -> WebhookRequest:
    return make_request(body, {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret})


def recorded(name: str) -> bytes:
    return recorded_event("telegram", name)


def normalise(adapter, name):
    drafts = adapter.normalise(signed(recorded(name)))
    assert_publishable(drafts)
    return drafts


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "telegram", Channel.SOCIAL, NOW)


@pytest.fixture
def adapter():
    return get_adapter("telegram")


# --- secret token ----------------------------------------------------------------------------------


def test_matching_secret_token_is_accepted(adapter):
    adapter.verify(signed(recorded("message.json")), CREDENTIALS, NOW)


@pytest.mark.parametrize(
    "given_token",
    [
        "wrong",
        CREDENTIALS["secret_token"][:-1],
        CREDENTIALS["secret_token"] + "x",
        CREDENTIALS["secret_token"].upper(),
        "\ud800",
    ],
)
def test_other_tokens_are_refused(adapter, given_token):
    with pytest.raises(SignatureError) as caught:
        adapter.verify(signed(recorded("message.json"), given_token), CREDENTIALS, NOW)
    assert CREDENTIALS["secret_token"] not in str(caught.value)


def test_missing_header_or_credential_is_refused(adapter):
    with pytest.raises(SignatureError, match="X-Telegram-Bot-Api-Secret-Token"):
        adapter.verify(make_request(recorded("message.json"), {"Content-Type": "application/json"}), CREDENTIALS, NOW)
    with pytest.raises(SignatureError):
        adapter.verify(signed(recorded("message.json"), ""), CREDENTIALS, NOW)
    with pytest.raises(SignatureError):
        adapter.verify(signed(recorded("message.json")), {"secret_token": ""}, NOW)


def test_delivery_id_is_the_update_id(adapter):
    assert adapter.delivery_id(signed(recorded("message.json"))) == "update:10000"
    with pytest.raises(MalformedPayload):
        adapter.delivery_id(signed(b'{"message": {}}'))


# --- normalisation ---------------------------------------------------------------------------------


def test_message(adapter):
    [event] = normalise(adapter, "message.json")
    assert (event.type, event.provider_event_id, event.text) == ("message.received", "1111111:1365", "/start")
    assert [(h.platform, h.id, h.handle) for h in event.contact.handles] == [("telegram", "1111111", "Test")]
    assert event.contact.name == "Test Lastname"
    assert event.conversation_key == "telegram:1111111"
    assert event.occurred_at == datetime.fromtimestamp(1441645532, UTC)
    assert event.attributes["update_id"] == 10000 and event.attributes["chat"]["type"] == "private"


def test_edited_message_is_an_update_with_its_own_id(adapter):
    [event] = normalise(adapter, "edited-message.json")
    assert (event.type, event.text) == ("message.updated", "Edited text")
    assert event.provider_event_id == "1111111:1365:edit:1441646600"
    assert event.occurred_at == datetime.fromtimestamp(1441646600, UTC)


def test_shared_own_contact_becomes_the_phone(adapter):
    [event] = normalise(adapter, "contact.json")
    assert event.contact.phone == "+14155550142"
    assert event.attributes["contact_phone_e164"] == "+14155550142"
    assert event.attributes["contact"]["phone_number"] == "14155550142"


def test_someone_elses_contact_stays_in_attributes(adapter):
    update = json.loads(recorded("contact.json"))
    update["message"]["contact"]["user_id"] = 999
    update["message"]["contact"]["phone_number"] = "+44 20 7946 0958"
    [event] = adapter.normalise(signed(json.dumps(update).encode()))
    assert event.contact.phone is None
    assert event.attributes["contact_phone_e164"] == "+442079460958"


def test_own_contact_digits_are_international_others_must_be_valid(adapter):
    update = json.loads(recorded("contact.json"))
    # Telegram verified the sender's own number: kept although the metadata calls the range invalid.
    update["message"]["contact"]["phone_number"] = "447700900123"
    [event] = adapter.normalise(signed(json.dumps(update).encode()))
    assert event.contact.phone == "+447700900123"
    # An address-book entry of someone else, typed as a national number: not read as Singapore's +65.
    update["message"]["contact"].update(user_id=999, phone_number="6505550100")
    [event] = adapter.normalise(signed(json.dumps(update).encode()))
    assert event.contact.phone is None and event.attributes["contact_phone_e164"] is None


def test_photo_caption_location_in_a_group(adapter):
    [event] = normalise(adapter, "location-photo-group.json")
    assert event.text == "Broken seal on delivery"
    assert event.conversation_key == "telegram:-1001234567890"
    [photo] = event.attachments
    assert (photo.provider_id, photo.content_type) == ("AgACAgQAAxkBAAIBTWXlarge", "image/*")
    assert event.attributes["location"] == {"latitude": 52.520008, "longitude": 13.404954}


def test_channel_post_is_from_the_channel(adapter):
    [event] = normalise(adapter, "channel-post.json")
    assert event.type == "message.received"
    assert event.contact.name == "Announcements"
    assert event.conversation_key == "telegram:-1009876543210"


def test_callback_query(adapter):
    [event] = normalise(adapter, "callback-query.json")
    assert (event.type, event.provider_event_id) == ("interaction.created", "callback:4382bfdwdsb323b2d9")
    assert event.text == "Data from button callback"
    assert event.conversation_key == "telegram:1111111"
    assert event.attributes["chat_instance"] == "-7846583757430235841"


def test_other_updates_are_notifications(adapter):
    [event] = normalise(adapter, "my-chat-member.json")
    assert (event.type, event.attributes["kind"]) == ("provider.notification", "telegram.my_chat_member")
    assert event.provider_event_id == "update:10006"
    assert event.attributes["data"]["new_chat_member"]["status"] == "kicked"


@pytest.mark.parametrize(
    "body",
    [
        b"no",
        b"[]",
        b"{}",
        b'{"update_id": 1}',
        b'{"update_id": -1, "message": {}}',
        b'{"update_id": "x", "message": {}}',
        b'{"update_id": 1, "message": []}',
        b'{"update_id": 1, "callback_query": 5}',
        b'{"update_id": 1, "message": {}, "n": NaN}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_malformed_bodies(adapter, body):
    with pytest.raises(MalformedPayload):
        adapter.normalise(signed(body))


def test_no_get_handshake(adapter):
    with pytest.raises(HubError) as caught:
        adapter.handshake(make_request(b"", {}), [CREDENTIALS])
    assert caught.value.status == 405


# --- property tests ---------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["14155550142", "+1 415 555 0142", "\ud800", "private"]),
)
KEYS = [
    "message_id",
    "from",
    "chat",
    "id",
    "date",
    "text",
    "caption",
    "contact",
    "phone_number",
    "user_id",
    "photo",
    "file_id",
    "document",
    "mime_type",
    "username",
    "first_name",
    "data",
    "message",
    "edit_date",
    "sender_chat",
]
JSON_VALUES = st.recursive(
    SCALARS,
    lambda c: st.one_of(
        st.lists(c, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), c, max_size=6)
    ),
    max_leaves=30,
)
UPDATES = st.fixed_dictionaries(
    {"update_id": st.one_of(st.integers(0, 2**40), SCALARS)},
    optional={
        "message": JSON_VALUES,
        "edited_message": JSON_VALUES,
        "callback_query": JSON_VALUES,
        "channel_post": JSON_VALUES,
        "poll": JSON_VALUES,
    },
)


@FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(["x-telegram-bot-api-secret-token", "content-type"]), st.text(max_size=40), max_size=2
    ),
    body=st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode())),
    secret=st.text(max_size=12),
)
def test_property_any_request_raises_only_hub_errors(headers, body, secret):
    adapter = get_adapter("telegram")
    request = WebhookRequest(method="POST", url=HUB_URL, headers=headers, body=body)
    assert_raises_only_hub_errors(adapter, request, {"secret_token": secret}, NOW, assert_publishable)


@FUZZ
@given(payload=st.one_of(UPDATES, JSON_VALUES))
def test_property_signed_json_verifies_and_normalises_or_is_malformed(payload):
    adapter = get_adapter("telegram")
    request = signed(json.dumps(payload).encode())
    adapter.verify(request, CREDENTIALS, NOW)
    try:
        assert_publishable(adapter.normalise(request))
        adapter.delivery_id(request)
    except MalformedPayload:
        pass
