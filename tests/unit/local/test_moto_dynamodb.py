"""The embedded emulator's indexed DynamoDB queries (infra/local/moto_dynamodb.py) answer what
moto's walk of the whole table answers, after every kind of write: the same items, in the same
order, with the same pages. The reference is a Scan (which the patch leaves alone), filtered and
sorted here as DynamoDB's documentation defines a Query's answer."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from infra.local.emulator import ACCOUNT, patch_moto
from tests.conftest import AWS_TEST_ENV

TABLE = "things"
OWNERS = ("ann", "bob", "cy")
STATES = ("open", "closed")


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    patch_moto()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "owner", "at", "state")
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_owner",
                    "KeySchema": [
                        {"AttributeName": "owner", "KeyType": "HASH"},
                        {"AttributeName": "at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
                {
                    "IndexName": "by_state",  # no range key: the table's keys order it
                    "KeySchema": [{"AttributeName": "state", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                },
            ],
        )
        yield client


def stored_table() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[ACCOUNT]["us-east-1"].tables[TABLE]


def item(pk: str, sk: str, **attributes: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}, **{name: {"S": value} for name, value in attributes.items()}}


def every_page(client: Any, **query: Any) -> list[list[dict[str, Any]]]:
    pages, start = [], None
    while True:
        answer = client.query(TableName=TABLE, **query, **({"ExclusiveStartKey": start} if start else {}))
        pages.append(answer["Items"])
        start = answer.get("LastEvaluatedKey")
        if not start:
            return pages


def scanned(client: Any) -> list[dict[str, Any]]:
    return client.scan(TableName=TABLE)["Items"]


def expected_by_owner(stored: list[dict[str, Any]], owner: str, forward: bool = True) -> list[dict[str, Any]]:
    """A by_owner query's answer from a Scan: the owner's items that have `at`, by `at`, then by
    the table's keys."""
    found = [each for each in stored if each.get("owner") == {"S": owner} and "at" in each]
    found.sort(key=lambda each: (each["at"]["S"], each["pk"]["S"], each["sk"]["S"]), reverse=not forward)
    return found


def expected_by_state(stored: list[dict[str, Any]], state: str) -> list[dict[str, Any]]:
    """A by_state query's answer from a Scan. DynamoDB leaves the order of an index without a
    range key unspecified; moto orders it by the table's range key, then its hash key."""
    found = [each for each in stored if each.get("state") == {"S": state}]
    found.sort(key=lambda each: (each["sk"]["S"], each["pk"]["S"]))
    keys = ("pk", "sk", "state")  # KEYS_ONLY: the table's and the index's keys
    return [{name: each[name] for name in keys} for each in found]


def by_owner(client: Any, owner: str, **more: Any) -> list[dict[str, Any]]:
    return [
        each
        for page in every_page(
            client,
            IndexName="by_owner",
            KeyConditionExpression="#o = :o",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":o": {"S": owner}},
            **more,
        )
        for each in page
    ]


def by_state(client: Any, state: str) -> list[dict[str, Any]]:
    answer = client.query(
        TableName=TABLE,
        IndexName="by_state",
        KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":s": {"S": state}},
    )
    return answer["Items"]


def test_a_query_on_the_tables_key_reads_the_one_partition_in_range_order(dynamodb: Any) -> None:
    for pk in ("a", "b"):
        for sk in ("3", "1", "2"):
            dynamodb.put_item(TableName=TABLE, Item=item(pk, sk, owner="ann"))
    answer = dynamodb.query(
        TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "b"}}
    )
    assert [(each["pk"]["S"], each["sk"]["S"]) for each in answer["Items"]] == [("b", "1"), ("b", "2"), ("b", "3")]
    backwards = dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :p AND sk > :s",
        ExpressionAttributeValues={":p": {"S": "b"}, ":s": {"S": "1"}},
        ScanIndexForward=False,
    )
    assert [each["sk"]["S"] for each in backwards["Items"]] == ["3", "2"]
    nothing = dynamodb.query(
        TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "zz"}}
    )
    assert nothing["Items"] == [] and nothing["Count"] == 0


def test_an_index_follows_updates_that_move_remove_or_add_its_key(dynamodb: Any) -> None:
    dynamodb.put_item(TableName=TABLE, Item=item("a", "1", owner="ann", at="2026-01-01", state="open"))
    dynamodb.put_item(TableName=TABLE, Item=item("a", "2", owner="ann", at="2026-01-02"))
    assert [each["sk"]["S"] for each in by_owner(dynamodb, "ann")] == ["1", "2"]
    assert "by_owner" in stored_table().__dict__["switchboard_indexes"]  # built by that query, kept from now on

    dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "a"}, "sk": {"S": "1"}},
        UpdateExpression="SET #o = :o",
        ExpressionAttributeNames={"#o": "owner"},
        ExpressionAttributeValues={":o": {"S": "bob"}},
    )
    dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "a"}, "sk": {"S": "2"}},
        UpdateExpression="REMOVE #o",
        ExpressionAttributeNames={"#o": "owner"},
    )
    dynamodb.update_item(  # an update that creates the item
        TableName=TABLE,
        Key={"pk": {"S": "c"}, "sk": {"S": "9"}},
        UpdateExpression="SET #o = :o, #t = :t",
        ExpressionAttributeNames={"#o": "owner", "#t": "at"},
        ExpressionAttributeValues={":o": {"S": "ann"}, ":t": {"S": "2026-01-03"}},
    )
    assert [each["pk"]["S"] for each in by_owner(dynamodb, "ann")] == ["c"]
    assert [each["sk"]["S"] for each in by_owner(dynamodb, "bob")] == ["1"]

    dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": "a"}, "sk": {"S": "1"}})
    assert by_owner(dynamodb, "bob") == []
    assert by_state(dynamodb, "open") == []


def owner_of_a1_set_to(owner: str, condition: str | None = None) -> dict[str, Any]:
    """A transaction's Update of item (a, 1)'s owner, with a condition when given."""
    update: dict[str, Any] = {
        "TableName": TABLE,
        "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
        "UpdateExpression": "SET #o = :o",
        "ExpressionAttributeNames": {"#o": "owner"},
        "ExpressionAttributeValues": {":o": {"S": owner}},
    }
    if condition:
        update["ConditionExpression"] = condition
    return update


def test_a_failed_transaction_leaves_the_index_as_the_table_was(dynamodb: Any) -> None:
    dynamodb.put_item(TableName=TABLE, Item=item("a", "1", owner="ann", at="2026-01-01"))
    assert len(by_owner(dynamodb, "ann")) == 1
    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": item("b", "1", owner="ann", at="2026-01-02")}},
                {"Update": owner_of_a1_set_to("bob", condition="attribute_not_exists(pk)")},  # fails: it exists
            ]
        )
    assert [each["pk"]["S"] for each in by_owner(dynamodb, "ann")] == ["a"]
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": item("b", "1", owner="bob", at="2026-01-02")}},
            {"Update": owner_of_a1_set_to("bob")},
        ]
    )
    assert by_owner(dynamodb, "ann") == []
    assert [each["pk"]["S"] for each in by_owner(dynamodb, "bob")] == ["a", "b"]


# One write, as hypothesis draws it: which, on which item, with which owner, time and state.
WRITES = st.tuples(
    st.sampled_from(("put", "update", "remove_owner", "delete", "batch_put", "transact_put")),
    st.sampled_from(("p1", "p2", "p3")),
    st.sampled_from(("s1", "s2", "s3")),
    st.sampled_from(OWNERS),
    st.sampled_from(("2026-01-01", "2026-01-02", "2026-01-03")),
    st.sampled_from(STATES),
)


def write(client: Any, kind: str, pk: str, sk: str, owner: str, at: str, state: str) -> None:
    key = {"pk": {"S": pk}, "sk": {"S": sk}}
    if kind == "put":
        client.put_item(TableName=TABLE, Item=item(pk, sk, owner=owner, at=at, state=state))
    elif kind == "update":
        client.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET #o = :o, #t = :t, #s = :s",
            ExpressionAttributeNames={"#o": "owner", "#t": "at", "#s": "state"},
            ExpressionAttributeValues={":o": {"S": owner}, ":t": {"S": at}, ":s": {"S": state}},
        )
    elif kind == "remove_owner":
        client.update_item(
            TableName=TABLE, Key=key, UpdateExpression="REMOVE #o", ExpressionAttributeNames={"#o": "owner"}
        )
    elif kind == "delete":
        client.delete_item(TableName=TABLE, Key=key)
    elif kind == "batch_put":
        client.batch_write_item(
            RequestItems={TABLE: [{"PutRequest": {"Item": item(pk, sk, owner=owner, at=at, state=state)}}]}
        )
    else:
        client.transact_write_items(
            TransactItems=[{"Put": {"TableName": TABLE, "Item": item(pk, sk, owner=owner, at=at)}}]
        )


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=st.lists(WRITES, min_size=1, max_size=25), query_after=st.integers(min_value=0, max_value=24))
def test_every_index_query_answers_what_a_walk_of_the_table_answers(
    dynamodb: Any, writes: list[tuple[str, ...]], query_after: int
) -> None:
    for each in scanned(dynamodb):  # hypothesis reuses the fixture's table across examples
        dynamodb.delete_item(TableName=TABLE, Key={"pk": each["pk"], "sk": each["sk"]})
    for position, drawn in enumerate(writes):
        write(dynamodb, *drawn)
        if position == query_after:  # the indexes are built mid-way, then kept by the writes after
            by_owner(dynamodb, "ann")
            by_state(dynamodb, "open")
    stored = scanned(dynamodb)
    for owner in OWNERS:
        assert by_owner(dynamodb, owner) == expected_by_owner(stored, owner)
        assert by_owner(dynamodb, owner, ScanIndexForward=False) == expected_by_owner(stored, owner, forward=False)
        assert by_owner(dynamodb, owner, Limit=2) == expected_by_owner(stored, owner)  # page by page
    for state in STATES:
        assert by_state(dynamodb, state) == expected_by_state(stored, state)


def test_a_scan_beside_writes_on_other_threads_sees_the_table_between_writes(dynamodb: Any) -> None:
    """moto walked the table's dicts while other threads wrote new partitions into them
    ("dictionary changed size during iteration": a Scan of the event log answered 500 while the
    event log kept writing, at the end of the 20,000-webhook reconciliation)."""
    from moto.dynamodb.models import dynamodb_backends

    backend, table = dynamodb_backends[ACCOUNT]["us-east-1"], stored_table()
    for n in range(2_000):
        backend.put_item(TABLE, item(f"p{n}", "s", owner="ann"))
    stop = threading.Event()

    def write() -> None:  # as moto's server writes: through the backend, one thread per request
        n = 0
        while not stop.is_set():
            backend.put_item(TABLE, item(f"new{n}", "s"))
            n += 1

    writer = threading.Thread(target=write)
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # hand the interpreter over often, as a busy server does
    writer.start()
    try:
        counts = [sum(1 for _ in table.all_items()) for _ in range(30)]
    finally:
        stop.set()
        writer.join()
        sys.setswitchinterval(switching)
    assert all(count >= 2_000 for count in counts)
    assert len(scanned(dynamodb)) >= 2_000
