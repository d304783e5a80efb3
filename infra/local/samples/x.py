"""Sample webhooks for `x` (Account Activity API): payloads modelled on X's documented
`tweet_create_events` / `direct_message_events` examples, signed like X signs them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

from infra.local.samples.base import SignedRequest, compact_json, digits, epoch_millis

PROVIDER = "x"
SAMPLES: tuple[str, ...] = ("mention", "direct-message")
ACCOUNT = {"id": 3001969357, "id_str": "3001969357", "name": "Switchboard Demo", "screen_name": "switchboard_demo"}


def demo_credentials() -> dict[str, str]:
    # X consumer secrets are 50 alphanumeric characters.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return {"consumer_secret": "".join(secrets.choice(alphabet) for _ in range(50))}


def x_signature(consumer_secret: str, body: bytes) -> str:
    digest = hmac.new(consumer_secret.encode("utf-8"), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode("ascii")


def _tweet_time(now: datetime) -> str:
    return now.strftime("%a %b %d %H:%M:%S +0000 %Y")


def _payload(sample: str, now: datetime) -> dict[str, Any]:
    user_id = digits(18)
    user = {
        "id": int(user_id),
        "id_str": user_id,
        "name": "Jordan Rivera",
        "screen_name": "jrivera_" + digits(4),
        "location": "Portland, OR",
        "protected": False,
        "verified": False,
        "followers_count": 312,
        "friends_count": 198,
        "created_at": "Thu Mar 05 17:12:44 +0000 2015",
    }
    if sample == "mention":
        tweet_id = digits(19)
        return {
            "for_user_id": ACCOUNT["id_str"],
            "user_has_blocked": False,
            "tweet_create_events": [
                {
                    "created_at": _tweet_time(now),
                    "id": int(tweet_id),
                    "id_str": tweet_id,
                    "text": "@switchboard_demo my order #4471 still hasn't shipped, can you help?",
                    "source": '<a href="https://mobile.twitter.com" rel="nofollow">Twitter Web App</a>',
                    "truncated": False,
                    "in_reply_to_status_id": None,
                    "in_reply_to_status_id_str": None,
                    "in_reply_to_user_id": ACCOUNT["id"],
                    "in_reply_to_user_id_str": ACCOUNT["id_str"],
                    "in_reply_to_screen_name": ACCOUNT["screen_name"],
                    "user": user,
                    "is_quote_status": False,
                    "entities": {
                        "hashtags": [],
                        "urls": [],
                        "symbols": [],
                        "user_mentions": [
                            {**{k: ACCOUNT[k] for k in ("screen_name", "name", "id", "id_str")}, "indices": [0, 17]}
                        ],
                    },
                    "favorited": False,
                    "retweeted": False,
                    "filter_level": "low",
                    "lang": "en",
                    "timestamp_ms": str(epoch_millis(now)),
                }
            ],
        }
    message_id = digits(19)
    return {
        "for_user_id": ACCOUNT["id_str"],
        "direct_message_events": [
            {
                "type": "message_create",
                "id": message_id,
                "created_timestamp": str(epoch_millis(now)),
                "message_create": {
                    "target": {"recipient_id": ACCOUNT["id_str"]},
                    "sender_id": user_id,
                    "message_data": {
                        "text": "Hi! Can I change the delivery address?",
                        "entities": {"hashtags": [], "symbols": [], "user_mentions": [], "urls": []},
                    },
                },
            }
        ],
        "users": {
            ACCOUNT["id_str"]: {
                "id": ACCOUNT["id_str"],
                "created_timestamp": "1422556069340",
                "name": ACCOUNT["name"],
                "screen_name": ACCOUNT["screen_name"],
                "protected": False,
                "verified": False,
            },
            user_id: {
                "id": user_id,
                "created_timestamp": "1425575564000",
                "name": user["name"],
                "screen_name": user["screen_name"],
                "protected": False,
                "verified": False,
            },
        },
    }


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    body = compact_json(_payload(sample, now))
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "X-Twitter-Webhooks-Signature": x_signature(credentials["consumer_secret"], body),
    }
    return SignedRequest("POST", url, headers, body)


def build_status(
    credentials: dict[str, str], url: str, now: datetime, sent: dict[str, Any], state: str, reason: str | None
) -> SignedRequest:
    """X sends no delivery reports; Account Activity echoes what the account published. A
    reply (or post) the sandbox accepted comes back as the account's own `tweet_create_events`
    item and a DM as its own `direct_message_events` item (both: `delivered`); a DM's `read`
    is the customer's `direct_message_mark_read_events` item naming it. Nothing reports
    `sent` or `failed` (X answered the send itself)."""
    details = sent.get("details") or {}
    dm = details.get("kind") == "dm"
    if not (state == "delivered" or (state == "read" and dm)):
        raise ValueError(f"X reports no {state!r} for a {'DM' if dm else 'post'}: only its echo (delivered)")
    if state == "read":
        payload: dict[str, Any] = {
            "for_user_id": ACCOUNT["id_str"],
            "direct_message_mark_read_events": [
                {
                    "created_timestamp": str(epoch_millis(now)),
                    "sender_id": sent["to"],
                    "target": {"recipient_id": ACCOUNT["id_str"]},
                    "last_read_event_id": sent["message_id"],
                }
            ],
        }
    elif dm:
        payload = {
            "for_user_id": ACCOUNT["id_str"],
            "direct_message_events": [
                {
                    "type": "message_create",
                    "id": sent["message_id"],
                    "created_timestamp": str(epoch_millis(now)),
                    "message_create": {
                        "target": {"recipient_id": sent["to"]},
                        "sender_id": ACCOUNT["id_str"],
                        "message_data": {
                            "text": sent["text"],
                            "entities": {"hashtags": [], "symbols": [], "user_mentions": [], "urls": []},
                        },
                    },
                }
            ],
            "users": {
                ACCOUNT["id_str"]: {
                    "id": ACCOUNT["id_str"],
                    "name": ACCOUNT["name"],
                    "screen_name": ACCOUNT["screen_name"],
                    "protected": False,
                    "verified": False,
                }
            },
        }
    else:
        in_reply_to = details.get("in_reply_to_tweet_id")
        payload = {
            "for_user_id": ACCOUNT["id_str"],
            "tweet_create_events": [
                {
                    "created_at": _tweet_time(now),
                    "id": int(sent["message_id"]),
                    "id_str": sent["message_id"],
                    "text": sent["text"],
                    "source": '<a href="https://developer.x.com" rel="nofollow">Switchboard</a>',
                    "truncated": False,
                    "in_reply_to_status_id": int(in_reply_to) if in_reply_to else None,
                    "in_reply_to_status_id_str": in_reply_to,
                    "user": {
                        **ACCOUNT,
                        "protected": False,
                        "verified": False,
                        "created_at": "Thu Jan 29 18:54:29 +0000 2015",
                    },
                    "is_quote_status": False,
                    "entities": {"hashtags": [], "urls": [], "symbols": [], "user_mentions": []},
                    "favorited": False,
                    "retweeted": False,
                    "lang": "en",
                    "timestamp_ms": str(epoch_millis(now)),
                }
            ],
        }
    body = compact_json(payload)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "X-Twitter-Webhooks-Signature": x_signature(credentials["consumer_secret"], body),
    }
    return SignedRequest("POST", url, headers, body)
