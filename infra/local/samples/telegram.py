"""Sample updates for `telegram`: Update objects modelled on the Bot API's documented
Message / CallbackQuery types, authenticated with the setWebhook secret_token header."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from infra.local.samples.base import SignedRequest, digits, phone

PROVIDER = "telegram"
SAMPLES: tuple[str, ...] = ("message", "contact", "callback-query", "location")
_SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def demo_credentials() -> dict[str, str]:
    # secret_token: 1-256 characters from A-Z, a-z, 0-9, _ and - (setWebhook).
    return {"secret_token": "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(48))}


def _update(sample: str, now: datetime) -> dict[str, Any]:
    user_id = int(digits(10))
    user = {
        "id": user_id,
        "is_bot": False,
        "first_name": "Lena",
        "last_name": "Kraus",
        "username": "lena_k" + digits(3),
        "language_code": "de",
    }
    chat = {"id": user_id, "first_name": "Lena", "last_name": "Kraus", "username": user["username"], "type": "private"}
    bot = {"id": int(digits(10)), "is_bot": True, "first_name": "Switchboard", "username": "switchboard_demo_bot"}
    date = int(now.timestamp())
    update_id = int(digits(9))
    message_id = int(digits(5))
    if sample == "message":
        return {
            "update_id": update_id,
            "message": {
                "message_id": message_id,
                "from": user,
                "chat": chat,
                "date": date,
                "text": "Hallo! Where is my parcel?",
            },
        }
    # The customer answers the bot's question: their own contact, or a shared location (the demo
    # rules send the latter to the nearest field technician).
    answers: dict[str, tuple[str, dict[str, Any]]] = {
        "contact": (
            "Please share your phone number.",
            {"contact": {"phone_number": phone()[1:], "first_name": "Lena", "last_name": "Kraus", "user_id": user_id}},
        ),
        "location": (
            "Where should our technician come?",
            {"location": {"latitude": 37.8044, "longitude": -122.2712, "horizontal_accuracy": 25}},
        ),
    }
    if sample in answers:
        question, answer = answers[sample]
        asked: dict[str, Any] = {"message_id": message_id - 1, "from": bot, "chat": chat, "date": date - 30}
        return {
            "update_id": update_id,
            "message": {
                "message_id": message_id,
                "from": user,
                "chat": chat,
                "date": date,
                "reply_to_message": {**asked, "text": question},
                **answer,
            },
        }
    return {
        "update_id": update_id,
        "callback_query": {
            "id": digits(19),
            "from": user,
            "chat_instance": "-" + digits(19),
            "data": "order:4471:track",
            "message": {
                "message_id": message_id,
                "from": bot,
                "chat": chat,
                "date": date - 60,
                "text": "What would you like to do?",
                "reply_markup": {"inline_keyboard": [[{"text": "Track order", "callback_data": "order:4471:track"}]]},
            },
        },
    }


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    body = json.dumps(_update(sample, now), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": credentials["secret_token"]}
    return SignedRequest("POST", url, headers, body)
