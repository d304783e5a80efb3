"""X API v2: a public reply to a mention, or a direct message.

API (https://docs.x.com/x-api/posts/create-post,
https://docs.x.com/xdks/python/reference/xdk.direct_messages.client (create_by_participant_id),
https://docs.x.com/x-api/fundamentals/response-codes-and-errors,
https://docs.x.com/x-api/fundamentals/rate-limits,
https://docs.x.com/resources/fundamentals/authentication/oauth-2-0/authorization-code):

* a reply: ``POST https://api.x.com/2/tweets`` JSON ``{"text", "reply": {"in_reply_to_tweet_id"}}``
  -> 201 ``{"data": {"id", "text"}}``; X threads it under the mention and puts the author's
  @handle in front of it;
* a DM: ``POST https://api.x.com/2/dm_conversations/with/{participant_id}/messages`` JSON
  ``{"text"}`` -> 201 ``{"data": {"dm_conversation_id", "dm_event_id"}}``.

Both take a user-context OAuth 2.0 access token of the business account as
``Authorization: Bearer`` (scopes ``tweet.read tweet.write users.read dm.read dm.write``;
``offline.access`` to be given a refresh token). Errors are RFC 7807 problem details
(``{"type", "title", "detail", "status"}``, 400s with an ``errors`` array of
``{"message", "parameters"}``); 429 carries ``x-rate-limit-reset`` (epoch seconds).
Neither endpoint takes a client reference or idempotency key (X refuses an identical tweet
text as a duplicate with 403, no more): one send per hub message is the pipeline's to keep.

Address: a mention (``mention.created``) is answered publicly by default (a reply to its
tweet) or privately (a DM to its author); a DM (``message.received``) only privately. No
address for the account's own tweets and DMs, likes and notifications.

Status: X sends no delivery reports, but Account Activity echoes what the account itself
published: its own tweet (``content.published``, ``id_str`` = the reply's id) and its own
DM (``message.sent``, ``id`` = the ``dm_event_id``) are read as ``delivered``; a
``direct_message_mark_read_events`` item by the customer marks the DM it names as ``read``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound.base import (
    DeliveryStatus,
    OutboundMessage,
    OutboundRequest,
    PermanentFailure,
    ProviderResponse,
    Refused,
    Sender,
    Visibility,
    failure_for_status,
)

_ID = re.compile(r"^\d{1,20}$")
_SLUG = re.compile(r"[^a-z0-9]+")
# X's limits: a post's weighted length (twitter-text v3), a DM's characters.
MAX_TWEET_WEIGHT = 280
MAX_DM_CHARS = 10_000
# twitter-text v3 (https://github.com/twitter/twitter-text/blob/master/config/v3.json): a code
# point weighs 1 in these ranges (Latin, general punctuation...), 2 elsewhere (CJK, emoji);
# every URL weighs 23 (t.co).
_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_URL_WEIGHT = 23
# Parts of an emoji sequence X counts as one emoji: variation selector 16 and skin tones.
_WEIGHTLESS = frozenset({0xFE0F, *range(0x1F3FB, 0x1F400)})


class XCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The business account's OAuth 2.0 user-context access token (Authorization Code with PKCE),
    # scopes tweet.read tweet.write users.read dm.read dm.write.
    access_token: str = Field(pattern=r"^[A-Za-z0-9._~+/=-]+$", min_length=20, max_length=512)


def _id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


def tweet_weight(text: str) -> int:
    """The weighted length X counts against a post's 280 (twitter-text v3, emoji sequences
    approximated: a zero-width joiner weighs 1 and each joined emoji 2)."""
    text = unicodedata.normalize("NFC", text)
    weight = 0
    for part_index, part in enumerate(_URL.split(text)):
        if part_index:
            weight += _URL_WEIGHT
        for char in part:
            point = ord(char)
            if point in _WEIGHTLESS:
                continue
            weight += 1 if any(low <= point <= high for low, high in _LIGHT_RANGES) else 2
    return weight


class XSender(Sender):
    provider: ClassVar[str] = "x"
    base_url: ClassVar[str] = "https://api.x.com"
    credentials_model: ClassVar[type[BaseModel]] = XCredentials

    def address(self, event: CanonicalEvent, visibility: Visibility | None = None) -> dict[str, str] | None:
        attributes = event.attributes
        if event.type == "mention.created":
            if visibility == "private":
                author = _id(_dig(attributes, "user", "id_str")) or _id(_dig(attributes, "user", "id"))
                return {"kind": "dm", "participant_id": author} if author else None
            tweet = _id(attributes.get("id_str")) or _id(attributes.get("id"))
            return {"kind": "reply", "in_reply_to_tweet_id": tweet} if tweet else None
        if event.type == "message.received" and visibility != "public":
            sender = _id(attributes.get("sender_id"))
            account = _id(attributes.get("for_user_id"))
            if sender is None or sender == account:
                return None
            return {"kind": "dm", "participant_id": sender}
        return None

    def prepare(
        self, address: Mapping[str, str], message: OutboundMessage, inbound_at: datetime, now: datetime
    ) -> dict[str, str]:
        # X has no messaging window; what it does refuse is a post longer than 280 (weighted).
        if address.get("kind") == "reply":
            weight = tweet_weight(message.text)
            if weight > MAX_TWEET_WEIGHT:
                raise Refused(
                    "x_post_too_long",
                    f"a reply on X is at most {MAX_TWEET_WEIGHT} weighted characters; this one is {weight}",
                    limit=MAX_TWEET_WEIGHT,
                    weight=weight,
                    hint='shorten it, or answer privately with "visibility": "private"',
                )
        elif len(message.text) > MAX_DM_CHARS:
            raise Refused(
                "x_dm_too_long",
                f"a direct message on X is at most {MAX_DM_CHARS} characters",
                limit=MAX_DM_CHARS,
            )
        return dict(address)

    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        assert isinstance(credentials, XCredentials)
        if message.attachments:
            # Media goes through the separate upload endpoint first (a second call per send).
            raise PermanentFailure("attachments_unsupported", "X replies carry text only here (media needs an upload)")
        if not message.text.strip():
            raise PermanentFailure("empty_text", "X refuses an empty post or direct message")
        kind = address.get("kind")
        if kind == "reply":
            url = f"{base_url}/2/tweets"
            body: dict[str, Any] = {
                "text": message.text,
                "reply": {"in_reply_to_tweet_id": address["in_reply_to_tweet_id"]},
            }
        elif kind == "dm":
            url = f"{base_url}/2/dm_conversations/with/{quote(address['participant_id'], safe='')}/messages"
            body = {"text": message.text}
        else:
            raise PermanentFailure("bad_address", f"an X address is a reply or a dm, not {kind!r}")
        return OutboundRequest(
            method="POST",
            url=url,
            headers={
                "Authorization": f"Bearer {credentials.access_token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        )

    def outcome(self, response: ProviderResponse) -> str:
        payload = response.json()
        data = payload.get("data") if isinstance(payload, dict) else None
        if 200 <= response.status < 300 and isinstance(data, dict):
            sent = _id(data.get("id")) or _id(data.get("dm_event_id"))
            if sent:
                return sent
        if isinstance(payload, dict) and ("title" in payload or "errors" in payload or "detail" in payload):
            raise failure_for_status(response, _problem_code(payload, response.status), _problem_detail(payload))
        if 200 <= response.status < 300:
            raise PermanentFailure("unexpected_response", "X answered without a post id or dm_event_id")
        raise failure_for_status(response, f"http_{response.status}", response.body[:200].decode("utf-8", "replace"))

    def status(self, event: CanonicalEvent) -> DeliveryStatus | None:
        attributes = event.attributes
        if event.type == "content.published":  # the account's own tweet: our reply, published
            tweet = _id(attributes.get("id_str")) or _id(attributes.get("id"))
            return DeliveryStatus(tweet, "delivered") if tweet else None
        if event.type == "message.sent":  # the account's own DM
            dm = _id(attributes.get("id"))
            return DeliveryStatus(dm, "delivered") if dm else None
        if event.type == "provider.notification" and attributes.get("kind") == "x.direct_message_mark_read_events":
            data = attributes.get("data")
            reader = _id(_dig(data, "sender_id"))
            last_read = _id(_dig(data, "last_read_event_id"))
            if last_read and reader and reader != _id(attributes.get("for_user_id")):
                return DeliveryStatus(last_read, "read")
        return None


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _problem_code(payload: Mapping[str, Any], status: int) -> str:
    """`x_<problem type>` from the problem's type URI (…/2/problems/usage-capped -> x_usage_capped),
    or from its title when the type is about:blank (Forbidden -> x_forbidden)."""
    kind = payload.get("type")
    name = kind.rstrip("/").rsplit("/", 1)[-1] if isinstance(kind, str) and "/problems/" in kind else None
    if name is None and isinstance(payload.get("title"), str):
        name = payload["title"]
    slug = _SLUG.sub("_", name.lower()).strip("_")[:48] if isinstance(name, str) else ""
    return f"x_{slug}" if slug else f"http_{status}"


def _problem_detail(payload: Mapping[str, Any]) -> str:
    """The problem's own words: its detail, then each error's message (a 400 names the parameter)."""
    parts = [str(payload["detail"])] if isinstance(payload.get("detail"), str) else []
    errors = payload.get("errors")
    for error in errors if isinstance(errors, list) else []:
        message = error.get("message") if isinstance(error, dict) else None
        if isinstance(message, str) and message not in parts:
            parts.append(message)
    if not parts and isinstance(payload.get("title"), str):
        parts.append(payload["title"])
    return "; ".join(parts) or "X refused the request"
