"""The hub's own check of subscription patterns (EventBridge's syntax, every problem named with
where it is) and the tenant it ANDs in; and that the local emulator's TestEventPattern agrees
with it on what is valid."""

from __future__ import annotations

import json

import pytest

from switchboard_core.subscriptions.patterns import (
    MAX_PATTERN_CHARS,
    InvalidPattern,
    check_pattern,
    scoped_to_tenant,
)

VALID = [
    {"detail-type": ["message.received"]},
    {"source": [{"prefix": "switchboard."}], "detail-type": ["message.received", "message.sent"]},
    {"detail": {"channel": ["telephony"], "text": [{"exists": True}]}},
    {"detail": {"text": [{"prefix": {"equals-ignore-case": "order"}}]}},
    {"detail": {"text": [{"suffix": "?"}, {"suffix": {"equals-ignore-case": "PLEASE"}}]}},
    {"detail": {"provider": [{"equals-ignore-case": "TWILIO"}]}},
    {"detail": {"provider": [{"anything-but": "x"}]}},
    {"detail": {"provider": [{"anything-but": ["x", "y"]}]}},
    {"detail": {"score": [{"anything-but": [1, 2.5]}]}},
    {"detail": {"provider": [{"anything-but": {"prefix": "tw"}}]}},
    {"detail": {"provider": [{"anything-but": {"suffix": "io"}}]}},
    {"detail": {"provider": [{"anything-but": {"equals-ignore-case": ["A", "b"]}}]}},
    {"detail": {"provider": [{"anything-but": {"wildcard": "t*o"}}]}},
    {"detail": {"attributes": {"amount": [{"numeric": [">", 0, "<=", 100]}]}}},
    {"detail": {"attributes": {"amount": [{"numeric": ["=", 5]}]}}},
    {"detail": {"attributes": {"ip": [{"cidr": "10.0.0.0/24"}]}}},
    {"detail": {"type": [{"wildcard": "message.*"}]}},
    {"detail": {"attributes": {"flag": [True, None, 3, "x"]}}},
    {"$or": [{"detail-type": ["message.received"]}, {"detail": {"channel": ["social"]}}]},
    {"detail": {"$or": [{"channel": ["social"]}, {"text": [{"exists": False}]}]}},
    {"detail": {"tenant": ["acme"], "channel": ["social"]}},  # its own tenant, exactly
]

INVALID = [
    ([], "event_pattern", "non-empty JSON object"),
    ({}, "event_pattern", "non-empty JSON object"),
    ({"account": ["1"]}, "event_pattern.account", "not a field a subscription can match"),
    ({"detail-type": "message.received"}, "event_pattern.detail-type", "array of values"),
    ({"detail-type": []}, "event_pattern.detail-type", "empty array"),
    ({"detail": {}}, "event_pattern.detail", "empty object"),
    ({"detail": {"x": [{"prefx": "a"}]}}, "event_pattern.detail.x[0]", "unknown operator 'prefx'"),
    ({"detail": {"x": [{"prefix": "a", "suffix": "b"}]}}, "event_pattern.detail.x[0]", "exactly one operator"),
    ({"detail": {"x": [{"prefix": 1}]}}, "event_pattern.detail.x[0].prefix", "must be a string"),
    ({"detail": {"x": [{"prefix": {"equals-ignore-case": 1}}]}}, "event_pattern.detail.x[0].prefix", "string"),
    ({"detail": {"x": [{"equals-ignore-case": ["a"]}]}}, "event_pattern.detail.x[0].equals-ignore-case", "string"),
    ({"detail": {"x": [{"anything-but": []}]}}, "event_pattern.detail.x[0].anything-but", "empty array"),
    ({"detail": {"x": [{"anything-but": ["a", 1]}]}}, "event_pattern.detail.x[0].anything-but", "only strings"),
    ({"detail": {"x": [{"anything-but": {"numeric": [">", 1]}}]}}, "event_pattern.detail.x[0].anything-but", "unknown"),
    ({"detail": {"x": [{"anything-but": True}]}}, "event_pattern.detail.x[0].anything-but", "must be a value"),
    ({"detail": {"x": [{"numeric": [">", "ten"]}]}}, "event_pattern.detail.x[0].numeric", "not a number"),
    ({"detail": {"x": [{"numeric": ["!=", 1]}]}}, "event_pattern.detail.x[0].numeric", "not a comparison"),
    ({"detail": {"x": [{"numeric": [">", 1, ">", 2]}]}}, "event_pattern.detail.x[0].numeric", "lower bound"),
    ({"detail": {"x": [{"numeric": [">", 5, "<", 1]}]}}, "event_pattern.detail.x[0].numeric", "below its upper"),
    ({"detail": {"x": [{"numeric": [">", 1e10]}]}}, "event_pattern.detail.x[0].numeric", "between"),
    ({"detail": {"x": [{"numeric": [">"]}]}}, "event_pattern.detail.x[0].numeric", "[comparison, number]"),
    ({"detail": {"x": [{"exists": "yes"}]}}, "event_pattern.detail.x[0].exists", "true or false"),
    ({"detail": {"x": [{"cidr": "10.0.0.300/8"}]}}, "event_pattern.detail.x[0].cidr", "not an IP address range"),
    ({"detail": {"x": [{"wildcard": "a**b"}]}}, "event_pattern.detail.x[0].wildcard", "consecutive"),
    ({"$or": [{"source": ["a"]}]}, "event_pattern.$or", "at least two"),
    ({"$or": [{"source": ["a"]}, {}]}, "event_pattern.$or[1]", "non-empty object"),
    ({"detail": {"tenant": ["other"]}}, "event_pattern.detail.tenant", "set by the hub"),
    ({"detail": {"tenant": [{"anything-but": "acme"}]}}, "event_pattern.detail.tenant", "set by the hub"),
]


@pytest.mark.parametrize("pattern", VALID, ids=lambda p: json.dumps(p)[:60])
def test_patterns_eventbridge_accepts_pass(pattern):
    check_pattern(pattern, "acme")


@pytest.mark.parametrize(("pattern", "field", "problem"), INVALID, ids=lambda v: json.dumps(v)[:60])
def test_a_malformed_pattern_names_the_field_and_the_problem(pattern, field, problem):
    with pytest.raises(InvalidPattern) as refused:
        check_pattern(pattern, "acme")
    assert refused.value.status == 400 and refused.value.code == "invalid_event_pattern"
    problems = refused.value.details["problems"]
    assert problems[0]["field"] == field and problem in problems[0]["problem"], problems
    assert problems[0]["in"] == "body"


def test_every_problem_is_listed_not_only_the_first():
    with pytest.raises(InvalidPattern) as refused:
        check_pattern({"foo": [1], "detail": {"a": [{"prefx": 1}], "b": []}}, "acme")
    fields = [p["field"] for p in refused.value.details["problems"]]
    assert fields == ["event_pattern.foo", "event_pattern.detail.a[0]", "event_pattern.detail.b"]
    assert "(and 2 more)" in refused.value.message


def test_deep_and_long_patterns_are_refused():
    deep: dict = {"x": ["v"]}
    for _ in range(12):
        deep = {"d": deep}
    with pytest.raises(InvalidPattern, match="deeper than"):
        check_pattern({"detail": deep}, "acme")
    with pytest.raises(InvalidPattern, match="longer than"):
        check_pattern({"detail": {"text": ["x" * (MAX_PATTERN_CHARS + 1)]}}, "acme")


@pytest.mark.parametrize(
    "pattern",
    [
        {"detail-type": ["message.received"]},
        {"$or": [{"detail": {"tenant": ["other"]}}, {"source": ["switchboard.twilio"]}]},
        {"detail": {"$or": [{"tenant": ["other"]}, {"channel": ["sms"]}]}},
    ],
)
def test_the_tenant_is_anded_in_so_no_pattern_reaches_another_tenant(pattern):
    from moto.events.models import EventPattern

    from infra.local.emulator import patch_moto

    patch_moto()
    scoped = scoped_to_tenant(pattern, "acme")
    assert scoped["detail"]["tenant"] == ["acme"] and pattern.get("detail", {}).get("tenant") is None
    matcher = EventPattern.load(json.dumps(scoped))
    for tenant in ("other", "acme"):
        event = {
            "source": "switchboard.twilio",
            "detail-type": "message.received",
            "detail": {"tenant": tenant, "channel": "sms"},
        }
        assert matcher.matches_event(event) is (
            tenant == "acme" and EventPattern.load(json.dumps(pattern)).matches_event(event)
        )


@pytest.mark.parametrize("pattern", VALID, ids=lambda p: json.dumps(p)[:60])
def test_the_local_emulators_test_event_pattern_accepts_what_the_hub_accepts(aws_world, pattern):
    from switchboard_core import aws

    sample = {
        "id": "1",
        "account": "123456789012",
        "source": "switchboard.twilio",
        "time": "2026-12-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail-type": "message.received",
        "detail": {"tenant": "acme"},
    }
    answer = aws.client("events").test_event_pattern(
        EventPattern=json.dumps(scoped_to_tenant(pattern, "acme")), Event=json.dumps(sample)
    )
    assert answer["Result"] in (True, False)
