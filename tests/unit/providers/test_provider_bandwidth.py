"""Bandwidth adapter: HTTP Basic authentication, refusals, array normalisation, fuzzing.

Bandwidth publishes no signature vectors and no SDK verifier (callbacks carry Basic
credentials only), so the requests here are built as Bandwidth documents them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.local.samples import build_sample, demo_credentials
from switchboard_core.errors import HubError
from switchboard_core.events import Channel
from switchboard_core.providers import get_adapter
from switchboard_core.providers.bandwidth import BandwidthAdapter
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
HUB_URL = "https://hub.example.com/webhooks/bandwidth/conn_01HZX"
CREDS = {"username": "switchboard-cb", "password": "pA55:w0rd-with-colon"}


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def make_request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return webhook_request(HUB_URL, body, headers, received_at=NOW)


def authed(body: bytes, username: str = CREDS["username"], password: str = CREDS["password"]) -> WebhookRequest:
    return make_request(body, {"Content-Type": "application/json", "Authorization": basic(username, password)})


def recorded(name: str) -> bytes:
    return recorded_event("bandwidth", name)


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "bandwidth", Channel.TELEPHONY, NOW)


@pytest.fixture
def adapter() -> BandwidthAdapter:
    return get_adapter("bandwidth")


# --- authentication --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["message-received.json", "status-batch.json", "group-message-received.json"])
def test_right_credentials_are_accepted(adapter, name):
    adapter.verify(authed(recorded(name)), CREDS, NOW)


def test_scheme_is_case_insensitive(adapter):
    request = authed(recorded("message-received.json"))
    headers = {**request.headers, "authorization": request.header("authorization").replace("Basic", "basic")}
    adapter.verify(make_request(request.body, headers), CREDS, NOW)


@pytest.mark.parametrize(
    ("username", "password"),
    [("switchboard-cb", "wrong"), ("other", CREDS["password"]), ("", ""), ("switchboard-cb", CREDS["password"] + "x")],
)
def test_wrong_credentials_are_refused(adapter, username, password):
    with pytest.raises(SignatureError, match="do not match"):
        adapter.verify(authed(recorded("message-received.json"), username, password), CREDS, NOW)


@pytest.mark.parametrize(
    "value",
    [
        "Bearer abc",
        "Basic",
        "Basic !!!",
        "Basic " + base64.b64encode(b"nocolon").decode(),
        "Basic \u00e9\u00e9",
        "Digest username=x",
    ],
)
def test_malformed_authorization_is_refused(adapter, value):
    request = make_request(
        recorded("message-received.json"), {"Content-Type": "application/json", "Authorization": value}
    )
    with pytest.raises(SignatureError):
        adapter.verify(request, CREDS, NOW)


def test_missing_authorization_is_refused_by_name(adapter):
    request = make_request(recorded("message-received.json"), {"Content-Type": "application/json"})
    with pytest.raises(SignatureError, match="Authorization"):
        adapter.verify(request, CREDS, NOW)


def test_error_messages_never_echo_credentials(adapter):
    request = authed(recorded("message-received.json"), "switchboard-cb", "guess")
    with pytest.raises(SignatureError) as caught:
        adapter.verify(request, CREDS, NOW)
    text = str(caught.value)
    assert "guess" not in text and CREDS["password"] not in text and request.header("authorization") not in text


def test_samples_authenticate():
    credentials = demo_credentials("bandwidth")
    for sample in ("message-received", "message-delivered", "message-failed"):
        signed = build_sample("bandwidth", sample, credentials, HUB_URL, now=NOW)
        user, _, password = base64.b64decode(signed.headers["Authorization"].split()[1]).decode().partition(":")
        assert (user, password) == (credentials["username"], credentials["password"])
        assert isinstance(json.loads(signed.body), list)


def test_no_handshake(adapter):
    with pytest.raises(HubError) as caught:
        adapter.handshake(make_request(b"", {}), [CREDS])
    assert caught.value.status == 405


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"type": "message-received"}', b"[1]", b'"x"', b"", b"\xff"])
def test_malformed_bodies(adapter, body):
    with pytest.raises(MalformedPayload):
        adapter.normalise(make_request(body, {"Content-Type": "application/json"}))


# --- normalisation ----------------------------------------------------------------------------------


def normalise(adapter, name: str):
    drafts = adapter.normalise(make_request(recorded(name), {"Content-Type": "application/json"}))
    assert_publishable(drafts)
    return drafts


def test_message_received(adapter):
    [event] = normalise(adapter, "message-received.json")
    assert event.type == "message.received"
    assert event.provider_event_id == "1718201285383kw2fuqty55yp2b2:message-received:2024-06-12T14:08:05.383Z"
    assert event.contact.phone == "+14155550123"
    assert event.text == "Hi, is my order #4417 on its way?"
    assert event.attachments[0].url.endswith("/0/bw.png")
    assert event.conversation_key == "bandwidth:+14155550100|+14155550123"
    assert event.occurred_at == datetime(2024, 6, 12, 14, 8, 5, 383000, tzinfo=UTC)
    assert event.attributes["message"]["applicationId"] == "93de2206-9669-4e07-948d-329f4b722ee2"
    assert "text" not in event.attributes["message"]


def test_status_batch_is_one_event_per_item(adapter):
    delivered, failed = normalise(adapter, "status-batch.json")
    assert (delivered.type, failed.type) == ("message.status_updated", "message.status_updated")
    assert delivered.contact.phone == "+14155550123" and failed.contact.phone == "+14155550187"
    assert delivered.conversation_key == "bandwidth:+14155550100|+14155550123"
    assert failed.attributes["errorCode"] == 4432 and failed.attributes["description"] == "forbidden to country"
    assert delivered.attributes["message"]["tag"] == "order-4417"
    assert delivered.provider_event_id != failed.provider_event_id


def test_group_message_thread_has_every_participant(adapter):
    [event] = normalise(adapter, "group-message-received.json")
    assert event.conversation_key == "bandwidth:+14155550100|+14155550123|+14155550142"
    assert event.attachments == []


def test_unknown_type_is_a_notification(adapter):
    body = json.dumps([{"type": "message-something", "time": "t", "message": {"id": "m"}}]).encode()
    [event] = adapter.normalise(make_request(body, {"Content-Type": "application/json"}))
    assert event.type == "provider.notification" and event.attributes["kind"] == "bandwidth.message-something"


def test_delivery_ids(adapter):
    single = authed(recorded("message-received.json"))
    assert adapter.delivery_id(single) == adapter.normalise(single)[0].provider_event_id
    batch = authed(recorded("status-batch.json"))
    assert adapter.delivery_id(batch).startswith("batch:")
    assert adapter.delivery_id(batch) == adapter.delivery_id(authed(recorded("status-batch.json")))


def test_success_response_is_2xx(adapter):
    assert 200 <= adapter.success_response(authed(b"[]")).status < 300


# --- property tests --------------------------------------------------------------------------------

NAMES = st.sampled_from(["type", "time", "to", "from", "message", "id", "text", "media", "errorCode", "description"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(
        ["message-received", "message-delivered", "message-failed", "+14155550123", "2024-06-12T14:08:05Z", "\ud800"]
    ),
)
JSON = st.recursive(
    SCALARS,
    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.one_of(NAMES, st.text(max_size=6)), c, max_size=5)),
    max_leaves=25,
)
ITEMS = st.lists(
    st.fixed_dictionaries(
        {"type": SCALARS, "time": SCALARS},
        optional={"message": st.dictionaries(NAMES, JSON, max_size=6), "to": SCALARS},
    ),
    max_size=4,
)
BODIES = st.one_of(
    st.binary(max_size=200), JSON.map(lambda v: json.dumps(v).encode()), ITEMS.map(lambda v: json.dumps(v).encode())
)
HEADERS = st.dictionaries(
    st.sampled_from(["content-type", "authorization"]),
    st.one_of(st.text(max_size=40), st.just(basic(CREDS["username"], CREDS["password"]))),
    max_size=2,
)


@FUZZ
@given(body=BODIES, headers=HEADERS, user=st.text(max_size=8), password=st.text(max_size=8))
def test_property_any_request_raises_only_hub_errors(body, headers, user, password):
    adapter = get_adapter("bandwidth")
    request = WebhookRequest(method="POST", url=HUB_URL, headers=headers, body=body)
    credentials = {"username": user, "password": password}
    assert_raises_only_hub_errors(adapter, request, credentials, NOW, assert_publishable)


@FUZZ
@given(body=BODIES)
def test_property_authenticated_bodies_verify_and_normalise_or_are_malformed(body):
    adapter = get_adapter("bandwidth")
    request = authed(body)
    adapter.verify(request, CREDS, NOW)
    assert isinstance(adapter.delivery_id(request), str)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass
