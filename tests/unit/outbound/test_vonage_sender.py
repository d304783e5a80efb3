"""Vonage: the application JWT, SMS replies through the Messages API (the address read from
recorded inbound webhooks through the adapter) and the Voice API call transfer, against the
loopback sandbox over real HTTP, which checks the JWT with the application's public key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from infra.local.provider_apis import demo_outbound_credentials
from switchboard_core.calls import ncco
from switchboard_core.errors import HubError
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound import (
    PermanentFailure,
    ReplyAddress,
    TransientFailure,
    reply_address,
    send,
    validate_credentials,
)
from switchboard_core.outbound.base import OutboundRequest, ProviderResponse
from switchboard_core.outbound.transport import http_transport
from switchboard_core.outbound.vonage import (
    TOKEN_LIFETIME_SECONDS,
    VonageCredentials,
    VonageSender,
    application_jwt,
    transfer_outcome,
    transfer_request,
)
from tests.builders import posted

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
EVENTS = Path(__file__).resolve().parents[2] / "events" / "vonage"
CALL = "63f61863-4a51-4f6b-86e1-46edebcf9356"
CONNECT = ncco.connect(
    "+494310001", webhook_url="https://hub.example/webhooks/vonage/c", caller_uuid=CALL, caller_id=None
)


@cache
def _application() -> tuple[tuple[str, str], ...]:
    return tuple(demo_outbound_credentials("vonage").items())


def credentials() -> dict[str, str]:
    """One demo application per test run (an RSA key takes a moment to make)."""
    return dict(_application())


def model() -> VonageCredentials:
    return VonageCredentials.model_validate(credentials())


def normalised(body: bytes, content_type: str) -> CanonicalEvent:
    [event] = posted("vonage", body, received_at=NOW, headers={"content-type": content_type})
    return event


def customer_address() -> ReplyAddress:
    address = reply_address(normalised((EVENTS / "sms-inbound.txt").read_bytes(), "application/x-www-form-urlencoded"))
    assert address is not None
    return address


def public_key(creds: dict[str, str]):
    return serialization.load_pem_private_key(creds["private_key"].encode(), password=None).public_key()


@pytest.fixture
def sandbox(sandbox):
    """The module's sandbox, emptied: each test sees only what it sent."""
    apis, _ = sandbox
    apis.messages.clear()
    apis.call_updates.clear()
    return sandbox


def test_sms_is_answered_from_the_number_written_to_and_other_events_are_not():
    assert customer_address().fields == {"to": "14155550123", "from": "14155550100"}
    messages_sms = {"to": "14155550100", "from": "14155550142", "channel": "sms", "message_uuid": "m1", "text": "hi"}
    address = reply_address(normalised(json.dumps(messages_sms).encode(), "application/json"))
    assert address is not None and address.fields == {"to": "14155550142", "from": "14155550100"}
    for name in ("messages-inbound-whatsapp.json", "messages-status-delivered.json", "voice-event-answered.json"):
        assert reply_address(normalised((EVENTS / name).read_bytes(), "application/json")) is None
    receipt = (EVENTS / "sms-delivery-receipt.txt").read_bytes()
    assert reply_address(normalised(receipt, "application/x-www-form-urlencoded")) is None


def test_the_application_jwt_is_rs256_short_lived_and_unique():
    creds = credentials()
    first, second = application_jwt(model(), now=1_700_000_000), application_jwt(model(), now=1_700_000_000)
    assert jwt.get_unverified_header(first)["alg"] == "RS256"
    claims = jwt.decode(first, public_key(creds), algorithms=["RS256"], options={"verify_exp": False})
    assert claims["application_id"] == creds["application_id"]
    assert claims["exp"] - claims["iat"] == TOKEN_LIFETIME_SECONDS
    assert claims["jti"] != jwt.decode(second, options={"verify_signature": False})["jti"]


def test_a_reply_reaches_the_sandbox_through_the_messages_api(sandbox):
    apis, url = sandbox
    apis.accept("vonage", credentials())
    message_uuid = send(customer_address(), "on our way", credentials(), http_transport, base_url=f"{url}/vonage")
    [sent] = apis.messages
    assert (sent.provider, sent.message_id, sent.to, sent.text) == ("vonage", message_uuid, "14155550123", "on our way")
    assert sent.details == {"from": "14155550100"}


def test_another_applications_key_and_an_expired_token_are_401(sandbox):
    apis, url = sandbox
    apis.accept("vonage", credentials())
    stranger = demo_outbound_credentials("vonage")
    with pytest.raises(PermanentFailure) as failure:
        send(customer_address(), "hi", stranger, http_transport, base_url=f"{url}/vonage")
    assert failure.value.code == "vonage_401" and "credentials" in failure.value.detail
    # The right key, but a token that has expired (made two minutes ago).
    expired = application_jwt(model(), now=datetime.now(UTC).timestamp() - 120)
    request = transfer_request(f"{url}/vonage", model(), CALL, CONNECT)
    stale = OutboundRequest(
        request.method, request.url, {**request.headers, "Authorization": f"Bearer {expired}"}, request.body
    )
    with pytest.raises(PermanentFailure) as refused:
        transfer_outcome(http_transport(stale))
    assert refused.value.code == "vonage_401" and apis.messages == [] and apis.call_updates == []


def _pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({}, "application_id"),
        ({"application_id": "not-a-uuid"}, "application_id"),
        (
            {"private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n" + "x" * 80},
            "private_key",
        ),
        ({"private_key": _pem(ec.generate_private_key(ec.SECP256R1()))}, "private_key"),
        ({"private_key": _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))}, "private_key"),
        ({"api_key": "abcd1234"}, "api_key"),
    ],
)
def test_outbound_credentials_are_validated_naming_the_field_never_the_key(bad, field):
    with pytest.raises(HubError) as error:
        validate_credentials("vonage", {**credentials(), **bad} if bad else {})
    assert error.value.status == 400 and field in error.value.message
    assert "PRIVATE KEY" not in json.dumps(error.value.body())


def test_good_credentials_are_kept():
    saved = validate_credentials("vonage", credentials())
    assert saved["application_id"] == credentials()["application_id"]
    assert saved["private_key"].startswith("-----BEGIN PRIVATE KEY-----")


def test_a_transfer_is_recorded_as_a_call_update(sandbox):
    apis, url = sandbox
    apis.accept("vonage", credentials())
    request = transfer_request(f"{url}/vonage", model(), CALL, CONNECT)
    assert request.method == "PUT" and request.url.endswith(f"/v1/calls/{CALL}")
    transfer_outcome(http_transport(request))  # raises unless Vonage took it
    [update] = apis.call_updates
    assert (update.provider, update.call_sid, update.action) == ("vonage", CALL, "transfer")
    assert update.body == {"action": "transfer", "destination": {"type": "ncco", "ncco": CONNECT}}


def test_a_transfer_of_an_ended_or_unknown_call_is_404(sandbox):
    apis, url = sandbox
    apis.accept("vonage", credentials())
    apis.ended_calls.add(CALL)
    for call in (CALL, "not-a-call-uuid"):
        with pytest.raises(PermanentFailure) as failure:
            transfer_outcome(http_transport(transfer_request(f"{url}/vonage", model(), call, CONNECT)))
        assert failure.value.code == "vonage_404"
    apis.ended_calls.discard(CALL)
    assert apis.call_updates == []


@pytest.mark.parametrize(
    "document",
    [
        [],
        [{"action": "dial", "number": "4943"}],
        [{**CONNECT[0], "eventUrl": "https://hub.example/x"}],  # eventUrl must be an array
        [{"action": "connect", "endpoint": [{"type": "phone", "number": "+494310001"}]}],  # digits only
        [{"action": "talk"}],
    ],
)
def test_a_transfer_to_an_ncco_vonage_would_refuse_is_400(sandbox, document):
    apis, url = sandbox
    apis.accept("vonage", credentials())
    with pytest.raises(PermanentFailure) as failure:
        transfer_outcome(http_transport(transfer_request(f"{url}/vonage", model(), CALL, document)))
    assert failure.value.code == "vonage_400" and apis.call_updates == []


@pytest.mark.parametrize("status", [429, 503])
def test_a_rate_limited_or_failing_transfer_is_transient(sandbox, status):
    apis, url = sandbox
    apis.accept("vonage", credentials())
    apis.fail_next("vonage", status)
    with pytest.raises(TransientFailure):
        transfer_outcome(http_transport(transfer_request(f"{url}/vonage", model(), CALL, CONNECT)))


def test_an_empty_text_is_refused_422_and_a_2xx_without_a_message_uuid_is_unexpected(sandbox):
    apis, url = sandbox
    apis.accept("vonage", credentials())
    with pytest.raises(PermanentFailure) as refused:
        send(customer_address(), "", credentials(), http_transport, base_url=f"{url}/vonage")
    assert refused.value.code == "vonage_422" and "Invalid params" in refused.value.detail and apis.messages == []
    with pytest.raises(PermanentFailure) as unexpected:
        VonageSender().outcome(ProviderResponse(status=202, body=b"{}"))
    assert unexpected.value.code == "unexpected_response"
    with pytest.raises(PermanentFailure) as gone:
        transfer_outcome(ProviderResponse(status=404, body=b"not json"))
    assert gone.value.code == "vonage_404" and gone.value.detail == "not json"
