"""Discord: the interactions endpoint (slash commands, message components, modals).

Contract (docs/providers/discord.md has the sources):

* Signature: ``X-Signature-Ed25519`` (hex, 64 bytes) over ``X-Signature-Timestamp`` + raw
  body, with the application's public key (hex, 32 bytes) - verified with
  ``cryptography``'s Ed25519PublicKey. Discord documents no freshness window; the hub
  bounds the timestamp (unix seconds) to 5 minutes either way as well, since it is signed.
* PING (``type: 1``) normalises to no events, so the ingest path answers it with
  ``success_response`` = ``{"type": 1}`` (PONG).
* Every other interaction is answered ``{"type": 5}`` (DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE;
  see below), which
  acknowledges within Discord's 3 s and leaves 15 minutes for a follow-up through the
  interaction token; message components get ``{"type": 6}`` (DEFERRED_UPDATE_MESSAGE, no
  loading state). Autocomplete (type 4) is answered with an empty choice list (type 8).
* Dedupe: the interaction ``id`` (delivery id and provider_event_id).

Normalisation: types 2 (application command), 3 (message component), 4 (autocomplete) and
5 (modal submit) -> ``interaction.created``; the user (``member.user`` in guilds, ``user``
in DMs) as ``SocialHandle(platform="discord", id, handle=username)``; conversation_key
``discord:{guild_id or "dm"}:{channel_id}``; text = the command line (``/name opt=value``) or
the component's custom_id; ``token`` is kept (consumers need it to follow up).

Credentials: ``public_key`` (hex). A connection may also hold ``demo_private_key`` (hex
seed) - only the local runtime's demo credentials do, so that `switchboard send discord`
can sign; it is accepted only when it is the private half of ``public_key`` and is never
used for verifying.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from switchboard_core.errors import HubError
from switchboard_core.events import Channel, Contact, EventDraft, SocialHandle
from switchboard_core.providers._common import (
    aware,
    dig,
    draft,
    header,
    load_json,
    parsed_body,
    refuse_invalid_models,
    scalar_str,
    text_or_none,
)
from switchboard_core.providers.base import (
    Credentials,
    HttpResponse,
    MalformedPayload,
    ProviderAdapter,
    SignatureError,
    WebhookRequest,
)

# The connection's key, loaded once rather than per webhook (a bad key raises, and is not kept).
_public_key = functools.lru_cache(maxsize=256)(Ed25519PublicKey.from_public_bytes)

SIGNATURE_HEADER = "X-Signature-Ed25519"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
DEMO_KEY_FIELD = "demo_private_key"
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
_KINDS = {
    APPLICATION_COMMAND: "application_command",
    MESSAGE_COMPONENT: "message_component",
    AUTOCOMPLETE: "application_command_autocomplete",
    MODAL_SUBMIT: "modal_submit",
}
_HEX = frozenset("0123456789abcdefABCDEF")
# The answer's JSON per interaction type, written once.
_DEFERRED = json.dumps({"type": 5})  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
_RESPONSES: dict[float, str] = {
    PING: json.dumps({"type": 1}),  # PONG
    AUTOCOMPLETE: json.dumps({"type": 8, "data": {"choices": []}}),
    MESSAGE_COMPONENT: json.dumps({"type": 6}),  # DEFERRED_UPDATE_MESSAGE
}


def _hex_bytes(value: Any, length: int) -> bytes | None:
    if not isinstance(value, str) or len(value) != 2 * length or not set(value) <= _HEX:
        return None
    return bytes.fromhex(value)


def public_key_hex(private_seed_hex: str) -> str:
    seed = _hex_bytes(private_seed_hex, 32)
    if seed is None:
        raise ValueError("an Ed25519 private key seed is 64 hex digits")
    key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _command_line(data: Any) -> str | None:
    """'/name sub opt=value' from an application command's data."""
    name = text_or_none(dig(data, "name"))
    if name is None:
        return None
    parts = ["/" + name]
    options = dig(data, "options")
    for _ in range(8):  # subcommand groups nest at most twice; bound the walk anyway
        if not isinstance(options, list):
            break
        nested = None
        for option in options:
            if not isinstance(option, dict):
                continue
            option_name = text_or_none(option.get("name")) or "?"
            if isinstance(option.get("options"), list) and "value" not in option:
                parts.append(option_name)
                nested = option["options"]
            elif "value" in option:
                value = option["value"]
                parts.append(f"{option_name}={value if isinstance(value, str) else json.dumps(value)}")
        options = nested
    return " ".join(parts)


class DiscordAdapter(ProviderAdapter):
    name: ClassVar[str] = "discord"
    channel: ClassVar[Channel] = Channel.SOCIAL
    title: ClassVar[str] = "Discord interactions"
    credential_fields: ClassVar[tuple[str, ...]] = ("public_key",)
    replay_window: ClassVar[timedelta | None] = timedelta(minutes=5)

    def validate_credentials(self, credentials: Mapping[str, Any]) -> dict[str, str]:
        extra = {}
        if isinstance(credentials, Mapping) and DEMO_KEY_FIELD in credentials:
            extra[DEMO_KEY_FIELD] = credentials[DEMO_KEY_FIELD]
            credentials = {k: v for k, v in credentials.items() if k != DEMO_KEY_FIELD}
        checked = super().validate_credentials(credentials)
        if _hex_bytes(checked["public_key"], 32) is None:
            raise HubError(
                "public_key must be the application's Ed25519 public key: 64 hex digits",
                status=400,
                code="invalid_credentials",
            )
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(checked["public_key"]))
        except ValueError:
            raise HubError("public_key is not an Ed25519 public key", status=400, code="invalid_credentials") from None
        if extra:
            seed = extra[DEMO_KEY_FIELD]
            try:
                derived = public_key_hex(seed) if isinstance(seed, str) else None
            except ValueError:
                derived = None
            if derived is None or derived != checked["public_key"].lower():
                raise HubError(
                    f"{DEMO_KEY_FIELD} is only accepted as the private half of public_key",
                    status=400,
                    code="invalid_credentials",
                )
            checked[DEMO_KEY_FIELD] = seed
        return checked

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        signature_hex = header(request, SIGNATURE_HEADER)
        if signature_hex is None:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        stamp = header(request, TIMESTAMP_HEADER)
        if stamp is None:
            raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
        signature = _hex_bytes(signature_hex, 64)
        if signature is None:
            raise SignatureError(f"{SIGNATURE_HEADER} is not 64 hex-encoded bytes")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            raise SignatureError(f"{TIMESTAMP_HEADER} is not a unix timestamp")
        assert self.replay_window is not None
        if abs(aware(now).timestamp() - int(stamp)) > self.replay_window.total_seconds():
            raise SignatureError(f"{TIMESTAMP_HEADER} is outside the 5-minute window")
        key_bytes = _hex_bytes(credentials.get("public_key") if isinstance(credentials, Mapping) else None, 32)
        if key_bytes is None:
            raise SignatureError("the connection has no usable public_key to verify with")
        try:
            _public_key(key_bytes).verify(signature, stamp.encode("ascii") + request.body)
        except (InvalidSignature, ValueError):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the body") from None

    def delivery_id(self, request: WebhookRequest) -> str:
        payload = load_json(request)
        interaction_id = scalar_str(payload.get("id")) if isinstance(payload, dict) else None
        if interaction_id is None:
            raise MalformedPayload("an interaction needs an id")
        return f"interaction:{interaction_id}"

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        payload = load_json(request)
        if not isinstance(payload, dict):
            raise MalformedPayload("expected a JSON interaction object")
        kind = payload.get("type")
        if isinstance(kind, bool) or not isinstance(kind, int):
            raise MalformedPayload("interaction 'type' must be an integer")
        if kind == PING:
            return []
        interaction_id = scalar_str(payload.get("id"))
        if interaction_id is None:
            raise MalformedPayload("an interaction needs an id")
        user = (
            dig(payload, "member", "user") if isinstance(dig(payload, "member", "user"), dict) else payload.get("user")
        )
        user_id = scalar_str(dig(user, "id"))
        username = text_or_none(dig(user, "username"))
        guild = scalar_str(payload.get("guild_id"))
        channel = scalar_str(payload.get("channel_id")) or scalar_str(dig(payload, "channel", "id"))
        data = payload.get("data")
        if kind in (APPLICATION_COMMAND, AUTOCOMPLETE):
            text = _command_line(data)
        else:
            text = text_or_none(dig(data, "custom_id"))
        attributes = {
            "interaction_type": _KINDS.get(kind, f"type_{kind}"),
            **{k: v for k, v in payload.items() if k not in ("id",)},
        }
        return [
            draft(
                type="interaction.created",
                provider_event_id=interaction_id,
                occurred_at=None,
                contact=Contact(
                    name=text_or_none(dig(user, "global_name")),
                    handles=[SocialHandle(platform="discord", id=user_id, handle=username)]
                    if user_id or username
                    else [],
                ),
                conversation_key=f"discord:{guild or 'dm'}:{channel}" if channel else None,
                text=text,
                attributes=attributes,
            )
        ]

    # ---------------------------------------------------------------- response
    def success_response(self, request: WebhookRequest) -> HttpResponse:
        kind = parsed_body(request).get("type")
        body = _RESPONSES.get(kind, _DEFERRED) if isinstance(kind, int | float) else _DEFERRED
        return HttpResponse(status=200, body=body, content_type="application/json")
