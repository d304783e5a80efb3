"""The HTTP API: routes from topology.ROUTES, a Lambda authorizer for authorized routes,
a throttled default stage and JSON access logs."""

from __future__ import annotations

import json

import jsii
from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw_v1
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_logs as logs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra import topology
from infra.aws.components.functions import Functions, construct_id
from infra.aws.config import StageConfig

# One JSON object per request.
# https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging-variables.html
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "path": "$context.path",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "latency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integrationErrorMessage",
    "errorMessage": "$context.error.message",
    "authorizerError": "$context.authorizer.error",
    "userAgent": "$context.identity.userAgent",
}

# Authorizer decisions are cached per Authorization header for at most this long, so a
# revoked API key stops working within 30 s.
AUTHORIZER_CACHE_TTL = Duration.seconds(30)


@jsii.implements(apigw.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(self, log_group: logs.ILogGroup, fields: dict[str, str]) -> None:
        self._destination = apigw.LogGroupLogDestination(log_group)
        self._format = apigw_v1.AccessLogFormat.custom(json.dumps(fields, separators=(",", ":")))

    @property
    def destination(self) -> apigw.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw_v1.AccessLogFormat:
        return self._format


class HttpApi(Construct):
    def __init__(self, scope: Construct, construct_id_: str, *, config: StageConfig, functions: Functions) -> None:
        super().__init__(scope, construct_id_)

        self.api = apigw.HttpApi(
            self,
            "HttpApi",
            api_name=config.prefix,
            description=f"Switchboard webhooks and admin API ({config.stage})",
            create_default_stage=False,
        )
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        self.stage = apigw.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=config.throttle_rate, burst_limit=config.throttle_burst),
            access_log_settings=_AccessLogSettings(self.access_logs, ACCESS_LOG_FIELDS),
        )

        self.authorizer = authorizers.HttpLambdaAuthorizer(
            "AdminAuthorizer",
            functions.functions[topology.AUTHORIZER_FUNCTION],
            authorizer_name=f"{config.prefix}-admin",
            response_types=[authorizers.HttpLambdaResponseType.SIMPLE],
            identity_source=["$request.header.Authorization"],
            results_cache_ttl=AUTHORIZER_CACHE_TTL,
        )

        integrations_by_function: dict[str, integrations.HttpLambdaIntegration] = {}
        self.routes: dict[tuple[str, str], apigw.HttpRoute] = {}
        for route in topology.ROUTES:
            integration = integrations_by_function.get(route.function)
            if integration is None:
                integration = integrations.HttpLambdaIntegration(
                    f"{construct_id(route.function)}Integration", functions.functions[route.function]
                )
                integrations_by_function[route.function] = integration
            (http_route,) = self.api.add_routes(
                path=route.path,
                methods=[getattr(apigw.HttpMethod, route.method)],
                integration=integration,
                authorizer=self.authorizer if route.authorized else None,
            )
            self.routes[(route.method, route.path)] = http_route
            if not route.authorized:
                NagSuppressions.add_resource_suppressions(
                    http_route,
                    [
                        NagPackSuppression(
                            id="AwsSolutions-APIG4",
                            reason=f"{route.method} {route.path} needs no authorizer: {route.public_because}",
                        )
                    ],
                )

    @property
    def url(self) -> str:
        return self.api.api_endpoint
