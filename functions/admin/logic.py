"""Admin API logic: providers, connections and recent events, seen through a principal.

Every operation takes the calling principal and checks what it may see or change;
stores are passed in, so tests run this against moto or fakes alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from switchboard_core.connection_stats import ConnectionStatsStore
from switchboard_core.connections import (
    Connection,
    ConnectionStore,
    CredentialStore,
    new_connection_id,
)
from switchboard_core.cursors import CursorCodec
from switchboard_core.errors import HubError, NotFound, invalid_request
from switchboard_core.event_log import EventLogStore, EventQuery, position_model
from switchboard_core.principals import ALL_TENANTS, Principal
from switchboard_core.providers import PROVIDER_NAMES, all_adapters, get_adapter

MAX_GRACE = timedelta(days=30)
# A secret holds at most 64 KiB and a rotation keeps two sets: credentials beyond this cannot be stored.
MAX_CREDENTIALS_BYTES = 16 * 1024


def _storable(credentials: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(credentials).encode())
    if size > MAX_CREDENTIALS_BYTES:
        raise ValueError(f"credentials are {size:,} bytes as JSON; at most {MAX_CREDENTIALS_BYTES:,} can be stored")
    return credentials


Credentials = Annotated[dict[str, Any], AfterValidator(_storable)]


class CreateConnection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1)
    tenant: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str | None = Field(default=None, max_length=200)
    credentials: Credentials


class OutboundCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credentials: Credentials


class RotateCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credentials: Credentials
    grace_seconds: int = Field(default=24 * 3600, ge=0, le=int(MAX_GRACE.total_seconds()))


@dataclass
class AdminDeps:
    connections: ConnectionStore
    credentials: CredentialStore
    event_log: EventLogStore
    outbound_credentials: CredentialStore


def list_providers() -> list[dict[str, Any]]:
    """Every provider; `replies` names the outbound credential fields where auto-replies can be sent."""
    from switchboard_core.outbound import get_sender

    described = []
    for adapter in all_adapters():
        sender = get_sender(adapter.name)
        described.append(adapter.describe() | {"replies": sender.describe() if sender else None})
    return described


def create_connection(
    principal: Principal, request: CreateConnection, deps: AdminDeps, now: datetime, base_url: str
) -> dict[str, Any]:
    tenant = request.tenant or principal.tenant
    if tenant == ALL_TENANTS:
        raise HubError(
            "an operator key must name the connection's tenant",
            status=400,
            code="validation_error",
            details={"problems": [{"field": "tenant", "problem": "required for a '*' key"}]},
        )
    principal.require_manage(tenant)
    if request.provider not in PROVIDER_NAMES:
        raise HubError(
            f"unknown provider {request.provider!r}; known: {', '.join(PROVIDER_NAMES)}",
            status=400,
            code="unknown_provider",
        )
    credentials = get_adapter(request.provider).validate_credentials(request.credentials)
    connection = Connection(
        id=new_connection_id(), provider=request.provider, tenant=tenant, name=request.name, created_at=now
    )
    # Secret first: a connection record never points at missing credentials.
    deps.credentials.create(connection.id, credentials, tenant)
    deps.connections.put(connection)
    return connection.public(base_url)


def visible_connection(principal: Principal, connection_id: str, deps: AdminDeps) -> Connection:
    connection = deps.connections.get(connection_id)
    if not principal.can_read_tenant(connection.tenant):
        # Same answer as a missing one: keys of other tenants learn nothing.
        raise NotFound(f"unknown connection {connection_id!r}", code="unknown_connection")
    return connection


def list_connections(principal: Principal, deps: AdminDeps, base_url: str, tenant: str | None) -> list[dict[str, Any]]:
    """A tenant's connections (an operator key without tenant=: every tenant's). Asking for a
    tenant the key may not read is refused, not answered with the key's own."""
    if tenant is None and principal.tenant != ALL_TENANTS:
        tenant = principal.tenant
    principal.require_read(tenant or principal.tenant)
    return [c.public(base_url) for c in deps.connections.list(tenant)]


def delete_connection(principal: Principal, connection_id: str, deps: AdminDeps) -> None:
    connection = visible_connection(principal, connection_id, deps)
    principal.require_manage(connection.tenant)
    deps.connections.delete(connection.id)
    deps.credentials.delete(connection.id)
    deps.outbound_credentials.delete(connection.id, missing_ok=True)


def put_outbound_credentials(
    principal: Principal,
    connection_id: str,
    request: OutboundCredentials,
    deps: AdminDeps,
    now: datetime,
    base_url: str,
) -> dict[str, Any]:
    """Store the send-API credentials auto-replies on this connection go out with."""
    from switchboard_core.outbound import validate_credentials

    connection = visible_connection(principal, connection_id, deps)
    principal.require_manage(connection.tenant)
    credentials = validate_credentials(connection.provider, request.credentials)
    deps.outbound_credentials.replace(connection.id, credentials, connection.tenant)
    connection = connection.model_copy(update={"outbound_configured_at": now})
    deps.connections.put(connection)
    return connection.public(base_url)


def delete_outbound_credentials(principal: Principal, connection_id: str, deps: AdminDeps) -> None:
    connection = visible_connection(principal, connection_id, deps)
    principal.require_manage(connection.tenant)
    # The flag first: replies stop at once (skipped, not_configured) even if the delete fails.
    deps.connections.put(connection.model_copy(update={"outbound_configured_at": None}))
    deps.outbound_credentials.delete(connection.id, missing_ok=True)


def rotate_credentials(
    principal: Principal, connection_id: str, request: RotateCredentials, deps: AdminDeps, now: datetime, base_url: str
) -> dict[str, Any]:
    connection = visible_connection(principal, connection_id, deps)
    principal.require_manage(connection.tenant)
    credentials = get_adapter(connection.provider).validate_credentials(request.credentials)
    rotated = deps.credentials.rotate(connection.id, credentials, timedelta(seconds=request.grace_seconds), now)
    connection = connection.model_copy(update={"rotated_at": now})
    deps.connections.put(connection)
    body = connection.public(base_url)
    body["previous_credentials_valid_until"] = (
        rotated.previous_valid_until.isoformat() if rotated.previous_valid_until else None
    )
    return body


def connection_stats(
    principal: Principal, connection_id: str, days: int, deps: AdminDeps, stats: ConnectionStatsStore, now: datetime
) -> dict[str, Any]:
    """A connection's counts for the `days` UTC days up to today, zero-filled, oldest first."""
    connection = visible_connection(principal, connection_id, deps)
    return stats.read(connection.id, now.astimezone(UTC).date(), days).model_dump(mode="json")


def list_events(
    principal: Principal, query: EventQuery, cursor: str | None, deps: AdminDeps, codec: CursorCodec
) -> dict[str, Any]:
    """Recent events of one tenant or connection, newest first. The tenant is the key's own
    unless it names another (refused unless the key may read it); a cursor continues only
    the listing, with the same filters, it was issued for."""
    if query.connection:
        connection = visible_connection(principal, query.connection, deps)
        if query.tenant and query.tenant != connection.tenant:
            raise invalid_request(
                [
                    {
                        "field": "connection",
                        "in": "query",
                        "problem": f"connection {connection.id!r} is not in tenant {query.tenant!r}",
                    }
                ]
            )
        query = query.model_copy(update={"tenant": connection.tenant})
    elif not query.tenant:
        if principal.tenant == ALL_TENANTS:
            raise invalid_request(
                [{"field": "tenant", "in": "query", "problem": "an operator key must pass tenant= or connection="}]
            )
        query = query.model_copy(update={"tenant": principal.tenant})
    principal.require_read(query.tenant or "")
    scope = {"listing": "events", **query.filters()}
    after = codec.open(cursor, scope, position_model(query)) if cursor else None
    events, last = deps.event_log.query(query, after)
    return {"events": events, "next_cursor": codec.seal(scope, last) if last else None, "filters": query.filters()}
