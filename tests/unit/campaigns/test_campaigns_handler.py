"""The campaigns consumer through its handler (as Lambda calls it) against moto: a start
request and a customer's reply in EventBridge's envelope applied, the events on the bus, a
run that cannot be applied yet retried with its visibility moved, a malformed message failed
(kept for the dead-letter queue), and redeliveries sending nothing twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.local.lambdas import LambdaContext
from switchboard_core import aws
from switchboard_core.campaigns.work import StartRequest
from tests.unit.campaigns.runner_world import GROUP, PHONE, QUEUE_ARN, ROLE_ARN, World
from tests.unit.campaigns.runs_table import RUNS_TABLE
from tests.unit.campaigns.test_runner import routing_event


@pytest.fixture
def consumer(aws_world, monkeypatch):
    world = World(aws_world)
    names = aws_world.names.mapping()
    env = {
        "TABLE_CAMPAIGN_RUNS": RUNS_TABLE,
        "TABLE_CAMPAIGNS": names["table:campaigns"],
        "TABLE_CONTACTS": names["table:contacts"],
        "TABLE_CONVERSATIONS": names["table:conversations"],
        "TABLE_ROUTING": names["table:routing"],
        "TABLE_CONNECTIONS": names["table:connections"],
        "OUTBOUND_SECRETS_PREFIX": "switchboard/test/outbound/",
        "EVENT_BUS_NAME": names["bus"],
        "CAMPAIGN_SCHEDULE_GROUP": GROUP,
        "CAMPAIGN_SCHEDULER_ROLE_ARN": ROLE_ARN,
        "CAMPAIGN_QUEUE_ARN": QUEUE_ARN,
        "NOTIFICATION_SECRETS_PREFIX": "switchboard/test/notifications/",
        "QUEUE_MAX_RECEIVE_COUNT": "8",
        "SWITCHBOARD_ENDPOINTS": "loopback",
        "POWERTOOLS_SERVICE_NAME": "switchboard-campaigns",
        "POWERTOOLS_METRICS_NAMESPACE": "Switchboard",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from functions.campaigns import handler

    handler.settings.cache_clear()
    handler.dependencies.cache_clear()
    # The channels' executors are tested on their own: the recording fake stands in for them.
    monkeypatch.setattr(handler, "channel_deps", lambda config: None)
    monkeypatch.setattr(handler, "ChannelExecutor", lambda deps: world.channels)
    queue_url = aws.client("sqs").create_queue(QueueName="test-campaigns")["QueueUrl"]
    world.contact(timezone=midday_zone())
    yield world, handler, queue_url, aws_world
    handler.settings.cache_clear()
    handler.dependencies.cache_clear()


def invoke(handler: Any, queue_url: str, body: str) -> dict[str, Any]:
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    (message,) = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=1, AttributeNames=["ApproximateReceiveCount"]
    )["Messages"]
    event = {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {"ApproximateReceiveCount": message["Attributes"]["ApproximateReceiveCount"]},
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "awsRegion": "us-east-1",
            }
        ]
    }
    context = LambdaContext(function_name="switchboard-test-campaigns", memory_limit_in_mb=256, timeout_seconds=30)
    return handler.handler(event, context)


def envelope(event: Any) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "f1e2d3c4-0000-4000-8000-000000000000",
            "detail-type": event.type,
            "source": event.source,
            "account": "123456789012",
            "time": event.received_at.isoformat(),
            "region": "us-east-1",
            "resources": [],
            "detail": event.model_dump(mode="json"),
        }
    )


def midday_zone() -> str:
    """A time zone where it is about noon now: the handler runs on the real clock, and the
    default quiet hours (21:00-08:00) must not postpone the test's sends."""
    offset = (12 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 14 else offset
    return "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def start_body(request: str = "req_1") -> str:
    return StartRequest(tenant="acme", campaign="cmp_1", version=1, contact=PHONE, request=request).model_dump_json()


def test_a_start_request_sends_once_and_publishes_the_campaign_events(consumer):
    world, handler, queue_url, aws_world = consumer
    world.campaign()
    assert invoke(handler, queue_url, start_body()) == {"batchItemFailures": []}
    assert invoke(handler, queue_url, start_body()) == {"batchItemFailures": []}  # a redelivery
    assert len(world.channels.sent) == 1
    published = [e for e in aws_world.bus.events() if e["source"] == "switchboard.campaigns"]
    assert sorted(e["detail-type"] for e in published) == [
        "campaign.message_sent",
        "campaign.run_started",
        "campaign.step_completed",
        "campaign.step_completed",
    ]
    assert len({e["detail"]["id"] for e in published}) == 4
    assert len(world.schedules()) == 1


def test_a_reply_in_eventbridges_envelope_reaches_the_waiting_run(consumer):
    world, handler, queue_url, _ = consumer
    world.campaign()
    contact_id = world.contact()
    invoke(handler, queue_url, start_body())
    reply = routing_event(
        "conversation.updated", contact_id, text="yes thanks", occurred_at=datetime.now(UTC) + timedelta(seconds=1)
    )
    assert invoke(handler, queue_url, envelope(reply)) == {"batchItemFailures": []}
    [run] = world.runs.list_for_campaign("cmp_1")[0]
    assert run.status.value == "completed" and run.last_reply.text == "yes thanks"


def test_a_malformed_message_fails_and_is_kept_for_the_dead_letter_queue(consumer):
    _, handler, queue_url, _ = consumer
    for body in ("not json", "[1]", json.dumps({"kind": "start", "tenant": "acme"}), json.dumps({"detail-type": "x"})):
        result = invoke(handler, queue_url, body)
        assert len(result["batchItemFailures"]) == 1, body


def test_what_cannot_be_applied_yet_is_retried_after_a_backoff(consumer, monkeypatch):
    world, handler, queue_url, _ = consumer
    world.campaign()
    from switchboard_core.outbound.base import TransientFailure

    world.channels.fail_next = [TransientFailure("http_503", "busy")]
    moved: list[int] = []
    sqs = aws.client("sqs")
    original = sqs.change_message_visibility

    def spy(**kwargs: Any) -> Any:
        moved.append(kwargs["VisibilityTimeout"])
        return original(**kwargs)

    monkeypatch.setattr(sqs, "change_message_visibility", spy)
    result = invoke(handler, queue_url, start_body())
    assert len(result["batchItemFailures"]) == 1
    assert moved == [5]
    assert world.channels.sent == []
    assert invoke(handler, queue_url, start_body()) == {"batchItemFailures": []}
    assert len(world.channels.sent) == 1


def test_an_unexpected_failure_is_counted_and_left_to_the_queue(consumer, monkeypatch, capsys):
    """A crash mid-change (here the state write after the send) fails the record, not the batch:
    the queue delivers it again and the next delivery finishes the outbox without sending again."""
    world, handler, queue_url, _ = consumer
    world.campaign()
    from switchboard_core.campaigns.run_store import RunStore

    save = RunStore.save
    crashed: list[bool] = []

    def crash_once(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not crashed:
            crashed.append(True)
            raise RuntimeError("the function died between two steps")
        return save(self, *args, **kwargs)

    monkeypatch.setattr(RunStore, "save", crash_once)
    capsys.readouterr()
    result = invoke(handler, queue_url, start_body())
    assert len(result["batchItemFailures"]) == 1 and crashed
    assert '"campaign_failed":[1.0]' in capsys.readouterr().out.replace(" ", "")
    assert len(world.channels.sent) == 1
    assert invoke(handler, queue_url, start_body()) == {"batchItemFailures": []}
    assert len(world.channels.sent) == 1
