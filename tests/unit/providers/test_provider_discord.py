"""Discord interactions adapter: Ed25519 (PyNaCl-signed, discord_interactions-verified), PING/PONG,
deferred acknowledgements, normalisation, credentials, fuzzing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from discord_interactions import verify_key
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from infra.local.samples import build_sample, demo_credentials
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
HUB_URL = "https://hub.example.com/webhooks/discord/conn_01HZY"
SIGNING_KEY = SigningKey(bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
PUBLIC_KEY = SIGNING_KEY.verify_key.encode().hex()
CREDENTIALS = {"public_key": PUBLIC_KEY}


def make_request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return webhook_request(HUB_URL, body, headers, received_at=NOW)


def signed(body: bytes, *, key: SigningKey = SIGNING_KEY, at: datetime = NOW) -> WebhookRequest:
    timestamp = str(int(at.timestamp()))
    signature = key.sign(timestamp.encode() + body).signature.hex()
    return make_request(
        body, {"Content-Type": "application/json", "X-Signature-Ed25519": signature, "X-Signature-Timestamp": timestamp}
    )


def recorded(name: str) -> bytes:
    return recorded_event("discord", name)


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "discord", Channel.SOCIAL, NOW)


@pytest.fixture
def adapter():
    return get_adapter("discord")


# --- signature -----------------------------------------------------------------------------------


def test_rfc8032_test_1_public_key():
    # RFC 8032 §7.1 TEST 1: the secret key above has this public key; an empty message signs to this value.
    assert PUBLIC_KEY == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert SIGNING_KEY.sign(b"").signature.hex().startswith("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065")


def test_pynacl_signed_request_is_accepted_and_official_verifier_agrees(adapter):
    request = signed(recorded("slash-command.json"))
    adapter.verify(request, CREDENTIALS, NOW)
    assert verify_key(
        request.body, request.header("x-signature-ed25519"), request.header("x-signature-timestamp"), PUBLIC_KEY
    )


@pytest.mark.parametrize("sample", ["slash-command", "button"])
def test_samples_pass_discord_interactions_verify_key(adapter, sample):
    credentials = demo_credentials("discord")
    request = build_sample("discord", sample, credentials, HUB_URL, now=NOW)
    assert verify_key(
        request.body,
        request.headers["X-Signature-Ed25519"],
        request.headers["X-Signature-Timestamp"],
        credentials["public_key"],
    )
    assert not verify_key(
        request.body + b" ",
        request.headers["X-Signature-Ed25519"],
        request.headers["X-Signature-Timestamp"],
        credentials["public_key"],
    )


def test_tampered_body_wrong_key_and_other_timestamp_are_refused(adapter):
    request = signed(recorded("slash-command.json"))
    with pytest.raises(SignatureError):
        adapter.verify(
            make_request(request.body.replace(b"animal_dog", b"animal_cat"), dict(request.headers)), CREDENTIALS, NOW
        )
    with pytest.raises(SignatureError):
        adapter.verify(signed(recorded("slash-command.json"), key=SigningKey.generate()), CREDENTIALS, NOW)
    moved = {**request.headers, "x-signature-timestamp": str(int(NOW.timestamp()) + 1)}
    with pytest.raises(SignatureError):
        adapter.verify(make_request(request.body, moved), CREDENTIALS, NOW)


@pytest.mark.parametrize("offset", [301, -301, 86400])
def test_stale_and_future_timestamps_are_refused(adapter, offset):
    with pytest.raises(SignatureError, match="X-Signature-Timestamp"):
        adapter.verify(signed(recorded("ping.json"), at=NOW + timedelta(seconds=offset)), CREDENTIALS, NOW)


@pytest.mark.parametrize("drop", ["x-signature-ed25519", "x-signature-timestamp"])
def test_missing_headers_are_refused(adapter, drop):
    request = signed(recorded("ping.json"))
    with pytest.raises(SignatureError):
        adapter.verify(
            make_request(request.body, {k: v for k, v in request.headers.items() if k != drop}), CREDENTIALS, NOW
        )


@pytest.mark.parametrize("signature", ["", "zz" * 64, "00" * 63, "00" * 64, "AB" * 65])
def test_badly_formed_signature_is_refused(adapter, signature):
    request = signed(recorded("ping.json"))
    with pytest.raises(SignatureError):
        adapter.verify(
            make_request(request.body, {**request.headers, "x-signature-ed25519": signature}), CREDENTIALS, NOW
        )


@pytest.mark.parametrize("key", ["", "xyz", "00" * 31, "g" * 64])
def test_unusable_public_key_is_refused(adapter, key):
    with pytest.raises(SignatureError):
        adapter.verify(signed(recorded("ping.json")), {"public_key": key}, NOW)


# --- credentials ---------------------------------------------------------------------------------------


def test_credentials_need_a_hex_ed25519_public_key(adapter):
    assert adapter.validate_credentials({"public_key": PUBLIC_KEY}) == {"public_key": PUBLIC_KEY}
    for bad in ({"public_key": "abc"}, {"public_key": "zz" * 32}, {}, {"public_key": PUBLIC_KEY, "other": "x"}):
        with pytest.raises(HubError) as caught:
            adapter.validate_credentials(bad)
        assert caught.value.status == 400


def test_demo_private_key_is_accepted_only_as_the_private_half(adapter):
    demo = demo_credentials("discord")
    assert adapter.validate_credentials(demo) == demo
    with pytest.raises(HubError):
        adapter.validate_credentials({"public_key": PUBLIC_KEY, "demo_private_key": demo["demo_private_key"]})
    with pytest.raises(HubError):
        adapter.validate_credentials({"public_key": PUBLIC_KEY, "demo_private_key": "nothex"})


# --- handshake and responses -------------------------------------------------------------------------


def test_ping_is_a_handshake_answered_with_pong(adapter):
    request = signed(recorded("ping.json"))
    adapter.verify(request, CREDENTIALS, NOW)
    assert adapter.normalise(request) == []
    response = adapter.success_response(request)
    assert (response.status, json.loads(response.body), response.content_type) == (200, {"type": 1}, "application/json")


def test_interactions_are_acknowledged_with_a_deferred_response(adapter):
    assert json.loads(adapter.success_response(signed(recorded("slash-command.json"))).body) == {"type": 5}
    assert json.loads(adapter.success_response(signed(recorded("button-dm.json"))).body) == {"type": 6}
    autocomplete = json.dumps({"id": "1", "type": 4, "data": {"name": "x"}}).encode()
    assert json.loads(adapter.success_response(signed(autocomplete)).body) == {"type": 8, "data": {"choices": []}}


def test_no_get_handshake(adapter):
    with pytest.raises(HubError) as caught:
        adapter.handshake(make_request(b"", {}), [CREDENTIALS])
    assert caught.value.status == 405


# --- normalisation -----------------------------------------------------------------------------------


def test_slash_command(adapter):
    request = signed(recorded("slash-command.json"))
    [event] = adapter.normalise(request)
    assert_publishable([event])
    assert (event.type, event.provider_event_id) == ("interaction.created", "786008729715212338")
    assert adapter.delivery_id(request) == "interaction:786008729715212338"
    assert [(h.platform, h.id, h.handle) for h in event.contact.handles] == [("discord", "53908232506183680", "mason")]
    assert event.contact.name == "Mason"
    assert event.conversation_key == "discord:290926798626357999:645027906669510667"
    assert event.text == "/blep animal=animal_dog only_smol=true"
    assert event.attributes["interaction_type"] == "application_command"
    assert event.attributes["token"] == "A_UNIQUE_TOKEN"
    assert event.attributes["data"]["options"][0]["value"] == "animal_dog"


def test_button_in_a_dm(adapter):
    [event] = adapter.normalise(signed(recorded("button-dm.json")))
    assert (event.text, event.conversation_key) == ("click_one", "discord:dm:1012345678901234567")
    assert event.contact.handles[0].id == "53908232506183680"
    assert event.attributes["message"]["content"] == "This is a message with components"


def test_subcommands_become_part_of_the_command_line(adapter):
    credentials = demo_credentials("discord")
    request = build_sample("discord", "slash-command", credentials, HUB_URL, now=NOW)
    [event] = adapter.normalise(make_request(request.body, request.headers))
    assert event.text == "/ticket open subject=Cannot log in priority=2"


@pytest.mark.parametrize(
    "body",
    [
        b"nope",
        b"[]",
        b"{}",
        b'{"type": "2", "id": "1"}',
        b'{"type": true, "id": "1"}',
        b'{"type": 2}',
        b'{"type": 2, "id": "1", "x": NaN}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_malformed_bodies(adapter, body):
    with pytest.raises(MalformedPayload):
        adapter.normalise(signed(body))


# --- property tests ------------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["53908232506183680", "\ud800", "ticket"]),
)
KEYS = [
    "id",
    "type",
    "data",
    "name",
    "options",
    "value",
    "custom_id",
    "member",
    "user",
    "username",
    "guild_id",
    "channel_id",
    "channel",
    "token",
    "global_name",
]
JSON_VALUES = st.recursive(
    SCALARS,
    lambda c: st.one_of(
        st.lists(c, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), c, max_size=6)
    ),
    max_leaves=30,
)
INTERACTIONS = st.fixed_dictionaries(
    {"id": SCALARS, "type": st.one_of(st.integers(0, 6), SCALARS)},
    optional=dict.fromkeys(("data", "member", "user", "guild_id", "channel_id", "channel"), JSON_VALUES),
)


@FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(["x-signature-ed25519", "x-signature-timestamp", "content-type"]),
        st.one_of(st.text(max_size=130), st.sampled_from([str(int(NOW.timestamp())), "00" * 64])),
        max_size=3,
    ),
    body=st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode())),
    key=st.one_of(st.text(max_size=70), st.just(PUBLIC_KEY)),
)
def test_property_any_request_raises_only_hub_errors(headers, body, key):
    adapter = get_adapter("discord")
    request = WebhookRequest(method="POST", url=HUB_URL, headers=headers, body=body)
    assert_raises_only_hub_errors(
        adapter,
        request,
        {"public_key": key},
        NOW,
        assert_publishable,
        also=[
            lambda: adapter.success_response(request).body.encode("utf-8"),
            lambda: adapter.validate_credentials({"public_key": key}),
        ],
    )


@FUZZ
@given(payload=st.one_of(INTERACTIONS, JSON_VALUES))
def test_property_signed_json_verifies_and_normalises_or_is_malformed(payload):
    adapter = get_adapter("discord")
    request = signed(json.dumps(payload).encode())
    adapter.verify(request, CREDENTIALS, NOW)
    try:
        drafts = adapter.normalise(request)
        assert_publishable(drafts)
        if drafts:
            adapter.delivery_id(request)
    except MalformedPayload:
        pass
    adapter.success_response(request).body.encode("utf-8")
