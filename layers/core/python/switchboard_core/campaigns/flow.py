"""A campaign's flow: its steps, their fields, and the checks a flow passes before it is saved.

`flow` is `{"start": "<step id>", "steps": {"<step id>": {"type": ..., "next": ..., ...}}}`.
Each step is one pydantic model, chosen by its `type` (a discriminated union, so an unknown
type is refused naming the step). The models check each step on its own; `check_flow` then
checks the graph: `start` and every `next` name a step that exists, every step is reachable
from `start`, and every cycle passes through a `wait` or `wait_for_reply` step (a flow that
loops without waiting would send to a customer as fast as it can run). Every problem names
its field as `flow.steps.<id>.<field>`, so one 400 lists them all.
"""

from __future__ import annotations

import graphlib
import re
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from string import Template
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from switchboard_core.campaigns.keypad import Gather

Problems = list[dict[str, str]]

STEP_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"  # connections, teams, responders, attributes
MAX_STEPS = 200
MAX_CASES = 20
MAX_WAIT = timedelta(days=365)
CHANNELS = ("sms", "whatsapp", "messenger", "telegram", "slack")
WAITING_TYPES = ("wait", "wait_for_reply")
# What a text may say, as ${name} placeholders (string.Template syntax, as auto-replies have it);
# ${attr_<key>} is the contact's attribute <key>.
TEMPLATE_VARIABLES = ("name", "phone", "campaign", "assignee", "team", "reply")
ATTRIBUTE_PLACEHOLDER = "attr_"

StepId = Annotated[str, StringConstraints(pattern=STEP_ID_PATTERN)]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
E164 = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]

# ISO 8601 durations in weeks, days, hours, minutes and seconds. Years and months are refused:
# their length depends on the calendar, and a wait must mean the same time whenever it starts.
_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration (`PT30M`, `P2D`, `P1DT12H`, `P1W`) as a timedelta; ValueError otherwise."""
    found = _DURATION.match(text)
    if not found or text in ("P", "PT") or text.endswith("T"):
        if re.match(r"^P(\d+Y|.*\d+M.*T|\d+M)", text):
            raise ValueError(f"{text!r}: years and months have no fixed length; use weeks (W) or days (D)")
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT30M, PT2H, P1D or P1DT12H")
    parts = {name: float(value) for name, value in found.groupdict().items() if value is not None}
    duration = timedelta(**parts)
    if duration <= timedelta(0):
        raise ValueError(f"{text!r} is not longer than zero")
    if duration > MAX_WAIT:
        raise ValueError(f"{text!r} is longer than {MAX_WAIT.days} days")
    return duration


Duration = Annotated[str, StringConstraints(max_length=32)]


def _checked_duration(value: str) -> str:
    parse_duration(value)
    return value


def _checked_template(value: str) -> str:
    """Refuse a text whose placeholders are malformed or unknown (a typo would be sent as is)."""
    template = Template(value)
    if not template.is_valid():
        raise ValueError("invalid placeholder: write ${name} for a variable and $$ for a dollar sign")
    unknown = sorted(
        name
        for name in set(template.get_identifiers())
        if name not in TEMPLATE_VARIABLES
        and not (name.startswith(ATTRIBUTE_PLACEHOLDER) and len(name) > len(ATTRIBUTE_PLACEHOLDER))
    )
    if unknown:
        known = ", ".join(f"${{{name}}}" for name in TEMPLATE_VARIABLES)
        raise ValueError(f"unknown placeholder(s) {', '.join(unknown)}; known: {known}, ${{attr_<attribute>}}")
    return value


def _exactly_one(model: BaseModel, fields: tuple[str, ...]) -> None:
    given = [name for name in fields if getattr(model, name) is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(fields)} (got {', '.join(given) or 'none'})")


class _Strict(BaseModel):
    # Built when a flow is first validated, not at import: a campaigns message that concerns no
    # run (most bus events) never validates one, and the cold start is shorter (docs/benchmarks.md).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# --- what a branch can test ---------------------------------------------------------------------


class SentimentRange(_Strict):
    """The customer's reply's sentiment (-1 negative .. 1 positive), as routing senses it."""

    above: float | None = Field(default=None, ge=-1, le=1, description="sentiment greater than this")
    below: float | None = Field(default=None, ge=-1, le=1, description="sentiment less than this")

    @model_validator(mode="after")
    def _bounded(self) -> SentimentRange:
        if self.above is None and self.below is None:
            raise ValueError("give above, below or both")
        if self.above is not None and self.below is not None and self.above >= self.below:
            raise ValueError("above must be less than below")
        return self


class AttributeTest(_Strict):
    """A contact attribute: equal to a value, one of several, or present at all."""

    name: Name
    equals: str | None = Field(default=None, max_length=256)
    one_of: list[Annotated[str, StringConstraints(max_length=256)]] | None = Field(
        default=None, min_length=1, max_length=50
    )
    exists: bool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> AttributeTest:
        _exactly_one(self, ("equals", "one_of", "exists"))
        return self


class When(_Strict):
    """One condition, on the last reply (its words, topic or sentiment), the keypad digits of the
    last call, or the contact's attributes. Exactly one key."""

    reply_words: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="the reply holds any of these words or phrases (case-insensitive, whole words)",
    )
    topic: Name | None = Field(default=None, description="routing sensed this topic (the taxonomy's) in the reply")
    sentiment: SentimentRange | None = None
    digits: Annotated[str, StringConstraints(pattern=r"^[0-9*#]{1,16}$")] | None = Field(
        default=None, description="the keypad input of the last place_call's gather, exactly"
    )
    attribute: AttributeTest | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> When:
        _exactly_one(self, ("reply_words", "topic", "sentiment", "digits", "attribute"))
        return self


class Case(_Strict):
    when: When
    next: StepId


class CallTarget(_Strict):
    """Who a call is bridged to: the contact's assignee, the nearest available of a team, or a number."""

    assignee: Literal[True] | None = None
    team: Name | None = None
    number: E164 | None = None

    @model_validator(mode="after")
    def _one(self) -> CallTarget:
        _exactly_one(self, ("assignee", "team", "number"))
        return self


class NotifyTarget(_Strict):
    """Who a notification goes to (through the notification function's contact points)."""

    assignee: Literal[True] | None = None
    team: Name | None = None
    responder: Name | None = None

    @model_validator(mode="after")
    def _one(self) -> NotifyTarget:
        _exactly_one(self, ("assignee", "team", "responder"))
        return self


# --- the steps ----------------------------------------------------------------------------------


class SendMessage(_Strict):
    type: Literal["send_message"]
    channel: Literal["sms", "whatsapp", "messenger", "telegram", "slack"]
    text: str = Field(min_length=1, max_length=1600, description="a template: ${placeholders}")
    connection: Name | None = Field(default=None, description="the connection to send through (default: the tenant's)")
    next: StepId

    _template = field_validator("text")(_checked_template)


class PlaceCall(_Strict):
    type: Literal["place_call"]
    say: str | None = Field(default=None, min_length=1, max_length=1000, description="text to speech (a template)")
    recording_url: str | None = Field(default=None, max_length=2048, pattern=r"^https://", description="audio to play")
    gather: Gather | None = Field(default=None, description="keypad input a branch can test (`digits`)")
    connection: Name | None = None
    next: StepId

    @field_validator("say")
    @classmethod
    def _say(cls, value: str | None) -> str | None:
        return None if value is None else _checked_template(value)

    @model_validator(mode="after")
    def _one_message(self) -> PlaceCall:
        _exactly_one(self, ("say", "recording_url"))
        return self


class ConnectCall(_Strict):
    type: Literal["connect_call"]
    responder: CallTarget
    connection: Name | None = None
    next: StepId


class Wait(_Strict):
    type: Literal["wait"]
    duration: Duration | None = Field(default=None, description="ISO 8601: PT30M, PT2H, P1D")
    until: str | None = Field(
        default=None,
        max_length=64,
        description="a moment (ISO 8601 with an offset), or a time of day HH:MM in the contact's zone",
    )
    next: StepId

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return None if value is None else _checked_duration(value)

    @field_validator("until")
    @classmethod
    def _until(cls, value: str | None) -> str | None:
        if value is None or re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
            return value
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise ValueError("must be HH:MM (the contact's time of day) or an ISO 8601 time with an offset")
        return value

    @model_validator(mode="after")
    def _one(self) -> Wait:
        _exactly_one(self, ("duration", "until"))
        return self


class WaitForReply(_Strict):
    type: Literal["wait_for_reply"]
    timeout: Duration = Field(description="ISO 8601: how long to wait for the customer's reply")
    next: StepId = Field(description="where a reply goes")
    on_timeout: StepId = Field(description="where the flow goes when no reply came in time")

    _duration = field_validator("timeout")(_checked_duration)


class Branch(_Strict):
    type: Literal["branch"]
    cases: list[Case] = Field(min_length=1, max_length=MAX_CASES, description="tried in order; the first match wins")
    default: StepId = Field(description="where the flow goes when no case matches")


class Notify(_Strict):
    type: Literal["notify"]
    to: NotifyTarget
    text: str = Field(min_length=1, max_length=1000, description="a template: ${placeholders}")
    urgent: bool = False
    next: StepId

    _template = field_validator("text")(_checked_template)


class Webhook(_Strict):
    type: Literal["webhook"]
    url: str = Field(min_length=1, max_length=2048, description="checked against the SSRF rules when saved and sent")
    payload: dict[str, Any] = Field(default_factory=dict, description="sent with the run, contact and step, signed")
    next: StepId


class UpdateContact(_Strict):
    type: Literal["update_contact"]
    set: dict[Name, Annotated[str, StringConstraints(max_length=256)]] = Field(default_factory=dict, max_length=50)
    remove: list[Name] = Field(default_factory=list, max_length=50)
    next: StepId

    @model_validator(mode="after")
    def _changes(self) -> UpdateContact:
        if not self.set and not self.remove:
            raise ValueError("give attributes to set, to remove, or both")
        both = sorted(set(self.set) & set(self.remove))
        if both:
            raise ValueError(f"attribute(s) {', '.join(both)} both set and removed")
        return self


class End(_Strict):
    type: Literal["end"]
    converted: bool = Field(default=False, description="count a run that ends here as converted")


Step = Annotated[
    SendMessage | PlaceCall | ConnectCall | Wait | WaitForReply | Branch | Notify | Webhook | UpdateContact | End,
    Field(discriminator="type"),
]
STEP_TYPES = (
    "send_message",
    "place_call",
    "connect_call",
    "wait",
    "wait_for_reply",
    "branch",
    "notify",
    "webhook",
    "update_contact",
    "end",
)


class Flow(_Strict):
    start: StepId
    steps: dict[StepId, Step] = Field(min_length=1, max_length=MAX_STEPS)


class Trigger(_Strict):
    event_pattern: dict[str, Any] = Field(description="an EventBridge event pattern; the tenant is ANDed in")


# --- the graph ----------------------------------------------------------------------------------


def edges(step: Any) -> Iterator[tuple[str, str]]:
    """(field, target step id) of every way out of `step`."""
    if isinstance(step, Branch):
        for index, case in enumerate(step.cases):
            yield f"cases.{index}.next", case.next
        yield "default", step.default
        return
    if getattr(step, "next", None) is not None:
        yield "next", step.next
    if isinstance(step, WaitForReply):
        yield "on_timeout", step.on_timeout


def _problem(field: str, problem: str) -> dict[str, str]:
    return {"field": field, "in": "body", "problem": problem}


def graph_problems(flow: Flow) -> Problems:
    """Dangling targets, unreachable steps and cycles without a wait, each naming its step."""
    problems: Problems = []
    steps = flow.steps
    if flow.start not in steps:
        problems.append(_problem("flow.start", f"names step {flow.start!r}, which is not in steps"))
    for step_id, step in steps.items():
        for field, target in edges(step):
            if target not in steps:
                problems.append(
                    _problem(f"flow.steps.{step_id}.{field}", f"names step {target!r}, which is not in steps")
                )
    order = reachable(flow)
    if flow.start in steps:
        for step_id in steps:
            if step_id not in order:
                problems.append(
                    _problem(f"flow.steps.{step_id}", f"is not reachable from the start step {flow.start!r}")
                )
    problems.extend(cycles_without_wait(flow, order))
    problems.extend(unheard_problems(flow))
    return problems


REPLY_CONDITIONS = ("reply_words", "topic", "sentiment")


def unheard_problems(flow: Flow) -> Problems:
    """A branch case that tests the reply must come after a `wait_for_reply` on every path from
    start, and one that tests keypad digits after a `place_call` with `gather`: otherwise there is
    nothing to test on some path, and the case could only ever fall through by accident."""
    before_reply = reachable(flow, stop=lambda step: isinstance(step, WaitForReply))
    before_digits = reachable(flow, stop=lambda step: isinstance(step, PlaceCall) and step.gather is not None)
    problems: Problems = []
    for step_id, step in flow.steps.items():
        if not isinstance(step, Branch):
            continue
        for index, case in enumerate(step.cases):
            field = f"flow.steps.{step_id}.cases.{index}.when"
            if step_id in before_reply and any(getattr(case.when, name) is not None for name in REPLY_CONDITIONS):
                problems.append(
                    _problem(
                        field, "tests the customer's reply, but a path from start reaches it without a wait_for_reply"
                    )
                )
            if step_id in before_digits and case.when.digits is not None:
                problems.append(
                    _problem(
                        field, "tests keypad digits, but a path from start reaches it without a place_call with gather"
                    )
                )
    return problems


def reachable(flow: Flow, stop: Callable[[Any], bool] = lambda step: False) -> dict[str, int]:
    """Steps reachable from start, with the order a breadth-first walk meets them (a step that
    `stop` accepts is reached, but the walk goes no further through it)."""
    if flow.start not in flow.steps:
        return {}
    order = {flow.start: 0}
    pending = deque([flow.start])
    while pending:
        step = flow.steps[pending.popleft()]
        if stop(step):
            continue
        for _, target in edges(step):
            if target in flow.steps and target not in order:
                order[target] = len(order)
                pending.append(target)
    return order


def cycles_without_wait(flow: Flow, order: dict[str, int]) -> Problems:
    """Every cycle among the steps that do not wait (graphlib finds one at a time; each found
    is reported at its earliest step, one of its edges removed, and the search runs again)."""
    successors: dict[str, set[str]] = {
        step_id: {target for _, target in edges(step) if target in flow.steps and not waits(flow.steps[target])}
        for step_id, step in flow.steps.items()
        if not waits(step)
    }
    problems: Problems = []
    for _ in range(len(flow.steps) ** 2 + 1):  # each round removes an edge: bounded by their number
        try:
            # graphlib reads the mapping as node -> its predecessors; a cycle is one either way.
            tuple(graphlib.TopologicalSorter(successors).static_order())
            return problems
        except graphlib.CycleError as found:
            cycle = list(reversed(found.args[1][:-1]))  # successor order, each step once
        first = min(range(len(cycle)), key=lambda i: (order.get(cycle[i], len(order)), cycle[i]))
        cycle = cycle[first:] + cycle[:first]
        path = " -> ".join([*cycle, cycle[0]])
        problems.append(
            _problem(
                f"flow.steps.{cycle[0]}",
                f"is on a cycle without a wait or wait_for_reply step ({path}): it would repeat at once, forever",
            )
        )
        following = cycle[1] if len(cycle) > 1 else cycle[0]
        successors[cycle[0]].discard(following)
    return problems


def waits(step: Any) -> bool:
    return getattr(step, "type", None) in WAITING_TYPES


# --- one entry point ----------------------------------------------------------------------------


def model_problems(error: ValidationError, prefix: str) -> Problems:
    """Pydantic's errors as problems naming `prefix.steps.<id>.<field>`, without the union's tag
    that pydantic puts after the step id (`steps.s1.send_message.channel` -> `steps.s1.channel`)."""
    problems = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        if len(loc) >= 3 and loc[0] == "steps" and loc[2] in STEP_TYPES:
            del loc[2]
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "union_tag_invalid":
            message = f"type {item['input'].get('type')!r} is not a step type; use one of {', '.join(STEP_TYPES)}"
        elif item["type"] == "union_tag_not_found":
            message = f"has no type; use one of {', '.join(STEP_TYPES)}"
        problems.append(_problem(".".join([prefix, *loc]), message))
    return problems


def check_flow(document: Any) -> tuple[Flow | None, Problems]:
    """The flow, or None with every problem: the steps' own first, then (for a flow whose steps
    all validate) the graph's."""
    try:
        flow = Flow.model_validate(document)
    except ValidationError as exc:
        return None, model_problems(exc, "flow")
    problems = graph_problems(flow)
    return (None if problems else flow), problems


def check_trigger(document: Any, tenant: str) -> tuple[Trigger | None, Problems]:
    """The trigger, or None with every problem (its pattern through the partner subscriptions'
    pattern checker, scoped to the tenant)."""
    from switchboard_core.subscriptions.patterns import InvalidPattern, check_pattern

    try:
        trigger = Trigger.model_validate(document)
    except ValidationError as exc:
        return None, model_problems(exc, "trigger")
    try:
        check_pattern(trigger.event_pattern, tenant)
    except InvalidPattern as exc:
        return None, [problem | {"field": f"trigger.{problem['field']}"} for problem in exc.details["problems"]]
    return trigger, []
