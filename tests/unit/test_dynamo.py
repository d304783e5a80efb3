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


def test_key_reads_answer_as_the_table_resource_does(aws_world):
    from decimal import Decimal

    from switchboard_core.dynamo import KeyReads

    name = aws_world.names.table("connections")
    table = aws.resource("dynamodb").Table(name)
    table.put_item(Item={"id": "con_1", "tenant": "acme", "count": 3, "tags": ["a", "b"], "nested": {"x": True}})
    reads = KeyReads(aws.client("dynamodb"), name)
    expected = table.get_item(Key={"id": "con_1"})["Item"]
    assert reads.get_item(Key={"id": "con_1"}, ConsistentRead=True)["Item"] == expected
    assert reads.get_item(Key={"id": "con_1"})["Item"]["count"] == Decimal(3)
    assert reads.get_item(Key={"id": "con_2"}) == {}


def test_a_connection_is_kept_for_its_max_age_and_an_unknown_id_never():
    from switchboard_core.connections import ConnectionStore
    from switchboard_core.errors import NotFound

    class Table:
        def __init__(self) -> None:
            self.items: dict[str, dict[str, str]] = {}
            self.reads = 0

        def get_item(self, *, Key: dict[str, str], **_: object) -> dict[str, object]:
            self.reads += 1
            item = self.items.get(Key["id"])
            return {} if item is None else {"Item": item}

    table = Table()
    cached, uncached = ConnectionStore(table, max_age_seconds=60), ConnectionStore(table)
    with pytest.raises(NotFound):
        cached.get("con_new")
    table.items["con_new"] = {"id": "con_new", "provider": "twilio", "tenant": "t", "created_at": "2026-01-01T00:00Z"}
    assert cached.get("con_new").tenant == "t"  # a miss was not cached: found at once
    reads = table.reads
    cached.get("con_new")
    assert table.reads == reads  # kept
    uncached.get("con_new")
    uncached.get("con_new")
    assert table.reads == reads + 2  # without a max age, read every time
    del table.items["con_new"]
    assert cached.get("con_new").id == "con_new"  # a deleted connection lives on until the max age
    expired = ConnectionStore(table, max_age_seconds=1e-9)
    with pytest.raises(NotFound):
        expired.get("con_new")
