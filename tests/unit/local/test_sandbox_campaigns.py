"""The provider sandbox's side of campaigns: the executors' calls and messages against the sandbox's
Twilio and Vonage APIs (which check them as the real APIs do and record them), its refusals, the
callbacks it builds for a call's outcome (verified and read back by the adapters), and the
customer replies `switchboard sandbox reply` posts (verified and normalised by each adapter)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from infra.local.provider_apis import ProviderApis, demo_outbound_credentials, serve
from infra.local.samples import build_call_callbacks, build_reply, demo_credentials, reply_providers
from switchboard_core.campaigns.channels import CallOutcome, call_outcome
from switchboard_core.events import CanonicalEvent, Channel
from switchboard_core.outbound import API_OVERRIDE_ENV, PermanentFailure, api_base_url
from switchboard_core.outbound import twilio as twilio_api
from switchboard_core.outbound import vonage as vonage_api
from switchboard_core.outbound.transport import http_transport
from switchboard_core.providers import get_adapter
from tests.unit.providers.support import webhook_request

HUB = "https://hub.example.com"
CONTACT = "+14155550174"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[ProviderApis, str]]:
    apis = ProviderApis()
    server, url = serve(apis)
    yield apis, url
    server.shutdown()


@pytest.fixture
def apis(sandbox, monkeypatch) -> ProviderApis:
    monkeypatch.setenv(API_OVERRIDE_ENV, sandbox[1])
    return sandbox[0]


def twilio_credentials(apis: ProviderApis) -> twilio_api.TwilioCredentials:
    credentials = demo_outbound_credentials("twilio")
    apis.accept("twilio", credentials)
    return twilio_api.TwilioCredentials.model_validate(credentials)


def vonage_credentials(apis: ProviderApis) -> vonage_api.VonageCredentials:
    credentials = demo_outbound_credentials("vonage")
    apis.accept("vonage", credentials)
    return vonage_api.VonageCredentials.model_validate(credentials)


def test_demo_credentials_name_the_senders_campaigns_need() -> None:
    for provider in ("twilio", "telnyx", "vonage", "plivo", "bandwidth"):
        assert demo_outbound_credentials(provider)["from_number"] == "+15005550006"
    meta = demo_outbound_credentials("meta")
    assert meta["whatsapp_phone_number_id"].isdigit() and meta["page_id"].isdigit()


def test_the_sandbox_records_a_twilio_call_and_refuses_what_twilio_refuses(apis) -> None:
    credentials = twilio_credentials(apis)
    document = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hi</Say></Response>'
    root = api_base_url("twilio")
    sid = twilio_api.create_call_outcome(
        http_transport(twilio_api.create_call_request(root, credentials, CONTACT, document, f"{HUB}/webhooks/twilio/c"))
    )
    [placed] = [c for c in apis.placed_calls if c.call_id == sid]
    assert (placed.to, placed.from_, placed.twiml, placed.callback_url) == (
        CONTACT,
        credentials.from_number,
        document,
        f"{HUB}/webhooks/twilio/c",
    )
    with pytest.raises(PermanentFailure) as bad_to:
        twilio_api.create_call_outcome(
            http_transport(twilio_api.create_call_request(root, credentials, "555", document, None))
        )
    assert bad_to.value.code == "twilio_21201"
    with pytest.raises(PermanentFailure) as bad_twiml:
        twilio_api.create_call_outcome(
            http_transport(twilio_api.create_call_request(root, credentials, CONTACT, "<Say>", None))
        )
    assert bad_twiml.value.code == "twilio_12100"
    stranger = credentials.model_copy(update={"auth_token": "f" * 32})
    with pytest.raises(PermanentFailure) as refused:
        twilio_api.create_call_outcome(
            http_transport(twilio_api.create_call_request(root, stranger, CONTACT, document, None))
        )
    assert refused.value.code == "twilio_20003"


def test_the_sandbox_records_a_vonage_call_and_checks_its_ncco(apis) -> None:
    credentials = vonage_credentials(apis)
    root = api_base_url("vonage")
    ncco = [{"action": "talk", "text": "Hi"}]
    call_uuid = vonage_api.create_call_outcome(
        http_transport(vonage_api.create_call_request(root, credentials, CONTACT, ncco, f"{HUB}/webhooks/vonage/c"))
    )
    [placed] = [c for c in apis.placed_calls if c.call_id == call_uuid]
    assert (placed.to, placed.from_, placed.ncco) == ("14155550174", "15005550006", ncco)
    with pytest.raises(PermanentFailure) as bad_ncco:
        vonage_api.create_call_outcome(
            http_transport(vonage_api.create_call_request(root, credentials, CONTACT, [{"action": "dance"}], None))
        )
    assert bad_ncco.value.code == "vonage_422"


def events_of(provider: str, requests: list[Any], secrets: dict[str, str]) -> list[CanonicalEvent]:
    adapter = get_adapter(provider)
    events = []
    # The callbacks were signed just now on the real clock (Vonage's JWT iat): verify them now,
    # not at the module's import time, which a long test run leaves minutes behind.
    now = datetime.now(UTC)
    for signed in requests:
        request = webhook_request(signed.url, signed.body, signed.headers, received_at=now)
        verified = adapter.verified(request, secrets, now)
        for draft in adapter.normalise(verified):
            events.append(
                CanonicalEvent.from_draft(
                    draft,
                    provider=provider,
                    connection="con_x",
                    tenant="demo",
                    channel=Channel.TELEPHONY,
                    received_at=now,
                    raw_ref=None,
                )
            )
    return events


def test_twilio_call_callbacks_verify_and_read_as_the_outcome() -> None:
    secrets = demo_credentials("twilio")
    gather = f"{HUB}/webhooks/twilio/c?outbound=gather"
    placed: dict[str, Any] = {
        "call_id": "CA" + "7" * 32,
        "to": CONTACT,
        "from_": "+15005550006",
        "twiml": f'<Response><Gather numDigits="1" action="{gather}"><Say>Hi</Say></Gather></Response>',
        "callback_url": f"{HUB}/webhooks/twilio/c",
        "details": {"account_sid": "AC" + "1" * 32},
    }
    answered = events_of("twilio", build_call_callbacks("twilio", secrets, placed, "answered", "2"), secrets)
    assert [call_outcome(e) for e in answered] == [
        CallOutcome("twilio", placed["call_id"], "answered", "2"),
        CallOutcome("twilio", placed["call_id"], "answered", None),
    ]
    busy = events_of("twilio", build_call_callbacks("twilio", secrets, placed, "busy"), secrets)
    assert [call_outcome(e) for e in busy] == [CallOutcome("twilio", placed["call_id"], "not_answered", None)]


def test_vonage_call_callbacks_verify_and_read_as_the_outcome() -> None:
    secrets = demo_credentials("vonage")
    url = f"{HUB}/webhooks/vonage/c"
    placed: dict[str, Any] = {
        "call_id": "63f61863-4a51-4f6b-86e1-46edebcf9356",
        "to": "14155550174",
        "from_": "15005550006",
        "ncco": [{"action": "talk", "text": "Hi"}, {"action": "input", "eventUrl": [url]}],
        "callback_url": url,
        "details": {"conversation_uuid": "CON-1"},
    }
    answered = events_of("vonage", build_call_callbacks("vonage", secrets, placed, "answered", "9"), secrets)
    assert [call_outcome(e) for e in answered] == [
        None,  # "answered": what was pressed is still to come
        CallOutcome("vonage", placed["call_id"], "answered", "9"),
        CallOutcome("vonage", placed["call_id"], "answered", None),
    ]
    missed = events_of("vonage", build_call_callbacks("vonage", secrets, placed, "no-answer"), secrets)
    assert [call_outcome(e) for e in missed] == [CallOutcome("vonage", placed["call_id"], "not_answered", None)]


@pytest.mark.parametrize("provider", ["twilio", "telnyx", "vonage", "plivo", "bandwidth"])
def test_a_sandbox_reply_is_the_customers_message_to_the_connections_number(provider) -> None:
    assert provider in reply_providers()
    secrets = demo_credentials(provider)
    url = f"{HUB}/webhooks/{provider}/con_x"
    signed = build_reply(provider, secrets, url, "+14155550175", "no, not really", "+15005550006", datetime.now(UTC))
    [event] = events_of(provider, [signed], secrets)
    assert event.type == "message.received"
    assert event.text == "no, not really" and event.contact.phone == "+14155550175"


def test_the_sandbox_refuses_bad_call_outcome_orders(sandbox) -> None:
    _, url = sandbox

    def post(body: dict[str, Any]) -> int:
        request = urllib.request.Request(f"{url}/_sandbox/call_outcome", data=json.dumps(body).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    assert post({"outcome": "answered"}) == 400
    assert post({"call_id": "x", "outcome": "maybe"}) == 400
    assert post({"call_id": "x", "outcome": "answered", "digits": "12a"}) == 400
    assert post({"call_id": "CA-unknown", "outcome": "answered"}) == 404


def test_the_gather_url_carries_the_marker_ingest_reads() -> None:
    # The gather URL the hub gives Twilio carries the marker ingest reads back.
    from switchboard_core.calls.twiml import OUTBOUND_GATHER, OUTBOUND_PARAM, outbound_action_url

    url = outbound_action_url(f"{HUB}/webhooks/twilio/c", OUTBOUND_GATHER)
    assert parse_qs(urlsplit(url).query) == {OUTBOUND_PARAM: [OUTBOUND_GATHER]}
