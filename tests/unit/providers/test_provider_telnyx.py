"""Telnyx adapter: PyNaCl-signed requests, the telnyx SDK's verifier, refusals, normalisation, fuzzing."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey
from telnyx.lib.webhook_verification import (
    WebhookVerificationError,
    verify_webhook_signature,
)

from infra.local.samples import build_sample, demo_credentials
from switchboard_core.errors import HubError
from switchboard_core.events import Channel
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import (
    MalformedPayload,
    SignatureError,
    WebhookRequest,
)
from switchboard_core.providers.telnyx import TelnyxAdapter
from tests.unit.providers.fuzz import FUZZ
from tests.unit.providers.support import (
    RECORDED_EVENTS,
    assert_drafts_publishable,
    assert_raises_only_hub_errors,
    recorded_event,
    webhook_request,
)

EVENTS = RECORDED_EVENTS / "telnyx"
NOW = datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
HUB_URL = "https://hub.example.com/webhooks/telnyx/conn_01HZX"
KEY = SigningKey(bytes(range(32)))
PUBLIC = base64.b64encode(bytes(KEY.verify_key)).decode()
CREDS = {"public_key": PUBLIC}


def make_request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return webhook_request(HUB_URL, body, headers, received_at=NOW)


def signed(body: bytes, at: datetime = NOW, key: SigningKey = KEY) -> WebhookRequest:
    timestamp = str(int(at.timestamp()))
    signature = base64.b64encode(key.sign(timestamp.encode() + b"|" + body).signature).decode()
    return make_request(
        body, {"Content-Type": "application/json", "telnyx-timestamp": timestamp, "telnyx-signature-ed25519": signature}
    )


def recorded(name: str) -> bytes:
    return recorded_event("telnyx", name)


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "telnyx", Channel.TELEPHONY, NOW)


@pytest.fixture
def adapter() -> TelnyxAdapter:
    return get_adapter("telnyx")


# --- PyNaCl signatures, the SDK verifier ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("*.json")))
def test_pynacl_signed_recorded_payloads_verify_here_and_in_the_sdk(adapter, name):
    real_now = datetime.fromtimestamp(int(time.time()), tz=UTC)
    request = signed(recorded(name), at=real_now)
    adapter.verify(request, CREDS, real_now + timedelta(seconds=1))
    verify_webhook_signature(request.body, dict(request.headers), PUBLIC)  # the SDK checks the real clock


def test_samples_pass_the_sdk_verifier(adapter):
    credentials = demo_credentials("telnyx")
    for sample in ("sms", "message-finalized", "call-initiated", "call-hangup"):
        request = build_sample("telnyx", sample, credentials, HUB_URL)
        verify_webhook_signature(request.body, request.headers, credentials["public_key"])
        with pytest.raises(WebhookVerificationError):
            verify_webhook_signature(request.body + b" ", request.headers, credentials["public_key"])


# --- refusals ---------------------------------------------------------------------------------------


def test_tampered_body_is_refused(adapter):
    request = signed(recorded("message-received.json"))
    tampered = make_request(request.body.replace(b"damaged", b"perfect"), dict(request.headers))
    with pytest.raises(SignatureError, match="does not match"):
        adapter.verify(tampered, CREDS, NOW)


def test_reserialised_body_is_refused(adapter):
    request = signed(recorded("message-received.json"))
    compact = json.dumps(json.loads(request.body), separators=(",", ":")).encode()
    with pytest.raises(SignatureError):
        adapter.verify(make_request(compact, dict(request.headers)), CREDS, NOW)


def test_wrong_key_is_refused(adapter):
    request = signed(recorded("call-hangup.json"), key=SigningKey.generate())
    with pytest.raises(SignatureError):
        adapter.verify(request, CREDS, NOW)


def test_changed_timestamp_is_refused(adapter):
    request = signed(recorded("call-hangup.json"))
    headers = {**request.headers, "telnyx-timestamp": str(int(NOW.timestamp()) + 1)}
    with pytest.raises(SignatureError):
        adapter.verify(make_request(request.body, headers), CREDS, NOW)


@pytest.mark.parametrize("offset", [timedelta(seconds=-301), timedelta(seconds=301)])
def test_stale_and_future_timestamps_are_refused(adapter, offset):
    request = signed(recorded("call-hangup.json"), at=NOW + offset)
    with pytest.raises(SignatureError, match="stale or from the future"):
        adapter.verify(request, CREDS, NOW)


@pytest.mark.parametrize("offset", [timedelta(seconds=-300), timedelta(seconds=300)])
def test_window_edges_are_accepted(adapter, offset):
    adapter.verify(signed(recorded("call-hangup.json"), at=NOW + offset), CREDS, NOW)


@pytest.mark.parametrize("drop", ["telnyx-signature-ed25519", "telnyx-timestamp"])
def test_missing_headers_are_refused_by_name(adapter, drop):
    request = signed(recorded("call-hangup.json"))
    headers = {k: v for k, v in request.headers.items() if k != drop}
    with pytest.raises(SignatureError, match=drop):
        adapter.verify(make_request(request.body, headers), CREDS, NOW)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("telnyx-signature-ed25519", "not base64!"),
        ("telnyx-signature-ed25519", base64.b64encode(b"x" * 63).decode()),
        ("telnyx-timestamp", "12.5"),
        ("telnyx-timestamp", "-1"),
        ("telnyx-timestamp", "\u0663\u0663"),
    ],
)
def test_malformed_headers_are_401(adapter, name, value):
    request = signed(recorded("call-hangup.json"))
    with pytest.raises(SignatureError):
        adapter.verify(make_request(request.body, {**request.headers, name: value}), CREDS, NOW)


def test_bad_public_key_is_401_at_verify_and_400_at_creation(adapter):
    request = signed(recorded("call-hangup.json"))
    with pytest.raises(SignatureError):
        adapter.verify(request, {"public_key": "short"}, NOW)
    for bad in (
        {"public_key": "short"},
        {},
        {"public_key": PUBLIC, "other": "x"},
        {"public_key": PUBLIC, "signing_key": base64.b64encode(bytes(32)).decode()},
        {"public_key": PUBLIC, "signing_key": "zz"},
    ):
        with pytest.raises(HubError) as caught:
            adapter.validate_credentials(bad)
        assert caught.value.status == 400


def test_signing_key_is_accepted_only_with_its_public_key(adapter):
    seed = base64.b64encode(bytes(KEY)).decode()
    assert adapter.validate_credentials({"public_key": PUBLIC, "signing_key": seed}) == {
        "public_key": PUBLIC,
        "signing_key": seed,
    }
    assert adapter.validate_credentials(CREDS) == CREDS


def test_error_messages_never_echo_the_signature(adapter):
    request = signed(recorded("call-hangup.json"), key=SigningKey.generate())
    with pytest.raises(SignatureError) as caught:
        adapter.verify(request, CREDS, NOW)
    assert request.header("telnyx-signature-ed25519") not in str(caught.value)


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"data": []}', b'"x"', b"", b"\xff"])
def test_malformed_bodies(adapter, body):
    with pytest.raises(MalformedPayload):
        adapter.normalise(make_request(body, {"Content-Type": "application/json"}))


def test_no_handshake(adapter):
    with pytest.raises(HubError) as caught:
        adapter.handshake(make_request(b"", {}), [CREDS])
    assert caught.value.status == 405


# --- normalisation ----------------------------------------------------------------------------------


def normalise(adapter, name: str):
    drafts = adapter.normalise(make_request(recorded(name), {"Content-Type": "application/json"}))
    assert_publishable(drafts)
    return drafts


def test_message_received(adapter):
    [event] = normalise(adapter, "message-received.json")
    assert event.type == "message.received"
    assert event.provider_event_id == "b301ed3f-1490-491f-995f-6e64e69674d4"
    assert event.contact.phone == "+14155550123"
    assert event.text == "Here is the damaged box, order #4417"
    assert [(a.url, a.content_type) for a in event.attachments] == [
        ("https://media.telnyx.com/example/84cca175.jpg", "image/jpeg")
    ]
    assert event.conversation_key == "telnyx:+14155550100|+14155550123"
    assert event.occurred_at == datetime(2024, 6, 12, 14, 8, 5, 383000, tzinfo=UTC)
    assert event.attributes["payload"]["messaging_profile_id"] == "740572b6-099c-44a1-89b9-6c92163bc68d"
    assert event.attributes["meta"]["attempt"] == 1


def test_message_finalized(adapter):
    [event] = normalise(adapter, "message-finalized.json")
    assert event.type == "message.status_updated"
    assert event.contact.phone == "+14155550123"
    assert event.text is None
    assert event.attributes["payload"]["to"][0]["status"] == "delivered"
    assert event.conversation_key == "telnyx:+14155550100|+14155550123"


def test_calls(adapter):
    [initiated] = normalise(adapter, "call-initiated.json")
    [hangup] = normalise(adapter, "call-hangup.json")
    [recording] = normalise(adapter, "call-recording-saved.json")
    assert (initiated.type, hangup.type, recording.type) == (
        "call.initiated",
        "call.completed",
        "call.recording_completed",
    )
    assert initiated.contact.phone == "+14155550123" and initiated.contact.name == "SAM RIVERA"
    assert {initiated.conversation_key, hangup.conversation_key, recording.conversation_key} == {
        "telnyx:call:2dc1b3c8-f9e0-11ea-bc5a-02420a0f7768"
    }
    assert recording.attributes["payload"]["recording_urls"]["mp3"].endswith(".mp3")


@pytest.mark.parametrize(
    ("event_type", "cause", "expected"),
    [
        ("call.answered", None, "call.in_progress"),
        ("call.hangup", "busy", "call.busy"),
        ("call.hangup", "timeout", "call.no_answer"),
        ("call.hangup", "originator_cancel", "call.canceled"),
        ("call.hangup", "call_rejected", "call.failed"),
        ("call.hangup", "normal_clearing", "call.completed"),
        ("call.bridged", None, "provider.notification"),
        ("number_order.complete", None, "provider.notification"),
    ],
)
def test_event_type_mapping(adapter, event_type, cause, expected):
    body = json.dumps(
        {
            "data": {
                "event_type": event_type,
                "id": "e1",
                "payload": {
                    "hangup_cause": cause,
                    "direction": "outgoing",
                    "from": "+14155550100",
                    "to": "+14155550123",
                },
            }
        }
    ).encode()
    [event] = adapter.normalise(make_request(body, {"Content-Type": "application/json"}))
    assert event.type == expected
    assert event.provider_event_id == "e1"
    if expected.startswith("call."):
        assert event.contact.phone == "+14155550123"


def test_delivery_id_is_data_id(adapter):
    request = signed(recorded("call-hangup.json"))
    assert adapter.delivery_id(request) == "ab36e39c-8c2f-4b0d-9d64-b1f1b3e1c8a2"
    assert adapter.delivery_id(make_request(b"nope", {})).startswith("sha256:")


# --- property tests ------------------------------------------------------------------------------

NAMES = st.sampled_from(
    [
        "data",
        "event_type",
        "id",
        "payload",
        "from",
        "to",
        "phone_number",
        "text",
        "media",
        "url",
        "direction",
        "hangup_cause",
        "call_session_id",
        "occurred_at",
        "meta",
        "caller_id_name",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(
        [
            "message.received",
            "message.finalized",
            "call.hangup",
            "call.initiated",
            "call.recording.saved",
            "+14155550123",
            "incoming",
            "outgoing",
            "busy",
            "\ud800",
            "2024-06-12T14:08:05Z",
        ]
    ),
)
JSON = st.recursive(
    SCALARS,
    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.one_of(NAMES, st.text(max_size=6)), c, max_size=5)),
    max_leaves=25,
)
ENVELOPES = st.fixed_dictionaries(
    {
        "data": st.fixed_dictionaries(
            {"event_type": SCALARS, "id": SCALARS, "payload": st.dictionaries(NAMES, JSON, max_size=6)},
            optional={"occurred_at": SCALARS},
        )
    },
    optional={"meta": JSON},
)
BODIES = st.one_of(
    st.binary(max_size=200), JSON.map(lambda v: json.dumps(v).encode()), ENVELOPES.map(lambda v: json.dumps(v).encode())
)
HEADERS = st.dictionaries(
    st.sampled_from(["content-type", "telnyx-signature-ed25519", "telnyx-timestamp"]),
    st.one_of(st.text(max_size=90), st.just(base64.b64encode(bytes(64)).decode()), st.just(str(int(NOW.timestamp())))),
    max_size=3,
)


@FUZZ
@given(body=BODIES, headers=HEADERS, key=st.one_of(st.just(PUBLIC), st.text(max_size=50)))
def test_property_any_request_raises_only_hub_errors(body, headers, key):
    adapter = get_adapter("telnyx")
    request = WebhookRequest(method="POST", url=HUB_URL, headers=headers, body=body)
    assert_raises_only_hub_errors(adapter, request, {"public_key": key}, NOW, assert_publishable)


@FUZZ
@given(body=BODIES)
def test_property_signed_bodies_verify_and_normalise_or_are_malformed(body):
    adapter = get_adapter("telnyx")
    request = signed(body)
    adapter.verify(request, CREDS, NOW)
    assert isinstance(adapter.delivery_id(request), str)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass


@FUZZ
@given(
    credentials=st.dictionaries(
        st.sampled_from(["public_key", "signing_key", "x"]),
        st.one_of(
            st.text(max_size=50),
            st.just(PUBLIC),
            st.integers(),
            st.none(),
            st.just(base64.b64encode(bytes(KEY)).decode()),
        ),
        max_size=3,
    )
)
def test_property_credential_validation_raises_only_hub_errors(credentials):
    try:
        get_adapter("telnyx").validate_credentials(credentials)
    except HubError as exc:
        assert exc.status == 400
