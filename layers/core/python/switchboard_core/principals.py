"""API keys and the principals they stand for.

A key is shown once, at creation; the table stores only its SHA-256, keyed by it,
so the authorizer's lookup is one GetItem. Every admin capability asks the
principal what it may see and change.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from switchboard_core.dynamo import scan_all
from switchboard_core.errors import HubError

KEY_PREFIX = "sbk_"
ALL_TENANTS = "*"


class Role(StrEnum):
    ADMIN = "admin"  # manages connections and keys of its tenant
    STAFF = "staff"  # reads connections and events of its tenant
    # Reads the provider catalogue, and creates and manages its own event subscriptions in its
    # own tenant (never connections, keys, routing or another key's subscriptions).
    PARTNER = "partner"


class Principal(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    key_id: str
    tenant: str = Field(description="The tenant it belongs to; '*' for an operator key that spans tenants.")
    name: str
    role: Role

    def can_read_tenant(self, tenant: str) -> bool:
        return self.role in (Role.ADMIN, Role.STAFF) and self.tenant in (ALL_TENANTS, tenant)

    def can_manage_tenant(self, tenant: str) -> bool:
        return self.role is Role.ADMIN and self.tenant in (ALL_TENANTS, tenant)

    def require_read(self, tenant: str) -> None:
        if not self.can_read_tenant(tenant):
            raise self._refused("read", tenant, (Role.ADMIN, Role.STAFF))

    def require_manage(self, tenant: str) -> None:
        if not self.can_manage_tenant(tenant):
            raise self._refused("change", tenant, (Role.ADMIN,))

    # --- partner subscriptions: admins manage their tenants', staff read them, partners own theirs ---

    def can_read_subscription(self, tenant: str, owner: str) -> bool:
        """Whether the subscription is visible at all (when not, the API answers 404, so a
        partner cannot learn another partner's subscription ids)."""
        if self.role is Role.PARTNER:
            return self.tenant == tenant and self.key_id == owner
        return self.can_read_tenant(tenant)

    def can_manage_subscription(self, tenant: str, owner: str) -> bool:
        if self.role is Role.PARTNER:
            return self.tenant == tenant and self.key_id == owner
        return self.can_manage_tenant(tenant)

    def require_subscription_listing(self, tenant: str) -> None:
        """May list subscriptions of `tenant` (a partner: its own ones, in its own tenant)."""
        if self.role is Role.PARTNER:
            if self.tenant != tenant:
                raise self._refused("read", tenant, (Role.ADMIN, Role.STAFF, Role.PARTNER))
            return
        self.require_read(tenant)

    def require_subscribe(self, tenant: str) -> None:
        """May create a subscription in `tenant`: its admins, or a partner key of that tenant."""
        if self.role is Role.PARTNER:
            if self.tenant != tenant:
                raise self._refused("subscribe to", tenant, (Role.ADMIN, Role.PARTNER))
            return
        if not self.can_manage_tenant(tenant):
            raise self._refused("subscribe to", tenant, (Role.ADMIN, Role.PARTNER))

    def require_manage_subscription(self, tenant: str, owner: str) -> None:
        """May change a subscription it can see (staff see their tenant's but change none)."""
        if not self.can_manage_subscription(tenant, owner):
            raise self._refused("change subscriptions of", tenant, (Role.ADMIN, Role.PARTNER))

    def owner_filter(self) -> str | None:
        """Whose subscriptions a listing shows: a partner's own only, everyone's for the others."""
        return self.key_id if self.role is Role.PARTNER else None

    def _refused(self, verb: str, tenant: str, roles: tuple[Role, ...]) -> HubError:
        """A 403 that says what would be allowed: the roles, of that tenant (or an operator key)."""
        needed = " or ".join(role.value for role in roles)
        if self.tenant in (ALL_TENANTS, tenant):  # the right tenant, a role that may not
            message = (
                f"this {self.role.value} key may not {verb} tenant {tenant!r}: that needs a key with role {needed}"
            )
        else:
            message = (
                f"this key belongs to tenant {self.tenant!r} and may not {verb} tenant {tenant!r}: "
                f"that needs a key of tenant {tenant!r} (or an operator key, tenant '*') "
                f"with role {needed}"
            )
        return HubError(
            message, status=403, code="forbidden", details={"tenant": tenant, "roles": [role.value for role in roles]}
        )

    def as_context(self) -> dict[str, str]:
        return {"key_id": self.key_id, "tenant": self.tenant, "name": self.name, "role": self.role.value}


class ApiKeyRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key_hash: str
    key_id: str
    tenant: str
    name: str
    role: Role
    created_at: AwareDatetime
    revoked_at: AwareDatetime | None = None

    def principal(self) -> Principal:
        return Principal(key_id=self.key_id, tenant=self.tenant, name=self.name, role=self.role)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> tuple[str, str]:
    """A new key and its public id (the id names the key in listings and revocations)."""
    key_id = secrets.token_hex(4)
    return f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(24)}", key_id


class ApiKeyStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def create(
        self, *, tenant: str, name: str, role: Role, now: datetime, key: str | None = None
    ) -> tuple[str, ApiKeyRecord]:
        if key is None:
            key, key_id = generate_key()
        else:
            key_id = key_id_of(key)
        record = ApiKeyRecord(
            key_hash=hash_key(key), key_id=key_id, tenant=tenant, name=name, role=role, created_at=now
        )
        self._table.put_item(Item=record.model_dump(mode="json", exclude_none=True))
        return key, record

    def authenticate(self, key: str) -> Principal | None:
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        item = self._table.get_item(Key={"key_hash": hash_key(key)}).get("Item")
        if item is None:
            return None
        record = ApiKeyRecord.model_validate(item)
        return None if record.revoked_at else record.principal()

    def list(self) -> list[ApiKeyRecord]:
        return sorted((ApiKeyRecord.model_validate(i) for i in scan_all(self._table)), key=lambda r: r.created_at)

    def revoke(self, key_id: str, now: datetime) -> ApiKeyRecord:
        """Keys are few, so revocation by public id scans rather than keeping an index."""
        for record in self.list():
            if record.key_id == key_id:
                self._table.update_item(
                    Key={"key_hash": record.key_hash},
                    UpdateExpression="SET revoked_at = :now",
                    ExpressionAttributeValues={":now": now.isoformat()},
                )
                return record.model_copy(update={"revoked_at": now})
        raise HubError(f"no key with id {key_id!r}", status=404, code="unknown_key")


def key_id_of(key: str) -> str:
    """The public id embedded in a key made by generate_key(); a hash prefix otherwise."""
    parts = key.split("_")
    if key.startswith(KEY_PREFIX) and len(parts) >= 3 and len(parts[1]) == 8:
        return parts[1]
    return hash_key(key)[:8]
