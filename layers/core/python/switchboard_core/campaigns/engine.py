"""The campaign run engine: pure logic from (run state, input) to (new state, actions).

`start` begins a run on one version's flow; `advance` feeds it one input (a timer, a reply, a
step's outcome, a stop). Both run the flow's immediate steps until the run has to wait (a
`wait`, a `wait_for_reply`, a call whose keypad input a branch needs, a send the guards
postponed) or ends, and return the actions the caller executes in order: sends, calls,
notifications, webhooks, contact updates, one wake-up, the end. Nothing here does I/O: the
caller reads the run, the flow of the run's own version and the guards' facts, calls the
engine, writes the new state conditional on the old `sequence`, then executes the actions
(each outbound one with an idempotency key, so a retry after a crash sends nothing twice).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from string import Template
from typing import Any, Literal
from zoneinfo import ZoneInfo

from switchboard_core.campaigns.flow import (
    ATTRIBUTE_PLACEHOLDER,
    MAX_STEPS,
    TEMPLATE_VARIABLES,
    Branch,
    ConnectCall,
    End,
    Flow,
    Notify,
    PlaceCall,
    SendMessage,
    UpdateContact,
    Wait,
    WaitForReply,
    Webhook,
    When,
    parse_duration,
)
from switchboard_core.campaigns.guards import CALL_CHANNEL, EVERY_CHANNEL, SendGuards, check_send, next_local_time
from switchboard_core.campaigns.models import Campaign
from switchboard_core.campaigns.runs import (
    MAX_HISTORY,
    MAX_SEEN_INPUTS,
    Action,
    Advanced,
    ConnectCallAction,
    Counter,
    CounterMove,
    EndAction,
    LastReply,
    NotifyAction,
    Outcome,
    PlaceCallAction,
    Reply,
    Run,
    RunContact,
    RunInput,
    RunStatus,
    RunTrigger,
    ScheduleAction,
    SendMessageAction,
    StepRecord,
    Stop,
    TimerFired,
    UpdateContactAction,
    Waiting,
    WaitKind,
    WebhookAction,
    idempotency_key,
    run_id,
)

# Steps one call runs at most before it hands the rest to an immediate wake-up: bounds the
# work of one invocation however long a flow's chain of immediate steps is.
MAX_STEPS_PER_CALL = 50
# Steps a run may take without waiting at all: a path longer than the flow has steps repeats
# one, so it is a loop without a wait (check_flow refuses those; this guards anyway).
MAX_IMMEDIATE_STEPS = MAX_STEPS + 1
# How long a place_call with gather waits for its outcome before it goes on without digits.
CALL_OUTCOME_TIMEOUT = timedelta(minutes=15)
# Outcome results that settle a step (a second report of one is a redelivery).
SETTLED = ("sent", "failed", "answered", "not_answered")  # not "requested", nor a call's "no_outcome"
OUTCOME_COUNTER: dict[str, Counter] = {"sent": "sent", "answered": "sent", "failed": "failed", "not_answered": "failed"}


class RunError(ValueError):
    """An input the engine cannot apply: `code` is run_finished, unknown_step or unknown_action."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- templates and conditions -------------------------------------------------------------------


def render(text: str, run: Run | _Work) -> str:
    """A step's text with its ${placeholders} filled from the contact, the trigger, the campaign
    and the last reply (flow.py's names; an absent value renders empty)."""
    contact, trigger = run.contact, run.trigger
    values = {
        "name": contact.name or "",
        "phone": contact.phone or "",
        "campaign": run.campaign_name,
        "assignee": trigger.assignee or "",
        "team": trigger.team or "",
        "reply": run.last_reply.text if run.last_reply else "",
    }
    template = Template(text)
    for name in template.get_identifiers():
        if name.startswith(ATTRIBUTE_PLACEHOLDER) and name not in TEMPLATE_VARIABLES:
            values[name] = contact.attributes.get(name[len(ATTRIBUTE_PLACEHOLDER) :], "")
    return template.substitute(values)


def _phrase(words: str) -> re.Pattern[str]:
    parts = [re.escape(part) for part in words.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)", re.IGNORECASE)


def case_matches(when: When, reply: LastReply | None, digits: str | None, attributes: dict[str, str]) -> bool:
    """Whether one branch condition holds, exactly as flow.py defines them."""
    if when.reply_words is not None:
        return reply is not None and any(_phrase(words).search(reply.text) for words in when.reply_words)
    if when.topic is not None:
        return reply is not None and when.topic.casefold() in {topic.casefold() for topic in reply.topics}
    if when.sentiment is not None:
        if reply is None or reply.sentiment is None:
            return False
        above, below = when.sentiment.above, when.sentiment.below
        return (above is None or reply.sentiment > above) and (below is None or reply.sentiment < below)
    if when.digits is not None:
        return digits == when.digits
    test = when.attribute
    if test is None:  # pragma: no cover - When requires exactly one condition
        return False
    value = attributes.get(test.name)
    if test.exists is not None:
        return (value is not None) == test.exists
    if test.one_of is not None:
        return value in test.one_of
    return value == test.equals


def channels_of(flow: Flow) -> set[str]:
    """The channels a flow reaches the contact on (`call` for its calls): a STOP on one of them
    ends the contact's runs of this flow."""
    found: set[str] = set()
    for step in flow.steps.values():
        if isinstance(step, SendMessage):
            found.add(step.channel)
        elif isinstance(step, PlaceCall | ConnectCall):
            found.add(CALL_CHANNEL)
    return found


def wait_until(step: Wait, zone: ZoneInfo, now: datetime) -> datetime:
    if step.duration is not None:
        return now + parse_duration(step.duration)
    assert step.until is not None  # Wait requires exactly one
    if re.fullmatch(r"\d\d:\d\d", step.until):
        hours, minutes = (int(part) for part in step.until.split(":"))
        return next_local_time(now, time(hours, minutes), zone)
    return datetime.fromisoformat(step.until)


# --- the working state of one call --------------------------------------------------------------


@dataclass
class _Work:
    """The run being changed by one call (Run is frozen): copied in, built back by `result`."""

    run: Run
    guards: SendGuards
    now: datetime
    status: RunStatus = RunStatus.ACTIVE
    current: str | None = None
    waiting: Waiting | None = None
    contact: RunContact = field(init=False)
    visits: dict[str, int] = field(init=False)
    steps_done: list[StepRecord] = field(init=False)
    last_reply: LastReply | None = None
    last_digits: str | None = None
    immediate: int = 0
    seen: list[str] = field(init=False)
    ended_at: datetime | None = None
    end_reason: str | None = None
    actions: list[Action] = field(default_factory=list)
    counters: list[CounterMove] = field(default_factory=list)

    def __post_init__(self) -> None:
        run = self.run
        self.status, self.current, self.waiting = run.status, run.current_step, run.waiting
        self.contact, self.visits, self.steps_done = run.contact, dict(run.visits), list(run.steps_done)
        self.last_reply, self.last_digits, self.immediate = run.last_reply, run.last_digits, run.immediate_steps
        self.seen, self.ended_at, self.end_reason = list(run.seen_inputs), run.ended_at, run.end_reason

    @property
    def trigger(self) -> RunTrigger:
        return self.run.trigger

    @property
    def campaign_name(self) -> str:
        return self.run.campaign_name

    @property
    def sequence(self) -> int:
        """The sequence of the state this call produces."""
        return self.run.sequence + 1

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.contact.time_zone)

    def count(self, step: str, counter: Counter) -> None:
        self.counters.append(CounterMove(step=step, counter=counter))

    def record(self, step: str, kind: str, visit: int, outcome: str, **extra: Any) -> None:
        self.steps_done.append(StepRecord(step=step, type=kind, visit=visit, at=self.now, outcome=outcome, **extra))

    def key(self, step: str) -> str:
        return idempotency_key(self.run.id, step, self.visits[step])

    def wait(self, kind: WaitKind, step: str, until: datetime, reason: str | None = None, cap: int = 0) -> None:
        self.status = RunStatus.ACTIVE if kind == "continue" else RunStatus.WAITING
        self.current = step
        if kind != "continue":
            self.immediate = 0
        self.waiting = Waiting(
            kind=kind, step=step, until=until, sequence=self.sequence, reason=reason, cap_postponements=cap
        )
        self.actions.append(ScheduleAction(at=until, sequence=self.sequence, name=f"{self.run.id}-{self.sequence}"))

    def finish(self, status: RunStatus, reason: str | None, converted: bool = False) -> None:
        self.status, self.current, self.waiting = status, None, None
        self.ended_at, self.end_reason = self.now, reason
        self.actions.append(EndAction(status=status, reason=reason, converted=converted))

    def result(self, ignored: str | None = None) -> Advanced:
        dropped = max(0, len(self.steps_done) - MAX_HISTORY)
        run = Run(
            **self.run.model_dump(
                exclude={
                    "status",
                    "current_step",
                    "sequence",
                    "waiting",
                    "wake_at",
                    "contact",
                    "visits",
                    "steps_done",
                    "steps_dropped",
                    "last_reply",
                    "last_digits",
                    "immediate_steps",
                    "seen_inputs",
                    "updated_at",
                    "ended_at",
                    "end_reason",
                }
            ),
            status=self.status,
            current_step=self.current,
            sequence=self.sequence,
            waiting=self.waiting,
            wake_at=self.waiting.until if self.waiting else None,
            contact=self.contact,
            visits=self.visits,
            steps_done=self.steps_done[dropped:],
            steps_dropped=self.run.steps_dropped + dropped,
            last_reply=self.last_reply,
            last_digits=self.last_digits,
            immediate_steps=self.immediate,
            seen_inputs=self.seen[-MAX_SEEN_INPUTS:],
            updated_at=self.now,
            ended_at=self.ended_at,
            end_reason=self.end_reason,
        )
        return Advanced(run=run, actions=self.actions, counters=self.counters, ignored=ignored)


# --- running steps ------------------------------------------------------------------------------


def _step(flow: Flow, step_id: str, version: int) -> Any:
    if step_id not in flow.steps:
        raise RunError("unknown_step", f"step {step_id!r} is not in the flow given for version {version}")
    return flow.steps[step_id]


def _run_from(work: _Work, flow: Flow, step_id: str | None, *, same_visit: bool = False) -> None:
    """Run steps from `step_id` until the run waits or ends (or this call's bound is reached).
    `same_visit` re-runs a postponed step as the visit it was (its idempotency key unchanged)."""
    for _ in range(MAX_STEPS_PER_CALL):
        if step_id is None:
            return
        step = _step(flow, step_id, work.run.version)
        work.current = step_id
        if not same_visit:
            work.visits[step_id] = work.visits.get(step_id, 0) + 1
            work.count(step_id, "entered")
            work.immediate += 1
        same_visit = False
        if work.immediate > MAX_IMMEDIATE_STEPS:
            work.record(step_id, step.type, work.visits[step_id], "stopped", reason="loop")
            work.finish(RunStatus.STOPPED, f"more than {MAX_IMMEDIATE_STEPS} steps without a wait (a loop)")
            return
        step_id = _execute(work, flow, step_id, step)
    if step_id is not None:  # more to do: continue in a fresh call, right away
        work.wait("continue", step_id, work.now)


def _guarded(work: _Work, step_id: str, step: Any, channel: str) -> bool:
    """Apply the guards to a send or call: True when it may go; otherwise the run was stopped
    or the step postponed (to be re-run, same visit, when the wake-up fires)."""
    previous = work.waiting
    cap = previous.cap_postponements if previous and previous.kind == "postponed" and previous.step == step_id else 0
    verdict = check_send(work.guards, channel, work.zone, work.now, cap)
    visit = work.visits[step_id]
    if verdict.decision == "go":
        return True
    if verdict.decision == "stop":
        work.record(step_id, step.type, visit, "stopped", reason=verdict.reason)
        work.finish(RunStatus.STOPPED, verdict.reason)
        return False
    assert verdict.until is not None
    work.record(step_id, step.type, visit, "postponed", reason=verdict.reason)
    work.wait(
        "postponed", step_id, verdict.until, verdict.reason, cap + 1 if verdict.reason == "frequency_cap" else cap
    )
    return False


def _execute(work: _Work, flow: Flow, step_id: str, step: Any) -> str | None:
    """Do one step; the step to run next, or None when the run now waits or has ended."""
    visit = work.visits[step_id]
    contact = work.contact
    if isinstance(step, SendMessage | PlaceCall | ConnectCall):
        channel = step.channel if isinstance(step, SendMessage) else CALL_CHANNEL
        if not _guarded(work, step_id, step, channel):
            return None
        to = contact.address(channel)
        if to is None:
            reason = f"the contact has no address for {channel}"
            work.record(step_id, step.type, visit, "failed", reason=reason, next=step.next)
            work.count(step_id, "failed")
            return step.next
        key = work.key(step_id)
        action: Action
        if isinstance(step, SendMessage):
            action = SendMessageAction(
                step=step_id,
                idempotency_key=key,
                channel=channel,
                to=to,
                text=render(step.text, work),
                connection=step.connection,
            )
        elif isinstance(step, PlaceCall):
            action = PlaceCallAction(
                step=step_id,
                idempotency_key=key,
                to=to,
                say=render(step.say, work) if step.say is not None else None,
                recording_url=step.recording_url,
                gather=step.gather,
                connection=step.connection,
            )
        else:
            responder = step.responder
            kind: Literal["assignee", "team", "number"] = (
                "assignee" if responder.assignee else "team" if responder.team is not None else "number"
            )
            target = work.trigger.assignee if responder.assignee else responder.team or responder.number
            action = ConnectCallAction(
                step=step_id,
                idempotency_key=key,
                to=to,
                responder=kind,
                target=target,
                connection=step.connection,
            )
        work.actions.append(action)
        if isinstance(step, PlaceCall) and step.gather is not None:
            # A branch will test the keypad input: wait for the call's outcome (or its timeout).
            work.last_digits = None
            work.record(step_id, step.type, visit, "requested", idempotency_key=key)
            work.wait("call", step_id, work.now + CALL_OUTCOME_TIMEOUT)
            return None
        work.record(step_id, step.type, visit, "requested", idempotency_key=key, next=step.next)
        return step.next
    if isinstance(step, Wait):
        until = wait_until(step, work.zone, work.now)
        if until <= work.now:
            work.record(step_id, step.type, visit, "waited", reason="the time had passed", next=step.next)
            return step.next
        work.record(step_id, step.type, visit, "waiting")
        work.wait("timer", step_id, until)
        return None
    if isinstance(step, WaitForReply):
        work.last_reply = None  # a branch after a timeout must not test an older reply
        work.record(step_id, step.type, visit, "waiting")
        work.wait("reply", step_id, work.now + parse_duration(step.timeout))
        assert work.waiting is not None
        work.waiting = work.waiting.model_copy(update=_question(work, flow))
        return None
    if isinstance(step, Branch):
        for index, case in enumerate(step.cases):
            if case_matches(case.when, work.last_reply, work.last_digits, contact.attributes):
                work.record(step_id, step.type, visit, f"case {index}", next=case.next)
                return case.next
        work.record(step_id, step.type, visit, "default", next=step.default)
        return step.default
    if isinstance(step, Notify):
        recipient = step.to
        to_kind: Literal["assignee", "team", "responder"] = (
            "assignee" if recipient.assignee else "team" if recipient.team is not None else "responder"
        )
        to_target = work.trigger.assignee if recipient.assignee else recipient.team or recipient.responder
        key = work.key(step_id)
        work.actions.append(
            NotifyAction(
                step=step_id,
                idempotency_key=key,
                to=to_kind,
                target=to_target,
                text=render(step.text, work),
                urgent=step.urgent,
            )
        )
        work.record(step_id, step.type, visit, "requested", idempotency_key=key, next=step.next)
        return step.next
    if isinstance(step, Webhook):
        key = work.key(step_id)
        body = {
            "campaign": work.run.campaign,
            "version": work.run.version,
            "run": work.run.id,
            "step": step_id,
            "contact": contact.id,
            "payload": step.payload,
        }
        work.actions.append(WebhookAction(step=step_id, idempotency_key=key, url=step.url, payload=body))
        work.record(step_id, step.type, visit, "requested", idempotency_key=key, next=step.next)
        return step.next
    if isinstance(step, UpdateContact):
        key = work.key(step_id)
        work.actions.append(
            UpdateContactAction(
                step=step_id, idempotency_key=key, contact=contact.id, set=dict(step.set), remove=list(step.remove)
            )
        )
        # Later steps of this run (branches on attributes, ${attr_...}) see the change at once.
        attributes = {k: v for k, v in contact.attributes.items() if k not in step.remove} | dict(step.set)
        work.contact = contact.model_copy(update={"attributes": attributes})
        work.record(step_id, step.type, visit, "requested", idempotency_key=key, next=step.next)
        return step.next
    if isinstance(step, End):
        work.record(step_id, step.type, visit, "converted" if step.converted else "ended")
        if step.converted:
            work.count(step_id, "converted")
        work.finish(RunStatus.COMPLETED, None, converted=step.converted)
        return None
    raise RunError("unknown_step", f"step {step_id!r} has a type the engine does not run: {step.type!r}")


# --- the two entry points -----------------------------------------------------------------------


def start(
    flow: Flow,
    campaign: Campaign,
    version: int,
    contact: RunContact,
    trigger: RunTrigger,
    now: datetime,
    guards: SendGuards | None = None,
) -> Advanced:
    """A new run of `campaign` at `version` (whose flow is `flow`) for `contact`, started by
    `trigger`. Its id depends only on the campaign, the contact and the trigger's event, so the
    caller's conditional put of the run refuses a second start by a redelivered trigger."""
    run = Run(
        id=run_id(campaign.id, contact.id, trigger.event_id),
        tenant=campaign.tenant,
        campaign=campaign.id,
        campaign_name=campaign.name,
        version=version,
        contact=contact,
        trigger=trigger,
        status=RunStatus.ACTIVE,
        current_step=flow.start,
        sequence=0,  # the state start returns is sequence 1
        started_at=now,
        updated_at=now,
    )
    work = _Work(run=run, guards=guards or SendGuards(), now=now)
    _run_from(work, flow, flow.start)
    return work.result()


def advance(run: Run, flow: Flow, event: RunInput, now: datetime, guards: SendGuards | None = None) -> Advanced:
    """Apply one input to `run`, whose own version's flow is `flow`. An input that changes
    nothing (a stale or early timer, a redelivered reply or outcome, a reply nobody waits for)
    returns the run unchanged, same `sequence`, with `ignored` saying why. RunError for an input
    the run cannot take: a reply or stop for a finished run, a step the flow lacks, an outcome
    for an action the run never requested."""
    work = _Work(run=run, guards=guards or SendGuards(), now=now)
    if isinstance(event, Outcome):
        return _outcome(work, flow, event)
    if isinstance(event, TimerFired):
        return _timer(work, flow, event)
    if isinstance(event, Reply) and event.event_id in run.seen_inputs:  # before finished: a redelivery is no error
        return _unchanged(run, f"duplicate reply {event.event_id}: already applied")
    if run.finished:
        raise RunError("run_finished", f"run {run.id} is {run.status.value}; it takes no more {event.kind}")
    if run.current_step is not None:
        _step(flow, run.current_step, run.version)
    if isinstance(event, Stop):
        if run.current_step is not None:
            step = flow.steps[run.current_step]
            work.record(
                run.current_step, step.type, run.visits.get(run.current_step, 1), "stopped", reason=event.reason
            )
        work.finish(RunStatus.STOPPED, event.reason)
        return work.result()
    return _reply(work, flow, event)


def _opted_out_of_flow(work: _Work, flow: Flow) -> bool:
    """Stop the run when the contact opted out of a channel its flow uses (a STOP reply ends
    the contact's runs on that channel at once, not at their next send); True when stopped."""
    used = channels_of(flow)
    refused = sorted(used if EVERY_CHANNEL in work.guards.opted_out else used & work.guards.opted_out)
    if not refused:
        return False
    reason = f"the contact opted out of {', '.join(refused)}"
    current = work.run.current_step
    if current is not None and current in flow.steps:
        work.record(current, flow.steps[current].type, work.run.visits.get(current, 1), "stopped", reason=reason)
    work.finish(RunStatus.STOPPED, reason)
    return True


def _question(work: _Work, flow: Flow) -> dict[str, str | None]:
    """Where the question a wait_for_reply waits on went: the run's last message or call (its
    channel, the contact's address there, the connection its step named) and the trigger's
    conversation; the caller gives a reply to the run it answers."""
    asked: dict[str, str | None] = {"conversation": work.trigger.conversation}
    for record in reversed(work.steps_done):
        step = flow.steps.get(record.step)
        if record.idempotency_key and isinstance(step, SendMessage | PlaceCall | ConnectCall):
            channel = step.channel if isinstance(step, SendMessage) else CALL_CHANNEL
            asked |= {"asked_on": channel, "asked_to": work.contact.address(channel), "asked_via": step.connection}
            break
    return asked


def _unchanged(run: Run, reason: str, actions: list[Action] | None = None) -> Advanced:
    return Advanced(run=run, actions=actions or [], ignored=reason)


def _timer(work: _Work, flow: Flow, timer: TimerFired) -> Advanced:
    run, waiting = work.run, work.run.waiting
    if run.finished:
        return _unchanged(run, f"stale timer: the run is {run.status.value}")
    if waiting is None or waiting.sequence != timer.sequence:
        return _unchanged(run, f"stale timer: scheduled for sequence {timer.sequence}, the run waits since another")
    if work.now < waiting.until:  # fired early: keep the same wake-up
        again = ScheduleAction(at=waiting.until, sequence=waiting.sequence, name=f"{run.id}-{waiting.sequence}")
        return _unchanged(run, "early timer: the wait lasts until " + waiting.until.isoformat(), [again])
    step = _step(flow, waiting.step, run.version)
    visit = run.visits.get(waiting.step, 1)
    if _opted_out_of_flow(work, flow):
        return work.result()
    if waiting.kind == "postponed":
        _run_from(work, flow, waiting.step, same_visit=True)
    elif waiting.kind == "continue":
        _run_from(work, flow, waiting.step)
    elif waiting.kind == "reply":
        work.record(waiting.step, step.type, visit, "timed_out", next=step.on_timeout)
        _run_from(work, flow, step.on_timeout)
    elif waiting.kind == "call":
        key = idempotency_key(run.id, waiting.step, visit)
        for index, record in enumerate(work.steps_done):  # a late outcome can still settle it
            if record.idempotency_key == key:
                work.steps_done[index] = record.model_copy(
                    update={"outcome": "no_outcome", "reason": "no outcome in time", "next": step.next}
                )
        _run_from(work, flow, step.next)
    else:
        work.record(waiting.step, step.type, visit, "waited", next=step.next)
        _run_from(work, flow, step.next)
    return work.result()


def _reply(work: _Work, flow: Flow, reply: Reply) -> Advanced:
    run, waiting = work.run, work.run.waiting
    if waiting is None or waiting.kind != "reply":
        return _unchanged(run, "the run is not waiting for a reply")
    step = _step(flow, waiting.step, run.version)
    work.seen.append(reply.event_id)
    if _opted_out_of_flow(work, flow):  # the reply was the STOP itself, or came after one
        return work.result()
    work.last_reply = LastReply(text=reply.text, topics=list(reply.topics), sentiment=reply.sentiment)
    if reply.digits is not None:
        work.last_digits = reply.digits
    work.count(waiting.step, "replied")
    work.record(waiting.step, step.type, run.visits.get(waiting.step, 1), "replied", next=step.next)
    work.waiting = None
    _run_from(work, flow, step.next)
    return work.result()


def _outcome(work: _Work, flow: Flow, outcome: Outcome) -> Advanced:
    """Record what came of an outbound action; a place_call the run waits on then moves on."""
    run = work.run
    found = next(
        (
            index
            for index in range(len(run.steps_done) - 1, -1, -1)
            if run.steps_done[index].idempotency_key == outcome.idempotency_key
        ),
        None,
    )
    if found is None:
        raise RunError(
            "unknown_action",
            f"run {run.id} requested no action {outcome.idempotency_key!r} (or no longer remembers it)",
        )
    record = run.steps_done[found]
    if record.outcome in SETTLED:
        return _unchanged(run, f"duplicate outcome: {outcome.idempotency_key} is already {record.outcome}")
    work.steps_done[found] = record.model_copy(update={"outcome": outcome.result, "reason": outcome.reason})
    work.count(record.step, OUTCOME_COUNTER[outcome.result])
    waiting = run.waiting
    if (
        not run.finished
        and waiting is not None
        and waiting.kind == "call"
        and waiting.step == record.step
        and run.visits.get(record.step) == record.visit
    ):
        step = _step(flow, record.step, run.version)
        work.last_digits = outcome.digits
        work.steps_done[found] = work.steps_done[found].model_copy(update={"next": step.next})
        work.waiting = None
        _run_from(work, flow, step.next)
    return work.result()
