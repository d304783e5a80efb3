"""Standard Webhooks adapter: vectors, SDK interop, tolerance, credentials, normalisation, fuzzing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook

from switchboard_core.errors import HubError
from switchboard_core.events import Channel
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import (
    MalformedPayload,
    SignatureError,
    WebhookRequest,
)
from switchboard_core.providers.standard_webhooks import StandardWebhooksAdapter
from tests.unit.providers.fuzz import FUZZ
from tests.unit.providers.support import (
    assert_drafts_publishable,
    assert_raises_only_hub_errors,
    recorded_event,
    webhook_request,
)

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
HUB_URL = "https://hub.example.com/webhooks/standard-webhooks/conn_01J00"
NOW = datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)

# providers.md §4 #6 and #7 (standard-webhooks reference library tests)
VECTORS = [
    (
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        b'{"test": 2432232314}',
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    ),
    (
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        "1649367553",
        b'{"email":"test@example.com","username":"test_user"}',
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
    ),
]


def make_request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return webhook_request(HUB_URL, body, headers, received_at=NOW)


def sdk_signed(
    body: bytes, msg_id: str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", when: datetime = NOW, secret: str = SECRET
) -> WebhookRequest:
    signature = Webhook(secret).sign(msg_id, when, body.decode())
    return make_request(
        body,
        {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature,
        },
    )


def recorded(name: str) -> bytes:
    return recorded_event("standard-webhooks", name)


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "standard-webhooks", Channel.GENERIC, NOW)


@pytest.fixture
def adapter() -> StandardWebhooksAdapter:
    return get_adapter("standard-webhooks")


# --- vectors and SDK interop -----------------------------------------------------------------------


@pytest.mark.parametrize(("secret", "msg_id", "timestamp", "body", "signature"), VECTORS)
def test_published_vectors(adapter, secret, msg_id, timestamp, body, signature):
    request = make_request(body, {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signature})
    adapter.verify(request, {"secret": secret}, datetime.fromtimestamp(int(timestamp) + 10, UTC))


def test_sdk_signature_is_accepted(adapter):
    adapter.verify(sdk_signed(recorded("contact-created.json")), {"secret": SECRET}, NOW)


def test_any_matching_v1_entry_is_enough(adapter):
    request = sdk_signed(recorded("contact-created.json"))
    good = request.header("webhook-signature")
    rotated = {
        **request.headers,
        "webhook-signature": f"v1a,AAAA v1,{base64.b64encode(b'x' * 32).decode()} {good} v2,zz",
    }
    adapter.verify(make_request(request.body, rotated), {"secret": SECRET}, NOW)


def test_unpadded_signature_is_accepted(adapter):
    request = sdk_signed(recorded("contact-created.json"))
    headers = {**request.headers, "webhook-signature": request.header("webhook-signature").rstrip("=")}
    adapter.verify(make_request(request.body, headers), {"secret": SECRET}, NOW)


# --- refusals -----------------------------------------------------------------------------------------


def test_tampered_body_is_refused(adapter):
    request = sdk_signed(recorded("contact-created.json"))
    with pytest.raises(SignatureError):
        adapter.verify(
            make_request(request.body.replace(b"john", b"jane"), dict(request.headers)), {"secret": SECRET}, NOW
        )


def test_tampered_id_is_refused(adapter):
    request = sdk_signed(recorded("contact-created.json"))
    headers = {**request.headers, "webhook-id": "msg_other"}
    with pytest.raises(SignatureError):
        adapter.verify(make_request(request.body, headers), {"secret": SECRET}, NOW)


def test_wrong_key_is_refused(adapter):
    other = "whsec_" + base64.b64encode(b"another key of thirty-two bytes!").decode()
    with pytest.raises(SignatureError):
        adapter.verify(sdk_signed(recorded("contact-created.json")), {"secret": other}, NOW)


def test_only_other_versions_are_refused(adapter):
    request = sdk_signed(recorded("contact-created.json"))
    headers = {**request.headers, "webhook-signature": request.header("webhook-signature").replace("v1,", "v1a,")}
    with pytest.raises(SignatureError, match="v1"):
        adapter.verify(make_request(request.body, headers), {"secret": SECRET}, NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_refused_by_name(adapter, missing):
    request = sdk_signed(recorded("contact-created.json"))
    headers = {k: v for k, v in request.headers.items() if k != missing}
    with pytest.raises(SignatureError, match=missing):
        adapter.verify(make_request(request.body, headers), {"secret": SECRET}, NOW)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (timedelta(0), True),
        (timedelta(minutes=5), True),
        (timedelta(minutes=-5), True),
        (timedelta(minutes=5, seconds=1), False),
        (timedelta(minutes=-5, seconds=-1), False),
    ],
)
def test_tolerance(adapter, offset, accepted):
    """`offset` is how far the verifier's clock is ahead of webhook-timestamp."""
    request = sdk_signed(recorded("contact-created.json"))
    if accepted:
        adapter.verify(request, {"secret": SECRET}, NOW + offset)
    else:
        with pytest.raises(SignatureError, match=r"older|future"):
            adapter.verify(request, {"secret": SECRET}, NOW + offset)


@pytest.mark.parametrize("timestamp", ["", "1718201285.0", "abc", "-1718201285", "9" * 30])
def test_unreadable_timestamp_is_refused(adapter, timestamp):
    request = sdk_signed(recorded("contact-created.json"))
    headers = {**request.headers, "webhook-timestamp": timestamp}
    with pytest.raises(SignatureError):
        adapter.verify(make_request(request.body, headers), {"secret": SECRET}, NOW)


def test_error_message_does_not_echo_secret_or_signature(adapter):
    request = sdk_signed(recorded("contact-created.json"), secret=SECRET)
    with pytest.raises(SignatureError) as caught:
        adapter.verify(make_request(b"{}", dict(request.headers)), {"secret": SECRET}, NOW)
    message = str(caught.value)
    assert SECRET[6:] not in message and request.header("webhook-signature")[3:] not in message


# --- credentials ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        SECRET,
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "whsec_" + base64.b64encode(b"k" * 24).decode().rstrip("="),
    ],
)
def test_valid_secrets(adapter, secret):
    assert adapter.validate_credentials({"secret": secret}) == {"secret": secret}


@pytest.mark.parametrize(
    "secret",
    [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_",
        "whsec_not base64!",
        "whsec_abc$def",
        "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_ümlaut",
        "whsec_A",
    ],
)
def test_invalid_secrets(adapter, secret):
    with pytest.raises(HubError) as caught:
        adapter.validate_credentials({"secret": secret})
    assert (caught.value.status, caught.value.code) == (400, "invalid_credentials")
    assert secret[6:] == "" or secret[6:] not in caught.value.message


def test_missing_or_extra_credentials(adapter):
    for credentials in ({}, {"secret": SECRET, "other": "x"}, {"secret": 5}):
        with pytest.raises(HubError) as caught:
            adapter.validate_credentials(credentials)
        assert caught.value.code == "invalid_credentials"


# --- normalisation --------------------------------------------------------------------------------------


def test_recommended_payload(adapter):
    request = sdk_signed(recorded("contact-created.json"))
    [event] = adapter.normalise(request)
    assert_publishable([event])
    assert event.type == "webhook.received"
    assert event.provider_event_id == adapter.delivery_id(request) == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    assert event.attributes["type"] == "contact.created"
    assert event.attributes["data"]["email"] == "john.doe@example.com"
    assert event.attributes["version"] == "2024-01-01"
    assert event.occurred_at == datetime(2022, 11, 3, 20, 26, 10, 344522, tzinfo=UTC)


def test_payload_that_is_not_an_object_is_kept_whole(adapter):
    [event] = adapter.normalise(sdk_signed(recorded("not-an-object.json")))
    assert event.attributes == {"type": None, "data": None, "payload": [{"type": "invoice.paid", "id": "inv_1"}]}
    assert event.occurred_at is None


@pytest.mark.parametrize(
    "stamp", ["yesterday", 1e30, -5, "2022-13-45T00:00:00Z", {"a": 1}, "\u00b2", "\u0663", "1" * 5000, 10**400]
)  # found by the 10,000-example run
def test_unparseable_payload_timestamp_is_ignored(adapter, stamp):
    [event] = adapter.normalise(sdk_signed(json.dumps({"type": "x.y", "timestamp": stamp}).encode()))
    assert event.occurred_at is None
    assert event.attributes["timestamp"] == stamp


@pytest.mark.parametrize("body", [b"not json", b"{", b"\xff", b'{"a": NaN}', b'{"a": Infinity}'])
def test_malformed_bodies(adapter, body):
    request = make_request(body, {"webhook-id": "msg_1"})
    with pytest.raises(MalformedPayload):
        adapter.normalise(request)


# --- property tests -------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        st.sampled_from(["2022-11-03T20:26:10Z", "\ud800", "1614265330", "\u00b2", "9" * 40]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(["type", "data", "timestamp"]), st.text(max_size=8)), children, max_size=5
        ),
    ),
    max_leaves=30,
)
HEADERS = st.dictionaries(
    st.one_of(st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]), st.text(max_size=10)),
    st.one_of(
        st.text(max_size=80),
        st.just(str(int(NOW.timestamp()))),
        st.just("v1,AAAA v1a,BBBB , v1,"),
        st.just("msg_\udcff"),
    ),
    max_size=4,
)
SECRETS = st.one_of(
    st.text(max_size=20), st.just(SECRET), st.binary(max_size=20).map(lambda b: "whsec_" + base64.b64encode(b).decode())
)


@FUZZ
@given(
    headers=HEADERS,
    body=st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode())),
    secret=SECRETS,
)
def test_property_any_request_raises_only_hub_errors(headers, body, secret):
    adapter = get_adapter("standard-webhooks")
    request = WebhookRequest(method="POST", url=HUB_URL, headers=headers, body=body)
    assert_raises_only_hub_errors(
        adapter,
        request,
        {"secret": secret},
        NOW,
        assert_publishable,
        also=[lambda: adapter.validate_credentials({"secret": secret})],
    )


@FUZZ
@given(payload=JSON_VALUES, msg_id=st.text(min_size=1, max_size=30).filter(lambda s: s.strip() == s and "." not in s))
def test_property_signed_json_verifies_and_normalises_or_is_malformed(payload, msg_id):
    adapter = get_adapter("standard-webhooks")
    request = sdk_signed(json.dumps(payload).encode(), msg_id=msg_id)
    adapter.verify(request, {"secret": SECRET}, NOW)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass
