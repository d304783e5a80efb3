"""Rules decide with a reason; strategies pick the right responder."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from switchboard_core.events import CanonicalEvent, Channel
from switchboard_core.routing.assignment import (
    GeoPoint,
    Responder,
    choose_in_queue,
    choose_nearest,
    great_circle_km,
)
from switchboard_core.routing.rules import AssignNearest, AssignToQueue, RuleSet, decide, validation_problems
from switchboard_core.routing.sensing import Location, Sensed
from tests.builders import canonical_event

MONDAY_NOON_UTC = datetime(2026, 11, 23, 12, tzinfo=UTC)  # a Monday

RULES = RuleSet.model_validate(
    {
        "default_team": "front-desk",
        "rules": [
            {"name": "tag-negative", "when": {"sentiment_max": -0.3}, "then": {"kind": "tag", "tags": ["unhappy"]}},
            {"name": "keep-agent", "when": {}, "then": {"kind": "sticky"}},
            {
                "name": "roadside",
                "when": {"topics_any": ["breakdown"], "urgency_at_least": "high"},
                "then": {"kind": "nearest", "skill": "towing", "max_distance_km": 150},
            },
            {
                "name": "parts",
                "when": {"topics_any": ["parts"]},
                "then": {"kind": "assign", "team": "parts", "skills": {"parts": 2}, "priority": 2},
            },
            {
                "name": "gold-after-hours",
                "when": {
                    "contact_attributes": {"tier": "gold"},
                    "business_hours": {
                        "timezone": "Europe/Berlin",
                        "days": ["mon", "tue"],
                        "start": "09:00",
                        "end": "17:00",
                        "inside": False,
                    },
                },
                "then": {"kind": "assign", "team": "vip"},
            },
        ],
    }
)


def event(channel: Channel = Channel.SOCIAL, provider: str = "meta") -> CanonicalEvent:
    return canonical_event(
        "message.received", "1", received_at=MONDAY_NOON_UTC, provider=provider, connection="c", channel=channel
    )


def test_first_matching_rule_decides_and_tags_accumulate():
    sensed = Sensed(topics=["parts"], sentiment=-0.8, urgency_level="high")
    decision = decide(RULES, event(), sensed, {}, has_assignee=False, at=MONDAY_NOON_UTC)
    assert (decision.action, decision.rule, decision.tags) == ("assign", "parts", ["unhappy"])
    assert decision.target.team == "parts" and decision.matched == ["topics_any"]
    assert decision.reason == "rule 'parts' (topics_any)"


def test_sticky_keeps_an_ongoing_conversation():
    decision = decide(RULES, event(), Sensed(topics=["parts"]), {}, has_assignee=True, at=MONDAY_NOON_UTC)
    assert decision.action == "sticky" and decision.rule == "keep-agent"


def test_nothing_matching_goes_to_the_default_queue():
    decision = decide(RULES, event(), Sensed(), {}, has_assignee=False, at=MONDAY_NOON_UTC)
    assert decision.action == "unassigned" and decision.target.team == "front-desk"
    assert decision.reason == "no rule matched: default queue"


def test_has_location_holds_only_for_coordinates():
    rules = RuleSet.model_validate(
        {
            "default_team": "front-desk",
            "rules": [
                {
                    "name": "on-site",
                    "when": {"has_location": True},
                    "then": {"kind": "nearest", "skill": "field_service"},
                },
                {"name": "no-place", "when": {"has_location": False}, "then": {"kind": "tag", "tags": ["no-place"]}},
            ],
        }
    )
    shared = Sensed(location=Location(latitude=37.8, longitude=-122.27))
    city_only = Sensed(location=Location(city="OAKLAND", region="CA"))  # a caller's city: nothing to measure from
    decision = decide(rules, event(), shared, {}, has_assignee=False, at=MONDAY_NOON_UTC)
    assert (decision.action, decision.rule, decision.matched, decision.tags) == (
        "nearest",
        "on-site",
        ["has_location"],
        [],
    )
    for sensed in (city_only, Sensed()):
        decision = decide(rules, event(), sensed, {}, has_assignee=False, at=MONDAY_NOON_UTC)
        assert (decision.action, decision.tags) == ("unassigned", ["no-place"])


def test_business_hours_in_a_time_zone():
    sensed = Sensed()
    # 12:00 UTC is 13:00 in Berlin: inside hours, so the after-hours rule does not hold.
    assert decide(RULES, event(), sensed, {"tier": "gold"}, False, MONDAY_NOON_UTC).action == "unassigned"
    evening = datetime(2026, 11, 23, 18, tzinfo=UTC)  # 19:00 in Berlin
    assert decide(RULES, event(), sensed, {"tier": "gold"}, False, evening).rule == "gold-after-hours"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"rules": [], "default_team": ""}, "default_team"),
        ({"rules": [{"name": "x", "then": {"kind": "teleport"}}], "default_team": "d"}, "rules.0.then"),
        (
            {"rules": [{"name": "x", "when": {"sentiment_min": 2}, "then": {"kind": "sticky"}}], "default_team": "d"},
            "rules.0.when.sentiment_min",
        ),
        (
            {
                "rules": [
                    {
                        "name": "x",
                        "when": {
                            "business_hours": {
                                "timezone": "Mars/Olympus",
                                "days": ["mon"],
                                "start": "09:00",
                                "end": "17:00",
                            }
                        },
                        "then": {"kind": "sticky"},
                    }
                ],
                "default_team": "d",
            },
            "rules.0.when.business_hours.timezone",
        ),
        (
            {
                "rules": [{"name": "x", "then": {"kind": "assign", "team": "t", "skills": {"a": 9}}}],
                "default_team": "d",
            },
            "rules.0.then.assign.skills",
        ),
        (
            {
                "rules": [{"name": "x", "then": {"kind": "sticky"}}, {"name": "x", "then": {"kind": "sticky"}}],
                "default_team": "d",
            },
            "(body)",
        ),
    ],
)
def test_bad_rule_sets_name_the_field(raw, field):
    problems = validation_problems(raw)
    assert problems and any(p["field"].startswith(field) for p in problems), problems


def responder(rid: str, **kwargs) -> Responder:
    return Responder(id=rid, tenant="acme", name=rid, **kwargs)


def test_skills_then_least_loaded_and_round_robin():
    team = [
        responder("a", teams=["parts"], skills={"parts": 3}, load=4, capacity=5),
        responder("b", teams=["parts"], skills={"parts": 2}, load=1, capacity=5),
        responder("c", teams=["parts"], skills={"parts": 1}, load=0, capacity=5),  # not skilled enough
        responder("d", teams=["parts"], skills={"parts": 5}, load=0, available=False),
    ]
    target = AssignToQueue(team="parts", skills={"parts": 2})
    assert choose_in_queue(target, team, MONDAY_NOON_UTC).responder.id == "b"
    robin = target.model_copy(update={"strategy": "round_robin"})
    assert choose_in_queue(robin, team, MONDAY_NOON_UTC, last_assigned="a").responder.id == "b"
    assert choose_in_queue(robin, team, MONDAY_NOON_UTC, last_assigned="b").responder.id == "a"
    assert choose_in_queue(AssignToQueue(team="nobody"), team, MONDAY_NOON_UTC) is None


def test_nearest_available_responder_with_the_skill():
    hamburg = Location(latitude=53.5511, longitude=9.9937)
    crew = [
        responder("kiel", skills={"towing": 3}, location=GeoPoint(latitude=54.3233, longitude=10.1228)),
        responder("bremen", skills={"towing": 2}, location=GeoPoint(latitude=53.0793, longitude=8.8017)),
        responder(
            "harburg", skills={"towing": 1}, location=GeoPoint(latitude=53.4604, longitude=9.9836), load=3, capacity=3
        ),  # nearest, but full
        responder("altona", skills={"parts": 5}, location=GeoPoint(latitude=53.5503, longitude=9.9350)),
    ]
    choice = choose_nearest(AssignNearest(skill="towing"), crew, hamburg, MONDAY_NOON_UTC)
    assert choice.responder.id == "kiel" and 85 < choice.distance_km < 87
    assert choose_nearest(AssignNearest(skill="towing", max_distance_km=50), crew, hamburg, MONDAY_NOON_UTC) is None
    assert choose_nearest(AssignNearest(skill="towing"), crew, None, MONDAY_NOON_UTC) is None


def test_great_circle_distance_matches_known_values():
    # Hamburg - Munich is about 612 km along the great circle.
    assert (
        605
        < great_circle_km(GeoPoint(latitude=53.5511, longitude=9.9937), GeoPoint(latitude=48.1351, longitude=11.5820))
        < 615
    )


@pytest.mark.parametrize(
    "model,body",
    [
        ("responder", {"id": "r1", "tenant": "acme", "name": "R", "skills": {"towing": 6, "parts": 3}}),
        (
            "rule_set",
            {
                "default_team": "x",
                "rules": [{"name": "a", "then": {"kind": "assign", "team": "t", "skills": {"towing": 0}}}],
            },
        ),
    ],
)
def test_skill_levels_outside_1_to_5_are_refused_naming_the_skill(model, body):
    from pydantic import ValidationError

    from switchboard_core.routing.assignment import Responder

    with pytest.raises(ValidationError) as refused:
        (Responder if model == "responder" else RuleSet).model_validate(body)
    (problem,) = refused.value.errors()
    assert problem["loc"][-1] == "skills" and "skill levels must be 1..5: towing" in problem["msg"]
