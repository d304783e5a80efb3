"""A signed webhook in, the event out on the bus and in /admin/events: through the
local runtime's HTTP gateway, the same handlers and the emulated AWS."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from standardwebhooks import Webhook
from twilio.request_validator import RequestValidator

from switchboard_core.providers import PROVIDER_NAMES
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def twilio_sms_params(body: str = "My car broke down on the A9") -> dict[str, str]:
    sid = "SM" + secrets.token_hex(16)
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "1" * 32,
        "MessagingServiceSid": "",
        "From": "+14155550100",
        "To": "+14155550199",
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
        "FromCity": "SAN FRANCISCO",
        "FromCountry": "US",
    }


def post_twilio(hub, params: dict[str, str], token: str | None = None, url: str | None = None):
    url = url or hub.webhook_url("twilio")
    token = token or hub.connection("twilio")["credentials"]["auth_token"]
    signature = RequestValidator(token).compute_signature(url, params)
    return hub.request(
        "POST",
        url,
        urlencode(params).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )


def raw_objects(hub) -> list[str]:
    from switchboard_core import aws

    listing = aws.client("s3").list_objects_v2(Bucket=hub.runtime.names.bucket("raw"))
    return [o["Key"] for o in listing.get("Contents", [])]


def test_twilio_sms_signed_by_the_official_sdk_reaches_bus_and_event_log(hub):
    params = twilio_sms_params()
    status, _, _ = post_twilio(hub, params)
    assert status == 200
    published = wait_for(
        lambda: [e for e in hub.bus.events() if e["detail"]["provider_event_id"] == params["MessageSid"]]
    )
    assert published, "the event never reached the bus"
    event = published[0]
    assert event["source"] == "switchboard.twilio" and event["detail-type"] == "message.received"
    detail = event["detail"]
    assert detail["contact"]["phone"] == "+14155550100"
    assert detail["text"] == params["Body"]
    assert detail["tenant"] == "demo" and detail["channel"] == "telephony"
    assert detail["raw_ref"]["key"] in raw_objects(hub)
    logged = wait_for(lambda: [e for e in hub.logged_events(provider="twilio") if e["id"] == detail["id"]])
    assert logged and logged[0]["text"] == params["Body"]


def test_twilio_wrong_signature_is_401_and_stores_nothing(hub):
    before = raw_objects(hub)
    params = twilio_sms_params("tampered")
    status, _, body = post_twilio(hub, params, token="not-the-token")
    assert status == 401
    assert body["error"]["code"] == "invalid_signature"
    assert raw_objects(hub) == before
    assert not [e for e in hub.bus.events() if e["detail"]["provider_event_id"] == params["MessageSid"]]


def test_signature_over_another_url_is_refused(hub):
    params = twilio_sms_params()
    other = hub.webhook_url("twilio").replace("127.0.0.1", "localhost")
    signature = RequestValidator(hub.connection("twilio")["credentials"]["auth_token"]).compute_signature(other, params)
    status, _, _ = hub.request(
        "POST",
        hub.webhook_url("twilio"),
        urlencode(params).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )
    assert status == 401


def test_the_same_delivery_twice_yields_one_event(hub):
    params = twilio_sms_params("sent twice")
    assert post_twilio(hub, params)[0] == 200
    assert post_twilio(hub, params)[0] == 200
    wait_for(
        lambda: [e for e in hub.logged_events(provider="twilio") if e["provider_event_id"] == params["MessageSid"]]
    )
    on_bus = wait_for(
        lambda: [e for e in hub.bus.events() if e["detail"]["provider_event_id"] == params["MessageSid"]], timeout=3
    )
    assert len(on_bus) == 1
    logged = [
        e for e in hub.logged_events(provider="twilio", limit="100") if e["provider_event_id"] == params["MessageSid"]
    ]
    assert len(logged) == 1


def test_meta_handshake_echoes_the_challenge_for_the_right_token(hub):
    token = hub.connection("meta")["credentials"]["verify_token"]
    query = urlencode({"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": token})
    status, headers, body = hub.request("GET", f"{hub.webhook_url('meta')}?{query}")
    assert (status, str(body)) == (200, "1158201444")
    assert headers["Content-Type"].startswith("text/plain")
    wrong = urlencode({"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "nope"})
    status, _, body = hub.request("GET", f"{hub.webhook_url('meta')}?{wrong}")
    assert status == 403 and "1158201444" not in json.dumps(body)


def signed_standard_webhook_headers(hub, body: bytes) -> dict[str, str]:
    """Correctly signed, so that only the payload itself is at fault."""
    msg_id, now = "msg_" + secrets.token_hex(8), datetime.now(UTC)
    secret = hub.connection("standard-webhooks")["credentials"]["secret"]
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
    }


@pytest.mark.parametrize(
    "case", ["unknown_provider", "unknown_connection", "method", "too_large", "media_type", "malformed", "no_signature"]
)
def test_every_error_status_is_a_json_body_naming_the_problem(hub, case):
    url = hub.webhook_url("standard-webhooks")
    headers = {"Content-Type": "application/json"}
    body: bytes | None = b"{}"
    method = "POST"
    expected = {
        "unknown_provider": 404,
        "unknown_connection": 404,
        "method": 405,
        "too_large": 413,
        "media_type": 415,
        "malformed": 400,
        "no_signature": 401,
    }[case]
    if case == "unknown_provider":
        url = f"{hub.url}/webhooks/nope/{hub.connection('twilio')['id']}"
    elif case == "unknown_connection":
        url = f"{hub.url}/webhooks/twilio/con_0000000000000000"
    elif case == "method":
        method = "PUT"
    elif case == "too_large":
        body = b"{" + b" " * (1024 * 1024 + 1) + b"}"
    elif case == "media_type":
        headers = {"Content-Type": "text/plain"}
    elif case == "malformed":
        body = b"this is not json"
        headers = signed_standard_webhook_headers(hub, body)
    status, response_headers, payload = hub.request(method, url, body, headers)
    assert status == expected, payload
    assert response_headers["Content-Type"].startswith("application/json")
    assert payload["error"]["code"] and payload["error"]["message"]
    if case == "method":
        assert response_headers["Allow"] == "GET, POST"


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_every_provider_sample_is_accepted_end_to_end(hub, provider):
    from infra.local.samples import SAMPLES, build_sample

    for sample in SAMPLES[provider]:
        signed = build_sample(provider, sample, hub.connection(provider)["credentials"], hub.webhook_url(provider))
        status, _, body = hub.request(signed.method, signed.url, signed.body, signed.headers)
        assert 200 <= status < 300, (sample, body)
    assert wait_for(lambda: hub.logged_events(provider=provider))
