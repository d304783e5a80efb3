"""Live call patching: put a ringing call through to the responder routing chose.

Two events drive a call, each read with the call's record in the calls table
(`CALL#<tenant>#<CallSid>`):

1. `routing.assigned` for a conversation that came from a live Twilio call (routing
   adds `call`: sid, caller, number called, caller's coordinates). A conditional write
   claims the call for that event, so a redelivery (or routing assigning the same call
   again on a later status callback) never redirects it twice. The call is updated
   through Twilio's Calls API with a `<Dial>` to the assignee's phone (their `sms`
   contact point), caller id the number the customer called, an `action` URL on the
   hub's Twilio webhook, and a whisper (team, topics, distance: `<Number url>` on the same
   webhook, answered by ingest with `<Say>`); `call.patched` follows. No assignee (nobody free): voicemail and
   `call.patch_failed` (`no_responder`).
2. `call.dial_ended` (that `action` callback, through ingest). `completed`: someone took
   the call; the record says who. `canceled`: the caller hung up (`call.patch_failed`
   `call_ended`). `no-answer`, `busy`, `failed`: the next nearest
   available responder of the team who has not been tried is dialled (`call.patched`,
   attempt 2, 3...); nobody left: voicemail and `call.patch_failed` (`nobody_answered`).
   Each dial is recorded with a conditional write on the attempt number, and each
   callback once.

Telnyx Call Control (API driven: its webhook reply cannot hold a call) follows the same
steps with commands (`switchboard_core.outbound.telnyx`), the call's `call_control_id` as its sid:

* `call.initiated` for the caller's own leg (incoming, no client_state): `answer`, then
  `playback_start` of the hold music, looped. Each command carries a `command_id` made of the
  event id, so a redelivery is ignored by Telnyx; no record is written.
* `routing.assigned`: the same claim, then `transfer` to the responder's phone, `from` the
  number called, `timeout_secs` DIAL_TIMEOUT_SECONDS, and a `client_state` naming the caller's
  leg, which Telnyx puts on every webhook of the new leg.
* The new leg's `call.answered` (`call.in_progress`): answered by that responder. Its
  `call.hangup` before that (`call.no_answer`, `call.busy`, `call.failed`): the next nearest,
  as for Twilio; nobody left: `speak` a callback promise and `call.patch_failed`
  (`nobody_answered`, fallback `callback_promise`). The caller's leg hanging up while a
  transfer rings: `call.patch_failed` (`call_ended`).

Vonage Voice (NCCOs, `switchboard_core.calls.ncco`; the call's `uuid` as its sid) is held by
ingest's answer to the answer webhook (talk, looped hold music, then a voicemail), and follows the
same steps with transfers (``PUT /v1/calls/{uuid}``, `switchboard_core.outbound.vonage`):

* `routing.assigned`: the same claim, then a transfer to an NCCO that `connect`s the responder's
  phone, `from` the number called, `timeout` DIAL_TIMEOUT_SECONDS, an `eventUrl` on the hub's
  Vonage webhook with `?leg_of=<the caller's uuid>`, so the connect leg's status events come back
  through ingest naming the caller's call (acted on only when their signed `conversation_uuid`,
  shared by the legs of a call, is the caller's; synchronous: ingest answers an unanswered leg with
  "please keep holding", and the call ends when the bridged call does).
* The leg's `answered` (`call.in_progress`): answered by that responder. Its `timeout`,
  `unanswered`, `busy`, `failed`, `rejected` (`call.no_answer`, `call.busy`, `call.failed`): the
  next nearest; nobody left: a transfer to a voicemail (`talk`, then `record` posted back to the
  webhook) and `call.patch_failed` (`nobody_answered`, fallback `voicemail`). Its `cancelled`, or
  the caller's own leg `completed` while a leg rings: `call.patch_failed` (`call_ended`). A 404
  to the transfer (the call has ended) is `call_ended` too.

A 429/5xx from Twilio, Telnyx or Vonage raises (the queue retries); a refusal becomes `call.patch_failed`
(`call_ended` when the caller already hung up: Twilio's 21220). The outcome events are stored
with the write that records them: a redelivered trigger (say, after a failed publish) gets
the same events again, never a second redirect.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field

from switchboard_core.calls import CALLS_PROVIDER, ncco, twiml
from switchboard_core.connections import ConnectionStore, CredentialStore
from switchboard_core.dynamo import conditional_write
from switchboard_core.errors import NotFound
from switchboard_core.events import CanonicalEvent, EventDraft
from switchboard_core.outbound import PermanentFailure, Transport, api_base_url
from switchboard_core.outbound.telnyx import (
    CALL_ENDED_CODE,
    TelnyxCredentials,
    call_action_outcome,
    call_action_request,
)
from switchboard_core.outbound.twilio import (
    CALL_NOT_IN_PROGRESS,
    TwilioCredentials,
    update_call_outcome,
    update_call_request,
)
from switchboard_core.outbound.vonage import (
    CALL_GONE_STATUS,
    VonageCredentials,
    transfer_outcome,
    transfer_request,
)
from switchboard_core.routing.assignment import GeoPoint, Responder, great_circle_km
from switchboard_core.routing.config_store import RoutingConfigStore

RECORD_TTL = timedelta(days=7)
UNANSWERED = frozenset({"no-answer", "busy", "failed"})
TELNYX_UNANSWERED = frozenset({"call.no_answer", "call.busy", "call.failed"})
TELNYX_LEG_EVENTS = frozenset({"call.in_progress", "call.completed", "call.canceled", *TELNYX_UNANSWERED})
# Vonage's connect-leg statuses timeout/unanswered -> call.no_answer, busy, failed/rejected -> call.failed
VONAGE_UNANSWERED = TELNYX_UNANSWERED
VONAGE_LEG_EVENTS = TELNYX_LEG_EVENTS
CALLBACK_PROMISE = "Sorry, nobody can take your call right now. We have your number and will call you back shortly."
CredentialsModel = TypeVar("CredentialsModel", bound=BaseModel)
CLIENT_STATE_PREFIX = "switchboard:"  # client_state (base64) of a leg the hub opened: prefix + the caller's leg id
CALLER_GONE = "canceled"  # the caller hung up while the responder's phone rang


class LiveCall(BaseModel):
    """The `call` attributes routing adds to a live call's routing events."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    provider: str
    sid: str = Field(min_length=1, max_length=200)
    caller: str | None = Field(default=None, alias="from")
    called: str | None = Field(default=None, alias="to")
    conversation_uuid: str | None = Field(default=None, max_length=200)  # Vonage: the call's conversation
    location: GeoPoint | None = None


class CallRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tenant: str
    sid: str
    provider: str = "twilio"
    connection: str
    conversation: str
    source_event: str
    assigned_event: str
    team: str = ""
    called: str | None = None
    provider_conversation: str | None = None  # Vonage: the conversation_uuid its connect legs share
    location: GeoPoint | None = None
    status: str = "claimed"  # claimed -> dialling -> answered | voicemail | failed
    attempt: int = 0
    tried: list[str] = Field(default_factory=list)
    handled: list[str] = Field(default_factory=list)  # call.dial_ended events acted on
    answered_by: str | None = None
    contact: dict[str, Any] | None = None  # routing's contact summary, carried onto call.* events
    topics: list[str] = Field(default_factory=list)  # for the whisper
    # trigger event id -> the call.* events it led to, stored with the write that records them,
    # so a redelivery after a failed publish publishes them again (same ids) instead of nothing
    outcomes: dict[str, list[str]] = Field(default_factory=dict)


class CallStore:
    """One item per live call the hub put through."""

    def __init__(self, table: Any) -> None:
        self._table = table

    @staticmethod
    def key(tenant: str, sid: str) -> dict[str, str]:
        return {"pk": f"CALL#{tenant}#{sid}"}

    def get(self, tenant: str, sid: str) -> CallRecord | None:
        item = self._table.get_item(Key=self.key(tenant, sid), ConsistentRead=True).get("Item")
        return CallRecord.model_validate_json(item["record"]) if item else None

    def claim(self, record: CallRecord, now: datetime) -> bool:
        """True when this call is now `record.assigned_event`'s to put through: a new call,
        or the same event again before its dial was recorded (a retry after a failure)."""
        return conditional_write(
            self._table.put_item,
            Item=self._item(record, now),
            ConditionExpression="attribute_not_exists(pk) OR (assigned_event = :event AND #status = :claimed)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":event": record.assigned_event, ":claimed": "claimed"},
        )

    def save(self, record: CallRecord, expected_attempt: int, now: datetime) -> bool:
        """Write `record` if nobody recorded another attempt meanwhile."""
        return conditional_write(
            self._table.put_item,
            Item=self._item(record, now),
            ConditionExpression="attempt = :expected",
            ExpressionAttributeValues={":expected": expected_attempt},
        )

    def _item(self, record: CallRecord, now: datetime) -> dict[str, Any]:
        return {
            **self.key(record.tenant, record.sid),
            "assigned_event": record.assigned_event,
            "status": record.status,
            "attempt": record.attempt,
            "record": record.model_dump_json(),
            "expires_at": int((now + RECORD_TTL).timestamp()),
        }


@dataclass
class CallDeps:
    calls: CallStore
    config: RoutingConfigStore
    connections: ConnectionStore
    credentials: CredentialStore  # under the outbound prefix
    transport: Transport
    public_base_url: str


def handle_event(event: CanonicalEvent, deps: CallDeps, now: datetime) -> list[CanonicalEvent]:
    """The call.* events one bus event leads to (none for events that are not a live call's)."""
    if event.type == "routing.assigned":
        return handle_assigned(event, deps, now)
    if event.type == "call.dial_ended" and event.provider == "twilio":
        return handle_dial_ended(event, deps, now)
    if event.provider == "telnyx" and event.type == "call.initiated":
        hold_telnyx_call(event, deps)
        return []
    if event.provider == "telnyx" and event.type in TELNYX_LEG_EVENTS:
        return handle_telnyx_leg(event, deps, now)
    if event.provider == "vonage" and event.type in VONAGE_LEG_EVENTS:
        return handle_vonage_leg(event, deps, now)
    return []


def handle_assigned(event: CanonicalEvent, deps: CallDeps, now: datetime) -> list[CanonicalEvent]:
    raw_call = event.attributes.get("call")
    if not isinstance(raw_call, dict):
        return []  # not a live call's conversation
    call = LiveCall.model_validate(raw_call)
    if call.provider not in ("twilio", "telnyx", "vonage"):
        return []
    record = CallRecord(
        tenant=event.tenant,
        sid=call.sid,
        provider=call.provider,
        connection=event.connection,
        conversation=str(event.attributes.get("conversation") or event.conversation_key or ""),
        source_event=str(event.attributes.get("source_event") or ""),
        assigned_event=event.id,
        team=str(event.attributes.get("queue") or ""),
        called=call.called,
        provider_conversation=call.conversation_uuid,
        location=call.location,
        contact=event.attributes.get("contact") if isinstance(event.attributes.get("contact"), dict) else None,
        topics=[t for t in event.attributes.get("topics") or [] if isinstance(t, str)][:3],
    )
    if not deps.calls.claim(record, now):
        # Already put through: a redelivery gets its outcome again; routing assigning the call again, nothing.
        return stored_outcomes(deps.calls.get(event.tenant, call.sid), event.id)
    assignee = event.attributes.get("assignee")
    responder = deps.config.responder(event.tenant, assignee) if isinstance(assignee, str) else None
    if responder is None or phone_of(responder) is None:
        # Nobody free, or an assignee who cannot be phoned: the team's next one, else voicemail.
        tried = [responder.id] if responder is not None else []
        nearest = next_responder(record, deps.config.responders(event.tenant), tried, now)
        if nearest is None:
            reason = "no_phone" if responder is not None else "no_responder"
            return to_voicemail(event, record.model_copy(update={"tried": tried}), deps, now, reason)
        responder, distance = nearest
    else:
        distance = _distance(record, responder, event.attributes.get("distance_km"))
    return put_through(event, record, responder, distance, deps, now)


def handle_dial_ended(event: CanonicalEvent, deps: CallDeps, now: datetime) -> list[CanonicalEvent]:
    sid = event.attributes.get("CallSid")
    status = str(event.attributes.get("DialCallStatus") or "").lower()
    record = deps.calls.get(event.tenant, sid) if isinstance(sid, str) else None
    if record is not None and event.id in record.handled:
        return stored_outcomes(record, event.id)  # a redelivery
    if record is None or record.status != "dialling":
        return []  # not a dial the hub made, or the call is over
    handled = [*record.handled, event.id]
    if status == CALLER_GONE:
        ended = record.model_copy(update={"status": "failed", "handled": handled})
        outcome = call_event(
            event, ended, "call.patch_failed", {"reason": "call_ended", "detail": "the caller hung up"}
        )
        deps.calls.save(with_outcome(ended, event.id, outcome), record.attempt, now)
        return [outcome]
    if status not in UNANSWERED:  # completed: the responder took the call, and it has ended
        answered = record.model_copy(
            update={"status": "answered", "answered_by": record.tried[-1] if record.tried else None, "handled": handled}
        )
        deps.calls.save(answered, record.attempt, now)
        return []
    record = record.model_copy(update={"handled": handled})
    nearest = next_responder(record, deps.config.responders(event.tenant), record.tried, now)
    if nearest is None:
        return to_voicemail(event, record, deps, now, "nobody_answered")
    responder, distance = nearest
    return put_through(event, record, responder, distance, deps, now)


def hold_telnyx_call(event: CanonicalEvent, deps: CallDeps) -> None:
    """Answer the caller's leg and play hold music until routing's transfer (Telnyx cannot be
    answered in the webhook's reply). A repeat of the event repeats the command ids: ignored."""
    payload = event.attributes.get("payload")
    if not isinstance(payload, dict) or payload.get("direction") != "incoming" or payload.get("client_state"):
        return  # a leg the hub opened, or not a call
    leg = payload.get("call_control_id")
    credentials = outbound_credentials(event.tenant, event.connection, TelnyxCredentials, deps)
    if not isinstance(leg, str) or not isinstance(credentials, TelnyxCredentials):
        return  # nothing to hold with; routing's transfer reports the connection (call.patch_failed)
    hold_music = {"audio_url": twiml.hold_music_url(), "loop": "infinity"}
    for action, body in (("answer", {}), ("playback_start", hold_music)):
        if send_telnyx_command(credentials, leg, action, body, f"{event.id}:{action}", deps) is not None:
            return  # refused (the caller hung up): no hold music for a call that is over


def handle_telnyx_leg(event: CanonicalEvent, deps: CallDeps, now: datetime) -> list[CanonicalEvent]:
    """A leg of a Telnyx call answered or hung up: the transfer's leg (its client_state names
    the caller's leg) or the caller's own."""
    payload = event.attributes.get("payload")
    payload = payload if isinstance(payload, dict) else {}
    leg = payload.get("call_control_id")
    caller_leg = decode_client_state(payload.get("client_state"))
    if caller_leg is None or caller_leg == leg:
        return handle_caller_hangup(event, leg, "telnyx", deps, now)
    return handle_transfer_leg(event, caller_leg, "telnyx", deps, now)


def handle_vonage_leg(event: CanonicalEvent, deps: CallDeps, now: datetime) -> list[CanonicalEvent]:
    """A status event of a Vonage call: a connect leg the hub opened (ingest put the caller's
    uuid from its eventUrl's `?leg_of=` in `leg_of`) or the caller's own call."""
    leg, caller_leg = event.attributes.get("uuid"), event.attributes.get(ncco.LEG_OF_PARAM)
    if not isinstance(caller_leg, str) or caller_leg == leg:
        return handle_caller_hangup(event, leg, "vonage", deps, now)
    record = deps.calls.get(event.tenant, caller_leg)
    conversation = record.provider_conversation if record is not None else None
    if conversation and event.attributes.get("conversation_uuid") != conversation:
        return []  # the (unsigned) leg_of names a call this signed event is not part of
    if event.type == "call.canceled":  # the caller hung up while the leg rang: Vonage cancels it
        return handle_caller_hangup(event, caller_leg, "vonage", deps, now)
    return handle_transfer_leg(event, caller_leg, "vonage", deps, now)


def handle_transfer_leg(
    event: CanonicalEvent, caller_leg: str, provider: str, deps: CallDeps, now: datetime
) -> list[CanonicalEvent]:
    """The leg the hub opened to a responder answered, or ended before anyone answered."""
    record = deps.calls.get(event.tenant, caller_leg)
    if record is not None and event.id in record.handled:
        return stored_outcomes(record, event.id)  # a redelivery
    if record is None or record.status != "dialling" or record.provider != provider:
        return []
    handled = [*record.handled, event.id]
    if event.type == "call.in_progress":  # the responder picked up: the provider bridges the caller
        answered_by = record.tried[-1] if record.tried else None
        deps.calls.save(
            record.model_copy(update={"status": "answered", "answered_by": answered_by, "handled": handled}),
            record.attempt,
            now,
        )
        return []
    if event.type not in (TELNYX_UNANSWERED if provider == "telnyx" else VONAGE_UNANSWERED):
        return []  # the leg ending after the caller's: the caller's hangup says so
    record = record.model_copy(update={"handled": handled})
    nearest = next_responder(record, deps.config.responders(event.tenant), record.tried, now)
    if nearest is None:
        return to_voicemail(event, record, deps, now, "nobody_answered")
    responder, distance = nearest
    return put_through(event, record, responder, distance, deps, now)


def handle_caller_hangup(
    event: CanonicalEvent, leg: Any, provider: str, deps: CallDeps, now: datetime
) -> list[CanonicalEvent]:
    if event.type == "call.in_progress" or not isinstance(leg, str):
        return []
    record = deps.calls.get(event.tenant, leg)
    if record is not None and event.id in record.handled:
        return stored_outcomes(record, event.id)
    if record is None or record.status != "dialling" or record.provider != provider:
        return []  # not put through by the hub, or already answered or over
    ended = record.model_copy(update={"status": "failed", "handled": [*record.handled, event.id]})
    outcome = call_event(event, ended, "call.patch_failed", {"reason": "call_ended", "detail": "the caller hung up"})
    deps.calls.save(with_outcome(ended, event.id, outcome), record.attempt, now)
    return [outcome]


def client_state(caller_leg: str) -> str:
    return base64.b64encode(f"{CLIENT_STATE_PREFIX}{caller_leg}".encode()).decode()


def decode_client_state(value: Any) -> str | None:
    """The caller's leg a transfer's leg belongs to, or None for a client_state that is not the hub's."""
    if not isinstance(value, str) or not value:
        return None
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return text.removeprefix(CLIENT_STATE_PREFIX) if text.startswith(CLIENT_STATE_PREFIX) else None


def stored_outcomes(record: CallRecord | None, trigger: str) -> list[CanonicalEvent]:
    if record is None:
        return []
    return [CanonicalEvent.model_validate_json(raw) for raw in record.outcomes.get(trigger, [])]


def with_outcome(record: CallRecord, trigger: str, outcome: CanonicalEvent) -> CallRecord:
    return record.model_copy(update={"outcomes": {**record.outcomes, trigger: [outcome.model_dump_json()]}})


def phone_of(responder: Responder) -> str | None:
    """Where a responder takes calls: the number of their first `sms` contact point."""
    return next((point.to for point in responder.contact_points if point.channel == "sms"), None)


def next_responder(
    record: CallRecord, responders: list[Responder], tried: list[str], now: datetime
) -> tuple[Responder, float | None] | None:
    """The nearest available responder of the call's team with a phone, not yet tried;
    those without a location (or for a caller without one) after them, least loaded first."""
    candidates = [
        r
        for r in responders
        if r.id not in tried
        and (not record.team or record.team in r.teams)
        and r.can_take_work(now)
        and phone_of(r) is not None
    ]
    if not candidates:
        return None

    def order(responder: Responder) -> tuple[int, float, str]:
        distance = _distance(record, responder, None)
        if distance is None:
            return (1, responder.load / max(responder.capacity, 1), responder.id)
        return (0, distance, responder.id)

    best = min(candidates, key=order)
    return best, _distance(record, best, None)


def _distance(record: CallRecord, responder: Responder, given: Any) -> float | None:
    if isinstance(given, (int, float)) and not isinstance(given, bool):
        return float(given)
    if record.location is None or responder.location is None:
        return None
    return round(great_circle_km(record.location, responder.location), 2)


def action_url(base_url: str, connection: str, provider: str = "twilio") -> str:
    """The hub's webhook of the call's connection (Twilio's Dial and Record callbacks, Vonage's
    connect-leg events and recordings): they come back through ingest, signed."""
    return f"{base_url.rstrip('/')}/webhooks/{provider}/{connection}"


def whisper_text(record: CallRecord, distance: float | None) -> str:
    """What the responder hears on picking up: whose call it is and how far, never the caller's number
    (the text travels in the whisper URL)."""
    parts = [f"A Switchboard call for the {record.team} team" if record.team else "A Switchboard call"]
    if record.topics:
        parts.append(f", about {', '.join(record.topics)}")
    if distance is not None:
        parts.append(f". The caller is {round(distance)} kilometres from you")
    return "".join(parts) + ". Connecting you now."


def put_through(
    event: CanonicalEvent,
    record: CallRecord,
    responder: Responder,
    distance: float | None,
    deps: CallDeps,
    now: datetime,
) -> list[CanonicalEvent]:
    phone = phone_of(responder)
    assert phone is not None  # the candidates were chosen for having one
    tried = [*record.tried, responder.id]
    if record.provider == "telnyx":
        transfer: dict[str, Any] = {
            "to": phone,
            "timeout_secs": twiml.DIAL_TIMEOUT_SECONDS,
            "client_state": client_state(record.sid),
        }
        if record.called:
            transfer["from"] = record.called
        failure = telnyx_call_command(record, "transfer", transfer, f"{event.id}:transfer:{record.attempt + 1}", deps)
    elif record.provider == "vonage":
        webhook = action_url(deps.public_base_url, record.connection, "vonage")
        connect = ncco.connect(phone, webhook_url=webhook, caller_uuid=record.sid, caller_id=record.called)
        failure = vonage_transfer(record, connect, deps)
    else:
        callback = action_url(deps.public_base_url, record.connection)
        whisper_url = f"{callback}?{urlencode({twiml.WHISPER_PARAM: whisper_text(record, distance)})}"
        document = twiml.dial(phone, action_url=callback, caller_id=record.called, whisper_url=whisper_url)
        failure = update_call(record, document, deps)
    if failure is not None:
        failed = record.model_copy(update={"status": "failed", "tried": tried})
        outcome = call_event(event, failed, "call.patch_failed", {"responder": responder.id, **failure})
        deps.calls.save(with_outcome(failed, event.id, outcome), record.attempt, now)
        return [outcome]
    dialling = record.model_copy(update={"status": "dialling", "tried": tried, "attempt": record.attempt + 1})
    details = {"responder": responder.id, "responder_name": responder.name, "distance_km": distance}
    outcome = call_event(event, dialling, "call.patched", details)
    if not deps.calls.save(with_outcome(dialling, event.id, outcome), record.attempt, now):
        # Recorded already: by a concurrent delivery, or by this very write when AWS applied it and
        # its answer was lost (botocore's retry then fails the condition). Either way the stored
        # outcome is published (same id): returning nothing lost call.patched in the second case.
        return stored_outcomes(deps.calls.get(record.tenant, record.sid), event.id)
    return [outcome]


def to_voicemail(
    event: CanonicalEvent, record: CallRecord, deps: CallDeps, now: datetime, reason: str
) -> list[CanonicalEvent]:
    if record.provider == "telnyx":  # a callback promise: the caller's number is on the call.* event
        fallback = "callback_promise"
        speak = {"payload": CALLBACK_PROMISE, "voice": "female", "language": "en-US"}
        failure = telnyx_call_command(record, "speak", speak, f"{event.id}:speak", deps)
    elif record.provider == "vonage":
        fallback = "voicemail"
        failure = vonage_transfer(
            record, ncco.voicemail(action_url(deps.public_base_url, record.connection, "vonage")), deps
        )
    else:
        fallback = "voicemail"
        failure = update_call(record, twiml.voicemail(action_url(deps.public_base_url, record.connection)), deps)
    done = record.model_copy(update={"status": "failed" if failure else "voicemail"})
    details: dict[str, Any] = {"reason": reason, "fallback": None if failure else fallback}
    if failure is not None:
        details["fallback_failure"] = failure
    outcome = call_event(event, done, "call.patch_failed", details)
    deps.calls.save(with_outcome(done, event.id, outcome), record.attempt, now)
    return [outcome]


def outbound_credentials(
    tenant: str, connection_id: str, model: type[CredentialsModel], deps: CallDeps
) -> CredentialsModel | dict[str, Any]:
    """The connection's outbound credentials as `model`, else why there are none."""
    try:
        connection = deps.connections.get(connection_id)
    except NotFound:
        connection = None
    if connection is None or connection.tenant != tenant or connection.outbound_configured_at is None:
        return {"reason": "not_configured", "detail": f"connection {connection_id} has no outbound credentials"}
    try:
        return model.model_validate(dict(deps.credentials.get(connection.id).current))
    except ValueError:
        return {"reason": "not_configured", "detail": f"the stored outbound credentials are not {model.__name__}"}


def telnyx_call_command(
    record: CallRecord, action: str, body: dict[str, Any], command_id: str, deps: CallDeps
) -> dict[str, Any] | None:
    credentials = outbound_credentials(record.tenant, record.connection, TelnyxCredentials, deps)
    if not isinstance(credentials, TelnyxCredentials):
        return credentials
    return send_telnyx_command(credentials, record.sid, action, body, command_id, deps)


def send_telnyx_command(
    credentials: TelnyxCredentials, leg: str, action: str, body: dict[str, Any], command_id: str, deps: CallDeps
) -> dict[str, Any] | None:
    """None when Telnyx took the command, else why not (a 429/5xx raises: the queue retries)."""
    try:
        request = call_action_request(api_base_url("telnyx"), credentials, leg, action, body, command_id)
        call_action_outcome(deps.transport(request))
    except PermanentFailure as failure:
        ended = failure.code == f"telnyx_{CALL_ENDED_CODE}"
        return {"reason": "call_ended" if ended else "provider_refused", "code": failure.code, "detail": failure.detail}
    return None


def vonage_transfer(record: CallRecord, document: ncco.Ncco, deps: CallDeps) -> dict[str, Any] | None:
    """Hand the live call to `document`; None when Vonage took it, else why not (a 429/5xx
    raises: the queue retries)."""
    credentials = outbound_credentials(record.tenant, record.connection, VonageCredentials, deps)
    if not isinstance(credentials, VonageCredentials):
        return credentials
    try:
        request = transfer_request(api_base_url("vonage"), credentials, record.sid, document)
        transfer_outcome(deps.transport(request))
    except PermanentFailure as failure:
        ended = failure.code == f"vonage_{CALL_GONE_STATUS}"
        return {"reason": "call_ended" if ended else "provider_refused", "code": failure.code, "detail": failure.detail}
    return None


def update_call(record: CallRecord, document: str, deps: CallDeps) -> dict[str, Any] | None:
    """Redirect the live call to `document`; None when Twilio took it, else why not (a
    429/5xx raises: the queue retries)."""
    credentials = outbound_credentials(record.tenant, record.connection, TwilioCredentials, deps)
    if not isinstance(credentials, TwilioCredentials):
        return credentials
    try:
        request = update_call_request(api_base_url("twilio"), credentials, record.sid, document)
        update_call_outcome(deps.transport(request))
    except PermanentFailure as failure:
        ended = failure.code == f"twilio_{CALL_NOT_IN_PROGRESS}"
        return {"reason": "call_ended" if ended else "provider_refused", "code": failure.code, "detail": failure.detail}
    return None


def call_event(event: CanonicalEvent, record: CallRecord, kind: str, details: dict[str, Any]) -> CanonicalEvent:
    attributes = {
        "call_sid": record.sid,
        "conversation": record.conversation,
        "source_event": record.source_event,
        "trigger": event.id,
        "team": record.team or None,
        "attempt": record.attempt,
        "tried": record.tried,
        "contact": record.contact,
        **details,
    }
    return CanonicalEvent.from_draft(
        EventDraft(
            type=kind,
            provider_event_id=f"{record.sid}:{kind}:{record.attempt}:{event.id}",
            occurred_at=event.occurred_at,
            contact=event.contact,
            conversation_key=record.conversation,
            attributes=attributes,
        ),
        provider=CALLS_PROVIDER,
        connection=record.connection,
        tenant=record.tenant,
        channel=event.channel,
        received_at=event.received_at,
        raw_ref=None,
    )
