"""The answers consumer through its handler (as Lambda calls it), against moto and the
loopback provider sandbox: the send, its status on the bus, a provider outage reported as a
batch item failure with the message's visibility moved, and no secret in the log."""

from __future__ import annotations

import pytest

from functions.admin import answers as admin
from functions.answers import logic
from infra.local.lambdas import LocalFunctions
from infra.local.provider_apis import ProviderApis, serve
from switchboard_core import aws
from switchboard_core.outbound import API_OVERRIDE_ENV
from tests.conftest import capture_function_log
from tests.unit.answers.test_answers import NOW, OUTBOUND, PHONE, STAFF, World
from tests.unit.event_log.test_event_log_consumer import envelope


@pytest.fixture
def consumer(aws_world):
    apis = ProviderApis()
    server, url = serve(apis)
    apis.accept("twilio", OUTBOUND)
    world = World(aws_world.names)
    functions = LocalFunctions(
        aws_world.names.mapping(), "test", extra_env={API_OVERRIDE_ENV: url, "PUBLIC_BASE_URL": "https://hub.example"}
    )
    (queue,) = [q for q in aws_world.queues if q.function == "answers"]
    yield world, functions, apis, queue, aws_world
    server.shutdown()


def received(queue, body: str) -> dict:
    """The Lambda event for `body` as the queue delivers it (a real receipt handle)."""
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=queue.queue_url, MessageBody=body)
    (message,) = sqs.receive_message(
        QueueUrl=queue.queue_url, MaxNumberOfMessages=1, AttributeNames=["ApproximateReceiveCount"]
    )["Messages"]
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {"ApproximateReceiveCount": message["Attributes"]["ApproximateReceiveCount"]},
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue.queue_arn,
                "awsRegion": "us-east-1",
            }
        ]
    }


def test_an_answer_is_sent_once_and_its_status_published_without_logging_a_secret(consumer, capsys):
    world, functions, apis, queue, aws_world = consumer
    _, conversation = world.customer_sms("My car broke down")
    queued = admin.post_message(
        STAFF, conversation, admin.PostMessage(text="A tow truck is on its way"), world.admin, NOW
    )
    body = envelope(world.last("message.sent"))
    functions.invoke("answers", received(queue, envelope(world.last("message.sent"))))  # a cold start first
    capture_function_log("switchboard-answers")
    capsys.readouterr()
    assert functions.invoke("answers", received(queue, body)) == {"batchItemFailures": []}  # a redelivery
    assert [(m.to, m.text) for m in apis.messages] == [(PHONE, "A tow truck is on its way")]
    published = [e for e in aws_world.bus.events() if e["source"] == "switchboard.answers"]
    assert {e["detail"]["attributes"]["state"] for e in published} == {"sent"}
    assert published[0]["detail"]["attributes"]["message_id"] == queued["message_id"]
    logged = capsys.readouterr().out
    assert OUTBOUND["auth_token"] not in logged


def test_a_provider_outage_is_a_batch_item_failure_and_the_retry_sends_once(consumer):
    world, functions, apis, queue, _ = consumer
    _, conversation = world.customer_sms("hello")
    admin.post_message(STAFF, conversation, admin.PostMessage(text="On it"), world.admin, NOW)
    body = envelope(world.last("message.sent"))
    apis.fail_next("twilio", 503)
    event = received(queue, body)
    assert functions.invoke("answers", event) == {
        "batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]
    }
    assert apis.messages == []
    assert functions.invoke("answers", received(queue, body)) == {"batchItemFailures": []}
    assert [m.text for m in apis.messages] == ["On it"]


@pytest.fixture
def pointer_faults():
    """Connect timeouts on exactly the pointer's PutItem, for the function's clients (built from
    the session after the hook is registered), botocore's retries without their waits."""
    from tests.faults.injector import no_retry_sleep
    from tests.unit.answers.test_answers import PointerWriteFaults

    faults = PointerWriteFaults("connect_timeout")
    events = aws._session().events
    faults.install(events)
    aws.reset_clients(keep_session=True)
    try:
        with no_retry_sleep():
            yield faults
    finally:
        events.unregister("before-send.dynamodb.PutItem", faults)
        aws.reset_clients(keep_session=True)


def test_a_pointer_write_failing_publishes_sent_now_and_the_retry_writes_it_without_sending(consumer, pointer_faults):
    world, functions, apis, queue, aws_world = consumer
    _, conversation = world.customer_sms("hello")
    queued = admin.post_message(STAFF, conversation, admin.PostMessage(text="On it"), world.admin, NOW)
    body = envelope(world.last("message.sent"))
    event = received(queue, body)
    delays: list[int] = []
    events = aws._session().events

    def record_delay(params: dict, **_: object) -> None:
        delays.append(params["VisibilityTimeout"])

    events.register("provide-client-params.sqs.ChangeMessageVisibility", record_delay)
    aws.reset_clients(keep_session=True)
    try:
        assert functions.invoke("answers", event) == {
            "batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]
        }
    finally:
        events.unregister("provide-client-params.sqs.ChangeMessageVisibility", record_delay)
    # Back on the queue in POINTER_RETRY_SECONDS, not the queue's 120 s visibility timeout.
    assert delays == [logic.POINTER_RETRY_SECONDS]
    assert pointer_faults.failed > 1 and [m.text for m in apis.messages] == ["On it"]
    published = [e["detail"] for e in aws_world.bus.events() if e["source"] == "switchboard.answers"]
    assert [d["attributes"]["state"] for d in published] == ["sent"]  # at once, not after the retry
    record = world.messages.get(queued["message_id"])
    assert record.state == "sent" and record.unpointed and record.provider_message_id
    pointer_faults.armed = False
    assert functions.invoke("answers", received(queue, body)) == {"batchItemFailures": []}
    assert [m.text for m in apis.messages] == ["On it"]  # the retry sent nothing
    record = world.messages.get(queued["message_id"])
    assert record.unpointed is None and world.messages.by_provider_id("twilio", record.provider_message_id)
    published = [e["detail"] for e in aws_world.bus.events() if e["source"] == "switchboard.answers"]
    assert {d["id"] for d in published} == {published[0]["id"]}  # republished: the same event


def test_on_the_queues_last_attempt_a_missing_pointer_is_left_to_the_reports_not_the_dlq(consumer, pointer_faults):
    world, functions, apis, queue, aws_world = consumer
    _, conversation = world.customer_sms("hello")
    queued = admin.post_message(STAFF, conversation, admin.PostMessage(text="Done"), world.admin, NOW)
    event = received(queue, envelope(world.last("message.sent")))
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "8"  # the queue's maxReceiveCount
    assert functions.invoke("answers", event) == {"batchItemFailures": []}
    record = world.messages.get(queued["message_id"])
    assert record.state == "sent" and record.unpointed == f"twilio#{record.provider_message_id}"
    published = [e["detail"] for e in aws_world.bus.events() if e["source"] == "switchboard.answers"]
    assert [d["attributes"]["state"] for d in published] == ["sent"] and len(apis.messages) == 1
