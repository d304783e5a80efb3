"""Recent canonical events: /admin/events, and one in full: /admin/events/{event_id}."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.admin import logic
from functions.admin.dependencies import cursors, dependencies, detail_deps, principal
from functions.admin.models import EventDetail, EventsPage
from functions.admin.routes.params import Cursor, Limit, TenantQuery, answers, path_id
from switchboard_core.event_log import EventQuery

router = Router()
Filter = Annotated[str | None, Query(min_length=1, max_length=100)]


@router.get(
    "/admin/events",
    tags=["events"],
    responses=answers(404),
    summary="Recent events, newest first; the answer's filters say what was applied",
)
def events(
    tenant: TenantQuery = None,
    connection: Annotated[
        str | None, Query(description="a connection id: only its events", min_length=1, max_length=64)
    ] = None,
    provider: Filter = None,
    type: Filter = None,
    since: Annotated[datetime | None, Query(description="only events received at or after (ISO 8601)")] = None,
    limit: Limit = 25,
    cursor: Cursor = None,
) -> EventsPage:
    query = EventQuery(tenant=tenant, connection=connection, provider=provider, type=type, since=since, limit=limit)
    return EventsPage.model_validate(
        logic.list_events(principal(router.current_event), query, cursor, dependencies(), cursors())
    )


@router.get(
    "/admin/events/<event_id>",
    tags=["events"],
    responses=answers(404),
    summary="One event: its canonical body, its raw request (credentials redacted) and what consumed it",
)
def event(event_id: Annotated[str, path_id("an event id (from GET /admin/events)")]) -> EventDetail:
    from functions.admin import event_detail

    return EventDetail.model_validate(
        event_detail.event_detail(principal(router.current_event), event_id, detail_deps())
    )
