"""The local runtime's delivery queue on the embedded emulator (moto's server, as `switchboard
dev` runs it): the dispatcher feeds the delivery function from it like every consumer, the
queue URL the functions are given reaches it, and a failed record whose visibility the
function changed (the retry schedule) comes back after that time, not before and not after
the queue's own visibility timeout."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from infra import topology
from infra.local.dispatcher import Dispatcher, InProcessQueues
from infra.local.emulator import ConsumerQueue, Emulator, LocalNames, aws_environment, create_resources
from infra.local.lambdas import InvalidDeliveryPolicy
from infra.local.runtime import LocalRuntime


@pytest.fixture(scope="module")
def emulator() -> Iterator[tuple[Any, list[ConsumerQueue], LocalNames]]:
    import os

    from switchboard_core import aws

    saved = {key: os.environ.get(key) for key in aws_environment("")}
    server = Emulator()
    server.start()
    try:
        names = LocalNames("dq")
        queues = create_resources(names)
        yield aws.client("sqs"), queues, names
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        aws.reset_clients()


def delivery_queue(queues: list[ConsumerQueue]) -> ConsumerQueue:
    (queue,) = [q for q in queues if q.function == "delivery"]
    return queue


def test_the_dispatcher_feeds_the_delivery_function_one_message_at_a_time(emulator: Any) -> None:
    sqs, queues, names = emulator
    queue = delivery_queue(queues)
    assert queue.batch_size == topology.FUNCTIONS["delivery"].consumer.batch_size == 1
    assert queue.queue_url.endswith(f"/{names.queue(topology.DELIVERY_QUEUE)}")
    redrive = sqs.get_queue_attributes(QueueUrl=queue.queue_url, AttributeNames=["RedrivePolicy", "VisibilityTimeout"])
    attributes = redrive["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] in (50, "50")
    assert attributes["VisibilityTimeout"] == "180"

    # The URL the functions get (DELIVERY_QUEUE_URL, from LocalNames.mapping) names the same queue.
    given_url = names.mapping()[f"queue_url:{topology.DELIVERY_QUEUE}"]
    for body in ('{"subscription": "sub_1"}', '{"subscription": "sub_2"}'):
        sqs.send_message(QueueUrl=given_url, MessageBody=body)
    seen: list[list[str]] = []

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        assert function == "delivery"
        seen.append([record["body"] for record in event["Records"]])
        return {"batchItemFailures": []}

    dispatcher = Dispatcher(InProcessQueues(None), queues, invoke, wait_seconds=1)  # as the runtime's
    assert dispatcher.poll_once(queue) + dispatcher.poll_once(queue) == 2
    assert sorted(seen) == [['{"subscription": "sub_1"}'], ['{"subscription": "sub_2"}']]
    assert dispatcher.poll_once(queue) == 0  # both deleted


def test_the_dispatchers_in_process_calls_answer_as_the_sqs_api_does(emulator: Any) -> None:
    sqs, _, _ = emulator
    url = sqs.create_queue(QueueName="dq-in-process", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    attributes = {
        "kind": {"DataType": "String", "StringValue": "timer"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    }
    sqs.send_message(QueueUrl=url, MessageBody='{"n": 1}', MessageAttributes=attributes)
    queues = InProcessQueues(None)
    (direct,) = queues.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    (over_http,) = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]  # the same message again (visibility 0), received a second time
    assert direct.keys() == over_http.keys() and direct["Attributes"].keys() == over_http["Attributes"].keys()
    for name in ("MessageId", "Body", "MD5OfBody", "MessageAttributes", "MD5OfMessageAttributes"):
        assert direct[name] == over_http[name], name
    assert (direct["Attributes"]["ApproximateReceiveCount"], over_http["Attributes"]["ApproximateReceiveCount"]) == (
        "1",
        "2",
    )
    deleted = queues.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "0", "ReceiptHandle": over_http["ReceiptHandle"]}, {"Id": "1", "ReceiptHandle": "not-one"}],
    )
    assert deleted["Successful"] == [{"Id": "0"}] and [f["Code"] for f in deleted["Failed"]] == [
        "ReceiptHandleIsInvalid"
    ]
    assert queues.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0) == {}


def test_a_record_whose_visibility_the_function_changed_comes_back_after_that_time(emulator: Any) -> None:
    sqs, queues, _ = emulator
    queue = delivery_queue(queues)
    sqs.send_message(QueueUrl=queue.queue_url, MessageBody='{"subscription": "sub_retry"}')
    calls: list[tuple[float, str]] = []

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        (record,) = event["Records"]
        calls.append((time.monotonic(), record["attributes"]["ApproximateReceiveCount"]))
        if len(calls) == 1:  # attempt 1 failed: retry in 3 s, as the delivery function does
            sqs.change_message_visibility(
                QueueUrl=queue.queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=3
            )
            return {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
        return {"batchItemFailures": []}

    dispatcher = Dispatcher(InProcessQueues(None), queues, invoke, wait_seconds=1)
    assert dispatcher.poll_once(queue) == 0  # failed, left in the queue
    assert dispatcher.poll_once(queue) == 0 and len(calls) == 1  # invisible for now
    deadline = time.monotonic() + 15  # far below the queue's 180 s visibility timeout
    while len(calls) < 2 and time.monotonic() < deadline:
        dispatcher.poll_once(queue)
    assert [count for _, count in calls] == ["1", "2"]
    waited = calls[1][0] - calls[0][0]
    assert 2.5 <= waited < 10, waited
    assert dispatcher.poll_once(queue) == 0  # delivered the second time, deleted


def test_a_bad_delivery_policy_stops_the_runtime_before_it_starts(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidDeliveryPolicy, match="retry_jitter"):
        LocalRuntime(state_dir=tmp_path, port=0, delivery_policy={"retry_jitter": 5}).start()
    monkeypatch.setenv("SWITCHBOARD_DELIVERY_POLICY", '{"timeout_seconds": 0}')
    with pytest.raises(InvalidDeliveryPolicy, match="timeout_seconds"):
        LocalRuntime(state_dir=tmp_path, port=0).start()
    assert not (tmp_path / "runtime.json").exists()


def test_an_idle_queue_has_one_poller_and_a_backlog_wakes_the_others(emulator: Any) -> None:
    sqs, queues, _ = emulator
    queue = delivery_queue(queues)
    receives: list[str] = []

    class CountingSqs:
        def receive_message(self, **kwargs: Any) -> Any:
            receives.append(threading.current_thread().name)
            return sqs.receive_message(**kwargs)

        def delete_message_batch(self, **kwargs: Any) -> Any:
            return sqs.delete_message_batch(**kwargs)

    handled: list[str] = []

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        handled.extend(record["body"] for record in event["Records"])
        time.sleep(0.2)  # long enough for a second poller to take the next record meanwhile
        return {"batchItemFailures": []}

    dispatcher = Dispatcher(CountingSqs(), [queue], invoke, wait_seconds=1, pollers=2)
    dispatcher.start()
    try:
        time.sleep(2.5)
        assert {name.rsplit("-", 1)[1] for name in receives} == {"0"}, "an idle queue: only its first poller polls"
        bodies = [json.dumps({"subscription": f"sub_backlog_{i}"}) for i in range(6)]
        for body in bodies:
            sqs.send_message(QueueUrl=queue.queue_url, MessageBody=body)
        deadline = time.monotonic() + 20
        while len(handled) < len(bodies) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        dispatcher.stop()
    assert sorted(handled) == sorted(bodies)
    assert {name.rsplit("-", 1)[1] for name in receives} == {"0", "1"}, "a backlog: the second poller joins"
