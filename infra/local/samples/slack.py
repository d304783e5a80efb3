"""Sample webhooks for `slack`: Events API callbacks modelled on Slack's documented
`event_callback` examples and a slash command, signed with the v0 signing scheme."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from infra.local.samples.base import SignedRequest

PROVIDER = "slack"
SAMPLES: tuple[str, ...] = ("message", "app-mention", "slash-command")
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def demo_credentials() -> dict[str, str]:
    return {"signing_secret": secrets.token_hex(16)}  # Slack signing secrets are 32 hex digits


def slack_signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    return "v0=" + hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def _slack_id(prefix: str, n: int = 10) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(n))


def _ts(now: datetime) -> str:
    return f"{int(now.timestamp())}.{secrets.randbelow(10**6):06d}"


def _callback(event: dict[str, Any], team: str, now: datetime) -> dict[str, Any]:
    return {
        "token": "XXYYZZ",
        "team_id": team,
        "api_app_id": _slack_id("A"),
        "event": event,
        "type": "event_callback",
        "event_id": _slack_id("Ev"),
        "event_time": int(now.timestamp()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team,
                "user_id": _slack_id("U"),
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + secrets.token_urlsafe(24),
    }


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    team, channel, user = _slack_id("T"), _slack_id("C"), _slack_id("U")
    timestamp = str(int(now.timestamp()))
    if sample == "slash-command":
        body = urlencode(
            {
                "token": "gIkuvaNzQIHg97ATvDxqgjtO",
                "team_id": team,
                "team_domain": "example",
                "enterprise_id": "",
                "enterprise_name": "",
                "channel_id": channel,
                "channel_name": "support",
                "user_id": user,
                "user_name": "ana",
                "command": "/ticket",
                "text": "status 4471",
                "api_app_id": _slack_id("A"),
                "is_enterprise_install": "false",
                "response_url": f"https://hooks.slack.com/commands/{team}/{secrets.randbelow(10**12)}/{secrets.token_hex(12)}",
                "trigger_id": f"{secrets.randbelow(10**13)}.{secrets.randbelow(10**13)}.{secrets.token_hex(16)}",
            }
        ).encode("ascii")
        content_type = "application/x-www-form-urlencoded"
    else:
        ts = _ts(now)
        if sample == "message":
            event = {
                "type": "message",
                "channel": channel,
                "user": user,
                "text": "Is the API down for anyone else?",
                "ts": ts,
                "event_ts": ts,
                "channel_type": "channel",
                "client_msg_id": secrets.token_hex(16),
            }
        else:  # app-mention
            event = {
                "type": "app_mention",
                "user": user,
                "text": "<@U0LAN0Z89> can you open a ticket for this?",
                "ts": ts,
                "channel": channel,
                "event_ts": ts,
                "thread_ts": _ts(now),
            }
        body = json.dumps(_callback(event, team, now)).encode("utf-8")
        content_type = "application/json"
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(credentials["signing_secret"], timestamp, body),
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
    return SignedRequest("POST", url, headers, body)


def build_status(
    credentials: dict[str, str], url: str, now: datetime, sent: dict[str, Any], state: str, reason: str | None
) -> SignedRequest:
    """Slack sends no delivery reports; the Events API gives the bot its own message back (a
    `message` event with `bot_id`, posted by the installing bot user): that echo is
    `delivered`. Nothing reports `sent`, `read` or `failed` (Slack answered the send itself)."""
    if state != "delivered":
        raise ValueError(f"Slack reports no {state!r}: only the bot's own message coming back (delivered)")
    team, bot_user = _slack_id("T"), _slack_id("U")
    details = sent.get("details") or {}
    event: dict[str, Any] = {
        "type": "message",
        "text": sent["text"],
        "ts": sent["message_id"],
        "user": bot_user,
        "bot_id": _slack_id("B"),
        "app_id": _slack_id("A"),
        "channel": sent["to"],
        "event_ts": sent["message_id"],
        "channel_type": "channel",
    }
    if details.get("thread_ts"):
        event["thread_ts"] = details["thread_ts"]
    callback = _callback(event, team, now)
    callback["authorizations"][0]["user_id"] = bot_user
    body = json.dumps(callback).encode("utf-8")
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(credentials["signing_secret"], timestamp, body),
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
    return SignedRequest("POST", url, headers, body)
