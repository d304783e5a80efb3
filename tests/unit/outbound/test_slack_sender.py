"""Slack replies: the address read from real events (recorded and the local samples, through the
adapter), the chat.postMessage request, and every kind of answer (including Slack's HTTP 200
ok:false refusals), against the loopback sandbox over real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from infra.local.provider_apis import demo_outbound_credentials
from infra.local.samples import build_sample, demo_credentials
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound import PermanentFailure, ReplyAddress, TransientFailure, reply_address, send
from switchboard_core.outbound.base import OutboundMessage, ProviderResponse
from switchboard_core.outbound.slack import SlackCredentials, SlackSender
from switchboard_core.outbound.transport import http_transport
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import WebhookRequest
from tests.builders import posted

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EVENTS = Path(__file__).resolve().parents[2] / "events" / "slack"
HUB_URL = "https://hub.example/webhooks/slack/con_1"
FORM = "application/x-www-form-urlencoded"


def credentials() -> dict[str, str]:
    return demo_outbound_credentials("slack")


def event_from(body: bytes | dict[str, Any], content_type: str = "application/json") -> CanonicalEvent:
    [event] = posted("slack", body, received_at=NOW, headers={"content-type": content_type})
    return event


def recorded(name: str) -> CanonicalEvent:
    path = EVENTS / name
    return event_from(path.read_bytes(), FORM if name.endswith(".form") else "application/json")


def callback(**event: Any) -> dict[str, Any]:
    """An event_callback envelope installed with a bot token (the bot user is U0BOT0001)."""
    return {
        "token": "x",
        "team_id": "T123ABC456",
        "api_app_id": "A123",
        "type": "event_callback",
        "event_id": "Ev1",
        "event_time": 1795444809,
        "authorizations": [{"team_id": "T123ABC456", "user_id": "U0BOT0001", "is_bot": True}],
        "event": {
            "type": "message",
            "channel": "C123ABC456",
            "user": "U222BBB222",
            "text": "help please",
            "ts": "1795444809.000100",
            "event_ts": "1795444809.000100",
            "channel_type": "channel",
            **event,
        },
    }


# --- address -------------------------------------------------------------------------------------


def test_message_is_answered_in_a_thread_under_it() -> None:
    address = reply_address(recorded("message.json"))
    assert address is not None
    assert (address.provider, address.connection) == ("slack", "con_1")
    assert address.fields == {"channel": "C123ABC456", "thread_ts": "1355517523.000005"}


def test_thread_reply_is_answered_in_the_same_thread_not_under_the_reply() -> None:
    address = reply_address(recorded("thread-reply-with-file.json"))
    assert address is not None and address.fields == {"channel": "C123ABC456", "thread_ts": "1355517523.000005"}


def test_app_mention_is_answered_in_its_thread() -> None:
    address = reply_address(recorded("app-mention.json"))
    assert address is not None and address.fields == {"channel": "C123ABC456", "thread_ts": "1515449522.000016"}


def test_slash_command_is_answered_in_the_channel_without_a_thread() -> None:
    address = reply_address(recorded("slash-command.form"))
    assert address is not None and address.fields == {"channel": "G8PSS9T3V"}


@pytest.mark.parametrize("sample", ["message", "app-mention", "slash-command"])
def test_local_samples_give_the_channel_and_thread_they_carry(sample: str) -> None:
    signed = build_sample("slack", sample, demo_credentials("slack"), HUB_URL)
    content_type = signed.headers.get("Content-Type", "application/json")
    address = reply_address(event_from(signed.body, content_type))
    assert address is not None
    if sample == "slash-command":
        assert address.fields == {"channel": parse_qs(signed.body.decode())["channel_id"][0]}
    else:
        event = json.loads(signed.body)["event"]
        assert address.fields == {"channel": event["channel"], "thread_ts": event.get("thread_ts") or event["ts"]}


@pytest.mark.parametrize(
    "event",
    [
        {"bot_id": "B0OTHER1", "subtype": "bot_message", "username": "deploybot"},
        {"bot_id": "B0OURS01"},  # our own chat.postMessage reply comes back as a message event
        {"user": "U0BOT0001"},  # the installing bot user itself
        {"subtype": "channel_join"},
        {"subtype": "channel_topic"},
        {"channel": None},
        {"ts": "not-a-ts"},
    ],
)
def test_no_address_for_bots_system_messages_or_incomplete_events(event: dict[str, Any]) -> None:
    body = callback(**event)
    body["event"] = {k: v for k, v in body["event"].items() if v is not None}
    assert reply_address(event_from(body)) is None


@pytest.mark.parametrize("name", ["message-changed.json", "reaction-added.json", "channel-created.json"])
def test_no_address_for_recorded_edits_reactions_and_notifications(name: str) -> None:
    assert reply_address(recorded(name)) is None


def test_no_address_for_block_actions() -> None:
    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": "U1"},
        "channel": {"id": "C1"},
        "trigger_id": "1.2.3",
        "actions": [{"action_id": "a", "value": "v", "action_ts": "1795444809.1"}],
        "message": {"ts": "1795444800.000100"},
    }
    form = "payload=" + json.dumps(payload)
    assert reply_address(event_from(form.encode(), FORM)) is None


# --- request -------------------------------------------------------------------------------------


def test_request_is_the_documented_post_message_call() -> None:
    creds = SlackCredentials.model_validate(credentials())
    request = SlackSender().request(
        "https://slack.com",
        {"channel": "C123ABC456", "thread_ts": "1355517523.000005"},
        OutboundMessage("Thanks, we're on it"),
        creds,
    )
    assert request.method == "POST" and request.url == "https://slack.com/api/chat.postMessage"
    assert request.headers["Authorization"] == f"Bearer {creds.bot_token}"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(request.body) == {
        "channel": "C123ABC456",
        "text": "Thanks, we're on it",
        "thread_ts": "1355517523.000005",
    }


def test_slash_command_reply_has_no_thread_ts() -> None:
    creds = SlackCredentials.model_validate(credentials())
    assert json.loads(SlackSender().request("https://x", {"channel": "C1"}, OutboundMessage("hi"), creds).body) == {
        "channel": "C1",
        "text": "hi",
    }


def test_control_characters_are_escaped_so_text_cannot_ping_the_channel() -> None:
    creds = SlackCredentials.model_validate(credentials())
    body = json.loads(
        SlackSender()
        .request("https://x", {"channel": "C1"}, OutboundMessage("<!channel> R&D <http://x|y>"), creds)
        .body
    )
    assert body["text"] == "&lt;!channel&gt; R&amp;D &lt;http://x|y&gt;"


def test_long_text_is_clipped() -> None:
    creds = SlackCredentials.model_validate(credentials())
    assert (
        len(
            json.loads(SlackSender().request("https://x", {"channel": "C1"}, OutboundMessage("x" * 5000), creds).body)[
                "text"
            ]
        )
        == 1600
    )


@pytest.mark.parametrize("token", ["xoxp-1234567890-1234567890-abcdef", "xoxb-", "Bearer xoxb-123-456-abcdefghijkl"])
def test_only_bot_tokens_are_accepted(token: str) -> None:
    with pytest.raises(ValueError):
        SlackCredentials.model_validate({"bot_token": token})


# --- sandbox round trips -------------------------------------------------------------------------


def customer_address() -> ReplyAddress:
    address = reply_address(event_from(callback()))
    assert address is not None
    return address


def test_sends_through_the_sandbox_over_http(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("slack", creds)
    ts = send(customer_address(), "We got your message", creds, http_transport, base_url=f"{url}/slack")
    sent = [m for m in apis.messages if m.provider == "slack" and m.message_id == ts]
    assert len(sent) == 1 and sent[0].to == "C123ABC456" and sent[0].text == "We got your message"
    assert sent[0].details["thread_ts"] == "1795444809.000100"


def test_wrong_token_is_slacks_http_200_invalid_auth_and_permanent(sandbox) -> None:
    _, url = sandbox
    request = SlackSender().request(
        f"{url}/slack", {"channel": "C1"}, OutboundMessage("hi"), SlackCredentials(**credentials())
    )
    response = http_transport(request)
    assert response.status == 200 and response.json() == {"ok": False, "error": "invalid_auth"}
    with pytest.raises(PermanentFailure) as failure:
        SlackSender().outcome(response)
    assert failure.value.code == "slack_invalid_auth"


def test_sandbox_refuses_a_message_without_text(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("slack", creds)
    request = SlackSender().request(f"{url}/slack", {"channel": "C1"}, OutboundMessage(""), SlackCredentials(**creds))
    with pytest.raises(PermanentFailure) as failure:
        SlackSender().outcome(http_transport(request))
    assert failure.value.code == "slack_no_text"


# --- documented answers --------------------------------------------------------------------------


def answer(payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> ProviderResponse:
    return ProviderResponse(status=status, body=json.dumps(payload).encode(), headers=headers or {})


def test_documented_success_gives_the_message_ts() -> None:
    assert (
        SlackSender().outcome(
            answer(
                {
                    "ok": True,
                    "channel": "C123ABC456",
                    "ts": "1503435956.000247",
                    "message": {"text": "hi", "ts": "1503435956.000247"},
                }
            )
        )
        == "1503435956.000247"
    )


@pytest.mark.parametrize(
    "error", ["channel_not_found", "not_in_channel", "is_archived", "missing_scope", "token_revoked", "msg_too_long"]
)
def test_http_200_ok_false_is_a_permanent_refusal(error: str) -> None:
    with pytest.raises(PermanentFailure) as failure:
        SlackSender().outcome(answer({"ok": False, "error": error}))
    assert failure.value.code == f"slack_{error}"


def test_missing_scope_names_the_scope_needed() -> None:
    with pytest.raises(PermanentFailure) as failure:
        SlackSender().outcome(
            answer({"ok": False, "error": "missing_scope", "needed": "chat:write", "provided": "commands"})
        )
    assert "chat:write" in failure.value.detail


def test_ratelimited_with_retry_after_is_transient() -> None:
    with pytest.raises(TransientFailure) as failure:
        SlackSender().outcome(answer({"ok": False, "error": "ratelimited"}, status=429, headers={"retry-after": "30"}))
    assert failure.value.code == "slack_ratelimited" and "30" in failure.value.detail


@pytest.mark.parametrize("error", ["ratelimited", "service_unavailable", "internal_error"])
def test_temporary_errors_in_an_http_200_body_are_transient(error: str) -> None:
    with pytest.raises(TransientFailure):
        SlackSender().outcome(answer({"ok": False, "error": error}))


@pytest.mark.parametrize("payload", [{"ok": True}, {"ok": True, "ts": ""}, {}])
def test_success_without_ts_is_not_taken_for_sent(payload: dict[str, Any]) -> None:
    with pytest.raises(PermanentFailure):
        SlackSender().outcome(answer(payload))


def test_invalid_stored_credentials_fail_permanently() -> None:
    with pytest.raises(PermanentFailure) as failure:
        send(
            customer_address(),
            "hi",
            {"bot_token": "xoxp-user-token"},
            http_transport,
            base_url="http://127.0.0.1:9/slack",
        )
    assert failure.value.code == "invalid_credentials"


# --- staff answers: attachments, rate limits, the bot's own message as delivered -----------------


def test_attachments_are_refused_before_any_call() -> None:
    from switchboard_core.outbound.base import Attachment

    creds = SlackCredentials.model_validate(credentials())
    message = OutboundMessage("see", attachments=(Attachment("https://e/a.pdf", "application/pdf"),))
    with pytest.raises(PermanentFailure) as failure:
        SlackSender().request("https://slack.com", {"channel": "C1"}, message, creds)
    assert failure.value.code == "attachments_unsupported"


def test_ratelimited_waits_the_retry_after_header() -> None:
    with pytest.raises(TransientFailure) as failure:
        SlackSender().outcome(answer({"ok": False, "error": "ratelimited"}, status=429, headers={"retry-after": "30"}))
    assert failure.value.retry_after == 30


def echo_event(signed_body: bytes) -> CanonicalEvent:
    return event_from(signed_body)


def test_answer_round_trips_through_the_sandbox_and_comes_back_as_the_bots_own_message(sandbox) -> None:
    from infra.local.samples import build_status
    from switchboard_core.outbound import DeliveryStatus, delivery_status

    apis, url = sandbox
    creds = credentials()
    apis.accept("slack", creds)
    ts = send(
        customer_address(), OutboundMessage("Looking into it", message_id="m1"), creds, http_transport, f"{url}/slack"
    )
    [sent] = [m for m in apis.messages if m.provider == "slack" and m.message_id == ts]
    inbound = demo_credentials("slack")
    signed = build_status("slack", inbound, HUB_URL, vars(sent), "delivered")
    request = WebhookRequest(
        method="POST", url=HUB_URL, headers={k.lower(): v for k, v in signed.headers.items()}, body=signed.body
    )
    get_adapter("slack").verify(request, inbound, datetime.now(UTC))
    event = echo_event(signed.body)
    assert event.type == "message.sent" and event.attributes["thread_ts"] == "1795444809.000100"
    assert delivery_status(event) == DeliveryStatus(ts, "delivered")
    for state in ("sent", "read", "failed"):
        with pytest.raises(ValueError):
            build_status("slack", inbound, HUB_URL, vars(sent), state)


def test_another_apps_bot_message_and_customers_messages_are_no_status() -> None:
    from switchboard_core.outbound import delivery_status

    other_bot = callback(user="U0OTHERBOT", bot_id="B0OTHER1")  # the installing bot is U0BOT0001
    assert event_from(other_bot).type == "message.sent"
    assert delivery_status(event_from(other_bot)) is None
    ours = callback(user="U0BOT0001", bot_id="B0OURS01", ts="1795444810.000200")
    assert delivery_status(event_from(ours)).provider_message_id == "1795444810.000200"  # type: ignore[union-attr]
    legacy = callback(subtype="bot_message", bot_id="B0HOOK01", user=None, ts="1795444811.000300")
    legacy["event"] = {k: v for k, v in legacy["event"].items() if v is not None}
    assert delivery_status(event_from(legacy)).state == "delivered"  # type: ignore[union-attr]
    assert delivery_status(event_from(callback())) is None
    assert delivery_status(recorded("message.json")) is None
