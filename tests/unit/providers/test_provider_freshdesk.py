"""Freshdesk adapter: the two credential shapes (custom header secret, Basic auth), the recommended
body template and Freshdesk's simple mode, delivery id, fuzzing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.local.samples import build_sample
from switchboard_core.errors import HubError
from switchboard_core.events import Channel
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import (
    MalformedPayload,
    SignatureError,
    WebhookRequest,
)
from switchboard_core.providers.freshdesk import FreshdeskAdapter
from tests.unit.providers.fuzz import FUZZ
from tests.unit.providers.support import (
    assert_drafts_publishable,
    assert_raises_only_hub_errors,
    recorded_event,
    webhook_request,
)

HEADER_CREDENTIALS = {"header_name": "X-Switchboard-Secret", "header_value": "q8Zk1v0s2Vd9pY4tN7wB3xR6mC5hJ0aE"}
BASIC_CREDENTIALS = {"username": "freshdesk-hook", "password": "pa:ss word"}
URL = "https://hub.example.com/webhooks/freshdesk/conn_01HZZ"
NOW = datetime(2025, 4, 15, 15, 41, 44, tzinfo=UTC)


def make_request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return webhook_request(URL, body, headers, received_at=NOW)


def with_header(body: bytes, value: str = HEADER_CREDENTIALS["header_value"]) -> WebhookRequest:
    return make_request(body, {"Content-Type": "application/json", "X-Switchboard-Secret": value})


def with_basic(body: bytes, user: str = "freshdesk-hook", password: str = "pa:ss word") -> WebhookRequest:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return make_request(body, {"Content-Type": "application/json", "Authorization": "Basic " + token})


def recorded(name: str) -> bytes:
    return recorded_event("freshdesk", name)


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "freshdesk", Channel.CRM, NOW)


@pytest.fixture
def adapter() -> FreshdeskAdapter:
    return get_adapter("freshdesk")


# --- credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize("credentials", [HEADER_CREDENTIALS, BASIC_CREDENTIALS])
def test_either_shape_is_valid(adapter, credentials):
    assert adapter.validate_credentials(credentials) == credentials


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"header_name": "X-A"},
        {"username": "u"},
        {**HEADER_CREDENTIALS, **BASIC_CREDENTIALS},
        {**HEADER_CREDENTIALS, "extra": "x"},
        {"header_name": "X-A", "password": "p"},
        {"header_name": "", "header_value": "x" * 20},
        {"username": "u", "password": 5},
        {"header_name": "Bad Header", "header_value": "x" * 20},
        {"header_name": "Content-Type", "header_value": "x" * 20},
        {"header_name": "X-Secret", "header_value": "short"},
    ],
)
def test_anything_else_is_a_clear_400(adapter, credentials):
    with pytest.raises(HubError) as caught:
        adapter.validate_credentials(credentials)
    assert caught.value.status == 400 and caught.value.code == "invalid_credentials"
    assert "x" * 20 not in str(caught.value)


def test_describe_lists_both_shapes(adapter):
    description = adapter.describe()
    assert description["credential_fields"] == ["header_name", "header_value", "username", "password"]
    assert description["credential_shapes"] == [["header_name", "header_value"], ["username", "password"]]


# --- authentication ------------------------------------------------------------------------------


def test_header_secret_is_accepted(adapter):
    adapter.verify(with_header(recorded("recommended-template.json")), HEADER_CREDENTIALS, NOW)


def test_basic_auth_is_accepted(adapter):
    adapter.verify(with_basic(recorded("recommended-template.json")), BASIC_CREDENTIALS, NOW)


@pytest.mark.parametrize(
    "value", ["", "wrong", HEADER_CREDENTIALS["header_value"][:-1], HEADER_CREDENTIALS["header_value"] + "x"]
)
def test_wrong_or_missing_header_secret_is_401(adapter, value):
    with pytest.raises(SignatureError, match="X-Switchboard-Secret"):
        adapter.verify(with_header(recorded("recommended-template.json"), value), HEADER_CREDENTIALS, NOW)


def test_header_connection_ignores_basic_auth_and_vice_versa(adapter):
    with pytest.raises(SignatureError):
        adapter.verify(with_basic(b"{}"), HEADER_CREDENTIALS, NOW)
    with pytest.raises(SignatureError):
        adapter.verify(with_header(b"{}"), BASIC_CREDENTIALS, NOW)


@pytest.mark.parametrize(("user", "password"), [("freshdesk-hook", "wrong"), ("other", "pa:ss word"), ("", "")])
def test_wrong_basic_auth_is_401(adapter, user, password):
    with pytest.raises(SignatureError):
        adapter.verify(with_basic(b"{}", user, password), BASIC_CREDENTIALS, NOW)


def test_empty_credentials_refuse_everything(adapter):
    with pytest.raises(SignatureError):
        adapter.verify(with_basic(b"{}", "", ""), {"username": "", "password": ""}, NOW)
    with pytest.raises(SignatureError):
        adapter.verify(make_request(b"{}", {"x-a": ""}), {"header_name": "X-A", "header_value": ""}, NOW)


# --- normalisation, delivery id ------------------------------------------------------------------


def test_recommended_template(adapter):
    request = with_header(recorded("recommended-template.json"))
    [event] = adapter.normalise(request)
    assert_publishable([event])
    assert event.type == "ticket.updated"
    assert event.provider_event_id == "ticket:1042:2025-04-15T15:41:43Z"
    assert adapter.delivery_id(request) == "ticket:1042:2025-04-15T15:41:43Z"
    assert event.conversation_key == "freshdesk:acme.freshdesk.com:1042"
    assert event.contact.email == "ada.lovelace@example.com"
    assert event.contact.phone == "+14155550123"
    assert event.contact.name == "Ada Lovelace"
    assert event.contact.crm_ids == {"freshdesk": "43012345678"}
    assert event.text == "Any news about my parcel?"
    assert event.occurred_at == datetime(2025, 4, 15, 15, 41, 43, tzinfo=UTC)
    assert event.attributes["status"] == "Open" and event.attributes["tags"] == "vip,parcel"


def test_simple_mode_wrapper(adapter):
    [event] = adapter.normalise(with_header(recorded("simple-mode-wrapper.json")))
    assert_publishable([event])
    assert event.provider_event_id == "ticket:2048:2025-04-16T09:12:03Z"
    assert event.contact.email == "charles@example.com"
    assert event.contact.phone == "+442079460000"
    assert event.text == "The fire is out."
    assert event.attributes["freshdesk_webhook"]["ticket_status"] == "Pending"


def test_body_without_updated_at_dedupes_on_its_digest(adapter):
    body = b'{"ticket": {"id": 5, "requester": {"email": "a@b.example", "mobile": "+44 20 7946 0000"}}}'
    request = with_header(body)
    [event] = adapter.normalise(request)
    assert event.provider_event_id == adapter.delivery_id(request) and event.provider_event_id.startswith("sha256:")
    assert event.contact.phone == "+442079460000" and event.conversation_key == "freshdesk:-:5"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"status": "Open"}',
        b'{"ticket_id": null}',
        b'{"freshdesk_webhook": {}}',
        b"\xff",
        b'{"ticket_id": [1]}',
    ],
)
def test_malformed_bodies(adapter, body):
    with pytest.raises(MalformedPayload):
        adapter.normalise(with_header(body))


def test_samples_work_with_both_credential_shapes(adapter):
    for credentials in (HEADER_CREDENTIALS, BASIC_CREDENTIALS):
        for sample in ("ticket-updated", "ticket-updated-simple"):
            signed = build_sample("freshdesk", sample, credentials, URL, now=NOW)
            request = make_request(signed.body, signed.headers)
            adapter.verify(request, credentials, NOW)
            assert adapter.normalise(request)[0].type == "ticket.updated"


# --- property tests --------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["a@b.c", "+1 415 555 0100", "\ud800", "#12", "2025-04-15T15:41:43Z"]),
)
KEYS = st.one_of(
    st.sampled_from(
        [
            "ticket_id",
            "ticket",
            "id",
            "updated_at",
            "requester",
            "requester_email",
            "requester_phone",
            "email",
            "phone",
            "mobile",
            "freshdesk_webhook",
            "domain",
            "latest_public_comment",
            "ticket_updated_at",
        ]
    ),
    st.text(max_size=8),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=8)),
    max_leaves=30,
)
CREDENTIAL_SETS = st.one_of(
    st.fixed_dictionaries(
        {
            "header_name": st.one_of(st.just("X-Switchboard-Secret"), st.text(max_size=8)),
            "header_value": st.text(max_size=12),
        }
    ),
    st.fixed_dictionaries({"username": st.text(max_size=8), "password": st.text(max_size=8)}),
    st.dictionaries(st.text(max_size=12), st.text(max_size=8), max_size=3),
)


@FUZZ
@given(
    headers=st.dictionaries(
        st.one_of(st.sampled_from(["authorization", "x-switchboard-secret"]), st.text(max_size=8)),
        st.one_of(
            st.text(max_size=40),
            st.just("Basic \udcff"),
            st.binary(max_size=30).map(lambda b: "Basic " + base64.b64encode(b).decode()),
        ),
        max_size=3,
    ),
    body=st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode())),
    credentials=CREDENTIAL_SETS,
)
def test_property_any_request_raises_only_hub_errors(headers, body, credentials):
    adapter = get_adapter("freshdesk")
    request = WebhookRequest(method="POST", url=URL, headers=headers, body=body)
    assert_raises_only_hub_errors(
        adapter, request, credentials, NOW, assert_publishable, also=[lambda: adapter.validate_credentials(credentials)]
    )


@FUZZ
@given(payload=JSON_VALUES)
def test_property_authenticated_json_verifies_and_normalises_or_is_malformed(payload):
    adapter = get_adapter("freshdesk")
    request = with_header(json.dumps(payload).encode())
    adapter.verify(request, HEADER_CREDENTIALS, NOW)
    assert adapter.delivery_id(request)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass
