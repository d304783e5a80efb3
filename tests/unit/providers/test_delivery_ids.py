"""Every provider's delivery id (the dedupe key) comes from signed material.

For each provider's signed sample, every header the signature does not cover (the request
still verifies after changing it) and a set of id-like headers a replayer might add are
changed one at a time, and so is the Content-Type among the media types ingest accepts for
the provider: the delivery id and the event ids must stay the same, or a replay of one
captured request with a fresh header would be a new delivery each time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from infra.local.samples import SAMPLES, build_sample, demo_credentials
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import MalformedPayload, SignatureError, WebhookRequest
from switchboard_core.providers.twilio import compute_signature
from tests.unit.providers.support import webhook_request

NOW = datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
ALL_SAMPLES = [(provider, sample) for provider, names in SAMPLES.items() for sample in names]

# Headers that name a delivery somewhere (each provider's own, and the usual generic ones).
ID_LIKE_HEADERS = (
    "i-twilio-idempotency-token",
    "x-delivery-id",
    "x-request-id",
    "x-github-delivery",
    "x-shopify-webhook-id",
    "x-zendesk-webhook-invocation-id",
    "x-slack-retry-num",
    "x-amz-sns-message-id",
    "idempotency-key",
    "webhook-id",
)
# Content-Type is tried separately: only the media types the ingest function accepts for the
# provider get as far as the adapter.
NOT_REPLAYABLE = {"content-type"}


def sample_request(provider: str, sample: str, credentials: dict[str, str]) -> WebhookRequest:
    signed = build_sample(provider, sample, credentials, f"https://hub.example.com/webhooks/{provider}/conn_1", now=NOW)
    return webhook_request(signed.url, signed.body, signed.headers, method=signed.method, received_at=NOW)


def still_verifies(provider: str, request: WebhookRequest, credentials: dict[str, str]) -> WebhookRequest | None:
    try:
        return get_adapter(provider).verified(request, credentials, NOW + timedelta(seconds=1))
    except SignatureError:
        return None


@pytest.mark.parametrize(("provider", "sample"), ALL_SAMPLES)
def test_changing_an_unsigned_header_never_makes_a_new_delivery(provider, sample):
    adapter = get_adapter(provider)
    credentials = demo_credentials(provider)
    original = still_verifies(provider, sample_request(provider, sample, credentials), credentials)
    assert original is not None
    expected_id = adapter.delivery_id(original)
    expected_events = [draft.provider_event_id for draft in adapter.normalise(original)]

    names = (set(original.headers) | set(ID_LIKE_HEADERS)) - NOT_REPLAYABLE
    unsigned = []
    for name in sorted(names):
        value = original.headers.get(name, "")
        replayed = still_verifies(
            provider,
            replace(original, headers={**original.headers, name: value + "replayed-1"}, verified_with=None),
            credentials,
        )
        if replayed is None:
            continue  # the signature covers it (or it is the credential): a replay cannot change it
        unsigned.append(name)
        assert adapter.delivery_id(replayed) == expected_id, f"{provider}: {name} changes the delivery id"
        assert [draft.provider_event_id for draft in adapter.normalise(replayed)] == expected_events
    assert set(ID_LIKE_HEADERS) - set(original.headers) <= set(unsigned)  # added id headers were really tried

    for media_type in adapter.content_types:
        headers = {**original.headers, "content-type": media_type}
        replayed = still_verifies(provider, replace(original, headers=headers, verified_with=None), credentials)
        if replayed is None:
            continue
        try:
            replayed_id = adapter.delivery_id(replayed)
            adapter.normalise(replayed)
        except MalformedPayload:
            continue  # refused with a 400 before anything is stored
        assert replayed_id == expected_id, f"{provider}: Content-Type {media_type} changes the delivery id"


# --- Content-Type is not signed either ------------------------------------------------------------


def test_a_slack_event_re_sent_as_a_form_keeps_its_delivery_id():
    adapter = get_adapter("slack")
    credentials = {"signing_secret": "8f742231b10e8888abcd99yyyzzz85a5"}
    body = json.dumps(
        {
            "type": "event_callback",
            "event_id": "Ev08MFMKH6",
            "team_id": "T1",
            "event": {"type": "message", "text": "price=42", "user": "U1", "channel": "C1", "ts": "1718201285.000100"},
        }
    ).encode()
    stamp = str(int(NOW.timestamp()))
    signature = (
        "v0="
        + hmac.new(credentials["signing_secret"].encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    )
    ids = set()
    for media_type in ("application/json", "application/x-www-form-urlencoded"):
        request = webhook_request(
            "https://hub.example.com/webhooks/slack/c",
            body,
            {"Content-Type": media_type, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature},
        )
        adapter.verify(request, credentials, NOW)  # the signature does not cover the media type
        ids.add(adapter.delivery_id(request))
    assert ids == {"Ev08MFMKH6"}


def test_a_twilio_json_body_re_sent_as_a_form_keeps_its_delivery_id():
    adapter = get_adapter("twilio")
    token = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    body = json.dumps(
        {
            "MessageSid": "SM5c1f6a9d3b2e4f7a8c0d1e2f3a4b5c6d",
            "MessageStatus": "delivered",
            "To": "+14155550123",
            "From": "+14155550100",
            "Body": "x=y",
        }
    ).encode()
    url = "https://hub.example.com/webhooks/twilio/c?bodySHA256=" + hashlib.sha256(body).hexdigest()
    signature = compute_signature(token, url)
    ids = set()
    for media_type in ("application/json", "application/x-www-form-urlencoded"):
        request = webhook_request(url, body, {"Content-Type": media_type, "X-Twilio-Signature": signature})
        adapter.verify(request, {"auth_token": token}, NOW)
        ids.add(adapter.delivery_id(request))
    assert ids == {"SM5c1f6a9d3b2e4f7a8c0d1e2f3a4b5c6d:delivered"}
