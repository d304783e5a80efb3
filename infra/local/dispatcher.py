"""Feeds each consumer function from its SQS queue, as a Lambda event source
mapping with ReportBatchItemFailures does: receive a batch, invoke the function
with an SQS event, delete what succeeded, leave failures to come back after the
visibility timeout (and reach the dead-letter queue after maxReceiveCount).

Like Lambda's pollers, several poll each queue at once (`pollers` per queue) while it has a
backlog, so batches of one queue run concurrently (in as many of the function's sandboxes) and a
consumer keeps up with what ingest publishes; the function's pool bounds how many run at the same
moment. Like Lambda's, the extra pollers stop when the queue runs dry: an idle queue has one long
poll open, not `pollers` (each empty poll is a request the hub's one process answers, ~18 a second
for nine queues when every poller polled all the time).

The pollers are the hub's, not a function's (on AWS they are Lambda's own), so they need not go
through botocore and HTTP: `InProcessQueues` answers their receives and deletes from moto's SQS
backend in the hub's process, behind the same snapshot lock and with the same answers as the
HTTP API (two requests per batch the emulator no longer parses, routes and serialises, and that
botocore no longer builds, signs and parses in the same process)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from infra.local.emulator import ACCOUNT, REGION, ConsumerQueue

if TYPE_CHECKING:
    from infra.local.persistence import GuardedApp

Invoke = Callable[[str, dict[str, Any]], Any]


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    body = message["Body"]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: lambda_message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def lambda_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda's SQS event has it (camelCase), not as ReceiveMessage
    answers it (`{"StringValue", "DataType"}`)."""
    attribute: dict[str, Any] = {
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": value.get("BinaryListValues", []),
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return attribute


# The system attributes ReceiveMessage answers with AttributeNames=["All"] (those a message has).
SYSTEM_ATTRIBUTES = (
    ("SenderId", "sender_id"),
    ("SentTimestamp", "sent_timestamp"),
    ("ApproximateReceiveCount", "approximate_receive_count"),
    ("ApproximateFirstReceiveTimestamp", "approximate_first_receive_timestamp"),
    ("MessageDeduplicationId", "deduplication_id"),
    ("MessageGroupId", "group_id"),
    ("SequenceNumber", "sequence_number"),
)


class InProcessQueues:
    """The two SQS calls the dispatcher makes, answered by moto's SQS backend in this process in
    the shapes boto3's `receive_message` (every system and message attribute) and
    `delete_message_batch` answer. `guard`: the emulator's app, whose snapshot lock and change
    count the calls go through as an HTTP request would."""

    def __init__(self, guard: GuardedApp | None) -> None:
        self._guard = guard

    @staticmethod
    def _backend() -> Any:
        from moto.sqs.models import sqs_backends

        return sqs_backends[ACCOUNT][REGION]

    def _around(self, action: str) -> Any:
        return self._guard.direct("sqs", action) if self._guard else contextlib.nullcontext()

    def receive_message(self, *, QueueUrl: str, MaxNumberOfMessages: int, WaitTimeSeconds: int, **_: Any) -> Any:
        backend, name = self._backend(), QueueUrl.rsplit("/", 1)[-1]
        with self._around("ReceiveMessage"):
            queue = backend.get_queue(name)
            received = backend.receive_message(
                name, MaxNumberOfMessages, WaitTimeSeconds, queue.visibility_timeout, ["All"]
            )
        messages = []
        for message in received:
            answer: dict[str, Any] = {
                "MessageId": message.id,
                "ReceiptHandle": message.receipt_handle,
                "MD5OfBody": message.body_md5,
                "Body": message.body,
                "Attributes": {
                    name: str(getattr(message, attribute))
                    for name, attribute in SYSTEM_ATTRIBUTES
                    if getattr(message, attribute) is not None
                },
            }
            trace = (message.system_attributes or {}).get("AWSTraceHeader", {}).get("StringValue")
            if trace:
                answer["Attributes"]["AWSTraceHeader"] = trace
            if message.message_attributes:
                answer["MessageAttributes"] = message.message_attributes
                answer["MD5OfMessageAttributes"] = message.attribute_md5
            messages.append(answer)
        return {"Messages": messages} if messages else {}

    def delete_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> Any:
        with self._around("DeleteMessageBatch"):
            deleted, failed = self._backend().delete_message_batch(QueueUrl.rsplit("/", 1)[-1], Entries)
        return {"Successful": [{"Id": entry} for entry in deleted], "Failed": failed}


class Dispatcher:
    def __init__(
        self,
        sqs: Any,
        queues: list[ConsumerQueue],
        invoke: Invoke,
        log: Callable[[str], None] | None = None,
        wait_seconds: int = 1,
        pollers: int = 2,
    ) -> None:
        self._sqs = sqs
        self._queues = queues
        self._invoke = invoke
        self._log = log
        self._wait = wait_seconds
        self._pollers = max(1, pollers)
        self._counting = threading.Lock()
        self._stop = threading.Event()
        # Set while a queue has a backlog (its last receive came back full): its extra pollers run.
        self._backlog = {queue.queue_url: threading.Event() for queue in queues}
        self._threads: list[threading.Thread] = []
        self.delivered = 0

    def start(self) -> None:
        for queue in self._queues:
            for index in range(self._pollers):
                thread = threading.Thread(
                    target=self._run, args=(queue, index), name=f"dispatch-{queue.function}-{index}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self._wait + 5)

    def _run(self, queue: ConsumerQueue, index: int = 0) -> None:
        backlog = self._backlog[queue.queue_url]
        while not self._stop.is_set():
            if index and not backlog.wait(self._wait):
                continue  # an extra poller: only while the queue has a backlog
            try:
                self.poll_once(queue)
            except Exception as exc:  # noqa: BLE001 - keep polling; the failure is reported
                if self._log and not self._stop.is_set():  # not the emulator going away at shutdown
                    self._log(f"dispatcher for {queue.function}: {type(exc).__name__}: {exc}")
                self._stop.wait(1)

    def poll_once(self, queue: ConsumerQueue) -> int:
        messages = self._sqs.receive_message(
            QueueUrl=queue.queue_url,
            MaxNumberOfMessages=queue.batch_size,
            WaitTimeSeconds=self._wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        backlog = self._backlog.get(queue.queue_url)
        if backlog is not None:
            if len(messages) >= queue.batch_size:
                backlog.set()
            else:
                backlog.clear()
        if not messages:
            return 0
        event = {"Records": [sqs_record(m, queue.queue_arn) for m in messages]}
        try:
            result = self._invoke(queue.function, event) or {}
        except Exception as exc:  # noqa: BLE001 - a failed invocation retries the whole batch
            if self._log:
                self._log(f"{queue.function} failed a batch of {len(messages)}: {type(exc).__name__}: {exc}")
            return 0
        failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=queue.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        if failed and self._log:
            self._log(f"{queue.function}: {len(failed)} of {len(messages)} record(s) failed; they will be retried")
        with self._counting:
            self.delivered += len(done)
        return len(done)
