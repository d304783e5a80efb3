"""Routing configuration: /admin/routing/{rules,taxonomy,simulate}, /admin/teams, /admin/responders."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from functions.admin import routing_config
from functions.admin.dependencies import dependencies, local_endpoints, now, principal, routing_store
from functions.admin.models import (
    ResponderList,
    ResponderProfile,
    RulesView,
    SavedRules,
    SavedTaxonomy,
    SimulationReport,
    TaxonomyView,
    TeamList,
    TeamProfile,
)
from functions.admin.routes.params import NAME_PATTERN, TenantQuery, answers
from switchboard_core.principals import Principal
from switchboard_core.routing.assignment import Responder, Team
from switchboard_core.routing.sensing import Taxonomy

router = Router()
logger = Logger(child=True)
TAGS = ["routing"]
TeamName = Annotated[str, Path(description="the team's name", min_length=1, max_length=64, pattern=NAME_PATTERN)]
ResponderId = Annotated[str, Path(description="the responder's id", min_length=1, max_length=64, pattern=NAME_PATTERN)]


def caller_and_tenant(tenant: str | None) -> tuple[Principal, str]:
    caller = principal(router.current_event)
    return caller, routing_config.tenant_for(caller, tenant)


@router.get("/admin/routing/rules", tags=TAGS, responses=answers(404), summary="The rule set in force")
def get_rules(tenant: TenantQuery = None) -> RulesView:
    return RulesView.model_validate(routing_config.get_rules(*caller_and_tenant(tenant), routing_store()))


@router.put(
    "/admin/routing/rules",
    tags=TAGS,
    responses=answers(409, 413, 415),
    summary="Replace the rule set (validated; refused if expected_version is not the one in force)",
)
def put_rules(request: Annotated[routing_config.PutRules, Body()], tenant: TenantQuery = None) -> SavedRules:
    saved = routing_config.put_rules(*caller_and_tenant(tenant), request, routing_store(), now())
    logger.info("rule set saved", extra={"version": saved["version"]})
    return SavedRules.model_validate(saved)


@router.post(
    "/admin/routing/simulate",
    tags=TAGS,
    responses=answers(415),
    summary="What a proposed rule set would have done with recent events; changes nothing",
)
def simulate(request: Annotated[routing_config.Simulate, Body()], tenant: TenantQuery = None) -> SimulationReport:
    return SimulationReport.model_validate(
        routing_config.simulate_rules(*caller_and_tenant(tenant), request, routing_store(), dependencies())
    )


@router.get("/admin/routing/taxonomy", tags=TAGS, responses=answers(), summary="Topics and entity dictionaries")
def get_taxonomy(tenant: TenantQuery = None) -> TaxonomyView:
    return TaxonomyView.model_validate(routing_config.get_taxonomy(*caller_and_tenant(tenant), routing_store()))


@router.put("/admin/routing/taxonomy", tags=TAGS, responses=answers(413, 415), summary="Replace the taxonomy")
def put_taxonomy(taxonomy: Annotated[Taxonomy, Body()], tenant: TenantQuery = None) -> SavedTaxonomy:
    return SavedTaxonomy.model_validate(
        routing_config.put_taxonomy(*caller_and_tenant(tenant), taxonomy, routing_store(), now())
    )


@router.get("/admin/teams", tags=TAGS, responses=answers(), summary="Teams (queues) with their members")
def list_teams(tenant: TenantQuery = None) -> TeamList:
    return TeamList.model_validate(routing_config.list_teams(*caller_and_tenant(tenant), routing_store()))


@router.put("/admin/teams/<name>", tags=TAGS, responses=answers(413, 415), summary="Create or replace a team")
def put_team(
    name: TeamName,
    profile: Annotated[TeamProfile, Body()],  # type: ignore[valid-type]
    tenant: TenantQuery = None,
) -> Team:
    caller, chosen = caller_and_tenant(tenant)
    return routing_config.put_team(
        caller, chosen, name, profile, routing_store(), dependencies().connections, local_endpoints()
    )


@router.delete(
    "/admin/teams/<name>",
    status_code=204,
    tags=TAGS,
    responses=answers(404, ok=204, description="removed"),
    summary="Remove a team",
)
def delete_team(name: TeamName, tenant: TenantQuery = None) -> Response[None]:
    caller, chosen = caller_and_tenant(tenant)
    routing_config.delete_team(caller, chosen, name, routing_store())
    return Response(status_code=204, body=None)


@router.get("/admin/responders", tags=TAGS, responses=answers(), summary="Responders with their current load")
def list_responders(tenant: TenantQuery = None) -> ResponderList:
    return ResponderList.model_validate(routing_config.list_responders(*caller_and_tenant(tenant), routing_store()))


@router.put(
    "/admin/responders/<responder_id>",
    tags=TAGS,
    responses=answers(413, 415),
    summary="Create or replace a responder (its load is kept)",
)
def put_responder(
    responder_id: ResponderId,
    profile: Annotated[ResponderProfile, Body()],  # type: ignore[valid-type]
    tenant: TenantQuery = None,
) -> Responder:
    caller, chosen = caller_and_tenant(tenant)
    return routing_config.put_responder(
        caller, chosen, responder_id, profile, routing_store(), dependencies().connections, local_endpoints()
    )


@router.delete(
    "/admin/responders/<responder_id>",
    status_code=204,
    tags=TAGS,
    responses=answers(404, ok=204, description="removed"),
    summary="Remove a responder",
)
def delete_responder(responder_id: ResponderId, tenant: TenantQuery = None) -> Response[None]:
    caller, chosen = caller_and_tenant(tenant)
    routing_config.delete_responder(caller, chosen, responder_id, routing_store())
    return Response(status_code=204, body=None)
