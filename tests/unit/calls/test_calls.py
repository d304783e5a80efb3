"""The calls function's logic against moto (tables, Secrets Manager) with the Twilio transport
passed in: which call update is sent, in which order responders are tried, and that nothing is
redirected twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs
from xml.etree import ElementTree as ET

import pytest

from functions.calls.logic import CallDeps, CallStore, handle_event
from infra import topology
from switchboard_core import aws
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from switchboard_core.events import CanonicalEvent, Contact
from switchboard_core.outbound import TransientFailure
from switchboard_core.outbound.base import OutboundRequest, ProviderResponse
from switchboard_core.routing.assignment import GeoPoint, Responder
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.contact_points import ContactPoint
from tests.builders import canonical_event
from tests.unit.calls.test_twiml import parse

NOW = datetime(2026, 12, 2, 10, tzinfo=UTC)  # a Wednesday
CALL = "CA" + "a" * 32
CALLER, BUSINESS = "+14155550143", "+14155550100"
OUTBOUND = {"account_sid": "AC" + "1" * 32, "auth_token": "t" * 32}
HUB = "https://hub.example.com"
NEUMUENSTER = {"latitude": 54.0730, "longitude": 9.9840}


class FakeTwilio:
    def __init__(self) -> None:
        self.requests: list[OutboundRequest] = []
        self.answers: list[ProviderResponse | Exception] = []

    def __call__(self, request: OutboundRequest) -> ProviderResponse:
        self.requests.append(request)
        answer = (
            self.answers.pop(0)
            if self.answers
            else ProviderResponse(status=200, body=json.dumps({"sid": CALL, "status": "in-progress"}).encode())
        )
        if isinstance(answer, Exception):
            raise answer
        return answer

    def documents(self) -> list[ET.Element]:
        return [parse(parse_qs(r.body.decode())["Twiml"][0]) for r in self.requests]

    def dialled(self) -> list[str | None]:
        return [d.findtext("Dial/Number") for d in self.documents()]


def responder(id_: str, lat: float, lon: float, phone: str | None = "+4940", **extra) -> Responder:
    points = [ContactPoint(channel="sms", to=phone)] if phone else []
    return Responder(
        id=id_,
        tenant="acme",
        name=id_.title(),
        teams=["towing"],
        skills={"towing": 3},
        location=GeoPoint(latitude=lat, longitude=lon),
        contact_points=points,
        **extra,
    )


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
    config = RoutingConfigStore(resource.Table(names.table("routing")))
    for r in (
        responder("kiel", 54.3233, 10.1228, "+494310001"),  # 29 km from the caller
        responder("hamburg", 53.5511, 9.9937, "+494010002"),  # 58 km
        responder("bremen", 53.0793, 8.8017, "+494210003"),  # 137 km
        responder("lubeck-off", 53.8655, 10.6866, "+494510004", available=False),
        responder("rendsburg-nophone", 54.3000, 9.6600, None),
    ):
        config.put_responder(r)
    transport = FakeTwilio()
    deps = CallDeps(
        calls=CallStore(resource.Table(names.table("calls"))),
        config=config,
        connections=connections,
        credentials=outbound,
        transport=transport,
        public_base_url=HUB,
    )
    return deps, transport


def event(kind: str, provider: str, provider_event_id: str, attributes: dict) -> CanonicalEvent:
    return canonical_event(
        kind,
        provider_event_id,
        received_at=NOW,
        provider=provider,
        contact=Contact(phone=CALLER),
        conversation_key="cv_1" if provider == "routing" else f"twilio:call:{CALL}",
        attributes=attributes,
    )


def assigned(assignee: str | None = "kiel", n: int = 1, call: dict | str | None = "live") -> CanonicalEvent:
    attributes = {
        "conversation": "cv_1",
        "source_event": f"src{n}",
        "source_type": "call.ringing",
        "queue": "towing",
        "assignee": assignee,
        "strategy": "nearest",
        "distance_km": 30.79 if assignee == "kiel" else None,
        "contact": {"id": "ct_1", "identities": [], "attributes": {}, "opted_out": False},
        "topics": ["breakdown"],
    }
    if call == "live":
        attributes["call"] = {
            "provider": "twilio",
            "sid": CALL,
            "from": CALLER,
            "to": BUSINESS,
            "location": NEUMUENSTER,
        }
    elif isinstance(call, dict):
        attributes["call"] = call
    return event("routing.assigned", "routing", f"src{n}:routing.assigned", attributes)


def dial_ended(status: str, dial: str) -> CanonicalEvent:
    attributes = {"CallSid": CALL, "CallStatus": "in-progress", "DialCallStatus": status, "DialCallSid": dial}
    return event("call.dial_ended", "twilio", f"{CALL}:dial:{dial}", attributes)


def test_the_live_call_is_put_through_to_the_assignee(world):
    deps, twilio = world
    [patched] = handle_event(assigned(), deps, NOW)
    [request] = twilio.requests
    assert request.method == "POST"
    assert request.url == f"https://api.twilio.com/2010-04-01/Accounts/{OUTBOUND['account_sid']}/Calls/{CALL}.json"
    assert request.headers["Authorization"].startswith("Basic ")
    [document] = twilio.documents()
    dial = document.find("Dial")
    assert dial is not None and dial.findtext("Number") == "+494310001"
    assert dial.get("action") == f"{HUB}/webhooks/twilio/con_twilio" and dial.get("callerId") == BUSINESS
    whisper_url = dial.find("Number").get("url")  # type: ignore[union-attr]
    assert whisper_url is not None and whisper_url.startswith(f"{HUB}/webhooks/twilio/con_twilio?whisper=")
    whisper = parse_qs(whisper_url.split("?", 1)[1])["whisper"][0]
    assert whisper == (
        "A Switchboard call for the towing team, about breakdown. The caller is 31 kilometres from you. "
        "Connecting you now."
    )
    assert CALLER not in whisper_url
    assert patched.type == "call.patched" and patched.source == "switchboard.calls"
    assert patched.attributes["responder"] == "kiel" and patched.attributes["call_sid"] == CALL
    assert patched.attributes["distance_km"] == 30.79 and patched.attributes["attempt"] == 1
    assert patched.attributes["conversation"] == "cv_1" and patched.attributes["contact"]["id"] == "ct_1"
    assert patched.conversation_key == "cv_1" and patched.contact.phone == CALLER


def test_a_redelivered_or_repeated_assignment_does_not_redirect_twice(world):
    deps, twilio = world
    first = handle_event(assigned(), deps, NOW)
    assert handle_event(assigned(), deps, NOW) == first  # the same event again: its outcome, republished
    assert handle_event(assigned("hamburg", n=2), deps, NOW) == []  # routing assigning the call again
    assert len(twilio.requests) == 1


@pytest.mark.parametrize("call", [None, {"provider": "discord", "sid": "x"}])
def test_assignments_that_are_not_a_live_twilio_call_are_left_alone(world, call):
    deps, twilio = world
    assert handle_event(assigned(call=call), deps, NOW) == [] and twilio.requests == []


def test_no_answer_dials_the_next_nearest_available_then_voicemail(world):
    deps, twilio = world
    handle_event(assigned(), deps, NOW)
    [second] = handle_event(dial_ended("no-answer", "CA" + "1" * 32), deps, NOW)
    assert second.type == "call.patched" and second.attributes["responder"] == "hamburg"
    assert second.attributes["attempt"] == 2 and second.attributes["distance_km"] == pytest.approx(58.0, abs=1)
    [third] = handle_event(dial_ended("busy", "CA" + "2" * 32), deps, NOW)
    assert third.attributes["responder"] == "bremen" and third.attributes["tried"] == ["kiel", "hamburg", "bremen"]
    [failed] = handle_event(dial_ended("no-answer", "CA" + "3" * 32), deps, NOW)
    assert failed.type == "call.patch_failed" and failed.attributes["reason"] == "nobody_answered"
    assert failed.attributes["fallback"] == "voicemail"
    # Never the unavailable one nor the one without a phone; the last update records a voicemail.
    assert twilio.dialled() == ["+494310001", "+494010002", "+494210003", None]
    record = twilio.documents()[-1].find("Record")
    assert record is not None and record.get("action") == f"{HUB}/webhooks/twilio/con_twilio"
    assert handle_event(dial_ended("no-answer", "CA" + "4" * 32), deps, NOW) == []  # over


def test_a_redelivered_dial_callback_dials_nobody_more(world):
    deps, twilio = world
    handle_event(assigned(), deps, NOW)
    callback = dial_ended("no-answer", "CA" + "1" * 32)
    first = handle_event(callback, deps, NOW)
    assert handle_event(callback, deps, NOW) == first
    assert twilio.dialled() == ["+494310001", "+494010002"]


def test_an_answered_dial_ends_the_fallbacks(world):
    deps, twilio = world
    handle_event(assigned(), deps, NOW)
    assert handle_event(dial_ended("completed", "CA" + "1" * 32), deps, NOW) == []
    assert handle_event(dial_ended("no-answer", "CA" + "2" * 32), deps, NOW) == []
    assert len(twilio.requests) == 1
    record = deps.calls.get("acme", CALL)
    assert record is not None and record.status == "answered" and record.answered_by == "kiel"


def test_a_dial_callback_for_a_call_the_hub_did_not_put_through_is_ignored(world):
    deps, twilio = world
    assert handle_event(dial_ended("no-answer", "CA" + "1" * 32), deps, NOW) == [] and twilio.requests == []


def test_nobody_free_sends_the_caller_to_voicemail(world):
    deps, twilio = world
    for r in deps.config.responders("acme"):
        deps.config.put_responder(r.model_copy(update={"available": False}))
    [failed] = handle_event(assigned(assignee=None), deps, NOW)
    assert failed.type == "call.patch_failed" and failed.attributes["reason"] == "no_responder"
    assert twilio.dialled() == [None] and twilio.documents()[0].find("Record") is not None


def test_an_assignee_without_a_phone_gives_way_to_the_nearest_with_one(world):
    deps, twilio = world
    [patched] = handle_event(assigned(assignee="rendsburg-nophone"), deps, NOW)
    assert patched.attributes["responder"] == "kiel" and twilio.dialled() == ["+494310001"]


def test_a_caller_who_hung_up_is_reported_not_retried(world):
    deps, twilio = world
    twilio.answers.append(
        ProviderResponse(status=400, body=json.dumps({"code": 21220, "message": "Call is not in-progress"}).encode())
    )
    [failed] = handle_event(assigned(), deps, NOW)
    assert failed.type == "call.patch_failed" and failed.attributes["reason"] == "call_ended"
    assert failed.attributes["code"] == "twilio_21220"
    assert handle_event(assigned(), deps, NOW) == [failed] and len(twilio.requests) == 1


def test_a_twilio_outage_is_retried_with_the_same_claim(world):
    deps, twilio = world
    twilio.answers.append(ProviderResponse(status=503, body=b"{}"))
    with pytest.raises(TransientFailure):
        handle_event(assigned(), deps, NOW)
    [patched] = handle_event(assigned(), deps, NOW)  # the queue's retry of the same event
    assert patched.type == "call.patched" and len(twilio.requests) == 2


def test_a_connection_without_outbound_credentials_fails_plainly(world):
    deps, twilio = world
    deps.connections.put(Connection(id="con_twilio", provider="twilio", tenant="acme", created_at=NOW))
    [failed] = handle_event(assigned(), deps, NOW)
    assert failed.type == "call.patch_failed" and failed.attributes["reason"] == "not_configured"
    assert twilio.requests == []


def test_a_caller_who_hangs_up_while_it_rings_ends_the_fallbacks(world):
    deps, twilio = world
    handle_event(assigned(), deps, NOW)
    [failed] = handle_event(dial_ended("canceled", "CA" + "1" * 32), deps, NOW)
    assert failed.type == "call.patch_failed" and failed.attributes["reason"] == "call_ended"
    assert handle_event(dial_ended("no-answer", "CA" + "2" * 32), deps, NOW) == [] and len(twilio.requests) == 1


class PutAppliedThenTimedOut:
    """The calls table as a timeout after AWS applied a put looks to the caller: each put is
    applied, then botocore's retry sends it again and gets the second answer."""

    def __init__(self, table) -> None:
        self._table = table

    def __getattr__(self, name: str):
        return getattr(self._table, name)

    def put_item(self, **request):
        self._table.put_item(**request)
        return self._table.put_item(**request)


def test_a_dial_record_aws_applied_but_answered_with_a_timeout_still_publishes_call_patched(world):
    """Fault injection found it (tests/faults): the retried save failed its condition on its own
    write and the call was put through with no call.patched on the bus."""
    deps, twilio = world
    deps.calls = CallStore(PutAppliedThenTimedOut(deps.calls._table))
    [patched] = handle_event(assigned(), deps, NOW)
    assert patched.type == "call.patched" and patched.attributes["responder"] == "kiel"
    assert len(twilio.requests) == 1
    assert handle_event(assigned(), deps, NOW) == [patched]  # a redelivery: the same event again, no second dial
    assert len(twilio.requests) == 1
