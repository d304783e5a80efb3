"""Twilio's Calls update (redirecting a live call), against the loopback sandbox over real
HTTP: the request, credentials checked like the Messages route, and every kind of answer."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs

import pytest

from switchboard_core.calls import twiml
from switchboard_core.outbound import PermanentFailure, TransientFailure
from switchboard_core.outbound.base import ProviderResponse
from switchboard_core.outbound.transport import http_transport
from switchboard_core.outbound.twilio import TwilioCredentials, update_call_outcome, update_call_request

CALL = "CA" + "e" * 32
DOCUMENT = twiml.dial("+14155550199", action_url="https://hub.example/webhooks/twilio/con_1", caller_id="+14155550100")


def credentials() -> TwilioCredentials:
    return TwilioCredentials(account_sid="AC" + secrets.token_hex(16), auth_token=secrets.token_hex(16))


def test_the_sandbox_records_an_update_with_the_accepted_credentials(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("twilio", creds.model_dump(exclude_none=True))
    request = update_call_request(f"{url}/twilio", creds, CALL, DOCUMENT)
    assert request.url.endswith(f"/2010-04-01/Accounts/{creds.account_sid}/Calls/{CALL}.json")
    assert parse_qs(request.body.decode()) == {"Twiml": [DOCUMENT]}
    assert update_call_outcome(http_transport(request)) == "in-progress"
    recorded = [u for u in apis.call_updates if u.call_sid == CALL]
    assert recorded[-1].twiml == DOCUMENT


def test_wrong_credentials_are_refused_and_nothing_is_recorded(sandbox) -> None:
    apis, url = sandbox
    before = len(apis.call_updates)
    with pytest.raises(PermanentFailure) as refused:
        update_call_outcome(http_transport(update_call_request(f"{url}/twilio", credentials(), CALL, DOCUMENT)))
    assert refused.value.code == "twilio_20003" and len(apis.call_updates) == before


def test_an_ended_call_is_twilio_21220(sandbox) -> None:
    apis, url = sandbox
    creds = credentials()
    apis.accept("twilio", creds.model_dump(exclude_none=True))
    ended = "CA" + "f" * 32
    apis.ended_calls.add(ended)
    with pytest.raises(PermanentFailure) as refused:
        update_call_outcome(http_transport(update_call_request(f"{url}/twilio", creds, ended, DOCUMENT)))
    assert refused.value.code == "twilio_21220"


@pytest.mark.parametrize(
    "response,error",
    [
        (ProviderResponse(status=503, body=b"upstream"), TransientFailure),
        (ProviderResponse(status=429, body=b'{"code": 20429, "message": "Too Many Requests"}'), TransientFailure),
        (ProviderResponse(status=404, body=b'{"code": 20404, "message": "not found"}'), PermanentFailure),
        (ProviderResponse(status=200, body=b"{}"), PermanentFailure),
    ],
)
def test_answers_that_are_not_an_updated_call(response, error) -> None:
    with pytest.raises(error):
        update_call_outcome(response)
