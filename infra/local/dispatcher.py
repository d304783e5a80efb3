"""Feeds each consumer function from its SQS queue, as a Lambda event source
mapping with ReportBatchItemFailures does: receive a batch, invoke the function
with an SQS event, delete what succeeded, leave failures to come back after the
visibility timeout (and reach the dead-letter queue after maxReceiveCount).

Like Lambda's pollers, several poll each queue at once (`pollers` per queue) while it has a
backlog, so batches of one queue run concurrently (in as many of the function's sandboxes) and a
consumer keeps up with what ingest publishes; the function's pool bounds how many run at the same
moment. Like Lambda's, the extra pollers stop when the queue runs dry: an idle queue has one long
poll open, not `pollers` (each empty poll is a request the hub's one process answers, ~18 a second
for nine queues when every poller polled all the time)."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable
from typing import Any

from infra.local.emulator import REGION, ConsumerQueue

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
