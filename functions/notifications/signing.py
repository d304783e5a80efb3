"""The signing secret of responders' and teams' notification webhooks: one per tenant.

A contact point is a URL, not a subscription, so it has no secret of its own; the tenant's
notification secret (Standard Webhooks `whsec_...`, in Secrets Manager under
<prefix><tenant>) signs every notification webhook of that tenant. It is created on first
use; an operator reads it from Secrets Manager to configure the receivers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from switchboard_core.subscriptions.signing import SigningSecrets


class NotificationSigningKeys:
    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
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
        # Only the webhook channel signs: the signing module is imported by the first webhook.
        from botocore.exceptions import ClientError

        from switchboard_core.subscriptions.signing import SigningSecrets, new_secret

        try:
            value = self._client.get_secret_value(SecretId=self.name(tenant))["SecretString"]
            return SigningSecrets.model_validate_json(value)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
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
