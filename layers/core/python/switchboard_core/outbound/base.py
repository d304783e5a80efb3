"""The outbound sender interface: replying to a customer on the channel they wrote from.

A sender knows one provider's send API: where a reply goes (`address`, read from the
canonical event the customer sent, pure), which credentials it needs (a pydantic model),
the HTTP request that sends a text (`request`, pure) and what the provider's answer means
(`outcome`, pure: the provider's message id, or a failure that says whether a retry can
help). Senders do no I/O: `switchboard_core.outbound.send` passes the request to a
transport (urllib in Lambda, a fake or the local provider sandbox in tests).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from switchboard_core.events import CanonicalEvent

# Text longer than this is cut (with an ellipsis) before sending: the shortest limit of
# the supported channels is Twilio's 1,600 characters for one message.
MAX_REPLY_CHARS = 1600
# Attached to a reply where the provider echoes it back (Messenger's `metadata`), so the
# adapter can mark the echo `automated` and routing does not take it for an agent's answer.
AUTO_REPLY_MARK = "switchboard:auto-reply"


class ReplyAddress(BaseModel):
    """Where a reply to one event goes: the provider, the connection whose outbound
    credentials send it, and the provider's own addressing (recipient, sender number,
    chat, thread...)."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    connection: str
    fields: dict[str, str] = Field(description="provider-specific: e.g. twilio {to, from}, slack {channel, thread_ts}")


@dataclass(frozen=True)
class OutboundRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class ProviderResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class SendFailure(Exception):
    """The provider did not take the message."""

    transient: ClassVar[bool] = False

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail[:500]


class PermanentFailure(SendFailure):
    """The provider refused the message (bad recipient, revoked token...): a retry cannot help."""


class TransientFailure(SendFailure):
    """The provider or the network failed (5xx, 429, timeout): the same send may succeed later."""

    transient = True


class Sender(ABC):
    provider: ClassVar[str]
    base_url: ClassVar[str]
    credentials_model: ClassVar[type[BaseModel]]

    @abstractmethod
    def address(self, event: CanonicalEvent) -> dict[str, str] | None:
        """The reply's addressing for a message the customer sent, or None when this
        event cannot be answered through the provider's send API."""

    @abstractmethod
    def request(self, base_url: str, address: Mapping[str, str], text: str, credentials: BaseModel) -> OutboundRequest:
        """The HTTP request that sends `text` to `address`."""

    @abstractmethod
    def outcome(self, response: ProviderResponse) -> str:
        """The provider's id of the sent message; raise a SendFailure otherwise."""

    def describe(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "credential_fields": list(self.credentials_model.model_json_schema()["properties"]),
            "required": self.credentials_model.model_json_schema().get("required", []),
        }


def failure_for_status(response: ProviderResponse, code: str, detail: str) -> SendFailure:
    """429 and 5xx are worth retrying; any other refusal is final."""
    if response.status == 429 or response.status >= 500:
        return TransientFailure(code, detail)
    return PermanentFailure(code, detail)


def clip(text: str, limit: int = MAX_REPLY_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
