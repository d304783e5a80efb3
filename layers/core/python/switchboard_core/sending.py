"""What every function that sends through a provider's API reads from its environment, and the
clients it builds from that: the connections table, the connections' outbound credentials (their
own Secrets Manager prefix, cached), and the event bus its outcomes go to. The replies, answers,
calls, notifications and HubSpot-threads handlers each extend `SendingSettings` with their own
tables, so the wiring is written once."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from switchboard_core import aws
from switchboard_core.bus import EventPublisher
from switchboard_core.connections import ConnectionStore, CredentialStore


class SendingSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    connections_table: str = Field(alias="TABLE_CONNECTIONS")
    outbound_secrets_prefix: str = Field(alias="OUTBOUND_SECRETS_PREFIX")
    event_bus: str = Field(alias="EVENT_BUS_NAME")
    credentials_cache_seconds: int = Field(default=60, ge=0, alias="CREDENTIALS_CACHE_SECONDS")


def table(name: str) -> Any:
    return aws.resource("dynamodb").Table(name)


def connections(settings: SendingSettings) -> ConnectionStore:
    return ConnectionStore(table(settings.connections_table))


def outbound_credentials(settings: SendingSettings) -> CredentialStore:
    """The connections' send-API credentials, cached for `credentials_cache_seconds`."""
    return CredentialStore(
        aws.client("secretsmanager"),
        settings.outbound_secrets_prefix,
        max_age_seconds=settings.credentials_cache_seconds,
    )


def publisher(settings: SendingSettings) -> EventPublisher:
    return EventPublisher(aws.client("events"), settings.event_bus)
