"""Calling the admin function in-process with the HTTP API (payload 2.0) event API Gateway
sends, body and query exactly as given: what the hostile-input and property tests need."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from infra.local.lambdas import LocalFunctions

OPERATOR = {"key_id": "k0", "tenant": "*", "name": "operator", "role": "admin"}


def admin_event(
    method: str,
    path: str,
    *,
    body: str | bytes | None = None,
    query: dict[str, str] | None = None,
    principal: dict[str, Any] | None = None,
    content_type: str = "application/json",
) -> dict[str, Any]:
    """`body` as text is sent as text; as bytes it is sent base64-encoded, as API Gateway
    does with a body it cannot pass as UTF-8 text."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "ANY /admin/{proxy+}",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": {"host": "api.example.com", "x-forwarded-proto": "https", "content-type": content_type},
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "1.2.3.4"},
            "domainName": "api.example.com",
            "requestId": "r",
            "routeKey": "ANY /admin/{proxy+}",
            "stage": "$default",
            "authorizer": {"lambda": principal or {}},
        },
        "isBase64Encoded": isinstance(body, bytes),
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if isinstance(body, bytes):
        event["body"] = base64.b64encode(body).decode()
    elif body is not None:
        event["body"] = body
    return event


def moto_test_event_pattern(self: Any) -> Any:
    """EventBridge's TestEventPattern on moto's own pattern parser and matcher (moto leaves it
    unimplemented): an invalid pattern is InvalidEventPatternException naming the reason."""
    from moto.events.models import EventPattern, EventPatternParser

    raw = self._get_param("EventPattern")
    parsed = EventPatternParser(raw).parse()
    event = json.loads(self._get_param("Event"))
    return json.dumps({"Result": EventPattern(raw, parsed).matches_event(event)}), self.response_headers


@pytest.fixture
def event_pattern_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.events.responses import EventsHandler

    monkeypatch.setattr(EventsHandler, "test_event_pattern", moto_test_event_pattern)


def campaign_environment(names: Any) -> dict[str, str]:
    """The variables the admin function's campaign routes read (CAMPAIGN_QUEUE_URL, _ARN,
    CAMPAIGN_DLQ_ARN, CAMPAIGN_RULE_PREFIX, TABLE_CAMPAIGN_RUNS), named as the topology names them,
    with the campaigns queue, its DLQ and the runs table made in moto when the topology's resources
    do not include them yet."""
    from botocore.exceptions import ClientError

    from switchboard_core import aws

    sqs = aws.client("sqs")
    arns = {}
    for queue in (names.queue("campaigns"), names.dead_letter_queue("campaigns")):
        try:
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        except ClientError:
            url = sqs.create_queue(QueueName=queue)["QueueUrl"]
        arns[queue] = (
            url,
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"],
        )
    runs_table = names.table("campaign_runs")
    if runs_table not in aws.client("dynamodb").list_tables()["TableNames"]:
        from tests.unit.campaigns.runs_table import create_runs_table

        create_runs_table(runs_table)
    url, arn = arns[names.queue("campaigns")]
    return {
        "TABLE_CAMPAIGN_RUNS": runs_table,
        "CAMPAIGN_QUEUE_URL": url,
        "CAMPAIGN_QUEUE_ARN": arn,
        "CAMPAIGN_DLQ_ARN": arns[names.dead_letter_queue("campaigns")][1],
        "CAMPAIGN_RULE_PREFIX": names.rule("cmp-"),
    }


def admin_functions(aws_world: Any) -> LocalFunctions:
    """The admin function as the topology configures it, its campaign variables included."""
    return LocalFunctions(aws_world.names.mapping(), "test", extra_env=campaign_environment(aws_world.names))


@pytest.fixture
def admin(aws_world, event_pattern_tests):
    """invoke(event) -> (status, headers, JSON body or None) through the admin handler."""
    functions = admin_functions(aws_world)

    def invoke(event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        result = functions.invoke("admin", event)
        body = result.get("body")
        return result["statusCode"], result.get("headers") or {}, json.loads(body) if body else None

    return invoke
