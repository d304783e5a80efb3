"""Every provider's delivery id (the dedupe key) comes from signed material.

For each provider's signed sample, every header the signature does not cover (the request
still verifies after changing it) and a set of id-like headers a replayer might add are
changed one at a time: the delivery id and the event ids must stay the same, or a replay
of one captured request with a fresh header would be a new delivery each time.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import SignatureError, WebhookRequest

from infra.local.samples import SAMPLES, build_sample, demo_credentials
from tests.unit.providers.support import webhook_request

NOW = datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
ALL_SAMPLES = [(provider, sample) for provider, names in SAMPLES.items() for sample in names]

# Headers that name a delivery somewhere (each provider's own, and the usual generic ones).
ID_LIKE_HEADERS = ("i-twilio-idempotency-token", "x-delivery-id", "x-request-id", "x-github-delivery",
                   "x-shopify-webhook-id", "x-zendesk-webhook-invocation-id", "x-slack-retry-num",
                   "x-amz-sns-message-id", "idempotency-key", "webhook-id")
# The ingest function refuses another media type before verifying; that is not a replay.
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
        replayed = still_verifies(provider, replace(original, headers={**original.headers, name: value + "replayed-1"},
                                                    verified_with=None), credentials)
        if replayed is None:
            continue  # the signature covers it (or it is the credential): a replay cannot change it
        unsigned.append(name)
        assert adapter.delivery_id(replayed) == expected_id, f"{provider}: {name} changes the delivery id"
        assert [draft.provider_event_id for draft in adapter.normalise(replayed)] == expected_events
    assert set(ID_LIKE_HEADERS) - set(original.headers) <= set(unsigned)  # added id headers were really tried
