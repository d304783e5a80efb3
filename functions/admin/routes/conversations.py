"""Conversations: /admin/conversations[/{id}[/status]]."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from functions.admin import routing_config
from functions.admin.dependencies import conversation_store, cursors, principal
from functions.admin.models import ConversationsPage
from functions.admin.routes.params import Cursor, Limit, TenantQuery, answers, path_id
from switchboard_core.routing.conversations import Conversation, Status

router = Router()
TAGS = ["conversations"]
ConversationId = Annotated[str, path_id("a conversation id (cv_...)")]
Filter = Annotated[str | None, Query(min_length=1, max_length=100)]


@router.get(
    "/admin/conversations",
    tags=TAGS,
    responses=answers(),
    summary="Conversations, most recently active first, filtered",
)
def list_conversations(
    tenant: TenantQuery = None,
    status: Annotated[Status | None, Query()] = None,
    assignee: Filter = None,
    topic: Filter = None,
    limit: Limit = 25,
    cursor: Cursor = None,
) -> ConversationsPage:
    caller = principal(router.current_event)
    chosen = routing_config.tenant_for(caller, tenant)
    filters = {"status": status.value if status else None, "assignee": assignee, "topic": topic}
    return ConversationsPage.model_validate(
        routing_config.list_conversations(caller, chosen, filters, limit, cursor, conversation_store(), cursors())
    )


@router.get("/admin/conversations/<conversation_id>", tags=TAGS, responses=answers(404), summary="One conversation")
def get_conversation(conversation_id: ConversationId) -> Conversation:
    return routing_config.get_conversation(principal(router.current_event), conversation_id, conversation_store())


@router.post(
    "/admin/conversations/<conversation_id>/status",
    tags=TAGS,
    responses=answers(404, 415),
    summary="Move a conversation along (open, assigned, waiting, resolved)",
)
def set_conversation_status(
    conversation_id: ConversationId, request: Annotated[routing_config.SetStatus, Body()]
) -> Conversation:
    return routing_config.set_conversation_status(
        principal(router.current_event), conversation_id, request, conversation_store()
    )
