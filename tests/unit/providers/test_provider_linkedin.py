"""LinkedIn adapter: challengeCode validation, X-LI-Signature, batched notifications, fuzzing."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import urlencode

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
HUB_URL = "https://hub.example.com/webhooks/linkedin/conn_01HZY"
CREDENTIALS = {"client_secret": "WPL_AP1.k2Xq9ZexampleSecret.ab12cd34"}


def make_request(url: str, body: bytes = b"", headers: dict[str, str] | None = None, method: str = "POST"):
    return webhook_request(url, body, headers, method=method, received_at=NOW)


def li_signature(body: bytes, secret: str = CREDENTIALS["client_secret"]) -> str:
    return hmac.new(secret.encode(), b"hmacsha256=" + body, hashlib.sha256).hexdigest()


def signed(body: bytes, secret: str = CREDENTIALS["client_secret"]) -> WebhookRequest:
    return make_request(
        HUB_URL, body, {"Content-Type": "application/json", "X-LI-Signature": li_signature(body, secret)}
    )


def recorded(name: str) -> bytes:
    return recorded_event("linkedin", name)


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "linkedin", Channel.SOCIAL, NOW)


@pytest.fixture
def adapter():
    return get_adapter("linkedin")


# --- validation handshake --------------------------------------------------------------------------


def test_challenge_is_answered_with_hex_hmac_of_the_code(adapter):
    code = "890e4665-4dfe-4ab1-b689-ed553bceeed0"  # the documented example challengeCode
    request = make_request(f"{HUB_URL}?{urlencode({'challengeCode': code, 'applicationId': '77'})}", method="GET")
    response = adapter.handshake(request, [CREDENTIALS])
    assert (response.status, response.content_type) == (200, "application/json")
    expected = hmac.new(CREDENTIALS["client_secret"].encode(), code.encode(), hashlib.sha256).hexdigest()
    assert json.loads(response.body) == {"challengeCode": code, "challengeResponse": expected}


def test_challenge_needs_a_code_and_a_secret(adapter):
    with pytest.raises(MalformedPayload):
        adapter.handshake(make_request(HUB_URL, method="GET"), [CREDENTIALS])
    with pytest.raises(HandshakeRefused):
        adapter.handshake(make_request(f"{HUB_URL}?challengeCode=abc", method="GET"), [{"client_secret": ""}])


# --- signature -------------------------------------------------------------------------------------


def test_signed_notification_is_accepted(adapter):
    adapter.verify(signed(recorded("social-actions.json")), CREDENTIALS, NOW)


def test_signature_without_the_literal_prefix_is_refused(adapter):
    body = recorded("social-actions.json")
    plain = hmac.new(CREDENTIALS["client_secret"].encode(), body, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureError):
        adapter.verify(make_request(HUB_URL, body, {"X-LI-Signature": plain}), CREDENTIALS, NOW)
    with pytest.raises(SignatureError):  # the literal belongs to the signed string, not to the header
        adapter.verify(
            make_request(HUB_URL, body, {"X-LI-Signature": "hmacsha256=" + li_signature(body)}), CREDENTIALS, NOW
        )


def test_tampered_body_wrong_key_and_missing_header_are_refused(adapter):
    request = signed(recorded("social-actions.json"))
    with pytest.raises(SignatureError):
        adapter.verify(
            make_request(HUB_URL, request.body.replace(b"team!", b"team?"), dict(request.headers)), CREDENTIALS, NOW
        )
    with pytest.raises(SignatureError):
        adapter.verify(signed(recorded("social-actions.json"), "other"), CREDENTIALS, NOW)
    with pytest.raises(SignatureError, match="X-LI-Signature") as caught:
        adapter.verify(make_request(HUB_URL, request.body, {}), CREDENTIALS, NOW)
    assert CREDENTIALS["client_secret"] not in str(caught.value)


def test_sample_is_signed_with_the_documented_construction():
    credentials = demo_credentials("linkedin")
    for sample in ("comment", "mention"):
        request = build_sample("linkedin", sample, credentials, HUB_URL, now=NOW)
        assert request.headers["X-LI-Signature"] == li_signature(request.body, credentials["client_secret"])


def test_delivery_id_is_a_body_digest(adapter):
    request = signed(recorded("social-actions.json"))
    assert adapter.delivery_id(request) == "sha256:" + hashlib.sha256(request.body).hexdigest()


# --- normalisation -----------------------------------------------------------------------------------


def test_batch_gives_one_event_per_notification(adapter):
    drafts = adapter.normalise(signed(recorded("social-actions.json")))
    assert_publishable(drafts)
    comment, like, mention, deleted = drafts
    assert (comment.type, comment.provider_event_id) == ("comment.created", "notification:381084296")
    assert comment.text == "Congratulations to the team!"
    assert [(h.platform, h.id) for h in comment.contact.handles] == [("linkedin", "urn:li:person:n5_wiJYgWd")]
    assert comment.conversation_key == "linkedin:urn:li:share:6859916823212285952"
    assert comment.occurred_at == datetime.fromtimestamp(1635374488.596, UTC)
    assert comment.attributes["organizationalEntity"] == "urn:li:organization:2414183"
    assert comment.attributes["type"] == "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS"
    assert (like.type, like.contact.handles[0].id) == ("reaction.created", "urn:li:person:p9_QwErTy")
    assert (mention.type, mention.text) == ("mention.created", "Shout-out to Example Org for the great support!")
    assert (deleted.type, deleted.attributes["kind"]) == ("provider.notification", "linkedin.comment_delete")


def test_redelivered_batch_keeps_the_event_ids(adapter):
    first = [d.provider_event_id for d in adapter.normalise(signed(recorded("social-actions.json")))]
    payload = json.loads(recorded("social-actions.json"))
    payload["notifications"].reverse()
    again = [d.provider_event_id for d in adapter.normalise(signed(json.dumps(payload).encode()))]
    assert sorted(first) == sorted(again)


def test_lead_action(adapter):
    [event] = adapter.normalise(signed(recorded("lead-action.json")))
    assert_publishable([event])
    assert (event.type, event.attributes["kind"]) == ("provider.notification", "linkedin.lead_action")
    assert event.provider_event_id.startswith("lead:urn:li:leadGenFormResponse:") and event.provider_event_id.endswith(
        ":CREATED"
    )
    assert event.occurred_at == datetime.fromtimestamp(1700000000, UTC)


@pytest.mark.parametrize(
    "body",
    [
        b"x",
        b"[]",
        b"{}",
        b'{"notifications": []}',
        b'{"notifications": {}}',
        b'{"notifications": [1]}',
        b'{"notifications": [{}], "n": NaN}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_malformed_bodies(adapter, body):
    with pytest.raises(MalformedPayload):
        adapter.normalise(signed(body))


# --- property tests -------------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["COMMENT", "LIKE", "SHARE_MENTION", "LEAD_ACTION", "\ud800", "1635374488596"]),
)
KEYS = [
    "notificationId",
    "action",
    "sourcePost",
    "decoratedGeneratedActivity",
    "comment",
    "share",
    "owner",
    "message",
    "text",
    "lastModifiedAt",
    "createdAt",
    "actor",
    "type",
    "leadGenFormResponse",
    "leadAction",
    "occurredAt",
]
JSON_VALUES = st.recursive(
    SCALARS,
    lambda c: st.one_of(
        st.lists(c, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), c, max_size=6)
    ),
    max_leaves=30,
)
PAYLOADS = st.fixed_dictionaries(
    {},
    optional={
        "type": SCALARS,
        "notifications": st.lists(JSON_VALUES, max_size=3),
        "leadGenFormResponse": SCALARS,
        "occurredAt": SCALARS,
    },
)


@FUZZ
@given(
    url=st.one_of(st.just(HUB_URL + "?challengeCode=x"), st.text(max_size=40)),
    headers=st.dictionaries(st.sampled_from(["x-li-signature", "content-type"]), st.text(max_size=70), max_size=2),
    body=st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode())),
    credentials=st.lists(st.dictionaries(st.just("client_secret"), st.text(max_size=12)), max_size=2),
)
def test_property_any_request_raises_only_hub_errors(url, headers, body, credentials):
    adapter = get_adapter("linkedin")
    request = WebhookRequest(method="POST", url=url, headers=headers, body=body)
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
    adapter = get_adapter("linkedin")
    request = signed(json.dumps(payload).encode())
    adapter.verify(request, CREDENTIALS, NOW)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass
