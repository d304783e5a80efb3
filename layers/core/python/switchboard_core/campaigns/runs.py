"""A campaign run as data: its state, what can happen to it (inputs), and what the engine asks
the caller to do (actions). The engine (`engine.py`) turns (state, input) into (state, actions);
these models are what the store keeps and what the campaign function executes.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from switchboard_core.campaigns.keypad import Gather

RUN_ID_PREFIX = "run_"
MAX_HISTORY = 200  # steps kept in `steps_done`; older ones are dropped (counted in `steps_dropped`)
MAX_SEEN_INPUTS = 50  # ids of the latest replies and stops, to recognise a redelivery


class RunStatus(StrEnum):
    ACTIVE = "active"  # has immediate steps left (the engine paused after its per-call bound)
    WAITING = "waiting"  # for a timer, a reply or a call's outcome
    COMPLETED = "completed"  # reached an `end` step
    STOPPED = "stopped"  # by a stop, an opt-out, a guard or a step limit: `end_reason` says which


FINISHED = (RunStatus.COMPLETED, RunStatus.STOPPED)
Counter = Literal["entered", "sent", "replied", "failed", "converted"]
# timer: a `wait`; reply: a `wait_for_reply` (until its timeout); call: the outcome of a
# place_call with gather; postponed: a send the guards held back; continue: more steps, now.
WaitKind = Literal["timer", "reply", "call", "postponed", "continue"]


def run_id(campaign: str, contact: str, trigger_event: str) -> str:
    """The run of `contact` for one trigger event: the same inputs give the same id, so a
    redelivered trigger finds the run it already started. The version is not part of it: a
    trigger redelivered after a new version was published must not start a second run."""
    digest = hashlib.sha256(f"{campaign}\x1f{contact}\x1f{trigger_event}".encode()).hexdigest()
    return f"{RUN_ID_PREFIX}{digest[:32]}"


def idempotency_key(run: str, step: str, visit: int) -> str:
    """One outbound action: the step's `visit`-th entry in the run. Executing it twice sends the
    same key twice, which the sender recognises."""
    return f"{run}:{step}:{visit}"


class _Frozen(BaseModel):
    # Built when a run is first read or validated, not at import (as flow.py's models).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


_DEFERRED = ConfigDict(defer_build=True)


class RunContact(_Frozen):
    """Who the run reaches, as it was when the run started (attributes follow `update_contact`)."""

    id: str = Field(min_length=1)
    name: str | None = None
    phone: str | None = Field(default=None, description="E.164; sms, whatsapp and calls go here")
    channels: dict[str, str] = Field(
        default_factory=dict, description="address per channel (telegram chat id, slack user...), over phone"
    )
    time_zone: str = Field(default="UTC", description="IANA zone: quiet hours and `wait until HH:MM` use it")
    attributes: dict[str, str] = Field(default_factory=dict)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def address(self, channel: str) -> str | None:
        if channel in self.channels:
            return self.channels[channel]
        return self.phone if channel in ("sms", "whatsapp", "call") else None


class RunTrigger(_Frozen):
    """What started the run: an event (its id), or a `runs` request (its id)."""

    event_id: str = Field(min_length=1)
    event_type: str | None = None
    conversation: str | None = Field(default=None, description="the conversation replies are correlated through")
    conversation_key: str | None = Field(
        default=None,
        description="the trigger event's thread key: its conversation, found later when routing had not "
        "threaded the event yet when the run started",
    )
    assignee: str | None = Field(default=None, description="the conversation's assigned responder")
    team: str | None = None


# --- inputs -------------------------------------------------------------------------------------


class TimerFired(_Frozen):
    kind: Literal["timer"] = "timer"
    sequence: int = Field(ge=0, description="the `sequence` of the wait it was scheduled for")


class Reply(_Frozen):
    kind: Literal["reply"] = "reply"
    event_id: str = Field(min_length=1, description="the reply's event: a redelivery carries the same")
    text: str = ""
    topics: list[str] = Field(default_factory=list)
    sentiment: float | None = Field(default=None, ge=-1, le=1)
    digits: str | None = None


class Outcome(_Frozen):
    kind: Literal["outcome"] = "outcome"
    idempotency_key: str = Field(description="the action's key: which step and visit it reports on")
    result: Literal["sent", "failed", "answered", "not_answered"]
    reason: str | None = None
    digits: str | None = Field(default=None, description="keypad input of a place_call with gather")


class Stop(_Frozen):
    kind: Literal["stop"] = "stop"
    reason: str = Field(min_length=1)


RunInput = Annotated[TimerFired | Reply | Outcome | Stop, Field(discriminator="kind")]
# Inputs arrive as JSON on a queue or from a schedule: `RUN_INPUT.validate_json(body)` picks
# the model by `kind`.
RUN_INPUT: TypeAdapter[TimerFired | Reply | Outcome | Stop] = TypeAdapter(RunInput, config=_DEFERRED)


# --- the run ------------------------------------------------------------------------------------


class Waiting(_Frozen):
    """What a waiting run waits for, since which `sequence` (a timer for another is stale)."""

    kind: WaitKind
    step: str
    until: AwareDatetime
    sequence: int
    reason: str | None = Field(default=None, description="for a postponed step: quiet_hours or frequency_cap")
    cap_postponements: int = Field(default=0, description="times the frequency cap held this step back in a row")
    # Where the question a `reply` wait waits on was asked, to tell which waiting run a reply answers.
    asked_on: str | None = Field(default=None, description="the channel of the run's last message or call")
    asked_to: str | None = Field(default=None, description="the contact's address on it")
    asked_via: str | None = Field(default=None, description="the connection its step named, if any")
    conversation: str | None = Field(default=None, description="the trigger's conversation")


class StepRecord(_Frozen):
    """One entry of a step: what came of it (`outcome`), where the run went next."""

    step: str
    type: str
    visit: int = Field(ge=1)
    at: AwareDatetime
    outcome: str = Field(description="requested, sent, failed, answered, not_answered, replied, timed_out, ...")
    reason: str | None = None
    next: str | None = None
    idempotency_key: str | None = None


class LastReply(_Frozen):
    """The reply the run's last wait_for_reply got, as branches test it."""

    text: str = ""
    topics: list[str] = Field(default_factory=list)
    sentiment: float | None = None


class Run(_Frozen):
    id: str
    tenant: str
    campaign: str
    campaign_name: str
    version: int = Field(ge=1, description="the version the run started on, and finishes on")
    contact: RunContact
    trigger: RunTrigger
    status: RunStatus
    current_step: str | None = Field(description="None once the run finished")
    sequence: int = Field(ge=0, description="moves on every change: the store writes on the one it read")
    waiting: Waiting | None = None
    wake_at: AwareDatetime | None = None
    visits: dict[str, int] = Field(default_factory=dict)
    steps_done: list[StepRecord] = Field(default_factory=list)
    steps_dropped: int = 0
    last_reply: LastReply | None = None
    last_digits: str | None = None
    immediate_steps: int = Field(default=0, description="steps run since the run last waited (loop guard)")
    seen_inputs: list[str] = Field(default_factory=list)
    started_at: AwareDatetime
    updated_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    end_reason: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


# --- actions ------------------------------------------------------------------------------------


class _Outbound(_Frozen):
    step: str
    idempotency_key: str


class SendMessageAction(_Outbound):
    kind: Literal["send_message"] = "send_message"
    channel: str
    to: str
    text: str
    connection: str | None = None


class PlaceCallAction(_Outbound):
    kind: Literal["place_call"] = "place_call"
    to: str
    say: str | None = None
    recording_url: str | None = None
    gather: Gather | None = None
    connection: str | None = None


class ConnectCallAction(_Outbound):
    kind: Literal["connect_call"] = "connect_call"
    to: str
    responder: Literal["assignee", "team", "number"]
    target: str | None = Field(description="the assignee's id (None: the conversation has none), the team, the number")
    connection: str | None = None


class NotifyAction(_Outbound):
    kind: Literal["notify"] = "notify"
    to: Literal["assignee", "team", "responder"]
    target: str | None = Field(description="the responder or team (an assignee's id; None when there is none)")
    text: str
    urgent: bool = False


class WebhookAction(_Outbound):
    kind: Literal["webhook"] = "webhook"
    url: str
    payload: dict[str, Any]


class UpdateContactAction(_Outbound):
    kind: Literal["update_contact"] = "update_contact"
    contact: str
    set: dict[str, str]
    remove: list[str]


class ScheduleAction(_Frozen):
    """Wake the run at `at` with TimerFired(sequence=`sequence`); `name` is unique per wait."""

    kind: Literal["schedule"] = "schedule"
    at: AwareDatetime
    sequence: int
    name: str


class EndAction(_Frozen):
    kind: Literal["end"] = "end"
    status: RunStatus
    reason: str | None = None
    converted: bool = False


Action = Annotated[
    SendMessageAction
    | PlaceCallAction
    | ConnectCallAction
    | NotifyAction
    | WebhookAction
    | UpdateContactAction
    | ScheduleAction
    | EndAction,
    Field(discriminator="kind"),
]
ACTIONS: TypeAdapter[list[Any]] = TypeAdapter(list[Action], config=_DEFERRED)  # actions kept with the state, read back
OUTBOUND_KINDS = ("send_message", "place_call", "connect_call", "notify", "webhook", "update_contact")


class CounterMove(_Frozen):
    """One per-step count to add for the run's version."""

    step: str
    counter: Counter


class Advanced(_Frozen):
    """What `start` or `advance` decided: the new state (unchanged, same `sequence`, when the
    input was ignored), the actions to execute in order, and the counts they move."""

    run: Run
    actions: list[Action] = Field(default_factory=list)
    counters: list[CounterMove] = Field(default_factory=list)
    ignored: str | None = Field(default=None, description="why the input changed nothing (stale, duplicate...)")
