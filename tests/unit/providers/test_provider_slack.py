"""Slack adapter: v0 signatures (published vector, slack_sdk), replay window, url_verification,
retries, normalisation of Events API callbacks and slash commands, fuzzing."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

from infra.local.samples import build_sample, demo_credentials
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
HUB_URL = "https://hub.example.com/webhooks/slack/conn_01HZY"
CREDENTIALS = {"signing_secret": "e6b19c573432dcc6b075501d51b51bb8"}
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"

# providers.md §4 #2: Slack's published example (docs and python-slack-sdk tests).
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TS = "1531420618"
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


class FixedClock:
    def __init__(self, now: datetime):
        self._now = now.timestamp()

    def now(self) -> float:
        return self._now


def sdk(secret: str = CREDENTIALS["signing_secret"], now: datetime = NOW) -> SignatureVerifier:
    return SignatureVerifier(secret, clock=FixedClock(now))


def make_request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return webhook_request(HUB_URL, body, headers, received_at=NOW)


def signed(
    body: bytes,
    *,
    secret: str = CREDENTIALS["signing_secret"],
    at: datetime = NOW,
    content_type: str = JSON_TYPE,
    extra: dict[str, str] | None = None,
) -> WebhookRequest:
    timestamp = str(int(at.timestamp()))
    try:
        signature = sdk(secret).generate_signature(timestamp=timestamp, body=body)
    except UnicodeDecodeError:  # the SDK decodes the body as UTF-8; sign non-UTF-8 bytes by hand
        signature = (
            "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        )
    return make_request(
        body,
        {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
            **(extra or {}),
        },
    )


def recorded(name: str) -> bytes:
    return recorded_event("slack", name)


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "slack", Channel.SOCIAL, NOW)


@pytest.fixture
def adapter():
    return get_adapter("slack")


# --- signature -----------------------------------------------------------------------------------


def test_published_vector(adapter):
    body = recorded("slash-command.form")
    request = make_request(
        body, {"Content-Type": FORM_TYPE, "X-Slack-Request-Timestamp": VECTOR_TS, "X-Slack-Signature": VECTOR_SIGNATURE}
    )
    adapter.verify(request, {"signing_secret": VECTOR_SECRET}, datetime.fromtimestamp(int(VECTOR_TS), UTC))
    assert sdk(VECTOR_SECRET, datetime.fromtimestamp(int(VECTOR_TS), UTC)).is_valid(body, VECTOR_TS, VECTOR_SIGNATURE)


def test_sdk_signed_request_is_accepted(adapter):
    adapter.verify(signed(recorded("message.json")), CREDENTIALS, NOW)


@pytest.mark.parametrize("sample", ["message", "app-mention", "slash-command"])
def test_samples_pass_the_sdk_verifier(sample):
    credentials = demo_credentials("slack")
    request = build_sample("slack", sample, credentials, HUB_URL, now=NOW)
    verifier = sdk(credentials["signing_secret"])
    assert verifier.is_valid_request(request.body, {k.lower(): v for k, v in request.headers.items()})


@pytest.mark.parametrize("offset", [0, 299, -299, 300, -300])
def test_timestamps_within_five_minutes_are_accepted(adapter, offset):
    adapter.verify(signed(recorded("message.json"), at=NOW + timedelta(seconds=offset)), CREDENTIALS, NOW)


@pytest.mark.parametrize("offset", [301, -301, 3600, -86400])
def test_stale_and_future_timestamps_are_refused(adapter, offset):
    request = signed(recorded("message.json"), at=NOW + timedelta(seconds=offset))
    with pytest.raises(SignatureError, match="X-Slack-Request-Timestamp"):
        adapter.verify(request, CREDENTIALS, NOW)
    assert not sdk(now=NOW).is_valid_request(request.body, dict(request.headers))


def test_tampered_body_and_wrong_key_are_refused(adapter):
    request = signed(recorded("message.json"))
    with pytest.raises(SignatureError):
        adapter.verify(make_request(request.body.replace(b"Hello", b"Hellp"), dict(request.headers)), CREDENTIALS, NOW)
    with pytest.raises(SignatureError):
        adapter.verify(signed(recorded("message.json"), secret="0" * 32), CREDENTIALS, NOW)


def test_timestamp_is_part_of_the_signed_string(adapter):
    request = signed(recorded("message.json"))
    headers = {**request.headers, "x-slack-request-timestamp": str(int(NOW.timestamp()) + 1)}
    with pytest.raises(SignatureError):
        adapter.verify(make_request(request.body, headers), CREDENTIALS, NOW)


@pytest.mark.parametrize("drop", ["x-slack-signature", "x-slack-request-timestamp"])
def test_missing_headers_are_refused_by_name(adapter, drop):
    request = signed(recorded("message.json"))
    headers = {k: v for k, v in request.headers.items() if k != drop}
    with pytest.raises(
        SignatureError,
        match=drop.replace("x-slack-", "X-Slack-")
        .replace("-signature", "-Signature")
        .replace("-request-timestamp", "-Request-Timestamp"),
    ):
        adapter.verify(make_request(request.body, headers), CREDENTIALS, NOW)


@pytest.mark.parametrize("stamp", ["abc", "-5", "1e9", "\u0661\u0665", "9" * 40, ""])
def test_unreadable_timestamp_is_refused(adapter, stamp):
    request = signed(recorded("message.json"))
    with pytest.raises(SignatureError) as caught:
        adapter.verify(
            make_request(request.body, {**request.headers, "x-slack-request-timestamp": stamp}), CREDENTIALS, NOW
        )
    assert CREDENTIALS["signing_secret"] not in str(caught.value)


# --- url_verification and retries ------------------------------------------------------------------


def test_url_verification_is_answered_with_the_challenge_after_verification(adapter):
    request = signed(recorded("url-verification.json"))
    adapter.verify(request, CREDENTIALS, NOW)
    assert adapter.normalise(request) == []  # the ingest path answers it as a handshake
    response = adapter.success_response(request)
    assert (response.status, response.body) == (200, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    assert response.content_type.startswith("text/plain")
    with pytest.raises(SignatureError):  # unsigned url_verification is refused before it is answered
        adapter.verify(make_request(request.body, {"Content-Type": JSON_TYPE}), CREDENTIALS, NOW)


def test_url_verification_without_challenge_is_malformed(adapter):
    with pytest.raises(MalformedPayload):
        adapter.normalise(signed(b'{"type": "url_verification"}'))


def test_retries_share_the_event_id_and_keep_the_retry_headers(adapter):
    first = signed(recorded("message.json"))
    retry = signed(
        recorded("message.json"),
        at=NOW + timedelta(seconds=60),
        extra={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert adapter.delivery_id(first) == adapter.delivery_id(retry) == "Ev123ABC456"
    [event] = adapter.normalise(retry)
    assert (event.attributes["retry_num"], event.attributes["retry_reason"]) == (1, "http_timeout")
    assert event.provider_event_id == adapter.normalise(first)[0].provider_event_id
    assert "retry_num" not in adapter.normalise(first)[0].attributes


def test_delivery_id_without_event_id_is_a_digest(adapter):
    request = signed(recorded("slash-command.form"), content_type=FORM_TYPE)
    assert adapter.delivery_id(request) == "sha256:" + hashlib.sha256(request.body).hexdigest()


# --- normalisation -----------------------------------------------------------------------------------------


def normalise(adapter, name, content_type=JSON_TYPE):
    drafts = adapter.normalise(signed(recorded(name), content_type=content_type))
    assert_publishable(drafts)
    return drafts


def test_message(adapter):
    [event] = normalise(adapter, "message.json")
    assert (event.type, event.provider_event_id, event.text) == ("message.received", "Ev123ABC456", "Hello world")
    assert [(h.platform, h.id) for h in event.contact.handles] == [("slack", "U123ABC456")]
    assert event.conversation_key == "slack:T123ABC456:C123ABC456:1355517523.000005"
    assert event.occurred_at == datetime.fromtimestamp(1355517523, UTC)
    assert event.attributes["channel_type"] == "channel" and event.attributes["api_app_id"] == "A123ABC456"
    assert "token" not in event.attributes


@pytest.mark.parametrize("bot", [{"bot_id": "B0AUTOREPLY", "app_id": "A123ABC456"}, {"subtype": "bot_message"}])
def test_a_bots_message_is_the_business_side_not_a_customer(adapter, bot):
    payload = json.loads(recorded("message.json"))
    payload["event"] = {**payload["event"], **bot, "thread_ts": "1355517523.000005"}
    [event] = adapter.normalise(signed(json.dumps(payload).encode()))
    assert (event.type, event.attributes["automated"]) == ("message.sent", True)
    assert event.contact.handles == []  # no phantom contact for the bot
    assert event.conversation_key == "slack:T123ABC456:C123ABC456:1355517523.000005"


def test_thread_reply_with_file_keys_on_the_thread(adapter):
    [event] = normalise(adapter, "thread-reply-with-file.json")
    assert event.conversation_key == "slack:T123ABC456:C123ABC456:1355517523.000005"
    [attachment] = event.attachments
    assert (attachment.provider_id, attachment.content_type) == ("F0S43PZDF", "image/png")
    assert event.attributes["subtype"] == "file_share"


def test_message_changed_is_an_update_with_the_new_text(adapter):
    [event] = normalise(adapter, "message-changed.json")
    assert (event.type, event.text) == ("message.updated", "Hello, world!")
    assert event.conversation_key == "slack:T123ABC456:C123ABC456:1355517523.000005"
    assert event.attributes["previous_message"]["text"] == "Hello world"


def test_app_mention_reaction_and_other_events(adapter):
    [mention] = normalise(adapter, "app-mention.json")
    assert (mention.type, mention.contact.handles[0].id) == ("mention.created", "U061F7AUR")
    [reaction] = normalise(adapter, "reaction-added.json")
    assert reaction.type == "reaction.created"
    assert reaction.conversation_key == "slack:T123ABC456:C123ABC456:1360782400.498405"
    assert reaction.attributes["reaction"] == "thumbsup"
    [other] = normalise(adapter, "channel-created.json")
    assert (other.type, other.attributes["kind"]) == ("provider.notification", "slack.channel_created")
    assert other.attributes["event"]["channel"]["name"] == "fun"


def test_slash_command(adapter):
    [event] = normalise(adapter, "slash-command.form", FORM_TYPE)
    assert event.type == "interaction.created"
    assert event.provider_event_id == "command:398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    assert [(h.id, h.handle) for h in event.contact.handles] == [("U2CERLKJA", "roadrunner")]
    assert event.conversation_key == "slack:T1DC2JH3J:G8PSS9T3V"
    assert event.attributes["command"] == "/webhook-collect"
    assert "token" not in event.attributes
    response = adapter.success_response(signed(recorded("slash-command.form"), content_type=FORM_TYPE))
    assert (response.status, response.body) == (200, "")


def test_interactivity_payload(adapter):
    payload = {
        "type": "block_actions",
        "team": {"id": "T9TK3CUKW"},
        "user": {"id": "UA8RXUSPL", "username": "jtorrance"},
        "channel": {"id": "CBR2V3XEX"},
        "trigger_id": "12466734323.1395872398",
        "message": {"ts": "1548261231.000200"},
        "actions": [{"action_id": "WaXA", "value": "approve", "action_ts": "1548426417.840180"}],
    }
    from urllib.parse import urlencode

    [event] = adapter.normalise(signed(urlencode({"payload": json.dumps(payload)}).encode(), content_type=FORM_TYPE))
    assert (event.type, event.text) == ("interaction.created", "approve")
    assert event.conversation_key == "slack:T9TK3CUKW:CBR2V3XEX:1548261231.000200"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not json", JSON_TYPE),
        (b"[]", JSON_TYPE),
        (b'{"type": 5}', JSON_TYPE),
        (b"{}", JSON_TYPE),
        (b'{"type": "event_callback"}', JSON_TYPE),
        (b'{"type": "event_callback", "event": []}', JSON_TYPE),
        (b'{"type": "event_callback", "event": {}, "n": Infinity}', JSON_TYPE),
        (b"[" * 5000 + b"]" * 5000, JSON_TYPE),
        (b"a=1&b", FORM_TYPE),
        (b"text=hello", FORM_TYPE),
        (b"payload=not-json", FORM_TYPE),
        (b"payload=%5B%5D", FORM_TYPE),
        (b"\xff\xfe", FORM_TYPE),
    ],
)
def test_malformed_bodies(adapter, body, content_type):
    with pytest.raises(MalformedPayload):
        adapter.normalise(signed(body, content_type=content_type))


# --- property tests --------------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(
        [
            "message",
            "app_mention",
            "reaction_added",
            "message_changed",
            "event_callback",
            "url_verification",
            "\ud800",
            "1355517523.000005",
        ]
    ),
)
KEYS = [
    "type",
    "event",
    "event_id",
    "team_id",
    "channel",
    "user",
    "text",
    "ts",
    "thread_ts",
    "subtype",
    "message",
    "files",
    "item",
    "challenge",
    "event_time",
    "event_ts",
    "url_private",
    "mimetype",
    "id",
]
JSON_VALUES = st.recursive(
    SCALARS,
    lambda c: st.one_of(
        st.lists(c, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), c, max_size=6)
    ),
    max_leaves=30,
)
CALLBACKS = st.fixed_dictionaries(
    {"type": st.sampled_from(["event_callback", "url_verification", "app_rate_limited"])},
    optional={
        "event": JSON_VALUES,
        "event_id": SCALARS,
        "team_id": SCALARS,
        "challenge": SCALARS,
        "event_time": SCALARS,
    },
)


@FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(
            [
                "x-slack-signature",
                "x-slack-request-timestamp",
                "content-type",
                "x-slack-retry-num",
                "x-slack-retry-reason",
            ]
        ),
        st.one_of(st.text(max_size=70), st.sampled_from([str(int(NOW.timestamp())), JSON_TYPE, FORM_TYPE])),
        max_size=5,
    ),
    body=st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode())),
    secret=st.text(max_size=12),
)
def test_property_any_request_raises_only_hub_errors(headers, body, secret):
    adapter = get_adapter("slack")
    request = WebhookRequest(method="POST", url=HUB_URL, headers=headers, body=body)
    assert_raises_only_hub_errors(
        adapter,
        request,
        {"signing_secret": secret},
        NOW,
        assert_publishable,
        also=[lambda: adapter.success_response(request).body.encode("utf-8")],
    )


@FUZZ
@given(
    payload=st.one_of(CALLBACKS, JSON_VALUES),
    form=st.dictionaries(
        st.sampled_from(["command", "text", "user_id", "team_id", "channel_id", "trigger_id", "payload"]),
        st.text(max_size=30),
        max_size=5,
    ),
    as_form=st.booleans(),
)
def test_property_signed_bodies_normalise_or_are_malformed(payload, form, as_form):
    from urllib.parse import urlencode

    adapter = get_adapter("slack")
    if as_form:
        request = signed(urlencode(form).encode("utf-8", "surrogatepass"), content_type=FORM_TYPE)
    else:
        request = signed(json.dumps(payload).encode())
    adapter.verify(request, CREDENTIALS, NOW)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass
    adapter.delivery_id(request).encode("utf-8")
    adapter.success_response(request).body.encode("utf-8")
