"""X (Twitter) Account Activity API.

Contract (docs/providers/x.md has the sources):

* CRC handshake: ``GET ?crc_token=...`` -> 200 JSON
  ``{"response_token": "sha256=<base64 HMAC-SHA256(consumer secret, crc_token)>"}``. X sends
  it at registration and periodically; any current credential set can answer, so the
  current one (the first) is used.
* Signature: ``x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(consumer secret,
  raw body)>``. No timestamp: replays are bounded by deduplication only; X sends no
  delivery id, so the delivery id is a digest of the body and items carry their own ids.

Normalisation (envelope ``for_user_id`` = the subscribed account; one event per item):

* ``tweet_create_events[]``: a tweet by someone else -> ``mention.created``; a tweet by the
  account itself -> ``content.published``. Author = ``SocialHandle(platform="x", id,
  handle=screen_name)``; conversation_key ``x:tweet:{in_reply_to_status_id or id}``.
* ``direct_message_events[]`` ``type: message_create`` -> ``message.received`` (``message.sent``
  when the account is the sender); user lookup from the envelope's ``users`` map;
  conversation_key ``x:dm:{for_user_id}:{other user id}``.
* ``favorite_events[]`` -> ``reaction.created``.
* Every other ``*_events`` array (follow, block, mute, typing, read, revoke...) ->
  ``provider.notification`` with the item in attributes.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime
from hashlib import sha256
from typing import Any, ClassVar

from switchboard_core.events import Channel, Contact, EventDraft, SocialHandle
from switchboard_core.providers._common import (
    body_digest_id,
    clean_str,
    dig,
    draft,
    from_millis,
    header,
    load_json,
    query_value,
    refuse_invalid_models,
    scalar_str,
    secret_bytes,
    stable_hash,
    text_or_none,
)
from switchboard_core.providers.base import (
    Credentials,
    HandshakeRefused,
    HttpResponse,
    MalformedPayload,
    ProviderAdapter,
    SignatureError,
    WebhookRequest,
    constant_time_equal,
)

SIGNATURE_HEADER = "x-twitter-webhooks-signature"
_MAX_CRC_TOKEN = 2048


def crc_response_token(consumer_secret: str, crc_token: str) -> str:
    digest = hmac.new(consumer_secret.encode("utf-8"), crc_token.encode("utf-8"), sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode("ascii")


def _tweet_time(tweet: dict[str, Any]) -> datetime | None:
    stamp = from_millis(tweet.get("timestamp_ms"))
    if stamp is not None:
        return stamp
    created = tweet.get("created_at")
    if isinstance(created, str) and len(created) <= 64:
        try:  # "Wed Oct 10 20:19:24 +0000 2018"
            return datetime.strptime(created.strip(), "%a %b %d %H:%M:%S %z %Y")
        except ValueError:
            return None
    return None


class XAdapter(ProviderAdapter):
    name: ClassVar[str] = "x"
    channel: ClassVar[Channel] = Channel.SOCIAL
    title: ClassVar[str] = "X (Twitter) Account Activity API"
    credential_fields: ClassVar[tuple[str, ...]] = ("consumer_secret",)
    supports_handshake: ClassVar[bool] = True

    # --------------------------------------------------------------- handshake
    def handshake(self, request: WebhookRequest, credentials: Sequence[Credentials]) -> HttpResponse:
        token = query_value(request, "crc_token")
        if token is None:
            raise MalformedPayload("an X CRC check needs crc_token")
        if len(token) > _MAX_CRC_TOKEN:
            raise MalformedPayload("crc_token is too long")
        for credential_set in credentials or ():
            secret = credential_set.get("consumer_secret") if isinstance(credential_set, Mapping) else None
            if isinstance(secret, str) and secret:
                return HttpResponse.json({"response_token": crc_response_token(clean_str(secret), token)})
        raise HandshakeRefused("the connection has no consumer_secret to answer the CRC with")

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        signature = header(request, SIGNATURE_HEADER)
        if signature is None:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        secret = secret_bytes(credentials, "consumer_secret")
        if secret is None:
            raise SignatureError("the connection has no consumer_secret to verify with")
        expected = "sha256=" + base64.b64encode(hmac.new(secret, request.body, sha256).digest()).decode("ascii")
        if not constant_time_equal(expected, signature):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")

    def delivery_id(self, request: WebhookRequest) -> str:
        return body_digest_id(request.body)

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        payload = load_json(request)
        if not isinstance(payload, dict):
            raise MalformedPayload("expected a JSON object with for_user_id and *_events")
        account = scalar_str(payload.get("for_user_id"))
        users = payload.get("users")
        users = users if isinstance(users, dict) else {}
        envelope = {k: v for k, v in payload.items() if not k.endswith("_events") and k not in ("users", "apps")}
        events: list[EventDraft] = []
        kinds = [key for key in payload if isinstance(key, str) and key.endswith("_events")]
        if not kinds:
            raise MalformedPayload("no *_events array in the payload")
        for kind in kinds:
            items = payload[kind]
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise MalformedPayload(f"{kind} must be an array of objects")
            for item in items:
                if kind == "tweet_create_events":
                    events.append(self._tweet(account, item, envelope))
                elif kind == "direct_message_events" and item.get("type") == "message_create":
                    events.append(self._direct_message(account, item, users, envelope))
                elif kind == "favorite_events":
                    events.append(self._favorite(account, item, envelope))
                else:
                    events.append(self._notification(account, kind, item, envelope))
        if not events:
            # Only empty arrays: still a delivery, kept as one notification.
            events.append(
                draft(
                    type="provider.notification",
                    provider_event_id=f"x:empty:{stable_hash(payload)}",
                    attributes={"kind": "x.empty", **envelope},
                )
            )
        return events

    @staticmethod
    def _user_handle(user: Any) -> SocialHandle | None:
        user_id = scalar_str(dig(user, "id_str")) or scalar_str(dig(user, "id"))
        screen_name = text_or_none(dig(user, "screen_name"))
        if user_id is None and screen_name is None:
            return None
        return SocialHandle(platform="x", id=user_id, handle=screen_name)

    def _tweet(self, account: str | None, tweet: dict[str, Any], envelope: dict[str, Any]) -> EventDraft:
        tweet_id = scalar_str(tweet.get("id_str")) or scalar_str(tweet.get("id"))
        author = tweet.get("user")
        handle = self._user_handle(author)
        own = account is not None and handle is not None and handle.id == account
        text = text_or_none(dig(tweet, "extended_tweet", "full_text")) or text_or_none(tweet.get("text"))
        thread = scalar_str(tweet.get("in_reply_to_status_id_str")) or tweet_id
        return draft(
            type="content.published" if own else "mention.created",
            provider_event_id=f"tweet:{tweet_id}" if tweet_id else f"x:tweet:{stable_hash(tweet)}",
            occurred_at=_tweet_time(tweet),
            contact=Contact(name=text_or_none(dig(author, "name")), handles=[handle] if handle else []),
            conversation_key=f"x:tweet:{thread}" if thread else None,
            text=text,
            attributes={**envelope, **{k: v for k, v in tweet.items() if k not in ("text",)}},
        )

    def _direct_message(
        self, account: str | None, item: dict[str, Any], users: dict[str, Any], envelope: dict[str, Any]
    ) -> EventDraft:
        create = item.get("message_create")
        create = create if isinstance(create, dict) else {}
        sender = scalar_str(create.get("sender_id"))
        recipient = scalar_str(dig(create, "target", "recipient_id"))
        outbound = account is not None and sender == account
        other = recipient if outbound else sender
        user = users.get(other) if isinstance(other, str) else None
        handle = self._user_handle(user) or (SocialHandle(platform="x", id=other) if other else None)
        message_id = scalar_str(item.get("id"))
        return draft(
            type="message.sent" if outbound else "message.received",
            provider_event_id=f"dm:{message_id}" if message_id else f"x:dm:{stable_hash(item)}",
            occurred_at=from_millis(item.get("created_timestamp")),
            contact=Contact(name=text_or_none(dig(user, "name")), handles=[handle] if handle else []),
            conversation_key=f"x:dm:{account or '-'}:{other}" if other else None,
            text=text_or_none(dig(create, "message_data", "text")),
            attributes={
                **envelope,
                **{k: v for k, v in item.items() if k != "message_create"},
                "sender_id": sender,
                "recipient_id": recipient,
                "message_data": {k: v for k, v in (dig(create, "message_data") or {}).items() if k != "text"}
                if isinstance(dig(create, "message_data"), dict)
                else None,
                **{k: v for k, v in create.items() if k not in ("sender_id", "target", "message_data")},
            },
        )

    def _favorite(self, account: str | None, item: dict[str, Any], envelope: dict[str, Any]) -> EventDraft:
        favorite_id = scalar_str(item.get("id"))
        handle = self._user_handle(item.get("user"))
        tweet_id = scalar_str(dig(item, "favorited_status", "id_str")) or scalar_str(
            dig(item, "favorited_status", "id")
        )
        return draft(
            type="reaction.created",
            provider_event_id=f"favorite:{favorite_id}" if favorite_id else f"x:favorite:{stable_hash(item)}",
            occurred_at=from_millis(item.get("timestamp_ms")),
            contact=Contact(name=text_or_none(dig(item, "user", "name")), handles=[handle] if handle else []),
            conversation_key=f"x:tweet:{tweet_id}" if tweet_id else None,
            attributes={**envelope, "reaction": "like", **item},
        )

    def _notification(
        self, account: str | None, kind: str, item: dict[str, Any], envelope: dict[str, Any]
    ) -> EventDraft:
        item_id = scalar_str(item.get("id")) or scalar_str(item.get("id_str"))
        return draft(
            type="provider.notification",
            provider_event_id=f"{kind}:{item_id}:{stable_hash(item)[:16]}"
            if item_id
            else f"{kind}:{stable_hash(item)}",
            occurred_at=from_millis(item.get("created_timestamp")) or from_millis(item.get("timestamp_ms")),
            attributes={"kind": f"x.{kind}", **envelope, "data": item},
        )
