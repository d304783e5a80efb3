"""Providers and connections: /admin/providers, /admin/connections[/{id}[/rotate|/outbound|/stats]]."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from functions.admin import logic
from functions.admin.dependencies import base_url, connection_stats_store, dependencies, now, principal
from functions.admin.models import (
    ConnectionList,
    ConnectionStatsView,
    ConnectionView,
    ProviderList,
    RotatedConnection,
)
from functions.admin.routes.params import TenantQuery, answers, path_id

router = Router()
logger = Logger(child=True)
TAGS = ["connections"]
ConnectionId = Annotated[str, path_id("a connection id (con_...)")]


@router.get(
    "/admin/providers",
    tags=TAGS,
    responses=answers(),
    summary="Every provider, its credential fields and handshake support",
)
def providers() -> ProviderList:
    principal(router.current_event)
    return ProviderList.model_validate({"providers": logic.list_providers()})


@router.get("/admin/connections", tags=TAGS, responses=answers(), summary="A tenant's connections")
def list_connections(tenant: TenantQuery = None) -> ConnectionList:
    event = router.current_event
    return ConnectionList.model_validate(
        {"connections": logic.list_connections(principal(event), dependencies(), base_url(event), tenant)}
    )


@router.post(
    "/admin/connections",
    status_code=201,
    tags=TAGS,
    responses=answers(415, ok=201, description="created"),
    summary="Create a connection; answers its id and webhook_url",
)
def create_connection(request: Annotated[logic.CreateConnection, Body()]) -> ConnectionView:
    event = router.current_event
    created = logic.create_connection(principal(event), request, dependencies(), now(), base_url(event))
    logger.info("connection created", extra={"connection": created["id"], "provider": created["provider"]})
    return ConnectionView.model_validate(created)


@router.get("/admin/connections/<connection_id>", tags=TAGS, responses=answers(404), summary="One connection")
def get_connection(connection_id: ConnectionId) -> ConnectionView:
    event = router.current_event
    connection = logic.visible_connection(principal(event), connection_id, dependencies())
    return ConnectionView.model_validate(connection.public(base_url(event)))


@router.delete(
    "/admin/connections/<connection_id>",
    status_code=204,
    tags=TAGS,
    responses=answers(404, ok=204, description="removed"),
    summary="Remove a connection and its secrets",
)
def delete_connection(connection_id: ConnectionId) -> Response[None]:
    logic.delete_connection(principal(router.current_event), connection_id, dependencies())
    logger.info("connection deleted", extra={"connection": connection_id})
    return Response(status_code=204, body=None)


@router.post(
    "/admin/connections/<connection_id>/rotate",
    tags=TAGS,
    responses=answers(404, 415),
    summary="Rotate credentials; the old ones verify for grace_seconds",
)
def rotate(connection_id: ConnectionId, request: Annotated[logic.RotateCredentials, Body()]) -> RotatedConnection:
    event = router.current_event
    rotated = logic.rotate_credentials(principal(event), connection_id, request, dependencies(), now(), base_url(event))
    logger.info("credentials rotated", extra={"connection": connection_id})
    return RotatedConnection.model_validate(rotated)


@router.put(
    "/admin/connections/<connection_id>/outbound",
    tags=TAGS,
    responses=answers(404, 415),
    summary="Store the send-API credentials auto-replies go out with",
)
def put_outbound(connection_id: ConnectionId, request: Annotated[logic.OutboundCredentials, Body()]) -> ConnectionView:
    event = router.current_event
    updated = logic.put_outbound_credentials(
        principal(event), connection_id, request, dependencies(), now(), base_url(event)
    )
    logger.info("outbound credentials stored", extra={"connection": connection_id})
    return ConnectionView.model_validate(updated)


@router.delete(
    "/admin/connections/<connection_id>/outbound",
    status_code=204,
    tags=TAGS,
    responses=answers(404, ok=204, description="removed"),
    summary="Remove the outbound credentials (auto-replies stop)",
)
def delete_outbound(connection_id: ConnectionId) -> Response[None]:
    logic.delete_outbound_credentials(principal(router.current_event), connection_id, dependencies())
    logger.info("outbound credentials removed", extra={"connection": connection_id})
    return Response(status_code=204, body=None)


@router.get(
    "/admin/connections/<connection_id>/stats",
    tags=TAGS,
    responses=answers(404),
    summary="Daily counts (UTC): accepted events, duplicates, refusals by reason; and the last receive time",
)
def stats(
    connection_id: ConnectionId,
    days: Annotated[int, Query(description="how many days up to today, today included", ge=1, le=90)] = 14,
) -> ConnectionStatsView:
    counted = logic.connection_stats(
        principal(router.current_event), connection_id, days, dependencies(), connection_stats_store(), now()
    )
    return ConnectionStatsView.model_validate(counted)
