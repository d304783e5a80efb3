"""Intercom adapter: X-Hub-Signature (sha1), ping handshake, conversation/contact topics, fuzzing."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard_core.events import Channel
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import (
    MalformedPayload,
    SignatureError,
    WebhookRequest,
)
from switchboard_core.providers.intercom import IntercomAdapter, html_to_text
from tests.unit.providers.fuzz import FUZZ
from tests.unit.providers.support import (
    assert_drafts_publishable,
    assert_raises_only_hub_errors,
    recorded_event,
    webhook_request,
)

SECRET = "5f4dcc3b5aa765d61d8327deb882cf99a1b2c3d4"
URL = "https://hub.example.com/webhooks/intercom/conn_01HZZ"
NOW = datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)


def make_request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return webhook_request(URL, body, headers, received_at=NOW)


def signed(body: bytes, secret: str = SECRET) -> WebhookRequest:
    digest = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return make_request(body, {"Content-Type": "application/json", "X-Hub-Signature": f"sha1={digest}"})


def recorded(name: str) -> bytes:
    return recorded_event("intercom", name)


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "intercom", Channel.CRM, NOW)


@pytest.fixture
def adapter() -> IntercomAdapter:
    return get_adapter("intercom")


# --- signature ---------------------------------------------------------------------------------


def test_github_style_vector_construction_with_sha1(adapter):
    """No published Intercom vector: the GitHub example (providers.md §4 #1) with SHA-1 instead of SHA-256."""
    body = b"Hello, World!"
    expected = hmac.new(b"It's a Secret to Everybody", body, hashlib.sha1).hexdigest()
    request = make_request(body, {"X-Hub-Signature": "sha1=" + expected})
    adapter.verify(request, {"client_secret": "It's a Secret to Everybody"}, NOW)
    upper = make_request(body, {"X-Hub-Signature": "SHA1=" + expected.upper()})
    adapter.verify(upper, {"client_secret": "It's a Secret to Everybody"}, NOW)


@pytest.mark.parametrize(
    "name",
    ["conversation-user-created.json", "conversation-admin-replied.json", "contact-user-created.json", "ping.json"],
)
def test_recorded_payloads_verify(adapter, name):
    adapter.verify(signed(recorded(name)), {"client_secret": SECRET}, NOW)


def test_tampered_body_is_refused(adapter):
    request = signed(recorded("conversation-user-created.json"))
    with pytest.raises(SignatureError):
        adapter.verify(
            make_request(request.body.replace(b"1042", b"1043"), dict(request.headers)), {"client_secret": SECRET}, NOW
        )


def test_wrong_key_is_refused(adapter):
    with pytest.raises(SignatureError):
        adapter.verify(signed(recorded("ping.json")), {"client_secret": "another"}, NOW)


@pytest.mark.parametrize("value", [None, "", "sha1=", "sha256=abc", "abcdef", "sha1=zz"])
def test_missing_or_unreadable_signature_is_refused(adapter, value):
    body = recorded("ping.json")
    headers = {} if value is None else {"X-Hub-Signature": value}
    with pytest.raises(SignatureError, match="X-Hub-Signature"):
        adapter.verify(make_request(body, headers), {"client_secret": SECRET}, NOW)


def test_sha256_signature_of_the_same_body_is_not_accepted(adapter):
    body = recorded("ping.json")
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureError):
        adapter.verify(make_request(body, {"X-Hub-Signature": "sha1=" + digest}), {"client_secret": SECRET}, NOW)


# --- handshake, delivery id ------------------------------------------------------------------------


def test_ping_is_a_handshake_with_no_events(adapter):
    assert adapter.normalise(signed(recorded("ping.json"))) == []
    assert adapter.success_response(signed(recorded("ping.json"))).status == 200


def test_delivery_id_is_the_notification_id(adapter):
    assert (
        adapter.delivery_id(signed(recorded("conversation-user-created.json")))
        == "notif_4e3504a3-ba3f-46dc-ab48-8e4d5bdfdf4e"
    )
    assert adapter.delivery_id(signed(b"nope")).startswith("sha256:")


# --- normalisation --------------------------------------------------------------------------------


def normalise(adapter, name: str):
    drafts = adapter.normalise(signed(recorded(name)))
    assert_publishable(drafts)
    return drafts


def test_user_created_conversation_is_a_received_message(adapter):
    [event] = normalise(adapter, "conversation-user-created.json")
    assert event.type == "message.received"
    assert event.provider_event_id == "notif_4e3504a3-ba3f-46dc-ab48-8e4d5bdfdf4e"
    assert event.text == "Hi, my order #1042 never arrived.\nCan you help?"
    assert event.contact.email == "ada.lovelace@example.com"
    assert event.contact.name == "Ada Lovelace"
    assert event.contact.crm_ids == {"intercom": "6657a1f2e4b0a1b2c3d4e5f6"}
    assert event.conversation_key == "intercom:ecahpwf5:147"
    assert event.occurred_at == datetime.fromtimestamp(1718201285, UTC)
    assert event.attributes["topic"] == "conversation.user.created"
    assert event.attributes["item"]["source"]["delivered_as"] == "customer_initiated"


def test_admin_reply_is_a_sent_message_with_the_newest_part(adapter):
    [event] = normalise(adapter, "conversation-admin-replied.json")
    assert event.type == "message.sent"
    assert event.text == "Sorry about that, Ada!\u00a0A replacement ships today.\nTracking: 1Z999"
    assert event.contact.email == "ada.lovelace@example.com"  # the customer, not the admin
    assert event.conversation_key == "intercom:ecahpwf5:147"
    assert event.attributes["delivery_attempts"] == 2


def test_contact_created(adapter):
    [event] = normalise(adapter, "contact-user-created.json")
    assert event.type == "contact.created"
    assert event.contact.email == "charles.babbage@example.com"
    assert event.contact.phone == "+442079460000"
    assert event.contact.name == "Charles Babbage"
    assert event.attributes["item"]["custom_attributes"] == {"plan": "pro"}


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("conversation.user.replied", "message.received"),
        ("conversation.admin.single.created", "message.sent"),
        ("conversation.admin.noted", "message.sent"),
        ("conversation.admin.closed", "provider.notification"),
        ("contact.lead.created", "contact.created"),
        ("user.created", "contact.created"),
        ("contact.user.deleted", "contact.deleted"),
        ("contact.email.updated", "contact.updated"),
        ("contact.tag.created", "contact.updated"),
        ("user.tag.deleted", "contact.updated"),
        ("company.created", "provider.notification"),
        ("ticket.created", "provider.notification"),
    ],
)
def test_topic_mapping(adapter, topic, expected):
    body = json.dumps(
        {
            "type": "notification_event",
            "id": "notif_1",
            "topic": topic,
            "app_id": "a",
            "data": {"item": {"id": "1", "email": "x@example.com"}},
        }
    ).encode()
    [event] = adapter.normalise(signed(body))
    assert event.type == expected


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>a</p><p>b</p>", "a\nb"),
        ("plain", "plain"),
        ("a<br>b", "a\nb"),
        ("<script>x</script>y", "y"),
        ("&lt;tag&gt; &amp;", "<tag> &"),
        ("<p></p>", None),
        ("<p>   </p>", None),
        (None, None),
        (3, None),
        ("<b>un<i>closed", "unclosed"),
    ],
)
def test_html_to_text(html, text):
    assert html_to_text(html) == text


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"topic": "conversation.user.created"}',
        b'{"topic": "x", "id": "n", "data": {}}',
        b'{"topic": "x", "id": "n", "data": []}',
        b'{"topic": 1, "id": "n", "data": {"item": {}}}',
        b"\xff",
    ],
)
def test_malformed_bodies(adapter, body):
    with pytest.raises(MalformedPayload):
        adapter.normalise(signed(body))


# --- property tests --------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(
        ["user", "admin", "a@b.c", "+1 415 555 0100", "\ud800", "<p>x</p>", "<", "&#xd800;", "&#99999999;"]
    ),
)
KEYS = st.one_of(
    st.sampled_from(
        [
            "type",
            "id",
            "topic",
            "app_id",
            "data",
            "item",
            "source",
            "author",
            "body",
            "conversation_parts",
            "contacts",
            "email",
            "phone",
            "name",
            "user",
            "created_at",
        ]
    ),
    st.text(max_size=8),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=8)),
    max_leaves=30,
)
NOTIFICATIONS = st.fixed_dictionaries(
    {
        "topic": st.sampled_from(
            [
                "ping",
                "conversation.user.created",
                "conversation.admin.replied",
                "contact.user.created",
                "user.deleted",
                "company.created",
            ]
        ),
        "id": st.one_of(st.just("notif_1"), SCALARS),
        "data": st.one_of(st.fixed_dictionaries({"item": JSON_VALUES}), JSON_VALUES),
    },
    optional={"app_id": SCALARS, "created_at": SCALARS},
)


@FUZZ
@given(
    headers=st.dictionaries(
        st.one_of(st.just("x-hub-signature"), st.text(max_size=8)),
        st.one_of(st.text(max_size=50), st.just("sha1=\udcff")),
        max_size=3,
    ),
    body=st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode())),
    secret=st.text(max_size=12),
)
def test_property_any_request_raises_only_hub_errors(headers, body, secret):
    adapter = get_adapter("intercom")
    request = WebhookRequest(method="POST", url=URL, headers=headers, body=body)
    assert_raises_only_hub_errors(adapter, request, {"client_secret": secret}, NOW, assert_publishable)


@FUZZ
@given(payload=st.one_of(NOTIFICATIONS, st.dictionaries(KEYS, JSON_VALUES, max_size=8), JSON_VALUES))
def test_property_signed_json_verifies_and_normalises_or_is_malformed(payload):
    adapter = get_adapter("intercom")
    request = signed(json.dumps(payload).encode())
    adapter.verify(request, {"client_secret": SECRET}, NOW)
    assert adapter.delivery_id(request)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass
