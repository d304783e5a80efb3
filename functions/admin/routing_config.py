"""Admin API logic for routing: the rule set, the taxonomy, responders and simulation.

A proposed rule set is validated (pydantic) before it is stored, field by field, and
stored only if the caller saw the version in force (`expected_version`), so the rule
set in force is never invalid and two editors never overwrite each other unknowingly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from functions.admin.logic import AdminDeps, parse_body
from switchboard_core.routing.assignment import Responder, Team
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.contacts import ContactRecord, ContactStore
from switchboard_core.routing.conversations import ConversationStore, Status
from switchboard_core.routing.rules import RuleSet
from switchboard_core.routing.sensing import Sensor, Taxonomy
from functions.admin.simulation import simulate
from switchboard_core.errors import HubError, NotFound, validated
from switchboard_core.event_log import EventQuery
from switchboard_core.principals import ALL_TENANTS, Principal


class PutRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_set: RuleSet
    expected_version: int | None = Field(default=None, ge=1,
                                         description="the version being replaced; omit for a tenant's first rule set")


class Simulate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_set: RuleSet
    limit: int = Field(default=100, ge=1, le=100)


def tenant_for(principal: Principal, requested: str | None) -> str:
    """The tenant a request acts on: the key's own, or (operator keys) the one asked for."""
    if principal.tenant != ALL_TENANTS:
        return principal.tenant
    if not requested:
        raise HubError("an operator key must pass tenant=", status=400, code="validation_error")
    return requested


def path_owned(body: Any, owned: dict[str, str], server_side: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON object body completed with the fields the path and the key decide; the
    body may not set those itself (nor fields the server keeps, like a responder's load)."""
    if not isinstance(body, dict):
        raise HubError("a JSON object body is required", status=400, code="malformed_request")
    refused = sorted(set(body) & (set(owned) | set(server_side)))
    if refused:
        raise HubError(f"these fields are not set through the body: {', '.join(refused)}", status=400,
                       code="validation_error")
    return {**body, **owned}


def get_rules(principal: Principal, tenant: str, store: RoutingConfigStore) -> dict[str, Any]:
    principal.require_read(tenant)
    found = store.rules(tenant)
    if found is None:
        raise NotFound(f"tenant {tenant!r} has no rule set yet", code="no_rule_set")
    rule_set, version = found
    return {"rule_set": rule_set.model_dump(mode="json"), "version": version}


def put_rules(principal: Principal, tenant: str, body: Any, store: RoutingConfigStore, now: datetime) -> dict[str, Any]:
    principal.require_manage(tenant)
    request: PutRules = parse_body(PutRules, body)
    current = store.rules(tenant)
    current_version = current[1] if current else None
    if request.expected_version != current_version:
        raise HubError(f"the rule set in force is version {current_version}; you edited version "
                       f"{request.expected_version}", status=409, code="version_conflict",
                       details={"current_version": current_version})
    version = store.put_rules(tenant, request.rule_set, request.expected_version, now)
    if version is None:
        raise HubError("the rule set changed while you saved it; reload and try again", status=409,
                       code="version_conflict")
    return {"version": version, "rules": len(request.rule_set.rules)}


def get_taxonomy(principal: Principal, tenant: str, store: RoutingConfigStore) -> dict[str, Any]:
    principal.require_read(tenant)
    taxonomy, version = store.taxonomy(tenant)
    return {"taxonomy": taxonomy.model_dump(mode="json"), "version": version}


def put_taxonomy(principal: Principal, tenant: str, body: Any, store: RoutingConfigStore, now: datetime) -> dict[str, Any]:
    principal.require_manage(tenant)
    taxonomy: Taxonomy = parse_body(Taxonomy, body)
    return {"version": store.put_taxonomy(tenant, taxonomy, now),
            "phrases": sum(1 for _ in taxonomy.phrases())}


def list_responders(principal: Principal, tenant: str, store: RoutingConfigStore) -> dict[str, Any]:
    principal.require_read(tenant)
    return {"responders": [r.model_dump(mode="json") for r in sorted(store.responders(tenant), key=lambda r: r.id)]}


def put_responder(principal: Principal, tenant: str, responder_id: str, body: Any,
                  store: RoutingConfigStore) -> dict[str, Any]:
    principal.require_manage(tenant)
    responder = validated(Responder, path_owned(body, {"id": responder_id, "tenant": tenant}, ("load",)),
                          "responder")
    store.put_responder(responder)
    saved = store.responder(tenant, responder_id)
    assert saved is not None
    return saved.model_dump(mode="json")


def delete_responder(principal: Principal, tenant: str, responder_id: str, store: RoutingConfigStore) -> None:
    principal.require_manage(tenant)
    if store.responder(tenant, responder_id) is None:
        raise NotFound(f"unknown responder {responder_id!r}", code="unknown_responder")
    store.delete_responder(tenant, responder_id)


def simulate_rules(principal: Principal, tenant: str, body: Any, store: RoutingConfigStore,
                   deps: AdminDeps) -> dict[str, Any]:
    """The proposal against the tenant's most recent events; nothing is written."""
    principal.require_read(tenant)
    request: Simulate = parse_body(Simulate, body)
    events, _ = deps.event_log.query(EventQuery(tenant=tenant, limit=request.limit))
    taxonomy, _ = store.taxonomy(tenant)
    return simulate(request.rule_set, reversed(events), Sensor(taxonomy), store.responders(tenant))


# --- read API: contacts, timelines, conversations ------------------------------------------

def get_contact(principal: Principal, contact_id: str, contacts: ContactStore) -> ContactRecord:
    contact = contacts.get(contact_id)
    if contact is None or not principal.can_read_tenant(contact.tenant):
        raise NotFound(f"unknown contact {contact_id!r}", code="unknown_contact")
    return contact


def contact_view(contact: ContactRecord) -> dict[str, Any]:
    return contact.model_dump(mode="json")


def timeline(principal: Principal, contact_id: str, params: dict[str, str], contacts: ContactStore) -> dict[str, Any]:
    contact = get_contact(principal, contact_id, contacts)
    limit = _limit(params)
    cursor = {"at": decode_cursor(params["cursor"])["at"]} if params.get("cursor") else None
    entries, next_cursor = contacts.timeline(contact, limit, cursor)
    return {"contact": contact.id, "events": entries,
            "next_cursor": encode_cursor(next_cursor) if next_cursor else None}


def list_conversations(principal: Principal, tenant: str, params: dict[str, str],
                       conversations: ConversationStore) -> dict[str, Any]:
    principal.require_read(tenant)
    status = params.get("status")
    if status and status not in {s.value for s in Status}:
        raise HubError(f"status must be one of {', '.join(s.value for s in Status)}", status=400,
                       code="validation_error")
    cursor = decode_cursor(params["cursor"]) if params.get("cursor") else None
    found, next_cursor = conversations.for_tenant(tenant, status=status, assignee=params.get("assignee"),
                                                  topic=params.get("topic"), limit=_limit(params), cursor=cursor)
    return {"conversations": [c.model_dump(mode="json") for c in found],
            "next_cursor": encode_cursor(next_cursor) if next_cursor else None}


def get_conversation(principal: Principal, conversation_id: str, conversations: ConversationStore) -> dict[str, Any]:
    conversation = conversations.get(conversation_id)
    if conversation is None or not principal.can_read_tenant(conversation.tenant):
        raise NotFound(f"unknown conversation {conversation_id!r}", code="unknown_conversation")
    return conversation.model_dump(mode="json")


def _limit(params: dict[str, str]) -> int:
    raw = params.get("limit", "25")
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise HubError("limit must be a whole number from 1 to 100", status=400, code="validation_error")
    return int(raw)


def decode_cursor(cursor: str) -> dict[str, str]:
    from switchboard_core.event_log import decode_cursor as decode

    try:
        return decode(cursor)
    except ValueError as exc:
        raise HubError(str(exc), status=400, code="validation_error") from None


def encode_cursor(key: dict[str, str]) -> str:
    from switchboard_core.event_log import encode_cursor as encode

    return encode(key)


class SetStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status
    assignee: str | None = Field(default=None, max_length=64)


def set_conversation_status(principal: Principal, conversation_id: str, body: Any,
                            conversations: ConversationStore) -> dict[str, Any]:
    """Staff move a conversation along (waiting, resolved...); admins and staff of its tenant may."""
    conversation = conversations.get(conversation_id)
    if conversation is None or not principal.can_read_tenant(conversation.tenant):
        raise NotFound(f"unknown conversation {conversation_id!r}", code="unknown_conversation")
    request: SetStatus = parse_body(SetStatus, body)
    conversations.set_status(conversation_id, request.status, request.assignee)
    updated = conversations.get(conversation_id)
    assert updated is not None
    return updated.model_dump(mode="json")


def undo_merge(principal: Principal, merge_id: str, contacts: ContactStore, now: datetime) -> dict[str, Any]:
    """Split a merged contact out again (identity resolution was wrong)."""
    record = contacts.merge_record(merge_id)
    if record is None or not principal.can_read_tenant(record.tenant):
        raise NotFound(f"unknown merge {merge_id!r}", code="unknown_merge")
    principal.require_manage(record.tenant)
    try:
        restored = contacts.unmerge(merge_id, now)
    except ValueError as exc:
        raise HubError(str(exc), status=409, code="already_undone") from None
    return restored.model_dump(mode="json")


def list_teams(principal: Principal, tenant: str, store: RoutingConfigStore) -> dict[str, Any]:
    principal.require_read(tenant)
    teams = sorted(store.teams(tenant), key=lambda t: t.name)
    members: dict[str, list[str]] = {}
    for responder in store.responders(tenant):
        for team in responder.teams:
            members.setdefault(team, []).append(responder.id)
    return {"teams": [t.model_dump(mode="json") | {"members": sorted(members.get(t.name, []))} for t in teams]}


def put_team(principal: Principal, tenant: str, name: str, body: Any, store: RoutingConfigStore) -> dict[str, Any]:
    principal.require_manage(tenant)
    team = validated(Team, path_owned(body, {"name": name}), "team")
    store.put_team(tenant, team)
    return team.model_dump(mode="json")


def delete_team(principal: Principal, tenant: str, name: str, store: RoutingConfigStore) -> None:
    principal.require_manage(tenant)
    if not store.delete_team(tenant, name):
        raise NotFound(f"unknown team {name!r}", code="unknown_team")
