"""The embedded emulator's EventBridge, as partner subscriptions use it: TestEventPattern (which
moto 5.2.5 lacks; infra/local/emulator.py implements it on moto's own rule matcher), which
operators that matcher supports (the table in docs/partners.md), and a subscription rule's
input transformer delivering {"subscription", "event": <the envelope>} to the delivery queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from infra.local.emulator import ACCOUNT, REGION, fill_input_template, patch_moto
from tests.conftest import AWS_TEST_ENV

ENVELOPE = {
    "version": "0",
    "id": "e-1",
    "detail-type": "message.received",
    "source": "switchboard.whatsapp",
    "account": ACCOUNT,
    "time": "2026-01-02T03:04:05Z",
    "region": REGION,
    "resources": [],
    "detail": {
        "tenant": "t1",
        "channel": "WhatsApp",
        "text": "Refund please",
        "score": 7.5,
        "ip": "10.0.3.4",
        "tags": ["vip", "new"],
        "items": [{"sku": "A-1"}],
        "empty": None,
    },
}


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    patch_moto()
    with mock_aws():
        yield boto3.client("events", region_name=REGION)


def matches(events: Any, pattern: dict[str, Any], event: dict[str, Any] = ENVELOPE) -> bool:
    answer = events.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(event))
    return bool(answer["Result"])


def refusal(events: Any, pattern: str, event: dict[str, Any] = ENVELOPE) -> dict[str, str]:
    with pytest.raises(ClientError) as raised:
        events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))
    return raised.value.response["Error"]


def test_a_matching_and_a_non_matching_event(events: Any) -> None:
    assert matches(events, {"source": ["switchboard.whatsapp"], "detail": {"tenant": ["t1"]}}) is True
    assert matches(events, {"source": ["switchboard.whatsapp"], "detail": {"tenant": ["t2"]}}) is False


# Each operator EventBridge documents, with an event it must match and one it must not:
# docs/partners.md's table says the local emulator supports each of these.
SUPPORTED = {
    "exact string": ({"detail": {"channel": ["WhatsApp"]}}, {"detail": {"channel": ["SMS"]}}),
    "exact number": ({"detail": {"score": [7.5]}}, {"detail": {"score": [7]}}),
    "null": ({"detail": {"empty": [None]}}, {"detail": {"channel": [None]}}),
    "array value (any element)": ({"detail": {"tags": ["vip"]}}, {"detail": {"tags": ["old"]}}),
    "prefix": ({"detail-type": [{"prefix": "message."}]}, {"detail-type": [{"prefix": "routing."}]}),
    "prefix, ignoring case": (
        {"detail": {"channel": [{"prefix": {"equals-ignore-case": "whats"}}]}},
        {"detail": {"channel": [{"prefix": {"equals-ignore-case": "sms"}}]}},
    ),
    "suffix": ({"detail-type": [{"suffix": ".received"}]}, {"detail-type": [{"suffix": ".sent"}]}),
    "suffix, ignoring case": (
        {"detail": {"channel": [{"suffix": {"equals-ignore-case": "APP"}}]}},
        {"detail": {"channel": [{"suffix": {"equals-ignore-case": "sms"}}]}},
    ),
    "equals-ignore-case": (
        {"detail": {"channel": [{"equals-ignore-case": "whatsapp"}]}},
        {"detail": {"channel": [{"equals-ignore-case": "sms"}]}},
    ),
    "anything-but (a value)": (
        {"detail": {"channel": [{"anything-but": "SMS"}]}},
        {"detail": {"channel": [{"anything-but": "WhatsApp"}]}},
    ),
    "anything-but (a list)": (
        {"detail": {"channel": [{"anything-but": ["SMS", "Email"]}]}},
        {"detail": {"channel": [{"anything-but": ["SMS", "WhatsApp"]}]}},
    ),
    "anything-but (numbers)": (
        {"detail": {"score": [{"anything-but": [1, 2]}]}},
        {"detail": {"score": [{"anything-but": [7.5]}]}},
    ),
    "anything-but prefix": (
        {"detail-type": [{"anything-but": {"prefix": "routing."}}]},
        {"detail-type": [{"anything-but": {"prefix": "message."}}]},
    ),
    "anything-but suffix": (
        {"detail-type": [{"anything-but": {"suffix": ".sent"}}]},
        {"detail-type": [{"anything-but": {"suffix": ".received"}}]},
    ),
    "anything-but equals-ignore-case": (
        {"detail": {"channel": [{"anything-but": {"equals-ignore-case": ["sms"]}}]}},
        {"detail": {"channel": [{"anything-but": {"equals-ignore-case": ["whatsapp"]}}]}},
    ),
    "anything-but wildcard": (
        {"detail-type": [{"anything-but": {"wildcard": "routing.*"}}]},
        {"detail-type": [{"anything-but": {"wildcard": "message.*"}}]},
    ),
    "numeric (one comparison)": (
        {"detail": {"score": [{"numeric": [">", 5]}]}},
        {"detail": {"score": [{"numeric": ["<=", 5]}]}},
    ),
    "numeric (a range)": (
        {"detail": {"score": [{"numeric": [">=", 7, "<", 8]}]}},
        {"detail": {"score": [{"numeric": [">", 0, "<", 7]}]}},
    ),
    "exists": ({"detail": {"text": [{"exists": True}]}}, {"detail": {"text": [{"exists": False}]}}),
    "exists: false": ({"detail": {"missing": [{"exists": False}]}}, {"detail": {"missing": [{"exists": True}]}}),
    "cidr": ({"detail": {"ip": [{"cidr": "10.0.0.0/16"}]}}, {"detail": {"ip": [{"cidr": "192.168.0.0/16"}]}}),
    "wildcard": ({"detail-type": [{"wildcard": "message.*"}]}, {"detail-type": [{"wildcard": "*.sent"}]}),
    "$or": (
        {"$or": [{"detail": {"channel": ["SMS"]}}, {"detail": {"score": [{"numeric": [">", 7]}]}}]},
        {"$or": [{"detail": {"channel": ["SMS"]}}, {"detail": {"score": [{"numeric": [">", 8]}]}}]},
    ),
    "several values (OR within a field)": (
        {"detail": {"channel": ["SMS", "WhatsApp"]}},
        {"detail": {"channel": ["SMS", "Email"]}},
    ),
    "several fields (AND)": (
        {"source": ["switchboard.whatsapp"], "detail": {"tenant": ["t1"]}},
        {"source": ["switchboard.whatsapp"], "detail": {"tenant": ["t2"]}},
    ),
}


@pytest.mark.parametrize("operator", sorted(SUPPORTED))
def test_each_documented_operator_matches_locally(events: Any, operator: str) -> None:
    matching, not_matching = SUPPORTED[operator]
    assert matches(events, matching) is True
    assert matches(events, not_matching) is False


def test_a_field_inside_an_array_of_objects_does_not_match_locally(events: Any) -> None:
    """EventBridge matches `detail.items.sku` against every object of the `items` array; moto's
    matcher does not descend into arrays (docs/partners.md says so)."""
    assert matches(events, {"detail": {"items": {"sku": ["A-1"]}}}) is False


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("{not json", "Invalid JSON"),
        ("", "Invalid JSON"),
        ("[1, 2]", "non-empty JSON object"),
        ("{}", "non-empty JSON object"),
        ('{"source": "switchboard.x"}', "source must be an object or an array"),
        ('{"source": []}', "Empty arrays are not allowed"),
        ('{"detail": {}}', "detail is an empty object"),
        ('{"source": [{"prefixx": "a"}]}', "Unrecognized match type prefixx"),
        ('{"source": [{"prefix": "a", "suffix": "b"}]}', "exactly one match type"),
        ('{"source": [{"prefix": 1}]}', "prefix match pattern must be a string"),
        ('{"detail": {"n": [{"numeric": [">", "5"]}]}}', "is not a number"),
        ('{"detail": {"n": [{"numeric": ["~", 5]}]}}', "is not one of"),
        ('{"detail": {"n": [{"numeric": [">"]}]}}', "one or two comparisons"),
        ('{"detail": {"n": [{"exists": "yes"}]}}', "true or false"),
        ('{"detail": {"ip": [{"cidr": "10.0.0.300/8"}]}}', "is not an IP prefix"),
        ('{"detail": {"c": [{"anything-but": {"numeric": [">", 1]}}]}}', "anything-but must be"),
        ('{"detail": {"c": [{"anything-but": ["a", 1]}]}}', "only strings or only numbers"),
        ('{"$or": [{"source": ["a"]}]}', "at least two"),
        ('{"$or": [{"source": ["a"]}, {"source": [{"bogus": 1}]}]}', "$or[1].source[0]: Unrecognized match type bogus"),
    ],
)
def test_a_malformed_pattern_is_refused_with_its_reason(events: Any, pattern: str, reason: str) -> None:
    error = refusal(events, pattern)
    assert error["Code"] == "InvalidEventPatternException"
    assert error["Message"].startswith("Event pattern is not valid. Reason: ")
    assert reason in error["Message"]


def test_an_event_without_the_required_fields_is_refused(events: Any) -> None:
    event = {key: value for key, value in ENVELOPE.items() if key not in ("id", "region")}
    error = refusal(events, json.dumps({"source": ["switchboard.whatsapp"]}), event)
    assert error["Code"] == "ValidationException"
    assert "id, region" in error["Message"]
    with pytest.raises(ClientError) as raised:
        events.test_event_pattern(EventPattern='{"source": ["a"]}', Event="{nope")
    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_patching_twice_changes_nothing(events: Any) -> None:
    patch_moto()
    patch_moto()
    assert matches(events, {"detail": {"tenant": ["t1"]}}) is True


# --- a subscription rule's input transformer -----------------------------------------------------


@pytest.fixture
def bus_to_queue(events: Any) -> tuple[Any, Any, str, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name="bus")
    url = sqs.create_queue(QueueName="deliveries")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return events, sqs, url, arn


SUBSCRIPTION_TEMPLATE = '{"subscription": "sub_x", "event": <aws.events.event.json>}'


def test_the_subscription_template_delivers_the_whole_envelope(bus_to_queue: tuple[Any, Any, str, str]) -> None:
    events, sqs, url, arn = bus_to_queue
    events.put_rule(
        Name="switchboard-test-sub-sub_x", EventBusName="bus", EventPattern='{"detail": {"tenant": ["t1"]}}'
    )
    events.put_targets(
        Rule="switchboard-test-sub-sub_x",
        EventBusName="bus",
        Targets=[
            {
                "Id": "delivery",
                "Arn": arn,
                "InputTransformer": {"InputPathsMap": {}, "InputTemplate": SUBSCRIPTION_TEMPLATE},
            }
        ],
    )
    # Text that looks like template placeholders must arrive untouched.
    detail = {"tenant": "t1", "text": 'say "<id>" and <detail> or <aws.events.event.json>', "n": 1}
    other = {"tenant": "t2", "text": "not for this subscription"}
    answer = events.put_events(
        Entries=[
            {
                "EventBusName": "bus",
                "Source": "switchboard.sms",
                "DetailType": "message.received",
                "Detail": json.dumps(d),
            }
            for d in (detail, other)
        ]
    )
    event_id = answer["Entries"][0]["EventId"]
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(message["Body"])
    assert set(body) == {"subscription", "event"} and body["subscription"] == "sub_x"
    envelope = body["event"]
    assert set(envelope) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert envelope["id"] == event_id
    assert envelope["detail"] == detail
    assert (envelope["source"], envelope["detail-type"]) == ("switchboard.sms", "message.received")
    assert (envelope["account"], envelope["region"], envelope["resources"]) == (ACCOUNT, REGION, [])
    assert isinstance(envelope["time"], str) and envelope["time"].endswith("Z") and len(envelope["time"]) == 20


def test_a_rule_without_a_transformer_still_gets_moto_s_default_envelope(
    bus_to_queue: tuple[Any, Any, str, str],
) -> None:
    events, sqs, url, arn = bus_to_queue
    events.put_rule(Name="plain", EventBusName="bus", EventPattern='{"source": [{"prefix": "switchboard."}]}')
    events.put_targets(Rule="plain", EventBusName="bus", Targets=[{"Id": "q", "Arn": arn}])
    events.put_events(Entries=[{"EventBusName": "bus", "Source": "switchboard.x", "DetailType": "t", "Detail": "{}"}])
    (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["account"] == ACCOUNT and envelope["source"] == "switchboard.x" and envelope["detail"] == {}


def test_input_paths_fill_their_placeholders_once() -> None:
    event = {**ENVELOPE, "time": 1767323045.5, "ingestion-time": 1767323046.0}
    filled = fill_input_template(
        '{"kind": "<type>", "tenant": "<tenant>", "detail": <detail>, "missing": "<nothing>", "when": <at>}',
        {"type": "$.detail-type", "tenant": "$.detail.tenant", "detail": "$.detail", "at": "$.time"},
        event,
    )
    assert json.loads(filled) == {
        "kind": "message.received",
        "tenant": "t1",
        "detail": ENVELOPE["detail"],
        "missing": "<nothing>",
        "when": 1767323045.5,
    }
    whole = json.loads(fill_input_template("<aws.events.event.json>", {}, event))
    assert whole["time"] == "2026-01-02T03:04:05Z" and "ingestion-time" not in whole
