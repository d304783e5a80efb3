"""infra/local/persistence.py: moto's backends survive a pickle round trip in place, the journal
keeps what was appended (a line cut short by a kill is skipped), a snapshot seals and drops the
journal it covers, the gateway journals exactly the acknowledged webhooks, and the restart-time
clean-ups. The whole of it against a SIGKILLed `switchboard dev`: tests/load/test_reconcile.py."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from werkzeug.test import Client

from infra.local.gateway import Gateway
from infra.local.persistence import (
    GuardedApp,
    Journal,
    Lanes,
    PersistentState,
    SharedExclusiveLock,
    aws_action,
    aws_service,
    caller,
    dump_backends,
    is_read,
    load_backends,
)
from infra.local.runtime import release_in_progress
from switchboard_core import aws
from tests.conftest import AwsWorld


def test_backends_come_back_in_place_after_everything_changed(aws_world: AwsWorld) -> None:
    names = aws_world.names
    table = aws.resource("dynamodb").Table(names.table("api_keys"))
    table.put_item(Item={"key_hash": "kept", "tenant": "t1"})
    queue = aws_world.queues[0]
    aws.client("sqs").send_message(QueueUrl=queue.queue_url, MessageBody="kept message")
    aws.client("secretsmanager").create_secret(Name="switchboard/test/kept", SecretString="s3cret")
    aws.client("events").put_rule(Name="kept-rule", EventBusName=names.bus, EventPattern='{"source": ["x"]}')
    data, skipped = dump_backends()
    assert "sqs" not in skipped and "dynamodb" not in skipped

    table.delete_item(Key={"key_hash": "kept"})
    aws.client("sqs").purge_queue(QueueUrl=queue.queue_url)
    aws.client("secretsmanager").delete_secret(SecretId="switchboard/test/kept", ForceDeleteWithoutRecovery=True)
    aws.client("events").delete_rule(Name="kept-rule", EventBusName=names.bus)
    assert load_backends(data) > 0

    assert table.get_item(Key={"key_hash": "kept"})["Item"]["tenant"] == "t1"
    received = aws.client("sqs").receive_message(QueueUrl=queue.queue_url).get("Messages", [])
    assert [m["Body"] for m in received] == ["kept message"]
    secret = aws.client("secretsmanager").get_secret_value(SecretId="switchboard/test/kept")
    assert secret["SecretString"] == "s3cret"
    assert aws.client("events").describe_rule(Name="kept-rule", EventBusName=names.bus)["Name"] == "kept-rule"


def test_in_progress_idempotency_records_are_released_at_restart(aws_world: AwsWorld) -> None:
    table_name = aws_world.names.table("idempotency")
    dynamodb = aws.client("dynamodb")
    dynamodb.put_item(TableName=table_name, Item={"id": {"S": "cut-short"}, "status": {"S": "INPROGRESS"}})
    dynamodb.put_item(TableName=table_name, Item={"id": {"S": "done"}, "status": {"S": "COMPLETED"}})
    assert release_in_progress(dynamodb, table_name) == 1
    kept = {item["id"]["S"] for item in dynamodb.scan(TableName=table_name)["Items"]}
    assert kept == {"done"}


def test_the_journal_keeps_whole_lines_and_forgets_what_a_snapshot_covers(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    journal.append({"n": 1})
    sealed = journal.seal()
    journal.append({"n": 2})
    with (tmp_path / "journal" / f"{sealed + 1}.jsonl").open("ab") as file:
        file.write(b'{"n": 3, "cut short by a ki')  # the process died mid-write
    assert [e["n"] for e in journal.entries(sealed + 1)] == [1, 2]
    journal.drop_through(sealed)
    assert [e["n"] for e in journal.entries(sealed + 1)] == [2]
    journal.close()
    assert [e["n"] for e in Journal(tmp_path / "journal").entries(10**6)] == [2]  # a restart reads it all


def test_a_snapshot_waits_for_requests_in_flight_and_holds_new_ones() -> None:
    lock = SharedExclusiveLock()
    order: list[str] = []
    entered = threading.Event()
    release = threading.Event()

    def request() -> None:
        with lock.shared():
            entered.set()
            release.wait(5)
            order.append("request")

    worker = threading.Thread(target=request)
    worker.start()
    entered.wait(5)

    def snapshot_now() -> None:
        with lock.exclusive():
            order.append("snapshot")

    snapshot = threading.Thread(target=snapshot_now)
    snapshot.start()
    snapshot.join(0.2)
    assert snapshot.is_alive(), "the snapshot must wait for the request in flight"
    release.set()
    worker.join(5)
    snapshot.join(5)
    assert order == ["request", "snapshot"]


def test_aws_actions_that_change_state_are_counted() -> None:
    assert aws_action({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem"}) == "PutItem"
    assert aws_action({"REQUEST_METHOD": "GET"}) == "GET"
    assert is_read("GetItem") and is_read("Query") and is_read("GET") and is_read("ListRules")
    assert not is_read("PutItem") and not is_read("SendMessage") and not is_read("PUT")

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"{}"]

    guarded = GuardedApp(app, SharedExclusiveLock())
    client = Client(guarded)
    client.post("/", headers={"X-Amz-Target": "DynamoDB_20120810.GetItem"})
    client.post("/", headers={"X-Amz-Target": "AmazonSQS.ReceiveMessage"})
    assert guarded.changes == 0
    client.post("/", headers={"X-Amz-Target": "DynamoDB_20120810.PutItem"})
    assert guarded.changes == 1


def test_the_hubs_in_process_calls_take_the_snapshot_lock_and_count_as_requests_do() -> None:
    lock = SharedExclusiveLock()
    guarded = GuardedApp(None, lock)  # type: ignore[arg-type]  # no HTTP request here
    snapshot_waited: list[bool] = []

    def try_a_snapshot() -> None:
        taker = threading.Thread(target=lambda: lock.exclusive().__enter__())
        taker.daemon = True
        taker.start()
        taker.join(0.2)
        snapshot_waited.append(taker.is_alive())

    with guarded.direct("sqs", "ReceiveMessage"):  # a long poll: never holds a snapshot
        try_a_snapshot()
    assert snapshot_waited == [False] and guarded.changes == 0
    lock = guarded._lock = SharedExclusiveLock()  # the one above is held by that snapshot for good
    guarded.tally, guarded.cpu_tally = Counter(), {}
    with guarded.direct("sqs", "DeleteMessageBatch"):
        try_a_snapshot()
    assert snapshot_waited == [False, True] and guarded.changes == 1
    assert guarded.tally == {("hub", "sqs", "DeleteMessageBatch (in-process)"): 1}


def test_fresh_discards_the_snapshot_and_the_journal(tmp_path: Path) -> None:
    (tmp_path / "emulator.pickle").write_bytes(b"old")
    (tmp_path / "journal").mkdir()
    (tmp_path / "journal" / "7.jsonl").write_text("{}\n")
    (tmp_path / "admin-key").write_text("sb_kept\n")
    PersistentState.discard(tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["admin-key", "journal"]


class Recorder:
    def __init__(self, status: int) -> None:
        self.status = status

    def __call__(self, name: str, event: dict[str, Any]) -> Any:
        if name == "authorizer":
            return {"isAuthorized": True, "context": {}}
        return {"statusCode": self.status, "body": "{}"}


def gateway_with(status: int) -> tuple[Client, list[dict[str, Any]], list[str]]:
    journalled: list[dict[str, Any]] = []
    saved: list[str] = []
    gateway = Gateway(Recorder(status), journal=journalled.append, after_admin_change=lambda: saved.append("saved"))
    return Client(gateway), journalled, saved


def test_the_gateway_journals_acknowledged_webhooks_before_answering() -> None:
    client, journalled, saved = gateway_with(200)
    answer = client.post("/webhooks/twilio/con_1", data=b"Body=hi", content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 200
    assert [e["rawPath"] for e in journalled] == ["/webhooks/twilio/con_1"]
    assert journalled[0]["body"] == "Body=hi" and journalled[0]["requestContext"]["timeEpoch"] > 0
    client.get("/webhooks/meta/con_2?hub.mode=subscribe")  # a handshake stores nothing: nothing to keep
    assert len(journalled) == 1 and not saved
    client.post("/admin/keys", data=json.dumps({}), headers={"Authorization": "Bearer sb_x"})
    client.get("/admin/keys", headers={"Authorization": "Bearer sb_x"})
    assert saved == ["saved"]


def test_refused_webhooks_are_not_journalled() -> None:
    client, journalled, saved = gateway_with(401)
    assert client.post("/webhooks/twilio/con_1", data=b"x").status_code == 401
    client.post("/admin/keys", data=b"{}", headers={"Authorization": "Bearer sb_x"})
    assert journalled == [] and saved == []


def test_ingest_verifies_a_request_as_of_its_arrival() -> None:
    from datetime import UTC, datetime

    from functions.ingest.handler import received_time

    assert received_time({"requestContext": {"timeEpoch": 1_700_000_000_123}}) == datetime(
        2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC
    )
    before = datetime.now(UTC)
    assert received_time({"requestContext": {}}) >= before
    assert received_time({"requestContext": {"timeEpoch": "soon"}}) >= before


def test_callers_requests_go_first_and_consumers_still_get_through() -> None:
    lanes = Lanes(frozenset({"ingest"}), max_wait=2.0)
    order: list[str] = []
    ingest_in = threading.Event()
    ingest_done = threading.Event()

    def ingest() -> None:
        with lanes.lane("ingest"):
            ingest_in.set()
            ingest_done.wait(5)
            order.append("ingest")

    def consumer(name: str) -> None:
        with lanes.lane(name):
            order.append(name)

    caller = threading.Thread(target=ingest)
    caller.start()
    ingest_in.wait(5)
    with lanes.lane("routing"):  # one consumer request may run beside the caller's
        second = threading.Thread(target=consumer, args=("event_log",))
        second.start()
        second.join(0.3)
        assert second.is_alive(), "a second consumer request waits while a caller's is served"
        hub = threading.Thread(target=consumer, args=(None,))
        hub.start()
        hub.join(2)
        assert not hub.is_alive(), "the hub's own requests are never held"
    second.join(2)
    assert not second.is_alive(), "its turn came once the first consumer request ended"
    ingest_done.set()
    caller.join(5)
    assert order == [None, "event_log", "ingest"] and lanes.held == 1


def test_a_consumer_waits_for_its_turn_no_longer_than_max_wait() -> None:
    lanes = Lanes(frozenset({"ingest"}), max_wait=0.2)
    with lanes.lane("ingest"), lanes.lane("routing"):
        started = time.monotonic()
        with lanes.lane("event_log"):
            waited = time.monotonic() - started
    assert 0.15 <= waited < 2


def test_the_caller_of_a_request_is_its_user_agent_app_id() -> None:
    agent = "Boto3/1.40 md/Botocore#1.40 ua/2.1 os/linux lang/python#3.11 app/event_log cfg/retry-mode#legacy"
    assert caller({"HTTP_USER_AGENT": agent}) == "event_log"
    assert caller({"HTTP_USER_AGENT": "Boto3/1.40 md/Botocore#1.40"}) is None
    scope = "AWS4-HMAC-SHA256 Credential=testing/20261202/us-east-1/dynamodb/aws4_request, SignedHeaders=host"
    assert aws_service({"HTTP_AUTHORIZATION": scope}) == "dynamodb"


def state_with_one_journalled_webhook(tmp_path: Path) -> PersistentState:
    """A hub's state, restored (empty), around a WSGI app that answers {}, with one webhook journalled."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"{}"]

    state = PersistentState(tmp_path)
    state.wrap(app)
    state.restore()
    assert state.journal is not None
    state.journal.append({"rawPath": "/webhooks/twilio/con_1"})
    return state


def test_a_snapshot_is_written_by_a_forked_child_and_covers_the_sealed_journal(
    aws_world: AwsWorld, tmp_path: Path
) -> None:
    table = aws.resource("dynamodb").Table(aws_world.names.table("api_keys"))
    table.put_item(Item={"key_hash": "in-the-snapshot", "tenant": "t1"})

    state = state_with_one_journalled_webhook(tmp_path)
    assert state.snapshot(force=True)
    assert state.journal.numbers() == [2], "the sealed file the snapshot covers is gone"
    assert 0 < state.last_pause <= state.last_write
    table.delete_item(Key={"key_hash": "in-the-snapshot"})
    assert load_backends(state.snapshot_file.read_bytes()) > 0
    assert table.get_item(Key={"key_hash": "in-the-snapshot"})["Item"]["tenant"] == "t1"
    state.journal.close()


def test_a_forked_writer_that_stalls_is_killed_and_the_snapshot_taken_in_place(
    aws_world: AwsWorld, tmp_path: Path, monkeypatch: Any
) -> None:
    """A lock another thread held at the fork would stall the child forever: the hub gives up on
    it after the timeout and pickles under its own lock instead, so the journal is still dropped."""
    import os

    from infra.local import persistence

    table = aws.resource("dynamodb").Table(aws_world.names.table("api_keys"))
    table.put_item(Item={"key_hash": "kept-anyway", "tenant": "t1"})
    hub = os.getpid()
    real_dump = persistence.dump_backends

    def stalls_in_the_child() -> Any:
        if os.getpid() != hub:
            time.sleep(60)
        return real_dump()

    monkeypatch.setattr(persistence, "dump_backends", stalls_in_the_child)
    monkeypatch.setattr(persistence, "SNAPSHOT_CHILD_TIMEOUT_SECONDS", 0.5)

    state = state_with_one_journalled_webhook(tmp_path)
    started = time.monotonic()
    assert state.snapshot(force=True)
    assert time.monotonic() - started < 30, "waited for the stalled child"
    assert state.journal.numbers() == [2]
    table.delete_item(Key={"key_hash": "kept-anyway"})
    assert load_backends(state.snapshot_file.read_bytes()) > 0
    assert table.get_item(Key={"key_hash": "kept-anyway"})["Item"]["tenant"] == "t1"
    state.journal.close()


def test_a_table_restored_from_an_older_snapshot_gets_the_indexes_the_topology_added(aws_world: AwsWorld) -> None:
    """A hub kept across an upgrade: its snapshot's tables have the indexes of the day it was taken;
    starting again adds the new ones (filled from the items), as CloudFormation does on AWS."""
    from infra import topology
    from infra.local.emulator import create_resources, key_schema

    dynamodb = aws.client("dynamodb")
    name = aws_world.names.table("messages")
    dynamodb.delete_table(TableName=name)
    dynamodb.create_table(  # as before `by_unpointed`
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "conversation", "sort_key")],
        KeySchema=key_schema("pk", None),
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_conversation",
                "KeySchema": key_schema("conversation", "sort_key"),
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    dynamodb.put_item(TableName=name, Item={"pk": {"S": "MSG#kept"}, "unpointed": {"S": "twilio#SM1"}})
    create_resources(aws_world.names)
    indexes = dynamodb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"]
    assert {i["IndexName"] for i in indexes} == {i.name for i in topology.TABLES["messages"].indexes}
    found = dynamodb.query(
        TableName=name,
        IndexName="by_unpointed",
        KeyConditionExpression="unpointed = :u",
        ExpressionAttributeValues={":u": {"S": "twilio#SM1"}},
    )["Items"]
    assert [item["pk"]["S"] for item in found] == ["MSG#kept"]
