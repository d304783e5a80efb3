"""The ingest handler: HTTP API events in, JSON answers out, and what it tells
CloudWatch (EMF metrics, structured logs) -- never a credential or signature."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from infra import topology
from infra.local.lambdas import LocalFunctions
from infra.local.samples import build_sample
from switchboard_core import aws
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from tests.conftest import capture_function_log

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CONNECTION = "con_00000000000000aa"


@pytest.fixture
def invoke(aws_world):
    names = aws_world.names
    ConnectionStore(aws.resource("dynamodb").Table(names.table("connections"))).put(
        Connection(id=CONNECTION, provider="standard-webhooks", tenant="acme", created_at=datetime.now(UTC))
    )
    CredentialStore(aws.client("secretsmanager"), topology.secrets_prefix("test")).create(
        CONNECTION, {"secret": SECRET}, "acme"
    )
    functions = LocalFunctions(names.mapping(), "test")

    def call(provider: str, body: bytes, headers: dict[str, str], method: str = "POST", base64_body: bool = False):
        path = f"/webhooks/{provider}/{CONNECTION}"
        event = {
            "version": "2.0",
            "routeKey": "ANY /webhooks/{provider}/{connection}",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {
                "host": "hooks.example.com",
                "x-forwarded-proto": "https",
                **{k.lower(): v for k, v in headers.items()},
            },
            "pathParameters": {"provider": provider, "connection": CONNECTION},
            "requestContext": {
                "http": {"method": method, "path": path, "sourceIp": "1.2.3.4"},
                "domainName": "hooks.example.com",
                "requestId": "r1",
                "stage": "$default",
                "routeKey": "ANY /webhooks/{provider}/{connection}",
            },
            "body": base64.b64encode(body).decode() if base64_body else body.decode(),
            "isBase64Encoded": base64_body,
        }
        return functions.invoke("ingest", event)

    return call


def signed(url: str = f"https://hooks.example.com/webhooks/standard-webhooks/{CONNECTION}"):
    return build_sample("standard-webhooks", None, {"secret": SECRET}, url)


def emf_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


def metric_names(lines: list[dict]) -> set[str]:
    return {m["Name"] for line in lines for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def capture_ingest_log() -> None:
    capture_function_log("switchboard-ingest")


def test_accepted_then_duplicate_with_metrics_and_correlation_id(invoke, capsys):
    request = signed()
    invoke("nope", b"", {})  # first call imports the handler (and its logger)
    capture_ingest_log()
    capsys.readouterr()
    first = invoke("standard-webhooks", request.body, request.headers, base64_body=True)
    assert first["statusCode"] == 200
    second = invoke("standard-webhooks", request.body, request.headers)
    assert second["statusCode"] == 200
    out = capsys.readouterr().out
    names = metric_names(emf_lines(out))
    assert {"WebhooksReceived", "WebhooksAccepted", "EventsPublished", "DuplicateDeliveries"} <= names
    accepted = next(json.loads(line) for line in out.splitlines() if '"webhook accepted"' in line)
    assert accepted["correlation_id"] == accepted["event_ids"][0]
    assert all(line["provider"] == "standard-webhooks" for line in emf_lines(out) if "provider" in line)


def test_rejections_carry_their_reason_and_no_secret_is_logged(invoke, capsys):
    request = signed()
    invoke("nope", b"", {})  # first call imports the handler (and its logger)
    capture_ingest_log()
    capsys.readouterr()
    headers = {**request.headers, "webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
    answer = invoke("standard-webhooks", request.body, headers)
    assert answer["statusCode"] == 401
    assert json.loads(answer["body"])["error"]["code"] == "invalid_signature"
    out = capsys.readouterr().out
    rejected = [line for line in emf_lines(out) if "WebhooksRejected" in metric_names([line])]
    assert rejected and rejected[0]["reason"] == "invalid_signature"
    assert SECRET not in out and SECRET[6:] not in out
    assert request.headers["webhook-signature"].split(",")[1] not in out


def test_unknown_providers_share_one_metric_dimension(invoke, capsys):
    answer = invoke("made-up-provider-123", b"{}", {"content-type": "application/json"})
    assert answer["statusCode"] == 404
    lines = emf_lines(capsys.readouterr().out)
    assert {line.get("provider") for line in lines if "provider" in line} == {"unknown"}


def test_wrong_method_answers_405_with_allow(invoke):
    answer = invoke("standard-webhooks", b"", {}, method="DELETE")
    assert answer["statusCode"] == 405
    assert answer["headers"]["Allow"] == "GET, POST"


def test_missing_environment_is_a_500_naming_the_variable():
    from functions.ingest.handler import IngestSettings
    from switchboard_core.errors import HubError
    from switchboard_core.settings import load_settings

    with pytest.raises(HubError) as caught:
        load_settings(
            IngestSettings, {"TABLE_IDEMPOTENCY": "t", "BUCKET_RAW": "b", "EVENT_BUS_NAME": "e", "SECRETS_PREFIX": "p/"}
        )
    assert caught.value.status == 500 and "TABLE_CONNECTIONS" in caught.value.message
