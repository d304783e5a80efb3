"""Discord: a follow-up message to an interaction (a slash command, a button, a modal).

API (https://discord.com/developers/docs/interactions/receiving-and-responding#create-followup-message,
https://discord.com/developers/docs/resources/webhook#execute-webhook,
https://discord.com/developers/docs/resources/message#create-message (nonce, enforce_nonce),
https://discord.com/developers/docs/topics/rate-limits,
https://discord.com/developers/docs/topics/opcodes-and-status-codes#json):
``POST https://discord.com/api/v10/webhooks/{application_id}/{interaction_token}?wait=true``
with JSON ``content`` (at most 2,000 characters) -> 200 with the message object (``id``);
without ``wait=true`` Discord answers 204 and no id. The interaction token authorises the
call (no bot token) and is valid for 15 minutes after the interaction. ``nonce`` (the hub's
message id, at most 25 characters) with ``enforce_nonce: true`` asks Discord to return the
message already created with that nonce instead of creating another (documented on Create
Message; the answering pipeline still keeps one send per message id itself). Mentions are
not parsed (``allowed_mentions.parse = []``): an answer never pings @everyone or a role.
Errors are ``{"code", "message", "errors"?}`` (10015 Unknown Webhook, 50027 Invalid Webhook
Token, 50035 Invalid Form Body...); 429 carries ``retry_after`` (seconds, float) in the body
and ``Retry-After`` / ``X-RateLimit-Reset-After`` headers.

Address: an application command, a button (or other component) or a modal submit
(``interaction.created`` with a ``token``) is answered in the channel where it happened: in a
server channel that is ``public``, in a DM with the bot ``private``. Autocomplete and PING
cannot be followed up. No status: Discord sends the hub no webhook about its messages (the
200 with the message is the confirmation).

Outbound credentials: ``application_id``, the application (client) id from the Developer
Portal: follow-ups go to that application's webhook (an interaction of another application
fails as ``discord_10015`` Unknown Webhook). No bot token is needed or kept.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound.base import (
    OutboundMessage,
    OutboundRequest,
    PermanentFailure,
    ProviderResponse,
    Refused,
    Sender,
    TransientFailure,
    Visibility,
    clip,
    failure_for_status,
    retry_after,
)

# Discord's limits: an interaction token's life, a message's content, a nonce's length.
TOKEN_LIFETIME = timedelta(minutes=15)
MAX_CONTENT_CHARS = 2000
MAX_NONCE_CHARS = 25
DISCORD_EPOCH_MS = 1420070400000
_FOLLOWABLE = ("application_command", "message_component", "modal_submit")
_SNOWFLAKE = re.compile(r"^\d{1,20}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.-]{1,1000}$")
# JSON error codes meaning the interaction can no longer be followed up.
_TOKEN_GONE = {10015: "Unknown Webhook", 50027: "Invalid Webhook Token"}


class DiscordCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The application id (a snowflake): follow-ups are authorised by the interaction token.
    application_id: str = Field(pattern=r"^\d{17,20}$")


def _snowflake(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    return value if isinstance(value, str) and _SNOWFLAKE.fullmatch(value) else None


def snowflake_time(snowflake: str) -> datetime:
    """When Discord created the object with this id (its high bits: ms since 2015-01-01)."""
    return datetime.fromtimestamp(((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000, tz=UTC)


def nonce_for(message_id: str) -> str:
    """The hub's message id as a Discord nonce: itself when short enough, else a stable digest."""
    if len(message_id) <= MAX_NONCE_CHARS:
        return message_id
    return hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:MAX_NONCE_CHARS]


class DiscordSender(Sender):
    provider: ClassVar[str] = "discord"
    base_url: ClassVar[str] = "https://discord.com"
    credentials_model: ClassVar[type[BaseModel]] = DiscordCredentials

    def address(self, event: CanonicalEvent, visibility: Visibility | None = None) -> dict[str, str] | None:
        attributes = event.attributes
        if event.type != "interaction.created" or attributes.get("interaction_type") not in _FOLLOWABLE:
            return None
        token = attributes.get("token")
        if not (isinstance(token, str) and _TOKEN.fullmatch(token)):
            return None
        in_server = _snowflake(attributes.get("guild_id")) is not None
        if visibility == ("private" if in_server else "public"):
            return None  # a follow-up is seen by whoever sees the channel: no other kind exists here
        address = {"interaction_token": token}
        interaction = _snowflake(event.provider_event_id)
        if interaction:
            address["interaction_id"] = interaction
        return address

    def prepare(
        self, address: Mapping[str, str], message: OutboundMessage, inbound_at: datetime, now: datetime
    ) -> dict[str, str]:
        issued = inbound_at
        interaction = address.get("interaction_id")
        if interaction and _SNOWFLAKE.fullmatch(interaction):
            issued = min(issued, snowflake_time(interaction))  # Discord's own clock, when earlier
        expired_at = issued + TOKEN_LIFETIME
        if now >= expired_at:
            raise Refused(
                "discord_token_expired",
                "a Discord interaction can be followed up for 15 minutes only; this one's token has expired",
                expired_at=expired_at.isoformat(),
                hint="the customer has to run the command again (or write in the channel) to be answered",
            )
        if len(message.text) > MAX_CONTENT_CHARS:
            raise Refused(
                "discord_message_too_long",
                f"a Discord message is at most {MAX_CONTENT_CHARS} characters",
                limit=MAX_CONTENT_CHARS,
            )
        return dict(address)

    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        assert isinstance(credentials, DiscordCredentials)
        if message.attachments:
            raise PermanentFailure("attachments_unsupported", "Discord follow-ups carry text only here")
        body: dict[str, Any] = {"content": clip(message.text, MAX_CONTENT_CHARS), "allowed_mentions": {"parse": []}}
        if message.message_id:
            body["nonce"] = nonce_for(message.message_id)
            body["enforce_nonce"] = True
        application = quote(credentials.application_id, safe="")
        token = quote(address["interaction_token"], safe="")
        return OutboundRequest(
            method="POST",
            url=f"{base_url}/api/v10/webhooks/{application}/{token}?wait=true",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        )

    def outcome(self, response: ProviderResponse) -> str:
        payload = response.json()
        if response.status == 200 and isinstance(payload, dict):
            message_id = _snowflake(payload.get("id"))
            if message_id:
                return message_id
        if response.status == 429:
            wait = payload.get("retry_after") if isinstance(payload, dict) else None
            seconds = float(wait) if isinstance(wait, (int, float)) and not isinstance(wait, bool) else None
            if seconds is None:
                reset_after = response.headers.get("x-ratelimit-reset-after", "")
                try:
                    seconds = float(reset_after)
                except ValueError:
                    seconds = retry_after(response.headers)
            scope = "global" if isinstance(payload, dict) and payload.get("global") is True else "route"
            raise TransientFailure("discord_rate_limited", f"{scope} rate limit", retry_after=seconds)
        if isinstance(payload, dict) and isinstance(payload.get("code"), int) and not isinstance(payload["code"], bool):
            code = payload["code"]
            detail = str(payload.get("message", ""))
            if code in _TOKEN_GONE:
                detail += " (the interaction token expired after 15 minutes, or is not this application's)"
            elif isinstance(payload.get("errors"), dict):
                detail += ": " + json.dumps(payload["errors"], separators=(",", ":"))[:300]
            raise failure_for_status(response, f"discord_{code}", detail)
        if 200 <= response.status < 300:
            raise PermanentFailure("unexpected_response", "Discord answered without a message id")
        raise failure_for_status(response, f"http_{response.status}", response.body[:200].decode("utf-8", "replace"))
