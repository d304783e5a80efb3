"""Routing rules: an ordered rule set, validated by pydantic, evaluated to a decision
that carries its reason (which rule, which conditions matched).

A rule's conditions all have to hold (an absent condition always holds); the first
rule whose conditions hold decides, except that `tag` actions accumulate and do not
stop evaluation. A sticky rule keeps an ongoing conversation with its assignee.
"""

from __future__ import annotations

from datetime import datetime, time
from string import Template
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from switchboard_core.errors import field_problems
from switchboard_core.events import CanonicalEvent
from switchboard_core.routing.sensing import Sensed, Urgency

URGENCY_ORDER: dict[str, int] = {"low": 0, "normal": 1, "high": 2, "critical": 3}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _skill_levels(skills: dict[str, int]) -> dict[str, int]:
    bad = [name for name, level in skills.items() if not 1 <= level <= 5]
    if bad:
        raise ValueError(f"skill levels must be 1..5: {', '.join(bad)}")
    return skills


# skill -> level 1..5, for responders and for the skills a queue requires.
SkillLevels = Annotated[dict[str, int], AfterValidator(_skill_levels)]


class BusinessHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    start: time
    end: time
    inside: bool = Field(default=True, description="true: match inside these hours; false: outside them")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _ordered(self) -> BusinessHours:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def holds(self, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.timezone))
        within = WEEKDAYS[local.weekday()] in self.days and self.start <= local.time() < self.end
        return within == self.inside


class Conditions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[Literal["social", "crm", "telephony", "generic"]] | None = None
    providers: list[str] | None = None
    types: list[str] | None = None
    topics_any: list[str] | None = None
    entities_any: dict[str, list[str]] | None = Field(default=None, description="dictionary -> any of these names")
    sentiment_min: float | None = Field(default=None, ge=-1, le=1)
    sentiment_max: float | None = Field(default=None, ge=-1, le=1)
    urgency_at_least: Urgency | None = None
    has_location: bool | None = Field(
        default=None,
        description="true: the event carries coordinates (a shared location, a caller's position); false: it does not",
    )
    contact_attributes: dict[str, str] | None = None
    business_hours: BusinessHours | None = None

    @model_validator(mode="after")
    def _range(self) -> Conditions:
        if (
            self.sentiment_min is not None
            and self.sentiment_max is not None
            and self.sentiment_min > self.sentiment_max
        ):
            raise ValueError("sentiment_min must not exceed sentiment_max")
        return self

    def matched(
        self, event: CanonicalEvent, sensed: Sensed, contact_attributes: dict[str, str], at: datetime
    ) -> list[str] | None:
        """The names of the conditions that held, or None if one did not."""
        checks: dict[str, bool] = {}
        if self.channels is not None:
            checks["channels"] = event.channel.value in self.channels
        if self.providers is not None:
            checks["providers"] = event.provider in self.providers
        if self.types is not None:
            checks["types"] = event.type in self.types
        if self.topics_any is not None:
            checks["topics_any"] = bool(set(self.topics_any) & set(sensed.topics))
        if self.entities_any is not None:
            checks["entities_any"] = any(
                set(names) & set(sensed.entities.get(dictionary, [])) for dictionary, names in self.entities_any.items()
            )
        if self.sentiment_min is not None:
            checks["sentiment_min"] = sensed.sentiment >= self.sentiment_min
        if self.sentiment_max is not None:
            checks["sentiment_max"] = sensed.sentiment <= self.sentiment_max
        if self.urgency_at_least is not None:
            checks["urgency_at_least"] = URGENCY_ORDER[sensed.urgency_level] >= URGENCY_ORDER[self.urgency_at_least]
        if self.has_location is not None:
            located = sensed.location is not None and sensed.location.has_coordinates
            checks["has_location"] = located == self.has_location
        if self.contact_attributes is not None:
            checks["contact_attributes"] = all(
                contact_attributes.get(k) == v for k, v in self.contact_attributes.items()
            )
        if self.business_hours is not None:
            checks["business_hours"] = self.business_hours.holds(at)
        return list(checks) if all(checks.values()) else None


class AssignToQueue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["assign"] = "assign"
    team: str = Field(min_length=1)
    skills: SkillLevels = Field(default_factory=dict, description="skill -> minimum level 1..5")
    priority: int = Field(default=3, ge=1, le=5)
    strategy: Literal["skills_least_loaded", "round_robin"] = "skills_least_loaded"


class AssignNearest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["nearest"] = "nearest"
    skill: str = Field(min_length=1)
    team: str | None = None
    max_distance_km: float | None = Field(default=None, gt=0)
    priority: int = Field(default=2, ge=1, le=5)


class KeepAssignee(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["sticky"] = "sticky"


class Tag(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["tag"] = "tag"
    tags: list[str] = Field(min_length=1)


# What an auto-reply template may say, as ${name} placeholders (string.Template syntax;
# $$ is a literal dollar). Rendered by routing once the conversation is assigned.
TEMPLATE_VARIABLES = {
    "name": "the customer's name, when the channel gives one (else empty)",
    "team": "the team the conversation went to",
    "assignee": "the assigned responder's name (else empty)",
    "reply_within": "the SLA as words, e.g. '1 hour'",
    "conversation": "the conversation id",
    "channel": "social, crm, telephony or generic",
}


MAX_VARIABLE_CHARS = 200
MAX_REPLY_CHARS = 1600  # one SMS-sized message, whatever the template and the names in it
STORED = "stored"  # validation context of a rule set read back from the table


class AutoReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["auto_reply"] = "auto_reply"
    template: str = Field(
        min_length=1, max_length=1600, description="text with ${placeholders}: " + ", ".join(sorted(TEMPLATE_VARIABLES))
    )

    @field_validator("template")
    @classmethod
    def _known_placeholders(cls, value: str, info: ValidationInfo) -> str:
        if (info.context or {}).get(STORED):  # checked when it was saved; see RuleSet.stored
            return value
        template = Template(value)
        if not template.is_valid():
            raise ValueError("invalid placeholder: write ${name} for a variable and $$ for a dollar sign")
        unknown = sorted(set(template.get_identifiers()) - set(TEMPLATE_VARIABLES))
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {', '.join(unknown)}; known: {', '.join(sorted(TEMPLATE_VARIABLES))}"
            )
        return value

    def render(self, variables: dict[str, str]) -> str:
        """The reply text: placeholders filled (each value capped), the whole clipped to one
        message. safe_substitute: a rule set saved before placeholders were checked must
        still route, its stray `$` left as written."""
        values = {k: variables.get(k, "")[:MAX_VARIABLE_CHARS] for k in TEMPLATE_VARIABLES}
        text = Template(self.template).safe_substitute(values).strip()
        return text if len(text) <= MAX_REPLY_CHARS else text[: MAX_REPLY_CHARS - 1] + "…"


Action = Annotated[AssignToQueue | AssignNearest | KeepAssignee | Tag | AutoReply, Field(discriminator="kind")]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    when: Conditions = Field(default_factory=Conditions)
    then: Action
    enabled: bool = True


# Conditions an event meets by having one of their values. A rule with one is indexed under those
# values (the first of these it has; topics are the most selective), so deciding looks only at
# the rules an event can meet, not at every rule of a large set.
GATES = ("topics_any", "types", "providers", "channels")


class RuleGates:
    """Which rules an event can possibly match, by the values of one gating condition per rule."""

    def __init__(self, rules: list[Rule]) -> None:
        self.ungated: list[int] = []
        self.by_value: dict[tuple[str, str], list[int]] = {}
        for position, rule in enumerate(rules):
            if not rule.enabled:
                continue
            gate = next((name for name in GATES if getattr(rule.when, name) is not None), None)
            if gate is None:
                self.ungated.append(position)
                continue
            for value in dict.fromkeys(getattr(rule.when, gate)):  # an empty list: never met, never listed
                self.by_value.setdefault((gate, value), []).append(position)

    def candidates(self, event: CanonicalEvent, sensed: Sensed) -> list[int]:
        """Positions of the rules whose gate this event meets (and the ungated), in rule order."""
        keys = [("types", event.type), ("providers", event.provider), ("channels", event.channel.value)]
        keys += [("topics_any", topic) for topic in sensed.topics]
        found = set(self.ungated)
        for key in keys:
            found.update(self.by_value.get(key, ()))
        return sorted(found)


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(max_length=5000)
    default_team: str = Field(min_length=1, description="where events no rule assigns go (routing.unassigned)")
    _gates: tuple[int, RuleGates] | None = PrivateAttr(default=None)

    def candidates(self, event: CanonicalEvent, sensed: Sensed) -> list[int]:
        """The rules `event` can match, in order; the index is built on first use and kept with the
        rule set (routing keeps a tenant's rule set by version, so once per saved version)."""
        if self._gates is None or self._gates[0] != id(self.rules):  # rebuilt if the list was replaced
            self._gates = (id(self.rules), RuleGates(self.rules))
        return self._gates[1].candidates(event, sensed)

    @classmethod
    def stored(cls, body: str) -> RuleSet:
        """A rule set read back from the table: it was validated when saved, and a check
        added since (auto-reply placeholders) must not stop a tenant's routing."""
        return cls.model_validate_json(body, context={STORED: True})

    @model_validator(mode="after")
    def _unique_names(self) -> RuleSet:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule names must be unique: {rule.name!r} appears twice")
            seen.add(rule.name)
        return self


class Decision(BaseModel):
    """What routing decided and why."""

    action: Literal["assign", "nearest", "sticky", "unassigned"]
    rule: str | None
    matched: list[str] = Field(default_factory=list)
    target: AssignToQueue | AssignNearest | None = None
    tags: list[str] = Field(default_factory=list)
    auto_reply: AutoReply | None = None
    auto_reply_rule: str | None = None
    tagged_by: list[str] = Field(default_factory=list)

    @property
    def reason(self) -> str:
        if self.rule is None:
            return "no rule matched: default queue"
        held = ", ".join(self.matched) or "no conditions"
        return f"rule {self.rule!r} ({held})"


def decide(
    rule_set: RuleSet,
    event: CanonicalEvent,
    sensed: Sensed,
    contact_attributes: dict[str, str],
    has_assignee: bool,
    at: datetime,
) -> Decision:
    tags: list[str] = []
    tagged_by: list[str] = []
    auto_reply: AutoReply | None = None
    auto_reply_rule: str | None = None
    for position in rule_set.candidates(event, sensed):  # in order; rules it cannot meet left out
        rule = rule_set.rules[position]
        if not rule.enabled:
            continue
        matched = rule.when.matched(event, sensed, contact_attributes, at)
        if matched is None:
            continue
        action = rule.then
        if isinstance(action, Tag):
            tags.extend(t for t in action.tags if t not in tags)
            tagged_by.append(rule.name)
            continue
        if isinstance(action, AutoReply):
            if auto_reply is None:  # the first matching auto-reply rule speaks
                auto_reply, auto_reply_rule = action, rule.name
            continue
        if isinstance(action, KeepAssignee):
            if has_assignee:
                return Decision(
                    action="sticky",
                    rule=rule.name,
                    matched=matched,
                    tags=tags,
                    auto_reply=auto_reply,
                    auto_reply_rule=auto_reply_rule,
                    tagged_by=tagged_by,
                )
            continue
        return Decision(
            action=action.kind,
            rule=rule.name,
            matched=matched,
            target=action,
            tags=tags,
            auto_reply=auto_reply,
            auto_reply_rule=auto_reply_rule,
            tagged_by=tagged_by,
        )
    return Decision(
        action="unassigned",
        rule=None,
        target=AssignToQueue(team=rule_set.default_team),
        tags=tags,
        auto_reply=auto_reply,
        auto_reply_rule=auto_reply_rule,
        tagged_by=tagged_by,
    )


def validation_problems(raw: Any) -> list[dict[str, str]]:
    """Field-by-field problems of a proposed rule set (empty when it is valid)."""
    from pydantic import ValidationError

    try:
        RuleSet.model_validate(raw)
    except ValidationError as exc:
        return field_problems(exc)
    return []
