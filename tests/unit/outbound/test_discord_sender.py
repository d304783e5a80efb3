"""Discord answers: interaction follow-ups. The address of each interaction kind (recorded and local
samples, through the adapter) per visibility, the 15-minute token window, the documented webhook
request with nonce/enforce_nonce, Discord's JSON errors and 429s, and sandbox round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.provider_apis import demo_outbound_credentials
from infra.local.samples import build_sample, demo_credentials, sends_statuses
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
from switchboard_core.outbound.discord import DiscordCredentials, DiscordSender, nonce_for, snowflake_time
from switchboard_core.outbound.transport import http_transport
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import WebhookRequest
from tests.builders import posted

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EVENTS = Path(__file__).resolve().parents[2] / "events" / "discord"
HUB_URL = "https://hub.example/webhooks/discord/con_1"


def credentials() -> dict[str, str]:
    return demo_outbound_credentials("discord")


def event_from(body: bytes | dict[str, Any], received_at: datetime = NOW) -> CanonicalEvent:
    [event] = posted("discord", body, received_at=received_at)
    return event


def recorded(name: str, **changes: Any) -> CanonicalEvent:
    payload = json.loads((EVENTS / name).read_text())
    payload.update(changes)
    return event_from({k: v for k, v in payload.items() if v is not None})


# --- address -------------------------------------------------------------------------------------


def test_slash_command_in_a_server_is_answered_publicly_by_its_token() -> None:
    event = recorded("slash-command.json")
    address = reply_address(event)
    assert address is not None and (address.provider, address.connection) == ("discord", "con_1")
    assert address.fields == {"interaction_token": "A_UNIQUE_TOKEN", "interaction_id": "786008729715212338"}
    assert reply_address(event, "public") == address
    assert reply_address(event, "private") is None  # the channel sees a follow-up


def test_button_in_a_dm_is_answered_privately_never_publicly() -> None:
    event = recorded("button-dm.json")
    address = reply_address(event)
    assert address is not None and address.fields["interaction_token"] == "A_UNIQUE_TOKEN"
    assert reply_address(event, "private") == address
    assert reply_address(event, "public") is None


def test_modal_submit_is_answered() -> None:
    event = recorded("slash-command.json", type=5, data={"custom_id": "feedback", "components": []})
    assert event.attributes["interaction_type"] == "modal_submit"
    assert reply_address(event) is not None


@pytest.mark.parametrize("sample", ["slash-command", "button"])
def test_local_samples_give_the_token_and_interaction_they_carry(sample: str) -> None:
    signed = build_sample("discord", sample, demo_credentials("discord"), HUB_URL, now=NOW)
    payload = json.loads(signed.body)
    address = reply_address(event_from(signed.body))
    assert address is not None
    assert address.fields == {"interaction_token": payload["token"], "interaction_id": payload["id"]}
    # The sample's interaction id is a real snowflake of its time: the window is measured from it.
    assert abs(snowflake_time(payload["id"]) - NOW) < timedelta(seconds=1)


@pytest.mark.parametrize(
    "changes",
    [
        {"type": 4},  # autocomplete: answered with choices only
        {"token": None},
        {"token": "has spaces/and slashes"},
    ],
)
def test_no_address_for_autocomplete_or_a_missing_or_odd_token(changes: dict[str, Any]) -> None:
    assert reply_address(recorded("slash-command.json", **changes)) is None


def test_ping_has_no_event_to_answer() -> None:
    request = WebhookRequest(method="POST", url=HUB_URL, headers={}, body=(EVENTS / "ping.json").read_bytes())
    assert get_adapter("discord").normalise(request) == []


# --- prepare: the 15-minute token ----------------------------------------------------------------

INTERACTION_AT = datetime(2026, 11, 23, 11, 50, tzinfo=UTC)


def address_at(when: datetime) -> dict[str, str]:
    snowflake = ((int(when.timestamp() * 1000) - 1420070400000) << 22) | 12345
    return {"interaction_token": "aW50ZXJhY3Rpb246abc", "interaction_id": str(snowflake)}


def test_a_follow_up_within_15_minutes_is_prepared_as_addressed() -> None:
    address = address_at(INTERACTION_AT)
    late = INTERACTION_AT + timedelta(minutes=14, seconds=59)
    assert DiscordSender().prepare(address, OutboundMessage("hi"), INTERACTION_AT, late) == address


def test_after_15_minutes_the_token_has_expired_and_the_send_is_refused() -> None:
    address = address_at(INTERACTION_AT)
    with pytest.raises(Refused) as refused:
        DiscordSender().prepare(address, OutboundMessage("hi"), INTERACTION_AT, INTERACTION_AT + timedelta(minutes=15))
    assert refused.value.code == "discord_token_expired"
    assert refused.value.hints["expired_at"] == (INTERACTION_AT + timedelta(minutes=15)).isoformat()


def test_the_window_runs_from_discords_own_time_when_the_hub_received_it_later() -> None:
    address = address_at(INTERACTION_AT)
    received = INTERACTION_AT + timedelta(minutes=10)  # e.g. the event's time is when ingest saw it
    with pytest.raises(Refused):
        DiscordSender().prepare(address, OutboundMessage("hi"), received, INTERACTION_AT + timedelta(minutes=16))


def test_without_an_interaction_id_the_window_runs_from_the_inbound_time() -> None:
    address = {"interaction_token": "A_UNIQUE_TOKEN"}
    sender = DiscordSender()
    assert sender.prepare(address, OutboundMessage("hi"), NOW, NOW + timedelta(minutes=14)) == address
    with pytest.raises(Refused):
        sender.prepare(address, OutboundMessage("hi"), NOW, NOW + timedelta(minutes=15))


def test_content_over_2000_characters_is_refused() -> None:
    address = address_at(INTERACTION_AT)
    assert DiscordSender().prepare(address, OutboundMessage("a" * 2000), INTERACTION_AT, INTERACTION_AT)
    with pytest.raises(Refused) as refused:
        DiscordSender().prepare(address, OutboundMessage("a" * 2001), INTERACTION_AT, INTERACTION_AT)
    assert refused.value.code == "discord_message_too_long"


# --- request -------------------------------------------------------------------------------------


def test_request_is_the_documented_follow_up_with_the_hubs_id_as_enforced_nonce() -> None:
    creds = DiscordCredentials(application_id="123456789012345678")
    request = DiscordSender().request(
        "https://discord.com",
        {"interaction_token": "aW50ZXJhY3Rpb246MTIz", "interaction_id": "786008729715212338"},
        OutboundMessage("On it, @everyone calm down", message_id="msg_01HZY"),
        creds,
    )
    assert request.method == "POST"
    assert request.url == "https://discord.com/api/v10/webhooks/123456789012345678/aW50ZXJhY3Rpb246MTIz?wait=true"
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers  # the interaction token authorises
    assert json.loads(request.body) == {
        "content": "On it, @everyone calm down",
        "allowed_mentions": {"parse": []},
        "nonce": "msg_01HZY",
        "enforce_nonce": True,
    }


def test_a_long_hub_id_becomes_a_stable_25_character_nonce() -> None:
    long_id = "msg_" + "x" * 40
    assert nonce_for(long_id) == nonce_for(long_id) and len(nonce_for(long_id)) == 25
    assert nonce_for(long_id) != nonce_for(long_id + "y")
    assert nonce_for("short") == "short"


def test_an_auto_reply_without_a_message_id_sends_no_nonce() -> None:
    creds = DiscordCredentials(application_id="123456789012345678")
    body = json.loads(
        DiscordSender().request("https://d", {"interaction_token": "t"}, OutboundMessage("hi"), creds).body
    )
    assert "nonce" not in body and "enforce_nonce" not in body


def test_attachments_are_refused_before_any_call() -> None:
    creds = DiscordCredentials(application_id="123456789012345678")
    message = OutboundMessage("see", attachments=(Attachment("https://e/a.png", "image/png"),))
    with pytest.raises(PermanentFailure) as failure:
        DiscordSender().request("https://d", {"interaction_token": "t"}, message, creds)
    assert failure.value.code == "attachments_unsupported"


@pytest.mark.parametrize("application_id", ["", "12345", "abc123456789012345678", "1" * 21])
def test_application_ids_must_be_snowflakes(application_id: str) -> None:
    with pytest.raises(ValueError):
        DiscordCredentials.model_validate({"application_id": application_id})


# --- documented answers --------------------------------------------------------------------------


def answer(payload: Any, status: int, headers: dict[str, str] | None = None) -> ProviderResponse:
    return ProviderResponse(status=status, body=json.dumps(payload).encode(), headers=headers or {})


def test_the_created_message_gives_its_id() -> None:
    message = {"id": "1183756297475739718", "type": 0, "content": "hi", "channel_id": "645027906669510667"}
    assert DiscordSender().outcome(answer(message, 200)) == "1183756297475739718"


def test_a_204_without_wait_has_no_id_and_is_not_taken_for_sent() -> None:
    with pytest.raises(PermanentFailure) as failure:
        DiscordSender().outcome(ProviderResponse(status=204, body=b""))
    assert failure.value.code == "unexpected_response"


@pytest.mark.parametrize(
    ("status", "payload", "code", "words"),
    [
        (401, {"message": "Invalid Webhook Token", "code": 50027}, "discord_50027", "15 minutes"),
        (404, {"message": "Unknown Webhook", "code": 10015}, "discord_10015", "Unknown Webhook"),
        (400, {"message": "Cannot send an empty message", "code": 50006}, "discord_50006", "empty"),
        (
            400,
            {
                "message": "Invalid Form Body",
                "code": 50035,
                "errors": {
                    "content": {
                        "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]
                    }
                },
            },
            "discord_50035",
            "BASE_TYPE_MAX_LENGTH",
        ),
    ],
)
def test_json_errors_are_permanent_reasons_in_discords_words(status: int, payload: dict, code: str, words: str) -> None:
    with pytest.raises(PermanentFailure) as failure:
        DiscordSender().outcome(answer(payload, status))
    assert failure.value.code == code and words in failure.value.detail


def test_429_waits_the_bodys_retry_after() -> None:
    payload = {"message": "You are being rate limited.", "retry_after": 64.57, "global": False}
    headers = {"retry-after": "65", "x-ratelimit-reset-after": "64.57", "x-ratelimit-scope": "user"}
    with pytest.raises(TransientFailure) as failure:
        DiscordSender().outcome(answer(payload, 429, headers))
    assert failure.value.code == "discord_rate_limited" and failure.value.retry_after == pytest.approx(64.57)


def test_429_without_a_body_waits_the_reset_after_header_then_retry_after() -> None:
    with pytest.raises(TransientFailure) as failure:
        DiscordSender().outcome(ProviderResponse(429, b"", {"x-ratelimit-reset-after": "1.5"}))
    assert failure.value.retry_after == pytest.approx(1.5)
    with pytest.raises(TransientFailure) as failure:
        DiscordSender().outcome(ProviderResponse(429, b"", {"retry-after": "7"}))
    assert failure.value.retry_after == pytest.approx(7)


def test_global_rate_limit_says_so() -> None:
    with pytest.raises(TransientFailure) as failure:
        DiscordSender().outcome(answer({"message": "x", "retry_after": 1, "global": True}, 429))
    assert "global" in failure.value.detail


def test_server_errors_are_transient() -> None:
    with pytest.raises(TransientFailure):
        DiscordSender().outcome(ProviderResponse(status=502, body=b"bad gateway"))


def test_discord_sends_no_status_webhooks() -> None:
    assert delivery_status(recorded("slash-command.json")) is None
    assert not sends_statuses("discord")


# --- sandbox round trips -------------------------------------------------------------------------


def customer_address() -> ReplyAddress:
    signed = build_sample("discord", "slash-command", demo_credentials("discord"), HUB_URL)
    address = reply_address(event_from(signed.body))
    assert address is not None
    return address


def test_follow_up_goes_through_the_sandbox_once_per_nonce(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("discord", creds)
    address = customer_address()
    message = OutboundMessage("Ticket 4471 is open", message_id="msg_discord_once")
    first = send(address, message, creds, http_transport, base_url=f"{url}/discord")
    again = send(address, message, creds, http_transport, base_url=f"{url}/discord")
    assert first == again  # enforce_nonce: Discord returns the message it already created
    sent = [m for m in apis.messages if m.provider == "discord" and m.message_id == first]
    assert len(sent) == 1 and sent[0].text == "Ticket 4471 is open"
    assert sent[0].details["nonce"] == "msg_discord_once"
    assert sent[0].details["application_id"] == creds["application_id"]


def test_another_applications_id_is_unknown_webhook(sandbox) -> None:
    _, url = sandbox
    with pytest.raises(PermanentFailure) as failure:
        send(customer_address(), "hi", credentials(), http_transport, base_url=f"{url}/discord")
    assert failure.value.code == "discord_10015"


def test_a_token_discord_never_issued_is_invalid_webhook_token(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("discord", creds)
    address = ReplyAddress(provider="discord", connection="con_1", fields={"interaction_token": "A_UNIQUE_TOKEN"})
    with pytest.raises(PermanentFailure) as failure:
        send(address, "hi", creds, http_transport, base_url=f"{url}/discord")
    assert failure.value.code == "discord_50027"


def test_a_token_with_a_trailing_newline_has_no_address() -> None:
    assert reply_address(recorded("slash-command.json", token="A_UNIQUE_TOKEN\n")) is None
