"""Subscriptions' signing secrets in Secrets Manager, one secret per subscription
(<prefix><subscription id>, JSON SigningSecrets), like connections' credentials: never
in a table, readable only by the admin and delivery functions."""

from __future__ import annotations

from typing import Any

from switchboard_core.subscriptions.signing import SigningSecrets


class SigningSecretStore:
    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    def name(self, subscription_id: str) -> str:
        return f"{self._prefix}{subscription_id}"

    def create(self, subscription_id: str, secrets: SigningSecrets) -> None:
        self._client.create_secret(Name=self.name(subscription_id), SecretString=secrets.model_dump_json())

    def put(self, subscription_id: str, secrets: SigningSecrets) -> None:
        self._client.put_secret_value(SecretId=self.name(subscription_id), SecretString=secrets.model_dump_json())

    def get(self, subscription_id: str) -> SigningSecrets:
        value = self._client.get_secret_value(SecretId=self.name(subscription_id))["SecretString"]
        return SigningSecrets.model_validate_json(value)

    def delete(self, subscription_id: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self._client.delete_secret(SecretId=self.name(subscription_id), ForceDeleteWithoutRecovery=True)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
