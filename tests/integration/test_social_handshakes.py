"""Handshakes of the social providers through the local runtime's HTTP gateway: GET challenges
(X CRC, LinkedIn, WebSub) and signed POST handshakes (Slack url_verification, Discord PING)
are answered as the providers expect and store nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest

pytestmark = pytest.mark.integration


def test_x_crc(hub):
    secret = hub.connection("x")["credentials"]["consumer_secret"]
    status, headers, body = hub.request("GET", f"{hub.webhook_url('x')}?crc_token=abc123")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    expected = base64.b64encode(hmac.new(secret.encode(), b"abc123", hashlib.sha256).digest()).decode()
    assert body == {"response_token": "sha256=" + expected}


def test_linkedin_challenge(hub):
    secret = hub.connection("linkedin")["credentials"]["client_secret"]
    code = "890e4665-4dfe-4ab1-b689-ed553bceeed0"
    status, _, body = hub.request("GET", f"{hub.webhook_url('linkedin')}?challengeCode={code}")
    assert status == 200
    assert body == {
        "challengeCode": code,
        "challengeResponse": hmac.new(secret.encode(), code.encode(), hashlib.sha256).hexdigest(),
    }


def test_websub_intent_verification(hub):
    query = urlencode(
        {
            "hub.mode": "subscribe",
            "hub.topic": "https://www.youtube.com/xml/feeds/videos.xml?channel_id=UC1",
            "hub.challenge": "1430842751851497637",
            "hub.lease_seconds": "432000",
        }
    )
    status, headers, body = hub.request("GET", f"{hub.webhook_url('websub')}?{query}")
    assert (status, str(body)) == (200, "1430842751851497637")
    assert headers["Content-Type"].startswith("text/plain")


def test_slack_url_verification_needs_a_signature(hub):
    secret = hub.connection("slack")["credentials"]["signing_secret"]
    body = json.dumps({"token": "t", "challenge": "ch4llenge", "type": "url_verification"}).encode()
    ts = str(int(time.time()))
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    status, _, answer = hub.request(
        "POST",
        hub.webhook_url("slack"),
        body,
        {"Content-Type": "application/json", "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature},
    )
    assert (status, str(answer)) == (200, "ch4llenge")
    status, _, answer = hub.request(
        "POST",
        hub.webhook_url("slack"),
        body,
        {"Content-Type": "application/json", "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + "0" * 64},
    )
    assert status == 401 and "ch4llenge" not in json.dumps(answer)


def test_discord_ping_is_answered_with_pong(hub):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    credentials = hub.connection("discord")["credentials"]
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(credentials["demo_private_key"]))
    body = json.dumps(
        {"id": "1189001122334455667", "application_id": "1", "type": 1, "token": "t", "version": 1}
    ).encode()
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Signature-Timestamp": ts,
        "X-Signature-Ed25519": key.sign(ts.encode() + body).hex(),
    }
    status, _, answer = hub.request("POST", hub.webhook_url("discord"), body, headers)
    assert (status, answer) == (200, {"type": 1})
    bad = {**headers, "X-Signature-Ed25519": "00" * 64}
    assert hub.request("POST", hub.webhook_url("discord"), body, bad)[0] == 401
