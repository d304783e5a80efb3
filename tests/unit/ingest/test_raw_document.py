"""The raw request's stored document and key are what `json.dumps` and `strftime` wrote before
they were built for speed (docs/benchmarks.md, warm CPU per webhook)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from switchboard_core.providers.base import WebhookRequest
from switchboard_core.raw_store import REDACTED, raw_document, raw_key


def _reference(request: WebhookRequest, credential_headers: set[str], received_at: datetime) -> bytes:
    names = {name.lower() for name in credential_headers}
    document = {
        "provider": "twilio",
        "connection": "con_1",
        "delivery_id": "SM1:received",
        "received_at": received_at.isoformat(),
        "method": request.method,
        "url": request.url,
        "headers": {k: REDACTED if k.lower() in names else v for k, v in request.headers.items()},
        "redacted_headers": sorted(k for k in request.headers if k.lower() in names),
        "body_base64": base64.b64encode(request.body).decode(),
    }
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "body",
    [b"", b"a=1&b=2", "caf\u00e9 \U0001f600".encode(), bytes(range(256)) * 5, b'{"k": "\\ud800"}'],
)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"content-type": "application/json", "authorization": "Basic c2VjcmV0", "x-n\u00e9": 'v\u00e9 "q" \\'},
        {"Cookie": "a=b", "x-twilio-signature": "sig=", "x-lone": "\ud800"},
    ],
)
def test_the_document_is_json_dumps_of_the_request(body, headers):
    received_at = datetime(2026, 12, 2, 15, 0, 0, 123456, tzinfo=UTC)
    request = WebhookRequest(
        method="POST", url="https://h.example/webhooks/x?q=\u00e9&s=\ud800", headers=headers, body=body
    )
    credential_headers = {"authorization", "cookie"}
    built = raw_document(
        request,
        provider="twilio",
        connection="con_1",
        delivery_id="SM1:received",
        received_at=received_at,
        credential_headers=credential_headers,
    )
    assert built == _reference(request, credential_headers, received_at)
    assert base64.b64decode(json.loads(built)["body_base64"]) == body


def test_the_key_is_the_days_path_and_the_digest():
    digest = hashlib.sha256(b"delivery").hexdigest()[:32]
    start = datetime(999, 12, 25, tzinfo=UTC)
    for days in range(0, 3_000_000, 997):
        when = start + timedelta(days=days)
        if when.year > 9999:
            break
        assert raw_key("acme", "con_1", "delivery", when) == f"raw/acme/con_1/{when:%Y/%m/%d}/{digest}.json"
