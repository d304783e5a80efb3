"""The outbound sender interface: replying to a customer on the channel they wrote from.

A sender knows one provider's send API, all of it pure (no I/O):

* `address(event, visibility)`: where a reply to the customer's event goes (a public reply
  or a private message where the platform has both; None: the default for the channel);
* `contact_address(channel, to, credentials)`: where a first message to a contact goes (a
  campaign's cold send), from the connection's own sender (its outbound credentials' number);
* `prepare(address, message, inbound_at, now)`: the platform's rules for this send (a
  messaging window, a tag it needs) -- the address to send to, or `Refused` (the API
  answers 409 naming the rule);
* `request(base_url, address, message, credentials)`: the HTTP request that sends it;
* `outcome(response)`: the provider's message id, or a SendFailure saying whether a retry
  can help (and after how long, from the provider's rate-limit headers);
* `status(event)`: a provider's webhook about something the hub sent, read as (provider
  message id, state, reason): a delivery-status webhook (`message.status_updated`), or
  the platform's echo of the published item (the business's own tweet, a ticket comment
  by the API user) read as `delivered`.

`switchboard_core.outbound.send` passes the request to a transport (urllib in Lambda, a
fake or the local provider sandbox in tests). Auto-replies, notifications and staff
answers all send through these same senders.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from switchboard_core.events import CanonicalEvent

# Text longer than this is cut (with an ellipsis) before sending: the shortest limit of
# the supported channels is Twilio's 1,600 characters for one message.
MAX_REPLY_CHARS = 1600
# A phone number as the outbound credentials name a connection's own sender: E.164.
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"


def is_e164(value: str) -> bool:
    return re.fullmatch(E164_PATTERN, value) is not None


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


Visibility = Literal["public", "private"]
# Delivery states a staff answer moves through (`message.status_updated`), in order; `failed` ends it.
DeliveryState = Literal["queued", "sent", "delivered", "read", "failed"]


@dataclass(frozen=True)
class Attachment:
    url: str
    content_type: str | None = None


@dataclass(frozen=True)
class OutboundMessage:
    """What to send. `message_id` is the hub's id for it: senders pass it where the API
    takes a client reference or idempotency key (so a status webhook or a retried request
    can be matched to it). `template` is a WhatsApp-style approved template
    (`{"name", "language", "parameters"?}`) for sends outside a messaging window."""

    text: str
    message_id: str | None = None
    attachments: tuple[Attachment, ...] = ()
    template: Mapping[str, Any] | None = None
    # The connection's webhook URL on the hub, for APIs that take a per-message status
    # callback (Twilio StatusCallback, Telnyx webhook_url, Plivo url): statuses come back through ingest.
    status_callback: str | None = None


@dataclass(frozen=True)
class DeliveryStatus:
    """A provider's delivery report, read from its status webhook."""

    provider_message_id: str
    state: DeliveryState
    reason: str | None = None  # the provider's error code and words, for `failed`


class Refused(Exception):
    """The platform's rules forbid this send now (outside a messaging window, a channel
    that cannot be answered publicly...): the API answers 409 with `code`, `detail` and
    `hints` (what would be allowed: the template to use, when the window closed)."""

    def __init__(self, code: str, detail: str, **hints: Any) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.hints = hints


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
        except (ValueError, RecursionError):
            # RecursionError: nesting deeper than the parser's stack, which no send API answers.
            return None


class SendFailure(Exception):
    """The provider did not take the message."""

    transient: ClassVar[bool] = False

    def __init__(self, code: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail[:500]
        # Seconds the provider asked us to wait (Retry-After, a rate-limit reset header).
        self.retry_after = retry_after


class PermanentFailure(SendFailure):
    """The provider refused the message (bad recipient, revoked token...): a retry cannot help."""


class TransientFailure(SendFailure):
    """The provider or the network failed (5xx, 429, timeout): the same send may succeed later."""

    transient = True


class OutcomeUnknown(TransientFailure):
    """The request reached the provider but its answer did not come back (a read timeout, a
    reset): the message may have been sent. Auto-replies and notifications retry it
    (at-least-once); a staff answer is never sent again blindly."""

    def __init__(self, detail: str) -> None:
        super().__init__("outcome_unknown", detail)


class Sender(ABC):
    provider: ClassVar[str]
    base_url: ClassVar[str]
    credentials_model: ClassVar[type[BaseModel]]

    @abstractmethod
    def address(self, event: CanonicalEvent, visibility: Visibility | None = None) -> dict[str, str] | None:
        """The reply's addressing for something the customer sent, or None when this event
        cannot be answered through the provider's send API, or not with that visibility
        (`public`: a comment or post reply; `private`: a direct message; None: the
        channel's own kind of reply)."""

    def prepare(
        self, address: Mapping[str, str], message: OutboundMessage, inbound_at: datetime, now: datetime
    ) -> dict[str, str]:
        """The address to send `message` to now, given when the customer last wrote on this
        channel (`inbound_at`); raise Refused when the platform's rules forbid it."""
        return dict(address)

    def contact_address(self, channel: str, to: str, credentials: BaseModel) -> dict[str, str] | None:
        """Where a first message on `channel` to `to` goes (a campaign reaching out, not a reply):
        `to` is an E.164 phone or the platform's chat / user id, and the sender is the connection's
        own, named by its outbound credentials (a number, a Messaging Service, a Page, a bot). None:
        this provider cannot start a conversation on that channel, or the credentials name no sender."""
        return None

    @abstractmethod
    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        """The HTTP request that sends `message` to `address`."""

    @abstractmethod
    def outcome(self, response: ProviderResponse) -> str:
        """The provider's id of the sent message; raise a SendFailure otherwise."""

    def status(self, event: CanonicalEvent) -> DeliveryStatus | None:
        """This provider's event read as a delivery report on something the hub sent (None:
        not one, or the provider sends none)."""
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "credential_fields": list(self.credentials_model.model_json_schema()["properties"]),
            "required": self.credentials_model.model_json_schema().get("required", []),
        }


def failure_for_status(response: ProviderResponse, code: str, detail: str) -> SendFailure:
    """429 and 5xx are worth retrying (after the provider's Retry-After, when it sent one);
    any other refusal is final."""
    if response.status == 429 or response.status >= 500:
        return TransientFailure(code, detail, retry_after=retry_after(response.headers))
    return PermanentFailure(code, detail)


MAX_RETRY_AFTER_SECONDS = 15 * 60  # longer waits than this are capped: the queue retries sooner


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from RFC 9110 `Retry-After` (seconds or an HTTP date), else from a
    reset header in epoch seconds (`x-rate-limit-reset` on X, `x-ratelimit-reset`
    elsewhere); None when there is none. Header names are expected lower-cased."""
    now = now or datetime.now(UTC)
    value = headers.get("retry-after")
    seconds: float | None = None
    if value:
        value = value.strip()
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
                seconds = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() - now.timestamp()
            except (TypeError, ValueError, IndexError):
                seconds = None
    if seconds is None:
        for name in ("x-rate-limit-reset", "x-ratelimit-reset"):
            reset = headers.get(name)
            if reset and reset.strip().isdigit():
                epoch = int(reset.strip())
                # Epoch seconds when large; some APIs send seconds-until-reset in the same header.
                seconds = epoch - now.timestamp() if epoch > 10**9 else float(epoch)
                break
    if seconds is None or seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def clip(text: str, limit: int = MAX_REPLY_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
