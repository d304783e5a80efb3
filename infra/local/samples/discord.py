"""Sample interactions for `discord`: a slash command and a button press modelled on
Discord's documented interaction objects, signed with Ed25519 like Discord signs them.

demo_credentials() holds the application's `public_key` and, under `demo_private_key`,
the seed of the demo keypair: Discord never hands out its private key, so only demo
connections have it, and the adapter accepts it only as the private half of public_key.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from infra.local.samples.base import SignedRequest, digits

PROVIDER = "discord"
SAMPLES: tuple[str, ...] = ("slash-command", "button")


def demo_credentials() -> dict[str, str]:
    seed = secrets.token_bytes(32)
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"public_key": public.hex(), "demo_private_key": seed.hex()}


def discord_signature(private_key_hex: str, timestamp: str, body: bytes) -> str:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_key_hex))
    return key.sign(timestamp.encode("ascii") + body).hex()


def _snowflake() -> str:
    return digits(19)


def _interaction_id(now: datetime) -> str:
    # A real snowflake for `now`: the sender reads the interaction's time (its token lives 15 minutes) from it.
    return str(((int(now.timestamp() * 1000) - 1420070400000) << 22) | secrets.randbits(22))


def _payload(sample: str, now: datetime) -> dict[str, Any]:
    guild, channel, user_id, app = _snowflake(), _snowflake(), _snowflake(), _snowflake()
    user = {
        "id": user_id,
        "username": "mina.k",
        "global_name": "Mina K",
        "avatar": secrets.token_hex(16),
        "discriminator": "0",
        "public_flags": 0,
    }
    common = {
        "app_permissions": "2248473465835073",
        "application_id": app,
        "authorizing_integration_owners": {"0": guild},
        "channel": {"id": channel, "name": "support", "type": 0, "guild_id": guild},
        "channel_id": channel,
        "context": 0,
        "entitlements": [],
        "guild_id": guild,
        "guild": {"id": guild, "locale": "en-US", "features": []},
        "guild_locale": "en-US",
        "id": _interaction_id(now),
        "locale": "en-US",
        "member": {
            "user": user,
            "roles": [],
            "joined_at": "2023-03-01T09:00:00.000000+00:00",
            "nick": None,
            "permissions": "2248473465835073",
            "flags": 0,
            "mute": False,
            "deaf": False,
        },
        "token": "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(120),
        "version": 1,
    }
    if sample == "slash-command":
        return {
            **common,
            "type": 2,
            "data": {
                "id": _snowflake(),
                "name": "ticket",
                "type": 1,
                "guild_id": guild,
                "options": [
                    {
                        "name": "open",
                        "type": 1,
                        "options": [
                            {"name": "subject", "type": 3, "value": "Cannot log in"},
                            {"name": "priority", "type": 4, "value": 2},
                        ],
                    }
                ],
            },
        }
    return {
        **common,
        "type": 3,
        "message": {
            "id": _snowflake(),
            "channel_id": channel,
            "content": "Was this helpful?",
            "type": 0,
            "author": {"id": app, "username": "Switchboard", "bot": True},
        },
        "data": {"custom_id": "feedback:yes", "component_type": 2},
    }


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    body = json.dumps(_payload(sample, now), separators=(",", ":")).encode("utf-8")
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "X-Signature-Timestamp": timestamp,
        "X-Signature-Ed25519": discord_signature(credentials["demo_private_key"], timestamp, body),
        "User-Agent": "Discord-Interactions/1.0 (+https://discord.com)",
    }
    return SignedRequest("POST", url, headers, body)
