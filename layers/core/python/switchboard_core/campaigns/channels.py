"""A campaign's outbound actions on the providers: messages through the existing outbound senders,
calls through the Twilio Calls API (inline TwiML) and the Vonage Voice API (inline NCCO).

Each executor picks the tenant's connection (the action's `connection`, else the tenant's oldest
connection of a provider that serves the channel, has outbound credentials, and names a sender
for it), addresses the contact cold (`Sender.contact_address`: the connection's own number,
Page, bot, never a reply address), sends, and returns what the provider accepted as `Delivered`.
Failures are the outbound ones: `TransientFailure` (429, 5xx, network; `retry_after` from the
provider's headers) for the caller to retry with backoff, `OutcomeUnknown` (the request went out,
its answer did not come back: never resent blindly), `PermanentFailure` (no connection, no
credentials, no sender, no address, a 4xx) for `Outcome(failed)`.

Status callbacks point at the connection's webhook on the hub (`public_base_url`), so delivery
reports and call outcomes come back through ingest as `message.status_updated` and `call.*`
events; `call_outcome` reads the latter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ValidationError

from switchboard_core.campaigns.runs import ConnectCallAction, PlaceCallAction, SendMessageAction
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore, webhook_url
from switchboard_core.errors import HubError, NotFound
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound import (
    OutboundMessage,
    PermanentFailure,
    ReplyAddress,
    TransientFailure,
    Transport,
    api_base_url,
    get_sender,
    send,
)
from switchboard_core.outbound.base import is_e164

# Channel -> the providers that can start a conversation on it, in the order a connection is
# looked for when the step names none.
CHANNEL_PROVIDERS: dict[str, tuple[str, ...]] = {
    "sms": ("twilio", "telnyx", "vonage", "plivo", "bandwidth"),
    "whatsapp": ("meta", "twilio"),
    "messenger": ("meta",),
    "telegram": ("telegram",),
    "slack": ("slack",),
}
# Providers whose calls the hub places (Telnyx: docs/decisions.md, "Campaign calls").
CALL_PROVIDERS: tuple[str, ...] = ("twilio", "vonage")

CallResult = Literal["answered", "not_answered"]


@dataclass(frozen=True)
class Delivered:
    provider: str
    provider_message_id: str  # Twilio SM.../CA..., Vonage uuid, Telegram message id...
    connection: str


@dataclass
class ChannelDeps:
    connections: ConnectionStore
    credentials: CredentialStore  # the outbound credentials' prefix
    transport: Transport
    # The hub's public base URL: status callbacks and call callbacks go to the connection's
    # webhook under it. None: messages go without a per-message callback; calls are refused.
    public_base_url: str | None = None


class CallOutcome(NamedTuple):
    """What a provider's `call.*` report says of a call the hub placed."""

    provider: str
    call_id: str  # Twilio CallSid, Vonage uuid: Delivered.provider_message_id of the call
    result: CallResult
    digits: str | None  # keypad input of a place_call with gather (None: none pressed)


# ------------------------------------------------------------------------------- messages


def send_message(action: SendMessageAction, tenant: str, deps: ChannelDeps) -> Delivered:
    providers = CHANNEL_PROVIDERS.get(action.channel)
    if providers is None:
        raise PermanentFailure("channel_unsupported", f"campaigns cannot send on {action.channel!r}")
    connection, credentials, fields = _sender(action.channel, action.to, action.connection, providers, tenant, deps)
    message = OutboundMessage(
        text=action.text,
        message_id=action.idempotency_key,  # a client reference where the API takes one
        status_callback=_webhook(deps, connection),
    )
    address = ReplyAddress(provider=connection.provider, connection=connection.id, fields=fields)
    provider_id = send(address, message, credentials, deps.transport)
    return Delivered(provider=connection.provider, provider_message_id=provider_id, connection=connection.id)


def _sender(
    channel: str,
    to: str,
    named: str | None,
    providers: tuple[str, ...],
    tenant: str,
    deps: ChannelDeps,
) -> tuple[Connection, dict[str, str], dict[str, str]]:
    """(connection, its outbound credentials, the contact's address on it)."""
    if not to:
        raise PermanentFailure("no_address", f"the contact has no {channel} address")
    candidates = _connections(
        named,
        providers,
        tenant,
        deps,
        goes_through=f"{channel} goes through {', '.join(providers)}",
        none_found=f"the tenant has no {', '.join(providers)} connection with outbound credentials for {channel}",
    )
    first_problem: PermanentFailure | None = None
    for connection in candidates:
        sender = get_sender(connection.provider)
        assert sender is not None  # CHANNEL_PROVIDERS names senders only
        credentials = _credentials(connection, deps)
        validated = _validated(sender.credentials_model, credentials)
        fields = sender.contact_address(channel, to, validated)
        if fields is not None:
            return connection, credentials, fields
        first_problem = first_problem or _no_address(connection, channel, validated)
    assert first_problem is not None
    raise first_problem


# A well-formed address per channel: when the connection reaches it but not the contact's, the
# contact's address is the problem; when it reaches neither, the connection names no sender.
_PROBE_ADDRESSES = {
    "sms": "+15005550006",
    "whatsapp": "+15005550006",
    "messenger": "1234567890",
    "telegram": "1234567890",
    "slack": "U0123456789",
}
_SENDER_FIELDS = {
    "twilio": "from_number (or messaging_service_sid for sms)",
    "telnyx": "from_number",
    "vonage": "from_number",
    "plivo": "from_number",
    "bandwidth": "from_number",
}


def _no_address(connection: Connection, channel: str, credentials: BaseModel) -> PermanentFailure:
    """Why `connection` cannot reach the contact (whose address is never echoed)."""
    sender = get_sender(connection.provider)
    assert sender is not None
    if sender.contact_address(channel, _PROBE_ADDRESSES.get(channel, ""), credentials) is not None:
        return PermanentFailure(
            "no_address", f"the contact's {channel} address is not one {connection.provider} can send to"
        )
    field = _SENDER_FIELDS.get(connection.provider)
    if connection.provider == "meta":
        field = "whatsapp_phone_number_id" if channel == "whatsapp" else "page_id"
    return PermanentFailure(
        "no_sender",
        f"connection {connection.id} ({connection.provider}) names no sender for {channel}"
        + (f": set {field} in its outbound credentials" if field else ""),
    )


# ---------------------------------------------------------------------------------- calls


def place_call(action: PlaceCallAction, tenant: str, deps: ChannelDeps) -> Delivered:
    """Call the contact and say (text to speech) or play (a recording) the step's message; with
    `gather`, read keypad digits, which come back as the call's outcome (`call_outcome`)."""
    _callable(action.to)
    connection, credentials, webhook = _call_connection(action.connection, tenant, deps)
    gather = action.gather
    if connection.provider == "twilio":
        from switchboard_core.calls import twiml

        document = twiml.outbound_message(
            say=action.say,
            play_url=action.recording_url,
            gather_digits=gather.num_digits if gather else None,
            gather_timeout=gather.timeout_seconds if gather else 0,
            gather_action=twiml.outbound_action_url(webhook, twiml.OUTBOUND_GATHER),
        )
        call_id = _create_call(connection, credentials, action.to, document, webhook, deps)
    else:
        from switchboard_core.calls import ncco

        actions = ncco.outbound_message(
            say=action.say,
            stream_url=action.recording_url,
            gather_digits=gather.num_digits if gather else None,
            gather_timeout=gather.timeout_seconds if gather else 0,
            input_url=webhook,
        )
        call_id = _create_call(connection, credentials, action.to, actions, webhook, deps)
    return Delivered(provider=connection.provider, provider_message_id=call_id, connection=connection.id)


def connect_call(action: ConnectCallAction, responder_phone: str, tenant: str, deps: ChannelDeps) -> Delivered:
    """Call the contact and, once they answer, bridge them to `responder_phone` (the caller id
    is the connection's own number)."""
    _callable(action.to)
    if not is_e164(responder_phone):
        raise PermanentFailure("no_responder", "the responder has no phone number (E.164) to connect")
    connection, credentials, webhook = _call_connection(action.connection, tenant, deps)
    if connection.provider == "twilio":
        from switchboard_core.calls import twiml
        from switchboard_core.outbound import twilio

        assert isinstance(credentials, twilio.TwilioCredentials)
        document = twiml.outbound_connect(responder_phone, caller_id=credentials.from_number)
        call_id = _create_call(connection, credentials, action.to, document, webhook, deps)
    else:
        from switchboard_core.calls import ncco, twiml
        from switchboard_core.outbound import vonage

        assert isinstance(credentials, vonage.VonageCredentials)
        actions = ncco.outbound_connect(
            responder_phone, caller_id=credentials.from_number, message=twiml.CONNECTING_MESSAGE
        )
        call_id = _create_call(connection, credentials, action.to, actions, webhook, deps)
    return Delivered(provider=connection.provider, provider_message_id=call_id, connection=connection.id)


def _create_call(
    connection: Connection, credentials: BaseModel, to: str, instructions: Any, webhook: str, deps: ChannelDeps
) -> str:
    """Place the call through the connection's provider (Twilio's Calls API with inline TwiML,
    Vonage's Voice API with an inline NCCO); the provider's call id."""
    if connection.provider == "twilio":
        from switchboard_core.outbound import twilio

        assert isinstance(credentials, twilio.TwilioCredentials)
        request = twilio.create_call_request(api_base_url("twilio"), credentials, to, instructions, webhook)
        return twilio.create_call_outcome(deps.transport(request))
    from switchboard_core.outbound import vonage

    assert isinstance(credentials, vonage.VonageCredentials)
    request = vonage.create_call_request(api_base_url("vonage"), credentials, to, instructions, webhook)
    return vonage.create_call_outcome(deps.transport(request))


def _callable(to: str) -> None:
    if not is_e164(to):  # the contact's number is never echoed
        raise PermanentFailure("no_address", "the contact has no phone number (E.164) to call")


def _call_connection(named: str | None, tenant: str, deps: ChannelDeps) -> tuple[Connection, BaseModel, str]:
    """(connection, its validated outbound credentials, its webhook on the hub) for a call."""
    if not deps.public_base_url:
        raise PermanentFailure(
            "not_configured", "calls need the hub's public URL (PUBLIC_BASE_URL): their outcome comes back there"
        )
    candidates = _connections(
        named,
        CALL_PROVIDERS,
        tenant,
        deps,
        goes_through=f"calls go through {', '.join(CALL_PROVIDERS)}",
        none_found=f"the tenant has no {' or '.join(CALL_PROVIDERS)} connection with outbound credentials for calls",
    )
    for connection in candidates:
        sender = get_sender(connection.provider)
        assert sender is not None
        credentials = _validated(sender.credentials_model, _credentials(connection, deps))
        # Twilio calls need a caller id; Vonage picks one of the application's numbers without it.
        if connection.provider == "vonage" or getattr(credentials, "from_number", None):
            webhook = webhook_url(deps.public_base_url, connection.provider, connection.id)
            return connection, credentials, webhook
    raise PermanentFailure(
        "no_sender",
        f"connection {candidates[0].id} (twilio) names no number to call from: set from_number in its outbound "
        "credentials",
    )


# ------------------------------------------------------------------------------- outcomes


def call_outcome(event: CanonicalEvent) -> CallOutcome | None:
    """(provider, call id, answered / not_answered, digits) from a provider's report on a call the
    hub placed: Twilio's <Gather> result (answered, with its digits) and final status callback
    (completed: answered; busy, no-answer, failed, canceled: not answered); Vonage's input result
    and final status events. None for anything else (another status, an inbound call, a leg of
    live call patching), so the caller ignores it."""
    attributes = event.attributes
    if event.provider == "twilio":
        from switchboard_core.outbound.twilio import CALL_ANSWERED_STATUSES, CALL_UNANSWERED_STATUSES

        sid = _scalar(attributes.get("CallSid"))
        direction = (_scalar(attributes.get("Direction")) or "").lower()
        if sid is None or direction != "outbound-api" or "DialCallStatus" in attributes:
            return None
        if attributes.get("outbound") == "gather" and event.type == "call.in_progress":
            return CallOutcome("twilio", sid, "answered", _scalar(attributes.get("Digits")))
        status = (_scalar(attributes.get("CallStatus")) or "").lower()
        if status in CALL_ANSWERED_STATUSES:
            return CallOutcome("twilio", sid, "answered", None)
        if status in CALL_UNANSWERED_STATUSES:
            return CallOutcome("twilio", sid, "not_answered", None)
        return None
    if event.provider == "vonage":
        from switchboard_core.calls.ncco import LEG_OF_PARAM
        from switchboard_core.outbound.vonage import CALL_ANSWERED_STATUSES, CALL_UNANSWERED_STATUSES

        call_uuid = _scalar(attributes.get("uuid"))
        if call_uuid is None or LEG_OF_PARAM in attributes:
            return None
        dtmf = attributes.get("dtmf")
        if isinstance(dtmf, dict) and "status" not in attributes:
            return CallOutcome("vonage", call_uuid, "answered", _scalar(dtmf.get("digits")))
        if (_scalar(attributes.get("direction")) or "").lower() != "outbound":
            return None
        status = (_scalar(attributes.get("status")) or "").lower()
        if status in CALL_ANSWERED_STATUSES:
            return CallOutcome("vonage", call_uuid, "answered", None)
        if status in CALL_UNANSWERED_STATUSES:
            return CallOutcome("vonage", call_uuid, "not_answered", None)
    return None


# -------------------------------------------------------------------------------- helpers


def _aws_errors() -> tuple[type[Exception], ...]:
    """What AWS raises when a lookup fails (a throttle, a network error): imported when one
    happens (an `except` clause is evaluated only then)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def _unavailable(what: str, error: Exception) -> TransientFailure:
    """A connection or credentials lookup failed before any request went to the provider: the
    send certainly did not happen, so it is retried (never left pending)."""
    return TransientFailure(f"{what}_unavailable", f"{type(error).__name__}: {error}")


def _named_connection(connection_id: str, tenant: str, deps: ChannelDeps) -> Connection:
    try:
        connection: Connection | None = deps.connections.get(connection_id)
    except NotFound:
        connection = None
    except _aws_errors() as error:
        raise _unavailable("connections", error) from error
    if connection is None or connection.tenant != tenant:
        raise PermanentFailure("connection_gone", f"connection {connection_id} does not exist in tenant {tenant}")
    if connection.outbound_configured_at is None:
        raise PermanentFailure("not_configured", f"connection {connection_id} has no outbound credentials")
    return connection


def _connections(
    named: str | None, providers: tuple[str, ...], tenant: str, deps: ChannelDeps, *, goes_through: str, none_found: str
) -> list[Connection]:
    """The connections to try, in order: the step's named one (refused unless it is one of
    `providers`: "...; <goes_through>"), else `_candidates` (none: not_configured, `none_found`)."""
    if named:
        connection = _named_connection(named, tenant, deps)
        if connection.provider not in providers:
            raise PermanentFailure(
                "wrong_connection",
                f"connection {connection.id} is a {connection.provider} connection; {goes_through}",
            )
        return [connection]
    candidates = _candidates(providers, tenant, deps)
    if not candidates:
        raise PermanentFailure("not_configured", none_found)
    return candidates


def _candidates(providers: tuple[str, ...], tenant: str, deps: ChannelDeps) -> list[Connection]:
    """The tenant's connections of these providers with outbound credentials: by provider
    preference, then oldest first (as notifications choose)."""
    try:
        listed = deps.connections.list(tenant)
    except _aws_errors() as error:
        raise _unavailable("connections", error) from error
    found = [c for c in listed if c.provider in providers and c.outbound_configured_at is not None]
    return sorted(found, key=lambda c: (providers.index(c.provider), c.created_at, c.id))


def _credentials(connection: Connection, deps: ChannelDeps) -> dict[str, str]:
    try:
        credentials = deps.credentials.get(connection.id).current
    except HubError as error:  # Secrets Manager unreachable (503): worth retrying
        raise TransientFailure("credentials_unavailable", error.message) from None
    except _aws_errors() as error:
        raise _unavailable("credentials", error) from error
    return credentials


def _validated(model: type[BaseModel], credentials: Mapping[str, Any]) -> BaseModel:
    try:
        return model.model_validate(dict(credentials))
    except ValidationError:
        raise PermanentFailure("invalid_credentials", "the stored outbound credentials are not valid") from None


def _webhook(deps: ChannelDeps, connection: Connection) -> str | None:
    if not deps.public_base_url:
        return None
    return webhook_url(deps.public_base_url, connection.provider, connection.id)


def _scalar(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None
