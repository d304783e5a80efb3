"""X (Account Activity API) adapter: CRC handshake, x-twitter-webhooks-signature, normalisation, fuzzing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.local.samples import build_sample, demo_credentials
from switchboard_core.events import Channel
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import (
    HandshakeRefused,
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
HUB_URL = "https://hub.example.com/webhooks/x/conn_01HZY"
CREDENTIALS = {"consumer_secret": "xvz1evFS4wEEPTGEFPHBogA2s5LGh6nZ4vEBQV7QyRMMnv8kXp"}


def make_request(url: str, body: bytes = b"", headers: dict[str, str] | None = None, method: str = "POST"):
    return webhook_request(url, body, headers, method=method, received_at=NOW)


def sign(body: bytes, secret: str = CREDENTIALS["consumer_secret"]) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signed(body: bytes, secret: str = CREDENTIALS["consumer_secret"]) -> WebhookRequest:
    return make_request(
        HUB_URL, body, {"Content-Type": "application/json", "X-Twitter-Webhooks-Signature": sign(body, secret)}
    )


def recorded(name: str) -> bytes:
    return recorded_event("x", name)


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "x", Channel.SOCIAL, NOW)


@pytest.fixture
def adapter():
    return get_adapter("x")


# --- CRC handshake -------------------------------------------------------------------------------


def test_crc_response_token_is_base64_hmac_of_the_token(adapter):
    request = make_request(f"{HUB_URL}?{urlencode({'crc_token': 'challenge_string'})}", method="GET")
    response = adapter.handshake(request, [CREDENTIALS])
    assert response.status == 200 and response.content_type == "application/json"
    expected = base64.b64encode(
        hmac.new(CREDENTIALS["consumer_secret"].encode(), b"challenge_string", hashlib.sha256).digest()
    ).decode()
    assert json.loads(response.body) == {"response_token": "sha256=" + expected}


def test_crc_uses_the_current_credential_set(adapter):
    request = make_request(f"{HUB_URL}?crc_token=abc", method="GET")
    body = json.loads(adapter.handshake(request, [{"consumer_secret": "new"}, CREDENTIALS]).body)
    assert (
        body["response_token"]
        == "sha256=" + base64.b64encode(hmac.new(b"new", b"abc", hashlib.sha256).digest()).decode()
    )


def test_crc_reads_the_url_when_query_is_not_parsed(adapter):
    request = WebhookRequest(method="GET", url=f"{HUB_URL}?crc_token=abc", headers={}, body=b"")
    assert "response_token" in json.loads(adapter.handshake(request, [CREDENTIALS]).body)


def test_crc_without_token_is_malformed_and_without_credentials_refused(adapter):
    with pytest.raises(MalformedPayload):
        adapter.handshake(make_request(HUB_URL, method="GET"), [CREDENTIALS])
    with pytest.raises(HandshakeRefused):
        adapter.handshake(make_request(f"{HUB_URL}?crc_token=abc", method="GET"), [])


# --- signature -----------------------------------------------------------------------------------


def test_recorded_payload_signed_is_accepted(adapter):
    adapter.verify(signed(recorded("tweet-mention.json")), CREDENTIALS, NOW)


def test_tampered_body_is_refused(adapter):
    request = signed(recorded("direct-message.json"))
    tampered = make_request(HUB_URL, request.body.replace(b"Hello World", b"Hello world"), dict(request.headers))
    with pytest.raises(SignatureError):
        adapter.verify(tampered, CREDENTIALS, NOW)


def test_wrong_key_is_refused(adapter):
    with pytest.raises(SignatureError):
        adapter.verify(signed(recorded("direct-message.json"), secret="other"), CREDENTIALS, NOW)


def test_reserialised_body_is_refused(adapter):
    request = signed(recorded("tweet-mention.json"))
    reserialised = json.dumps(json.loads(request.body), separators=(",", ":")).encode()
    with pytest.raises(SignatureError):
        adapter.verify(make_request(HUB_URL, reserialised, dict(request.headers)), CREDENTIALS, NOW)


@pytest.mark.parametrize("header", [None, "", "sha256=", "sha1=abc", "c2hhMjU2PQ==", "sha256=" + "A" * 44])
def test_missing_or_bad_signature_is_refused(adapter, header):
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["X-Twitter-Webhooks-Signature"] = header
    with pytest.raises(SignatureError) as caught:
        adapter.verify(make_request(HUB_URL, recorded("favorite.json"), headers), CREDENTIALS, NOW)
    assert CREDENTIALS["consumer_secret"] not in str(caught.value)


def test_hex_instead_of_base64_is_refused(adapter):
    body = recorded("favorite.json")
    hexed = "sha256=" + hmac.new(CREDENTIALS["consumer_secret"].encode(), body, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureError):
        adapter.verify(make_request(HUB_URL, body, {"X-Twitter-Webhooks-Signature": hexed}), CREDENTIALS, NOW)


def test_no_consumer_secret_is_refused(adapter):
    with pytest.raises(SignatureError):
        adapter.verify(signed(b"{}"), {}, NOW)


def test_delivery_id_is_a_body_digest(adapter):
    request = signed(recorded("tweet-mention.json"))
    assert adapter.delivery_id(request) == "sha256:" + hashlib.sha256(request.body).hexdigest()


def test_sample_signature_matches_the_documented_construction():
    credentials = demo_credentials("x")
    for sample in ("mention", "direct-message"):
        request = build_sample("x", sample, credentials, HUB_URL, now=NOW)
        assert request.headers["X-Twitter-Webhooks-Signature"] == sign(request.body, credentials["consumer_secret"])


# --- malformed ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff",
        b"[]",
        b"{}",
        b'{"for_user_id": "1"}',
        b'{"tweet_create_events": {}}',
        b'{"tweet_create_events": [1]}',
        b'{"direct_message_events": [{"type": "message_create"}], "x": NaN}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_malformed_bodies(adapter, body):
    with pytest.raises(MalformedPayload):
        adapter.normalise(signed(body))


# --- normalisation -------------------------------------------------------------------------------------


def normalise(adapter, name):
    drafts = adapter.normalise(signed(recorded(name)))
    assert_publishable(drafts)
    return drafts


def test_tweet_mention(adapter):
    [event] = normalise(adapter, "tweet-mention.json")
    assert event.type == "mention.created"
    assert event.provider_event_id == "tweet:1050118621198921728"
    assert [(h.platform, h.id, h.handle) for h in event.contact.handles] == [("x", "6253282", "TwitterAPI")]
    assert event.contact.name == "Twitter API"
    assert event.conversation_key == "x:tweet:1050118621198921728"
    assert event.text.startswith("@XDevelopers To make room") and "Using Twitter-Text?" in event.text  # full_text
    assert event.occurred_at == datetime.fromtimestamp(1539202764, UTC)
    assert event.attributes["for_user_id"] == "2244994945"
    assert event.attributes["entities"]["user_mentions"][0]["screen_name"] == "XDevelopers"
    assert event.attributes["filter_level"] == "low"  # unknown fields are kept


def test_own_tweet_is_published_content_and_reply_threads_on_the_parent(adapter):
    payload = json.loads(recorded("tweet-mention.json"))
    tweet = payload["tweet_create_events"][0]
    tweet["user"] = {"id": 2244994945, "id_str": "2244994945", "screen_name": "XDevelopers"}
    tweet["in_reply_to_status_id_str"] = "1049999999999999999"
    del tweet["timestamp_ms"]
    [event] = adapter.normalise(signed(json.dumps(payload).encode()))
    assert event.type == "content.published"
    assert event.conversation_key == "x:tweet:1049999999999999999"
    assert event.occurred_at == datetime(2018, 10, 10, 20, 19, 24, tzinfo=UTC)  # from created_at


def test_direct_message(adapter):
    [event] = normalise(adapter, "direct-message.json")
    assert (event.type, event.provider_event_id) == ("message.received", "dm:954491830116155396")
    assert event.text == "Hello World!"
    assert [(h.id, h.handle) for h in event.contact.handles] == [("3001969357", "furiouscamper")]
    assert event.contact.name == "Jordan Brinks"
    assert event.conversation_key == "x:dm:4337869213:3001969357"
    assert event.occurred_at == datetime.fromtimestamp(1516403560.557, UTC)
    assert event.attributes["source_app_id"] == "13090192"


def test_direct_message_sent_by_the_account(adapter):
    payload = json.loads(recorded("direct-message.json"))
    payload["for_user_id"] = "3001969357"
    [event] = adapter.normalise(signed(json.dumps(payload).encode()))
    assert event.type == "message.sent"
    assert event.contact.handles[0].id == "4337869213"
    assert event.conversation_key == "x:dm:3001969357:4337869213"


def test_favorite_and_other_events(adapter):
    [like] = normalise(adapter, "favorite.json")
    assert (like.type, like.provider_event_id) == ("reaction.created", "favorite:a7ba59eab0bfcba386f7acedac279542")
    assert like.conversation_key == "x:tweet:978302519196344321"
    [follow] = normalise(adapter, "follow.json")
    assert (follow.type, follow.attributes["kind"]) == ("provider.notification", "x.follow_events")
    assert follow.attributes["data"]["source"]["screen_name"] == "furiouscamper"
    assert follow.provider_event_id == normalise(adapter, "follow.json")[0].provider_event_id


# --- property tests ------------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["message_create", "2244994945", "\ud800", "1539202764000", "Wed Oct 10 20:19:24 +0000 2018"]),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda c: st.one_of(
        st.lists(c, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "id",
                        "id_str",
                        "user",
                        "text",
                        "screen_name",
                        "type",
                        "message_create",
                        "sender_id",
                        "target",
                        "recipient_id",
                        "message_data",
                        "timestamp_ms",
                        "created_at",
                        "extended_tweet",
                        "full_text",
                        "favorited_status",
                    ]
                ),
                st.text(max_size=6),
            ),
            c,
            max_size=6,
        ),
    ),
    max_leaves=30,
)
PAYLOADS = st.fixed_dictionaries(
    {},
    optional={
        "for_user_id": SCALARS,
        "users": JSON_VALUES,
        "tweet_create_events": st.lists(JSON_VALUES, max_size=2),
        "direct_message_events": st.lists(JSON_VALUES, max_size=2),
        "favorite_events": st.lists(JSON_VALUES, max_size=2),
        "follow_events": st.lists(JSON_VALUES, max_size=2),
    },
)


@FUZZ
@given(
    url=st.one_of(st.just(HUB_URL + "?crc_token=a"), st.text(max_size=40)),
    headers=st.dictionaries(
        st.sampled_from(["x-twitter-webhooks-signature", "content-type", "x"]), st.text(max_size=60), max_size=3
    ),
    body=st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode())),
    credentials=st.lists(st.dictionaries(st.just("consumer_secret"), st.text(max_size=12)), max_size=2),
)
def test_property_any_request_raises_only_hub_errors(url, headers, body, credentials):
    adapter = get_adapter("x")
    request = WebhookRequest(
        method="POST", url=url, headers=headers, body=body, query=parse_qs(urlsplit(url).query) if "?" in url else {}
    )
    assert_raises_only_hub_errors(
        adapter,
        request,
        credentials[0] if credentials else {},
        NOW,
        assert_publishable,
        handshake_credentials=credentials,
    )


@FUZZ
@given(payload=st.one_of(PAYLOADS, JSON_VALUES))
def test_property_signed_json_verifies_and_normalises_or_is_malformed(payload):
    adapter = get_adapter("x")
    request = signed(json.dumps(payload).encode())
    adapter.verify(request, CREDENTIALS, NOW)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass
