"""The HTTP API: routes from topology.ROUTES, the Lambda authorizer on authorized routes only,
throttling and JSON access logs on the default stage."""

from __future__ import annotations

import json

import pytest

from infra import topology
from tests.infra.conftest import Synthesised, referenced_ids

pytestmark = pytest.mark.infra


def _routes(synth: Synthesised) -> dict[str, dict]:
    return {r["Properties"]["RouteKey"]: r["Properties"] for r in synth.resources("AWS::ApiGatewayV2::Route").values()}


def _integration_function(synth: Synthesised, route: dict) -> str:
    (integration_id,) = referenced_ids(route["Target"])  # "integrations/<id>"
    integration = synth.json["Resources"][integration_id]["Properties"]
    (function_id,) = referenced_ids(integration["IntegrationUri"])
    return function_id


def test_routes_match_topology(synth: Synthesised) -> None:
    assert set(_routes(synth)) == {f"{r.method} {r.path}" for r in topology.ROUTES}


@pytest.mark.parametrize("route", topology.ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_route_targets_its_function(synth: Synthesised, route: topology.Route) -> None:
    props = _routes(synth)[f"{route.method} {route.path}"]
    function_id = synth.logical_id(synth.stack.functions.functions[route.function])
    assert _integration_function(synth, props) == function_id


@pytest.mark.parametrize("route", topology.ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_only_authorized_routes_use_the_lambda_authorizer(synth: Synthesised, route: topology.Route) -> None:
    props = _routes(synth)[f"{route.method} {route.path}"]
    if route.authorized:
        (authorizer_id,) = synth.resources("AWS::ApiGatewayV2::Authorizer")
        assert props["AuthorizationType"] == "CUSTOM"
        assert props["AuthorizerId"] == {"Ref": authorizer_id}
    else:
        assert props.get("AuthorizationType", "NONE") == "NONE"
        assert "AuthorizerId" not in props


def test_admin_route_is_authorized() -> None:
    assert [r for r in topology.ROUTES if r.path.startswith("/admin") and not r.authorized] == []
    assert [r for r in topology.ROUTES if r.path.startswith("/webhooks") and r.authorized] == []


def test_authorizer_is_simple_cached_briefly_and_backed_by_the_authorizer_function(synth: Synthesised) -> None:
    (props,) = [a["Properties"] for a in synth.resources("AWS::ApiGatewayV2::Authorizer").values()]
    assert props["AuthorizerType"] == "REQUEST"
    assert props["AuthorizerPayloadFormatVersion"] == "2.0"
    assert props["EnableSimpleResponses"] is True
    assert props["IdentitySource"] == ["$request.header.Authorization"]
    assert 0 < props["AuthorizerResultTtlInSeconds"] <= 30
    authorizer_fn = synth.logical_id(synth.stack.functions.functions[topology.AUTHORIZER_FUNCTION])
    assert authorizer_fn in referenced_ids(props["AuthorizerUri"])


def test_default_stage_throttles_and_writes_json_access_logs(synth: Synthesised) -> None:
    (stage,) = [s["Properties"] for s in synth.resources("AWS::ApiGatewayV2::Stage").values()]
    assert stage["StageName"] == "$default"
    assert stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 200, "ThrottlingRateLimit": 100}
    log_group = synth.logical_id(synth.stack.api.access_logs)
    assert stage["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": [log_group, "Arn"]}
    fields = json.loads(stage["AccessLogSettings"]["Format"])
    for key in ("requestId", "ip", "routeKey", "status", "latency", "integrationError"):
        assert key in fields
    assert fields["requestId"] == "$context.requestId"
    assert synth.json["Resources"][log_group]["Properties"]["RetentionInDays"] == 30


def test_throttles_come_from_context(synth_qa_destroy: Synthesised) -> None:
    (stage,) = [s["Properties"] for s in synth_qa_destroy.resources("AWS::ApiGatewayV2::Stage").values()]
    assert stage["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 75, "ThrottlingRateLimit": 50}


def test_api_can_invoke_route_functions(synth: Synthesised) -> None:
    permissions = [p["Properties"] for p in synth.resources("AWS::Lambda::Permission").values()]
    for name in {r.function for r in topology.ROUTES} | {topology.AUTHORIZER_FUNCTION}:
        function_id = synth.logical_id(synth.stack.functions.functions[name])
        assert any(
            p["Principal"] == "apigateway.amazonaws.com" and function_id in referenced_ids(p["FunctionName"])
            for p in permissions
        ), name
