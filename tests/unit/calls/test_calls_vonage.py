"""Vonage Voice in the calls function, against moto with the Vonage transport passed in: the
transfer to a connect NCCO on routing.assigned, the next nearest when the connect leg is not
answered, the voicemail when nobody is left, a caller who hung up, and that nothing is
transferred twice."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from functions.calls.logic import CallDeps, CallStore, handle_event
from infra import topology
from infra.local.provider_apis import demo_vonage_credentials
from switchboard_core import aws
from switchboard_core.calls import ncco, twiml
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from switchboard_core.events import CanonicalEvent, Contact
from switchboard_core.outbound import TransientFailure
from switchboard_core.outbound.base import OutboundRequest, ProviderResponse
from switchboard_core.routing.config_store import RoutingConfigStore
from tests.builders import canonical_event
from tests.unit.calls.test_calls import CALLER, NEUMUENSTER, NOW, responder
from tests.unit.calls.test_ncco import check

CALL = "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab"  # the caller's call uuid
BUSINESS = "494000000100"  # as Vonage writes it: no '+'
HUB = "https://hub.example.com"
WEBHOOK = f"{HUB}/webhooks/vonage/con_vonage"
NO_CONTENT = ProviderResponse(status=204, body=b"")


@cache
def _application() -> tuple[tuple[str, str], ...]:
    return tuple(demo_vonage_credentials().items())


def application() -> dict[str, str]:
    return dict(_application())


def vonage_error(status: int, title: str) -> ProviderResponse:
    body = {"type": f"https://developer.nexmo.com/api-errors#{title.lower()}", "title": title, "detail": "x"}
    return ProviderResponse(status=status, body=json.dumps(body).encode())


class FakeVonage:
    def __init__(self) -> None:
        self.requests: list[OutboundRequest] = []
        self.answers: list[ProviderResponse | Exception] = []

    def __call__(self, request: OutboundRequest) -> ProviderResponse:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else NO_CONTENT
        if isinstance(answer, Exception):
            raise answer
        return answer

    def nccos(self) -> list[list[dict]]:
        bodies = [json.loads(r.body) for r in self.requests]
        assert all(b["action"] == "transfer" and b["destination"]["type"] == "ncco" for b in bodies)
        return [b["destination"]["ncco"] for b in bodies]

    def connected_to(self) -> list[str]:
        return [a["endpoint"][0]["number"] for document in self.nccos() for a in document if a["action"] == "connect"]


@pytest.fixture
def world(aws_world):
    resource = aws.resource("dynamodb")
    names = aws_world.names
    connections = ConnectionStore(resource.Table(names.table("connections")))
    outbound = CredentialStore(
        aws.client("secretsmanager"), topology.outbound_secrets_prefix("test"), max_age_seconds=0
    )
    connections.put(
        Connection(id="con_vonage", provider="vonage", tenant="acme", created_at=NOW, outbound_configured_at=NOW)
    )
    outbound.replace("con_vonage", application(), "acme")
    connections.put(Connection(id="con_bare", provider="vonage", tenant="acme", created_at=NOW))
    config = RoutingConfigStore(resource.Table(names.table("routing")))
    for r in (
        responder("kiel", 54.3233, 10.1228, "+494310001"),
        responder("hamburg", 53.5511, 9.9937, "+494010002"),
        responder("lubeck-off", 53.8655, 10.6866, "+494510004", available=False),
    ):
        config.put_responder(r)
    transport = FakeVonage()
    deps = CallDeps(
        calls=CallStore(resource.Table(names.table("calls"))),
        config=config,
        connections=connections,
        credentials=outbound,
        transport=transport,
        public_base_url=HUB,
    )
    return deps, transport


def vonage_event(kind: str, event_id: str, attributes: dict, connection: str = "con_vonage") -> CanonicalEvent:
    return canonical_event(
        kind,
        event_id,
        received_at=NOW,
        provider="vonage",
        connection=connection,
        contact=Contact(phone=CALLER),
        conversation_key="vonage:call:CON-1",
        attributes=attributes,
    )


def assigned(assignee: str = "kiel", n: int = 1, connection: str = "con_vonage") -> CanonicalEvent:
    attributes = {
        "conversation": "cv_1",
        "source_event": f"src{n}",
        "queue": "towing",
        "assignee": assignee,
        "distance_km": 30.79,
        "call": {
            "provider": "vonage",
            "sid": CALL,
            "from": "14155550143",
            "to": BUSINESS,
            "conversation_uuid": "CON-1",
            "location": NEUMUENSTER,
        },
    }
    return canonical_event(
        "routing.assigned",
        f"src{n}:assigned",
        received_at=NOW,
        provider="routing",
        connection=connection,
        attributes=attributes,
    )


def connect_leg(
    kind: str, n: int, status: str, leg_of: str | None = CALL, conversation: str = "CON-1"
) -> CanonicalEvent:
    """An event of the n-th connect leg, back through ingest on the connect's eventUrl (the leg
    joins the caller's conversation)."""
    leg_uuid = f"bbbbbbbb-0000-4000-8000-00000000000{n}"
    attributes = {"uuid": leg_uuid, "conversation_uuid": conversation, "status": status, "direction": "outbound"}
    if leg_of is not None:
        attributes[ncco.LEG_OF_PARAM] = leg_of
    return vonage_event(kind, f"{leg_uuid}:{status}", attributes)


def caller_leg(kind: str, status: str) -> CanonicalEvent:
    return vonage_event(kind, f"{CALL}:{status}", {"uuid": CALL, "status": status, "direction": "inbound"})


def test_the_assignment_transfers_the_call_to_a_connect_ncco_once(world):
    deps, vonage = world
    [patched] = handle_event(assigned(), deps, NOW)
    [request] = vonage.requests
    assert request.method == "PUT" and request.url == f"https://api.nexmo.com/v1/calls/{CALL}"
    token = request.headers["Authorization"].removeprefix("Bearer ")
    public: Any = serialization.load_pem_private_key(application()["private_key"].encode(), password=None).public_key()
    claims = jwt.decode(token, public, algorithms=["RS256"], options={"verify_exp": False, "verify_iat": False})
    assert claims["application_id"] == application()["application_id"] and claims["jti"]
    [document] = vonage.nccos()
    assert check(document) == ["connect"]
    [connect] = document
    assert connect["endpoint"] == [{"type": "phone", "number": "494310001"}]
    assert connect["from"] == BUSINESS and connect["timeout"] == twiml.DIAL_TIMEOUT_SECONDS
    assert connect["eventUrl"] == [f"{WEBHOOK}?{ncco.LEG_OF_PARAM}={CALL}"] and connect["eventType"] == "synchronous"
    assert patched.type == "call.patched" and patched.attributes["responder"] == "kiel"
    assert patched.attributes["call_sid"] == CALL and patched.attributes["attempt"] == 1
    assert handle_event(assigned(), deps, NOW) == [patched]  # a redelivery: the same outcome, no second transfer
    assert handle_event(assigned("hamburg", n=2), deps, NOW) == []  # routing assigning the call again: nothing
    assert len(vonage.requests) == 1


@pytest.mark.parametrize(("kind", "status"), [("call.no_answer", "timeout"), ("call.no_answer", "unanswered")])
def test_an_unanswered_leg_goes_to_the_next_nearest_then_to_voicemail(world, kind, status):
    deps, vonage = world
    handle_event(assigned(), deps, NOW)
    [second] = handle_event(connect_leg(kind, 1, status), deps, NOW)
    assert second.type == "call.patched" and second.attributes["responder"] == "hamburg"
    assert second.attributes["attempt"] == 2 and second.attributes["tried"] == ["kiel", "hamburg"]
    assert handle_event(connect_leg(kind, 1, status), deps, NOW) == [second]  # redelivered: no third transfer
    [failed] = handle_event(connect_leg("call.busy", 2, "busy"), deps, NOW)
    assert failed.type == "call.patch_failed" and failed.attributes["reason"] == "nobody_answered"
    assert failed.attributes["fallback"] == "voicemail"
    assert vonage.connected_to() == ["494310001", "494010002"]  # never the unavailable lubeck-off
    voicemail = vonage.nccos()[-1]
    assert check(voicemail) == ["talk", "record"] and voicemail[1]["eventUrl"] == [WEBHOOK]
    assert len(vonage.requests) == 3
    assert deps.calls.get("acme", CALL).status == "voicemail"


def test_a_failed_leg_also_tries_the_next(world):
    deps, vonage = world
    handle_event(assigned(), deps, NOW)
    [second] = handle_event(connect_leg("call.failed", 1, "failed"), deps, NOW)
    assert second.attributes["responder"] == "hamburg" and vonage.connected_to() == ["494310001", "494010002"]


def test_an_answered_leg_records_who_took_the_call_and_its_end_changes_nothing(world):
    deps, vonage = world
    handle_event(assigned(), deps, NOW)
    assert handle_event(connect_leg("call.in_progress", 1, "answered"), deps, NOW) == []
    record = deps.calls.get("acme", CALL)
    assert record is not None and record.status == "answered" and record.answered_by == "kiel"
    assert handle_event(connect_leg("call.completed", 1, "completed"), deps, NOW) == []
    assert handle_event(caller_leg("call.completed", "completed"), deps, NOW) == []
    assert len(vonage.requests) == 1


@pytest.mark.parametrize(
    "hangup",
    [
        lambda: caller_leg("call.completed", "completed"),  # the caller's own call ends
        lambda: connect_leg("call.canceled", 1, "cancelled"),  # Vonage cancels the ringing leg
    ],
)
def test_the_caller_hanging_up_while_a_leg_rings_is_call_ended(world, hangup):
    deps, vonage = world
    handle_event(assigned(), deps, NOW)
    [failed] = handle_event(hangup(), deps, NOW)
    assert failed.type == "call.patch_failed" and failed.attributes["reason"] == "call_ended"
    assert handle_event(hangup(), deps, NOW) == [failed]
    assert handle_event(connect_leg("call.no_answer", 1, "timeout"), deps, NOW) == []  # nobody else is tried
    assert len(vonage.requests) == 1


def test_leg_events_without_a_known_caller_are_ignored(world):
    deps, vonage = world
    handle_event(assigned(), deps, NOW)
    assert handle_event(connect_leg("call.no_answer", 7, "timeout", leg_of=None), deps, NOW) == []
    other = "cccccccc-bbbb-4ccc-8ddd-0123456789ab"
    assert handle_event(connect_leg("call.no_answer", 8, "timeout", leg_of=other), deps, NOW) == []
    # a signed event of another conversation whose (unsigned) leg_of names this call
    for kind, status in (("call.no_answer", "timeout"), ("call.canceled", "cancelled")):
        assert handle_event(connect_leg(kind, 9, status, conversation="CON-other"), deps, NOW) == []
    assert deps.calls.get("acme", CALL).status == "dialling"
    assert len(vonage.requests) == 1


def test_a_transfer_of_an_ended_call_is_call_ended_and_another_refusal_provider_refused(world):
    deps, vonage = world
    vonage.answers = [vonage_error(404, "Not Found")]
    [failed] = handle_event(assigned(), deps, NOW)
    assert failed.type == "call.patch_failed" and failed.attributes["reason"] == "call_ended"
    assert failed.attributes["code"] == "vonage_404"
    assert deps.calls.get("acme", CALL).status == "failed"


def test_a_refused_transfer_is_provider_refused(world):
    deps, vonage = world
    vonage.answers = [vonage_error(401, "Unauthorized")]
    [failed] = handle_event(assigned(), deps, NOW)
    assert failed.attributes["reason"] == "provider_refused" and failed.attributes["code"] == "vonage_401"
    assert "Unauthorized" in failed.attributes["detail"]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_rate_limited_or_failing_transfer_raises_and_a_retry_puts_it_through(world, status):
    deps, vonage = world
    vonage.answers = [vonage_error(status, "Too Many Requests")]
    with pytest.raises(TransientFailure):
        handle_event(assigned(), deps, NOW)
    [patched] = handle_event(assigned(), deps, NOW)
    assert patched.type == "call.patched" and vonage.connected_to() == ["494310001", "494310001"]


def test_a_failing_transfer_to_the_next_raises_and_the_redelivered_leg_event_retries_it(world):
    deps, vonage = world
    handle_event(assigned(), deps, NOW)
    vonage.answers = [vonage_error(503, "Service Unavailable")]
    with pytest.raises(TransientFailure):
        handle_event(connect_leg("call.no_answer", 1, "timeout"), deps, NOW)
    [second] = handle_event(connect_leg("call.no_answer", 1, "timeout"), deps, NOW)
    assert second.attributes["responder"] == "hamburg" and vonage.connected_to()[-1] == "494010002"


def test_an_assignment_on_a_connection_without_credentials_fails_plainly(world):
    deps, vonage = world
    [failed] = handle_event(assigned(connection="con_bare"), deps, NOW)
    assert failed.type == "call.patch_failed" and failed.attributes["reason"] == "not_configured"
    assert vonage.requests == []


def test_stored_credentials_that_are_not_a_vonage_application_fail_plainly(world):
    deps, vonage = world
    deps.credentials.replace("con_vonage", {"api_key": "KEY0123456789ABCDEF0123"}, "acme")
    [failed] = handle_event(assigned(), deps, NOW)
    assert failed.attributes["reason"] == "not_configured" and "VonageCredentials" in failed.attributes["detail"]
    assert vonage.requests == []


def test_nobody_free_at_all_goes_straight_to_voicemail(world):
    deps, vonage = world
    for id_ in ("kiel", "hamburg"):
        r = deps.config.responder("acme", id_)
        assert r is not None
        deps.config.put_responder(r.model_copy(update={"available": False}))
    [failed] = handle_event(assigned(assignee="nobody"), deps, NOW)
    assert failed.attributes["reason"] == "no_responder" and failed.attributes["fallback"] == "voicemail"
    assert [a["action"] for a in vonage.nccos()[0]] == ["talk", "record"]
