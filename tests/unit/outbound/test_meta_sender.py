"""Meta replies: the address read from real webhooks (recorded and the local samples, through the
adapter), the WhatsApp Cloud API and Messenger Send API requests, and every kind of Graph answer,
against the loopback sandbox over real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from infra.local.provider_apis import demo_outbound_credentials
from infra.local.samples import build_sample, demo_credentials
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound import (
    SENDERS,
    PermanentFailure,
    ReplyAddress,
    TransientFailure,
    get_sender,
    reply_address,
    send,
)
from switchboard_core.outbound.base import OutboundMessage, ProviderResponse
from switchboard_core.outbound.meta import GRAPH_API_VERSION, MetaCredentials, MetaSender
from switchboard_core.outbound.transport import http_transport
from tests.builders import posted

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EVENTS = Path(__file__).resolve().parents[2] / "events" / "meta"
HUB_URL = "https://hub.example/webhooks/meta/con_1"


def credentials() -> dict[str, str]:
    return demo_outbound_credentials("meta")


def events_from(body: bytes | dict[str, Any]) -> list[CanonicalEvent]:
    return posted("meta", body, received_at=NOW, headers={"content-type": "application/json"})


def recorded(name: str) -> list[CanonicalEvent]:
    return events_from((EVENTS / name).read_bytes())


def fields_of(event: CanonicalEvent) -> dict[str, str] | None:
    address = reply_address(event)
    return None if address is None else address.fields


def whatsapp_with(message: dict[str, Any]) -> CanonicalEvent:
    body = json.loads((EVENTS / "whatsapp-text.json").read_text())
    body["entry"][0]["changes"][0]["value"]["messages"] = [
        {"from": "16505551234", "id": "wamid.X", "timestamp": "1749416383", **message}
    ]
    [event] = events_from(body)
    return event


def messenger_with(item: dict[str, Any], key: str = "messaging") -> CanonicalEvent:
    [event] = events_from(
        {
            "object": "page",
            "entry": [
                {
                    "id": "112233445566778",
                    "time": 1718201285123,
                    key: [
                        {
                            "sender": {"id": "6789012345678901"},
                            "recipient": {"id": "112233445566778"},
                            "timestamp": 1718201284981,
                            **item,
                        }
                    ],
                }
            ],
        }
    )
    return event


# --- address -------------------------------------------------------------------------------------


def test_whatsapp_message_is_answered_from_the_number_it_was_sent_to() -> None:
    [event] = recorded("whatsapp-text.json")
    address = reply_address(event)
    assert address is not None
    assert (address.provider, address.connection) == ("meta", "con_1")
    assert address.fields == {"product": "whatsapp", "phone_number_id": "106540352242922", "to": "16505551234"}


@pytest.mark.parametrize("name", ["whatsapp-image.json", "whatsapp-interactive.json", "whatsapp-location.json"])
def test_every_recorded_whatsapp_message_kind_is_answerable(name: str) -> None:
    for event in recorded(name):
        fields = fields_of(event)
        assert fields is not None and fields["product"] == "whatsapp" and fields["to"].isdigit()


def test_messenger_message_is_answered_by_the_page_it_was_sent_to() -> None:
    [event] = recorded("messenger-text.json")
    assert fields_of(event) == {"product": "messenger", "page_id": "112233445566778", "to": "6789012345678901"}


def test_messenger_postback_is_answerable() -> None:
    [event] = recorded("messenger-postback.json")
    assert fields_of(event) == {"product": "messenger", "page_id": "112233445566778", "to": "6789012345678901"}


@pytest.mark.parametrize("sample,product", [("whatsapp", "whatsapp"), ("messenger", "messenger")])
def test_local_samples_give_the_ids_they_carry(sample: str, product: str) -> None:
    signed = build_sample("meta", sample, demo_credentials("meta"), HUB_URL)
    body = json.loads(signed.body)
    [event] = events_from(signed.body)
    fields = fields_of(event)
    if product == "whatsapp":
        value = body["entry"][0]["changes"][0]["value"]
        assert fields == {
            "product": "whatsapp",
            "phone_number_id": value["metadata"]["phone_number_id"],
            "to": value["messages"][0]["from"],
        }
    else:
        item = body["entry"][0]["messaging"][0]
        assert fields == {"product": "messenger", "page_id": item["recipient"]["id"], "to": item["sender"]["id"]}


def test_local_instagram_sample_is_answered_from_the_account_it_was_sent_to() -> None:
    signed = build_sample("meta", "instagram", demo_credentials("meta"), HUB_URL)
    item = json.loads(signed.body)["entry"][0]["messaging"][0]
    [event] = events_from(signed.body)
    assert fields_of(event) == {
        "product": "instagram",
        "account_id": item["recipient"]["id"],
        "to": item["sender"]["id"],
    }


def test_local_status_sample_has_no_address() -> None:
    signed = build_sample("meta", "whatsapp-status", demo_credentials("meta"), HUB_URL)
    assert all(reply_address(event) is None for event in events_from(signed.body))


@pytest.mark.parametrize(
    "name",
    [
        "instagram-mention.json",  # answered only through the Facebook-Login mentions API
        "messenger-echo.json",
        "messenger-delivery.json",
        "messenger-read.json",
        "whatsapp-status.json",
        "whatsapp-template-status.json",
    ],
)
def test_no_address_for_instagram_mentions_receipts_echoes_and_notifications(name: str) -> None:
    assert all(reply_address(event) is None for event in recorded(name))


@pytest.mark.parametrize(
    "message",
    [
        {"type": "reaction", "reaction": {"message_id": "wamid.Y", "emoji": "\U0001f44d"}},
        {"type": "system", "system": {"body": "User changed number", "type": "user_changed_number"}},
    ],
)
def test_no_address_for_whatsapp_reactions_and_system_messages(message: dict[str, Any]) -> None:
    assert reply_address(whatsapp_with(message)) is None


def test_no_address_for_messenger_reactions_and_standby_messages() -> None:
    assert reply_address(messenger_with({"reaction": {"mid": "m_1", "action": "react", "emoji": "x"}})) is None
    assert reply_address(messenger_with({"message": {"mid": "m_2", "text": "hi"}}, key="standby")) is None
    assert reply_address(messenger_with({"message": {"mid": "m_3", "text": "hi"}})) is not None


# --- request -------------------------------------------------------------------------------------


def test_whatsapp_request_is_the_documented_cloud_api_call() -> None:
    creds = MetaCredentials.model_validate(credentials())
    request = MetaSender().request(
        "https://graph.facebook.com",
        {"product": "whatsapp", "phone_number_id": "106540352242922", "to": "16505551234"},
        OutboundMessage("Thanks, we're on it"),
        creds,
    )
    assert request.method == "POST"
    assert request.url == f"https://graph.facebook.com/{GRAPH_API_VERSION}/106540352242922/messages"
    assert request.headers["Authorization"] == f"Bearer {creds.access_token}"
    assert json.loads(request.body) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "type": "text",
        "text": {"body": "Thanks, we're on it"},
    }


def test_messenger_request_is_the_documented_send_api_call() -> None:
    creds = MetaCredentials.model_validate(credentials())
    request = MetaSender().request(
        "https://graph.facebook.com",
        {"product": "messenger", "page_id": "112233445566778", "to": "6789012345678901"},
        OutboundMessage("Thanks"),
        creds,
    )
    assert request.url == f"https://graph.facebook.com/{GRAPH_API_VERSION}/112233445566778/messages"
    assert request.headers["Authorization"] == f"Bearer {creds.access_token}"
    assert json.loads(request.body) == {
        "recipient": {"id": "6789012345678901"},
        "messaging_type": "RESPONSE",
        "message": {"text": "Thanks", "metadata": "switchboard:auto-reply"},
    }


def test_pinned_graph_version_is_a_real_version_string() -> None:
    assert GRAPH_API_VERSION.startswith("v") and GRAPH_API_VERSION[1:].replace(".", "").isdigit()


def test_long_text_is_clipped() -> None:
    creds = MetaCredentials.model_validate(credentials())
    request = MetaSender().request(
        "https://x", {"product": "messenger", "page_id": "1", "to": "2"}, OutboundMessage("x" * 5000), creds
    )
    assert len(json.loads(request.body)["message"]["text"]) == 2000  # Messenger's limit


def test_unknown_product_is_refused() -> None:
    creds = MetaCredentials.model_validate(credentials())
    with pytest.raises(PermanentFailure):
        MetaSender().request("https://x", {"product": "telegram", "to": "1"}, OutboundMessage("hi"), creds)


def test_an_address_missing_its_node_is_a_permanent_failure_not_a_crash() -> None:
    creds = MetaCredentials.model_validate(credentials())
    with pytest.raises(PermanentFailure) as failure:
        MetaSender().request("https://x", {"product": "instagram", "to": "1"}, OutboundMessage("hi"), creds)
    assert failure.value.code == "bad_address" and "account_id" in failure.value.detail


# --- sandbox round trips -------------------------------------------------------------------------


def address_of(name: str) -> ReplyAddress:
    [event] = recorded(name)
    address = reply_address(event)
    assert address is not None
    return address


@pytest.mark.parametrize(
    "name,product,to",
    [("whatsapp-text.json", "whatsapp", "16505551234"), ("messenger-text.json", "messenger", "6789012345678901")],
)
def test_sends_through_the_sandbox_over_http(sandbox, name: str, product: str, to: str) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("meta", creds)
    message_id = send(address_of(name), "We got your message", creds, http_transport, base_url=f"{url}/meta")
    assert message_id.startswith("wamid." if product == "whatsapp" else "m_")
    sent = [m for m in apis.messages if m.provider == "meta" and m.message_id == message_id]
    assert len(sent) == 1 and sent[0].to == to and sent[0].text == "We got your message"
    assert sent[0].details["product"] == product


@pytest.mark.parametrize("name", ["whatsapp-text.json", "messenger-text.json"])
def test_wrong_token_is_a_permanent_oauth_failure(sandbox, name: str) -> None:
    _, url = sandbox
    with pytest.raises(PermanentFailure) as failure:
        send(address_of(name), "hi", credentials(), http_transport, base_url=f"{url}/meta")
    assert failure.value.code == "meta_190" and "fbtrace_id" in failure.value.detail


def test_sandbox_refuses_a_whatsapp_message_without_body_in_graph_shape(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("meta", creds)
    request = MetaSender().request(
        f"{url}/meta",
        {"product": "whatsapp", "phone_number_id": "1", "to": "2"},
        OutboundMessage(""),
        MetaCredentials(**creds),
    )
    response = http_transport(request)
    assert response.status == 400 and response.json()["error"]["code"] == 100
    with pytest.raises(PermanentFailure) as failure:
        MetaSender().outcome(response)
    assert failure.value.code == "meta_100"


# --- documented answers --------------------------------------------------------------------------


def graph_error(code: int, status: int = 400, **extra: Any) -> ProviderResponse:
    return ProviderResponse(
        status=status,
        body=json.dumps(
            {
                "error": {
                    "message": f"(#{code}) something",
                    "type": "OAuthException",
                    "code": code,
                    "fbtrace_id": "AbC123",
                    **extra,
                }
            }
        ).encode(),
    )


def test_documented_whatsapp_success_gives_the_wamid() -> None:
    body = {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "16505551234", "wa_id": "16505551234"}],
        "messages": [{"id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI"}],
    }
    assert MetaSender().outcome(ProviderResponse(200, json.dumps(body).encode())) == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI"


def test_documented_messenger_success_gives_the_message_id() -> None:
    body = {"recipient_id": "6789012345678901", "message_id": "AG5Hz2U..."}
    assert MetaSender().outcome(ProviderResponse(200, json.dumps(body).encode())) == "AG5Hz2U..."


@pytest.mark.parametrize("code", [1, 2, 4, 17, 32, 613, 1200, 80007, 130429, 131056])
def test_rate_limits_and_temporary_graph_errors_are_transient(code: int) -> None:
    with pytest.raises(TransientFailure) as failure:
        MetaSender().outcome(graph_error(code))
    assert failure.value.code == f"meta_{code}"


def test_is_transient_flag_makes_any_code_transient() -> None:
    with pytest.raises(TransientFailure):
        MetaSender().outcome(graph_error(100, is_transient=True))


@pytest.mark.parametrize("code,status", [(190, 401), (10, 403), (200, 403), (100, 400), (131047, 400), (551, 400)])
def test_other_graph_errors_are_permanent(code: int, status: int) -> None:
    with pytest.raises(PermanentFailure) as failure:
        MetaSender().outcome(graph_error(code, status=status, is_transient=False))
    assert failure.value.code == f"meta_{code}" and "AbC123" in failure.value.detail


def test_whatsapp_error_details_and_subcode_are_kept() -> None:
    response = graph_error(
        131047,
        error_subcode=2494010,
        error_data={
            "messaging_product": "whatsapp",
            "details": "More than 24 hours have passed since the recipient last replied to the sender number",
        },
    )
    with pytest.raises(PermanentFailure) as failure:
        MetaSender().outcome(response)
    assert "24 hours" in failure.value.detail and "2494010" in failure.value.detail


def test_server_error_with_a_permanent_code_is_still_transient() -> None:
    with pytest.raises(TransientFailure):
        MetaSender().outcome(graph_error(100, status=500))


@pytest.mark.parametrize("body", [{}, {"messages": []}, {"messages": [{}]}, {"message_id": ""}])
def test_success_without_message_id_is_not_taken_for_sent(body: dict[str, Any]) -> None:
    with pytest.raises(PermanentFailure):
        MetaSender().outcome(ProviderResponse(200, json.dumps(body).encode()))


def test_invalid_stored_credentials_fail_permanently() -> None:
    with pytest.raises(PermanentFailure) as failure:
        send(
            address_of("whatsapp-text.json"),
            "hi",
            {"access_token": "short"},
            http_transport,
            base_url="http://127.0.0.1:9/meta",
        )
    assert failure.value.code == "invalid_credentials"


# --- demo credentials (infra/local/provider_apis.py) ----------------------------------------------


@pytest.mark.parametrize("provider", sorted(SENDERS))
def test_demo_outbound_credentials_validate_for_every_sender_and_are_fresh(provider: str) -> None:
    sender = get_sender(provider)
    assert sender is not None
    model = sender.credentials_model
    first, second = demo_outbound_credentials(provider), demo_outbound_credentials(provider)
    model.model_validate(first)
    assert first != second


def test_demo_outbound_credentials_refuse_providers_that_cannot_send() -> None:
    with pytest.raises(ValueError):
        demo_outbound_credentials("websub")
