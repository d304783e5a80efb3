"""The campaign executors (switchboard_core.campaigns.channels) against a recording transport:
the request each provider gets (shapes as their API documents them), the connection chosen, and
every refusal: no connection, no outbound credentials, no sender, no address, 429/5xx transient,
4xx permanent. The callbacks those calls produce are read back through the adapters (`call_outcome`)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode
from xml.etree import ElementTree as ET

import defusedxml.ElementTree as DET
import jwt
import pytest

from infra import topology
from infra.local.provider_apis import demo_vonage_credentials
from infra.local.samples.twilio import twilio_signature
from switchboard_core import aws
from switchboard_core.campaigns.channels import (
    CallOutcome,
    ChannelDeps,
    Delivered,
    call_outcome,
    connect_call,
    place_call,
    send_message,
)
from switchboard_core.campaigns.keypad import Gather
from switchboard_core.campaigns.runs import ConnectCallAction, PlaceCallAction, SendMessageAction
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from switchboard_core.events import CanonicalEvent, Channel
from switchboard_core.outbound import OutcomeUnknown, PermanentFailure, TransientFailure
from switchboard_core.outbound.base import OutboundRequest, ProviderResponse
from switchboard_core.providers.twilio import TwilioAdapter
from switchboard_core.providers.vonage import VonageAdapter
from tests.unit.providers.support import webhook_request

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HUB = "https://hub.example.com"
KEY = "run_0123456789abcdef0123456789abcdef:text_customer:1"
CONTACT = "+14155550178"
RESPONDER = "+14155550101"
TWILIO = {"account_sid": "AC" + "1" * 32, "auth_token": "t" * 32, "from_number": "+15005550006"}
VONAGE = demo_vonage_credentials() | {"from_number": "+447700900001"}
TWILIO_TOKEN = "inbound-auth-token-0123456789"


class Providers:
    """The transport: records each request; answers what the test queued, else a success in the
    provider's own shape."""

    def __init__(self) -> None:
        self.requests: list[OutboundRequest] = []
        self.answers: list[ProviderResponse | Exception] = []

    def __call__(self, request: OutboundRequest) -> ProviderResponse:
        self.requests.append(request)
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        url = request.url
        if url.endswith("/Calls.json"):
            return _json(201, {"sid": "CA" + secrets.token_hex(16), "status": "queued"})
        if url.endswith("/Messages.json"):
            return _json(201, {"sid": "SM" + secrets.token_hex(16)})
        if url.endswith("/v1/calls"):
            return _json(201, {"uuid": "63f61863-4a51-4f6b-86e1-46edebcf9356", "status": "started"})
        if url.endswith("/v1/messages"):
            return _json(202, {"message_uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"})
        if "telnyx" in url or url.endswith("/v2/messages"):
            return _json(200, {"data": {"id": "40385f64-5717-4562-b3fc-2c963f66afa6"}})
        if "/Message/" in url:  # plivo
            return _json(202, {"message_uuid": ["db3ce55a-7f1d-11e1-8ea7-1231380bc196"], "api_id": "x"})
        if "/messages" in url and "/users/" in url:  # bandwidth
            return _json(202, {"id": "1589228074636lm4k2je7j7jklbn2", "owner": "+15005550006"})
        if "graph.facebook.com" in url:
            if b"whatsapp" in request.body:
                return _json(200, {"messages": [{"id": "wamid.HBgL"}]})
            return _json(200, {"recipient_id": "1", "message_id": "m_abc"})
        if "sendMessage" in url:
            return _json(200, {"ok": True, "result": {"message_id": 42}})
        if "chat.postMessage" in url:
            return _json(200, {"ok": True, "ts": "1700000000.000100"})
        raise AssertionError(f"unexpected request {url}")

    def form(self, index: int = -1) -> dict[str, list[str]]:
        return parse_qs(self.requests[index].body.decode())

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].body)


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> ProviderResponse:
    return ProviderResponse(status=status, body=json.dumps(payload).encode(), headers=headers or {})


@pytest.fixture
def world(aws_world, monkeypatch):
    monkeypatch.delenv("SWITCHBOARD_PROVIDER_API_URL", raising=False)
    connections = ConnectionStore(aws.resource("dynamodb").Table(aws_world.names.table("connections")))
    outbound = CredentialStore(
        aws.client("secretsmanager"), topology.outbound_secrets_prefix("test"), max_age_seconds=0
    )
    transport = Providers()
    deps = ChannelDeps(connections=connections, credentials=outbound, transport=transport, public_base_url=HUB)

    def connect(cid: str, provider: str, creds: dict[str, str] | None, tenant: str = "acme", age: int = 0) -> None:
        connections.put(
            Connection(
                id=cid,
                provider=provider,
                tenant=tenant,
                created_at=NOW - timedelta(minutes=age),
                outbound_configured_at=NOW if creds is not None else None,
            )
        )
        if creds is not None:
            outbound.replace(cid, creds, tenant)

    return deps, transport, connect


def message(channel: str = "sms", to: str = CONTACT, connection: str | None = None) -> SendMessageAction:
    return SendMessageAction(
        step="text_customer",
        idempotency_key=KEY,
        channel=channel,
        to=to,
        text="Hi Sam, all sorted?",
        connection=connection,
    )


def call(gather: Gather | None = None, connection: str | None = None, **fields: Any) -> PlaceCallAction:
    fields.setdefault("say", "Press 1 if we may call you back.")
    return PlaceCallAction(
        step="call",
        idempotency_key=KEY.replace("text_customer", "call"),
        to=CONTACT,
        gather=gather,
        connection=connection,
        **fields,
    )


def bridge(connection: str | None = None) -> ConnectCallAction:
    return ConnectCallAction(
        step="bridge",
        idempotency_key=KEY.replace("text_customer", "bridge"),
        to=CONTACT,
        responder="assignee",
        target="dana",
        connection=connection,
    )


# --------------------------------------------------------------------------------- messages


def test_sms_goes_through_twilio_from_the_connections_number_with_a_status_callback(world) -> None:
    deps, transport, connect = world
    connect("con_twilio", "twilio", TWILIO)
    delivered = send_message(message(), "acme", deps)
    assert isinstance(delivered, Delivered)
    assert (delivered.provider, delivered.connection) == ("twilio", "con_twilio")
    assert delivered.provider_message_id.startswith("SM")
    request = transport.requests[0]
    assert request.url == f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO['account_sid']}/Messages.json"
    form = transport.form()
    assert form["To"] == [CONTACT] and form["From"] == ["+15005550006"] and form["Body"] == ["Hi Sam, all sorted?"]
    assert form["StatusCallback"] == [f"{HUB}/webhooks/twilio/con_twilio"]


def test_a_messaging_service_sends_when_the_connection_has_no_number(world) -> None:
    deps, transport, connect = world
    service = "MG" + "2" * 32
    connect(
        "con_twilio",
        "twilio",
        {"account_sid": TWILIO["account_sid"], "auth_token": "t" * 32, "messaging_service_sid": service},
    )
    send_message(message(), "acme", deps)
    assert transport.form()["MessagingServiceSid"] == [service] and "From" not in transport.form()


def test_twilio_comes_first_then_the_oldest_connection(world) -> None:
    deps, _transport, connect = world
    connect("con_telnyx", "telnyx", {"api_key": "KEY" + "A" * 20, "from_number": "+15005550007"}, age=60)
    connect("con_twilio", "twilio", TWILIO, age=1)
    connect("con_twilio_old", "twilio", TWILIO | {"from_number": "+15005550008"}, age=30)
    assert send_message(message(), "acme", deps).connection == "con_twilio_old"


def test_a_connection_without_a_sender_is_passed_over_for_one_with(world) -> None:
    deps, transport, connect = world
    connect("con_twilio", "twilio", {"account_sid": TWILIO["account_sid"], "auth_token": "t" * 32})
    connect("con_telnyx", "telnyx", {"api_key": "KEY" + "A" * 20, "from_number": "+15005550007"})
    delivered = send_message(message(), "acme", deps)
    assert delivered.connection == "con_telnyx"
    body = transport.json()
    assert body["from"] == "+15005550007" and body["to"] == CONTACT and body["text"] == "Hi Sam, all sorted?"
    assert body["webhook_url"] == f"{HUB}/webhooks/telnyx/con_telnyx"


def test_vonage_sms_carries_the_idempotency_key_as_client_ref(world) -> None:
    deps, transport, connect = world
    connect("con_vonage", "vonage", VONAGE)
    delivered = send_message(message(), "acme", deps)
    assert delivered.provider == "vonage" and delivered.provider_message_id == "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
    body = transport.json()
    assert body == {
        "message_type": "text",
        "channel": "sms",
        "to": "14155550178",
        "from": "447700900001",
        "text": "Hi Sam, all sorted?",
        "client_ref": KEY,
        "webhook_url": f"{HUB}/webhooks/vonage/con_vonage",
    }


def test_plivo_and_bandwidth_send_from_their_number(world) -> None:
    deps, transport, connect = world
    connect("con_plivo", "plivo", {"auth_id": "MA" + "A" * 18, "auth_token": "b" * 40, "from_number": "+15005550009"})
    assert send_message(message(connection="con_plivo"), "acme", deps).provider == "plivo"
    assert transport.json()["src"] == "+15005550009" and transport.json()["dst"] == CONTACT
    connect(
        "con_bandwidth",
        "bandwidth",
        {
            "account_id": "1234567",
            "username": "api-user",
            "password": "p" * 12,
            "application_id": "93de2206-9669-4e07-948d-329f4b722ee2",
            "from_number": "+15005550010",
        },
    )
    assert send_message(message(connection="con_bandwidth"), "acme", deps).provider == "bandwidth"
    body = transport.json()
    assert body["from"] == "+15005550010" and body["to"] == [CONTACT] and body["tag"] == KEY


def test_whatsapp_goes_through_meta_from_the_business_number(world) -> None:
    deps, transport, connect = world
    connect("con_meta", "meta", {"access_token": "EAA" + "x" * 40, "whatsapp_phone_number_id": "106540352242922"})
    delivered = send_message(message("whatsapp"), "acme", deps)
    assert delivered == Delivered("meta", "wamid.HBgL", "con_meta")
    assert "/106540352242922/messages" in transport.requests[0].url
    body = transport.json()
    assert body["to"] == "14155550178" and body["text"]["body"] == "Hi Sam, all sorted?"
    assert body["biz_opaque_callback_data"] == KEY


def test_messenger_starts_the_exchange_as_an_update_from_the_page(world) -> None:
    deps, transport, connect = world
    connect("con_meta", "meta", {"access_token": "EAA" + "x" * 40, "page_id": "1122334455"})
    send_message(message("messenger", to="6543210987"), "acme", deps)
    assert "/1122334455/messages" in transport.requests[0].url
    body = transport.json()
    assert body["recipient"] == {"id": "6543210987"} and body["messaging_type"] == "UPDATE"


def test_telegram_and_slack_write_to_the_contacts_chat(world) -> None:
    deps, transport, connect = world
    token = "123456789:AA" + "b" * 33
    connect("con_telegram", "telegram", {"bot_token": token})
    connect("con_slack", "slack", {"bot_token": "xoxb-" + "1" * 24})
    assert send_message(message("telegram", to="987654321"), "acme", deps) == Delivered(
        "telegram", "42", "con_telegram"
    )
    assert transport.requests[-1].url.endswith(f"/bot{token}/sendMessage")
    assert transport.json()["chat_id"] == 987654321 and "reply_parameters" not in transport.json()
    assert send_message(message("slack", to="U0123ABCD"), "acme", deps).provider == "slack"
    assert transport.json()["channel"] == "U0123ABCD"


def test_without_a_public_url_messages_go_without_a_status_callback(world) -> None:
    deps, transport, connect = world
    connect("con_twilio", "twilio", TWILIO)
    deps.public_base_url = None
    send_message(message(), "acme", deps)
    assert "StatusCallback" not in transport.form()


# ----------------------------------------------------------------------- message refusals


def refusal(error: pytest.ExceptionInfo[Exception]) -> tuple[str, str]:
    assert isinstance(error.value, PermanentFailure) and not isinstance(error.value, TransientFailure)
    return error.value.code, error.value.detail


def test_no_connection_for_the_channel_is_permanent(world) -> None:
    deps, transport, connect = world
    connect("con_slack", "slack", {"bot_token": "xoxb-" + "1" * 24})
    connect("con_twilio_elsewhere", "twilio", TWILIO, tenant="other")
    with pytest.raises(PermanentFailure) as error:
        send_message(message(), "acme", deps)
    assert refusal(error)[0] == "not_configured" and transport.requests == []


def test_a_connection_without_outbound_credentials_is_not_used(world) -> None:
    deps, _transport, connect = world
    connect("con_twilio", "twilio", None)
    with pytest.raises(PermanentFailure) as error:
        send_message(message(), "acme", deps)
    assert refusal(error)[0] == "not_configured"
    with pytest.raises(PermanentFailure) as error:
        send_message(message(connection="con_twilio"), "acme", deps)
    assert refusal(error) == ("not_configured", "connection con_twilio has no outbound credentials")


def test_a_named_connection_must_be_the_tenants_and_serve_the_channel(world) -> None:
    deps, transport, connect = world
    connect("con_other", "twilio", TWILIO, tenant="other")
    connect("con_slack", "slack", {"bot_token": "xoxb-" + "1" * 24})
    with pytest.raises(PermanentFailure) as error:
        send_message(message(connection="con_other"), "acme", deps)
    assert refusal(error)[0] == "connection_gone"
    with pytest.raises(PermanentFailure) as error:
        send_message(message(connection="con_missing"), "acme", deps)
    assert refusal(error)[0] == "connection_gone"
    with pytest.raises(PermanentFailure) as error:
        send_message(message(connection="con_slack"), "acme", deps)
    assert refusal(error)[0] == "wrong_connection"
    assert transport.requests == []


def test_a_connection_naming_no_sender_says_which_setting_is_missing(world) -> None:
    deps, transport, connect = world
    connect("con_twilio", "twilio", {"account_sid": TWILIO["account_sid"], "auth_token": "t" * 32})
    connect("con_meta", "meta", {"access_token": "EAA" + "x" * 40})
    with pytest.raises(PermanentFailure) as error:
        send_message(message(), "acme", deps)
    code, detail = refusal(error)
    assert code == "no_sender" and "from_number" in detail
    with pytest.raises(PermanentFailure) as error:
        send_message(message("whatsapp"), "acme", deps)
    assert refusal(error)[0] == "no_sender" and "whatsapp_phone_number_id" in refusal(error)[1]
    assert transport.requests == []


def test_no_address_for_the_channel_is_permanent_and_not_echoed(world) -> None:
    deps, transport, connect = world
    connect("con_slack", "slack", {"bot_token": "xoxb-" + "1" * 24})
    with pytest.raises(PermanentFailure) as error:
        send_message(message("slack", to="#general; DROP"), "acme", deps)
    code, detail = refusal(error)
    assert code == "no_address" and "DROP" not in detail
    with pytest.raises(PermanentFailure) as error:
        send_message(message("slack", to=""), "acme", deps)
    assert refusal(error)[0] == "no_address"
    assert transport.requests == []


@pytest.mark.parametrize("provider", ["twilio", "telnyx", "vonage"])
def test_an_sms_to_something_that_is_not_a_phone_number_is_no_address(world, provider) -> None:
    deps, transport, connect = world
    credentials = {"twilio": TWILIO, "vonage": VONAGE}.get(provider) or {
        "api_key": "KEY" + "A" * 20,
        "from_number": "+15005550007",
    }
    connect(f"con_{provider}", provider, credentials)
    for to in ("4155550178", "U0123ABCD", "+1 415 555"):
        with pytest.raises(PermanentFailure) as error:
            send_message(message(to=to), "acme", deps)
        assert refusal(error)[0] == "no_address"
    assert transport.requests == []


def test_rate_limits_and_server_errors_are_transient_with_the_providers_wait(world) -> None:
    deps, transport, connect = world
    connect("con_twilio", "twilio", TWILIO)
    transport.answers = [
        _json(429, {"code": 20429, "message": "Too Many Requests", "status": 429}, {"retry-after": "7"}),
        _json(503, {"code": 20500, "message": "Internal Server Error", "status": 503}),
    ]
    with pytest.raises(TransientFailure) as limited:
        send_message(message(), "acme", deps)
    assert limited.value.code == "twilio_20429" and limited.value.retry_after == 7
    with pytest.raises(TransientFailure) as failed:
        send_message(message(), "acme", deps)
    assert failed.value.code == "twilio_20500"


@pytest.mark.parametrize(
    ("lookup", "code"),
    [
        ("list", "connections_unavailable"),
        ("get", "connections_unavailable"),
        ("credentials", "credentials_unavailable"),
    ],
)
def test_aws_failing_a_lookup_before_the_request_is_transient(world, monkeypatch, lookup, code) -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    deps, transport, connect = world
    connect("con_twilio", "twilio", TWILIO)
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Query")

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise throttled if lookup != "get" else EndpointConnectionError(endpoint_url="https://dynamodb")

    target = deps.credentials if lookup == "credentials" else deps.connections
    monkeypatch.setattr(target, "get" if lookup != "list" else "list", fail)
    with pytest.raises(TransientFailure) as error:
        send_message(message(connection="con_twilio" if lookup == "get" else None), "acme", deps)
    assert error.value.code == code
    assert transport.requests == []


def test_a_refusal_is_permanent(world) -> None:
    deps, transport, connect = world
    connect("con_twilio", "twilio", TWILIO)
    transport.answers = [_json(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"})]
    with pytest.raises(PermanentFailure) as error:
        send_message(message(), "acme", deps)
    assert refusal(error)[0] == "twilio_21610"


def test_invalid_stored_credentials_are_permanent(world) -> None:
    deps, _transport, connect = world
    connect("con_twilio", "twilio", {"account_sid": "nope", "auth_token": "t"})
    with pytest.raises(PermanentFailure) as error:
        send_message(message(), "acme", deps)
    assert refusal(error)[0] == "invalid_credentials"


# ------------------------------------------------------------------------------------ calls


def twiml_of(transport: Providers) -> ET.Element:
    return DET.fromstring(transport.form()["Twiml"][0])


def test_a_twilio_call_says_the_text_and_gathers_digits_back_to_the_hub(world) -> None:
    deps, transport, connect = world
    connect("con_twilio", "twilio", TWILIO)
    delivered = place_call(call(Gather(num_digits=1, timeout_seconds=8)), "acme", deps)
    assert delivered.provider == "twilio" and delivered.provider_message_id.startswith("CA")
    assert transport.requests[0].url == f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO['account_sid']}/Calls.json"
    form = transport.form()
    assert form["To"] == [CONTACT] and form["From"] == ["+15005550006"]
    assert form["StatusCallback"] == [f"{HUB}/webhooks/twilio/con_twilio"] and form["StatusCallbackMethod"] == ["POST"]
    gather = twiml_of(transport).find("Gather")
    assert gather is not None
    assert gather.attrib == {
        "input": "dtmf",
        "numDigits": "1",
        "timeout": "8",
        "action": f"{HUB}/webhooks/twilio/con_twilio?outbound=gather",
        "method": "POST",
        "actionOnEmptyResult": "true",
    }
    assert gather.findtext("Say") == "Press 1 if we may call you back."


def test_a_twilio_call_plays_a_recording_without_gather(world) -> None:
    deps, transport, connect = world
    connect("con_twilio", "twilio", TWILIO)
    place_call(call(say=None, recording_url="https://cdn.example.com/hello.mp3"), "acme", deps)
    document = twiml_of(transport)
    assert document.find("Gather") is None and document.findtext("Play") == "https://cdn.example.com/hello.mp3"


def test_a_twilio_connect_call_dials_the_responder_from_the_connections_number(world) -> None:
    deps, transport, connect = world
    connect("con_twilio", "twilio", TWILIO)
    assert connect_call(bridge(), RESPONDER, "acme", deps).provider == "twilio"
    dial = twiml_of(transport).find("Dial")
    assert dial is not None and dial.findtext("Number") == RESPONDER
    assert dial.attrib["callerId"] == "+15005550006" and "action" not in dial.attrib
    assert transport.form()["To"] == [CONTACT]


def vonage_claims(request: OutboundRequest) -> dict[str, Any]:
    token = request.headers["Authorization"].removeprefix("Bearer ")
    from cryptography.hazmat.primitives import serialization

    public = serialization.load_pem_private_key(VONAGE["private_key"].encode(), password=None).public_key()
    return jwt.decode(token, public, algorithms=["RS256"])  # type: ignore[arg-type]


def test_a_vonage_call_talks_and_takes_dtmf_input_posted_to_the_hub(world) -> None:
    deps, transport, connect = world
    connect("con_vonage", "vonage", VONAGE)
    delivered = place_call(call(Gather(num_digits=2, timeout_seconds=30)), "acme", deps)
    assert delivered == Delivered("vonage", "63f61863-4a51-4f6b-86e1-46edebcf9356", "con_vonage")
    request = transport.requests[0]
    assert request.url == "https://api.nexmo.com/v1/calls"
    assert vonage_claims(request)["application_id"] == VONAGE["application_id"]
    webhook = f"{HUB}/webhooks/vonage/con_vonage"
    assert transport.json() == {
        "to": [{"type": "phone", "number": "14155550178"}],
        "from": {"type": "phone", "number": "447700900001"},
        "ncco": [
            {"action": "talk", "text": "Press 1 if we may call you back.", "language": "en-US", "bargeIn": True},
            {
                "action": "input",
                "type": ["dtmf"],
                "dtmf": {"maxDigits": 2, "timeOut": 10, "submitOnHash": True},
                "eventUrl": [webhook],
                "eventMethod": "POST",
            },
        ],
        "ringing_timer": 30,
        "event_url": [webhook],
        "event_method": "POST",
    }


def test_a_vonage_connect_call_bridges_the_responder(world) -> None:
    deps, transport, connect = world
    connect("con_vonage", "vonage", {k: v for k, v in VONAGE.items() if k != "from_number"})
    connect_call(bridge(), RESPONDER, "acme", deps)
    body = transport.json()
    assert body["random_from_number"] is True and "from" not in body
    talk, action = body["ncco"]
    assert talk["action"] == "talk"
    assert action == {
        "action": "connect",
        "endpoint": [{"type": "phone", "number": "14155550101"}],
        "timeout": 20,
        "randomFromNumber": True,
    }


def test_calls_are_refused_without_a_place_for_their_outcome_or_a_caller_id(world) -> None:
    deps, transport, connect = world
    connect("con_twilio", "twilio", {"account_sid": TWILIO["account_sid"], "auth_token": "t" * 32})
    with pytest.raises(PermanentFailure) as error:
        place_call(call(), "acme", deps)
    assert refusal(error)[0] == "no_sender"
    deps.public_base_url = None
    with pytest.raises(PermanentFailure) as error:
        place_call(call(), "acme", deps)
    assert refusal(error)[0] == "not_configured"
    assert transport.requests == []


def test_calls_need_a_voice_connection(world) -> None:
    deps, _transport, connect = world
    connect("con_telnyx", "telnyx", {"api_key": "KEY" + "A" * 20, "from_number": "+15005550007"})
    with pytest.raises(PermanentFailure) as error:
        place_call(call(), "acme", deps)
    assert refusal(error)[0] == "not_configured"
    with pytest.raises(PermanentFailure) as error:
        connect_call(bridge("con_telnyx"), RESPONDER, "acme", deps)
    assert refusal(error)[0] == "wrong_connection"
    with pytest.raises(PermanentFailure) as error:
        connect_call(bridge(), "", "acme", deps)
    assert refusal(error)[0] == "no_responder"


def test_a_call_needs_the_contacts_phone_number(world) -> None:
    deps, transport, connect = world
    connect("con_twilio", "twilio", TWILIO)
    with pytest.raises(PermanentFailure) as error:
        place_call(call().model_copy(update={"to": "U0123ABCD"}), "acme", deps)
    assert refusal(error) == ("no_address", "the contact has no phone number (E.164) to call")
    with pytest.raises(PermanentFailure) as error:
        connect_call(bridge().model_copy(update={"to": ""}), RESPONDER, "acme", deps)
    assert refusal(error)[0] == "no_address"
    with pytest.raises(PermanentFailure) as error:
        connect_call(bridge(), "dana", "acme", deps)
    assert refusal(error)[0] == "no_responder"
    assert transport.requests == []


def test_call_failures_are_transient_or_permanent_as_the_provider_says(world) -> None:
    deps, transport, connect = world
    connect("con_twilio", "twilio", TWILIO)
    connect("con_vonage", "vonage", VONAGE)
    transport.answers = [
        _json(429, {"code": 20429, "message": "Too Many Requests"}, {"retry-after": "3"}),
        _json(400, {"code": 21215, "message": "Geo permission configuration is not permitting call"}),
        _json(500, {"title": "Internal Error", "detail": "try again"}),
        _json(401, {"title": "Unauthorized", "detail": "You did not provide correct credentials."}),
        OutcomeUnknown("TimeoutError: read timed out"),
    ]
    with pytest.raises(TransientFailure) as limited:
        place_call(call(), "acme", deps)
    assert limited.value.retry_after == 3
    with pytest.raises(PermanentFailure) as refused:
        place_call(call(), "acme", deps)
    assert refusal(refused)[0] == "twilio_21215"
    with pytest.raises(TransientFailure) as failed:
        place_call(call(connection="con_vonage"), "acme", deps)
    assert failed.value.code == "vonage_500"
    with pytest.raises(PermanentFailure) as unauthorized:
        connect_call(bridge("con_vonage"), RESPONDER, "acme", deps)
    assert refusal(unauthorized)[0] == "vonage_401"
    with pytest.raises(OutcomeUnknown):
        place_call(call(), "acme", deps)


# --------------------------------------------------------------------------------- outcomes


def twilio_event(params: dict[str, str], url: str = f"{HUB}/webhooks/twilio/con_twilio") -> tuple[CanonicalEvent, Any]:
    body = urlencode(params).encode()
    request = webhook_request(
        url,
        body,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url, params),
        },
    )
    adapter = TwilioAdapter()
    verified = adapter.verified(request, {"auth_token": TWILIO_TOKEN}, NOW)
    [draft] = adapter.normalise(verified)
    event = CanonicalEvent.from_draft(
        draft,
        provider="twilio",
        connection="con_twilio",
        tenant="acme",
        channel=Channel.TELEPHONY,
        received_at=NOW,
        raw_ref=None,
    )
    return event, (adapter.delivery_id(verified), adapter.success_response(verified))


CALL_SID = "CA" + "9" * 32


def outbound_call(**params: str) -> dict[str, str]:
    return {
        "CallSid": CALL_SID,
        "AccountSid": TWILIO["account_sid"],
        "From": "+15005550006",
        "To": CONTACT,
        "Direction": "outbound-api",
        "ApiVersion": "2010-04-01",
        **params,
    }


def test_a_twilio_gather_result_is_the_answer_with_its_digits_and_gets_goodbye_not_hold_music() -> None:
    url = f"{HUB}/webhooks/twilio/con_twilio?outbound=gather"
    event, (delivery_id, answer) = twilio_event(
        outbound_call(CallStatus="in-progress", Digits="1", FinishedOnKey="", msg="Gather End"), url
    )
    assert event.type == "call.in_progress" and event.contact.phone == CONTACT
    assert call_outcome(event) == CallOutcome("twilio", CALL_SID, "answered", "1")
    assert delivery_id == f"{CALL_SID}:gather"
    assert "<Hangup" in answer.body and "<Play" not in answer.body and "Record" not in answer.body
    empty, _ = twilio_event(outbound_call(CallStatus="in-progress", Digits=""), url)
    assert call_outcome(empty) == CallOutcome("twilio", CALL_SID, "answered", None)


def test_twilio_status_callbacks_are_distinct_deliveries_from_the_gather_result() -> None:
    gather, (gather_id, _) = twilio_event(
        outbound_call(CallStatus="in-progress", Digits="2"), f"{HUB}/webhooks/twilio/con_twilio?outbound=gather"
    )
    answered, (answered_id, _) = twilio_event(outbound_call(CallStatus="in-progress", SequenceNumber="1"))
    completed, (completed_id, answer) = twilio_event(outbound_call(CallStatus="completed", SequenceNumber="2"))
    assert len({gather_id, answered_id, completed_id}) == 3
    assert len({gather.id, answered.id, completed.id}) == 3
    ringing, (_, ringing_answer) = twilio_event(outbound_call(CallStatus="ringing", SequenceNumber="0"))
    assert call_outcome(ringing) is None and "<Play" not in ringing_answer.body  # the callee's phone rings: no hold
    assert call_outcome(answered) is None  # answered, but what they pressed is still to come
    assert call_outcome(completed) == CallOutcome("twilio", CALL_SID, "answered", None)
    assert "<Play" not in answer.body


@pytest.mark.parametrize("status", ["no-answer", "busy", "failed", "canceled"])
def test_a_twilio_call_nobody_took_is_not_answered(status) -> None:
    event, _ = twilio_event(outbound_call(CallStatus=status, SequenceNumber="1"))
    assert call_outcome(event) == CallOutcome("twilio", CALL_SID, "not_answered", None)


def test_inbound_calls_and_dial_results_are_no_campaign_outcome() -> None:
    inbound, (_, answer) = twilio_event(outbound_call(CallStatus="ringing", Direction="inbound"))
    assert call_outcome(inbound) is None and "<Play" in answer.body  # still held, as before
    completed_inbound, _ = twilio_event(outbound_call(CallStatus="completed", Direction="inbound"))
    assert call_outcome(completed_inbound) is None
    dial, _ = twilio_event(
        outbound_call(CallStatus="in-progress", DialCallStatus="no-answer", DialCallSid="CA" + "8" * 32)
    )
    assert call_outcome(dial) is None


VONAGE_SECRET = "vonage-signature-secret-0123456789"
CALL_UUID = "63f61863-4a51-4f6b-86e1-46edebcf9356"


def vonage_event(payload: dict[str, Any], url: str = f"{HUB}/webhooks/vonage/con_vonage") -> tuple[CanonicalEvent, Any]:
    import hashlib

    body = json.dumps(payload).encode()
    token = jwt.encode(
        {"iat": int(NOW.timestamp()), "jti": secrets.token_hex(8), "payload_hash": hashlib.sha256(body).hexdigest()},
        VONAGE_SECRET,
        algorithm="HS256",
    )
    request = webhook_request(url, body, {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    adapter = VonageAdapter()
    verified = adapter.verified(request, {"signature_secret": VONAGE_SECRET, "signature_method": "sha256"}, NOW)
    [draft] = adapter.normalise(verified)
    event = CanonicalEvent.from_draft(
        draft,
        provider="vonage",
        connection="con_vonage",
        tenant="acme",
        channel=Channel.TELEPHONY,
        received_at=NOW,
        raw_ref=None,
    )
    return event, (adapter.delivery_id(verified), adapter.success_response(verified))


def vonage_status(status: str) -> dict[str, Any]:
    return {
        "uuid": CALL_UUID,
        "conversation_uuid": "CON-f972836a-550f-45fa-956c-12a2ab5b7d22",
        "status": status,
        "direction": "outbound",
        "from": "447700900001",
        "to": "14155550178",
        "timestamp": "2026-12-01T12:00:00.000Z",
    }


def test_a_vonage_input_result_is_the_answer_with_its_digits() -> None:
    payload = {
        "speech": {"results": []},
        "dtmf": {"digits": "1", "timed_out": False},
        "from": "447700900001",
        "to": "14155550178",
        "uuid": CALL_UUID,
        "conversation_uuid": "CON-f972836a-550f-45fa-956c-12a2ab5b7d22",
        "timestamp": "2026-12-01T12:00:05.000Z",
    }
    event, (delivery_id, answer) = vonage_event(payload)
    assert event.type == "call.in_progress" and event.contact.phone == CONTACT
    assert call_outcome(event) == CallOutcome("vonage", CALL_UUID, "answered", "1")
    assert delivery_id == f"{CALL_UUID}:input"
    assert json.loads(answer.body) == [{"action": "talk", "text": "Thank you. Goodbye.", "language": "en-US"}]
    timed_out, _ = vonage_event(payload | {"dtmf": {"digits": "", "timed_out": True}})
    assert call_outcome(timed_out) == CallOutcome("vonage", CALL_UUID, "answered", None)


@pytest.mark.parametrize(
    ("status", "result"),
    [
        ("completed", "answered"),
        ("timeout", "not_answered"),
        ("busy", "not_answered"),
        ("rejected", "not_answered"),
        ("unanswered", "not_answered"),
        ("cancelled", "not_answered"),
        ("answered", None),
        ("ringing", None),
    ],
)
def test_vonage_status_events_as_outcomes(status, result) -> None:
    event, _ = vonage_event(vonage_status(status))
    outcome = call_outcome(event)
    assert (outcome.result if outcome else None) == result


def test_vonage_inbound_and_patching_legs_are_no_campaign_outcome() -> None:
    inbound, _ = vonage_event(vonage_status("completed") | {"direction": "inbound"})
    assert call_outcome(inbound) is None
    leg, _ = vonage_event(vonage_status("completed"), f"{HUB}/webhooks/vonage/con_vonage?leg_of={CALL_UUID}")
    assert call_outcome(leg) is None
