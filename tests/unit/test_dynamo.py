"""The shared conditional-write helper every store uses, against moto."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from switchboard_core import aws
from switchboard_core.dynamo import all_of, conditional_write
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.rules import RuleSet


def test_applied_refused_and_other_errors(aws_world):
    table = aws.resource("dynamodb").Table(aws_world.names.table("replies"))
    first = conditional_write(table.put_item, Item={"pk": "a"}, ConditionExpression="attribute_not_exists(pk)")
    again = conditional_write(table.put_item, Item={"pk": "a"}, ConditionExpression="attribute_not_exists(pk)")
    assert (first, again) == (True, False)
    missing = aws.resource("dynamodb").Table("no-such-table")
    with pytest.raises(ClientError):  # not a condition failure: raised
        conditional_write(missing.put_item, Item={"pk": "b"}, ConditionExpression="attribute_not_exists(pk)")


def test_a_stale_rule_set_version_is_not_saved(aws_world):
    store = RoutingConfigStore(aws.resource("dynamodb").Table(aws_world.names.table("routing")))
    rules = RuleSet.model_validate({"default_team": "front-desk", "rules": []})
    now = datetime(2026, 11, 23, tzinfo=UTC)
    assert store.put_rules("acme", rules, None, now) == 1
    assert store.put_rules("acme", rules, None, now) is None  # someone saved version 1 meanwhile
    assert store.put_rules("acme", rules, 1, now) == 2
    assert store.put_rules("acme", rules, 1, now) is None


def test_all_of_keeps_only_items_meeting_every_condition(aws_world):
    from boto3.dynamodb.conditions import Attr

    table = aws.resource("dynamodb").Table(aws_world.names.table("routing"))
    for n, (colour, size) in enumerate([("red", 1), ("red", 2), ("blue", 2)]):
        table.put_item(Item={"pk": "p", "sk": str(n), "colour": colour, "size": size})
    found = table.scan(FilterExpression=all_of([Attr("colour").eq("red"), Attr("size").eq(2)]))["Items"]
    assert [item["sk"] for item in found] == ["1"]
    assert len(table.scan(FilterExpression=all_of([Attr("colour").eq("red")]))["Items"]) == 2
