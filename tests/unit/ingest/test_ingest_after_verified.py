"""The adapter hook `after_verified`: ingest calls it once a request verified and before
normalising, never for a refused request. SNS uses it to confirm its subscription."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import functions.ingest.logic as logic
from functions.ingest.logic import handle_webhook
from switchboard_core import aws
from switchboard_core.connections import Connection
from switchboard_core.errors import HubError
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import ProviderAdapter, WebhookRequest
from switchboard_core.providers.sns import SnsAdapter
from tests.unit.ingest.test_ingest_logic import idempotency_items, make_deps, signed, stored_objects
from tests.unit.providers.test_provider_sns import CERT_URL, TOPIC, FakeFetch, sign

NOW = datetime(2024, 6, 12, 14, 8, 5, tzinfo=UTC)
EVENTS = Path(__file__).resolve().parents[2] / "events" / "sns"
SNS_CONNECTION = "con_5n5000000000000a"
SW_CONNECTION = "con_0123456789abcdef"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def world(aws_world, monkeypatch):
    from infra import topology
    from switchboard_core.connections import ConnectionStore, CredentialStore

    names = aws_world.names
    connections = ConnectionStore(aws.resource("dynamodb").Table(names.table("connections")))
    credentials = CredentialStore(aws.client("secretsmanager"), topology.secrets_prefix("test"), max_age_seconds=0)
    connections.put(Connection(id=SNS_CONNECTION, provider="sns", tenant="acme", created_at=NOW))
    credentials.create(SNS_CONNECTION, {"topic_arn": TOPIC}, "acme")
    connections.put(Connection(id=SW_CONNECTION, provider="standard-webhooks", tenant="acme", created_at=NOW))
    credentials.create(SW_CONNECTION, {"secret": SECRET}, "acme")
    aws_world.deps = make_deps(names, credentials, aws.client("events"))
    aws_world.fetch = FakeFetch()
    sns = SnsAdapter(fetch=aws_world.fetch)
    monkeypatch.setattr(logic, "get_adapter", lambda name: sns if name == "sns" else get_adapter(name))
    return aws_world


def sns_request(name: str, **changes) -> WebhookRequest:
    message = sign({**json.loads((EVENTS / name).read_text()), **changes})
    return WebhookRequest(
        method="POST",
        url=f"https://hub.example.com/webhooks/sns/{SNS_CONNECTION}",
        headers={"content-type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": message["Type"]},
        body=json.dumps(message).encode(),
    )


def test_default_hook_is_a_no_op():
    assert ProviderAdapter.after_verified(get_adapter("standard-webhooks"), signed({"a": 1})) is None


def test_hook_runs_after_verify_and_before_normalise(world, monkeypatch):
    adapter = get_adapter("standard-webhooks")
    calls: list[str] = []
    for method in ("verify", "after_verified", "normalise"):
        original = getattr(adapter, method)
        monkeypatch.setattr(adapter, method, lambda *a, _m=method, _o=original: (calls.append(_m), _o(*a))[1])
    outcome = handle_webhook(signed({"type": "x.y"}, when=NOW), "standard-webhooks", SW_CONNECTION, world.deps, NOW)
    assert outcome.kind == "accepted"
    assert calls == ["verify", "after_verified", "normalise"]


def test_hook_is_not_called_for_a_refused_request(world, monkeypatch):
    adapter = get_adapter("standard-webhooks")
    called = []
    monkeypatch.setattr(adapter, "after_verified", lambda request: called.append(request))
    with pytest.raises(HubError) as caught:
        handle_webhook(
            signed({"a": 1}, secret="whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", when=NOW),
            "standard-webhooks",
            SW_CONNECTION,
            world.deps,
            NOW,
        )
    assert caught.value.status == 401 and called == []


def test_sns_subscription_confirmation_is_confirmed_and_stores_nothing(world):
    request = sns_request("subscription-confirmation.json")
    outcome = handle_webhook(request, "sns", SNS_CONNECTION, world.deps, NOW)
    assert outcome.kind == "handshake"
    assert outcome.response.status == 200
    assert world.fetch.calls == [CERT_URL, json.loads(request.body)["SubscribeURL"]]
    assert stored_objects(world) == [] and idempotency_items(world) == 0
    assert world.bus.events() == []


def test_sns_confirmation_for_another_topic_is_401_and_never_confirmed(world):
    other = "arn:aws:sns:us-east-2:123456789012:Other"
    request = sns_request("subscription-confirmation.json", TopicArn=other)
    with pytest.raises(HubError) as caught:
        handle_webhook(request, "sns", SNS_CONNECTION, world.deps, NOW)
    assert caught.value.status == 401
    assert world.fetch.calls == []


def test_sns_confirmation_failure_is_503_and_stores_nothing(world, monkeypatch):
    def failing(url: str) -> bytes:
        if "ConfirmSubscription" in url:
            raise ConnectionResetError()
        return FakeFetch()(url)

    monkeypatch.setattr(logic, "get_adapter", lambda name: SnsAdapter(fetch=failing))
    with pytest.raises(HubError) as caught:
        handle_webhook(sns_request("subscription-confirmation.json"), "sns", SNS_CONNECTION, world.deps, NOW)
    assert caught.value.status == 503
    assert stored_objects(world) == []


def test_sns_notification_is_stored_published_and_deduplicated_on_message_id(world):
    request = sns_request("notification-two-way-sms.json")
    first = handle_webhook(request, "sns", SNS_CONNECTION, world.deps, NOW)
    second = handle_webhook(request, "sns", SNS_CONNECTION, world.deps, NOW)
    assert (first.kind, second.kind) == ("accepted", "duplicate")
    assert first.delivery_id == "8e2c3f1a-5b7d-5e0f-9a1b-2c3d4e5f6a7b"
    [event] = world.bus.events()
    assert event["detail-type"] == "message.received" and event["source"] == "switchboard.sns"
    assert event["detail"]["contact"]["phone"] == "+14255550182"
    assert world.fetch.calls == [CERT_URL]
