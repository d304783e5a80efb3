"""Answering customers: /admin/conversations/{id}/messages[/{message_id}/retry]."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from functions.admin import answers
from functions.admin.dependencies import answer_deps, now, principal
from functions.admin.models import AnswerQueued, ConversationMessages
from functions.admin.routes.params import answers as documented
from functions.admin.routes.params import path_id

router = Router()
logger = Logger(child=True)
TAGS = ["conversations"]
ConversationId = Annotated[str, path_id("a conversation id (cv_...)")]
MessageId = Annotated[str, path_id("a message id (msg_...)")]


@router.post(
    "/admin/conversations/<conversation_id>/messages",
    status_code=202,
    tags=TAGS,
    responses=documented(
        404,
        409,
        415,
        ok=202,
        description="queued: message.sent is on the bus, and the answers function sends it",
    ),
    summary="Answer the customer on their own channel (409 names a window, an opt-out or a missing credential)",
)
def post_message(conversation_id: ConversationId, request: Annotated[answers.PostMessage, Body()]) -> AnswerQueued:
    queued = answers.post_message(principal(router.current_event), conversation_id, request, answer_deps(), now())
    logger.info("answer queued", extra={"conversation": conversation_id, "message_id": queued["message_id"]})
    return AnswerQueued.model_validate(queued)


@router.get(
    "/admin/conversations/<conversation_id>/messages",
    tags=TAGS,
    responses=documented(404),
    summary="Both sides of the conversation in order: the customer's messages and the answers with their state",
)
def list_messages(conversation_id: ConversationId) -> ConversationMessages:
    return ConversationMessages.model_validate(
        answers.list_messages(principal(router.current_event), conversation_id, answer_deps())
    )


@router.post(
    "/admin/conversations/<conversation_id>/messages/<message_id>/retry",
    status_code=202,
    tags=TAGS,
    responses=documented(404, 409, ok=202, description="queued again as the answer's next attempt"),
    summary="Send a failed answer again",
)
def retry_message(conversation_id: ConversationId, message_id: MessageId) -> AnswerQueued:
    queued = answers.retry_message(principal(router.current_event), conversation_id, message_id, answer_deps(), now())
    logger.info("answer retry queued", extra={"conversation": conversation_id, "message_id": message_id})
    return AnswerQueued.model_validate(queued)
