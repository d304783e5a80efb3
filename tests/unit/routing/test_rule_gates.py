"""The rule set's index (RuleGates) only leaves out rules an event cannot meet: for generated rule
sets and events, deciding with it equals deciding over every rule in order."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_core.events import CanonicalEvent, Channel
from switchboard_core.routing.rules import RuleSet, decide
from switchboard_core.routing.sensing import Sensed
from tests.builders import canonical_event

AT = datetime(2026, 11, 23, 12, tzinfo=UTC)
TOPICS, TYPES, PROVIDERS = ("parts", "billing", "breakdown"), ("message.received", "message.sent"), ("twilio", "meta")
CHANNELS = ("social", "telephony")


def some(values):
    return st.one_of(st.none(), st.lists(st.sampled_from(values), max_size=2, unique=True))


conditions = st.fixed_dictionaries(
    {},
    optional={
        "topics_any": some(TOPICS),
        "types": some(TYPES),
        "providers": some(PROVIDERS),
        "channels": some(CHANNELS),
        "sentiment_max": st.sampled_from([-0.5, 0.0, 0.5]),
    },
)
actions = st.sampled_from(
    [
        {"kind": "assign", "team": "support"},
        {"kind": "tag", "tags": ["t"]},
        {"kind": "sticky"},
        {"kind": "auto_reply", "template": "hi"},
        {"kind": "nearest", "skill": "towing"},
    ]
)
rule_sets = st.lists(st.tuples(conditions, actions, st.booleans()), max_size=12).map(
    lambda rules: RuleSet.model_validate(
        {
            "default_team": "front",
            "rules": [
                {"name": f"r{n}", "when": {k: v for k, v in when.items() if v is not None}, "then": then, "enabled": on}
                for n, (when, then, on) in enumerate(rules)
            ],
        }
    )
)


class EveryRule(RuleSet):
    """The reference: every rule, in order (what deciding did before the index)."""

    def candidates(self, event, sensed):
        return list(range(len(self.rules)))


def event(type_: str, provider: str, channel: str) -> CanonicalEvent:
    return canonical_event(
        type_, "e1", received_at=AT, provider=provider, connection="con_1", channel=Channel(channel), text="x"
    )


@settings(max_examples=int(os.environ.get("SWITCHBOARD_FUZZ_EXAMPLES", "300")), deadline=None)
@given(
    rule_set=rule_sets,
    type_=st.sampled_from(TYPES),
    provider=st.sampled_from(PROVIDERS),
    channel=st.sampled_from(CHANNELS),
    topics=st.lists(st.sampled_from(TOPICS), max_size=3, unique=True),
    sentiment=st.sampled_from([-0.8, 0.2, 0.9]),
    has_assignee=st.booleans(),
)
def test_the_index_decides_as_every_rule_in_order_would(
    rule_set, type_, provider, channel, topics, sentiment, has_assignee
):
    incoming, sensed = event(type_, provider, channel), Sensed(topics=topics, sentiment=sentiment)
    indexed = decide(rule_set, incoming, sensed, {}, has_assignee, AT)
    every_rule = EveryRule.model_validate(rule_set.model_dump())
    assert indexed == decide(every_rule, incoming, sensed, {}, has_assignee, AT)


def test_rules_an_event_cannot_meet_are_not_looked_at():
    rules = [
        {"name": f"r{n}", "when": {"topics_any": [f"topic{n}"]}, "then": {"kind": "assign", "team": "t"}}
        for n in range(1000)
    ]
    rule_set = RuleSet.model_validate(
        {"default_team": "front", "rules": [*rules, {"name": "all", "then": {"kind": "tag", "tags": ["x"]}}]}
    )
    incoming = event("message.received", "twilio", "telephony")
    assert rule_set.candidates(incoming, Sensed(topics=["topic7"])) == [7, 1000]
    assert rule_set.candidates(incoming, Sensed()) == [1000]
    assert decide(rule_set, incoming, Sensed(topics=["topic7"]), {}, False, AT).rule == "r7"
