"""Zendesk adapter: signature (documented algorithm, test secret), replay window, event and trigger
payloads, fuzzing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

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
from switchboard_core.providers.zendesk import (
    TEST_SIGNING_SECRET,
    ZendeskAdapter,
    compute_signature,
)
from tests.unit.providers.fuzz import FUZZ
from tests.unit.providers.support import (
    assert_drafts_publishable,
    assert_raises_only_hub_errors,
    recorded_event,
    webhook_request,
)

SECRET = "dGhpc19pc19hX3JlYWxfc2VjcmV0X2Zvcl90ZXN0czE="
URL = "https://hub.example.com/webhooks/zendesk/conn_01HZZ"
NOW = datetime(2024, 4, 17, 17, 18, 10, tzinfo=UTC)
NOW_TS = "2024-04-17T17:18:10Z"


def make_request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return webhook_request(URL, body, headers, received_at=NOW)


def documented_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Zendesk's algorithm written out with hmac alone: base64(HMACSHA256(TIMESTAMP + BODY))."""
    return base64.b64encode(
        hmac.new(secret.encode("utf-8"), timestamp.encode() + body, hashlib.sha256).digest()
    ).decode()


def signed(
    body: bytes, timestamp: str = NOW_TS, secret: str = SECRET, extra: dict[str, str] | None = None
) -> WebhookRequest:
    return make_request(
        body,
        {
            "Content-Type": "application/json",
            "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
            "X-Zendesk-Webhook-Signature": documented_signature(secret, timestamp, body),
            **(extra or {}),
        },
    )


def recorded(name: str) -> bytes:
    return recorded_event("zendesk", name)


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "zendesk", Channel.CRM, NOW)


@pytest.fixture
def adapter() -> ZendeskAdapter:
    return get_adapter("zendesk")


# --- signature ---------------------------------------------------------------------------------


def test_documented_algorithm_matches_the_adapter():
    body = recorded("ticket-created.json")
    assert compute_signature(SECRET, NOW_TS, body) == documented_signature(SECRET, NOW_TS, body)


def test_zendesk_test_secret_is_used_verbatim_not_base64_decoded(adapter):
    """Test requests (before the webhook exists) are signed with the documented static secret as UTF-8 text."""
    body = recorded("ticket-created.json")
    request = signed(body, secret=TEST_SIGNING_SECRET)
    adapter.verify(request, {"signing_secret": TEST_SIGNING_SECRET}, NOW)
    decoded_key = base64.b64decode(TEST_SIGNING_SECRET)
    assert decoded_key == b"this_secret_is_for_testing_only"
    wrong = base64.b64encode(hmac.new(decoded_key, NOW_TS.encode() + body, hashlib.sha256).digest()).decode()
    with pytest.raises(SignatureError):
        adapter.verify(
            make_request(body, {**request.headers, "x-zendesk-webhook-signature": wrong}),
            {"signing_secret": TEST_SIGNING_SECRET},
            NOW,
        )


@pytest.mark.parametrize(
    "name",
    ["ticket-created.json", "ticket-comment-added.json", "user-active-changed.json", "trigger-ticket-updated.json"],
)
def test_recorded_payloads_verify(adapter, name):
    adapter.verify(signed(recorded(name)), {"signing_secret": SECRET}, NOW + timedelta(seconds=3))


def test_empty_body_is_signed_too(adapter):
    adapter.verify(signed(b""), {"signing_secret": SECRET}, NOW)


def test_tampered_body_or_timestamp_is_refused(adapter):
    request = signed(recorded("ticket-created.json"))
    with pytest.raises(SignatureError):
        adapter.verify(
            make_request(request.body.replace(b"35436", b"35437"), dict(request.headers)),
            {"signing_secret": SECRET},
            NOW,
        )
    headers = {**request.headers, "x-zendesk-webhook-signature-timestamp": "2024-04-17T17:18:11Z"}
    with pytest.raises(SignatureError):
        adapter.verify(make_request(request.body, headers), {"signing_secret": SECRET}, NOW)


def test_wrong_key_is_refused(adapter):
    with pytest.raises(SignatureError):
        adapter.verify(signed(recorded("ticket-created.json")), {"signing_secret": "another"}, NOW)
    with pytest.raises(SignatureError):
        adapter.verify(signed(recorded("ticket-created.json")), {"signing_secret": ""}, NOW)


@pytest.mark.parametrize("missing", ["X-Zendesk-Webhook-Signature", "X-Zendesk-Webhook-Signature-Timestamp"])
def test_missing_header_is_refused_by_name(adapter, missing):
    request = signed(recorded("ticket-created.json"))
    headers = {k: v for k, v in request.headers.items() if k != missing.lower()}
    with pytest.raises(SignatureError, match=missing):
        adapter.verify(make_request(request.body, headers), {"signing_secret": SECRET}, NOW)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (timedelta(0), True),
        (timedelta(minutes=4, seconds=59), True),
        (timedelta(minutes=-4, seconds=-59), True),
        (timedelta(minutes=5, seconds=1), False),
        (timedelta(minutes=-5, seconds=-1), False),
        (timedelta(days=2), False),
    ],
)
def test_replay_window(adapter, offset, accepted):
    """`offset` is how far the verifier's clock is ahead of the signed timestamp."""
    request = signed(recorded("ticket-created.json"))
    if accepted:
        adapter.verify(request, {"signing_secret": SECRET}, NOW + offset)
    else:
        with pytest.raises(SignatureError, match=r"older|future"):
            adapter.verify(request, {"signing_secret": SECRET}, NOW + offset)


@pytest.mark.parametrize("timestamp", ["1713374290", "yesterday", "2024-04-17", "2024-13-45T99:00:00Z", "\u0661"])
def test_unreadable_timestamp_is_refused(adapter, timestamp):
    with pytest.raises(SignatureError, match="RFC 3339"):
        adapter.verify(signed(recorded("ticket-created.json"), timestamp=timestamp), {"signing_secret": SECRET}, NOW)


def test_offset_timestamps_are_understood(adapter):
    adapter.verify(
        signed(recorded("ticket-created.json"), timestamp="2024-04-17T19:18:10+02:00"), {"signing_secret": SECRET}, NOW
    )


# --- delivery id ---------------------------------------------------------------------------------


def test_delivery_id_is_the_event_id_or_the_body_digest(adapter):
    assert adapter.delivery_id(signed(recorded("ticket-created.json"))) == "event:01HVKZ3J9Q7W8XG4M2T5N6P1RA"
    body = recorded("trigger-ticket-updated.json")
    assert (
        adapter.delivery_id(signed(body, extra={"X-Zendesk-Webhook-Invocation-Id": "8350205582"}))
        == "sha256:" + hashlib.sha256(body).hexdigest()
    )
    assert adapter.delivery_id(signed(b"garbage")) == "sha256:" + hashlib.sha256(b"garbage").hexdigest()


# --- normalisation --------------------------------------------------------------------------------


def normalise(adapter, name: str, **extra):
    drafts = adapter.normalise(signed(recorded(name), extra=extra or None))
    assert_publishable(drafts)
    return drafts


def test_ticket_created(adapter):
    [event] = normalise(adapter, "ticket-created.json")
    assert event.type == "ticket.created"
    assert event.provider_event_id == "01HVKZ3J9Q7W8XG4M2T5N6P1RA"
    assert event.conversation_key == "zendesk:88888888:35436"
    assert event.contact.crm_ids == {"zendesk": "20978392"}
    assert event.occurred_at == NOW
    assert event.attributes["detail"]["subject"] == "Help, my printer is on fire!"
    assert event.attributes["zendesk_event_version"] == "2022-11-06"


def test_ticket_comment_added_carries_the_comment(adapter):
    [event] = normalise(adapter, "ticket-comment-added.json", **{"X-Zendesk-Webhook-Invocation-Id": "8350205582"})
    assert event.type == "ticket.comment_added"
    assert event.text == "The fire is out, but the paper tray is melted."
    assert event.conversation_key == "zendesk:88888888:35436"
    assert event.attributes["event"]["comment"]["author"]["name"] == "Ada Lovelace"
    assert event.attributes["zendesk_invocation_id"] == "8350205582"


def test_user_event_is_a_contact_update_with_a_lower_cased_email(adapter):
    [event] = normalise(adapter, "user-active-changed.json")
    assert event.type == "contact.updated"
    assert event.contact.email == "ada.lovelace@example.com"
    assert event.contact.crm_ids == {"zendesk": "6596848315901"}
    assert event.conversation_key is None
    assert event.attributes["event"] == {"current": False, "previous": True}


def test_trigger_body_is_a_generic_ticket_update(adapter):
    [event] = normalise(adapter, "trigger-ticket-updated.json", **{"X-Zendesk-Account-Id": "123456"})
    assert event.type == "ticket.updated"
    assert event.provider_event_id == "ticket:35436:2024-04-17T17:40:03Z"
    assert event.conversation_key == "zendesk:123456:35436"
    assert event.contact.email == "ada.lovelace@example.com"
    assert event.contact.phone == "+14155550123"
    assert event.contact.name == "Ada Lovelace"
    assert event.text == "We have sent a technician."
    assert event.attributes["custom_team"] == "hardware"
    assert event.attributes["kind"] == "zendesk.trigger"


@pytest.mark.parametrize(
    ("zendesk_type", "expected"),
    [
        ("ticket.status_changed", "ticket.updated"),
        ("ticket.soft_deleted", "ticket.deleted"),
        ("ticket.permanently_deleted", "ticket.deleted"),
        ("user.created", "contact.created"),
        ("user.deleted", "contact.deleted"),
        ("messaging_ticket.message_added", "ticket.comment_added"),
        ("organization.created", "provider.notification"),
        ("article.published", "provider.notification"),
    ],
)
def test_event_type_mapping(adapter, zendesk_type, expected):
    payload = {
        "type": "zen:event-type:" + zendesk_type,
        "id": "e1",
        "account_id": 1,
        "subject": "zen:ticket:9",
        "detail": {"id": "9"},
        "event": {"message": {"body": "hi"}},
    }
    [event] = adapter.normalise(signed(json.dumps(payload).encode()))
    assert event.type == expected
    if expected == "provider.notification":
        assert event.attributes["kind"] == zendesk_type


def test_nested_trigger_body_and_fallback_ids(adapter):
    body = json.dumps(
        {
            "ticket": {
                "id": 77,
                "requester": {"email": "X@Y.example", "phone": "0044 20 7946 0000", "name": "X"},
                "latest_comment": {"body": "words"},
            }
        }
    ).encode()
    [event] = adapter.normalise(signed(body, extra={"X-Zendesk-Webhook-Invocation-Id": "42"}))
    assert event.provider_event_id == "ticket:77:invocation:42"
    assert (event.contact.email, event.contact.phone, event.text) == ("x@y.example", "+442079460000", "words")
    [again] = adapter.normalise(signed(body))
    assert again.provider_event_id.startswith("ticket:77:") and again.conversation_key == "zendesk:-:77"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b"1",
        b'"x"',
        b"{}",
        b'{"status": "open"}',
        b'{"type": "zen:event-type:ticket.created"}',
        b'{"ticket_id": null}',
        b'{"ticket_id": true}',
        b"\xff\xfe",
        b'{"a": NaN}',
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
        ["zen:event-type:ticket.created", "zen:ticket:1", "a@b.c", "+1 415 555 0100", "\ud800", "2024-04-17T17:18:10Z"]
    ),
)
KEYS = st.one_of(
    st.sampled_from(
        [
            "type",
            "id",
            "account_id",
            "time",
            "subject",
            "detail",
            "event",
            "ticket_id",
            "ticket",
            "requester",
            "requester_email",
            "requester_phone",
            "updated_at",
            "email",
            "comment",
            "body",
            "message",
        ]
    ),
    st.text(max_size=8),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=8)),
    max_leaves=30,
)
EVENTS_ST = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            [
                f"zen:event-type:{t}"
                for t in (
                    "ticket.created",
                    "ticket.comment_added",
                    "user.created",
                    "messaging_ticket.message_added",
                    "x.y",
                    "",
                )
            ]
        )
    },
    optional={
        "id": SCALARS,
        "account_id": SCALARS,
        "time": SCALARS,
        "subject": SCALARS,
        "detail": JSON_VALUES,
        "event": JSON_VALUES,
    },
)
HEADERS = st.dictionaries(
    st.one_of(
        st.sampled_from(
            [
                "x-zendesk-webhook-signature",
                "x-zendesk-webhook-signature-timestamp",
                "x-zendesk-webhook-invocation-id",
                "x-zendesk-account-id",
            ]
        ),
        st.text(max_size=10),
    ),
    st.one_of(
        st.text(max_size=40),
        st.just(NOW_TS),
        st.just("9999-12-31T23:59:59+00:00"),
        st.just("0001-01-01T00:00:00-23:59"),
        st.just("\udcff"),
    ),
    max_size=4,
)


@FUZZ
@given(
    headers=HEADERS,
    body=st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode())),
    secret=st.text(max_size=12),
    now=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
)
def test_property_any_request_raises_only_hub_errors(headers, body, secret, now):
    adapter = get_adapter("zendesk")
    request = WebhookRequest(method="POST", url=URL, headers=headers, body=body)
    assert_raises_only_hub_errors(adapter, request, {"signing_secret": secret}, now, assert_publishable)


@FUZZ
@given(
    payload=st.one_of(EVENTS_ST, st.dictionaries(KEYS, JSON_VALUES, max_size=8), JSON_VALUES),
    invocation=st.one_of(st.none(), st.text(max_size=12)),
)
def test_property_signed_json_verifies_and_normalises_or_is_malformed(payload, invocation):
    adapter = get_adapter("zendesk")
    request = signed(
        json.dumps(payload).encode(),
        extra={"X-Zendesk-Webhook-Invocation-Id": invocation} if invocation is not None else None,
    )
    adapter.verify(request, {"signing_secret": SECRET}, NOW)
    assert adapter.delivery_id(request)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass
