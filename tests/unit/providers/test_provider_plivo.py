"""Plivo adapter: published vector, SDK interop (plivo.utils), refusals, normalisation, fuzzing."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from plivo.utils import validate_signature, validate_v3_signature
from plivo.utils.signature_v3 import construct_post_url, get_signature_v3

from infra.local.samples import build_sample, demo_credentials
from switchboard_core.errors import HubError
from switchboard_core.events import Channel
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import (
    MalformedPayload,
    SignatureError,
    WebhookRequest,
)
from switchboard_core.providers.plivo import (
    EMPTY_XML,
    PlivoAdapter,
    v2_signature,
    v3_string,
)
from tests.unit.providers.fuzz import FUZZ
from tests.unit.providers.support import (
    assert_drafts_publishable,
    assert_raises_only_hub_errors,
    recorded_event,
    webhook_request,
)

NOW = datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
FORM = "application/x-www-form-urlencoded"
TOKEN = "MzRkYjE5ZTQ4NWQzZmVkYjFhYzk0ZGQ2ZDE0NzI5"
HUB_URL = "https://hub.example.com/webhooks/plivo/conn_01HZX"
NONCE = "05429567804466091622"


def make_request(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> WebhookRequest:
    return webhook_request(url, body, headers, method=method, received_at=NOW)


def sdk_signature(body: bytes, url: str = HUB_URL, token: str = TOKEN, nonce: str = NONCE) -> str:
    """The V3 signature the plivo SDK computes for a POST."""
    params = {k: v if len(v) > 1 else v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    # validate_v3_signature decodes the URL to str before signing (bytes would be read as latin-1)
    return get_signature_v3(token, construct_post_url(url, params).decode("utf-8"), nonce).decode()


def signed(body: bytes, url: str = HUB_URL, token: str = TOKEN, nonce: str = NONCE, **extra: str) -> WebhookRequest:
    headers = {
        "Content-Type": FORM,
        "X-Plivo-Signature-V3": sdk_signature(body, url, token, nonce),
        "X-Plivo-Signature-V3-Nonce": nonce,
        **extra,
    }
    return make_request(url, body, headers)


def recorded(name: str) -> bytes:
    return recorded_event("plivo", name)


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "plivo", Channel.TELEPHONY, NOW)


@pytest.fixture
def adapter() -> PlivoAdapter:
    return get_adapter("plivo")


# --- published vector and the construction ------------------------------------------------------


def test_v2_vector():
    # providers.md §4 #11 (plivo-python tests/resources/test_signature.py)
    expected = "ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc="
    assert v2_signature("my_auth_token", "https://answer.url", "12345") == expected
    assert validate_signature("https://answer.url", "12345", expected, "my_auth_token")


def test_v2_only_request_is_refused(adapter):
    body = recorded("sms-inbound.txt")
    request = make_request(
        HUB_URL,
        body,
        {
            "Content-Type": FORM,
            "X-Plivo-Signature-V2": v2_signature(TOKEN, HUB_URL, NONCE),
            "X-Plivo-Signature-V2-Nonce": NONCE,
        },
    )
    with pytest.raises(SignatureError, match="V2"):
        adapter.verify(request, {"auth_token": TOKEN}, NOW)


@pytest.mark.parametrize(
    ("url", "params", "expected"),
    [
        (
            "https://example.com/answer?x=1",
            {"CallUUID": ["abc"], "From": ["14155550100"]},
            "https://example.com/answer?x=1.CallUUIDabcFrom14155550100.nonce123",
        ),  # the SDK example in providers.md
        ("https://example.com/answer", {"A": ["1"]}, "https://example.com/answer?A1.nonce123"),
        ("https://example.com/answer?b=2&a=1", {}, "https://example.com/answer?a=1&b=2.nonce123"),
        ("https://example.com/answer", {}, "https://example.com/answer.nonce123"),
    ],
)
def test_v3_string_matches_the_sdk(url, params, expected):
    assert v3_string(url, params, "nonce123") == expected
    flat = {k: v[0] for k, v in params.items()}
    assert construct_post_url(url, flat).decode() + ".nonce123" == expected


# --- SDK interop ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["sms-inbound.txt", "message-status-delivered.txt", "voice-inbound-ringing.txt", "voice-hangup-completed.txt"],
)
@pytest.mark.parametrize("url", [HUB_URL, HUB_URL + "?tenant=acme&b=%2Fx&a=", "https://hub.example.com:8443/p?x=1"])
def test_sdk_signed_requests_are_accepted(adapter, name, url):
    request = signed(recorded(name), url=url)
    adapter.verify(request, {"auth_token": TOKEN}, NOW)
    params = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
    assert validate_v3_signature("POST", url, NONCE, TOKEN, request.header("x-plivo-signature-v3"), params)


def test_signature_list_any_entry_matches(adapter):
    request = signed(recorded("sms-inbound.txt"))
    good = request.header("x-plivo-signature-v3")
    headers = {**request.headers, "x-plivo-signature-v3": f"AAAA,{good}"}
    adapter.verify(make_request(HUB_URL, request.body, headers), {"auth_token": TOKEN}, NOW)


def test_multi_valued_parameters_are_signed_sorted(adapter):
    body = b"MessageUUID=m1&Tag=b&Tag=a&Text=hi"
    params = {"MessageUUID": "m1", "Tag": ["b", "a"], "Text": "hi"}
    signature = get_signature_v3(TOKEN, construct_post_url(HUB_URL, params).decode(), NONCE).decode()
    request = make_request(
        HUB_URL, body, {"Content-Type": FORM, "X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": NONCE}
    )
    adapter.verify(request, {"auth_token": TOKEN}, NOW)


def test_samples_pass_the_sdk_validator():
    credentials = demo_credentials("plivo")
    for sample in ("sms", "message-status", "voice-hangup"):
        request = build_sample("plivo", sample, credentials, HUB_URL + "?region=eu", now=NOW)
        params = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        assert validate_v3_signature(
            "POST",
            request.url,
            request.headers["X-Plivo-Signature-V3-Nonce"],
            credentials["auth_token"],
            request.headers["X-Plivo-Signature-V3"],
            params,
        )


# --- refusals ----------------------------------------------------------------------------------------


def test_tampered_body_is_refused(adapter):
    request = signed(recorded("sms-inbound.txt"))
    tampered = make_request(HUB_URL, request.body.replace(b"Text=Hi", b"Text=Yo"), dict(request.headers))
    with pytest.raises(SignatureError):
        adapter.verify(tampered, {"auth_token": TOKEN}, NOW)


def test_wrong_key_other_url_or_nonce_is_refused(adapter):
    request = signed(recorded("sms-inbound.txt"))
    with pytest.raises(SignatureError):
        adapter.verify(request, {"auth_token": "another-token"}, NOW)
    with pytest.raises(SignatureError):
        adapter.verify(make_request(HUB_URL + "x", request.body, dict(request.headers)), {"auth_token": TOKEN}, NOW)
    headers = {**request.headers, "x-plivo-signature-v3-nonce": "1"}
    with pytest.raises(SignatureError):
        adapter.verify(make_request(HUB_URL, request.body, headers), {"auth_token": TOKEN}, NOW)


@pytest.mark.parametrize("drop", ["x-plivo-signature-v3", "x-plivo-signature-v3-nonce"])
def test_missing_headers_are_refused_by_name(adapter, drop):
    request = signed(recorded("sms-inbound.txt"))
    headers = {k: v for k, v in request.headers.items() if k != drop}
    with pytest.raises(SignatureError, match="X-Plivo-Signature-V3"):
        adapter.verify(make_request(HUB_URL, request.body, headers), {"auth_token": TOKEN}, NOW)


def test_error_messages_never_echo_the_signature_or_token(adapter):
    request = signed(recorded("sms-inbound.txt"))
    with pytest.raises(SignatureError) as caught:
        adapter.verify(request, {"auth_token": "x"}, NOW)
    assert request.header("x-plivo-signature-v3") not in str(caught.value) and TOKEN not in str(caught.value)


@pytest.mark.parametrize("body", [b"", b"no-equals", b"a=1&&b=2", b"\xff\xfe"])
def test_malformed_bodies(adapter, body):
    with pytest.raises(MalformedPayload):
        adapter.normalise(make_request(HUB_URL, body, {"Content-Type": FORM}))
    with pytest.raises(SignatureError):
        adapter.verify(
            make_request(
                HUB_URL, body, {"Content-Type": FORM, "X-Plivo-Signature-V3": "AAAA", "X-Plivo-Signature-V3-Nonce": "1"}
            ),
            {"auth_token": TOKEN},
            NOW,
        )


def test_no_handshake(adapter):
    with pytest.raises(HubError) as caught:
        adapter.handshake(make_request(HUB_URL, b"", {}, method="GET"), [{"auth_token": TOKEN}])
    assert caught.value.status == 405


# --- normalisation ------------------------------------------------------------------------------------


def normalise(adapter, name: str):
    drafts = adapter.normalise(make_request(HUB_URL, recorded(name), {"Content-Type": FORM}))
    assert_publishable(drafts)
    return drafts


def test_inbound_sms(adapter):
    [event] = normalise(adapter, "sms-inbound.txt")
    assert event.type == "message.received"
    assert event.provider_event_id == "6b7c8d9e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"
    assert event.contact.phone == "+14155550123"
    assert event.text == "Hi, is my order #4417 on its way?"
    assert event.conversation_key == "plivo:14155550100|14155550123"
    assert event.occurred_at == datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
    assert event.attributes["Units"] == "1" and "Text" not in event.attributes


def test_message_status(adapter):
    [event] = normalise(adapter, "message-status-delivered.txt")
    assert event.type == "message.status_updated"
    assert event.provider_event_id == "7c8d9e0f-2a3b-4c4d-9e5f-6a7b8c9d0e1f:delivered"
    assert event.contact.phone == "+14155550123"
    assert event.conversation_key == "plivo:14155550100|14155550123"
    assert event.attributes["PartInfo"] == "1 of 1"


def test_voice_ringing_and_hangup(adapter):
    [ringing] = normalise(adapter, "voice-inbound-ringing.txt")
    [hangup] = normalise(adapter, "voice-hangup-completed.txt")
    assert (ringing.type, hangup.type) == ("call.ringing", "call.completed")
    assert ringing.provider_event_id == "aa7b3e0c-1d2e-4f30-9a41-5b6c7d8e9f01:ringing:StartApp"
    assert ringing.conversation_key == hangup.conversation_key == "plivo:call:aa7b3e0c-1d2e-4f30-9a41-5b6c7d8e9f01"
    assert hangup.contact.phone == "+14155550123"
    assert hangup.attributes["HangupCause"] == "NORMAL_CLEARING"
    assert hangup.occurred_at == datetime(2024, 6, 12, 14, 9, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("ringing", "call.ringing"),
        ("in-progress", "call.in_progress"),
        ("completed", "call.completed"),
        ("busy", "call.busy"),
        ("failed", "call.failed"),
        ("timeout", "call.no_answer"),
        ("no-answer", "call.no_answer"),
        ("cancel", "call.canceled"),
        ("weird", "provider.notification"),
        ("", "provider.notification"),
    ],
)
def test_call_status_mapping(adapter, status, expected):
    body = urlencode(
        {"CallUUID": "c1", "CallStatus": status, "Direction": "outbound", "From": "14155550100", "To": "14155550123"}
    ).encode()
    [event] = adapter.normalise(make_request(HUB_URL, body, {"Content-Type": FORM}))
    assert event.type == expected
    assert event.contact.phone == "+14155550123"


def test_unknown_callback_keeps_everything(adapter):
    [event] = adapter.normalise(make_request(HUB_URL, b"Foo=bar", {"Content-Type": FORM}))
    assert event.type == "provider.notification" and event.attributes["Foo"] == "bar"


def test_delivery_ids_are_stable_and_match_the_events(adapter):
    for name in ("sms-inbound.txt", "message-status-delivered.txt", "voice-hangup-completed.txt"):
        first, retry = signed(recorded(name)), signed(recorded(name), nonce="999")
        assert adapter.delivery_id(first) == adapter.delivery_id(retry) == adapter.normalise(first)[0].provider_event_id


def test_success_response_is_empty_plivo_xml(adapter):
    response = adapter.success_response(signed(recorded("sms-inbound.txt")))
    assert (response.status, response.body) == (200, EMPTY_XML)


# --- property tests --------------------------------------------------------------------------------

NAMES = st.sampled_from(
    [
        "MessageUUID",
        "From",
        "To",
        "Text",
        "Status",
        "CallUUID",
        "CallStatus",
        "Direction",
        "Event",
        "MessageTime",
        "EndTime",
        "CallerName",
    ]
)
VALUES = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
    st.sampled_from(
        [
            "14155550123",
            "+14155550100",
            "sip:a@b",
            "ringing",
            "in-progress",
            "outbound",
            "2024-06-12 14:08:05",
            "delivered",
            "",
            "9" * 40,
        ]
    ),
)
PARAMS = st.dictionaries(
    st.one_of(NAMES, st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)),
    st.lists(VALUES, min_size=1, max_size=2),
    max_size=10,
)
BODIES = st.one_of(st.binary(max_size=200), PARAMS.map(lambda p: urlencode(p, doseq=True).encode()))
HEADERS = st.dictionaries(
    st.sampled_from(["content-type", "x-plivo-signature-v3", "x-plivo-signature-v3-nonce", "x-plivo-signature-v2"]),
    st.one_of(st.text(max_size=40), st.just("\ud800")),
    max_size=4,
)
URLS = st.one_of(
    st.sampled_from([HUB_URL, "http://[::1/x", "https://h:99999/", "", "https://h/p?\udcff=1"]), st.text(max_size=30)
)


@FUZZ
@given(url=URLS, headers=HEADERS, body=BODIES, token=st.text(max_size=10))
def test_property_any_request_raises_only_hub_errors(url, headers, body, token):
    adapter = get_adapter("plivo")
    request = WebhookRequest(method="POST", url=url, headers=headers, body=body)
    assert_raises_only_hub_errors(adapter, request, {"auth_token": token}, NOW, assert_publishable)


@FUZZ
@given(params=PARAMS)
def test_property_signed_bodies_verify_and_normalise_or_are_malformed(params):
    adapter = get_adapter("plivo")
    body = urlencode(params, doseq=True).encode()
    request = signed(body)
    adapter.verify(request, {"auth_token": TOKEN}, NOW)
    assert isinstance(adapter.delivery_id(request), str)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass
