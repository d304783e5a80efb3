"""Telegram replies: the address read from real updates (recorded and the local samples, through
the adapter), the sendMessage request, and every kind of answer, against the loopback sandbox
over real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.provider_apis import demo_outbound_credentials
from infra.local.samples import build_sample, demo_credentials
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound import (
    PermanentFailure,
    Refused,
    ReplyAddress,
    TransientFailure,
    delivery_status,
    reply_address,
    send,
)
from switchboard_core.outbound.base import Attachment, OutboundMessage, ProviderResponse
from switchboard_core.outbound.telegram import TelegramCredentials, TelegramSender
from switchboard_core.outbound.transport import http_transport
from tests.builders import posted

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EVENTS = Path(__file__).resolve().parents[2] / "events" / "telegram"
HUB_URL = "https://hub.example/webhooks/telegram/con_1"


def credentials() -> dict[str, str]:
    return demo_outbound_credentials("telegram")


def events_from(update: dict[str, Any] | bytes) -> list[CanonicalEvent]:
    return posted("telegram", update, received_at=NOW, headers={"content-type": "application/json"})


def event_from(update: dict[str, Any] | bytes) -> CanonicalEvent:
    [event] = events_from(update)
    return event


def recorded(name: str) -> CanonicalEvent:
    return event_from((EVENTS / name).read_bytes())


USER = {"id": 8620544687, "is_bot": False, "first_name": "Lena", "username": "lena_k"}
PRIVATE = {"id": 8620544687, "first_name": "Lena", "type": "private"}


def message(**fields: Any) -> dict[str, Any]:
    return {
        "message_id": 65647,
        "from": USER,
        "chat": PRIVATE,
        "date": 1795444809,
        "text": "Where is my parcel?",
        **fields,
    }


def address_of(update: dict[str, Any]) -> dict[str, str] | None:
    found = reply_address(event_from(update))
    return None if found is None else found.fields


# --- address -------------------------------------------------------------------------------------


def test_message_is_answered_as_a_reply_in_its_chat() -> None:
    address = reply_address(event_from({"update_id": 1, "message": message()}))
    assert address is not None
    assert (address.provider, address.connection) == ("telegram", "con_1")
    assert address.fields == {"chat_id": "8620544687", "reply_to_message_id": "65647"}


@pytest.mark.parametrize("sample", ["message", "contact"])
def test_local_samples_give_the_chat_and_message_they_carry(sample: str) -> None:
    signed = build_sample("telegram", sample, demo_credentials("telegram"), HUB_URL)
    update = json.loads(signed.body)
    address = reply_address(event_from(signed.body))
    assert address is not None
    assert address.fields == {
        "chat_id": str(update["message"]["chat"]["id"]),
        "reply_to_message_id": str(update["message"]["message_id"]),
    }


def test_local_callback_query_sample_answers_in_the_chat_without_quoting_the_bots_message() -> None:
    signed = build_sample("telegram", "callback-query", demo_credentials("telegram"), HUB_URL)
    event = event_from(signed.body)
    assert event.type == "interaction.created"
    address = reply_address(event)
    assert address is not None
    assert address.fields == {"chat_id": str(json.loads(signed.body)["callback_query"]["message"]["chat"]["id"])}


def test_recorded_group_message_is_answered_in_the_supergroup() -> None:
    address = reply_address(recorded("location-photo-group.json"))
    assert address is not None and address.fields == {"chat_id": "-1001234567890", "reply_to_message_id": "77"}


def test_forum_topic_message_stays_in_its_topic() -> None:
    fields = address_of(
        {
            "update_id": 2,
            "message": message(
                chat={"id": -1001234567890, "title": "Support", "type": "supergroup", "is_forum": True},
                message_thread_id=42,
                is_topic_message=True,
            ),
        }
    )
    assert fields == {"chat_id": "-1001234567890", "reply_to_message_id": "65647", "message_thread_id": "42"}


def test_business_message_from_the_customer_goes_through_the_business_connection() -> None:
    fields = address_of({"update_id": 3, "business_message": message(business_connection_id="BCx1")})
    assert fields == {"chat_id": "8620544687", "reply_to_message_id": "65647", "business_connection_id": "BCx1"}


@pytest.mark.parametrize(
    "update",
    [
        # the business account owner's own message in the customer's chat
        {
            "update_id": 4,
            "business_message": message(
                business_connection_id="BCx1", **{"from": {"id": 1, "is_bot": False, "first_name": "Shop"}}
            ),
        },
        # a message a connected bot sent on the business account's behalf
        {
            "update_id": 5,
            "business_message": message(
                business_connection_id="BCx1", sender_business_bot={"id": 7, "is_bot": True, "first_name": "B"}
            ),
        },
        {"update_id": 6, "business_message": message()},  # no business connection to send through
        {"update_id": 7, "message": message(**{"from": {"id": 99, "is_bot": True, "first_name": "OtherBot"}})},
        {
            "update_id": 8,
            "callback_query": {
                "id": "1",
                "from": USER,
                "chat_instance": "-1",
                "data": "x",
                "inline_message_id": "AAAA",
            },
        },  # inline mode: no chat
    ],
)
def test_no_address_for_updates_that_are_not_a_customer_writing(update: dict[str, Any]) -> None:
    assert address_of(update) is None


@pytest.mark.parametrize("name", ["channel-post.json", "edited-message.json", "my-chat-member.json"])
def test_no_address_for_recorded_channel_posts_edits_and_notifications(name: str) -> None:
    assert reply_address(recorded(name)) is None


# --- request -------------------------------------------------------------------------------------


def test_request_is_the_documented_send_message_call() -> None:
    creds = TelegramCredentials.model_validate(credentials())
    request = TelegramSender().request(
        "https://api.telegram.org",
        {"chat_id": "8620544687", "reply_to_message_id": "65647"},
        OutboundMessage("Danke, we're on it"),
        creds,
    )
    assert request.method == "POST"
    assert request.url == f"https://api.telegram.org/bot{creds.bot_token}/sendMessage"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "chat_id": 8620544687,
        "text": "Danke, we're on it",
        "reply_parameters": {"message_id": 65647, "allow_sending_without_reply": True},
    }


def test_request_carries_topic_and_business_connection_and_leaves_out_what_is_absent() -> None:
    creds = TelegramCredentials.model_validate(credentials())
    sender = TelegramSender()
    body = json.loads(
        sender.request(
            "https://x",
            {"chat_id": "-100123", "message_thread_id": "42", "business_connection_id": "BCx1"},
            OutboundMessage("hi"),
            creds,
        ).body
    )
    assert body == {"chat_id": -100123, "text": "hi", "message_thread_id": 42, "business_connection_id": "BCx1"}


def test_long_text_is_clipped() -> None:
    creds = TelegramCredentials.model_validate(credentials())
    body = json.loads(TelegramSender().request("https://x", {"chat_id": "1"}, OutboundMessage("x" * 5000), creds).body)
    assert len(body["text"]) == 1600


@pytest.mark.parametrize("token", ["123456:short", "bot123:" + "a" * 35, "123456 " + "a" * 35, ""])
def test_malformed_bot_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValueError):
        TelegramCredentials.model_validate({"bot_token": token})


# --- sandbox round trips -------------------------------------------------------------------------


def customer_address() -> ReplyAddress:
    address = reply_address(event_from({"update_id": 10, "message": message()}))
    assert address is not None
    return address


def test_sends_through_the_sandbox_over_http(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("telegram", creds)
    message_id = send(customer_address(), "We got your message", creds, http_transport, base_url=f"{url}/telegram")
    assert message_id.isdigit()
    sent = [m for m in apis.messages if m.provider == "telegram" and m.message_id == message_id]
    assert len(sent) == 1 and sent[0].to == "8620544687" and sent[0].text == "We got your message"
    assert sent[0].details["reply_to_message_id"] == 65647


def test_unknown_token_is_a_permanent_failure_with_telegrams_code(sandbox) -> None:
    _, url = sandbox
    with pytest.raises(PermanentFailure) as failure:
        send(customer_address(), "hi", credentials(), http_transport, base_url=f"{url}/telegram")
    assert failure.value.code == "telegram_401" and "Unauthorized" in failure.value.detail


def test_sandbox_refuses_a_request_without_text_in_telegrams_shape(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("telegram", creds)
    request = TelegramSender().request(
        f"{url}/telegram", {"chat_id": "1"}, OutboundMessage(""), TelegramCredentials(**creds)
    )
    with pytest.raises(PermanentFailure) as failure:
        TelegramSender().outcome(http_transport(request))
    assert failure.value.code == "telegram_400" and "text is empty" in failure.value.detail


# --- documented answers --------------------------------------------------------------------------


def answer(status: int, payload: dict[str, Any]) -> ProviderResponse:
    return ProviderResponse(status=status, body=json.dumps(payload).encode())


def test_documented_success_gives_the_message_id() -> None:
    assert (
        TelegramSender().outcome(
            answer(
                200,
                {
                    "ok": True,
                    "result": {"message_id": 4711, "chat": {"id": 1, "type": "private"}, "date": 1, "text": "hi"},
                },
            )
        )
        == "4711"
    )


@pytest.mark.parametrize(
    "payload,code",
    [
        ({"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}, "telegram_403"),
        ({"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, "telegram_400"),
    ],
)
def test_documented_refusals_are_permanent(payload: dict[str, Any], code: str) -> None:
    with pytest.raises(PermanentFailure) as failure:
        TelegramSender().outcome(answer(payload["error_code"], payload))
    assert failure.value.code == code and payload["description"] in failure.value.detail


def test_flood_control_body_is_transient_and_says_when_to_retry() -> None:
    payload = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 17",
        "parameters": {"retry_after": 17},
    }
    with pytest.raises(TransientFailure) as failure:
        TelegramSender().outcome(answer(429, payload))
    assert failure.value.code == "telegram_429" and "17s" in failure.value.detail


def test_gateway_error_without_json_is_transient() -> None:
    with pytest.raises(TransientFailure) as failure:
        TelegramSender().outcome(ProviderResponse(status=502, body=b"<html>Bad Gateway</html>"))
    assert failure.value.code == "http_502"


@pytest.mark.parametrize("payload", [{"ok": True, "result": True}, {"ok": True}, {}])
def test_success_without_message_id_is_not_taken_for_sent(payload: dict[str, Any]) -> None:
    with pytest.raises(PermanentFailure):
        TelegramSender().outcome(answer(200, payload))


def test_invalid_stored_credentials_fail_permanently() -> None:
    with pytest.raises(PermanentFailure) as failure:
        send(customer_address(), "hi", {"bot_token": "nope"}, http_transport, base_url="http://127.0.0.1:9/telegram")
    assert failure.value.code == "invalid_credentials"


# --- staff answers: visibility, files, what would be cut ----------------------------------------

PHOTO = Attachment("https://files.example.com/receipt.jpg", "image/jpeg")
PDF = Attachment("https://files.example.com/invoice-4471.pdf", "application/pdf")
ADDRESS = {"chat_id": "8620544687", "reply_to_message_id": "65647"}


def test_every_answer_is_private_public_has_no_address() -> None:
    event = event_from({"update_id": 10, "message": message()})
    assert reply_address(event, "private") == reply_address(event)
    assert reply_address(event, "public") is None


def body_of(message_: OutboundMessage) -> tuple[str, dict[str, Any]]:
    creds = TelegramCredentials.model_validate(credentials())
    request = TelegramSender().request("https://api.telegram.org", ADDRESS, message_, creds)
    return request.url.rsplit("/", 1)[-1], json.loads(request.body)


def test_one_image_is_a_photo_with_the_text_as_caption_replying_to_the_customer() -> None:
    method, body = body_of(OutboundMessage("Your receipt", attachments=(PHOTO,)))
    assert method == "sendPhoto"
    assert body == {
        "chat_id": 8620544687,
        "photo": PHOTO.url,
        "caption": "Your receipt",
        "reply_parameters": {"message_id": 65647, "allow_sending_without_reply": True},
    }


@pytest.mark.parametrize("content_type", ["application/pdf", "image/gif", "image/svg+xml", None])
def test_any_other_file_is_a_document(content_type: str | None) -> None:
    method, body = body_of(OutboundMessage("", attachments=(Attachment(PDF.url, content_type),)))
    assert method == "sendDocument" and body["document"] == PDF.url and "caption" not in body


def test_several_images_are_a_photo_group_with_the_caption_on_the_first() -> None:
    second = Attachment("https://files.example.com/b.png", "image/png")
    method, body = body_of(OutboundMessage("Both sides", attachments=(PHOTO, second)))
    assert method == "sendMediaGroup"
    assert body["media"] == [
        {"type": "photo", "media": PHOTO.url, "caption": "Both sides"},
        {"type": "photo", "media": second.url},
    ]
    assert body["reply_parameters"]["message_id"] == 65647


def test_files_of_mixed_kinds_are_all_sent_as_documents() -> None:
    _, body = body_of(OutboundMessage("", attachments=(PHOTO, PDF)))
    assert [item["type"] for item in body["media"]] == ["document", "document"]


def test_prepare_refuses_what_telegram_would_refuse_or_the_hub_would_cut() -> None:
    sender = TelegramSender()
    long_ago = NOW - timedelta(days=60)  # Telegram has no messaging window
    assert sender.prepare(ADDRESS, OutboundMessage("a" * 1600), long_ago, NOW) == ADDRESS
    assert sender.prepare(ADDRESS, OutboundMessage("a" * 1024, attachments=(PHOTO,)), long_ago, NOW) == ADDRESS
    cases = [
        (OutboundMessage("a" * 1601), "message_too_long"),
        (OutboundMessage("a" * 1025, attachments=(PHOTO,)), "telegram_caption_too_long"),
        (OutboundMessage("hi", attachments=(PHOTO,) * 11), "telegram_too_many_attachments"),
    ]
    for message_, code in cases:
        with pytest.raises(Refused) as refused:
            sender.prepare(ADDRESS, message_, long_ago, NOW)
        assert refused.value.code == code and refused.value.hints["limit"] in (1600, 1024, 10)


def test_a_media_group_answer_is_the_first_messages_id() -> None:
    payload = {"ok": True, "result": [{"message_id": 90, "chat": {"id": 1}}, {"message_id": 91, "chat": {"id": 1}}]}
    assert TelegramSender().outcome(ProviderResponse(200, json.dumps(payload).encode())) == "90"
    with pytest.raises(PermanentFailure):
        TelegramSender().outcome(ProviderResponse(200, json.dumps({"ok": True, "result": []}).encode()))


def test_telegram_reports_no_statuses() -> None:
    assert delivery_status(event_from({"update_id": 10, "message": message()})) is None


@pytest.mark.parametrize(
    ("attachments", "method"),
    [((PHOTO,), "sendPhoto"), ((PDF,), "sendDocument"), ((PHOTO, PDF), "sendMediaGroup")],
)
def test_files_go_through_the_sandbox_over_http(sandbox, attachments: tuple[Attachment, ...], method: str) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("telegram", creds)
    message_ = OutboundMessage("Here it is", attachments=attachments)
    message_id = send(customer_address(), message_, creds, http_transport, base_url=f"{url}/telegram")
    [sent] = [m for m in apis.messages if m.provider == "telegram" and m.message_id == message_id]
    assert sent.details["method"] == method and sent.details["files"] == [a.url for a in attachments]
    assert sent.text == "Here it is" and sent.details["reply_to_message_id"] == 65647


def test_sandbox_refuses_a_photo_that_is_not_a_url_in_telegrams_words(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("telegram", creds)
    message_ = OutboundMessage("x", attachments=(Attachment("file:///etc/passwd", "image/png"),))
    with pytest.raises(PermanentFailure) as failure:
        send(customer_address(), message_, creds, http_transport, base_url=f"{url}/telegram")
    assert failure.value.code == "telegram_400" and "no photo" in failure.value.detail


def test_flood_control_waits_the_bodys_retry_after_even_in_an_http_200() -> None:
    payload = {"ok": False, "error_code": 429, "description": "Too Many Requests", "parameters": {"retry_after": 17}}
    for status in (429, 200):
        with pytest.raises(TransientFailure) as failure:
            TelegramSender().outcome(answer(status, payload))
        assert failure.value.retry_after == 17
    refused = {"ok": False, "error_code": 400, "description": "Bad Request", "parameters": {"retry_after": 5}}
    with pytest.raises(PermanentFailure) as permanent:
        TelegramSender().outcome(answer(400, refused))
    assert permanent.value.retry_after is None
