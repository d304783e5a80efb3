"""Connections (one provider account wired to one tenant) and their credentials.

The connection record lives in DynamoDB; its credentials live in Secrets Manager
under `<secrets prefix><connection id>` as JSON:

    {"current": {...}, "previous": {..., "valid_until": "<ISO time>"} | null}

During a rotation both sets verify requests until `valid_until`, so a provider can
be switched over to the new secret without losing a delivery.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from switchboard_core.dynamo import scan_all
from switchboard_core.errors import HubError, NotFound

CONNECTION_ID_PREFIX = "con_"
MAX_CACHED_CONNECTIONS = 1024


def new_connection_id() -> str:
    return CONNECTION_ID_PREFIX + secrets.token_hex(8)


class Connection(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    provider: str
    tenant: str
    name: str | None = None
    created_at: AwareDatetime
    rotated_at: AwareDatetime | None = None
    # Set while outbound (send API) credentials are stored for auto-replies.
    outbound_configured_at: AwareDatetime | None = None

    def public(self, base_url: str | None) -> dict[str, Any]:
        """What the admin API shows: never the credentials."""
        body = self.model_dump(mode="json", exclude_none=True)
        if base_url:
            body["webhook_url"] = webhook_url(base_url, self.provider, self.id)
        return body


def webhook_url(base_url: str, provider: str, connection_id: str) -> str:
    return f"{base_url.rstrip('/')}/webhooks/{provider}/{connection_id}"


class ConnectionStore:
    """Connections in their table. With `max_age_seconds` (ingest: CREDENTIALS_CACHE_SECONDS,
    the same bound as the credentials it reads next), a connection read is kept that long in
    this execution environment, so a busy connection costs one consistent read a minute
    instead of one per webhook; a deleted connection is refused within that time, and an
    unknown id is never cached (a new connection is found at once)."""

    def __init__(self, table: Any, *, max_age_seconds: float = 0) -> None:
        self._table = table
        self._max_age = max_age_seconds
        self._cached: dict[str, tuple[Connection, float]] = {}

    def get(self, connection_id: str) -> Connection:
        if not connection_id.startswith(CONNECTION_ID_PREFIX) or len(connection_id) > 64:
            raise NotFound(f"unknown connection {connection_id!r}", code="unknown_connection")
        if self._max_age > 0:
            cached = self._cached.get(connection_id)
            if cached is not None and time.monotonic() - cached[1] < self._max_age:
                return cached[0]
        item = self._table.get_item(Key={"id": connection_id}, ConsistentRead=True).get("Item")
        if item is None:
            self._cached.pop(connection_id, None)
            raise NotFound(f"unknown connection {connection_id!r}", code="unknown_connection")
        connection = Connection.model_validate(item)
        if self._max_age > 0:
            if len(self._cached) >= MAX_CACHED_CONNECTIONS:
                self._cached.clear()  # a flood of distinct ids: start again rather than grow
            self._cached[connection_id] = (connection, time.monotonic())
        return connection

    def put(self, connection: Connection) -> None:
        self._table.put_item(Item=connection.model_dump(mode="json", exclude_none=True))

    def delete(self, connection_id: str) -> None:
        self._table.delete_item(Key={"id": connection_id})

    def list(self, tenant: str | None) -> list[Connection]:
        """All connections of a tenant (all of them for tenant None). Connections are
        few per deployment, so a filtered scan is simpler than another index."""
        kwargs: dict[str, Any] = {}
        if tenant is not None:
            from boto3.dynamodb.conditions import Attr

            kwargs["FilterExpression"] = Attr("tenant").eq(tenant)
        return sorted(
            (Connection.model_validate(i) for i in scan_all(self._table, **kwargs)), key=lambda c: c.created_at
        )


class StoredCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current: dict[str, str]
    previous: dict[str, str] | None = None
    previous_valid_until: AwareDatetime | None = None

    def valid_sets(self, now: datetime) -> list[dict[str, str]]:
        sets = [self.current]
        if self.previous and self.previous_valid_until and now < self.previous_valid_until:
            sets.append(self.previous)
        return sets


class CredentialStore:
    """Reads through Powertools Parameters (cached for `max_age` seconds per
    execution environment); writes through the Secrets Manager client."""

    # A cached set that fails a signature is read again, at most this often per connection: a
    # rotation is seen at once, and a flood of forged requests costs one read per interval.
    REFRESH_INTERVAL_SECONDS = 5.0

    def __init__(self, secrets_client: Any, prefix: str, max_age_seconds: int = 60) -> None:
        self._client = secrets_client
        self._prefix = prefix
        self._max_age = max_age_seconds
        self._provider: Any = None
        self._refreshed_at: dict[str, float] = {}

    def secret_name(self, connection_id: str) -> str:
        return f"{self._prefix}{connection_id}"

    def _reader(self) -> Any:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            self._provider = SecretsProvider(boto3_client=self._client)
        return self._provider

    def get(self, connection_id: str, *, fresh: bool = False) -> StoredCredentials:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            raw = self._reader().get(self.secret_name(connection_id), max_age=self._max_age, force_fetch=fresh)
        except GetParameterError as exc:
            raise HubError("connection credentials unavailable", status=503, code="credentials_unavailable") from exc
        return StoredCredentials.model_validate_json(raw)

    def refreshed(self, connection_id: str) -> StoredCredentials | None:
        """The credentials read again past the cache, when the cached ones may be stale (they
        failed a signature: the secret may have been rotated since they were read); None when
        nothing is cached or this connection's were read again within REFRESH_INTERVAL_SECONDS."""
        if self._max_age <= 0:
            return None
        now = time.monotonic()
        last = self._refreshed_at.get(connection_id)
        if last is not None and now - last < self.REFRESH_INTERVAL_SECONDS:
            return None
        if len(self._refreshed_at) >= MAX_CACHED_CONNECTIONS:
            self._refreshed_at.clear()
        self._refreshed_at[connection_id] = now
        return self.get(connection_id, fresh=True)

    def create(self, connection_id: str, credentials: Mapping[str, str], tenant: str) -> None:
        stored = StoredCredentials(current=dict(credentials))
        self._client.create_secret(
            Name=self.secret_name(connection_id),
            SecretString=stored.model_dump_json(),
            Tags=[{"Key": "switchboard:tenant", "Value": tenant}],
        )

    def rotate(
        self, connection_id: str, credentials: Mapping[str, str], grace: timedelta, now: datetime
    ) -> StoredCredentials:
        """Make `credentials` current; the old set stays valid for `grace`."""
        name = self.secret_name(connection_id)
        old = StoredCredentials.model_validate_json(self._client.get_secret_value(SecretId=name)["SecretString"])
        rotated = StoredCredentials(current=dict(credentials), previous=old.current, previous_valid_until=now + grace)
        self._client.put_secret_value(SecretId=name, SecretString=rotated.model_dump_json())
        return rotated

    def replace(self, connection_id: str, credentials: Mapping[str, str], tenant: str) -> None:
        """Store `credentials` as the only set (outbound credentials have no rotation grace:
        a send uses one token at a time)."""
        stored = StoredCredentials(current=dict(credentials)).model_dump_json()
        try:
            self._client.put_secret_value(SecretId=self.secret_name(connection_id), SecretString=stored)
        except self._client.exceptions.ResourceNotFoundException:
            self.create(connection_id, credentials, tenant)

    def delete(self, connection_id: str, *, missing_ok: bool = False) -> None:
        try:
            self._client.delete_secret(SecretId=self.secret_name(connection_id), ForceDeleteWithoutRecovery=True)
        except self._client.exceptions.ResourceNotFoundException:
            if not missing_ok:
                raise
