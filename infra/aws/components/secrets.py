"""Secrets the stack itself owns (topology.SECRETS), each with a value generated at creation.

Connection credentials are not here: the admin API creates those at runtime, one secret per
connection. These are the hub's own keys, read by the functions whose topology entry lists
them in `reads_secrets` (and granted read on exactly that secret).
"""

from __future__ import annotations

from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra import topology
from infra.aws.config import StageConfig


class AppSecrets(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.secrets: dict[str, secretsmanager.Secret] = {}
        for spec in topology.SECRETS.values():
            secret = secretsmanager.Secret(
                self,
                "".join(part.capitalize() for part in spec.name.split("_")) + "Secret",
                description=f"Switchboard {config.stage}: {spec.purpose}",
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    password_length=64, exclude_punctuation=True
                ),
                removal_policy=config.removal_policy,
            )
            NagSuppressions.add_resource_suppressions(
                secret,
                [
                    NagPackSuppression(
                        id="AwsSolutions-SMG4",
                        reason=spec.without_rotation_because,
                    )
                ],
            )
            self.secrets[spec.name] = secret

    def physical_names(self) -> dict[str, str]:
        """'secret:<name>' -> the secret's ARN (what GetSecretValue takes as SecretId)."""
        return {f"secret:{name}": secret.secret_arn for name, secret in self.secrets.items()}
