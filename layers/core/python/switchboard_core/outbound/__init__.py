"""Outbound messages: answering a customer on the channel they wrote from.

`reply_address(event)` says where a reply to a canonical event would go (pure: routing
calls it when a rule asks for an auto-reply); `send(...)` sends a text there through the
provider's API with the connection's outbound credentials. Providers are listed in
SENDERS; docs/providers.md says which channels can be answered.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound.base import (
    Attachment,
    DeliveryStatus,
    OutboundMessage,
    OutboundRequest,
    OutcomeUnknown,
    PermanentFailure,
    ProviderResponse,
    Refused,
    ReplyAddress,
    Sender,
    SendFailure,
    TransientFailure,
    Visibility,
)

# provider -> "module:Class", imported on first use so routing loads only what it answers.
SENDERS: dict[str, str] = {
    "twilio": "switchboard_core.outbound.twilio:TwilioSender",
    "telegram": "switchboard_core.outbound.telegram:TelegramSender",
    "slack": "switchboard_core.outbound.slack:SlackSender",
    "meta": "switchboard_core.outbound.meta:MetaSender",
    "telnyx": "switchboard_core.outbound.telnyx:TelnyxSender",
    "x": "switchboard_core.outbound.x:XSender",
    "discord": "switchboard_core.outbound.discord:DiscordSender",
    "plivo": "switchboard_core.outbound.plivo:PlivoSender",
    "bandwidth": "switchboard_core.outbound.bandwidth:BandwidthSender",
    "zendesk": "switchboard_core.outbound.zendesk:ZendeskSender",
    "intercom": "switchboard_core.outbound.intercom:IntercomSender",
    "freshdesk": "switchboard_core.outbound.freshdesk:FreshdeskSender",
    "hubspot": "switchboard_core.outbound.hubspot:HubSpotSender",
    "vonage": "switchboard_core.outbound.vonage:VonageSender",
}
# Dev and tests only: send to this loopback base URL (+ "/<provider>") instead of the
# provider's API. The local runtime points it at its provider sandbox; the CDK app never sets it.
API_OVERRIDE_ENV = "SWITCHBOARD_PROVIDER_API_URL"

Transport = Callable[[OutboundRequest], ProviderResponse]


@cache
def get_sender(provider: str) -> Sender | None:
    target = SENDERS.get(provider)
    if target is None:
        return None
    import importlib

    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)()


def reply_address(event: CanonicalEvent, visibility: Visibility | None = None) -> ReplyAddress | None:
    sender = get_sender(event.provider)
    if sender is None:
        return None
    fields = sender.address(event, visibility)
    if fields is None:
        return None
    return ReplyAddress(provider=event.provider, connection=event.connection, fields=fields)


def validate_credentials(provider: str, credentials: Mapping[str, Any]) -> dict[str, str]:
    """The provider's outbound credentials, validated (a 400 naming each bad field)."""
    from switchboard_core.errors import HubError, validated

    sender = get_sender(provider)
    if sender is None:
        raise HubError(
            f"{provider} has no outbound sender; providers that can send: {', '.join(SENDERS)}",
            status=400,
            code="outbound_unsupported",
        )
    model = validated(sender.credentials_model, credentials, "credentials")
    return model.model_dump(mode="json", exclude_none=True)


def send(
    address: ReplyAddress,
    message: str | OutboundMessage,
    credentials: Mapping[str, str],
    transport: Transport,
    base_url: str | None = None,
) -> str:
    """Send `message` (or a plain text) to `address`; the provider's message id, or a SendFailure."""
    sender = get_sender(address.provider)
    if sender is None:
        raise PermanentFailure("outbound_unsupported", f"{address.provider} has no outbound sender")
    from pydantic import ValidationError

    try:
        model = sender.credentials_model.model_validate(dict(credentials))
    except ValidationError:
        raise PermanentFailure("invalid_credentials", "the stored outbound credentials are not valid") from None
    root = base_url or _override(address.provider) or sender.base_url
    outgoing = message if isinstance(message, OutboundMessage) else OutboundMessage(text=message)
    return sender.outcome(transport(sender.request(root, address.fields, outgoing, model)))


def delivery_status(event: CanonicalEvent) -> DeliveryStatus | None:
    """A provider's `message.status_updated` event read as a delivery report, when its sender reads them."""
    sender = get_sender(event.provider)
    return sender.status(event) if sender is not None else None


def api_base_url(provider: str) -> str:
    """Where `provider`'s API is: the sandbox on loopback when the override is set, else the provider's."""
    sender = get_sender(provider)
    if sender is None:
        raise PermanentFailure("outbound_unsupported", f"{provider} has no outbound API")
    return _override(provider) or sender.base_url


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _override(provider: str) -> str | None:
    """The sandbox base URL, honoured only on loopback: a stray variable in a deployment
    can never send credentials to another host."""
    override = os.environ.get(API_OVERRIDE_ENV, "").rstrip("/")
    if not override:
        return None
    from urllib.parse import urlsplit

    if urlsplit(override).hostname not in LOOPBACK_HOSTS:
        raise PermanentFailure("bad_override", f"{API_OVERRIDE_ENV} must point at a loopback address")
    return f"{override}/{provider}"


__all__ = [
    "SENDERS",
    "Attachment",
    "DeliveryStatus",
    "OutboundMessage",
    "OutcomeUnknown",
    "PermanentFailure",
    "Refused",
    "ReplyAddress",
    "SendFailure",
    "TransientFailure",
    "Visibility",
    "api_base_url",
    "delivery_status",
    "get_sender",
    "reply_address",
    "send",
    "validate_credentials",
]
