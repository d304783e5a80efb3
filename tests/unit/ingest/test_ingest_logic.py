"""The ingest logic against moto: what is stored and published for each outcome."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from functions.ingest.logic import IngestDeps, handle_webhook
from infra import topology
from switchboard_core import aws
from switchboard_core.bus import EventPublisher
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from switchboard_core.dedupe import IdempotentRunner
from switchboard_core.errors import HubError
from switchboard_core.providers.base import WebhookRequest
from switchboard_core.raw_store import RawStore

NOW = datetime.now(UTC).replace(microsecond=0)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
URL = "https://hooks.example.com/webhooks/standard-webhooks/con_0123456789abcdef"


class FailingEvents:
    def put_events(self, Entries):
        return {"FailedEntryCount": len(Entries), "Entries": [{"ErrorCode": "InternalFailure"}] * len(Entries)}


@pytest.fixture
def world(aws_world):
    names = aws_world.names
    connections = ConnectionStore(aws.resource("dynamodb").Table(names.table("connections")))
    credentials = CredentialStore(aws.client("secretsmanager"), topology.secrets_prefix("test"), max_age_seconds=0)
    connection = Connection(id="con_0123456789abcdef", provider="standard-webhooks", tenant="acme", created_at=NOW)
    connections.put(connection)
    credentials.create(connection.id, {"secret": SECRET}, "acme")
    aws_world.credentials = credentials
    aws_world.deps = make_deps(names, credentials, aws.client("events"))
    return aws_world


def make_deps(names, credentials, events_client) -> IngestDeps:
    return IngestDeps(
        connections=ConnectionStore(aws.resource("dynamodb").Table(names.table("connections"))),
        credentials=credentials,
        raw_store=RawStore(aws.client("s3"), names.bucket("raw")),
        publisher=EventPublisher(events_client, names.bus, backoff_seconds=0),
        run_once=IdempotentRunner(
            names.table("idempotency"), topology.DEDUPE_TTL_SECONDS, boto3_client=aws.client("dynamodb")
        ),
        max_body_bytes=10_000,
    )


def signed(
    body: dict | bytes,
    msg_id: str = "msg_1",
    secret: str = SECRET,
    when: datetime = NOW,
    content_type: str = "application/json",
    method: str = "POST",
) -> WebhookRequest:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    signature = Webhook(secret).sign(msg_id, when, data.decode(errors="replace"))
    return WebhookRequest(
        method=method,
        url=URL,
        body=data,
        headers={
            "content-type": content_type,
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature,
        },
    )


def stored_objects(world) -> list[str]:
    listing = aws.client("s3").list_objects_v2(Bucket=world.names.bucket("raw"))
    return [o["Key"] for o in listing.get("Contents", [])]


def idempotency_items(world) -> int:
    return aws.client("dynamodb").scan(TableName=world.names.table("idempotency"))["Count"]


def ingest(world, request, provider="standard-webhooks", connection="con_0123456789abcdef", deps=None):
    return handle_webhook(request, provider, connection, deps or world.deps, NOW)


def test_accepted_delivery_is_stored_then_published(world):
    outcome = ingest(world, signed({"type": "invoice.paid", "data": {"id": 7}}))
    assert outcome.kind == "accepted" and outcome.response.status == 200
    published = world.bus.events()
    assert [e["detail-type"] for e in published] == ["webhook.received"]
    detail = published[0]["detail"]
    assert published[0]["source"] == "switchboard.standard-webhooks"
    assert detail["tenant"] == "acme" and detail["connection"] == "con_0123456789abcdef"
    assert detail["raw_ref"]["key"] in stored_objects(world)
    raw = json.loads(
        aws.client("s3").get_object(Bucket=world.names.bucket("raw"), Key=detail["raw_ref"]["key"])["Body"].read()
    )
    assert raw["headers"]["webhook-id"] == "msg_1"


def test_same_delivery_twice_publishes_once(world):
    first = ingest(world, signed({"type": "a.b"}, msg_id="msg_dup"))
    second = ingest(world, signed({"type": "a.b"}, msg_id="msg_dup"))
    assert (first.kind, second.kind) == ("accepted", "duplicate")
    assert second.response.status == 200
    assert second.event_ids == first.event_ids
    assert len(world.bus.events()) == 1


@pytest.mark.parametrize("tamper", ["body", "key", "stale", "missing"])
def test_bad_signatures_get_401_and_store_nothing(world, tamper):
    request = signed({"type": "a.b"})
    if tamper == "body":
        request = WebhookRequest(method="POST", url=URL, headers=request.headers, body=b'{"type": "a.c"}')
    elif tamper == "key":
        request = signed({"type": "a.b"}, secret=NEW_SECRET)
    elif tamper == "stale":
        request = signed({"type": "a.b"}, when=NOW - timedelta(minutes=6))
    elif tamper == "missing":
        request = WebhookRequest(
            method="POST", url=URL, body=request.body, headers={"content-type": "application/json"}
        )
    with pytest.raises(HubError) as caught:
        ingest(world, request)
    assert caught.value.status == 401
    assert stored_objects(world) == [] and idempotency_items(world) == 0 and world.bus.events() == []


@pytest.mark.parametrize(
    ("provider", "connection", "code"),
    [
        ("nope", "con_0123456789abcdef", "unknown_provider"),
        ("standard-webhooks", "con_ffffffffffffffff", "unknown_connection"),
        ("standard-webhooks", "../../etc", "unknown_connection"),
        ("twilio", "con_0123456789abcdef", "unknown_connection"),  # exists, but for another provider
    ],
)
def test_unknown_provider_or_connection_is_404(world, provider, connection, code):
    with pytest.raises(HubError) as caught:
        ingest(world, signed({"type": "a.b"}), provider=provider, connection=connection)
    assert (caught.value.status, caught.value.code) == (404, code)


def test_other_methods_are_405(world):
    with pytest.raises(HubError) as caught:
        ingest(world, signed({"type": "a.b"}, method="PUT"))
    assert caught.value.status == 405


def test_too_large_is_413_and_wrong_type_is_415(world):
    with pytest.raises(HubError) as caught:
        ingest(world, signed(b"{" + b" " * 20_000 + b"}"))
    assert caught.value.status == 413
    with pytest.raises(HubError) as caught:
        ingest(world, signed({"type": "a.b"}, content_type="text/plain"))
    assert caught.value.status == 415
    assert stored_objects(world) == []


def test_signed_but_malformed_is_400_and_stores_nothing(world):
    with pytest.raises(HubError) as caught:
        ingest(world, signed(b"not json"))
    assert caught.value.status == 400
    assert stored_objects(world) == [] and idempotency_items(world) == 0


def test_publish_failure_is_503_and_the_retry_goes_through(world):
    failing = make_deps(world.names, world.credentials, FailingEvents())
    with pytest.raises(HubError) as caught:
        ingest(world, signed({"type": "a.b"}, msg_id="msg_retry"), deps=failing)
    assert caught.value.status == 503
    assert idempotency_items(world) == 0  # released: the provider's retry is processed
    retry = ingest(world, signed({"type": "a.b"}, msg_id="msg_retry"))
    assert retry.kind == "accepted"
    assert len(world.bus.events()) == 1


def test_credentials_cached_before_a_rotation_are_read_again_when_a_signature_fails(world, monkeypatch):
    cached = CredentialStore(aws.client("secretsmanager"), topology.secrets_prefix("test"), max_age_seconds=60)
    deps = replace(world.deps, credentials=cached)
    assert ingest(world, signed({"type": "a.b"}, msg_id="before"), deps=deps).kind == "accepted"  # read, kept
    world.credentials.rotate("con_0123456789abcdef", {"secret": NEW_SECRET}, timedelta(hours=1), NOW)
    # The provider signs with the new secret at once: accepted, not refused for the cache's minute.
    assert ingest(world, signed({"type": "a.b"}, msg_id="new", secret=NEW_SECRET), deps=deps).kind == "accepted"
    # Forged requests: refused, and the secret is read again at most once per interval.
    reads: list[bool] = []
    get = cached.get
    monkeypatch.setattr(cached, "get", lambda connection, *, fresh=False: reads.append(fresh) or get(connection))
    clock = [time.monotonic() + cached.REFRESH_INTERVAL_SECONDS]  # past the refresh the rotation caused
    monkeypatch.setattr("switchboard_core.connections.time.monotonic", lambda: clock[0])
    for n in range(3):
        with pytest.raises(HubError) as caught:
            ingest(world, signed({"type": "a.b"}, msg_id=f"forged{n}", secret=SECRET.replace("M", "N")), deps=deps)
        assert caught.value.status == 401
    assert reads.count(True) == 1
    clock[0] += cached.REFRESH_INTERVAL_SECONDS
    with pytest.raises(HubError):
        ingest(world, signed({"type": "a.b"}, msg_id="forged-later", secret=SECRET.replace("M", "N")), deps=deps)
    assert reads.count(True) == 2


def test_uncached_credentials_are_not_read_twice_for_a_bad_signature(world):
    assert world.credentials.refreshed("con_0123456789abcdef") is None  # max_age 0: every read is fresh


def test_rotation_accepts_old_and_new_secrets_during_grace(world):
    world.credentials.rotate("con_0123456789abcdef", {"secret": NEW_SECRET}, timedelta(hours=1), NOW)
    assert ingest(world, signed({"type": "a.b"}, msg_id="old", secret=SECRET)).kind == "accepted"
    assert ingest(world, signed({"type": "a.b"}, msg_id="new", secret=NEW_SECRET)).kind == "accepted"
    later = NOW + timedelta(hours=2)
    with pytest.raises(HubError) as caught:
        handle_webhook(
            signed({"type": "a.b"}, msg_id="late", secret=SECRET, when=later),
            "standard-webhooks",
            "con_0123456789abcdef",
            world.deps,
            later,
        )
    assert caught.value.status == 401
