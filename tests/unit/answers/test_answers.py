"""Staff answers end to end against moto: the admin API's logic queues an answer, the answers
function sends it through the provider's sender (the transport faked), and the provider's
delivery reports move it on. Good and bad cases alike, and that nothing is sent twice."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest

from functions.admin import answers as admin
from functions.answers import logic
from infra import topology
from switchboard_core import aws
from switchboard_core.answers import RETRY_REQUESTED, SENT
from switchboard_core.answers.store import MessageStore
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from switchboard_core.errors import HubError, NotFound
from switchboard_core.event_log import EventLogStore
from switchboard_core.events import CanonicalEvent, Channel, Contact, EventDraft
from switchboard_core.outbound import DeliveryStatus, Refused, TransientFailure
from switchboard_core.outbound.base import DeliveryState, OutboundRequest, ProviderResponse
from switchboard_core.principals import Principal, Role
from switchboard_core.routing.contacts import ContactStore, Identity
from switchboard_core.routing.conversations import ConversationStore

NOW = datetime(2026, 12, 2, 9, tzinfo=UTC)
PHONE = "+14155550178"
BUSINESS = "+14155550100"
OUTBOUND = {"account_sid": "AC" + "1" * 32, "auth_token": "t" * 32}
STAFF = Principal(key_id="key_staff", tenant="acme", name="Dana (support)", role=Role.STAFF)
PARTNER = Principal(key_id="key_partner", tenant="acme", name="partner", role=Role.PARTNER)
OTHER_STAFF = Principal(key_id="key_other", tenant="globex", name="other", role=Role.STAFF)


class FakeProvider:
    """The transport: records each request and answers what the test queued (default: Twilio's 201)."""

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

    def forms(self) -> list[dict[str, list[str]]]:
        return [parse_qs(r.body.decode()) for r in self.requests]


class World:
    def __init__(self, names: Any) -> None:
        resource = aws.resource("dynamodb")
        self.published: list[CanonicalEvent] = []
        self.connections = ConnectionStore(resource.Table(names.table("connections")))
        self.outbound = CredentialStore(
            aws.client("secretsmanager"), topology.outbound_secrets_prefix("test"), max_age_seconds=0
        )
        self.contacts = ContactStore(resource.Table(names.table("contacts")))
        self.conversations = ConversationStore(resource.Table(names.table("conversations")))
        self.event_log = EventLogStore(resource.Table(names.table("event_log")), ttl=timedelta(days=30))
        self.messages = MessageStore(resource.Table(names.table("messages")))
        self.transport = FakeProvider()
        self.admin = admin.AnswerDeps(
            messages=self.messages,
            conversations=self.conversations,
            contacts=self.contacts,
            event_log=self.event_log,
            connections=self.connections,
            publish=self.published.extend,
        )
        self.function = logic.AnswerDeps(
            messages=self.messages,
            contacts=self.contacts,
            connections=self.connections,
            credentials=self.outbound,
            transport=self.transport,
            webhook_url=logic.webhook_urls("https://hub.example.com"),
        )
        self.connections.put(
            Connection(id="con_twilio", provider="twilio", tenant="acme", created_at=NOW, outbound_configured_at=NOW)
        )
        self.outbound.replace("con_twilio", OUTBOUND, "acme")

    def customer_sms(self, text: str, at: datetime = NOW, sender: str = PHONE) -> tuple[CanonicalEvent, str]:
        """An inbound Twilio SMS, routed as routing would: contact, conversation, timeline, event log."""
        sid = "SM" + secrets.token_hex(16)
        event = CanonicalEvent.from_draft(
            EventDraft(
                type="message.received",
                provider_event_id=sid,
                occurred_at=at,
                contact=Contact(phone=sender),
                conversation_key=None,
                text=text,
                attributes={"From": sender, "To": BUSINESS, "MessageSid": sid, "Body": text},
            ),
            provider="twilio",
            connection="con_twilio",
            tenant="acme",
            channel=Channel.TELEPHONY,
            received_at=at,
            raw_ref=None,
        )
        contact = self.contacts.resolve("acme", [Identity(kind="phone", value=sender)], reason=event.id, now=at)
        assert contact is not None
        threaded = self.conversations.thread(event, contact.id, at)
        entry = {
            "type": event.type,
            "provider": event.provider,
            "channel": event.channel.value,
            "occurred_at": at.isoformat(),
            "conversation": threaded.conversation.id,
            "text": text,
        }
        self.contacts.add_to_timeline(contact.id, entry, event.id, at)
        self.event_log.put(event)
        return event, threaded.conversation.id

    def run(self, event: CanonicalEvent, now: datetime = NOW, last_attempt: bool = False) -> list[CanonicalEvent]:
        outcomes = logic.handle(event, self.function, now, last_attempt=last_attempt)
        self.published.extend(outcomes)
        return outcomes

    def last(self, kind: str) -> CanonicalEvent:
        return [e for e in self.published if e.type == kind][-1]


@pytest.fixture
def world(aws_world) -> World:
    return World(aws_world.names)


def post(world: World, conversation: str, principal: Principal = STAFF, **body: Any) -> dict[str, Any]:
    request = admin.PostMessage.model_validate({"text": "A tow truck is on its way", **body})
    return admin.post_message(principal, conversation, request, world.admin, NOW)


def refused(world: World, conversation: str, principal: Principal = STAFF, **body: Any) -> HubError:
    with pytest.raises(HubError) as caught:
        post(world, conversation, principal, **body)
    return caught.value


def twilio_report(message_sid: str, status: str, at: datetime = NOW, **extra: str) -> CanonicalEvent:
    return CanonicalEvent.from_draft(
        EventDraft(
            type="message.status_updated",
            provider_event_id=f"{message_sid}:{status}",
            occurred_at=at,
            contact=Contact(phone=PHONE),
            attributes={"MessageSid": message_sid, "MessageStatus": status, **extra},
        ),
        provider="twilio",
        connection="con_twilio",
        tenant="acme",
        channel=Channel.TELEPHONY,
        received_at=at,
        raw_ref=None,
    )


@pytest.fixture
def twilio_reports(monkeypatch):
    """Twilio's status callbacks read as its sender reads them (MessageSid, MessageStatus, ErrorCode)."""
    states: dict[str, DeliveryState] = {
        "sent": "sent",
        "delivered": "delivered",
        "read": "read",
        "undelivered": "failed",
        "failed": "failed",
    }

    def read(event: CanonicalEvent) -> DeliveryStatus | None:
        if event.provider != "twilio" or event.type != "message.status_updated":
            return None
        status = states.get(event.attributes["MessageStatus"])
        if status is None:
            return None
        code = event.attributes.get("ErrorCode")
        return DeliveryStatus(event.attributes["MessageSid"], status, f"twilio_{code}" if code else None)

    monkeypatch.setattr(logic, "delivery_status", read)


# --- queueing -------------------------------------------------------------------------------


def test_an_answer_is_queued_and_on_the_timeline_at_once_with_its_author(world) -> None:
    event, conversation = world.customer_sms("My car broke down on the A7")
    answer = post(world, conversation)
    assert answer["status"] == "queued" and answer["channel"] == "sms" and answer["to"] == PHONE
    sent = world.last(SENT)
    assert sent.provider == "answers" and sent.text == "A tow truck is on its way"
    assert sent.attributes["automated"] is False
    assert sent.attributes["author"] == {"key_id": "key_staff", "name": "Dana (support)", "role": "staff"}
    assert sent.attributes["in_reply_to"] == event.id and sent.attributes["conversation"] == conversation
    assert world.messages.get(answer["message_id"]).state == "queued"
    assert world.transport.requests == []  # the function sends it, not the API


def test_the_function_sends_it_once_on_the_customers_channel_and_records_the_provider_id(world) -> None:
    _, conversation = world.customer_sms("My car broke down")
    answer = post(world, conversation)
    sent_event = world.last(SENT)
    (status,) = world.run(sent_event)
    (form,) = world.transport.forms()
    assert form["To"] == [PHONE] and form["From"] == [BUSINESS] and form["Body"] == ["A tow truck is on its way"]
    assert status.type == "message.status_updated" and status.attributes["state"] == "sent"
    record = world.messages.get(answer["message_id"])
    assert record is not None and record.state == "sent"
    assert record.provider_message_id and record.provider_message_id.startswith("SM")
    assert world.messages.by_provider_id("twilio", record.provider_message_id) == answer["message_id"]
    # A redelivery of the same event sends nothing and publishes the same outcome again.
    again = world.run(sent_event)
    assert len(world.transport.requests) == 1 and [e.id for e in again] == [status.id]


def test_status_webhooks_move_it_forward_only(world, twilio_reports) -> None:
    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)
    world.run(world.last(SENT))
    sid = world.messages.get(answer["message_id"]).provider_message_id
    (delivered,) = world.run(twilio_report(sid, "delivered"))
    assert delivered.attributes["state"] == "delivered" and delivered.attributes["message_id"] == answer["message_id"]
    assert world.run(twilio_report(sid, "sent")) == []  # late and behind: ignored
    (again,) = world.run(twilio_report(sid, "delivered"))  # a repeat: the same event again, nothing moves
    assert again.id == delivered.id
    (read,) = world.run(twilio_report(sid, "read"))
    assert read.attributes["state"] == "read"
    record = world.messages.get(answer["message_id"])
    assert record is not None and [t.state for t in record.history] == ["queued", "sent", "delivered", "read"]


def test_a_report_for_a_message_the_hub_did_not_send_is_ignored_once_old_and_waited_for_while_young(
    world, twilio_reports
) -> None:
    with pytest.raises(TransientFailure) as waiting:
        world.run(twilio_report("SM" + "0" * 32, "delivered"), now=NOW + timedelta(seconds=5))
    assert waiting.value.code == "not_yet_recorded"
    assert world.run(twilio_report("SM" + "0" * 32, "delivered"), now=NOW + timedelta(minutes=5)) == []
    # Most such reports are about auto-replies: a few receives, then let go (never the DLQ).
    young = twilio_report("SM" + "1" * 32, "delivered")
    assert logic.handle(young, world.function, NOW, receive_count=logic.REPORT_RECEIVES) == []
    assert logic.handle(young, world.function, NOW, last_attempt=True) == []


def test_an_undelivered_report_fails_it_with_the_providers_reason_and_it_can_be_retried(world, twilio_reports) -> None:
    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)
    world.run(world.last(SENT))
    sid = world.messages.get(answer["message_id"]).provider_message_id
    (failed,) = world.run(twilio_report(sid, "undelivered", ErrorCode="30003"))
    assert failed.attributes["state"] == "failed" and failed.attributes["reason"] == "twilio_30003"
    retried = admin.retry_message(STAFF, conversation, answer["message_id"], world.admin, NOW)
    assert retried["status"] == "queued"
    retry = world.last(RETRY_REQUESTED)
    assert retry.attributes["attempt"] == 2
    (sent,) = world.run(retry)
    assert sent.attributes["state"] == "sent" and sent.attributes["attempt"] == 2
    assert len(world.transport.requests) == 2
    with pytest.raises(HubError) as twice:
        admin.retry_message(STAFF, conversation, answer["message_id"], world.admin, NOW)
    assert (twice.value.status, twice.value.code) == (409, "not_failed")


def test_a_provider_refusal_is_failed_with_its_reason(world) -> None:
    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)
    world.transport.answers.append(
        ProviderResponse(
            status=400,
            body=json.dumps({"code": 21610, "message": "Attempt to send to unsubscribed recipient"}).encode(),
        )
    )
    (failed,) = world.run(world.last(SENT))
    assert failed.attributes["state"] == "failed"
    assert failed.attributes["reason"].startswith("twilio_21610: Attempt to send to unsubscribed recipient")
    assert world.messages.get(answer["message_id"]).state == "failed"


def test_a_rate_limit_is_retried_after_the_providers_retry_after_then_failed_on_the_last_attempt(world) -> None:
    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)
    limited = ProviderResponse(
        status=429,
        body=json.dumps({"code": 20429, "message": "Too Many Requests"}).encode(),
        headers={"retry-after": "7"},
    )
    world.transport.answers.append(limited)
    with pytest.raises(TransientFailure) as caught:
        world.run(world.last(SENT))
    assert caught.value.retry_after == 7 and logic.queue_delay(caught.value, 1) == 7
    assert world.messages.get(answer["message_id"]).state == "queued"
    world.transport.answers.append(limited)
    (failed,) = world.run(world.last(SENT), last_attempt=True)
    assert (
        failed.attributes["state"] == "failed"
        and "gave up after the queue's last attempt" in failed.attributes["reason"]
    )
    assert len(world.transport.requests) == 2


def test_an_attempt_that_died_after_handing_it_over_is_not_sent_again_blindly(world) -> None:
    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)
    token = world.messages.claim(answer["message_id"], 1, NOW)
    assert token and world.messages.hand_off(answer["message_id"], 1, token, NOW)  # then it died mid-call
    with pytest.raises(TransientFailure):  # while it may still be running: wait
        world.run(world.last(SENT), now=NOW + timedelta(seconds=10))
    (failed,) = world.run(world.last(SENT), now=NOW + timedelta(minutes=2))
    assert failed.attributes["state"] == "failed" and failed.attributes["reason"].startswith("outcome_unknown")
    assert world.transport.requests == []


def test_an_attempt_that_died_before_handing_it_over_is_sent_once_by_the_redelivery(world) -> None:
    """The claim says "I may send", not "it went": a delivery that stopped between the claim and
    the provider call (a crash, a timeout, an AWS error) left no hand-off mark, so once its claim
    is older than any attempt lasts the redelivery takes it over and sends it."""
    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)
    assert world.messages.claim(answer["message_id"], 1, NOW)  # an attempt took it, then died
    with pytest.raises(TransientFailure):  # while it may still be running: wait
        world.run(world.last(SENT), now=NOW + timedelta(seconds=10))
    assert world.transport.requests == []
    (sent,) = world.run(world.last(SENT), now=NOW + timedelta(minutes=2))
    assert sent.attributes["state"] == "sent" and len(world.transport.requests) == 1
    # Later redeliveries republish; nothing goes again.
    assert world.run(world.last(SENT), now=NOW + timedelta(minutes=4)) == [sent]
    assert len(world.transport.requests) == 1


class UpdateAppliedThenFailed:
    """The messages table when AWS applied an update but its answer was lost (botocore's retries
    ran out): the first update `matches` picks is applied, then raises."""

    def __init__(self, table: Any, matches: Callable[[dict[str, Any]], bool]) -> None:
        self._table = table
        self._matches = matches
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def update_item(self, **request: Any) -> Any:
        answer = self._table.update_item(**request)
        if not self.failed and self._matches(request):
            from botocore.exceptions import ClientError

            self.failed = True
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "lost"}}, "UpdateItem")
        return answer


def is_claim(request: dict[str, Any]) -> bool:
    return "claim_token = :token" in request["UpdateExpression"]


def is_move_to_sent(request: dict[str, Any]) -> bool:
    return request["ExpressionAttributeValues"].get(":state") == "sent"


def test_a_claim_aws_applied_whose_answer_never_came_is_sent_by_the_redelivery(world) -> None:
    """Fault injection found it (`python -m tests.faults`, seed 13): the claim's UpdateItem was
    applied but its answer lost; the queue's redelivery found the answer `sending` and, once the
    claim aged, failed it `outcome_unknown` though nothing had reached the provider."""
    from switchboard_core.answers.store import MessageStore

    _, conversation = world.customer_sms("My car broke down")
    answer = post(world, conversation)
    world.function.messages = MessageStore(UpdateAppliedThenFailed(world.messages._table, is_claim))
    with pytest.raises(Exception, match="lost"):
        world.run(world.last(SENT))
    assert world.messages.get(answer["message_id"]).state == "sending" and world.transport.requests == []
    with pytest.raises(TransientFailure):  # the claim is young: it may be another delivery's
        world.run(world.last(SENT), now=NOW + timedelta(seconds=30))
    (sent,) = world.run(world.last(SENT), now=NOW + timedelta(seconds=121))
    assert sent.attributes["state"] == "sent" and len(world.transport.requests) == 1


def test_a_hand_off_mark_that_cannot_be_written_lets_the_claim_go_and_sends_nothing(world, monkeypatch) -> None:
    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)

    def unwritable(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("DynamoDB is down")

    monkeypatch.setattr(world.function.messages, "hand_off", unwritable)
    with pytest.raises(RuntimeError):
        world.run(world.last(SENT))
    assert world.messages.get(answer["message_id"]).state == "queued" and world.transport.requests == []
    monkeypatch.undo()
    (sent,) = world.run(world.last(SENT))
    assert sent.attributes["state"] == "sent" and len(world.transport.requests) == 1


def test_a_crash_during_the_provider_call_is_outcome_unknown_not_a_second_send(world) -> None:
    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)
    world.transport.answers.append(RuntimeError("the function timed out mid-request"))
    with pytest.raises(RuntimeError):
        world.run(world.last(SENT))
    (failed,) = world.run(world.last(SENT), now=NOW + timedelta(minutes=2))
    assert failed.attributes["reason"].startswith("outcome_unknown")
    assert len(world.transport.requests) == 1 and world.messages.get(answer["message_id"]).state == "failed"


def test_only_one_delivery_takes_over_a_dead_claim_and_the_dead_one_cannot_hand_it_off(world) -> None:
    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)
    message_id = answer["message_id"]
    dead = world.messages.claim(message_id, 1, NOW)
    assert dead
    taken = world.messages.take_over(message_id, 1, dead, NOW + timedelta(minutes=2))
    assert taken and taken != dead
    assert world.messages.take_over(message_id, 1, dead, NOW + timedelta(minutes=2)) is None
    assert not world.messages.hand_off(message_id, 1, dead, NOW)  # the old holder may not send
    assert world.messages.hand_off(message_id, 1, taken, NOW + timedelta(minutes=2))
    # Handed off: never taken over again.
    assert world.messages.take_over(message_id, 1, taken, NOW + timedelta(minutes=5)) is None


def test_an_opt_out_after_queueing_stops_the_send(world) -> None:
    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)
    record = world.messages.get(answer["message_id"])
    assert record is not None and record.contact_id
    world.contacts.record_consent(record.contact_id, opted_out=True, channel="telephony", source="ev_stop", at=NOW)
    (failed,) = world.run(world.last(SENT))
    assert failed.attributes["reason"].startswith("opted_out") and world.transport.requests == []


def test_the_status_callback_points_at_the_connections_webhook(world, monkeypatch) -> None:
    _, conversation = world.customer_sms("hello")
    post(world, conversation)
    seen: list[Any] = []
    original = logic.send

    def spy(address, message, credentials, transport, base_url=None):
        seen.append(message)
        return original(address, message, credentials, transport, base_url)

    monkeypatch.setattr(logic, "send", spy)
    world.run(world.last(SENT))
    assert seen[0].status_callback == "https://hub.example.com/webhooks/twilio/con_twilio"
    assert seen[0].message_id.startswith("msg_")


# --- refusals -------------------------------------------------------------------------------


def test_an_opted_out_contact_gets_409_naming_the_opt_out(world) -> None:
    event, conversation = world.customer_sms("STOP")
    contact = world.conversations.get(conversation).contact_id
    world.contacts.record_consent(contact, opted_out=True, channel="telephony", source=event.id, at=NOW)
    error = refused(world, conversation)
    assert (error.status, error.code) == (409, "opted_out") and "opted out" in error.message
    assert error.details["source_event"] == event.id
    assert world.published == []


def test_a_platform_rule_is_a_409_with_its_hints(world, monkeypatch) -> None:
    from switchboard_core.outbound.twilio import TwilioSender

    def closed(self, address, message, inbound_at, now):
        raise Refused("whatsapp_window_closed", "the 24-hour window closed", window_closed_at="2026-12-01T09:00:00Z")

    monkeypatch.setattr(TwilioSender, "prepare", closed)
    _, conversation = world.customer_sms("hello")
    error = refused(world, conversation)
    assert (error.status, error.code) == (409, "whatsapp_window_closed")
    assert error.details["window_closed_at"] == "2026-12-01T09:00:00Z" and error.details["channel"] == "sms"


def test_partners_may_not_answer_and_other_tenants_do_not_see_it(world) -> None:
    _, conversation = world.customer_sms("hello")
    error = refused(world, conversation, PARTNER)
    assert (error.status, error.code) == (403, "forbidden")
    with pytest.raises(NotFound):
        post(world, conversation, OTHER_STAFF)
    assert world.published == []


def test_an_unanswerable_visibility_or_channel_is_a_409_naming_it(world) -> None:
    _, conversation = world.customer_sms("hello")
    error = refused(world, conversation, visibility="public")
    assert (error.status, error.code) == (409, "channel_unanswerable") and "publicly" in error.message
    error = refused(world, conversation, channel="whatsapp")
    assert (error.status, error.code) == (409, "no_message_on_channel") and error.details["channels"] == ["sms"]


def test_in_reply_to_must_be_a_customer_event_of_this_conversation(world) -> None:
    first, conversation = world.customer_sms("hello")
    with pytest.raises(NotFound):
        post(world, conversation, in_reply_to="not-an-event")
    answer = post(world, conversation, in_reply_to=first.id)
    assert world.messages.get(answer["message_id"]).in_reply_to == first.id


def test_a_connection_without_outbound_credentials_is_a_409(world) -> None:
    _, conversation = world.customer_sms("hello")
    world.connections.put(Connection(id="con_twilio", provider="twilio", tenant="acme", created_at=NOW))
    error = refused(world, conversation)
    assert (error.status, error.code) == (409, "not_configured")


def test_bad_bodies_are_refused_by_the_model() -> None:
    from pydantic import ValidationError

    for body in (
        {},
        {"text": ""},
        {"text": "x" * 1601},
        {"text": "hi", "visibility": "secret"},
        {"text": "hi", "channel": "SMS!"},
        {"text": "hi", "attachments": [{"url": "not a url"}]},
        {"text": "hi", "template": {"name": "Bad Name", "language": "en"}},
        {"text": "hi", "extra": 1},
    ):
        with pytest.raises(ValidationError):
            admin.PostMessage.model_validate(body)


def test_the_listing_has_both_sides_in_order_with_each_answers_state(world) -> None:
    first, conversation = world.customer_sms("My car broke down", at=NOW - timedelta(minutes=2))
    answer = post(world, conversation)
    world.run(world.last(SENT))
    second, _ = world.customer_sms("Thanks! How long?", at=NOW + timedelta(minutes=1))
    listed = admin.list_messages(STAFF, conversation, world.admin)["messages"]
    assert [(m["direction"], m.get("text")) for m in listed] == [
        ("inbound", "My car broke down"),
        ("outbound", "A tow truck is on its way"),
        ("inbound", "Thanks! How long?"),
    ]
    assert listed[1]["message_id"] == answer["message_id"] and listed[1]["state"] == "sent"
    assert listed[1]["author"]["name"] == "Dana (support)"
    assert listed[0]["event_id"] == first.id and listed[2]["event_id"] == second.id


def test_the_platforms_echo_of_an_answer_delivers_it_and_is_not_listed_twice(world, monkeypatch) -> None:
    _, conversation = world.customer_sms("hello", at=NOW - timedelta(minutes=1))
    answer = post(world, conversation)
    world.run(world.last(SENT))
    record = world.messages.get(answer["message_id"])
    assert record is not None and record.provider_message_id
    echo = CanonicalEvent.from_draft(
        EventDraft(
            type="message.sent",
            provider_event_id=f"echo-{record.provider_message_id}",
            occurred_at=NOW,
            contact=Contact(phone=PHONE),
            text=record.text,
            attributes={"echo_of": record.provider_message_id},
        ),
        provider="twilio",
        connection="con_twilio",
        tenant="acme",
        channel=Channel.TELEPHONY,
        received_at=NOW,
        raw_ref=None,
    )
    monkeypatch.setattr(
        logic,
        "delivery_status",
        lambda event: (
            DeliveryStatus(event.attributes["echo_of"], "delivered") if event.type == "message.sent" else None
        ),
    )
    entry = {
        "type": "message.sent",
        "provider": "twilio",
        "channel": "telephony",
        "occurred_at": NOW.isoformat(),
        "conversation": conversation,
        "text": record.text,
    }
    world.contacts.add_to_timeline(record.contact_id, entry, echo.id, NOW)
    (delivered,) = world.run(echo)
    assert delivered.attributes["state"] == "delivered"
    assert [e.id for e in world.run(echo)] == [delivered.id]  # redelivered: republished, remembered once
    assert world.messages.get(answer["message_id"]).echo_events == [echo.id]
    listed = admin.list_messages(STAFF, conversation, world.admin)["messages"]
    assert [m["direction"] for m in listed] == ["inbound", "outbound"]


def test_a_late_report_about_an_earlier_attempt_leaves_the_retry_alone(world, twilio_reports) -> None:
    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)
    world.run(world.last(SENT))
    first_sid = world.messages.get(answer["message_id"]).provider_message_id
    world.run(twilio_report(first_sid, "failed", ErrorCode="30003"))
    admin.retry_message(STAFF, conversation, answer["message_id"], world.admin, NOW)
    world.run(world.last(RETRY_REQUESTED))
    record = world.messages.get(answer["message_id"])
    assert record.state == "sent" and record.attempt == 2 and record.provider_message_id != first_sid
    assert world.run(twilio_report(first_sid, "undelivered", ErrorCode="30005")) == []
    assert world.messages.get(answer["message_id"]).state == "sent"


def test_a_report_while_the_send_is_being_recorded_waits(world, twilio_reports) -> None:
    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)
    world.messages._table.put_item(
        Item={"pk": "PROVIDER#twilio#SM" + "9" * 32, "message_id": answer["message_id"], "tenant": "acme"}
    )
    assert world.messages.claim(answer["message_id"], 1, NOW)  # sending: the pointer is written, not the state
    with pytest.raises(TransientFailure) as waiting:
        world.run(twilio_report("SM" + "9" * 32, "delivered"))
    assert waiting.value.code == "not_yet_recorded"


def test_a_credentials_read_failure_claims_nothing(world, monkeypatch) -> None:
    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)

    def unreadable(connection_id):
        raise RuntimeError("Secrets Manager is down")

    monkeypatch.setattr(world.function.credentials, "get", unreadable)
    with pytest.raises(RuntimeError):
        world.run(world.last(SENT))
    assert world.messages.get(answer["message_id"]).state == "queued"  # the retry may send it


def test_an_answer_the_bus_did_not_take_is_failed_and_can_be_retried(world) -> None:
    _, conversation = world.customer_sms("hello")

    def refuse(events):
        raise RuntimeError("PutEvents failed")

    world.admin.publish = refuse
    with pytest.raises(RuntimeError):
        post(world, conversation)
    (record,) = world.messages.for_conversation(conversation)
    assert record.state == "failed" and record.reason.startswith("not_queued")
    world.admin.publish = world.published.extend
    assert admin.retry_message(STAFF, conversation, record.message_id, world.admin, NOW)["status"] == "queued"


def test_an_attempt_that_died_can_be_retried_by_staff_once_its_claim_is_stale(world) -> None:
    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)
    assert world.messages.claim(answer["message_id"], 1, NOW - timedelta(minutes=5))
    error = None
    try:
        admin.retry_message(STAFF, conversation, answer["message_id"], world.admin, NOW - timedelta(minutes=5))
    except HubError as refused_now:
        error = refused_now
    assert error is not None and error.code == "not_failed"  # still fresh then
    assert admin.retry_message(STAFF, conversation, answer["message_id"], world.admin, NOW)["status"] == "queued"


def test_an_opt_out_covers_its_own_kind_of_channel_and_a_crm_flag_covers_all(world) -> None:
    _, conversation = world.customer_sms("hello")
    contact = world.conversations.get(conversation).contact_id
    world.contacts.record_consent(contact, opted_out=True, channel="social", source="ev_wa_stop", at=NOW)
    assert post(world, conversation)["status"] == "queued"  # a STOP on WhatsApp does not stop SMS answers
    world.contacts.record_consent(
        contact, opted_out=True, channel="crm", source="ev_crm", at=NOW + timedelta(seconds=1)
    )
    assert refused(world, conversation).code == "opted_out"


def test_an_event_the_sender_cannot_answer_is_passed_over_for_the_customers_own(world) -> None:
    first, conversation = world.customer_sms("hello", at=NOW - timedelta(minutes=5))
    record = world.conversations.get(conversation)
    # A newer event of the same type the sender cannot answer (say, an agent's own comment on a ticket).
    odd = CanonicalEvent.from_draft(
        EventDraft(type="message.received", provider_event_id="odd", occurred_at=NOW, text="from the agent"),
        provider="twilio",
        connection="con_twilio",
        tenant="acme",
        channel=Channel.TELEPHONY,
        received_at=NOW,
        raw_ref=None,
    )
    world.event_log.put(odd)
    entry = {
        "type": "message.received",
        "provider": "twilio",
        "channel": "telephony",
        "occurred_at": NOW.isoformat(),
        "conversation": conversation,
        "text": "from the agent",
    }
    world.contacts.add_to_timeline(record.contact_id, entry, odd.id, NOW)
    answer = post(world, conversation)
    assert world.messages.get(answer["message_id"]).in_reply_to == first.id


class AppliedThenTimedOut:
    """The messages table as a timeout after AWS applied a write looks to the caller: each
    update is applied, then botocore's retry sends it again and gets the second answer."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def update_item(self, **request: Any) -> Any:
        self._table.update_item(**request)
        return self._table.update_item(**request)


def test_a_claim_aws_applied_but_answered_with_a_timeout_still_sends_once(world) -> None:
    """Fault injection found it (tests/faults): the retried claim failed its condition on its own
    claim, so the answer waited as if another delivery sent it and ended `outcome_unknown`, unsent."""
    from switchboard_core.answers.store import MessageStore

    _, conversation = world.customer_sms("My car broke down")
    answer = post(world, conversation)
    world.function.messages = MessageStore(AppliedThenTimedOut(world.messages._table))
    (status,) = world.run(world.last(SENT))
    assert status.attributes["state"] == "sent" and len(world.transport.requests) == 1
    # Another delivery's claim is still refused: the token is this claim's own.
    assert not world.messages.claim(answer["message_id"], 1, NOW)


# --- the pointer's write failing after the provider took the answer ---------------------------


class PointerWriteFaults:
    """A botocore `before-send` hook failing exactly the pointer's PutItem (pk PROVIDER#...), every
    HTTP attempt while armed, so botocore's retries run out and the caller sees the fault, as
    tests/faults injects them: `connect_timeout` never reaches AWS (the pointer is not written);
    `throttle` and `server_error` are answered for AWS after moto's own before-send handler
    applied the write, and `read_timeout` applies it and loses the answer (the caller cannot
    tell these from a write that never happened)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.armed = True
        self.failed = 0

    def install(self, events: Any) -> None:
        events.register_first("before-send.dynamodb.PutItem", self)

    def __call__(self, request: Any, event_name: str, **kwargs: Any) -> Any:
        if not self.armed or b'"PROVIDER#' not in (request.body or b""):
            return None
        from botocore.awsrequest import AWSResponse

        self.failed += 1
        if self.kind == "connect_timeout":
            from botocore.exceptions import ConnectTimeoutError

            raise ConnectTimeoutError(endpoint_url=request.url)  # before moto's handler: never applied
        if self.kind == "read_timeout":
            from botocore.exceptions import ReadTimeoutError
            from moto.core.models import botocore_stubber

            botocore_stubber(event_name=event_name, request=request, **kwargs)  # applied, answer lost
            raise ReadTimeoutError(endpoint_url=request.url)
        status, code = (
            (400, "ProvisionedThroughputExceededException") if self.kind == "throttle" else (503, "ServiceUnavailable")
        )
        body = json.dumps({"__type": code, "message": f"injected {self.kind}"}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
        return AWSResponse(request.url, status, headers, _Body(body))


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body

    def read(self, *_: Any) -> bytes:
        body, self._body = self._body, b""
        return body


@pytest.fixture
def pointer_faults(world, request) -> PointerWriteFaults:
    """Faults on the pointer's write through the messages table's own client (botocore's retries
    without their waits)."""
    from tests.faults.injector import no_retry_sleep

    faults = PointerWriteFaults(request.param)
    faults.install(world.messages._table.meta.client.meta.events)
    with no_retry_sleep():
        yield faults
    faults.armed = False


POINTER_FAULTS = ["connect_timeout", "throttle", "server_error", "read_timeout"]


@pytest.mark.parametrize("pointer_faults", POINTER_FAULTS, indirect=True)
def test_a_pointer_write_failing_after_the_send_still_ends_sent_with_the_providers_id(world, pointer_faults) -> None:
    _, conversation = world.customer_sms("My car broke down")
    answer = post(world, conversation)
    sent_event = world.last(SENT)
    with pytest.raises(logic.PointerNotWritten) as caught:
        world.run(sent_event)
    assert pointer_faults.failed > 1  # botocore retried it, every try failed
    (status,) = caught.value.outcomes  # published at once by the handler
    assert status.attributes["state"] == "sent" and caught.value.retry_after == logic.POINTER_RETRY_SECONDS
    record = world.messages.get(answer["message_id"])
    assert record is not None and record.state == "sent"
    assert record.provider_message_id and status.attributes["provider_message_id"] == record.provider_message_id
    assert record.unpointed == f"twilio#{record.provider_message_id}" and "unpointed" not in record.view()
    assert len(world.transport.requests) == 1
    # The queue's retry writes the pointer and republishes the same status; nothing is sent again.
    pointer_faults.armed = False
    assert [e.id for e in world.run(sent_event, now=NOW + timedelta(seconds=2))] == [status.id]
    assert len(world.transport.requests) == 1
    record = world.messages.get(answer["message_id"])
    assert record is not None and record.unpointed is None and record.state == "sent"
    assert world.messages.by_provider_id("twilio", record.provider_message_id) == answer["message_id"]
    # Even once its claim is old: settled, never outcome_unknown, never sent again.
    assert [e.id for e in world.run(sent_event, now=NOW + timedelta(minutes=5))] == [status.id]
    assert len(world.transport.requests) == 1


@pytest.mark.parametrize("pointer_faults", ["throttle"], indirect=True)
def test_a_pointer_still_failing_on_the_retry_is_retried_again_and_sends_nothing(world, pointer_faults) -> None:
    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)
    with pytest.raises(logic.PointerNotWritten):
        world.run(world.last(SENT))
    with pytest.raises(logic.PointerNotWritten) as again:
        world.run(world.last(SENT), now=NOW + timedelta(seconds=2))
    assert [e.attributes["state"] for e in again.value.outcomes] == ["sent"]
    assert len(world.transport.requests) == 1
    assert world.messages.get(answer["message_id"]).unpointed


@pytest.mark.parametrize("pointer_faults", ["connect_timeout"], indirect=True)
def test_a_report_that_comes_before_the_late_pointer_is_threaded_and_writes_it(
    world, twilio_reports, pointer_faults
) -> None:
    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)
    with pytest.raises(logic.PointerNotWritten):
        world.run(world.last(SENT))
    sid = world.messages.get(answer["message_id"]).provider_message_id
    assert world.messages.by_provider_id("twilio", sid) is None
    # Its pointer's write still failing: the report is threaded all the same (found by the mark),
    # then raises for the pointer; its redelivery finds the move made and publishes the same event.
    with pytest.raises(Exception, match="Connect timeout"):
        world.run(twilio_report(sid, "delivered"))
    assert world.messages.get(answer["message_id"]).state == "delivered"
    pointer_faults.armed = False
    (delivered,) = world.run(twilio_report(sid, "delivered"))
    assert delivered.attributes["state"] == "delivered" and delivered.attributes["message_id"] == answer["message_id"]
    record = world.messages.get(answer["message_id"])
    assert record.unpointed is None and world.messages.by_provider_id("twilio", sid) == answer["message_id"]
    # Later reports go by the pointer; the send's redelivery republishes, sends nothing.
    (read,) = world.run(twilio_report(sid, "read"))
    assert read.attributes["state"] == "read"
    assert [e.attributes["state"] for e in world.run(world.last(SENT))] == ["read"]
    assert len(world.transport.requests) == 1
    assert [t.state for t in world.messages.get(answer["message_id"]).history] == [
        "queued",
        "sent",
        "delivered",
        "read",
    ]


def test_a_report_for_another_systems_message_still_waits_then_is_ignored(world, twilio_reports) -> None:
    """The mark's index is looked up only when no pointer is found, and finds nothing for an id
    the hub never recorded: the report waits a little, as before, then is let go."""
    with pytest.raises(logic.NotYetRecorded):
        world.run(twilio_report("SM" + "2" * 32, "delivered"), now=NOW + timedelta(seconds=5))
    assert world.run(twilio_report("SM" + "2" * 32, "delivered"), now=NOW + timedelta(minutes=5)) == []


def test_a_sent_write_that_fails_once_is_tried_again_so_the_send_is_not_outcome_unknown(world) -> None:
    from switchboard_core.answers.store import MessageStore

    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)
    world.function.messages = MessageStore(UpdateAppliedThenFailed(world.messages._table, is_move_to_sent))
    (status,) = world.run(world.last(SENT))  # the second try finds it `sent`: the stored event
    assert status.attributes["state"] == "sent" and len(world.transport.requests) == 1
    record = world.messages.get(answer["message_id"])
    assert record.state == "sent" and record.provider_message_id == status.attributes["provider_message_id"]


class HandOffLostThenReleaseFailsOnce:
    """The messages table when the hand-off mark was applied but its answer lost, and the release
    after it fails once (never applied): what fault injection found at 40% (seed 7)."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self.hand_off_failed = self.release_failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def update_item(self, **request: Any) -> Any:
        from botocore.exceptions import ClientError

        lost = ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "lost"}}, "UpdateItem")
        expression = request["UpdateExpression"]
        if not self.release_failed and expression.startswith("SET #state = :queued"):
            self.release_failed = True
            raise lost
        answer = self._table.update_item(**request)
        if not self.hand_off_failed and "handed_off = :yes" in expression:
            self.hand_off_failed = True
            raise lost
        return answer


def test_a_release_that_fails_once_is_tried_again_so_an_unsent_answer_is_not_outcome_unknown(world) -> None:
    from switchboard_core.answers.store import MessageStore

    _, conversation = world.customer_sms("hello")
    answer = post(world, conversation)
    world.function.messages = MessageStore(HandOffLostThenReleaseFailsOnce(world.messages._table))
    with pytest.raises(Exception, match="lost"):
        world.run(world.last(SENT))
    record = world.messages.get(answer["message_id"])
    assert record.state == "queued" and record.handed_off is None and world.transport.requests == []
    (sent,) = world.run(world.last(SENT), now=NOW + timedelta(seconds=2))
    assert sent.attributes["state"] == "sent" and len(world.transport.requests) == 1
