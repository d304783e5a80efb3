"""infra/local/samples.py: every sample is signed the way the provider's official SDK checks,
is accepted by the hub's adapter, and normalises into publishable events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from hubspot.utils.signature import Signature
from standardwebhooks import Webhook
from twilio.request_validator import RequestValidator

from infra.local.samples import SAMPLES, SignedRequest, build_sample, demo_credentials
from switchboard_core.providers import PROVIDER_NAMES, get_adapter
from switchboard_core.providers.base import SignatureError, WebhookRequest
from tests.unit.providers.support import assert_drafts_publishable

NOW = datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
ALL_SAMPLES = [(provider, sample) for provider, names in SAMPLES.items() for sample in names]


class MultiDict(dict):
    def getall(self, key):
        return self[key]


def hub_url(provider: str) -> str:
    return f"https://hub.example.com/webhooks/{provider}/conn_01J01"


def as_request(signed: SignedRequest) -> WebhookRequest:
    return WebhookRequest(
        method=signed.method,
        url=signed.url,
        headers={k.lower(): v for k, v in signed.headers.items()},
        body=signed.body,
        query=parse_qs(urlsplit(signed.url).query, keep_blank_values=True),
        received_at=NOW,
    )


def test_every_provider_has_samples_with_the_documented_defaults():
    assert set(SAMPLES) == set(PROVIDER_NAMES)
    assert SAMPLES["twilio"][:3] == ("sms", "mms", "voice-status")
    assert SAMPLES["meta"] == ("whatsapp", "messenger", "instagram", "whatsapp-status")
    assert SAMPLES["hubspot"] == ("contact-created", "property-change", "thread-message")
    assert SAMPLES["standard-webhooks"] == ("default",)


@pytest.mark.parametrize("provider", sorted(SAMPLES))
def test_demo_credentials_are_fresh_and_valid(provider):
    first, second = demo_credentials(provider), demo_credentials(provider)
    assert first != second
    assert get_adapter(provider).validate_credentials(first) == first


def test_unknown_provider_or_sample_is_a_value_error():
    with pytest.raises(ValueError):
        demo_credentials("nope")
    with pytest.raises(ValueError):
        build_sample("nope", None, {}, "https://x")
    with pytest.raises(ValueError):
        build_sample("twilio", "fax", demo_credentials("twilio"), "https://x")


@pytest.mark.parametrize(("provider", "sample"), ALL_SAMPLES)
def test_sample_is_accepted_and_normalised_by_the_adapter(provider, sample):
    credentials = demo_credentials(provider)
    signed = build_sample(provider, sample, credentials, hub_url(provider), now=NOW)
    adapter = get_adapter(provider)
    request = as_request(signed)
    assert request.content_type in adapter.content_types
    adapter.verify(request, credentials, NOW + timedelta(seconds=2))
    drafts = adapter.normalise(request)
    assert drafts
    assert "provider.notification" not in {draft.type for draft in drafts}
    assert_drafts_publishable(drafts, provider, adapter.channel, NOW)
    assert adapter.delivery_id(request)
    with pytest.raises(SignatureError):
        adapter.verify(request, demo_credentials(provider), NOW)


@pytest.mark.parametrize(("provider", "sample"), ALL_SAMPLES)
def test_two_calls_are_two_deliveries(provider, sample):
    credentials = demo_credentials(provider)
    adapter = get_adapter(provider)
    first = as_request(build_sample(provider, sample, credentials, hub_url(provider), now=NOW))
    second = as_request(build_sample(provider, sample, credentials, hub_url(provider), now=NOW))
    assert adapter.delivery_id(first) != adapter.delivery_id(second)
    assert {d.provider_event_id for d in adapter.normalise(first)}.isdisjoint(
        d.provider_event_id for d in adapter.normalise(second)
    )


def test_default_sample_is_the_first():
    credentials = demo_credentials("meta")
    signed = build_sample("meta", None, credentials, hub_url("meta"), now=NOW)
    assert json.loads(signed.body)["object"] == "whatsapp_business_account"


# --- the providers' own SDK validators accept the samples ----------------------------------------------


@pytest.mark.parametrize("sample", SAMPLES["twilio"])
def test_twilio_samples_pass_the_sdk_validator(sample):
    credentials = demo_credentials("twilio")
    signed = build_sample("twilio", sample, credentials, hub_url("twilio") + "?region=eu", now=NOW)
    validator = RequestValidator(credentials["auth_token"])
    signature = signed.headers["X-Twilio-Signature"]
    if signed.headers["Content-Type"] == "application/json":
        assert "bodySHA256=" in signed.url
        assert validator.validate(signed.url, signed.body.decode(), signature)
    else:
        params = MultiDict(parse_qs(signed.body.decode(), keep_blank_values=True))
        assert validator.validate(signed.url, params, signature)
        assert not validator.validate(signed.url, MultiDict({**params, "Body": ["tampered"]}), signature)


@pytest.mark.parametrize("sample", SAMPLES["hubspot"])
def test_hubspot_samples_pass_the_sdk_validator(sample):
    credentials = demo_credentials("hubspot")
    now = datetime.now(UTC)  # the SDK checks freshness against the real clock
    signed = build_sample("hubspot", sample, credentials, hub_url("hubspot"), now=now)
    assert Signature.is_valid(
        signature=signed.headers["X-HubSpot-Signature-v3"],
        client_secret=credentials["client_secret"],
        request_body=signed.body.decode(),
        http_uri=signed.url,
        http_method="POST",
        signature_version="v3",
        timestamp=signed.headers["X-HubSpot-Request-Timestamp"],
    )
    assert Signature.is_valid(
        signed.headers["X-HubSpot-Signature"],
        credentials["client_secret"],
        signed.body.decode(),
        signature_version="v1",
    )


def test_hubspot_sample_signs_the_decoded_uri():
    credentials = demo_credentials("hubspot")
    url = hub_url("hubspot") + "?cb=https%3A%2F%2Fexample.com%2Fx"
    signed = build_sample("hubspot", None, credentials, url, now=NOW)
    decoded = hub_url("hubspot") + "?cb=https://example.com/x"
    expected = Signature.get_signature(
        credentials["client_secret"],
        signed.body.decode(),
        "v3",
        http_uri=decoded,
        timestamp=signed.headers["X-HubSpot-Request-Timestamp"],
    )
    assert signed.headers["X-HubSpot-Signature-v3"] == expected
    get_adapter("hubspot").verify(as_request(signed), credentials, NOW)


def test_standard_webhooks_sample_passes_the_sdk_validator():
    credentials = demo_credentials("standard-webhooks")
    signed = build_sample("standard-webhooks", None, credentials, hub_url("standard-webhooks"))
    payload = Webhook(credentials["secret"]).verify(signed.body, signed.headers)
    assert payload["type"] == "invoice.paid"


def test_meta_sample_signature_matches_hmac_of_the_body():
    import hashlib
    import hmac

    credentials = demo_credentials("meta")
    for sample in SAMPLES["meta"]:
        signed = build_sample("meta", sample, credentials, hub_url("meta"), now=NOW)
        expected = hmac.new(credentials["app_secret"].encode(), signed.body, hashlib.sha256).hexdigest()
        assert signed.headers["X-Hub-Signature-256"] == "sha256=" + expected
