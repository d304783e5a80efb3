"""The calls consumer through its handler (as Lambda calls it), against moto and the loopback
provider sandbox: the call update lands in the sandbox, call.patched on the bus, a Twilio
outage fails only that record, and no credential is logged."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra import topology
from infra.local.lambdas import LocalFunctions
from infra.local.provider_apis import ProviderApis, serve
from switchboard_core import aws
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from switchboard_core.outbound import API_OVERRIDE_ENV
from switchboard_core.routing.config_store import RoutingConfigStore
from tests.conftest import capture_function_log
from tests.unit.calls.test_calls import CALL, OUTBOUND, assigned, responder
from tests.unit.calls.test_twiml import parse
from tests.unit.event_log.test_event_log_consumer import envelope, sqs_event

NOW = datetime(2026, 12, 2, 10, tzinfo=UTC)


@pytest.fixture
def calls(aws_world):
    apis = ProviderApis()
    server, url = serve(apis)
    apis.accept("twilio", OUTBOUND)
    connections = ConnectionStore(aws.resource("dynamodb").Table(aws_world.names.table("connections")))
    connections.put(
        Connection(id="con_twilio", provider="twilio", tenant="acme", created_at=NOW, outbound_configured_at=NOW)
    )
    CredentialStore(aws.client("secretsmanager"), topology.outbound_secrets_prefix("test")).replace(
        "con_twilio", OUTBOUND, "acme"
    )
    RoutingConfigStore(aws.resource("dynamodb").Table(aws_world.names.table("routing"))).put_responder(
        responder("kiel", 54.3233, 10.1228, "+494310001")
    )
    functions = LocalFunctions(aws_world.names.mapping(), "test", extra_env={API_OVERRIDE_ENV: url})
    functions.set_public_base_url("https://hub.example.com")
    yield functions, apis, aws_world
    server.shutdown()


def test_a_live_call_is_put_through_and_call_patched_published(calls, capsys):
    functions, apis, world = calls
    functions.invoke("calls", sqs_event([envelope(assigned(call=None))]))  # cold start; not a call
    capture_function_log("switchboard-calls")
    capsys.readouterr()
    assert functions.invoke("calls", sqs_event([envelope(assigned())])) == {"batchItemFailures": []}
    [update] = apis.call_updates
    assert update.call_sid == CALL and parse(update.twiml or "").findtext("Dial/Number") == "+494310001"
    assert parse(update.twiml or "").find("Dial").get("action") == "https://hub.example.com/webhooks/twilio/con_twilio"  # type: ignore[union-attr]
    published = [e for e in world.bus.events() if e["source"] == "switchboard.calls"]
    assert [e["detail-type"] for e in published] == ["call.patched"]
    assert published[0]["detail"]["attributes"]["responder"] == "kiel"
    logged = capsys.readouterr().out
    assert "live call handled" in logged and OUTBOUND["auth_token"] not in logged


def test_a_twilio_outage_fails_only_that_record_and_the_retry_redirects_once(calls):
    functions, apis, world = calls
    apis.fail_next("twilio", 503)
    batch = sqs_event([envelope(assigned())])
    result = functions.invoke("calls", batch)
    assert len(result["batchItemFailures"]) == 1 and apis.call_updates == []
    assert functions.invoke("calls", batch) == {"batchItemFailures": []}
    assert functions.invoke("calls", batch) == {"batchItemFailures": []}  # a redelivery
    assert len(apis.call_updates) == 1
    published = [e["detail"]["id"] for e in world.bus.events() if e["source"] == "switchboard.calls"]
    assert len(set(published)) == 1  # republished with the same id, never a second patch
