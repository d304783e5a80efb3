"""Replaying one signed request with a changed unsigned header, through the ingest logic against
moto: one delivery, one raw object, one published event, however many times it is replayed."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from functions.ingest.logic import handle_webhook
from switchboard_core import aws
from switchboard_core.connections import Connection
from switchboard_core.providers.base import WebhookRequest
from switchboard_core.providers.twilio import compute_signature
from tests.unit.ingest.test_ingest_logic import idempotency_items, make_deps, stored_objects

NOW = datetime.now(UTC).replace(microsecond=0)
GITHUB_LIKE = {
    "secret": "It's a Secret to Everybody",
    "header": "X-Hub-Signature-256",
    "algorithm": "sha256",
    "encoding": "hex",
    "prefix": "sha256=",
    "template": "{body}",
    "id_header": "X-GitHub-Delivery",
}
TWILIO_TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


@pytest.fixture
def world(aws_world):
    from infra import topology
    from switchboard_core.connections import ConnectionStore, CredentialStore

    names = aws_world.names
    connections = ConnectionStore(aws.resource("dynamodb").Table(names.table("connections")))
    credentials = CredentialStore(aws.client("secretsmanager"), topology.secrets_prefix("test"), max_age_seconds=0)
    for connection_id, provider, secret in [
        ("con_hmac000000000001", "hmac", GITHUB_LIKE),
        ("con_twilio0000000001", "twilio", {"auth_token": TWILIO_TOKEN}),
    ]:
        connections.put(Connection(id=connection_id, provider=provider, tenant="acme", created_at=NOW))
        credentials.create(connection_id, secret, "acme")
    aws_world.deps = make_deps(names, credentials, aws.client("events"))
    return aws_world


def hmac_request(delivery: str) -> WebhookRequest:
    body = json.dumps({"action": "created", "comment": {"id": 1, "body": "hello"}}).encode()
    signature = "sha256=" + hmac.new(GITHUB_LIKE["secret"].encode(), body, hashlib.sha256).hexdigest()
    return WebhookRequest(
        method="POST",
        url="https://hub.example.com/webhooks/hmac/con_hmac000000000001",
        body=body,
        headers={"content-type": "application/json", "x-hub-signature-256": signature, "x-github-delivery": delivery},
    )


def twilio_request(token: str) -> WebhookRequest:
    url = "https://hub.example.com/webhooks/twilio/con_twilio0000000001"
    params = {
        "MessageSid": "SM5c1f6a9d3b2e4f7a8c0d1e2f3a4b5c6d",
        "SmsStatus": "received",
        "Body": "Hi",
        "From": "+14155550123",
        "To": "+14155550100",
        "AccountSid": "AC0123",
    }
    signature = compute_signature(TWILIO_TOKEN, url, {k: [v] for k, v in params.items()})
    return WebhookRequest(
        method="POST",
        url=url,
        body=urlencode(params).encode(),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": signature,
            "i-twilio-idempotency-token": token,
        },
    )


@pytest.mark.parametrize(
    ("provider", "connection", "build", "values"),
    [
        ("hmac", "con_hmac000000000001", hmac_request, ["72d3162e-0001", "72d3162e-0002", "attacker-3"]),
        ("twilio", "con_twilio0000000001", twilio_request, ["tok-1", "tok-2", "tok-3"]),
    ],
)
def test_a_replay_with_a_new_unsigned_id_header_is_a_duplicate(world, provider, connection, build, values):
    outcomes = [handle_webhook(build(value), provider, connection, world.deps, NOW) for value in values]
    assert [o.kind for o in outcomes] == ["accepted", "duplicate", "duplicate"]
    assert all(o.response.status == 200 for o in outcomes)
    assert len({o.delivery_id for o in outcomes}) == 1
    assert len(world.bus.events()) == 1
    assert len(stored_objects(world)) == 1
    assert idempotency_items(world) == 1
