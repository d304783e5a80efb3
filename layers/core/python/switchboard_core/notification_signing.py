"""The tenant's notification signing secret: signs responders' and teams' notification
webhooks (the notifications function) and campaigns' webhook steps (the campaigns function).

A contact point or a webhook step is a URL, not a subscription, so it has no secret of its
own; the tenant's notification secret (Standard Webhooks `whsec_...`, in Secrets Manager under
<prefix><tenant>) signs every such call of that tenant. It is created on first use; an
operator reads it from Secrets Manager to configure the receivers. It lives in the core layer
so both functions use it without importing each other's folder."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from switchboard_core.subscriptions.signing import SigningSecrets


class MissingSigningSecret(LookupError):
    """The tenant has no notification signing secret, and this caller may not create one."""


class NotificationSigningKeys:
    """`create_missing`: create a tenant's secret on first use (the notifications function may);
    otherwise a tenant without one raises MissingSigningSecret (the campaigns function only reads)."""

    def __init__(self, client: Any, prefix: str, *, create_missing: bool = True) -> None:
        self._client = client
        self._prefix = prefix
        self._create_missing = create_missing
        self._cache: dict[str, SigningSecrets] = {}

    def name(self, tenant: str) -> str:
        return f"{self._prefix}{tenant}"

    def secrets(self, tenant: str) -> SigningSecrets:
        if tenant not in self._cache:
            self._cache[tenant] = self._read_or_create(tenant)
        return self._cache[tenant]

    def keys(self, tenant: str) -> list[bytes]:
        return self.secrets(tenant).signing_keys(datetime.now(UTC))

    def _read_or_create(self, tenant: str) -> SigningSecrets:
        # Only webhooks sign: the signing module is imported by the first one, not at a cold start.
        from botocore.exceptions import ClientError

        from switchboard_core.subscriptions.signing import SigningSecrets, new_secret

        try:
            value = self._client.get_secret_value(SecretId=self.name(tenant))["SecretString"]
            return SigningSecrets.model_validate_json(value)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        if not self._create_missing:
            raise MissingSigningSecret(
                f"tenant {tenant} has no notification signing secret yet ({self.name(tenant)}): the notifications "
                "function creates it with the tenant's first webhook notification, or an operator does"
            )
        created = SigningSecrets(current=new_secret())
        try:
            self._client.create_secret(Name=self.name(tenant), SecretString=created.model_dump_json())
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceExistsException":
                raise
            # Another invocation created it first: use that one.
            value = self._client.get_secret_value(SecretId=self.name(tenant))["SecretString"]
            return SigningSecrets.model_validate_json(value)
        return created
