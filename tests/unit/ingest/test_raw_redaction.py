"""Credentials never reach the raw store: every provider's signed sample, ingested through the
ingest logic against moto, leaves a raw object in which no credential value appears (as sent,
or Basic-encoded), while the body and the other headers are kept exactly."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.ingest.logic import handle_webhook
from infra import topology
from infra.local.samples import SAMPLES, build_sample, demo_credentials
from switchboard_core import aws
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from switchboard_core.providers import PROVIDER_NAMES, get_adapter
from switchboard_core.raw_store import REDACTED
from tests.conftest import AWS_TEST_ENV
from tests.unit.ingest.test_ingest_logic import make_deps
from tests.unit.providers.support import webhook_request

NOW = datetime.now(UTC).replace(microsecond=0)

# Which credential fields are secrets, per provider, decided here and not read from the adapters
# (so an adapter that forgets to declare a header is caught). Not secrets: public keys
# (discord, telnyx), the SNS topic ARN, hmac's configuration besides its secret, and Salesforce's
# organization id, an identifier that Salesforce itself writes into every SOAP body (the body is
# kept exactly; docs/security.md).
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "bandwidth": ("username", "password"),
    "discord": (),
    "freshdesk": ("header_value",),
    "hmac": ("secret",),
    "hubspot": ("client_secret",),
    "intercom": ("client_secret",),
    "linkedin": ("client_secret",),
    "meta": ("app_secret", "verify_token"),
    "pipedrive": ("username", "password"),
    "plivo": ("auth_token",),
    "salesforce": (),
    "slack": ("signing_secret",),
    "sns": (),
    "standard-webhooks": ("secret",),
    "telegram": ("secret_token",),
    "telnyx": (),
    "twilio": ("auth_token",),
    "vonage": ("signature_secret",),
    "websub": ("secret",),
    "x": ("consumer_secret",),
    "zendesk": ("signing_secret",),
}
FRESHDESK_BASIC = ("username", "password")

CASES = [(provider, sample, None) for provider, names in SAMPLES.items() for sample in names]
CASES += [("freshdesk", sample, FRESHDESK_BASIC) for sample in SAMPLES["freshdesk"]]


@pytest.fixture(scope="module")
def world() -> Iterator[Any]:
    """One moto world for the module (each case uses its own connection): the topology's
    resources once instead of once per case."""
    from moto import mock_aws

    from infra.local.emulator import LocalNames, create_resources

    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for key, value in AWS_TEST_ENV.items():
            patch.setenv(key, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        aws.reset_clients()
        names = LocalNames("test")
        create_resources(names)
        yield names
    aws.reset_clients()


def test_every_provider_is_classified():
    assert set(SECRET_FIELDS) == set(PROVIDER_NAMES)


def forms_of(credentials: dict[str, str], fields: tuple[str, ...]) -> list[str]:
    """Each secret value as sent, plus Basic's base64 of user:password when both are secrets."""
    values = [credentials[name] for name in fields]
    if {"username", "password"} <= set(fields):
        pair = f"{credentials['username']}:{credentials['password']}".encode()
        values.append(base64.b64encode(pair).decode())
    return values


@pytest.mark.parametrize(("case", "provider", "sample", "shape"), [(i, *case) for i, case in enumerate(CASES)])
def test_no_credential_value_reaches_the_raw_store(world, case, provider, sample, shape):
    connection = f"con_{case:016x}"
    credentials = demo_credentials(provider)
    if shape == FRESHDESK_BASIC:
        credentials = {"username": "agent-webhooks", "password": "Fr3shdesk-basic-secret-value"}
    ConnectionStore(aws.resource("dynamodb").Table(world.table("connections"))).put(
        Connection(id=connection, provider=provider, tenant="acme", created_at=NOW)
    )
    store = CredentialStore(aws.client("secretsmanager"), topology.secrets_prefix("test"), max_age_seconds=0)
    store.create(connection, credentials, "acme")
    deps = make_deps(world, store, aws.client("events"))
    deps.max_body_bytes = topology.MAX_BODY_BYTES
    signed = build_sample(
        provider, sample, credentials, f"https://hub.example.com/webhooks/{provider}/{connection}", now=NOW
    )
    request = webhook_request(signed.url, signed.body, signed.headers, method=signed.method, received_at=NOW)

    outcome = handle_webhook(request, provider, connection, deps, NOW)
    assert outcome.kind == "accepted"

    bucket = world.bucket("raw")
    [listed] = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"raw/acme/{connection}/")["Contents"]
    stored_bytes = aws.client("s3").get_object(Bucket=bucket, Key=listed["Key"])["Body"].read()
    stored = json.loads(stored_bytes)
    everything = stored_bytes.decode() + base64.b64decode(stored["body_base64"]).decode("utf-8", "replace")
    secrets = forms_of(credentials, shape or SECRET_FIELDS[provider])
    for secret in secrets:
        assert secret not in everything, f"{provider}/{sample}: a credential value is in the raw object"

    # What is redacted is named, and nothing else changed: body, URL and other headers stay exact.
    redacted = {name for name, value in stored["headers"].items() if value == REDACTED}
    assert redacted == set(stored["redacted_headers"])
    assert redacted == {
        name for name in request.headers if name in get_adapter(provider).credential_headers(credentials)
    }
    assert base64.b64decode(stored["body_base64"]) == request.body
    assert stored["url"] == request.url
    assert {k: v for k, v in stored["headers"].items() if k not in redacted} == {
        k: v for k, v in request.headers.items() if k not in redacted
    }
    if secrets and provider in ("telegram", "freshdesk", "pipedrive", "bandwidth"):
        assert redacted  # these providers send the credential itself, in a header


def test_during_a_rotation_the_headers_of_both_credential_sets_are_redacted(world):
    """A Freshdesk connection moved from one secret header to another: while the old set is
    still valid, a sender may send both headers, and both carry a secret."""
    from datetime import timedelta

    connection = "con_rotation000000001"
    old = {"header_name": "X-Old-Secret", "header_value": "old-secret-value-0123456789"}
    new = {"header_name": "X-New-Secret", "header_value": "new-secret-value-0123456789"}
    ConnectionStore(aws.resource("dynamodb").Table(world.table("connections"))).put(
        Connection(id=connection, provider="freshdesk", tenant="acme", created_at=NOW)
    )
    store = CredentialStore(aws.client("secretsmanager"), topology.secrets_prefix("test"), max_age_seconds=0)
    store.create(connection, old, "acme")
    store.rotate(connection, new, timedelta(hours=1), NOW)
    signed = build_sample("freshdesk", None, new, f"https://hub.example.com/webhooks/freshdesk/{connection}", now=NOW)
    headers = {**signed.headers, old["header_name"]: old["header_value"]}
    request = webhook_request(signed.url, signed.body, headers, received_at=NOW)

    assert (
        handle_webhook(request, "freshdesk", connection, make_deps(world, store, aws.client("events")), NOW).kind
        == "accepted"
    )
    bucket = world.bucket("raw")
    [listed] = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"raw/acme/{connection}/")["Contents"]
    stored = aws.client("s3").get_object(Bucket=bucket, Key=listed["Key"])["Body"].read().decode()
    assert old["header_value"] not in stored and new["header_value"] not in stored
    assert json.loads(stored)["redacted_headers"] == ["x-new-secret", "x-old-secret"]
