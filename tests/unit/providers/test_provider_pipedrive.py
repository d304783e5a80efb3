"""Pipedrive adapter: HTTP Basic auth, webhooks v2 and v1 bodies, delivery id, fuzzing."""

from __future__ import annotations

import base64
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
from switchboard_core.providers.pipedrive import PipedriveAdapter
from tests.unit.providers.fuzz import FUZZ
from tests.unit.providers.support import (
    assert_drafts_publishable,
    assert_raises_only_hub_errors,
    recorded_event,
    webhook_request,
)

CREDENTIALS = {"username": "hub-user", "password": "s3cr3t:with:colons"}
URL = "https://hub.example.com/webhooks/pipedrive/conn_01HZZ"
NOW = datetime(2025, 4, 15, 15, 41, 44, tzinfo=UTC)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def make_request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return webhook_request(URL, body, headers, received_at=NOW)


def authed(body: bytes, user: str = CREDENTIALS["username"], password: str = CREDENTIALS["password"]) -> WebhookRequest:
    return make_request(body, {"Content-Type": "application/json", "Authorization": basic(user, password)})


def recorded(name: str) -> bytes:
    return recorded_event("pipedrive", name)


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "pipedrive", Channel.CRM, NOW)


@pytest.fixture
def adapter() -> PipedriveAdapter:
    return get_adapter("pipedrive")


# --- authentication ------------------------------------------------------------------------------


def test_correct_basic_auth_is_accepted(adapter):
    adapter.verify(authed(recorded("v2-person-change.json")), CREDENTIALS, NOW)
    lower = make_request(
        b"{}", {"Authorization": "basic " + basic(CREDENTIALS["username"], CREDENTIALS["password"]).split()[1]}
    )
    adapter.verify(lower, CREDENTIALS, NOW)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic",
        "Basic ",
        "Bearer abc",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"nocolon").decode(),
        basic("hub-user", "wrong"),
        basic("other", "s3cr3t:with:colons"),
        basic("hub-user", "s3cr3t:with"),
        basic("hub-user", ""),
        basic("", ""),
        basic("hub-user", "s3cr3t:with:colons "),
        basic("Hub-User", "s3cr3t:with:colons"),
    ],
)
def test_missing_or_wrong_credentials_are_401(adapter, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    with pytest.raises(SignatureError):
        adapter.verify(make_request(recorded("v2-person-change.json"), headers), CREDENTIALS, NOW)


def test_a_connection_without_credentials_refuses_everything(adapter):
    with pytest.raises(SignatureError):
        adapter.verify(authed(b"{}", "", ""), {"username": "", "password": ""}, NOW)


def test_credentials_are_never_echoed_in_errors(adapter):
    with pytest.raises(SignatureError) as caught:
        adapter.verify(authed(b"{}", "hub-user", "guess"), CREDENTIALS, NOW)
    assert "s3cr3t" not in str(caught.value) and "guess" not in str(caught.value)


# --- delivery id ----------------------------------------------------------------------------------


def test_delivery_id_v2_is_meta_id_and_v1_is_stable_across_retries(adapter):
    assert adapter.delivery_id(authed(recorded("v2-person-change.json"))) == "5a3c2e1f-8d9b-4c7a-a6e5-f4d3c2b1a098"
    v1 = json.loads(recorded("v1-updated-person.json"))
    first = adapter.delivery_id(authed(json.dumps(v1).encode()))
    assert first == "v1:12345678:person:1042:updated:1523440213384700"
    assert adapter.delivery_id(authed(json.dumps({**v1, "retry": 2}).encode())) == first
    assert adapter.delivery_id(authed(b"[]")).startswith("sha256:")


# --- normalisation --------------------------------------------------------------------------------


def normalise(adapter, name: str):
    drafts = adapter.normalise(authed(recorded(name)))
    assert_publishable(drafts)
    return drafts


def test_v2_person_change(adapter):
    [event] = normalise(adapter, "v2-person-change.json")
    assert event.type == "contact.updated"
    assert event.provider_event_id == "5a3c2e1f-8d9b-4c7a-a6e5-f4d3c2b1a098"
    assert event.contact.email == "ada.lovelace@example.com"  # the primary one, lower-cased
    assert event.contact.phone == "+14155550123"
    assert event.contact.name == "Ada Lovelace"
    assert event.contact.crm_ids == {"pipedrive": "1042"}
    assert event.conversation_key == "pipedrive:9876543:person:1042"
    assert event.occurred_at == datetime(2025, 4, 15, 15, 41, 43, 621000, tzinfo=UTC)
    assert event.attributes["previous"] == {"phones": []}
    assert event.attributes["meta"]["correlation_id"] == "2f7e9d1c-4b8a-4f6e-9a3d-5c2b1e0f8a7d"
    assert event.attributes["webhooks_version"] == 2


def test_v2_deal_create(adapter):
    [event] = normalise(adapter, "v2-deal-create.json")
    assert event.type == "deal.created"
    assert event.contact.crm_ids == {"pipedrive_deal": "501"}
    assert event.conversation_key == "pipedrive:9876543:deal:501"
    assert event.attributes["data"]["title"] == "Lovelace Analytical Engines deal"


def test_v2_person_delete_reads_previous(adapter):
    [event] = normalise(adapter, "v2-person-delete.json")
    assert event.type == "contact.deleted"
    assert event.contact.email == "old@example.com"
    assert event.attributes["meta"]["merged_to_id"] == "1042"


def test_v1_updated_person(adapter):
    [event] = normalise(adapter, "v1-updated-person.json")
    assert event.type == "contact.updated"
    assert event.contact.email == "ada@example.com"
    assert event.contact.phone == "+442079460000"
    assert event.contact.name == "Ada Lovelace"
    assert event.conversation_key == "pipedrive:9876543:person:1042"
    assert event.occurred_at == datetime.fromtimestamp(1523440213, UTC)
    assert event.attributes["webhooks_version"] == 1
    assert event.attributes["previous"]["name"] == "Ada Byron"


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"action": "create", "entity": "person"}, "contact.created"),
        ({"action": "delete", "entity": "deal"}, "deal.deleted"),
        ({"action": "change", "entity": "organization"}, "crm.object_changed"),
        ({"action": "change", "entity": "lead"}, "crm.object_changed"),
        ({"action": "merged", "object": "person"}, "crm.object_changed"),
        ({"action": "added", "object": "deal"}, "deal.created"),
    ],
)
def test_entity_and_action_mapping(adapter, meta, expected):
    body = json.dumps({"meta": {**meta, "id": "x1", "entity_id": "5"}, "data": {"id": 5}, "previous": None}).encode()
    [event] = adapter.normalise(authed(body))
    assert event.type == expected


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"meta": []}',
        b'{"meta": {}}',
        b'{"meta": {"entity": "person"}}',
        b'{"meta": {"action": "change", "entity": null}}',
        b"\xff",
        b'{"event": "nodot", "meta": {}, "current": {}}',
    ],
)
def test_malformed_bodies(adapter, body):
    with pytest.raises(MalformedPayload):
        adapter.normalise(authed(body))


# --- property tests --------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(
        [
            "person",
            "deal",
            "change",
            "create",
            "delete",
            "updated",
            "a@b.c",
            "+1 415 555 0100",
            "\ud800",
            "2.0",
            "2025-04-15T15:41:43.621Z",
        ]
    ),
)
KEYS = st.one_of(
    st.sampled_from(
        [
            "meta",
            "data",
            "previous",
            "current",
            "event",
            "action",
            "entity",
            "object",
            "id",
            "entity_id",
            "emails",
            "phones",
            "email",
            "phone",
            "value",
            "primary",
            "name",
            "timestamp",
            "timestamp_micro",
            "version",
            "company_id",
        ]
    ),
    st.text(max_size=8),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=8)),
    max_leaves=30,
)
BODIES = st.fixed_dictionaries(
    {"meta": st.dictionaries(KEYS, JSON_VALUES, max_size=8)},
    optional={"data": JSON_VALUES, "previous": JSON_VALUES, "current": JSON_VALUES, "event": SCALARS},
)


@FUZZ
@given(
    headers=st.dictionaries(
        st.one_of(st.just("authorization"), st.text(max_size=8)),
        st.one_of(
            st.text(max_size=50),
            st.just("Basic \udcff"),
            st.binary(max_size=30).map(lambda b: "Basic " + base64.b64encode(b).decode()),
        ),
        max_size=3,
    ),
    body=st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode())),
    username=st.text(max_size=8),
    password=st.text(max_size=8),
)
def test_property_any_request_raises_only_hub_errors(headers, body, username, password):
    adapter = get_adapter("pipedrive")
    request = WebhookRequest(method="POST", url=URL, headers=headers, body=body)
    credentials = {"username": username, "password": password}
    assert_raises_only_hub_errors(adapter, request, credentials, NOW, assert_publishable)


@FUZZ
@given(payload=st.one_of(BODIES, JSON_VALUES))
def test_property_authenticated_json_verifies_and_normalises_or_is_malformed(payload):
    adapter = get_adapter("pipedrive")
    request = authed(json.dumps(payload).encode())
    adapter.verify(request, CREDENTIALS, NOW)
    assert adapter.delivery_id(request)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass
