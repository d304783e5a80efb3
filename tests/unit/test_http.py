import base64
from datetime import UTC, datetime

import pytest

from switchboard_core.errors import HubError
from switchboard_core.http import public_url, raw_body, webhook_request


def api_event(**overrides):
    event = {
        "rawPath": "/webhooks/twilio/con_1",
        "rawQueryString": "a=1&b=2",
        "headers": {
            "host": "abc.execute-api.eu-west-1.amazonaws.com",
            "x-forwarded-proto": "https",
            "x-forwarded-port": "443",
            "Content-Type": "application/json",
        },
        "requestContext": {"http": {"method": "POST"}, "domainName": "abc.execute-api.eu-west-1.amazonaws.com"},
        "body": '{"a": 1}',
        "isBase64Encoded": False,
    }
    event.update(overrides)
    return event


def test_raw_body_keeps_exact_bytes_of_base64_bodies():
    data = b"\x00\xffbinary"
    assert raw_body({"body": base64.b64encode(data).decode(), "isBase64Encoded": True}) == data
    assert raw_body({"body": "h\u00e9", "isBase64Encoded": False}) == "h\u00e9".encode()


def test_bad_base64_is_a_400():
    with pytest.raises(HubError) as caught:
        raw_body({"body": "!!!", "isBase64Encoded": True})
    assert caught.value.status == 400


def test_public_url_is_what_the_provider_called():
    assert public_url(api_event()) == "https://abc.execute-api.eu-west-1.amazonaws.com/webhooks/twilio/con_1?a=1&b=2"
    local = api_event(headers={"host": "127.0.0.1:8080", "x-forwarded-proto": "http"}, rawQueryString="")
    assert public_url(local) == "http://127.0.0.1:8080/webhooks/twilio/con_1"
    assert (
        public_url(api_event(), "https://hooks.example.com/")
        == "https://hooks.example.com/webhooks/twilio/con_1?a=1&b=2"
    )


def test_webhook_request_lower_cases_headers_and_parses_query():
    request = webhook_request(api_event(), datetime(2026, 1, 1, tzinfo=UTC))
    assert request.method == "POST"
    assert request.header("Content-Type") == "application/json"
    assert request.query == {"a": ["1"], "b": ["2"]}
    assert request.body == b'{"a": 1}'
