"""Which headers each provider's adapter names as credential-bearing (redacted before the raw
request is stored; docs/security.md). Written out per provider, so a change is a decision."""

from __future__ import annotations

import pytest

from infra.local.samples import demo_credentials
from switchboard_core.providers import PROVIDER_NAMES, get_adapter
from switchboard_core.providers.base import GENERIC_CREDENTIAL_HEADERS

EXTRA: dict[str, set[str]] = {name: set() for name in PROVIDER_NAMES}
EXTRA["telegram"] = {"x-telegram-bot-api-secret-token"}


def test_generic_headers_are_the_authorization_and_session_ones():
    assert {"authorization", "proxy-authorization", "cookie"} == GENERIC_CREDENTIAL_HEADERS


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_credential_headers_of_each_provider(provider):
    credentials = demo_credentials(provider)
    expected = GENERIC_CREDENTIAL_HEADERS | EXTRA[provider]
    if provider == "freshdesk":
        expected |= {credentials["header_name"].lower()}
    assert get_adapter(provider).credential_headers(credentials) == expected


def test_hmac_keeps_its_signature_header():
    # The configured header carries HMAC(secret, signed string), never the secret: a signature.
    credentials = demo_credentials("hmac")
    assert credentials["header"].lower() not in get_adapter("hmac").credential_headers(credentials)


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "u", "password": "p"},
        {"header_name": "X-Hook-Token", "header_value": "0123456789abcdef"},
    ],
)
def test_freshdesk_adds_only_a_configured_header(credentials):
    headers = get_adapter("freshdesk").credential_headers(credentials)
    assert headers - GENERIC_CREDENTIAL_HEADERS == ({"x-hook-token"} if "header_name" in credentials else set())
