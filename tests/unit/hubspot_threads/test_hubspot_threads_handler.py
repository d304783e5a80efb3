"""The HubSpot threads consumer through its handler (as Lambda calls it), against moto and the
loopback provider sandbox: a thread webhook's message fetched and published, a HubSpot outage as a
batch item failure, a connection without outbound credentials skipped, and no token in the log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from infra import topology
from infra.local.lambdas import LocalFunctions
from infra.local.provider_apis import ProviderApis, serve
from switchboard_core import aws
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from switchboard_core.outbound import API_OVERRIDE_ENV
from tests.conftest import capture_function_log
from tests.unit.answers.test_answers_handler import received
from tests.unit.event_log.test_event_log_consumer import envelope
from tests.unit.hubspot_threads.test_hubspot_threads import CONNECTION, OUTBOUND, customer_message, webhook

NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)


@pytest.fixture
def consumer(aws_world) -> Iterator[tuple[LocalFunctions, ProviderApis, Any, Any]]:
    apis = ProviderApis()
    server, url = serve(apis)
    apis.accept("hubspot", OUTBOUND)
    connections = ConnectionStore(aws.resource("dynamodb").Table(aws_world.names.table("connections")))
    connections.put(
        Connection(id=CONNECTION, provider="hubspot", tenant="acme", created_at=NOW, outbound_configured_at=NOW)
    )
    CredentialStore(aws.client("secretsmanager"), topology.outbound_secrets_prefix("test")).create(
        CONNECTION, OUTBOUND, "acme"
    )
    functions = LocalFunctions(aws_world.names.mapping(), "test", extra_env={API_OVERRIDE_ENV: url})
    (queue,) = [q for q in aws_world.queues if q.function == "hubspot_threads"]
    yield functions, apis, queue, aws_world
    server.shutdown()


def published(aws_world) -> list[dict[str, Any]]:
    return [e for e in aws_world.bus.events() if e["detail-type"] in ("message.received", "message.sent")]


def test_a_thread_message_is_fetched_and_published_once_without_logging_the_token(consumer, capsys):
    functions, apis, queue, aws_world = consumer
    apis.add_hubspot_message(customer_message())
    body = envelope(webhook())
    assert functions.invoke("hubspot_threads", received(queue, body)) == {"batchItemFailures": []}
    capture_function_log("switchboard-hubspot-threads")
    capsys.readouterr()
    assert functions.invoke("hubspot_threads", received(queue, body)) == {"batchItemFailures": []}  # redelivered
    events = published(aws_world)
    assert [e["detail-type"] for e in events] == ["message.received", "message.received"]
    assert events[0]["source"] == "switchboard.hubspot" and events[0]["detail"] == events[1]["detail"]
    assert events[0]["detail"]["text"] == "My order arrived damaged"
    logged = capsys.readouterr().out
    assert "HubSpot thread message published" in logged and OUTBOUND["access_token"] not in logged


def test_a_hubspot_outage_is_a_batch_item_failure_and_the_retry_publishes(consumer):
    functions, apis, queue, aws_world = consumer
    apis.add_hubspot_message(customer_message())
    body = envelope(webhook())
    apis.fail_next("hubspot", 503)
    event = received(queue, body)
    assert functions.invoke("hubspot_threads", event) == {
        "batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]
    }
    assert published(aws_world) == []
    assert functions.invoke("hubspot_threads", received(queue, body)) == {"batchItemFailures": []}
    assert [e["detail-type"] for e in published(aws_world)] == ["message.received"]


def test_an_unknown_message_and_a_connection_without_credentials_are_dropped_with_a_log_line(consumer, capsys):
    functions, apis, queue, aws_world = consumer
    assert functions.invoke("hubspot_threads", received(queue, envelope(webhook()))) == {"batchItemFailures": []}
    capture_function_log("switchboard-hubspot-threads")
    capsys.readouterr()
    assert functions.invoke("hubspot_threads", received(queue, envelope(webhook()))) == {"batchItemFailures": []}
    assert "fetch_404" in capsys.readouterr().out

    connections = ConnectionStore(aws.resource("dynamodb").Table(aws_world.names.table("connections")))
    connections.put(Connection(id=CONNECTION, provider="hubspot", tenant="acme", created_at=NOW))
    apis.add_hubspot_message(customer_message())
    assert functions.invoke("hubspot_threads", received(queue, envelope(webhook()))) == {"batchItemFailures": []}
    logged = capsys.readouterr().out
    assert "not_configured" in logged and "no outbound credentials" in logged
    assert published(aws_world) == []
