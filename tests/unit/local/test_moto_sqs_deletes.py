"""The embedded emulator's SQS keeps every message sent while others are deleted
(emulator.patch_moto_atomic_operations). moto's delete rebuilt the queue's message list and
assigned it while a send appended to the old one: the 20,000-webhook reconciliation lost nine
acknowledged events that way (the bus delivered them to routing's queue; the event log's queue
dropped them while its consumer deleted what it had logged)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local.emulator import ACCOUNT, patch_moto
from tests.conftest import AWS_TEST_ENV

QUEUE = "event-log"


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    patch_moto()
    with mock_aws():
        boto3.client("sqs", region_name="us-east-1").create_queue(QueueName=QUEUE)
        from moto.sqs.models import sqs_backends

        yield sqs_backends[ACCOUNT]["us-east-1"]


def test_a_delete_waits_while_a_send_appends_so_the_sent_message_stays(queue: Any) -> None:
    """moto's send appends under the queue's condition lock; a delete that does not take it
    can assign its rebuilt list over the append (a window of a few bytecodes: a stress test
    passed with and without the patch, so the lock itself is checked)."""
    from moto.sqs.models import Message

    stored = queue.get_queue(QUEUE)
    queue.send_message(QUEUE, "logged")
    taken = queue.receive_message(QUEUE, 1, 0, 30)
    deleted = threading.Event()

    def delete() -> None:
        queue.delete_message(QUEUE, taken[0].receipt_handle)
        deleted.set()

    with stored._messages_lock:  # as Queue.add_message holds it while it appends
        deleter = threading.Thread(target=delete)
        deleter.start()
        stored._messages.append(Message(message_id="sent-meanwhile", body="sent meanwhile"))
        assert not deleted.wait(0.3), "the delete ran while a send held the queue's lock"
    deleter.join(5)
    assert deleted.is_set()
    assert [message.body for message in stored._messages] == ["sent meanwhile"]
