"""Admin API logic for routing: the rule set, the taxonomy, responders and simulation.

A proposed rule set is validated (pydantic) before it is stored, field by field, and
stored only if the caller saw the version in force (`expected_version`), so the rule
set in force is never invalid and two editors never overwrite each other unknowingly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from functions.admin.logic import AdminDeps
from functions.admin.simulation import simulate
from switchboard_core.connections import ConnectionStore
from switchboard_core.cursors import CursorCodec
from switchboard_core.endpoints import EndpointRefused, Resolver, check_endpoint
from switchboard_core.errors import HubError, NotFound, invalid_request, validated
from switchboard_core.event_log import EventQuery
from switchboard_core.principals import ALL_TENANTS, Principal
from switchboard_core.routing.assignment import Responder, Team
from switchboard_core.routing.config_store import RoutingConfigStore, stored_rules
from switchboard_core.routing.contact_points import ContactPoint
from switchboard_core.routing.contacts import ContactRecord, ContactStore, TimelinePosition
from switchboard_core.routing.conversations import Conversation, ConversationStore, Status, list_position
from switchboard_core.routing.rules import RuleSet
from switchboard_core.routing.sensing import Sensor, Taxonomy

# DynamoDB stores at most 400 KB per item; the rest of the item (keys, version, time) and the
# attribute names need a little of that, so a stored document may take this much.
MAX_STORED_BYTES = 380_000


class PutRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_set: RuleSet
    expected_version: int | None = Field(
        default=None, ge=1, description="the version being replaced; omit for a tenant's first rule set"
    )


class Simulate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_set: RuleSet
    limit: int = Field(default=100, ge=1, le=100)


def tenant_for(principal: Principal, requested: str | None) -> str:
    """The tenant a request acts on: the one asked for, else the key's own. The route then
    checks the key may read or change it, so naming another tenant is refused (403), never
    quietly answered with the key's own."""
    if requested:
        return requested
    if principal.tenant == ALL_TENANTS:
        raise HubError(
            "an operator key must pass tenant=",
            status=400,
            code="validation_error",
            details={"problems": [{"field": "tenant", "in": "query", "problem": "required for a '*' key"}]},
        )
    return principal.tenant


def fits_one_item(field: str, stored: str | bytes) -> None:
    """Refuse (413, naming the field) a document larger than one DynamoDB item can hold."""
    size = len(stored.encode()) if isinstance(stored, str) else len(stored)
    if size > MAX_STORED_BYTES:
        problem = f"is {size:,} bytes as stored; at most {MAX_STORED_BYTES:,} fit in one item"
        raise HubError(
            f"{field} {problem}",
            status=413,
            code="payload_too_large",
            details={"problems": [{"field": field, "in": "body", "problem": problem}]},
        )


def get_rules(principal: Principal, tenant: str, store: RoutingConfigStore) -> dict[str, Any]:
    principal.require_read(tenant)
    found = store.rules(tenant)
    if found is None:
        raise NotFound(f"tenant {tenant!r} has no rule set yet", code="no_rule_set")
    rule_set, version = found
    return {"rule_set": rule_set, "version": version}


def put_rules(
    principal: Principal, tenant: str, request: PutRules, store: RoutingConfigStore, now: datetime
) -> dict[str, Any]:
    principal.require_manage(tenant)
    (stored,) = stored_rules(request.rule_set).values()  # compressed when large: 5,000 plain rules fit
    fits_one_item("rule_set", stored)
    current = store.rules(tenant)
    current_version = current[1] if current else None
    if request.expected_version != current_version:
        raise HubError(
            f"the rule set in force is version {current_version}; you edited version {request.expected_version}",
            status=409,
            code="version_conflict",
            details={"current_version": current_version},
        )
    version = store.put_rules(tenant, request.rule_set, request.expected_version, now)
    if version is None:
        raise HubError(
            "the rule set changed while you saved it; reload and try again", status=409, code="version_conflict"
        )
    return {"version": version, "rules": len(request.rule_set.rules)}


def get_taxonomy(principal: Principal, tenant: str, store: RoutingConfigStore) -> dict[str, Any]:
    principal.require_read(tenant)
    taxonomy, version = store.taxonomy(tenant)
    return {"taxonomy": taxonomy, "version": version}


def put_taxonomy(
    principal: Principal, tenant: str, taxonomy: Taxonomy, store: RoutingConfigStore, now: datetime
) -> dict[str, Any]:
    principal.require_manage(tenant)
    fits_one_item("(body)", taxonomy.model_dump_json())
    return {"version": store.put_taxonomy(tenant, taxonomy, now), "phrases": sum(1 for _ in taxonomy.phrases())}


def list_responders(principal: Principal, tenant: str, store: RoutingConfigStore) -> dict[str, Any]:
    principal.require_read(tenant)
    return {"responders": sorted(store.responders(tenant), key=lambda r: r.id)}


# Providers whose connections can send a notification on each channel (their outbound senders).
NOTIFYING_PROVIDERS: dict[str, tuple[str, ...]] = {"sms": ("twilio",), "slack": ("slack",)}


def check_contact_points(
    tenant: str,
    points: list[ContactPoint],
    connections: ConnectionStore,
    *,
    local: bool,
    resolve: Resolver | None = None,
) -> None:
    """What the model cannot check alone: a named connection exists in this tenant and can send
    on the point's channel; a webhook's host resolves only to addresses the hub may call (the
    partner subscriptions' SSRF rules). One 400 naming every bad field."""
    problems: list[dict[str, str]] = []
    for index, point in enumerate(points):
        where = f"contact_points.{index}"
        if point.connection is not None:
            problem = connection_problem(tenant, point, connections)
            if problem:
                problems.append({"field": f"{where}.connection", "in": "body", "problem": problem})
        if point.channel == "webhook":
            try:
                check_endpoint(point.to, local=local, **({"resolve": resolve} if resolve else {}))
            except EndpointRefused as refused:
                problem = refused.details["problems"][0]["problem"]
                problems.append({"field": f"{where}.to", "in": "body", "problem": problem})
    if problems:
        raise invalid_request(problems)


def connection_problem(tenant: str, point: ContactPoint, connections: ConnectionStore) -> str | None:
    assert point.connection is not None
    try:
        connection = connections.get(point.connection)
    except NotFound:
        return f"unknown connection {point.connection!r}"
    if connection.tenant != tenant:  # another tenant's: as unknown, so ids do not leak
        return f"unknown connection {point.connection!r}"
    providers = NOTIFYING_PROVIDERS[point.channel]
    if connection.provider not in providers:
        return (
            f"connection {point.connection!r} is a {connection.provider} connection; {point.channel} needs one of "
            f"{', '.join(providers)}"
        )
    return None


def put_responder(
    principal: Principal,
    tenant: str,
    responder_id: str,
    profile: BaseModel,
    store: RoutingConfigStore,
    connections: ConnectionStore,
    local: bool,
) -> Responder:
    """Create or replace a responder from its profile; the id is the path's, the tenant the key's."""
    principal.require_manage(tenant)
    responder = validated(Responder, profile.model_dump() | {"id": responder_id, "tenant": tenant}, "responder")
    check_contact_points(tenant, responder.contact_points, connections, local=local)
    fits_one_item("(body)", responder.model_dump_json())
    store.put_responder(responder)
    saved = store.responder(tenant, responder_id)
    assert saved is not None
    return saved


def delete_responder(principal: Principal, tenant: str, responder_id: str, store: RoutingConfigStore) -> None:
    principal.require_manage(tenant)
    if store.responder(tenant, responder_id) is None:
        raise NotFound(f"unknown responder {responder_id!r}", code="unknown_responder")
    store.delete_responder(tenant, responder_id)


def simulate_rules(
    principal: Principal, tenant: str, request: Simulate, store: RoutingConfigStore, deps: AdminDeps
) -> dict[str, Any]:
    """The proposal against the tenant's most recent events; nothing is written."""
    principal.require_read(tenant)
    events, _ = deps.event_log.query(EventQuery(tenant=tenant, limit=request.limit))
    taxonomy, _ = store.taxonomy(tenant)
    return simulate(request.rule_set, reversed(events), Sensor(taxonomy), store.responders(tenant))


# --- read API: contacts, timelines, conversations ------------------------------------------


def get_contact(principal: Principal, contact_id: str, contacts: ContactStore) -> ContactRecord:
    contact = contacts.get(contact_id)
    if contact is None or not principal.can_read_tenant(contact.tenant):
        raise NotFound(f"unknown contact {contact_id!r}", code="unknown_contact")
    return contact


def timeline(
    principal: Principal, contact_id: str, limit: int, cursor: str | None, contacts: ContactStore, codec: CursorCodec
) -> dict[str, Any]:
    """The contact's events newest first; a cursor continues only this contact's timeline."""
    contact = get_contact(principal, contact_id, contacts)
    scope = {"listing": "timeline", "contact": contact.id}
    after = codec.open(cursor, scope, TimelinePosition) if cursor else None
    entries, last = contacts.timeline(contact, limit, after)
    return {"contact": contact.id, "events": entries, "next_cursor": codec.seal(scope, last) if last else None}


def list_conversations(
    principal: Principal,
    tenant: str,
    filters: dict[str, str | None],
    limit: int,
    cursor: str | None,
    conversations: ConversationStore,
    codec: CursorCodec,
) -> dict[str, Any]:
    """A tenant's conversations, filtered by status, assignee and topic; a cursor continues
    only the listing (tenant and filters) it was issued for."""
    principal.require_read(tenant)
    scope = {"listing": "conversations", "tenant": tenant, **filters}
    position = list_position(filters.get("status"), filters.get("assignee"), filters.get("topic"))
    after = codec.open(cursor, scope, position) if cursor else None
    found, last = conversations.for_tenant(
        tenant,
        status=filters.get("status"),
        assignee=filters.get("assignee"),
        topic=filters.get("topic"),
        limit=limit,
        cursor=after,
    )
    return {"conversations": found, "next_cursor": codec.seal(scope, last) if last else None}


def get_conversation(principal: Principal, conversation_id: str, conversations: ConversationStore) -> Conversation:
    conversation = conversations.get(conversation_id)
    if conversation is None or not principal.can_read_tenant(conversation.tenant):
        raise NotFound(f"unknown conversation {conversation_id!r}", code="unknown_conversation")
    return conversation


class SetStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status
    assignee: str | None = Field(default=None, max_length=64)


def set_conversation_status(
    principal: Principal, conversation_id: str, request: SetStatus, conversations: ConversationStore
) -> Conversation:
    """Staff move a conversation along (waiting, resolved...); admins and staff of its tenant may."""
    conversation = conversations.get(conversation_id)
    if conversation is None or not principal.can_read_tenant(conversation.tenant):
        raise NotFound(f"unknown conversation {conversation_id!r}", code="unknown_conversation")
    conversations.set_status(conversation, request.status, request.assignee)
    updated = conversations.get(conversation_id)
    assert updated is not None
    return updated


def undo_merge(principal: Principal, merge_id: str, contacts: ContactStore, now: datetime) -> ContactRecord:
    """Split a merged contact out again (identity resolution was wrong)."""
    record = contacts.merge_record(merge_id)
    if record is None or not principal.can_read_tenant(record.tenant):
        raise NotFound(f"unknown merge {merge_id!r}", code="unknown_merge")
    principal.require_manage(record.tenant)
    try:
        restored = contacts.unmerge(merge_id, now)
    except ValueError as exc:
        raise HubError(str(exc), status=409, code="already_undone") from None
    return restored


def list_teams(principal: Principal, tenant: str, store: RoutingConfigStore) -> dict[str, Any]:
    principal.require_read(tenant)
    teams = sorted(store.teams(tenant), key=lambda t: t.name)
    members: dict[str, list[str]] = {}
    for responder in store.responders(tenant):
        for team in responder.teams:
            members.setdefault(team, []).append(responder.id)
    return {"teams": [t.model_dump(mode="json") | {"members": sorted(members.get(t.name, []))} for t in teams]}


def put_team(
    principal: Principal,
    tenant: str,
    name: str,
    profile: BaseModel,
    store: RoutingConfigStore,
    connections: ConnectionStore,
    local: bool,
) -> Team:
    """Create or replace a team from its profile; the name is the path's."""
    principal.require_manage(tenant)
    team = validated(Team, profile.model_dump() | {"name": name}, "team")
    check_contact_points(tenant, team.contact_points, connections, local=local)
    fits_one_item("(body)", team.model_dump_json())
    store.put_team(tenant, team)
    return team


def delete_team(principal: Principal, tenant: str, name: str, store: RoutingConfigStore) -> None:
    principal.require_manage(tenant)
    if not store.delete_team(tenant, name):
        raise NotFound(f"unknown team {name!r}", code="unknown_team")
