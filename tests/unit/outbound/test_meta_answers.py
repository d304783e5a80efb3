"""Meta staff answers: the address of every answerable event and visibility, the messaging
windows (WhatsApp's 24 h, Messenger/Instagram 24 h + the human agent tag to 7 days, private
replies' 7 days), the documented request of each kind of answer (WhatsApp text, template and
media; Messenger and Instagram messages; Facebook and Instagram comment replies; private
replies), outcome's rate-limit waits, and delivery statuses read back from Meta's own
webhooks: each round trip goes sandbox -> build_status -> the adapter (signature and
normalisation) -> MetaSender.status."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.provider_apis import SentMessage, demo_outbound_credentials
from infra.local.samples import build_status, demo_credentials
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound import PermanentFailure, Refused, ReplyAddress, TransientFailure, reply_address, send
from switchboard_core.outbound.base import AUTO_REPLY_MARK, Attachment, OutboundMessage, ProviderResponse
from switchboard_core.outbound.meta import GRAPH_API_VERSION, MetaCredentials, MetaSender
from switchboard_core.outbound.transport import http_transport
from switchboard_core.providers import get_adapter
from tests.builders import posted
from tests.unit.providers.support import webhook_request

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EVENTS = Path(__file__).resolve().parents[2] / "events" / "meta"
HUB_URL = "https://hub.example/webhooks/meta/con_1"
GRAPH = f"https://graph.facebook.com/{GRAPH_API_VERSION}"
INSTAGRAM = f"https://graph.instagram.com/{GRAPH_API_VERSION}"
SENDER = MetaSender()


def creds() -> MetaCredentials:
    return MetaCredentials.model_validate(demo_outbound_credentials("meta"))


def events_from(body: bytes | dict[str, Any]) -> list[CanonicalEvent]:
    return posted("meta", body, received_at=NOW, headers={"content-type": "application/json"})


def recorded(name: str) -> list[CanonicalEvent]:
    return events_from((EVENTS / name).read_bytes())


def only(name: str, event_type: str) -> CanonicalEvent:
    [event] = [e for e in recorded(name) if e.type == event_type]
    return event


def body_of(request) -> dict[str, Any]:
    return json.loads(request.body)


# --- address: every answerable event and visibility ----------------------------------------------

FB_COMMENT = "987654321098765_111222333444555"
PAGE = "112233445566778"
IG_ACCOUNT = "17841400008460056"
IG_COMMENT = "17919697626119712"


@pytest.mark.parametrize("visibility", [None, "private"])
def test_instagram_message_is_answered_from_the_account_it_was_sent_to(visibility) -> None:
    [event] = recorded("instagram-text.json")
    assert SENDER.address(event, visibility) == {
        "product": "instagram",
        "account_id": IG_ACCOUNT,
        "to": "1234567890123456",
    }


@pytest.mark.parametrize("name", ["instagram-text.json", "messenger-text.json", "whatsapp-text.json"])
def test_messages_have_no_public_answer(name: str) -> None:
    [event] = recorded(name)
    assert SENDER.address(event, "public") is None and SENDER.address(event, "private") is not None


@pytest.mark.parametrize("visibility", [None, "public"])
def test_facebook_comment_is_answered_publicly_by_default(visibility) -> None:
    event = only("page-feed.json", "comment.created")
    assert SENDER.address(event, visibility) == {"product": "facebook_comment", "object_id": FB_COMMENT}


def test_facebook_comment_private_reply_goes_through_the_page() -> None:
    event = only("page-feed.json", "comment.created")
    assert SENDER.address(event, "private") == {
        "product": "messenger_private_reply",
        "page_id": PAGE,
        "comment_id": FB_COMMENT,
    }


def test_visitor_post_is_answered_with_a_comment_or_a_private_reply_to_the_post() -> None:
    event = only("page-feed-mixed.json", "mention.created")
    post = "112233445566778_222333444555666"
    assert SENDER.address(event) == {"product": "facebook_comment", "object_id": post}
    assert SENDER.address(event, "private") == {"product": "messenger_private_reply", "page_id": PAGE, "post_id": post}


def test_page_mention_elsewhere_is_answered_publicly_only() -> None:
    event = only("page-mention.json", "mention.created")
    assert SENDER.address(event) == {"product": "facebook_comment", "object_id": "44444444_123456789"}
    assert SENDER.address(event, "private") is None


def test_the_pages_own_comment_reaction_and_like_have_no_address() -> None:
    others = [e for e in recorded("page-feed-mixed.json") if e.type != "mention.created"]
    assert len(others) == 2 and all(SENDER.address(e, v) is None for e in others for v in (None, "public", "private"))


@pytest.mark.parametrize("visibility", [None, "public"])
def test_instagram_comment_is_answered_with_a_reply_by_default(visibility) -> None:
    [event] = recorded("instagram-comment.json")
    assert SENDER.address(event, visibility) == {"product": "instagram_comment", "comment_id": IG_COMMENT}


def test_instagram_comment_private_reply() -> None:
    [event] = recorded("instagram-comment.json")
    assert SENDER.address(event, "private") == {
        "product": "instagram_private_reply",
        "account_id": IG_ACCOUNT,
        "comment_id": IG_COMMENT,
    }


def test_instagram_live_comment_takes_only_a_private_reply() -> None:
    body = json.loads((EVENTS / "instagram-comment.json").read_text())
    body["entry"][0]["changes"][0]["field"] = "live_comments"
    [event] = events_from(body)
    assert SENDER.address(event, "public") is None
    private = {"product": "instagram_private_reply", "account_id": IG_ACCOUNT, "comment_id": IG_COMMENT}
    assert SENDER.address(event) == private and SENDER.address(event, "private") == private


def test_reply_address_carries_the_connection() -> None:
    [event] = recorded("instagram-comment.json")
    address = reply_address(event, "private")
    assert address is not None and (address.provider, address.connection) == ("meta", "con_1")


# --- prepare: the platforms' windows -------------------------------------------------------------

WHATSAPP = {"product": "whatsapp", "phone_number_id": "106540352242922", "to": "16505551234"}
MESSENGER = {"product": "messenger", "page_id": PAGE, "to": "6789012345678901"}
INSTAGRAM_DM = {"product": "instagram", "account_id": IG_ACCOUNT, "to": "1234567890123456"}
TEMPLATE = {"name": "order_update", "language": "en_US", "parameters": ["Ada", "#1234"]}


def test_whatsapp_free_text_inside_the_window_is_allowed() -> None:
    prepared = SENDER.prepare(WHATSAPP, OutboundMessage("hi"), NOW - timedelta(hours=23, minutes=59), NOW)
    assert prepared == WHATSAPP


def test_whatsapp_free_text_outside_the_window_is_refused_with_the_template_to_use() -> None:
    inbound = NOW - timedelta(hours=24, seconds=1)
    with pytest.raises(Refused) as refused:
        SENDER.prepare(WHATSAPP, OutboundMessage("hi"), inbound, NOW)
    assert refused.value.code == "whatsapp_window_closed"
    assert "24-hour" in refused.value.detail
    assert refused.value.hints["window_closed_at"] == (inbound + timedelta(hours=24)).isoformat()
    assert '"template"' in refused.value.hints["template"] and '"language"' in refused.value.hints["template"]


def test_whatsapp_template_may_be_sent_any_time() -> None:
    old = NOW - timedelta(days=30)
    assert SENDER.prepare(WHATSAPP, OutboundMessage("", template=TEMPLATE), old, NOW) == WHATSAPP


def test_whatsapp_bad_template_is_refused_before_sending_and_fails_permanently_at_send() -> None:
    bad = OutboundMessage("", template={"name": "Bad Name!"})
    with pytest.raises(Refused) as refused:
        SENDER.prepare(WHATSAPP, bad, NOW, NOW)
    assert refused.value.code == "invalid_template" and "language" in refused.value.detail
    assert '"template"' in refused.value.hints["template"]
    with pytest.raises(PermanentFailure) as failure:
        SENDER.request(GRAPH_ROOT, WHATSAPP, bad, creds())
    assert failure.value.code == "invalid_template"


@pytest.mark.parametrize(
    "address,attachments",
    [
        (WHATSAPP, ("https://x.example/1.png", "https://x.example/2.png")),
        ({"product": "instagram_comment", "comment_id": IG_COMMENT}, ("https://x.example/1.png",)),
    ],
)
def test_what_the_call_cannot_carry_is_refused_before_it_is_queued(address, attachments) -> None:
    message = OutboundMessage("see", attachments=tuple(Attachment(url, "image/png") for url in attachments))
    with pytest.raises(Refused) as refused:
        SENDER.prepare(address, message, NOW, NOW)
    assert refused.value.code == "attachments_unsupported"


@pytest.mark.parametrize(
    "address,text,limit",
    [
        (MESSENGER, "x" * 2001, 2000),
        (WHATSAPP, "x" * 4097, 4096),
        (INSTAGRAM_DM, "\U0001f44b" * 251, 1000),  # 1004 bytes: Instagram counts UTF-8 bytes
        ({"product": "instagram_comment", "comment_id": IG_COMMENT}, "x" * 2201, 2200),
    ],
)
def test_a_staff_answer_longer_than_the_platform_takes_is_refused_not_cut(address, text: str, limit: int) -> None:
    with pytest.raises(Refused) as refused:
        SENDER.prepare(address, OutboundMessage(text), NOW, NOW)
    assert refused.value.code == "text_too_long" and refused.value.hints["limit"] == limit
    shorter = text[: len(text) - 1]
    assert SENDER.prepare(address, OutboundMessage(shorter), NOW, NOW) is not None


def test_an_auto_reply_to_instagram_is_cut_to_1000_bytes() -> None:
    body = body_of(SENDER.request(GRAPH_ROOT, INSTAGRAM_DM, OutboundMessage("\U0001f44b" * 300), creds()))
    text = body["message"]["text"]
    assert len(text.encode("utf-8")) <= 1000 and text.endswith("…")


def test_an_address_without_its_ids_is_refused() -> None:
    with pytest.raises(Refused) as refused:
        SENDER.prepare({"product": "messenger", "to": "1"}, OutboundMessage("hi"), NOW, NOW)
    assert refused.value.code == "bad_address" and "page_id" in refused.value.detail


@pytest.mark.parametrize("address", [MESSENGER, INSTAGRAM_DM])
def test_messenger_and_instagram_standard_window_sends_a_response(address) -> None:
    assert SENDER.prepare(address, OutboundMessage("hi"), NOW - timedelta(hours=24), NOW) == address


@pytest.mark.parametrize("address", [MESSENGER, INSTAGRAM_DM])
def test_between_24_hours_and_7_days_the_human_agent_tag_is_added(address) -> None:
    for age in (timedelta(hours=24, seconds=1), timedelta(days=7)):
        assert SENDER.prepare(address, OutboundMessage("hi"), NOW - age, NOW) == {**address, "tag": "HUMAN_AGENT"}


@pytest.mark.parametrize(
    "address,code", [(MESSENGER, "messenger_window_closed"), (INSTAGRAM_DM, "instagram_window_closed")]
)
def test_beyond_7_days_messages_are_refused(address, code: str) -> None:
    inbound = NOW - timedelta(days=7, seconds=1)
    with pytest.raises(Refused) as refused:
        SENDER.prepare(address, OutboundMessage("hi"), inbound, NOW)
    assert refused.value.code == code
    assert refused.value.hints["window_closed_at"] == (inbound + timedelta(days=7)).isoformat()


def test_a_stale_tag_in_the_address_is_not_kept_inside_the_standard_window() -> None:
    prepared = SENDER.prepare({**MESSENGER, "tag": "HUMAN_AGENT"}, OutboundMessage("hi"), NOW, NOW)
    assert prepared == MESSENGER


def test_templates_are_refused_outside_whatsapp() -> None:
    with pytest.raises(Refused) as refused:
        SENDER.prepare(MESSENGER, OutboundMessage("hi", template=TEMPLATE), NOW, NOW)
    assert refused.value.code == "template_unsupported"


@pytest.mark.parametrize(
    "address",
    [
        {"product": "messenger_private_reply", "page_id": PAGE, "comment_id": FB_COMMENT},
        {"product": "instagram_private_reply", "account_id": IG_ACCOUNT, "comment_id": IG_COMMENT},
    ],
)
def test_private_replies_within_7_days_of_the_comment(address) -> None:
    assert SENDER.prepare(address, OutboundMessage("hi"), NOW - timedelta(days=6, hours=23), NOW) == address
    with pytest.raises(Refused) as refused:
        SENDER.prepare(address, OutboundMessage("hi"), NOW - timedelta(days=7, seconds=1), NOW)
    assert refused.value.code == "private_reply_window_closed" and "public" in refused.value.hints["visibility"]


@pytest.mark.parametrize(
    "address",
    [
        {"product": "facebook_comment", "object_id": FB_COMMENT},
        {"product": "instagram_comment", "comment_id": IG_COMMENT},
    ],
)
def test_public_comment_replies_have_no_window(address) -> None:
    assert SENDER.prepare(address, OutboundMessage("hi"), NOW - timedelta(days=90), NOW) == address


# --- request: the documented calls ---------------------------------------------------------------


def test_whatsapp_staff_answer_carries_the_hub_message_id_as_callback_data() -> None:
    c = creds()
    request = SENDER.request("https://graph.facebook.com", WHATSAPP, OutboundMessage("On it", message_id="msg_1"), c)
    assert (request.method, request.url) == ("POST", f"{GRAPH}/106540352242922/messages")
    assert request.headers["Authorization"] == f"Bearer {c.access_token}"
    assert request.headers["Content-Type"] == "application/json"
    assert body_of(request) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "type": "text",
        "text": {"body": "On it"},
        "biz_opaque_callback_data": "msg_1",
    }


@pytest.mark.parametrize(
    "parameters,components",
    [
        (
            ["Ada", "#1234"],
            [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "#1234"}]}],
        ),
        (
            {"first_name": "Ada"},
            [{"type": "body", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Ada"}]}],
        ),
        (None, None),
    ],
)
def test_whatsapp_template_message(parameters, components) -> None:
    template: dict[str, Any] = {"name": "order_update", "language": "en_US"}
    if parameters is not None:
        template["parameters"] = parameters
    request = SENDER.request(
        GRAPH_ROOT, WHATSAPP, OutboundMessage("fallback", message_id="msg_2", template=template), creds()
    )
    expected: dict[str, Any] = {"name": "order_update", "language": {"code": "en_US"}}
    if components is not None:
        expected["components"] = components
    body = body_of(request)
    assert body["type"] == "template" and body["template"] == expected and "text" not in body
    assert body["biz_opaque_callback_data"] == "msg_2"


GRAPH_ROOT = "https://graph.facebook.com"


@pytest.mark.parametrize(
    "content_type,kind",
    [("image/jpeg", "image"), ("video/mp4", "video"), ("application/pdf", "document"), (None, "document")],
)
def test_whatsapp_media_by_link_with_the_text_as_caption(content_type, kind: str) -> None:
    attachment = Attachment("https://cdn.example.com/files/receipt-42.pdf", content_type)
    request = SENDER.request(GRAPH_ROOT, WHATSAPP, OutboundMessage("Your receipt", attachments=(attachment,)), creds())
    body = body_of(request)
    media: dict[str, Any] = {"link": attachment.url, "caption": "Your receipt"}
    if kind == "document":
        media["filename"] = "receipt-42.pdf"
    assert body["type"] == kind and body[kind] == media and "text" not in body


def test_whatsapp_audio_without_text_and_refused_with_it() -> None:
    audio = (Attachment("https://cdn.example.com/a.ogg", "audio/ogg"),)
    body = body_of(SENDER.request(GRAPH_ROOT, WHATSAPP, OutboundMessage("", attachments=audio), creds()))
    assert body["type"] == "audio" and body["audio"] == {"link": "https://cdn.example.com/a.ogg"}
    with pytest.raises(PermanentFailure) as failure:
        SENDER.request(GRAPH_ROOT, WHATSAPP, OutboundMessage("listen", attachments=audio), creds())
    assert failure.value.code == "attachments_unsupported"


def test_whatsapp_takes_one_media_item_per_message() -> None:
    two = (Attachment("https://x.example/1.png", "image/png"), Attachment("https://x.example/2.png", "image/png"))
    with pytest.raises(PermanentFailure) as failure:
        SENDER.request(GRAPH_ROOT, WHATSAPP, OutboundMessage("", attachments=two), creds())
    assert failure.value.code == "attachments_unsupported"


def test_messenger_staff_answer_is_a_response_carrying_the_hub_id_not_the_auto_reply_mark() -> None:
    request = SENDER.request(GRAPH_ROOT, MESSENGER, OutboundMessage("Hello", message_id="msg_3"), creds())
    assert request.url == f"{GRAPH}/{PAGE}/messages"
    assert body_of(request) == {
        "recipient": {"id": "6789012345678901"},
        "messaging_type": "RESPONSE",
        "message": {"text": "Hello", "metadata": "switchboard:message:msg_3"},
    }


def test_auto_reply_keeps_the_auto_reply_mark() -> None:
    request = SENDER.request(GRAPH_ROOT, MESSENGER, OutboundMessage("Thanks"), creds())
    assert body_of(request)["message"]["metadata"] == AUTO_REPLY_MARK


def test_human_agent_tag_makes_a_message_tag_send() -> None:
    address = SENDER.prepare(MESSENGER, OutboundMessage("late"), NOW - timedelta(days=3), NOW)
    body = body_of(SENDER.request(GRAPH_ROOT, address, OutboundMessage("late", message_id="m"), creds()))
    assert body["messaging_type"] == "MESSAGE_TAG" and body["tag"] == "HUMAN_AGENT"
    assert body["recipient"] == {"id": "6789012345678901"}


@pytest.mark.parametrize(
    "content_type,kind", [("image/png", "image"), ("video/mp4", "video"), ("application/pdf", "file")]
)
def test_messenger_attachment_by_url(content_type, kind: str) -> None:
    attachment = Attachment("https://cdn.example.com/f", content_type)
    body = body_of(SENDER.request(GRAPH_ROOT, MESSENGER, OutboundMessage("", attachments=(attachment,)), creds()))
    assert body["message"]["attachment"] == {"type": kind, "payload": {"url": attachment.url, "is_reusable": False}}
    assert "text" not in body["message"]


def test_messenger_text_with_an_attachment_is_refused_not_half_sent() -> None:
    attachment = Attachment("https://cdn.example.com/f.png", "image/png")
    with pytest.raises(PermanentFailure) as failure:
        SENDER.request(GRAPH_ROOT, MESSENGER, OutboundMessage("see this", attachments=(attachment,)), creds())
    assert failure.value.code == "attachments_unsupported"


def test_instagram_message_goes_to_graph_instagram_with_the_instagram_token() -> None:
    c = creds()
    request = SENDER.request(GRAPH_ROOT, INSTAGRAM_DM, OutboundMessage("We ship to Canada", message_id="msg_4"), c)
    assert request.url == f"{INSTAGRAM}/{IG_ACCOUNT}/messages"
    assert request.headers["Authorization"] == f"Bearer {c.instagram_access_token}"
    assert body_of(request) == {
        "recipient": {"id": "1234567890123456"},
        "messaging_type": "RESPONSE",
        "message": {"text": "We ship to Canada", "metadata": "switchboard:message:msg_4"},
    }


def test_instagram_through_the_sandbox_base_url_keeps_its_own_host_path() -> None:
    request = SENDER.request("http://127.0.0.1:9/meta", INSTAGRAM_DM, OutboundMessage("hi"), creds())
    assert request.url == f"http://127.0.0.1:9/meta/instagram/{GRAPH_API_VERSION}/{IG_ACCOUNT}/messages"


def test_instagram_takes_no_documents() -> None:
    attachment = Attachment("https://cdn.example.com/f.pdf", "application/pdf")
    with pytest.raises(PermanentFailure):
        SENDER.request(GRAPH_ROOT, INSTAGRAM_DM, OutboundMessage("", attachments=(attachment,)), creds())


def test_missing_token_for_the_host_is_not_configured() -> None:
    page_only = MetaCredentials(access_token="EAA" + "x" * 40)
    with pytest.raises(PermanentFailure) as failure:
        SENDER.request(GRAPH_ROOT, INSTAGRAM_DM, OutboundMessage("hi"), page_only)
    assert failure.value.code == "not_configured" and "instagram_access_token" in failure.value.detail
    instagram_only = MetaCredentials(instagram_access_token="IGAA" + "x" * 40)
    with pytest.raises(PermanentFailure) as failure:
        SENDER.request(GRAPH_ROOT, MESSENGER, OutboundMessage("hi"), instagram_only)
    assert failure.value.code == "not_configured"


@pytest.mark.parametrize(
    "value",
    [{}, {"access_token": "EAA" + "x" * 40, "page_token": "y" * 30}, {"instagram_access_token": "EAA" + "x" * 40}],
)
def test_credentials_need_one_valid_token_and_nothing_else(value) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        MetaCredentials.model_validate(value)


def test_facebook_comment_reply_is_a_comment_on_the_comment() -> None:
    c = creds()
    request = SENDER.request(
        GRAPH_ROOT, {"product": "facebook_comment", "object_id": FB_COMMENT}, OutboundMessage("Sorry! DM us"), c
    )
    assert request.url == f"{GRAPH}/{FB_COMMENT}/comments"
    assert request.headers["Authorization"] == f"Bearer {c.access_token}"
    assert body_of(request) == {"message": "Sorry! DM us"}


def test_facebook_comment_takes_one_image_as_attachment_url() -> None:
    address = {"product": "facebook_comment", "object_id": FB_COMMENT}
    image = Attachment("https://cdn.example.com/map.png", "image/png")
    body = body_of(SENDER.request(GRAPH_ROOT, address, OutboundMessage("Here", attachments=(image,)), creds()))
    assert body == {"message": "Here", "attachment_url": image.url}
    with pytest.raises(PermanentFailure):
        pdf = Attachment("https://cdn.example.com/a.pdf", "application/pdf")
        SENDER.request(GRAPH_ROOT, address, OutboundMessage("Here", attachments=(pdf,)), creds())


def test_instagram_comment_reply_is_a_reply_on_graph_instagram() -> None:
    c = creds()
    request = SENDER.request(
        GRAPH_ROOT, {"product": "instagram_comment", "comment_id": IG_COMMENT}, OutboundMessage("Yes, in blue!"), c
    )
    assert request.url == f"{INSTAGRAM}/{IG_COMMENT}/replies"
    assert request.headers["Authorization"] == f"Bearer {c.instagram_access_token}"
    assert body_of(request) == {"message": "Yes, in blue!"}


def test_messenger_private_reply_to_a_comment_and_to_a_post() -> None:
    address = {"product": "messenger_private_reply", "page_id": PAGE, "comment_id": FB_COMMENT}
    request = SENDER.request(GRAPH_ROOT, address, OutboundMessage("Let's sort it here", message_id="msg_5"), creds())
    assert request.url == f"{GRAPH}/{PAGE}/messages"
    assert body_of(request) == {
        "recipient": {"comment_id": FB_COMMENT},
        "message": {"text": "Let's sort it here", "metadata": "switchboard:message:msg_5"},
    }
    post = {"product": "messenger_private_reply", "page_id": PAGE, "post_id": "112233445566778_222333444555666"}
    assert body_of(SENDER.request(GRAPH_ROOT, post, OutboundMessage("hi"), creds()))["recipient"] == {
        "post_id": "112233445566778_222333444555666"
    }


def test_instagram_private_reply() -> None:
    address = {"product": "instagram_private_reply", "account_id": IG_ACCOUNT, "comment_id": IG_COMMENT}
    request = SENDER.request(GRAPH_ROOT, address, OutboundMessage("Sent you the link", message_id="msg_6"), creds())
    assert request.url == f"{INSTAGRAM}/{IG_ACCOUNT}/messages"
    assert body_of(request) == {
        "recipient": {"comment_id": IG_COMMENT},
        "message": {"text": "Sent you the link", "metadata": "switchboard:message:msg_6"},
    }


@pytest.mark.parametrize(
    "address",
    [
        {"product": "messenger_private_reply", "page_id": PAGE, "comment_id": FB_COMMENT},
        {"product": "instagram_comment", "comment_id": IG_COMMENT},
    ],
)
def test_text_only_answers_refuse_attachments(address) -> None:
    attachment = Attachment("https://cdn.example.com/x.png", "image/png")
    with pytest.raises(PermanentFailure) as failure:
        SENDER.request(GRAPH_ROOT, address, OutboundMessage("hi", attachments=(attachment,)), creds())
    assert failure.value.code == "attachments_unsupported"


# --- outcome -------------------------------------------------------------------------------------


def test_comment_reply_success_gives_the_comment_id() -> None:
    assert SENDER.outcome(ProviderResponse(200, b'{"id": "17873440459141021"}')) == "17873440459141021"


def test_private_reply_success_gives_the_message_id() -> None:
    body = b'{"recipient_id": "1254459154682919", "message_id": "m_AG5Hz2U"}'
    assert SENDER.outcome(ProviderResponse(200, body)) == "m_AG5Hz2U"


def test_429_waits_for_retry_after() -> None:
    response = ProviderResponse(429, b'{"error": {"message": "(#4) limit", "code": 4}}', {"Retry-After": "30"})
    with pytest.raises(TransientFailure) as failure:
        SENDER.outcome(response)
    assert failure.value.code == "meta_4" and failure.value.retry_after == 30


def test_rate_limit_waits_for_the_business_use_case_estimate() -> None:
    usage = {"112233445566778": [{"type": "messenger", "call_count": 100, "estimated_time_to_regain_access": 5}]}
    response = ProviderResponse(
        400,
        b'{"error": {"message": "(#32) Page request limit reached", "code": 32}}',
        {"X-Business-Use-Case-Usage": json.dumps(usage)},
    )
    with pytest.raises(TransientFailure) as failure:
        SENDER.outcome(response)
    assert failure.value.retry_after == 300


def test_app_usage_estimate_and_plain_5xx() -> None:
    response = ProviderResponse(
        503, b"busy", {"x-app-usage": '{"call_count": 100, "estimated_time_to_regain_access": 2}'}
    )
    with pytest.raises(TransientFailure) as failure:
        SENDER.outcome(response)
    assert failure.value.code == "http_503" and failure.value.retry_after == 120


def test_outside_the_messenger_window_is_permanent_with_meta_words() -> None:
    error = {"message": "(#10) This message is sent outside of allowed window.", "code": 10, "error_subcode": 2018278}
    with pytest.raises(PermanentFailure) as failure:
        SENDER.outcome(ProviderResponse(400, json.dumps({"error": error}).encode()))
    assert (
        failure.value.code == "meta_10"
        and "allowed window" in failure.value.detail
        and "2018278" in failure.value.detail
    )


# --- status --------------------------------------------------------------------------------------


def test_whatsapp_statuses_are_delivery_reports() -> None:
    delivered, failed = recorded("whatsapp-status.json")
    assert SENDER.status(delivered) == _status(
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA", "delivered"
    )
    report = SENDER.status(failed)
    assert report is not None and report.state == "failed"
    assert report.provider_message_id.endswith("M0YB")
    assert report.reason is not None and report.reason.startswith("meta_131047: Re-engagement message")
    assert "24 hours" in report.reason


def _status(message_id: str, state: str, reason: str | None = None):
    from switchboard_core.outbound import DeliveryStatus

    return DeliveryStatus(message_id, state, reason)  # type: ignore[arg-type]


def test_a_foreign_echo_and_template_notifications_are_not_statuses() -> None:
    # messenger-echo.json carries another app's metadata ("agent:42"): not something the hub sent.
    assert all(SENDER.status(e) is None for e in recorded("messenger-echo.json"))
    assert all(SENDER.status(e) is None for e in recorded("whatsapp-template-status.json"))
    assert all(SENDER.status(e) is None for e in recorded("messenger-read.json"))


def test_a_delivery_receipt_naming_one_message_is_delivered() -> None:
    [event] = recorded("messenger-delivery.json")
    assert SENDER.status(event) == _status("mid.1458668856218:ed81099e15d3f4f233", "delivered")


def test_the_pages_own_comment_is_the_echo_of_a_public_reply() -> None:
    own = [e for e in recorded("page-feed-mixed.json") if e.type == "provider.notification"]
    statuses = [SENDER.status(e) for e in own]
    assert _status("222333444555666_777888999000111", "delivered") in statuses


def echo(metadata: str | None) -> CanonicalEvent:
    message: dict[str, Any] = {"is_echo": True, "app_id": 1517776481860111, "mid": "m_echo_1", "text": "hi"}
    if metadata is not None:
        message["metadata"] = metadata
    item = {
        "sender": {"id": PAGE},
        "recipient": {"id": "6789012345678901"},
        "timestamp": 1718201699000,
        "message": message,
    }
    [event] = events_from({"object": "page", "entry": [{"id": PAGE, "time": 1718201700000, "messaging": [item]}]})
    return event


def test_the_echo_of_a_staff_answer_is_delivered_and_not_automated() -> None:
    event = echo("switchboard:message:msg_7")
    assert event.type == "message.sent" and "automated" not in event.attributes
    assert SENDER.status(event) == _status("m_echo_1", "delivered")


def test_only_the_echo_of_an_auto_reply_is_marked_automated() -> None:
    event = echo(AUTO_REPLY_MARK)
    assert event.attributes["automated"] is True
    assert SENDER.status(event) == _status("m_echo_1", "delivered")
    assert SENDER.status(echo(None)) is None  # a Page inbox message: Messenger echoes carry the hub's metadata


def test_an_instagram_echo_without_metadata_is_read_as_delivered_but_not_another_apps() -> None:
    def instagram_echo(metadata: str | None) -> CanonicalEvent:
        message: dict[str, Any] = {"is_echo": True, "mid": "aWdfZAG1_echo", "text": "hi"}
        if metadata is not None:
            message["metadata"] = metadata
        item = {
            "sender": {"id": IG_ACCOUNT},
            "recipient": {"id": "1234567890123456"},
            "timestamp": 1,
            "message": message,
        }
        [event] = events_from({"object": "instagram", "entry": [{"id": IG_ACCOUNT, "time": 1, "messaging": [item]}]})
        return event

    assert SENDER.status(instagram_echo(None)) == _status("aWdfZAG1_echo", "delivered")
    assert SENDER.status(instagram_echo("switchboard:message:m")) == _status("aWdfZAG1_echo", "delivered")
    assert SENDER.status(instagram_echo("agent:42")) is None


# --- round trips: sandbox -> build_status -> adapter -> status ------------------------------------


def hub_event(signed, webhook_credentials: dict[str, str]) -> CanonicalEvent:
    adapter = get_adapter("meta")
    request = webhook_request(signed.url, signed.body, signed.headers, method=signed.method, received_at=NOW)
    adapter.verify(request, webhook_credentials, NOW)
    [event] = events_from(signed.body)
    return event


def sent_record(apis, message_id: str) -> SentMessage:
    [sent] = [m for m in apis.messages if m.provider == "meta" and m.message_id == message_id]
    return sent


ANSWERS = [
    (WHATSAPP, OutboundMessage("On it", message_id="hub_1")),
    (WHATSAPP, OutboundMessage("", message_id="hub_2", template=TEMPLATE)),
    (WHATSAPP, OutboundMessage("receipt", message_id="hub_3", attachments=(Attachment("https://x.example/r.pdf"),))),
    (MESSENGER, OutboundMessage("Hello", message_id="hub_4")),
    ({**MESSENGER, "tag": "HUMAN_AGENT"}, OutboundMessage("Late hello", message_id="hub_5")),
    (INSTAGRAM_DM, OutboundMessage("Hi from IG", message_id="hub_6")),
    (
        {"product": "messenger_private_reply", "page_id": PAGE, "comment_id": FB_COMMENT},
        OutboundMessage("psst", message_id="hub_7"),
    ),
    (
        {"product": "instagram_private_reply", "account_id": IG_ACCOUNT, "comment_id": IG_COMMENT},
        OutboundMessage("psst", message_id="hub_8"),
    ),
    ({"product": "facebook_comment", "object_id": FB_COMMENT}, OutboundMessage("Public thanks", message_id="hub_9")),
    ({"product": "instagram_comment", "comment_id": IG_COMMENT}, OutboundMessage("Yes, blue", message_id="hub_10")),
]


@pytest.mark.parametrize("fields,message", ANSWERS, ids=[a[0]["product"] + "-" + str(a[1].message_id) for a in ANSWERS])
def test_every_answer_round_trips_through_the_sandbox_to_a_delivered_status(sandbox, fields, message) -> None:
    apis, url = sandbox
    outbound = demo_outbound_credentials("meta")
    apis.accept("meta", outbound)
    address = ReplyAddress(provider="meta", connection="con_1", fields=fields)
    provider_id = send(address, message, outbound, http_transport, base_url=f"{url}/meta")
    sent = sent_record(apis, provider_id)
    assert sent.details["product"] == fields["product"]
    webhook = demo_credentials("meta")
    event = hub_event(build_status("meta", webhook, HUB_URL, vars(sent), "delivered"), webhook)
    assert SENDER.status(event) == _status(provider_id, "delivered")
    if fields["product"] in ("messenger", "instagram", "messenger_private_reply", "instagram_private_reply"):
        assert event.type == "message.sent" and "automated" not in event.attributes


def test_sandbox_records_what_the_status_webhook_needs(sandbox) -> None:
    apis, url = sandbox
    outbound = demo_outbound_credentials("meta")
    apis.accept("meta", outbound)
    address = ReplyAddress(provider="meta", connection="con_1", fields={**MESSENGER, "tag": "HUMAN_AGENT"})
    mid = send(address, OutboundMessage("Late", message_id="hub_x"), outbound, http_transport, base_url=f"{url}/meta")
    details = sent_record(apis, mid).details
    assert details["from"] == PAGE and details["metadata"] == "switchboard:message:hub_x"
    assert (details["messaging_type"], details["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
    wa = ReplyAddress(provider="meta", connection="con_1", fields=WHATSAPP)
    wamid = send(wa, OutboundMessage("x", message_id="hub_y"), outbound, http_transport, base_url=f"{url}/meta")
    assert sent_record(apis, wamid).details["biz_opaque_callback_data"] == "hub_y"


@pytest.mark.parametrize("state", ["sent", "delivered", "read"])
def test_whatsapp_status_round_trip_for_every_state(sandbox, state: str) -> None:
    apis, url = sandbox
    outbound = demo_outbound_credentials("meta")
    apis.accept("meta", outbound)
    address = ReplyAddress(provider="meta", connection="con_1", fields=WHATSAPP)
    wamid = send(address, OutboundMessage("hi", message_id="hub_s"), outbound, http_transport, base_url=f"{url}/meta")
    webhook = demo_credentials("meta")
    event = hub_event(build_status("meta", webhook, HUB_URL, vars(sent_record(apis, wamid)), state), webhook)
    assert event.type == "message.status_updated" and event.attributes["biz_opaque_callback_data"] == "hub_s"
    assert SENDER.status(event) == _status(wamid, state)


def test_whatsapp_failed_round_trip_keeps_the_reason(sandbox) -> None:
    apis, url = sandbox
    outbound = demo_outbound_credentials("meta")
    apis.accept("meta", outbound)
    address = ReplyAddress(provider="meta", connection="con_1", fields=WHATSAPP)
    wamid = send(address, "hi", outbound, http_transport, base_url=f"{url}/meta")
    webhook = demo_credentials("meta")
    signed = build_status(
        "meta", webhook, HUB_URL, vars(sent_record(apis, wamid)), "failed", "131026 Message undeliverable"
    )
    report = SENDER.status(hub_event(signed, webhook))
    assert report == _status(wamid, "failed", "meta_131026: Message undeliverable")


@pytest.mark.parametrize("state", ["read", "failed"])
def test_messenger_has_no_read_or_failed_webhook_for_one_message(state: str) -> None:
    sent = vars(
        SentMessage("meta", to="1", text="hi", message_id="m_1", details={"product": "messenger", "from": PAGE})
    )
    with pytest.raises(ValueError):
        build_status("meta", demo_credentials("meta"), HUB_URL, sent, state)


def test_status_webhook_signed_with_another_app_secret_is_refused() -> None:
    sent = vars(
        SentMessage("meta", to="1", text="hi", message_id="m_1", details={"product": "messenger", "from": PAGE})
    )
    signed = build_status("meta", demo_credentials("meta"), HUB_URL, sent, "delivered")
    from switchboard_core.providers.base import SignatureError

    request = webhook_request(HUB_URL, signed.body, signed.headers, received_at=NOW)
    with pytest.raises(SignatureError):
        get_adapter("meta").verify(request, demo_credentials("meta"), NOW)


# --- sandbox refusals in Graph's shape ------------------------------------------------------------


def test_sandbox_refuses_the_wrong_token_per_host(sandbox) -> None:
    apis, url = sandbox
    outbound = demo_outbound_credentials("meta")
    apis.accept("meta", {"access_token": outbound["access_token"]})  # the Instagram token is not known
    address = ReplyAddress(provider="meta", connection="con_1", fields=INSTAGRAM_DM)
    with pytest.raises(PermanentFailure) as failure:
        send(address, "hi", outbound, http_transport, base_url=f"{url}/meta")
    assert failure.value.code == "meta_190"


def test_sandbox_refuses_a_message_tag_without_a_tag(sandbox) -> None:
    apis, url = sandbox
    outbound = demo_outbound_credentials("meta")
    apis.accept("meta", outbound)
    request = SENDER.request(f"{url}/meta", MESSENGER, OutboundMessage("x"), MetaCredentials(**outbound))
    body = body_of(request)
    body["messaging_type"] = "MESSAGE_TAG"
    from dataclasses import replace

    response = http_transport(replace(request, body=json.dumps(body).encode()))
    with pytest.raises(PermanentFailure) as failure:
        SENDER.outcome(response)
    assert failure.value.code == "meta_100" and "tag" in failure.value.detail


def test_sandbox_refuses_an_empty_comment_reply(sandbox) -> None:
    apis, url = sandbox
    outbound = demo_outbound_credentials("meta")
    apis.accept("meta", outbound)
    for fields in (
        {"product": "facebook_comment", "object_id": FB_COMMENT},
        {"product": "instagram_comment", "comment_id": IG_COMMENT},
    ):
        request = SENDER.request(f"{url}/meta", fields, OutboundMessage(""), MetaCredentials(**outbound))
        with pytest.raises(PermanentFailure) as failure:
            SENDER.outcome(http_transport(request))
        assert failure.value.code == "meta_100"


def test_sandbox_status_endpoint_calls_the_hub_back_with_metas_signed_webhook() -> None:
    """POST /_sandbox/status over HTTP, with a stand-in hub that verifies and reads what it gets."""
    import urllib.request

    from infra.local.provider_apis import ProviderApis, serve

    webhook = demo_credentials("meta")
    seen: list[Any] = []

    def hub(sent: SentMessage, state: str, reason: str | None) -> int:
        seen.append(
            SENDER.status(hub_event(build_status("meta", webhook, HUB_URL, vars(sent), state, reason), webhook))
        )
        return 200

    apis = ProviderApis()
    apis.status_webhook = hub
    server, url = serve(apis)
    try:
        outbound = demo_outbound_credentials("meta")
        apis.accept("meta", outbound)
        address = ReplyAddress(provider="meta", connection="con_1", fields=WHATSAPP)
        wamid = send(address, "hi", outbound, http_transport, base_url=f"{url}/meta")
        messenger = ReplyAddress(provider="meta", connection="con_1", fields=MESSENGER)
        mid = send(messenger, OutboundMessage("hi", message_id="h"), outbound, http_transport, base_url=f"{url}/meta")

        def order(payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            request = urllib.request.Request(f"{url}/_sandbox/status", data=json.dumps(payload).encode(), method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    return answer.status, json.loads(answer.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read())

        assert order({"message_id": wamid, "state": "read"}) == (
            200,
            {"provider": "meta", "message_id": wamid, "hub_status": 200},
        )
        assert order({"message_id": mid, "state": "delivered"})[0] == 200
        status, answer = order({"message_id": mid, "state": "failed", "reason": "x"})
        assert status == 409 and "echo" in answer["error"]
        assert seen == [_status(wamid, "read"), _status(mid, "delivered")]
    finally:
        server.shutdown()
