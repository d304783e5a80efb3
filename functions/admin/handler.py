"""Admin API handler (Powertools Event Handler): routes, principal, JSON errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.admin import logic, routing_config
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.contacts import ContactStore
from switchboard_core.routing.conversations import ConversationStore
from switchboard_core import aws
from switchboard_core.connections import ConnectionStore, CredentialStore
from switchboard_core.errors import HubError
from switchboard_core.event_log import EventLogStore
from switchboard_core.http import public_base_url
from switchboard_core.principals import Principal
from switchboard_core.settings import load_settings

logger = Logger()
tracer = Tracer()
app = APIGatewayHttpResolver()


class AdminSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    connections_table: str = Field(alias="TABLE_CONNECTIONS")
    event_log_table: str = Field(alias="TABLE_EVENT_LOG")
    routing_table: str = Field(alias="TABLE_ROUTING")
    contacts_table: str = Field(alias="TABLE_CONTACTS")
    conversations_table: str = Field(alias="TABLE_CONVERSATIONS")
    secrets_prefix: str = Field(alias="SECRETS_PREFIX")
    outbound_secrets_prefix: str = Field(alias="OUTBOUND_SECRETS_PREFIX")
    public_base_url: str | None = Field(default=None, alias="PUBLIC_BASE_URL")


@cache
def settings() -> AdminSettings:
    return load_settings(AdminSettings)


@cache
def routing_store() -> RoutingConfigStore:
    return RoutingConfigStore(aws.resource("dynamodb").Table(settings().routing_table))


@cache
def contact_store() -> ContactStore:
    return ContactStore(aws.resource("dynamodb").Table(settings().contacts_table))


@cache
def conversation_store() -> ConversationStore:
    # The inactivity window only matters when threading, which the admin API never does.
    return ConversationStore(aws.resource("dynamodb").Table(settings().conversations_table), timedelta(hours=4))


@cache
def dependencies() -> logic.AdminDeps:
    config = settings()
    dynamodb = aws.resource("dynamodb")
    return logic.AdminDeps(
        connections=ConnectionStore(dynamodb.Table(config.connections_table)),
        credentials=CredentialStore(aws.client("secretsmanager"), config.secrets_prefix),
        event_log=EventLogStore(dynamodb.Table(config.event_log_table), ttl=timedelta(days=30)),
        outbound_credentials=CredentialStore(aws.client("secretsmanager"), config.outbound_secrets_prefix),
    )


def principal() -> Principal:
    """The caller, as the Lambda authorizer described it."""
    context = app.current_event.request_context.authorizer.get_lambda or {}
    try:
        return Principal.model_validate(context)
    except ValidationError:
        raise HubError("request was not authorized", status=401, code="unauthorized") from None


def base_url() -> str:
    return public_base_url(app.current_event.raw_event, settings().public_base_url)


def body() -> Any:
    raw = app.current_event.decoded_body
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise HubError(f"body is not valid JSON: {exc}", status=400, code="malformed_request") from None


def now() -> datetime:
    return datetime.now(UTC)


@app.get("/admin/whoami")
def whoami() -> dict[str, Any]:
    return principal().as_context()


@app.get("/admin/providers")
def providers() -> dict[str, Any]:
    principal()
    return {"providers": logic.list_providers()}


@app.get("/admin/connections")
def list_connections() -> dict[str, Any]:
    tenant = app.current_event.get_query_string_value("tenant")
    return {"connections": logic.list_connections(principal(), dependencies(), base_url(), tenant)}


@app.post("/admin/connections")
def create_connection() -> Response:
    request = logic.parse_body(logic.CreateConnection, body())
    created = logic.create_connection(principal(), request, dependencies(), now(), base_url())
    logger.info("connection created", extra={"connection": created["id"], "provider": created["provider"]})
    return Response(status_code=201, content_type="application/json", body=created)


@app.get("/admin/connections/<connection_id>")
def get_connection(connection_id: str) -> dict[str, Any]:
    return logic.visible_connection(principal(), connection_id, dependencies()).public(base_url())


@app.delete("/admin/connections/<connection_id>")
def delete_connection(connection_id: str) -> Response:
    logic.delete_connection(principal(), connection_id, dependencies())
    logger.info("connection deleted", extra={"connection": connection_id})
    return Response(status_code=204, content_type="application/json", body="")


@app.post("/admin/connections/<connection_id>/rotate")
def rotate(connection_id: str) -> dict[str, Any]:
    request = logic.parse_body(logic.RotateCredentials, body())
    rotated = logic.rotate_credentials(principal(), connection_id, request, dependencies(), now(), base_url())
    logger.info("credentials rotated", extra={"connection": connection_id})
    return rotated


@app.put("/admin/connections/<connection_id>/outbound")
def put_outbound(connection_id: str) -> dict[str, Any]:
    request = logic.parse_body(logic.OutboundCredentials, body())
    updated = logic.put_outbound_credentials(principal(), connection_id, request, dependencies(), now(), base_url())
    logger.info("outbound credentials stored", extra={"connection": connection_id})
    return updated


@app.delete("/admin/connections/<connection_id>/outbound")
def delete_outbound(connection_id: str) -> Response:
    logic.delete_outbound_credentials(principal(), connection_id, dependencies())
    logger.info("outbound credentials removed", extra={"connection": connection_id})
    return Response(status_code=204, content_type="application/json", body="")


@app.get("/admin/events")
def events() -> dict[str, Any]:
    params = app.current_event.query_string_parameters or {}
    return logic.list_events(principal(), dict(params), dependencies())


def routing_tenant() -> str:
    return routing_config.tenant_for(principal(), app.current_event.get_query_string_value("tenant"))


@app.get("/admin/routing/rules")
def get_rules() -> dict[str, Any]:
    return routing_config.get_rules(principal(), routing_tenant(), routing_store())


@app.put("/admin/routing/rules")
def put_rules() -> dict[str, Any]:
    saved = routing_config.put_rules(principal(), routing_tenant(), body(), routing_store(), now())
    logger.info("rule set saved", extra={"version": saved["version"]})
    return saved


@app.post("/admin/routing/simulate")
def simulate() -> dict[str, Any]:
    return routing_config.simulate_rules(principal(), routing_tenant(), body(), routing_store(), dependencies())


@app.get("/admin/routing/taxonomy")
def get_taxonomy() -> dict[str, Any]:
    return routing_config.get_taxonomy(principal(), routing_tenant(), routing_store())


@app.put("/admin/routing/taxonomy")
def put_taxonomy() -> dict[str, Any]:
    return routing_config.put_taxonomy(principal(), routing_tenant(), body(), routing_store(), now())


@app.get("/admin/teams")
def list_teams() -> dict[str, Any]:
    return routing_config.list_teams(principal(), routing_tenant(), routing_store())


@app.put("/admin/teams/<name>")
def put_team(name: str) -> dict[str, Any]:
    return routing_config.put_team(principal(), routing_tenant(), name, body(), routing_store())


@app.delete("/admin/teams/<name>")
def delete_team(name: str) -> Response:
    routing_config.delete_team(principal(), routing_tenant(), name, routing_store())
    return Response(status_code=204, content_type="application/json", body="")


@app.get("/admin/responders")
def list_responders() -> dict[str, Any]:
    return routing_config.list_responders(principal(), routing_tenant(), routing_store())


@app.put("/admin/responders/<responder_id>")
def put_responder(responder_id: str) -> dict[str, Any]:
    return routing_config.put_responder(principal(), routing_tenant(), responder_id, body(), routing_store())


@app.delete("/admin/responders/<responder_id>")
def delete_responder(responder_id: str) -> Response:
    routing_config.delete_responder(principal(), routing_tenant(), responder_id, routing_store())
    return Response(status_code=204, content_type="application/json", body="")


@app.get("/admin/contacts/<contact_id>")
def get_contact(contact_id: str) -> dict[str, Any]:
    return routing_config.contact_view(routing_config.get_contact(principal(), contact_id, contact_store()))


@app.get("/admin/contacts/<contact_id>/timeline")
def contact_timeline(contact_id: str) -> dict[str, Any]:
    params = dict(app.current_event.query_string_parameters or {})
    return routing_config.timeline(principal(), contact_id, params, contact_store())


@app.get("/admin/conversations")
def list_conversations() -> dict[str, Any]:
    params = dict(app.current_event.query_string_parameters or {})
    return routing_config.list_conversations(principal(), routing_tenant(), params, conversation_store())


@app.post("/admin/conversations/<conversation_id>/status")
def set_conversation_status(conversation_id: str) -> dict[str, Any]:
    return routing_config.set_conversation_status(principal(), conversation_id, body(), conversation_store())


@app.post("/admin/contacts/merges/<merge_id>/undo")
def undo_merge(merge_id: str) -> dict[str, Any]:
    return routing_config.undo_merge(principal(), merge_id, contact_store(), now())


@app.get("/admin/conversations/<conversation_id>")
def get_conversation(conversation_id: str) -> dict[str, Any]:
    return routing_config.get_conversation(principal(), conversation_id, conversation_store())


@app.exception_handler(HubError)
def hub_error(error: HubError) -> Response:
    if error.status >= 500:
        logger.error("admin request failed", extra={"reason": error.code, "detail": error.message})
    return Response(status_code=error.status, content_type="application/json", body=error.body())


@app.not_found
def not_found(_: NotFoundError) -> Response:
    path = app.current_event.path
    return Response(status_code=404, content_type="application/json",
                    body=HubError(f"no admin route {app.current_event.http_method} {path}", status=404,
                                  code="not_found").body())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
