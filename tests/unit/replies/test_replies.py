"""The replies function's logic against moto (tables, Secrets Manager), with the provider
transport passed in: what is sent, skipped or failed, and that nothing is sent twice."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from functions.replies.logic import ReplyDeps, ReplyOutbox, RequestInProgress, handle_reply_request
from infra import topology
from infra.local.emulator import LocalNames
from switchboard_core import aws
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from switchboard_core.events import CanonicalEvent, Contact
from switchboard_core.outbound import TransientFailure
from switchboard_core.outbound.base import OutboundRequest, ProviderResponse
from switchboard_core.routing.contacts import ContactStore, Identity
from tests.builders import canonical_event

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
PHONE = "+14155550178"
OUTBOUND = {"account_sid": "AC" + "1" * 32, "auth_token": "t" * 32}


class FakeTwilio:
    """The transport: records each request and answers what the test queued (default: 201)."""

    def __init__(self) -> None:
        self.requests: list[OutboundRequest] = []
        self.answers: list[ProviderResponse | Exception] = []

    def __call__(self, request: OutboundRequest) -> ProviderResponse:
        self.requests.append(request)
        answer = (
            self.answers.pop(0)
            if self.answers
            else ProviderResponse(status=201, body=json.dumps({"sid": "SM" + secrets.token_hex(16)}).encode())
        )
        if isinstance(answer, Exception):
            raise answer
        return answer

    def bodies(self) -> list[str]:
        return [parse_qs(r.body.decode())["Body"][0] for r in self.requests]


@pytest.fixture
def world(aws_world):
    resource = aws.resource("dynamodb")
    names = aws_world.names
    connections = ConnectionStore(resource.Table(names.table("connections")))
    outbound = CredentialStore(
        aws.client("secretsmanager"), topology.outbound_secrets_prefix("test"), max_age_seconds=0
    )
    connections.put(
        Connection(id="con_twilio", provider="twilio", tenant="acme", created_at=NOW, outbound_configured_at=NOW)
    )
    outbound.replace("con_twilio", OUTBOUND, "acme")
    contacts = ContactStore(resource.Table(names.table("contacts")))
    contact = contacts.resolve("acme", [Identity(kind="phone", value=PHONE)], reason="e0", now=NOW)
    transport = FakeTwilio()
    deps = ReplyDeps(
        outbox=ReplyOutbox(resource.Table(names.table("replies"))),
        contacts=contacts,
        connections=connections,
        credentials=outbound,
        transport=transport,
    )
    return deps, transport, contact


def request_event(
    n: int,
    contact_id: str,
    *,
    conversation: str = "cv_1",
    text: str = "Thanks, we're on it",
    template: str = "Thanks, we're on it",
    reply_to: dict | str | None = "twilio",
) -> CanonicalEvent:
    address = {"provider": "twilio", "connection": "con_twilio", "fields": {"to": PHONE, "from": "+14155550100"}}
    attributes = {
        "conversation": conversation,
        "source_event": f"src{n}",
        "rule": "ack",
        "template": template,
        "source_provider": "twilio",
        "reply_to": address if reply_to == "twilio" else reply_to,
        "contact": {"id": contact_id, "opted_out": False},
    }
    return canonical_event(
        "reply.requested",
        f"src{n}:reply.requested",
        received_at=NOW,
        provider="routing",
        text=text,
        contact=Contact(phone=PHONE),
        conversation_key=conversation,
        attributes=attributes,
    )


def test_sends_through_the_provider_and_reports_the_message_id(world):
    deps, transport, contact = world
    outcome = handle_reply_request(request_event(1, contact.id), deps, NOW)
    assert outcome.type == "reply.sent" and outcome.source == "switchboard.replies"
    assert outcome.attributes["provider_message_id"].startswith("SM")
    assert outcome.attributes["via"] == "twilio" and outcome.attributes["to"]["to"] == PHONE
    assert outcome.conversation_key == "cv_1" and outcome.text == "Thanks, we're on it"
    assert transport.bodies() == ["Thanks, we're on it"]
    assert f"/Accounts/{OUTBOUND['account_sid']}/Messages.json" in transport.requests[0].url


def test_a_redelivered_request_gets_the_same_outcome_and_sends_nothing_more(world):
    deps, transport, contact = world
    first = handle_reply_request(request_event(1, contact.id), deps, NOW)
    again = handle_reply_request(request_event(1, contact.id), deps, NOW + timedelta(minutes=5))
    assert again == first and len(transport.requests) == 1


def test_one_auto_reply_per_conversation_and_template(world):
    deps, transport, contact = world
    handle_reply_request(request_event(1, contact.id), deps, NOW)
    second = handle_reply_request(request_event(2, contact.id), deps, NOW)
    assert second.type == "reply.skipped" and second.attributes["reason"] == "already_sent"
    other_template = handle_reply_request(
        request_event(3, contact.id, template="Out of hours: ${reply_within}", text="Out of hours: 1 hour"), deps, NOW
    )
    other_conversation = handle_reply_request(request_event(4, contact.id, conversation="cv_2"), deps, NOW)
    assert (other_template.type, other_conversation.type) == ("reply.sent", "reply.sent")
    assert len(transport.requests) == 3


def test_an_opted_out_contact_gets_no_reply_even_if_routing_saw_them_opted_in(world):
    deps, transport, contact = world
    deps.contacts.record_consent(contact.id, opted_out=True, channel="telephony", source="stop", at=NOW)
    outcome = handle_reply_request(request_event(1, contact.id), deps, NOW)
    assert outcome.type == "reply.skipped" and outcome.attributes["reason"] == "opted_out"
    assert transport.requests == []


def test_a_channel_that_cannot_be_answered_is_skipped_not_lost(world):
    deps, transport, contact = world
    outcome = handle_reply_request(request_event(1, contact.id, reply_to=None), deps, NOW)
    assert outcome.type == "reply.skipped" and outcome.attributes["reason"] == "no_reply_channel"
    assert "twilio" in outcome.attributes["detail"] and transport.requests == []


def test_a_connection_without_outbound_credentials_is_skipped_and_does_not_hold_the_conversation(world):
    deps, _, contact = world
    connection = deps.connections.get("con_twilio")
    deps.connections.put(connection.model_copy(update={"outbound_configured_at": None}))
    skipped = handle_reply_request(request_event(1, contact.id), deps, NOW)
    assert skipped.type == "reply.skipped" and skipped.attributes["reason"] == "not_configured"
    assert "/admin/connections/" in skipped.attributes["detail"]
    deps.connections.put(connection)  # configured later: the next message of the conversation is answered
    assert handle_reply_request(request_event(2, contact.id), deps, NOW).type == "reply.sent"


def test_a_deleted_connection_is_skipped(world):
    deps, _, contact = world
    deps.connections.delete("con_twilio")
    outcome = handle_reply_request(request_event(1, contact.id), deps, NOW)
    assert outcome.type == "reply.skipped" and outcome.attributes["reason"] == "connection_gone"


def test_a_provider_refusal_fails_for_good_and_releases_the_conversation(world):
    deps, transport, contact = world
    transport.answers.append(
        ProviderResponse(
            status=400,
            body=json.dumps(
                {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}
            ).encode(),
        )
    )
    failed = handle_reply_request(request_event(1, contact.id), deps, NOW)
    assert failed.type == "reply.failed"
    assert failed.attributes["code"] == "twilio_21610" and "unsubscribed" in failed.attributes["detail"]
    assert handle_reply_request(request_event(2, contact.id), deps, NOW).type == "reply.sent"


@pytest.mark.parametrize(
    "answer",
    [
        ProviderResponse(status=503, body=b'{"code": 20500, "message": "Internal Server Error", "status": 503}'),
        ProviderResponse(status=429, body=b'{"code": 20429, "message": "Too Many Requests", "status": 429}'),
        TransientFailure("network_error", "timed out"),
    ],
)
def test_transient_failures_raise_for_the_queue_to_retry_and_the_retry_sends_once(world, answer):
    deps, transport, contact = world
    transport.answers.append(answer)
    with pytest.raises(TransientFailure):
        handle_reply_request(request_event(1, contact.id), deps, NOW)
    # meanwhile another message of the conversation does not jump in: the claim is held
    assert handle_reply_request(request_event(2, contact.id), deps, NOW).attributes["reason"] == "already_sent"
    retried = handle_reply_request(request_event(1, contact.id), deps, NOW + timedelta(minutes=2))
    assert retried.type == "reply.sent" and len(transport.requests) == 2


def test_a_duplicate_delivery_while_the_first_is_sending_waits_instead_of_sending_twice(world):
    deps, transport, contact = world
    transport.answers.append(TransientFailure("network_error", "timed out"))
    with pytest.raises(TransientFailure):
        handle_reply_request(request_event(1, contact.id), deps, NOW)
    with pytest.raises(RequestInProgress):  # seconds later: the first attempt may still be running
        handle_reply_request(request_event(1, contact.id), deps, NOW + timedelta(seconds=5))
    assert len(transport.requests) == 1


def test_the_last_attempt_fails_for_good_and_releases_the_conversation(world):
    deps, transport, contact = world
    transport.answers.append(ProviderResponse(status=503, body=b'{"code": 20500, "message": "down", "status": 503}'))
    failed = handle_reply_request(request_event(1, contact.id), deps, NOW, last_attempt=True)
    assert failed.type == "reply.failed" and failed.attributes["code"] == "twilio_20500"
    assert "last attempt" in failed.attributes["detail"]
    assert handle_reply_request(request_event(2, contact.id), deps, NOW).type == "reply.sent"


def test_a_template_that_rendered_empty_is_skipped_before_anything_is_claimed(world):
    deps, _, contact = world
    skipped = handle_reply_request(request_event(1, contact.id, text=" "), deps, NOW)
    assert skipped.type == "reply.skipped" and skipped.attributes["reason"] == "empty_text"
    assert handle_reply_request(request_event(2, contact.id), deps, NOW).type == "reply.sent"


def test_credentials_come_from_the_outbound_prefix_only(world):
    deps, transport, contact = world
    stack_secrets = {LocalNames("test").secret(name) for name in topology.SECRETS}  # the hub's own (cursor key)
    secret_names = [
        s["Name"] for s in aws.client("secretsmanager").list_secrets()["SecretList"] if s["Name"] not in stack_secrets
    ]
    assert secret_names == [f"{topology.outbound_secrets_prefix('test')}con_twilio"]
    handle_reply_request(request_event(1, contact.id), deps, NOW)
    assert transport.requests[0].headers["Authorization"].startswith("Basic ")
