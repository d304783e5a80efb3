"""The delivery function through its handler, as Lambda calls it with the delivery queue's
messages (moto's SQS): a wait moves the message's visibility and is reported as a batch item
failure; a delivered one finishes; near maxReceiveCount a wait sends the message again."""

from __future__ import annotations

import json
import time

import pytest
from standardwebhooks.webhooks import Webhook

from infra import topology
from infra.local.dispatcher import sqs_record
from infra.local.lambdas import LocalFunctions
from switchboard_core import aws
from switchboard_core.bus import EventPublisher
from tests.conftest import capture_function_log
from tests.unit.delivery.support import FAST_POLICY, Answer, canonical, message

# One second before the second attempt, so the test sees the message come back.
HANDLER_POLICY = FAST_POLICY.model_copy(update={"retry_schedule_seconds": (0, 1, 60)})


@pytest.fixture
def queue(world):
    names = world.aws_world.names.mapping()
    functions = LocalFunctions(names, "test", extra_env={"DELIVERY_POLICY": HANDLER_POLICY.model_dump_json()})
    url = names[f"queue_url:{topology.DELIVERY_QUEUE}"]
    sqs = aws.client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return functions, sqs, url, arn


def receive(sqs, url):
    return sqs.receive_message(QueueUrl=url, AttributeNames=["All"], MaxNumberOfMessages=1).get("Messages", [])


def test_a_retry_moves_the_visibility_reports_the_record_and_the_message_returns_when_due(
    world, receiver, queue, capsys
):
    functions, sqs, url, arn = queue
    secret = world.subscribe(receiver.url)
    receiver.answer(Answer(503))
    event = canonical(1)
    sqs.send_message(QueueUrl=url, MessageBody=message(event).model_dump_json())
    (received,) = receive(sqs, url)
    result = functions.invoke("delivery", {"Records": [sqs_record(received, arn)]})
    assert result == {"batchItemFailures": [{"itemIdentifier": received["MessageId"]}]}
    assert receive(sqs, url) == []  # waiting out its one-second delay, not the queue's 180 s
    time.sleep(1.5)
    (again,) = receive(sqs, url)
    assert again["Body"] == received["Body"] and again["Attributes"]["ApproximateReceiveCount"] == "2"
    capture_function_log("switchboard-delivery")
    capsys.readouterr()
    assert functions.invoke("delivery", {"Records": [sqs_record(again, arn)]}) == {"batchItemFailures": []}
    assert len(receiver.requests) == 2
    Webhook(secret).verify(receiver.requests[1].body, receiver.requests[1].headers)
    logged = capsys.readouterr().out
    assert '"outcome":"delivered"' in logged.replace(" ", "") and secret not in logged
    assert [a.outcome for a in world.log.attempts("sub_1")[0]] == ["delivered", "retry"]


def test_near_the_max_receive_count_a_wait_sends_the_message_again_instead_of_dead_lettering(world, receiver, queue):
    functions, sqs, url, arn = queue
    world.subscribe(receiver.url)
    receiver.answer(Answer(503))
    body = message(canonical(1)).model_dump_json()
    record = {
        "messageId": "m-old",
        "receiptHandle": "handle-old",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(topology.FUNCTIONS["delivery"].consumer.max_receive_count)},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": "us-east-1",
    }
    assert functions.invoke("delivery", {"Records": [record]}) == {"batchItemFailures": []}
    time.sleep(1.2)  # the copy is sent with the wait as its delay
    (copy,) = receive(sqs, url)
    assert copy["Body"] == body and copy["Attributes"]["ApproximateReceiveCount"] == "1"


def test_a_malformed_message_is_reported_and_nothing_is_sent(world, receiver, queue):
    functions, _, _, arn = queue
    world.subscribe(receiver.url)
    bad = [
        "{not json",
        json.dumps({"event": {"detail": {}}}),  # no subscription
        json.dumps({"subscription": "sub_1", "event": {"detail": {"tenant": "acme"}}}),  # no event id
    ]
    records = [
        sqs_record({"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": body}, arn) for i, body in enumerate(bad)
    ]
    for record in records:  # one record per invocation, as the queue's batch size is 1
        result = functions.invoke("delivery", {"Records": [record]})
        assert result == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert receiver.requests == []


def test_an_event_routed_by_a_subscriptions_rule_is_delivered(world, receiver, queue):
    """The message as a subscription's rule puts it (the InputTransformer of the shared plan)
    reaches the receiver, verified with the public library."""
    functions, sqs, url, arn = queue
    secret = world.subscribe(receiver.url)
    events = aws.client("events")
    bus = world.aws_world.names.bus
    events.put_rule(
        Name="test-sub-sub_1",
        EventBusName=bus,
        EventPattern=json.dumps({"source": [{"prefix": "switchboard."}], "detail": {"tenant": ["acme"]}}),
    )
    events.put_targets(
        Rule="test-sub-sub_1",
        EventBusName=bus,
        Targets=[
            {
                "Id": "delivery",
                "Arn": arn,
                "InputTransformer": {
                    "InputPathsMap": {},
                    "InputTemplate": '{"subscription": "sub_1", "event": <aws.events.event.json>}',
                },
            }
        ],
    )
    event = canonical(1)
    EventPublisher(events, bus).publish([event, canonical(2, tenant="globex")])
    (received,) = receive(sqs, url)  # the other tenant's event did not match
    assert functions.invoke("delivery", {"Records": [sqs_record(received, arn)]}) == {"batchItemFailures": []}
    (request,) = receiver.requests
    assert Webhook(secret).verify(request.body, request.headers)["data"]["id"] == event.id


def test_an_event_eventbridge_dead_lettered_and_redriven_is_delivered_to_its_rules_subscription(world, receiver, queue):
    functions, sqs, url, arn = queue
    secret = world.subscribe(receiver.url)
    event = canonical(1)
    envelope = json.loads(message(event).model_dump_json())["event"]  # the event itself, untransformed
    rule_arn = "arn:aws:events:us-east-1:123456789012:rule/switchboard-test/switchboard-test-sub-sub_1"
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(envelope),
        MessageAttributes={"RULE_ARN": {"DataType": "String", "StringValue": rule_arn}},
    )
    (received,) = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], AttributeNames=["All"])["Messages"]
    assert functions.invoke("delivery", {"Records": [sqs_record(received, arn)]}) == {"batchItemFailures": []}
    (request,) = receiver.requests
    assert Webhook(secret).verify(request.body, request.headers)["data"]["id"] == event.id
