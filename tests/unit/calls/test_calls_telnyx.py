"""Telnyx Call Control in the calls function, against moto with the Telnyx transport passed in:
the hold commands on call.initiated, the transfer on routing.assigned, the next nearest when a
transfer's leg hangs up unanswered, the callback promise, and that nothing is sent twice."""

from __future__ import annotations

import base64
import json

import pytest

from functions.calls.logic import CallDeps, CallStore, decode_client_state, handle_event
from infra import topology
from switchboard_core import aws
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from switchboard_core.events import CanonicalEvent, Contact
from switchboard_core.outbound import TransientFailure
from switchboard_core.outbound.base import OutboundRequest, ProviderResponse
from switchboard_core.routing.config_store import RoutingConfigStore
from tests.builders import canonical_event
from tests.unit.calls.test_calls import CALLER, NEUMUENSTER, NOW, responder

LEG = "v3:" + "A" * 40  # the caller's call_control_id
BUSINESS = "+494000000100"
API_KEY = "KEY0123456789ABCDEF0123456789ABCDEF_secretSECRET"
OK = ProviderResponse(status=200, body=json.dumps({"data": {"result": "ok"}}).encode())


class FakeTelnyx:
    def __init__(self) -> None:
        self.requests: list[OutboundRequest] = []
        self.answers: list[ProviderResponse | Exception] = []

    def __call__(self, request: OutboundRequest) -> ProviderResponse:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else OK
        if isinstance(answer, Exception):
            raise answer
        return answer

    def commands(self) -> list[tuple[str, dict]]:
        return [(r.url.rsplit("/", 1)[1], json.loads(r.body)) for r in self.requests]

    def transferred_to(self) -> list[str]:
        return [body["to"] for action, body in self.commands() if action == "transfer"]


@pytest.fixture
def world(aws_world):
    resource = aws.resource("dynamodb")
    names = aws_world.names
    connections = ConnectionStore(resource.Table(names.table("connections")))
    outbound = CredentialStore(
        aws.client("secretsmanager"), topology.outbound_secrets_prefix("test"), max_age_seconds=0
    )
    connections.put(
        Connection(id="con_telnyx", provider="telnyx", tenant="acme", created_at=NOW, outbound_configured_at=NOW)
    )
    outbound.replace("con_telnyx", {"api_key": API_KEY}, "acme")
    connections.put(Connection(id="con_bare", provider="telnyx", tenant="acme", created_at=NOW))
    config = RoutingConfigStore(resource.Table(names.table("routing")))
    for r in (
        responder("kiel", 54.3233, 10.1228, "+494310001"),
        responder("hamburg", 53.5511, 9.9937, "+494010002"),
    ):
        config.put_responder(r)
    transport = FakeTelnyx()
    deps = CallDeps(
        calls=CallStore(resource.Table(names.table("calls"))),
        config=config,
        connections=connections,
        credentials=outbound,
        transport=transport,
        public_base_url="https://hub.example.com",
    )
    return deps, transport


def telnyx_event(kind: str, event_id: str, payload: dict, connection: str = "con_telnyx") -> CanonicalEvent:
    return canonical_event(
        kind,
        event_id,
        received_at=NOW,
        provider="telnyx",
        connection=connection,
        contact=Contact(phone=CALLER),
        conversation_key="telnyx:call:session",
        attributes={"event_type": kind, "payload": payload},
    )


def initiated(direction: str = "incoming", connection: str = "con_telnyx", **extra) -> CanonicalEvent:
    payload = {"call_control_id": LEG, "direction": direction, "from": CALLER, "to": BUSINESS, **extra}
    return telnyx_event("call.initiated", "ev-initiated", payload, connection)


def assigned(assignee: str = "kiel", n: int = 1, connection: str = "con_telnyx") -> CanonicalEvent:
    attributes = {
        "conversation": "cv_1",
        "source_event": f"src{n}",
        "queue": "towing",
        "assignee": assignee,
        "distance_km": 30.79,
        "call": {"provider": "telnyx", "sid": LEG, "from": CALLER, "to": BUSINESS, "location": NEUMUENSTER},
    }
    return canonical_event(
        "routing.assigned",
        f"src{n}:assigned",
        received_at=NOW,
        provider="routing",
        connection=connection,
        attributes=attributes,
    )


def transfer_leg(kind: str, n: int, state: str | None = None) -> CanonicalEvent:
    state = state if state is not None else base64.b64encode(f"switchboard:{LEG}".encode()).decode()
    payload = {"call_control_id": f"v3:B{n}", "direction": "outgoing", "client_state": state}
    return telnyx_event(kind, f"ev-leg-{n}-{kind}", payload)


def test_an_inbound_call_is_answered_and_held_once(world):
    deps, telnyx = world
    assert handle_event(initiated(), deps, aware_now()) == []
    assert [action for action, _ in telnyx.commands()] == ["answer", "playback_start"]
    first = telnyx.requests[0]
    assert first.url == f"https://api.telnyx.com/v2/calls/{LEG.replace(':', '%3A')}/actions/answer"
    assert first.headers["Authorization"] == f"Bearer {API_KEY}"
    _, playback = telnyx.commands()[1]
    assert playback["audio_url"].startswith("http") and playback["loop"] == "infinity"
    # A redelivery repeats the same command ids: Telnyx ignores them.
    handle_event(initiated(), deps, aware_now())
    ids = [body["command_id"] for _, body in telnyx.commands()]
    event_id = initiated().id
    assert ids == [f"{event_id}:answer", f"{event_id}:playback_start"] * 2


@pytest.mark.parametrize(
    "event",
    [
        lambda: initiated(direction="outgoing"),
        lambda: initiated(client_state=base64.b64encode(b"switchboard:x").decode()),
        lambda: initiated(connection="con_bare"),  # no outbound credentials: nothing to hold with
    ],
)
def test_legs_the_hub_opened_and_unconfigured_connections_are_not_answered(world, event):
    deps, telnyx = world
    assert handle_event(event(), deps, aware_now()) == [] and telnyx.requests == []


def test_a_hold_refused_because_the_caller_hung_up_stops_after_the_answer(world):
    deps, telnyx = world
    ended = {"errors": [{"code": "90018", "title": "Call has already ended"}]}
    telnyx.answers = [ProviderResponse(status=422, body=json.dumps(ended).encode())]
    handle_event(initiated(), deps, aware_now())
    assert [action for action, _ in telnyx.commands()] == ["answer"]


def test_the_assignment_transfers_the_call_to_the_assignee_once(world):
    deps, telnyx = world
    [patched] = handle_event(assigned(), deps, aware_now())
    [(action, body)] = telnyx.commands()
    assert action == "transfer"
    assert body["to"] == "+494310001" and body["from"] == BUSINESS and body["timeout_secs"] == 20
    assert decode_client_state(body["client_state"]) == LEG
    assert patched.type == "call.patched" and patched.attributes["responder"] == "kiel"
    assert patched.attributes["call_sid"] == LEG and patched.attributes["attempt"] == 1
    assert handle_event(assigned(), deps, aware_now()) == [patched]  # a redelivery: the same outcome
    assert handle_event(assigned("hamburg", n=2), deps, aware_now()) == []  # assigned again: nothing
    assert len(telnyx.requests) == 1


def test_an_unanswered_transfer_goes_to_the_next_nearest_then_a_callback_promise(world):
    deps, telnyx = world
    handle_event(assigned(), deps, aware_now())
    [second] = handle_event(transfer_leg("call.no_answer", 1), deps, aware_now())
    assert second.type == "call.patched" and second.attributes["responder"] == "hamburg"
    assert second.attributes["attempt"] == 2
    assert handle_event(transfer_leg("call.no_answer", 1), deps, aware_now()) == [second]  # redelivered
    [failed] = handle_event(transfer_leg("call.busy", 2), deps, aware_now())
    assert failed.type == "call.patch_failed" and failed.attributes["reason"] == "nobody_answered"
    assert failed.attributes["fallback"] == "callback_promise"
    assert telnyx.transferred_to() == ["+494310001", "+494010002"]
    action, speak = telnyx.commands()[-1]
    assert action == "speak" and "call you back" in speak["payload"] and speak["voice"]
    assert len(telnyx.requests) == 3


def test_an_answered_transfer_records_who_took_the_call(world):
    deps, telnyx = world
    handle_event(assigned(), deps, aware_now())
    assert handle_event(transfer_leg("call.in_progress", 1), deps, aware_now()) == []
    record = deps.calls.get("acme", LEG)
    assert record is not None and record.status == "answered" and record.answered_by == "kiel"
    # the caller's leg ending after the conversation, and the responder's: nothing more
    assert handle_event(telnyx_event("call.completed", "ev-a-end", {"call_control_id": LEG}), deps, aware_now()) == []
    assert handle_event(transfer_leg("call.completed", 1), deps, aware_now()) == []
    assert len(telnyx.requests) == 1


def test_the_caller_hanging_up_while_a_transfer_rings_is_a_patch_failure(world):
    deps, telnyx = world
    handle_event(assigned(), deps, aware_now())
    hangup = telnyx_event("call.completed", "ev-a-hangup", {"call_control_id": LEG, "direction": "incoming"})
    [failed] = handle_event(hangup, deps, aware_now())
    assert failed.type == "call.patch_failed" and failed.attributes["reason"] == "call_ended"
    assert handle_event(hangup, deps, aware_now()) == [failed]
    assert handle_event(transfer_leg("call.no_answer", 1), deps, aware_now()) == []  # nobody else is tried
    assert len(telnyx.requests) == 1


def test_a_leg_whose_client_state_is_not_the_hubs_is_ignored(world):
    deps, telnyx = world
    handle_event(assigned(), deps, aware_now())
    for state in ("not base64!", base64.b64encode(b"someone-else").decode()):
        # not ours: taken for the caller's own leg, which is not this call_control_id
        assert handle_event(transfer_leg("call.no_answer", 9, state=state), deps, aware_now()) == []
    assert len(telnyx.requests) == 1


def test_a_transfer_to_a_call_that_ended_is_call_ended_and_a_refusal_provider_refused(world):
    deps, telnyx = world
    ended = {"errors": [{"code": "90018", "title": "Call has already ended"}]}
    telnyx.answers = [ProviderResponse(status=422, body=json.dumps(ended).encode())]
    [failed] = handle_event(assigned(), deps, aware_now())
    assert failed.type == "call.patch_failed" and failed.attributes["reason"] == "call_ended"
    assert failed.attributes["code"] == "telnyx_90018"


def test_a_rate_limited_transfer_raises_for_the_queue_and_a_retry_puts_it_through(world):
    deps, telnyx = world
    telnyx.answers = [ProviderResponse(status=429, body=b'{"errors": [{"code": "10011", "title": "Too many"}]}')]
    with pytest.raises(TransientFailure):
        handle_event(assigned(), deps, aware_now())
    [patched] = handle_event(assigned(), deps, aware_now())
    assert patched.type == "call.patched" and telnyx.transferred_to() == ["+494310001", "+494310001"]


def test_an_assignment_on_a_connection_without_credentials_fails_plainly(world):
    deps, telnyx = world
    [failed] = handle_event(assigned(connection="con_bare"), deps, aware_now())
    assert failed.type == "call.patch_failed" and failed.attributes["reason"] == "not_configured"
    assert telnyx.requests == []


def aware_now():
    return NOW
