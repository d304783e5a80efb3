"""Slack Web API ``chat.postMessage``: replies in the thread of the customer's message.

API (https://docs.slack.dev/reference/methods/chat.postMessage,
https://docs.slack.dev/apis/web-api/rate-limits): ``POST https://slack.com/api/chat.postMessage``
with a JSON body (``channel``, ``text``, optional ``thread_ts``) and the bot token as
``Authorization: Bearer xoxb-...`` (JSON bodies must carry the token in that header).
Slack answers HTTP 200 for both outcomes: ``{"ok": true, "channel", "ts", "message"}`` or
``{"ok": false, "error": "channel_not_found"}``; only rate limiting also changes the status
(HTTP 429 with ``Retry-After`` and ``"error": "ratelimited"``).

Address: a message or an app mention is answered in its thread: ``thread_ts`` is the
event's ``thread_ts`` when it already is a thread reply, else its own ``ts`` (Slack asks
for the parent's ts, never a reply's). A slash command (``channel_id``, no message ts) is
answered in the channel, unthreaded; the bot must be a member of that channel (else
``not_in_channel``). No address for bot messages (``bot_id``, ``bot_message``, or the
installing bot user itself: answering them would loop), for messages with a system
subtype (joins, topic changes, deletions...), for edits and for other interactions.

Text is sent as plain text: ``&``, ``<`` and ``>`` are escaped as Slack's formatting
reference requires (https://api.slack.com/reference/surfaces/formatting#escaping), so a
reply cannot carry ``<!channel>`` or a disguised link. Attachments would need Slack's file
upload flow (three calls): refused as ``attachments_unsupported``. chat.postMessage takes no
idempotency key: one send per hub message is the answering pipeline's to keep.

Status (https://docs.slack.dev/reference/events/message/bot_message): Slack sends no
delivery reports, but a bot subscribed to message events receives its own messages back: a
``message.sent`` event with ``bot_id`` (posted by the installing bot user, when the event
names one) is read as ``delivered`` for its ``ts``, the id ``outcome`` returned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound.base import (
    DeliveryStatus,
    OutboundMessage,
    OutboundRequest,
    PermanentFailure,
    ProviderResponse,
    Sender,
    TransientFailure,
    Visibility,
    clip,
    failure_for_status,
    retry_after,
)

# Message subtypes a person writes; every other subtype is a system or bot message.
_PERSON_SUBTYPES = (None, "file_share", "thread_broadcast")
# ok:false errors a retry can fix: rate limits and Slack's own temporary failures.
TRANSIENT_ERRORS = frozenset({"ratelimited", "rate_limited", "service_unavailable", "internal_error"})
_TS = re.compile(r"^\d{1,12}\.\d{1,9}$")
_ERROR = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class SlackCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A bot token (chat:write scope), as shown under "OAuth & Permissions".
    bot_token: str = Field(pattern=r"^xoxb-[A-Za-z0-9-]+$", min_length=20, max_length=255)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _ts(value: Any) -> str | None:
    return value if isinstance(value, str) and _TS.fullmatch(value) else None


def _bot_users(attributes: Mapping[str, Any]) -> set[str]:
    authorizations = attributes.get("authorizations")
    return (
        {
            a["user_id"]
            for a in authorizations
            if isinstance(a, dict) and a.get("is_bot") is True and isinstance(a.get("user_id"), str)
        }
        if isinstance(authorizations, list)
        else set()
    )


def escape(text: str) -> str:
    """Slack's three control characters as entities (api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_SLACK_ID = re.compile(r"^[UWCGD][A-Z0-9]{2,20}$")


class SlackSender(Sender):
    provider: ClassVar[str] = "slack"
    base_url: ClassVar[str] = "https://slack.com"
    credentials_model: ClassVar[type[BaseModel]] = SlackCredentials

    def address(self, event: CanonicalEvent, visibility: Visibility | None = None) -> dict[str, str] | None:
        if visibility == "public":  # private messages only on this channel
            return None
        attributes = event.attributes
        if event.type == "interaction.created":
            if attributes.get("interaction_type") != "slash_command":
                return None
            channel = _text(attributes.get("channel_id"))
            return {"channel": channel} if channel else None
        if event.type not in ("message.received", "mention.created"):
            return None
        if attributes.get("subtype") not in _PERSON_SUBTYPES or attributes.get("bot_id"):
            return None
        user = _text(attributes.get("user"))
        if user is None or user in _bot_users(attributes):
            return None
        channel = _text(attributes.get("channel"))
        thread = _ts(attributes.get("thread_ts")) or _ts(attributes.get("ts"))
        if channel is None or thread is None:
            return None
        return {"channel": channel, "thread_ts": thread}

    def contact_address(self, channel: str, to: str, credentials: BaseModel) -> dict[str, str] | None:
        """A user id (``U...``/``W...``: chat.postMessage opens the app's direct message with them) or
        a channel id (``C...``/``G...``/``D...``)."""
        target = to.strip()
        return {"channel": target} if channel == "slack" and _SLACK_ID.fullmatch(target) else None

    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        text = message.text
        assert isinstance(credentials, SlackCredentials)
        if message.attachments:
            raise PermanentFailure(
                "attachments_unsupported", "Slack replies carry text only here (files need an upload)"
            )
        body = {"channel": address["channel"], "text": escape(clip(text))}
        if address.get("thread_ts"):
            body["thread_ts"] = address["thread_ts"]
        return OutboundRequest(
            method="POST",
            url=f"{base_url}/api/chat.postMessage",
            headers={
                "Authorization": f"Bearer {credentials.bot_token}",
                "Content-Type": "application/json; charset=utf-8",
                "Accept": "application/json",
            },
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        )

    def outcome(self, response: ProviderResponse) -> str:
        payload = response.json()
        if response.status == 429 or response.status >= 500:
            error = payload.get("error") if isinstance(payload, dict) else None
            code = f"slack_{error}" if isinstance(error, str) and _ERROR.fullmatch(error) else f"http_{response.status}"
            retry = response.headers.get("retry-after")
            raise TransientFailure(
                code,
                f"retry after {retry}s" if retry else f"HTTP {response.status}",
                retry_after=retry_after(response.headers),
            )
        if isinstance(payload, dict) and payload.get("ok") is True:
            ts = _ts(payload.get("ts"))
            if ts is None:
                raise PermanentFailure("unexpected_response", "Slack answered ok without a message ts")
            return ts
        if isinstance(payload, dict) and payload.get("ok") is False:
            error = payload.get("error")
            error = error if isinstance(error, str) and _ERROR.fullmatch(error) else "unknown_error"
            detail = error
            if isinstance(payload.get("needed"), str):
                detail += f" (needed scope: {payload['needed']})"
            if error in TRANSIENT_ERRORS:
                raise TransientFailure(f"slack_{error}", detail)
            raise PermanentFailure(f"slack_{error}", detail)
        if 200 <= response.status < 300:
            raise PermanentFailure("unexpected_response", "Slack answered without an ok field")
        raise failure_for_status(response, f"http_{response.status}", response.body[:200].decode("utf-8", "replace"))

    def status(self, event: CanonicalEvent) -> DeliveryStatus | None:
        """The bot's own message coming back through the Events API: delivered."""
        attributes = event.attributes
        if event.type != "message.sent" or not attributes.get("bot_id"):
            return None
        if attributes.get("subtype") not in (None, "bot_message", "thread_broadcast"):
            return None
        user, bots = _text(attributes.get("user")), _bot_users(attributes)
        if user is not None and bots and user not in bots:
            return None  # another app's bot in the same channel
        ts = _ts(attributes.get("ts"))
        return DeliveryStatus(ts, "delivered") if ts else None
