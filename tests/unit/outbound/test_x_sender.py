"""X answers: the address of mentions and DMs (recorded and local samples, through the adapter) for
each visibility, the documented POST /2/tweets and DM requests, prepare's post length, X's problem
details mapped to reasons, the Account Activity echo read as delivered, and sandbox round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.provider_apis import demo_outbound_credentials
from infra.local.samples import build_sample, build_status, demo_credentials
from infra.local.samples.x import ACCOUNT
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound import (
    DeliveryStatus,
    PermanentFailure,
    Refused,
    ReplyAddress,
    TransientFailure,
    delivery_status,
    reply_address,
    send,
)
from switchboard_core.outbound.base import Attachment, OutboundMessage, ProviderResponse
from switchboard_core.outbound.transport import http_transport
from switchboard_core.outbound.x import XCredentials, XSender, tweet_weight
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import WebhookRequest
from tests.builders import published

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EVENTS = Path(__file__).resolve().parents[2] / "events" / "x"
HUB_URL = "https://hub.example/webhooks/x/con_1"


def credentials() -> dict[str, str]:
    return demo_outbound_credentials("x")


def events_from(request: WebhookRequest) -> list[CanonicalEvent]:
    return published("x", request, received_at=NOW)


def event_from(body: bytes | dict[str, Any]) -> CanonicalEvent:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    [event] = events_from(WebhookRequest(method="POST", url=HUB_URL, headers={}, body=raw))
    return event


def recorded(name: str) -> CanonicalEvent:
    return event_from((EVENTS / name).read_bytes())


def sample(name: str) -> CanonicalEvent:
    signed = build_sample("x", name, demo_credentials("x"), HUB_URL)
    return event_from(signed.body)


# --- address -------------------------------------------------------------------------------------


def test_mention_is_answered_publicly_by_default_as_a_reply_to_its_post() -> None:
    event = recorded("tweet-mention.json")
    assert event.type == "mention.created"
    address = reply_address(event)
    assert address is not None and (address.provider, address.connection) == ("x", "con_1")
    assert address.fields == {"kind": "reply", "in_reply_to_tweet_id": "1050118621198921728"}
    assert reply_address(event, "public") == address


def test_mention_answered_privately_is_a_dm_to_its_author() -> None:
    address = reply_address(recorded("tweet-mention.json"), "private")
    assert address is not None and address.fields == {"kind": "dm", "participant_id": "6253282"}


def test_dm_is_answered_privately_and_never_publicly() -> None:
    event = recorded("direct-message.json")
    # In the recorded example the subscribed account (for_user_id) is the recipient.
    assert event.type == "message.received"
    expected = {"kind": "dm", "participant_id": "3001969357"}
    assert reply_address(event).fields == expected  # type: ignore[union-attr]
    assert reply_address(event, "private").fields == expected  # type: ignore[union-attr]
    assert reply_address(event, "public") is None


@pytest.mark.parametrize("name", ["mention", "direct-message"])
def test_local_samples_give_the_ids_they_carry(name: str) -> None:
    signed = build_sample("x", name, demo_credentials("x"), HUB_URL)
    payload = json.loads(signed.body)
    address = reply_address(event_from(signed.body))
    assert address is not None
    if name == "mention":
        assert address.fields == {
            "kind": "reply",
            "in_reply_to_tweet_id": payload["tweet_create_events"][0]["id_str"],
        }
    else:
        sender = payload["direct_message_events"][0]["message_create"]["sender_id"]
        assert address.fields == {"kind": "dm", "participant_id": sender}


def own_tweet() -> dict[str, Any]:
    return {
        "for_user_id": ACCOUNT["id_str"],
        "tweet_create_events": [
            {
                "id_str": "1850000000000000001",
                "text": "@jr on it",
                "user": dict(ACCOUNT),
                "timestamp_ms": "1795444809000",
            }
        ],
    }


def own_dm() -> dict[str, Any]:
    return {
        "for_user_id": ACCOUNT["id_str"],
        "direct_message_events": [
            {
                "type": "message_create",
                "id": "1850000000000000002",
                "created_timestamp": "1795444809000",
                "message_create": {
                    "target": {"recipient_id": "42"},
                    "sender_id": ACCOUNT["id_str"],
                    "message_data": {"text": "on it"},
                },
            }
        ],
    }


@pytest.mark.parametrize("visibility", [None, "public", "private"])
@pytest.mark.parametrize(
    "body",
    [
        own_tweet(),
        own_dm(),
        json.loads((EVENTS / "favorite.json").read_text()),
        json.loads((EVENTS / "follow.json").read_text()),
    ],
    ids=["own-post", "own-dm", "favorite", "follow"],
)
def test_no_address_for_the_accounts_own_posts_and_dms_likes_or_notifications(body: dict, visibility: Any) -> None:
    assert reply_address(event_from(body), visibility) is None


def test_no_address_for_a_mention_without_ids() -> None:
    body = {"for_user_id": "1", "tweet_create_events": [{"text": "@b hi", "user": {"screen_name": "a"}}]}
    event = event_from(body)
    assert event.type == "mention.created"
    assert reply_address(event) is None and reply_address(event, "private") is None


# --- prepare -------------------------------------------------------------------------------------

REPLY = {"kind": "reply", "in_reply_to_tweet_id": "1050118621198921728"}
DM = {"kind": "dm", "participant_id": "6253282"}


def test_prepare_passes_a_post_of_280_weighted_characters_and_refuses_281() -> None:
    sender = XSender()
    long_ago = NOW - timedelta(days=30)  # X has no messaging window
    assert sender.prepare(REPLY, OutboundMessage("a" * 280), long_ago, NOW) == REPLY
    with pytest.raises(Refused) as refused:
        sender.prepare(REPLY, OutboundMessage("a" * 281), long_ago, NOW)
    assert refused.value.code == "x_post_too_long"
    assert refused.value.hints["limit"] == 280 and refused.value.hints["weight"] == 281
    assert "private" in refused.value.hints["hint"]


def test_weights_follow_twitter_text_cjk_and_emoji_count_double_urls_23() -> None:
    assert tweet_weight("hello") == 5
    assert tweet_weight("日本語") == 6
    assert tweet_weight("👍🏽") == 2  # the skin tone modifier is part of the emoji
    assert tweet_weight("see https://example.com/a/very/long/path/that/goes/on/and/on ok") == 4 + 23 + 3
    with pytest.raises(Refused):
        XSender().prepare(REPLY, OutboundMessage("日" * 141), NOW, NOW)


def test_a_long_answer_can_go_as_a_dm_but_not_beyond_10000_characters() -> None:
    assert XSender().prepare(DM, OutboundMessage("a" * 10_000), NOW, NOW) == DM
    with pytest.raises(Refused) as refused:
        XSender().prepare(DM, OutboundMessage("a" * 10_001), NOW, NOW)
    assert refused.value.code == "x_dm_too_long"


# --- request -------------------------------------------------------------------------------------


def test_reply_request_is_the_documented_create_post_call() -> None:
    creds = XCredentials.model_validate(credentials())
    request = XSender().request("https://api.x.com", REPLY, OutboundMessage("Sorry! DM us your order."), creds)
    assert (request.method, request.url) == ("POST", "https://api.x.com/2/tweets")
    assert request.headers["Authorization"] == f"Bearer {creds.access_token}"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "text": "Sorry! DM us your order.",
        "reply": {"in_reply_to_tweet_id": "1050118621198921728"},
    }


def test_dm_request_is_the_documented_send_to_participant_call() -> None:
    creds = XCredentials.model_validate(credentials())
    request = XSender().request("https://api.x.com", DM, OutboundMessage("Hi Jordan, née ✓"), creds)
    assert (request.method, request.url) == ("POST", "https://api.x.com/2/dm_conversations/with/6253282/messages")
    assert request.headers["Authorization"] == f"Bearer {creds.access_token}"
    assert json.loads(request.body) == {"text": "Hi Jordan, née ✓"}


def test_attachments_and_empty_text_are_refused_before_any_call() -> None:
    creds = XCredentials.model_validate(credentials())
    with pytest.raises(PermanentFailure) as failure:
        XSender().request(
            "https://api.x.com", REPLY, OutboundMessage("x", attachments=(Attachment("https://e/a.png"),)), creds
        )
    assert failure.value.code == "attachments_unsupported"
    with pytest.raises(PermanentFailure) as failure:
        XSender().request("https://api.x.com", DM, OutboundMessage("  "), creds)
    assert failure.value.code == "empty_text"


@pytest.mark.parametrize("token", ["short", "has space in it and is long enough", "x" * 600, "tok\nen" * 5])
def test_malformed_access_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValueError):
        XCredentials.model_validate({"access_token": token})


# --- documented answers --------------------------------------------------------------------------


def answer(payload: Any, status: int, headers: dict[str, str] | None = None) -> ProviderResponse:
    return ProviderResponse(status=status, body=json.dumps(payload).encode(), headers=headers or {})


def test_created_post_gives_its_id_and_a_sent_dm_its_event_id() -> None:
    post = {"data": {"id": "1445880548472328192", "text": "Hello!", "edit_history_tweet_ids": ["1445880548472328192"]}}
    assert XSender().outcome(answer(post, 201)) == "1445880548472328192"
    dm = {"data": {"dm_conversation_id": "1346889436626259968", "dm_event_id": "128341038123"}}
    assert XSender().outcome(answer(dm, 201)) == "128341038123"


@pytest.mark.parametrize(
    ("status", "payload", "code", "words"),
    [
        (
            401,
            {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"},
            "x_unauthorized",
            "Unauthorized",
        ),
        (
            403,
            {
                "detail": "You are not allowed to create a Tweet with duplicate content.",
                "type": "about:blank",
                "title": "Forbidden",
                "status": 403,
            },
            "x_forbidden",
            "duplicate content",
        ),
        (
            403,
            {
                "title": "Unsupported Authentication",
                "detail": "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.",
                "type": "https://api.twitter.com/2/problems/unsupported-authentication",
                "status": 403,
            },
            "x_unsupported_authentication",
            "Application-Only",
        ),
        (
            400,
            {
                "errors": [
                    {
                        "parameters": {"reply.in_reply_to_tweet_id": ["1"]},
                        "message": "The `reply.in_reply_to_tweet_id` query parameter value [1] is not valid",
                    }
                ],
                "title": "Invalid Request",
                "detail": "One or more parameters to your request was invalid.",
                "type": "https://api.twitter.com/2/problems/invalid-request",
            },
            "x_invalid_request",
            "in_reply_to_tweet_id",
        ),
    ],
)
def test_problem_details_are_permanent_reasons_in_xs_words(status: int, payload: dict, code: str, words: str) -> None:
    with pytest.raises(PermanentFailure) as failure:
        XSender().outcome(answer(payload, status))
    assert failure.value.code == code and words in failure.value.detail


def test_429_is_transient_and_waits_until_x_rate_limit_reset() -> None:
    reset = int(datetime.now(UTC).timestamp()) + 120
    headers = {"x-rate-limit-limit": "200", "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)}
    payload = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}
    with pytest.raises(TransientFailure) as failure:
        XSender().outcome(answer(payload, 429, headers))
    assert failure.value.code == "x_too_many_requests"
    assert failure.value.retry_after is not None and 100 < failure.value.retry_after <= 120


def test_usage_cap_is_transient_with_its_problem_type() -> None:
    payload = {
        "title": "UsageCapExceeded",
        "detail": "Usage cap exceeded: Monthly product cap",
        "type": "https://api.twitter.com/2/problems/usage-capped",
        "status": 429,
    }
    with pytest.raises(TransientFailure) as failure:
        XSender().outcome(answer(payload, 429))
    assert failure.value.code == "x_usage_capped" and "Monthly" in failure.value.detail


def test_server_errors_are_transient_even_without_a_problem_body() -> None:
    with pytest.raises(TransientFailure):
        XSender().outcome(ProviderResponse(status=503, body=b"<html>over capacity</html>"))


@pytest.mark.parametrize("payload", [{"data": {}}, {"data": {"id": "abc"}}, {}])
def test_success_without_an_id_is_not_taken_for_sent(payload: dict) -> None:
    with pytest.raises(PermanentFailure) as failure:
        XSender().outcome(answer(payload, 201))
    assert failure.value.code == "unexpected_response"


# --- status: the Account Activity echo -----------------------------------------------------------


def test_the_accounts_own_post_and_dm_read_as_delivered() -> None:
    assert delivery_status(event_from(own_tweet())) == DeliveryStatus("1850000000000000001", "delivered")
    assert delivery_status(event_from(own_dm())) == DeliveryStatus("1850000000000000002", "delivered")


def test_the_customers_read_receipt_marks_the_dm_read_but_the_accounts_own_does_not() -> None:
    def read_by(reader: str) -> dict[str, Any]:
        return {
            "for_user_id": ACCOUNT["id_str"],
            "direct_message_mark_read_events": [
                {
                    "created_timestamp": "1795444809000",
                    "sender_id": reader,
                    "target": {"recipient_id": "1"},
                    "last_read_event_id": "1850000000000000002",
                }
            ],
        }

    assert delivery_status(event_from(read_by("42"))) == DeliveryStatus("1850000000000000002", "read")
    assert delivery_status(event_from(read_by(str(ACCOUNT["id_str"])))) is None


@pytest.mark.parametrize("name", ["tweet-mention.json", "direct-message.json", "favorite.json", "follow.json"])
def test_what_customers_send_is_no_delivery_status(name: str) -> None:
    assert delivery_status(recorded(name)) is None


# --- sandbox round trips -------------------------------------------------------------------------


def address_of(fields: dict[str, str]) -> ReplyAddress:
    return ReplyAddress(provider="x", connection="con_1", fields=fields)


def customer_address() -> ReplyAddress:
    address = reply_address(sample("mention"))
    assert address is not None
    return address


def status_round_trip(sent: Any, state: str) -> DeliveryStatus | None:
    """The sandbox's status callback for `sent`, verified and normalised by the adapter, read by the sender."""
    inbound = demo_credentials("x")
    signed = build_status("x", inbound, HUB_URL, vars(sent), state)
    request = WebhookRequest(
        method="POST", url=HUB_URL, headers={k.lower(): v for k, v in signed.headers.items()}, body=signed.body
    )
    get_adapter("x").verify(request, inbound, NOW)
    [event] = events_from(request)
    return delivery_status(event)


def test_reply_to_a_mention_round_trips_through_the_sandbox_and_its_echo(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("x", creds)
    address = customer_address()
    post_id = send(address, "Sorry about #4471, we're on it", creds, http_transport, base_url=f"{url}/x")
    sent = [m for m in apis.messages if m.provider == "x" and m.message_id == post_id]
    assert len(sent) == 1 and sent[0].text == "Sorry about #4471, we're on it"
    assert sent[0].details == {"kind": "reply", "in_reply_to_tweet_id": address.fields["in_reply_to_tweet_id"]}
    assert status_round_trip(sent[0], "delivered") == DeliveryStatus(post_id, "delivered")
    with pytest.raises(ValueError, match="no 'read'"):
        build_status("x", demo_credentials("x"), HUB_URL, vars(sent[0]), "read")


def test_dm_round_trips_through_the_sandbox_its_echo_and_read_receipt(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("x", creds)
    address = reply_address(sample("direct-message"))
    assert address is not None
    event_id = send(address, "Yes, send us the new address", creds, http_transport, base_url=f"{url}/x")
    [sent] = [m for m in apis.messages if m.message_id == event_id]
    assert sent.to == address.fields["participant_id"] and sent.details["kind"] == "dm"
    assert status_round_trip(sent, "delivered") == DeliveryStatus(event_id, "delivered")
    assert status_round_trip(sent, "read") == DeliveryStatus(event_id, "read")
    for state in ("sent", "failed"):
        with pytest.raises(ValueError):
            build_status("x", demo_credentials("x"), HUB_URL, vars(sent), state)


def test_unknown_token_is_xs_401_problem_and_permanent(sandbox) -> None:
    _, url = sandbox
    with pytest.raises(PermanentFailure) as failure:
        send(customer_address(), "hi", credentials(), http_transport, base_url=f"{url}/x")
    assert failure.value.code == "x_unauthorized"


def test_sandbox_refuses_the_same_reply_twice_as_x_does(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("x", creds)
    address = customer_address()
    send(address, "Thanks for waiting", creds, http_transport, base_url=f"{url}/x")
    with pytest.raises(PermanentFailure) as failure:
        send(address, "Thanks for waiting", creds, http_transport, base_url=f"{url}/x")
    assert failure.value.code == "x_forbidden" and "duplicate" in failure.value.detail
    assert len([m for m in apis.messages if m.provider == "x" and m.text == "Thanks for waiting"]) == 1


def test_sandbox_refuses_a_bad_participant_with_an_invalid_request_problem(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("x", creds)
    with pytest.raises(PermanentFailure) as failure:
        send(address_of({"kind": "dm", "participant_id": "jordan"}), "hi", creds, http_transport, base_url=f"{url}/x")
    assert failure.value.code == "x_invalid_request" and "participant_id" in failure.value.detail


def test_sandbox_status_route_calls_the_hub_back_with_the_echo_and_refuses_what_x_never_sends(sandbox) -> None:
    import urllib.error
    import urllib.request

    apis, url = sandbox
    creds = credentials()
    apis.accept("x", creds)
    post_id = send(customer_address(), "Checking now", creds, http_transport, base_url=f"{url}/x")
    heard: list[DeliveryStatus | None] = []

    def hub(sent: Any, state: str, reason: str | None) -> int:
        heard.append(status_round_trip(sent, state))
        return 200

    apis.status_webhook = hub
    try:

        def order(state: str) -> tuple[int, dict[str, Any]]:
            body = json.dumps({"message_id": post_id, "state": state}).encode()
            request = urllib.request.Request(f"{url}/_sandbox/status", data=body, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as answer_:
                    return answer_.status, json.loads(answer_.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read())

        assert order("delivered") == (200, {"provider": "x", "message_id": post_id, "hub_status": 200})
        assert heard == [DeliveryStatus(post_id, "delivered")]
        status, body = order("failed")
        assert status == 409 and "X reports no 'failed'" in body["error"]
    finally:
        apis.status_webhook = None


def test_an_id_with_a_trailing_newline_has_no_address() -> None:
    body = {"for_user_id": "1", "tweet_create_events": [{"id_str": "123\n", "user": {"id_str": "9"}}]}
    assert reply_address(event_from(body)) is None
