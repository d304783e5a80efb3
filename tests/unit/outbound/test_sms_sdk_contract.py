"""The SMS/MMS senders' requests against the providers' own SDKs (dev dependencies only):
for the same answer, each official SDK's send call is captured before it leaves the process
and compared with what the hub's sender builds (method, URL, authentication, every
parameter). Where the SDK sends an API default the hub leaves out, the test names it. The
status webhooks the sandbox sends back (samples' build_status) pass the SDKs' own signature
validators. (Bandwidth's SDK is not a dev dependency: its tests follow the API reference.)"""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import plivo
import pytest
import requests
import telnyx
from plivo.utils import validate_v3_signature
from telnyx.lib.webhook_verification import verify_webhook_signature
from twilio.http import HttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator
from twilio.rest import Client as TwilioClient

from infra.local.provider_apis import demo_outbound_credentials
from infra.local.samples import build_status, demo_credentials
from switchboard_core.outbound.base import Attachment, OutboundMessage
from switchboard_core.outbound.plivo import PlivoCredentials, PlivoSender
from switchboard_core.outbound.telnyx import TelnyxCredentials, TelnyxSender
from switchboard_core.outbound.twilio import TwilioCredentials, TwilioSender

CALLBACK = "https://hub.example.com/webhooks/x/con_1"
MEDIA = (Attachment("https://cdn.example.com/label.png", "image/png"), Attachment("https://cdn.example.com/r.pdf"))
MESSAGE = OutboundMessage("Your label and receipt", message_id="msg_1", attachments=MEDIA, status_callback=CALLBACK)


def test_twilio_matches_the_twilio_sdk_messages_create() -> None:
    creds = TwilioCredentials.model_validate(demo_outbound_credentials("twilio"))
    seen: dict[str, Any] = {}

    class Capture(HttpClient):
        def request(self, method, uri, params=None, data=None, headers=None, auth=None, timeout=None, **_):
            seen.update(method=method, uri=uri, data=data, auth=auth)
            return TwilioResponse(201, json.dumps({"sid": "SM" + "0" * 32, "status": "queued"}))

    client = TwilioClient(
        creds.account_sid, creds.auth_token, http_client=Capture(logging.getLogger("twilio-capture"), False)
    )
    client.messages.create(
        to="+14155550178",
        from_="+14155550100",
        body=MESSAGE.text,
        media_url=[a.url for a in MEDIA],
        status_callback=CALLBACK,
    )
    ours = TwilioSender().request(
        "https://api.twilio.com", {"to": "+14155550178", "from": "+14155550100"}, MESSAGE, creds
    )
    assert (ours.method, ours.url) == (seen["method"], seen["uri"])
    assert ours.headers["Authorization"] == "Basic " + base64.b64encode(":".join(seen["auth"]).encode()).decode()
    sdk = {name: value if isinstance(value, list) else [value] for name, value in seen["data"].items()}
    assert parse_qs(ours.body.decode()) == sdk
    assert sdk["MediaUrl"] == [a.url for a in MEDIA] and sdk["StatusCallback"] == [CALLBACK]


def test_telnyx_matches_the_telnyx_sdk_messages_send() -> None:
    creds = TelnyxCredentials.model_validate(demo_outbound_credentials("telnyx"))
    seen: list[httpx.Request] = []

    def capture(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": {"id": "40385f64-5717-4562-b3fc-2c963f66afa6"}})

    client = telnyx.Telnyx(
        api_key=creds.api_key,
        base_url="https://api.telnyx.com/v2",
        http_client=httpx.Client(transport=httpx.MockTransport(capture)),
        max_retries=0,
    )
    client.messages.send(
        from_="+14155550100",
        to="+14155550178",
        text=MESSAGE.text,
        media_urls=[a.url for a in MEDIA],
        webhook_url=CALLBACK,
    )
    [sdk] = seen
    ours = TelnyxSender().request(
        "https://api.telnyx.com", {"to": "+14155550178", "from": "+14155550100"}, MESSAGE, creds
    )
    assert (ours.method, ours.url) == (sdk.method, str(sdk.url))
    assert ours.headers["Authorization"] == sdk.headers["authorization"]
    assert json.loads(ours.body) == json.loads(sdk.content)


def test_plivo_matches_the_plivo_sdk_messages_create(monkeypatch) -> None:
    creds = PlivoCredentials.model_validate(demo_outbound_credentials("plivo"))
    client = plivo.RestClient(creds.auth_id, creds.auth_token)
    seen: list[requests.PreparedRequest] = []

    def capture(request: requests.PreparedRequest, **_: Any) -> requests.Response:
        seen.append(request)
        answer = requests.Response()
        answer.status_code, answer.headers["Content-Type"] = 202, "application/json"
        answer._content = b'{"api_id": "a", "message": "message(s) queued", "message_uuid": ["u"]}'
        return answer

    monkeypatch.setattr(client, "send_request", capture)
    client.messages.create(
        src="14155550100",
        dst="14155550178",
        text=MESSAGE.text,
        type_="mms",
        media_urls=[a.url for a in MEDIA],
        url=CALLBACK,
        method="POST",
    )
    [sdk] = seen
    ours = PlivoSender().request("https://api.plivo.com", {"to": "14155550178", "from": "14155550100"}, MESSAGE, creds)
    assert (ours.method, ours.url) == (sdk.method, sdk.url)
    assert ours.headers["Authorization"] == sdk.headers["Authorization"]
    body, sdk_body = json.loads(ours.body), json.loads(sdk.body or b"{}")
    assert {name: sdk_body[name] for name in body} == body
    # What the SDK adds are the API's own defaults (log "true", trackable false).
    assert {name: sdk_body[name] for name in set(sdk_body) - set(body)} == {"log": "true", "trackable": False}


# --- the status webhooks the sandbox sends back pass the SDKs' own validators ---------------------
SENT = {
    "twilio": {"to": "+14155550178", "message_id": "SM" + "a" * 32, "details": {"from": "+14155550100"}},
    "telnyx": {"to": "+14155550178", "message_id": "40385f64-5717-4562-b3fc-2c963f66afa6", "details": {}},
    "plivo": {"to": "14155550178", "message_id": "7c8d9e0f-2a3b-4c4d-9e5f-6a7b8c9d0e1f", "details": {}},
}


def _status(provider: str, state: str) -> tuple[dict[str, str], Any]:
    credentials = demo_credentials(provider)
    sent = {"provider": provider, "text": "hi", **SENT[provider]}
    now = datetime.now(UTC)  # the Telnyx SDK checks freshness against the real clock
    return credentials, build_status(
        provider, credentials, f"https://hub.example.com/webhooks/{provider}/c", sent, state, None, now
    )


@pytest.mark.parametrize("state", ["sent", "delivered", "read", "failed"])
def test_twilio_status_callbacks_pass_the_sdk_validator(state: str) -> None:
    credentials, signed = _status("twilio", state)
    params = {name: values[0] for name, values in parse_qs(signed.body.decode(), keep_blank_values=True).items()}
    validator = RequestValidator(credentials["auth_token"])
    assert validator.validate(signed.url, params, signed.headers["X-Twilio-Signature"])
    tampered = {**params, "MessageStatus": "delivered" if state != "delivered" else "failed"}
    assert not validator.validate(signed.url, tampered, signed.headers["X-Twilio-Signature"])


@pytest.mark.parametrize("state", ["sent", "delivered", "failed"])
def test_telnyx_status_webhooks_pass_the_sdk_verifier(state: str) -> None:
    credentials, signed = _status("telnyx", state)
    verify_webhook_signature(signed.body, {k.lower(): v for k, v in signed.headers.items()}, credentials["public_key"])


@pytest.mark.parametrize("state", ["sent", "delivered", "failed"])
def test_plivo_status_callbacks_pass_the_sdk_validator(state: str) -> None:
    credentials, signed = _status("plivo", state)
    params = {name: values[0] for name, values in parse_qs(signed.body.decode(), keep_blank_values=True).items()}
    assert validate_v3_signature(
        "POST",
        signed.url,
        signed.headers["X-Plivo-Signature-V3-Nonce"],
        credentials["auth_token"],
        signed.headers["X-Plivo-Signature-V3"],
        params,
    )
