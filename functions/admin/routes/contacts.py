"""Contacts: /admin/contacts/{id}, its timeline, and undoing a merge."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router

from functions.admin import routing_config
from functions.admin.dependencies import contact_store, cursors, now, principal
from functions.admin.models import Timeline
from functions.admin.routes.params import Cursor, Limit, answers, path_id
from switchboard_core.routing.contacts import ContactRecord

router = Router()
TAGS = ["contacts"]


@router.get(
    "/admin/contacts/<contact_id>",
    tags=TAGS,
    responses=answers(404),
    summary="A contact: identities, attributes, consent, merges",
)
def get_contact(contact_id: Annotated[str, path_id("a contact id (ct_...)")]) -> ContactRecord:
    return routing_config.get_contact(principal(router.current_event), contact_id, contact_store())


@router.get(
    "/admin/contacts/<contact_id>/timeline",
    tags=TAGS,
    responses=answers(404),
    summary="Every event of this person across channels, newest first",
)
def contact_timeline(
    contact_id: Annotated[str, path_id("a contact id (ct_...)")], limit: Limit = 25, cursor: Cursor = None
) -> Timeline:
    return Timeline.model_validate(
        routing_config.timeline(principal(router.current_event), contact_id, limit, cursor, contact_store(), cursors())
    )


@router.post(
    "/admin/contacts/merges/<merge_id>/undo",
    tags=TAGS,
    responses=answers(404, 409),
    summary="Split a wrongly merged contact out again; answers the restored contact",
)
def undo_merge(
    merge_id: Annotated[str, path_id("a merge id (mg_...), listed on the surviving contact")],
) -> ContactRecord:
    return routing_config.undo_merge(principal(router.current_event), merge_id, contact_store(), now())
