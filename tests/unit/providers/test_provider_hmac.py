"""Generic HMAC adapter: the GitHub vector through configuration, other sender setups (Shopify,
Slack-like, Stripe-like), tampered/missing/stale variants, credentials validation,
normalisation, fuzzing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.local.samples.hmac import signature as sample_signature
from switchboard_core.errors import HubError
from switchboard_core.events import Channel
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import (
    MalformedPayload,
    SignatureError,
    WebhookRequest,
)
from switchboard_core.providers.hmac import HmacAdapter, parse_config
from tests.unit.providers.fuzz import FUZZ
from tests.unit.providers.support import (
    assert_drafts_publishable,
    assert_raises_only_hub_errors,
    recorded_event,
    webhook_request,
)

HUB_URL = "https://hub.example.com/webhooks/hmac/conn_01J00"
NOW = datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
TS = str(int(NOW.timestamp()))

# providers.md §4 #1: GitHub's published X-Hub-Signature-256 example
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
GITHUB = {
    "secret": GITHUB_SECRET,
    "header": "X-Hub-Signature-256",
    "algorithm": "sha256",
    "encoding": "hex",
    "prefix": "sha256=",
    "template": "{body}",
    "id_header": "X-GitHub-Delivery",
}
SHOPIFY = {
    "secret": "shpss_0123456789abcdef",
    "header": "X-Shopify-Hmac-Sha256",
    "encoding": "base64",
    "id_header": "X-Shopify-Webhook-Id",
}
SLACK_LIKE = {
    "secret": "8f742231b10e8888abcd99yyyzzz85a5",
    "header": "X-Slack-Signature",
    "prefix": "v0=",
    "template": "v0:{timestamp}:{body}",
    "timestamp_header": "X-Slack-Request-Timestamp",
}
STRIPE_LIKE = {
    "secret": "whsec_test_secret",
    "header": "Stripe-Signature",
    "prefix": "v1=",
    "template": "{timestamp}.{body}",
    "timestamp_header": "Stripe-Signature",
    "tolerance_seconds": "300",
}
TIMESTAMPED = {
    "secret": "s3cr3t",
    "header": "X-Signature",
    "prefix": "sha256=",
    "template": "{timestamp}.{body}",
    "timestamp_header": "X-Signature-Timestamp",
    "id_header": "X-Delivery-Id",
}


def make_request(body: bytes, headers: dict[str, str], content_type: str = "application/json") -> WebhookRequest:
    return webhook_request(HUB_URL, body, {"content-type": content_type, **headers}, received_at=NOW)


def signed(
    config: dict[str, str],
    body: bytes,
    *,
    timestamp: str = TS,
    delivery: str = "dlv_1",
    content_type: str = "application/json",
) -> WebhookRequest:
    value = sample_signature(config, body, timestamp, delivery)
    headers: dict[str, str] = {}
    if config.get("timestamp_header", "").lower() == config["header"].lower():
        headers[config["header"]] = f"t={timestamp},{value}"
    else:
        headers[config["header"]] = value
        if config.get("timestamp_header"):
            headers[config["timestamp_header"]] = timestamp
    if config.get("id_header"):
        headers[config["id_header"]] = delivery
    return make_request(body, headers, content_type)


def recorded(name: str) -> bytes:
    return recorded_event("hmac", name)


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "hmac", Channel.GENERIC, NOW)


@pytest.fixture
def adapter() -> HmacAdapter:
    return HmacAdapter()


# --- vectors and sender setups ---------------------------------------------------------------------------


def test_github_vector_through_configuration(adapter):
    body = recorded("github-hello-world.txt")
    assert body == b"Hello, World!"
    request = make_request(body, {"X-Hub-Signature-256": GITHUB_SIGNATURE}, "application/json")
    request = adapter.verified(request, GITHUB, NOW)
    assert sample_signature(GITHUB, body, "", "") == GITHUB_SIGNATURE


def test_github_vector_with_sha1_legacy_header(adapter):
    expected = "sha1=" + hmac.new(GITHUB_SECRET.encode(), b"Hello, World!", hashlib.sha1).hexdigest()
    config = {**GITHUB, "header": "X-Hub-Signature", "algorithm": "sha1", "prefix": "sha1="}
    adapter.verify(make_request(b"Hello, World!", {"X-Hub-Signature": expected}), config, NOW)


def test_uppercase_hex_is_accepted(adapter):
    request = make_request(b"Hello, World!", {"X-Hub-Signature-256": "sha256=" + GITHUB_SIGNATURE[7:].upper()})
    request = adapter.verified(request, GITHUB, NOW)


@pytest.mark.parametrize(
    "config",
    [
        GITHUB,
        SHOPIFY,
        SLACK_LIKE,
        STRIPE_LIKE,
        TIMESTAMPED,
        {**TIMESTAMPED, "algorithm": "sha512", "encoding": "base64"},
        {**TIMESTAMPED, "template": "{id}.{timestamp}.{body}"},
    ],
)
def test_sender_setups_round_trip(adapter, config):
    request = signed(config, recorded("github-issue-comment.json"))
    request = adapter.verified(request, config, NOW)
    [event] = adapter.normalise(request)
    assert_publishable([event])


def test_shopify_setup_matches_base64_hmac_of_the_body(adapter):
    body = recorded("shopify-order-created.json")
    value = base64.b64encode(hmac.new(SHOPIFY["secret"].encode(), body, hashlib.sha256).digest()).decode()
    request = make_request(body, {"X-Shopify-Hmac-Sha256": value, "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37"})
    request = adapter.verified(request, SHOPIFY, NOW)
    # Shopify signs the body only: its webhook id header is a hint, the body digest is the key.
    assert adapter.delivery_id(request) == "sha256:" + hashlib.sha256(body).hexdigest()
    [event] = adapter.normalise(request)
    assert event.attributes["sender_delivery_id"] == "b54557e4-bdd9-4b37"


def test_stripe_like_combined_header_matches_hand_computation(adapter):
    body = b'{"id":"evt_1","type":"invoice.paid"}'
    mac = hmac.new(b"whsec_test_secret", f"{TS}.".encode() + body, hashlib.sha256).hexdigest()
    request = make_request(body, {"Stripe-Signature": f"t={TS},v1={'0' * 64},v1={mac},v0=zzz"})
    request = adapter.verified(request, STRIPE_LIKE, NOW)


def test_any_of_several_signatures_matches(adapter):
    request = make_request(b"Hello, World!", {"X-Hub-Signature-256": f"sha256={'ab' * 32} {GITHUB_SIGNATURE}"})
    request = adapter.verified(request, GITHUB, NOW)


# --- refusals -------------------------------------------------------------------------------------------------


def test_tampered_body_is_refused(adapter):
    with pytest.raises(SignatureError, match="does not match"):
        adapter.verify(make_request(b"Hello, World?", {"X-Hub-Signature-256": GITHUB_SIGNATURE}), GITHUB, NOW)


def test_wrong_secret_is_refused(adapter):
    with pytest.raises(SignatureError, match="does not match"):
        adapter.verify(
            make_request(b"Hello, World!", {"X-Hub-Signature-256": GITHUB_SIGNATURE}),
            {**GITHUB, "secret": "another secret"},
            NOW,
        )


@pytest.mark.parametrize(
    "value",
    [
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=",
        "sha256=zz",
        "sha256=757107ea",
        "sha256=ümlaut",
    ],
)
def test_bad_signature_values_are_refused(adapter, value):
    with pytest.raises(SignatureError):
        adapter.verify(make_request(b"Hello, World!", {"X-Hub-Signature-256": value}), GITHUB, NOW)


def test_missing_signature_header_is_refused_by_name(adapter):
    with pytest.raises(SignatureError, match="X-Hub-Signature-256"):
        adapter.verify(make_request(b"Hello, World!", {}), GITHUB, NOW)


def test_missing_timestamp_header_is_refused_by_name(adapter):
    request = signed(TIMESTAMPED, b"{}")
    headers = {k: v for k, v in request.headers.items() if k != "x-signature-timestamp"}
    with pytest.raises(SignatureError, match="X-Signature-Timestamp"):
        adapter.verify(make_request(b"{}", headers), TIMESTAMPED, NOW)


def test_tampered_timestamp_is_refused(adapter):
    request = signed(TIMESTAMPED, b"{}")
    headers = {**request.headers, "x-signature-timestamp": str(int(TS) + 1)}
    with pytest.raises(SignatureError, match="does not match"):
        adapter.verify(make_request(b"{}", headers), TIMESTAMPED, NOW)


def test_id_in_template_is_signed(adapter):
    config = {**TIMESTAMPED, "template": "{id}.{timestamp}.{body}"}
    request = signed(config, b"{}")
    request = adapter.verified(request, config, NOW)
    with pytest.raises(SignatureError, match="does not match"):
        adapter.verify(make_request(b"{}", {**request.headers, "x-delivery-id": "dlv_2"}), config, NOW)
    with pytest.raises(SignatureError, match="X-Delivery-Id"):
        adapter.verify(
            make_request(b"{}", {k: v for k, v in request.headers.items() if k != "x-delivery-id"}), config, NOW
        )


def test_stripe_like_header_without_t_is_refused(adapter):
    with pytest.raises(SignatureError, match="t="):
        adapter.verify(make_request(b"{}", {"Stripe-Signature": "v1=abcd"}), STRIPE_LIKE, NOW)


@pytest.mark.parametrize(
    ("config", "offset", "accepted"),
    [
        (TIMESTAMPED, timedelta(0), True),
        (TIMESTAMPED, timedelta(seconds=300), True),
        (TIMESTAMPED, timedelta(seconds=-300), True),
        (TIMESTAMPED, timedelta(seconds=301), False),
        (TIMESTAMPED, timedelta(seconds=-301), False),
        ({**TIMESTAMPED, "tolerance_seconds": "60"}, timedelta(seconds=61), False),
        ({**TIMESTAMPED, "tolerance_seconds": "3600"}, timedelta(minutes=59), True),
        (STRIPE_LIKE, timedelta(seconds=301), False),
        (SLACK_LIKE, timedelta(seconds=299), True),
    ],
)
def test_replay_window(adapter, config, offset, accepted):
    """`offset` is how far the verifier's clock is ahead of the signed timestamp."""
    request = signed(config, b'{"a":1}')
    if accepted:
        adapter.verify(request, config, NOW + offset)
    else:
        with pytest.raises(SignatureError, match=r"older|future"):
            adapter.verify(request, config, NOW + offset)


def test_millisecond_timestamps_are_understood(adapter):
    ms = str(int(NOW.timestamp() * 1000))
    request = signed(TIMESTAMPED, b"{}", timestamp=ms)
    request = adapter.verified(request, TIMESTAMPED, NOW)
    with pytest.raises(SignatureError, match="older"):
        adapter.verify(request, TIMESTAMPED, NOW + timedelta(minutes=6))


@pytest.mark.parametrize("timestamp", ["", "abc", "-5", "1.5", "\u00b2", "9" * 30])
def test_unreadable_timestamps_are_refused(adapter, timestamp):
    request = signed(TIMESTAMPED, b"{}")
    with pytest.raises(SignatureError):
        adapter.verify(make_request(b"{}", {**request.headers, "x-signature-timestamp": timestamp}), TIMESTAMPED, NOW)


def test_invalid_stored_configuration_is_a_signature_error(adapter):
    with pytest.raises(SignatureError, match="configuration"):
        adapter.verify(make_request(b"{}", {"X-Sig": "x"}), {"secret": "s"}, NOW)


def test_error_messages_never_echo_secret_or_signature(adapter):
    with pytest.raises(SignatureError) as caught:
        adapter.verify(make_request(b"tampered", {"X-Hub-Signature-256": GITHUB_SIGNATURE}), GITHUB, NOW)
    assert GITHUB_SECRET not in str(caught.value) and GITHUB_SIGNATURE[7:] not in str(caught.value)
    with pytest.raises(HubError) as caught:
        adapter.validate_credentials({**GITHUB, "algorithm": "md5"})
    assert GITHUB_SECRET not in caught.value.message


# --- credentials ---------------------------------------------------------------------------------------------


def test_minimal_credentials_get_defaults(adapter):
    assert adapter.validate_credentials({"secret": "s", "header": "X-Sig"}) == {
        "secret": "s",
        "header": "X-Sig",
        "algorithm": "sha256",
        "encoding": "hex",
        "prefix": "",
        "template": "{body}",
    }


def test_full_credentials_round_trip(adapter):
    checked = adapter.validate_credentials({**TIMESTAMPED, "algorithm": "SHA512", "tolerance_seconds": 120})
    assert checked["algorithm"] == "sha512" and checked["tolerance_seconds"] == "120"
    assert adapter.validate_credentials(checked) == checked


@pytest.mark.parametrize(
    ("credentials", "problem"),
    [
        ({"header": "X-Sig"}, "secret"),
        ({"secret": "s"}, "header"),
        ({"secret": "s", "header": "X Sig"}, "header"),
        ({"secret": "s", "header": "X-Sig", "algorithm": "md5"}, "algorithm"),
        ({"secret": "s", "header": "X-Sig", "encoding": "base32"}, "encoding"),
        ({"secret": "s", "header": "X-Sig", "template": "{timestamp}"}, "{body}"),
        ({"secret": "s", "header": "X-Sig", "template": "{body}{body}"}, "{body}"),
        ({"secret": "s", "header": "X-Sig", "template": "{url}{body}"}, "{url}"),
        ({"secret": "s", "header": "X-Sig", "template": "{body}}"}, "unbalanced"),
        ({"secret": "s", "header": "X-Sig", "template": "{timestamp}.{body}"}, "timestamp_header"),
        ({"secret": "s", "header": "X-Sig", "template": "{id}.{body}"}, "id_header"),
        ({"secret": "s", "header": "X-Sig", "tolerance_seconds": "300"}, "timestamp_header"),
        (
            {"secret": "s", "header": "X-Sig", "timestamp_header": "X-Ts", "tolerance_seconds": "5 min"},
            "tolerance_seconds",
        ),
        ({"secret": "s", "header": "X-Sig", "timestamp_header": "X-Ts", "tolerance_seconds": "0"}, "tolerance_seconds"),
        ({"secret": "s", "header": "X-Sig", "timestamp_header": "X-Sig"}, "prefix"),
        ({"secret": "s", "header": "X-Sig", "colour": "blue"}, "colour"),
        ({"secret": "s", "header": "X-Sig", "prefix": "a\nb"}, "prefix"),
    ],
)
def test_invalid_credentials_are_400_with_the_problem_named(adapter, credentials, problem):
    with pytest.raises(HubError) as caught:
        adapter.validate_credentials(credentials)
    assert (caught.value.status, caught.value.code) == (400, "invalid_credentials")
    assert problem in caught.value.message


# --- normalisation -------------------------------------------------------------------------------------------


def test_json_body_is_a_webhook_received_with_the_delivery_id(adapter):
    body = recorded("github-issue-comment.json")
    request = signed(GITHUB, body, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    request = adapter.verified(request, GITHUB, NOW)
    [event] = adapter.normalise(request)
    assert_publishable([event])
    assert event.type == "webhook.received"
    # GitHub signs the body only, so X-GitHub-Delivery is a hint and the body digest is the key.
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    assert event.provider_event_id == adapter.delivery_id(request) == event.attributes["delivery_id"] == digest
    assert event.attributes["sender_delivery_id"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert event.attributes["type"] == "created"
    assert event.attributes["payload"]["repository"]["full_name"] == "octocat/Hello-World"


def test_without_id_header_the_delivery_id_is_a_body_digest(adapter):
    body = recorded("shopify-order-created.json")
    config = {k: v for k, v in SHOPIFY.items() if k != "id_header"}
    request = signed(config, body)
    request = adapter.verified(request, config, NOW)
    assert adapter.delivery_id(request) == "sha256:" + hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("config", [GITHUB, SHOPIFY, TIMESTAMPED])
def test_an_unsigned_id_header_never_makes_a_replay_a_new_delivery(adapter, config):
    body = recorded("github-issue-comment.json")
    original = adapter.verified(signed(config, body, delivery="dlv_original"), config, NOW)
    replayed = adapter.verified(signed(config, body, delivery="dlv_replayed"), config, NOW)  # same signature
    assert replayed.headers[config["header"].lower()] == original.headers[config["header"].lower()]
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    assert adapter.delivery_id(replayed) == adapter.delivery_id(original) == digest
    assert [e.provider_event_id for e in adapter.normalise(replayed)] == [
        e.provider_event_id for e in adapter.normalise(original)
    ]


@pytest.mark.parametrize("template", ["{id}.{timestamp}.{body}", "{timestamp}{id}{body}"])
def test_a_signed_id_header_is_the_delivery_id(adapter, template):
    config = {**TIMESTAMPED, "template": template}
    body = recorded("github-issue-comment.json")
    first = adapter.verified(signed(config, body, delivery="dlv_1"), config, NOW)
    retry = adapter.verified(signed(config, body, delivery="dlv_1"), config, NOW)
    other = adapter.verified(signed(config, body, delivery="dlv_2"), config, NOW)  # signed anew by the sender
    assert adapter.delivery_id(first) == adapter.delivery_id(retry) == "dlv_1"
    assert adapter.delivery_id(other) == "dlv_2"
    # The same signature with another id does not verify at all.
    tampered = webhook_request(HUB_URL, body, {**first.headers, "x-delivery-id": "dlv_3"}, received_at=NOW)
    with pytest.raises(SignatureError):
        adapter.verify(tampered, config, NOW)


def test_unverified_request_never_uses_a_header_as_delivery_id(adapter):
    request = signed(GITHUB, b"{}", delivery="attacker-chosen")
    assert adapter.delivery_id(request).startswith("sha256:")


def test_form_body(adapter):
    body = recorded("form-notification.txt")
    config = {**TIMESTAMPED}
    request = signed(config, body, content_type="application/x-www-form-urlencoded")
    request = adapter.verified(request, config, NOW)
    [event] = adapter.normalise(request)
    assert_publishable([event])
    assert event.attributes["type"] == "ticket.closed"
    assert event.attributes["payload"] == {
        "event": "ticket.closed",
        "ticket_id": "T-1001",
        "agent": "sam@example.com",
        "note": "café",
    }


def test_non_object_json_is_kept_whole(adapter):
    [event] = adapter.normalise(make_request(b"[1, 2]", {}))
    assert event.attributes["payload"] == [1, 2] and event.attributes["type"] is None


@pytest.mark.parametrize("body", [b"not json", b"{", b"\xff", b'{"a": NaN}', b"Hello, World!"])
def test_malformed_bodies(adapter, body):
    with pytest.raises(MalformedPayload):
        adapter.normalise(make_request(body, {}))


def test_registry_adapter_and_description():
    adapter = get_adapter("hmac")
    assert isinstance(adapter, HmacAdapter)
    assert adapter.describe()["required_credentials"] == ["secret", "header"]


# --- property tests ---------------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        st.sampled_from(["\ud800", "created", "1718201285"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(["type", "event", "topic", "action"]), st.text(max_size=8)), children, max_size=5
        ),
    ),
    max_leaves=30,
)
CONFIG_VALUES = st.dictionaries(
    st.sampled_from([*HmacAdapter.credential_fields, "other"]),  # every configurable field, and one it refuses
    st.one_of(
        st.text(max_size=20),
        st.sampled_from(["X-Sig", "sha1", "sha512", "base64", "{body}", "{timestamp}.{body}", "300", "X-Ts"]),
        st.integers(),
    ),
    max_size=9,
)


@FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(["x-sig", "x-ts", "x-hub-signature-256", "content-type", "stripe-signature"]),
        st.text(max_size=60),
        max_size=4,
    ),
    body=st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode())),
    config=st.one_of(CONFIG_VALUES, st.sampled_from([GITHUB, SHOPIFY, SLACK_LIKE, STRIPE_LIKE, TIMESTAMPED])),
)
def test_property_any_request_raises_only_hub_errors(headers, body, config):
    adapter = get_adapter("hmac")
    request = WebhookRequest(method="POST", url=HUB_URL, headers=headers, body=body)
    assert_raises_only_hub_errors(
        adapter, request, config, NOW, assert_publishable, also=[lambda: adapter.validate_credentials(config)]
    )


@FUZZ
@given(
    payload=JSON_VALUES,
    config=st.sampled_from(
        [GITHUB, SHOPIFY, SLACK_LIKE, STRIPE_LIKE, TIMESTAMPED, {**TIMESTAMPED, "template": "{id}.{timestamp}.{body}"}]
    ),
    delivery=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30),
)
def test_property_signed_json_verifies_and_normalises_or_is_malformed(payload, config, delivery):
    adapter = get_adapter("hmac")
    request = signed(config, json.dumps(payload).encode(), delivery=delivery)
    request = adapter.verified(request, config, NOW)
    try:
        assert_publishable(adapter.normalise(request))
    except MalformedPayload:
        pass
    if "{id}" in config.get("template", ""):
        assert adapter.delivery_id(request) == delivery
    else:
        assert adapter.delivery_id(request) == "sha256:" + hashlib.sha256(request.body).hexdigest()


@FUZZ
@given(credentials=CONFIG_VALUES)
def test_property_validated_credentials_are_stable(credentials):
    adapter = get_adapter("hmac")
    try:
        checked = adapter.validate_credentials(credentials)
    except HubError as error:
        assert error.status == 400
        return
    assert parse_config(checked).to_credentials() == checked
    assert all(isinstance(v, str) for v in checked.values())
