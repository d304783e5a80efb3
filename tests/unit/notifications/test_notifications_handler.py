"""The notifications function through its handler (as Lambda calls it), against moto and the
loopback provider sandbox: SQS records in, SMS out, notification.* on the bus, partial batch
failures, and the scheduled run that sends digests."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from infra import topology
from infra.local.emulator import LOCAL_NOTIFICATION_SMS_FROM
from infra.local.lambdas import LocalFunctions
from infra.local.provider_apis import ProviderApis, serve
from switchboard_core import aws
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from switchboard_core.events import Channel
from switchboard_core.outbound import API_OVERRIDE_ENV
from switchboard_core.routing.assignment import Responder
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.contact_points import ContactPoint
from tests.builders import canonical_event
from tests.unit.event_log.test_event_log_consumer import envelope, sqs_event
from tests.unit.notifications.test_notifications import (
    CAMPAIGN_TEXT,
    DRIVER_PHONE,
    TWILIO,
    campaign_event,
    routing_event,
)

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


@pytest.fixture
def notifying(aws_world):
    apis = ProviderApis()
    server, url = serve(apis)
    apis.accept("twilio", TWILIO)
    resource = aws.resource("dynamodb")
    ConnectionStore(resource.Table(aws_world.names.table("connections"))).put(
        Connection(id="con_twilio", provider="twilio", tenant="acme", created_at=NOW, outbound_configured_at=NOW)
    )
    CredentialStore(aws.client("secretsmanager"), topology.outbound_secrets_prefix("test")).replace(
        "con_twilio", TWILIO, "acme"
    )
    RoutingConfigStore(resource.Table(aws_world.names.table("routing"))).put_responder(
        Responder(
            id="driver-1", tenant="acme", name="Dana", contact_points=[ContactPoint(channel="sms", to=DRIVER_PHONE)]
        )
    )
    functions = LocalFunctions(aws_world.names.mapping(), "test", extra_env={API_OVERRIDE_ENV: url})
    yield functions, apis, aws_world
    server.shutdown()


class Published:
    """notification.* on the bus so far (the capture queue is drained as it is read)."""

    def __init__(self, world) -> None:
        self._world = world
        self.seen: list[dict] = []

    def __call__(self) -> list[dict]:
        self.seen += [e for e in self._world.bus.events() if e["source"] == "switchboard.notifications"]
        return self.seen


def test_a_record_is_sent_by_sms_and_its_outcome_published(notifying) -> None:
    functions, apis, world = notifying
    published = Published(world)
    result = functions.invoke("notifications", sqs_event([envelope(routing_event(1))]))
    assert result == {"batchItemFailures": []}
    [message] = apis.messages
    assert message.to == DRIVER_PHONE and message.details["from"] == LOCAL_NOTIFICATION_SMS_FROM
    [event] = published()
    assert event["detail-type"] == "notification.sent"
    assert event["detail"]["attributes"]["provider_message_id"] == message.message_id
    # The same record again (a redelivery): nothing more is sent; the stored outcome is published again.
    assert functions.invoke("notifications", sqs_event([envelope(routing_event(1))])) == {"batchItemFailures": []}
    assert len(apis.messages) == 1
    assert [e["detail"]["id"] for e in published()] == [event["detail"]["id"]] * 2


def test_a_provider_outage_fails_only_that_record(notifying) -> None:
    functions, apis, world = notifying
    published = Published(world)
    apis.fail_next("twilio", 503)
    batch = sqs_event(["{not json", envelope(routing_event(2)), envelope(routing_event(3))])
    assert functions.invoke("notifications", batch) == {
        "batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]
    }
    assert len(apis.messages) == 1  # the third record went out
    assert functions.invoke("notifications", sqs_event([envelope(routing_event(2))])) == {"batchItemFailures": []}
    assert len(apis.messages) == 2
    assert [e["detail-type"] for e in published()] == ["notification.sent", "notification.sent"]


def test_the_scheduled_run_sends_due_digests(notifying) -> None:
    functions, apis, world = notifying
    batch = sqs_event([envelope(routing_event(10 + n)) for n in range(5)])
    assert functions.invoke("notifications", batch) == {"batchItemFailures": []}
    assert len(apis.messages) == 3
    assert functions.invoke("notifications", {"source": "aws.scheduler"}) == {"digest_notifications": 0}  # too soon
    # The window ends (its due time moved to the past: the handler's clock is the real one).
    table = aws.resource("dynamodb").Table(world.names.table("notifications"))
    [digest] = [i for i in table.scan()["Items"] if i["pk"].startswith("DIGEST#")]
    table.update_item(
        Key={"pk": digest["pk"]},
        UpdateExpression="SET due_at = :past",
        ExpressionAttributeValues={":past": NOW.isoformat()},
    )
    assert functions.invoke("notifications", {"source": "aws.scheduler"}) == {"digest_notifications": 1}
    assert functions.invoke("notifications", {"source": "aws.scheduler"}) == {"digest_notifications": 0}
    assert apis.messages[-1].text.startswith("2 more notifications")


# --- campaigns' notify steps, through the topology's rule --------------------------------------


def _put_on_bus(world, event) -> None:
    answer = aws.client("events").put_events(
        Entries=[
            {
                "EventBusName": world.names.bus,
                "Source": event.source,
                "DetailType": event.type,
                "Detail": event.model_dump_json(),
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0


def _queued(world) -> dict:
    """What the notifications queue holds, as the Lambda event SQS would deliver (read once)."""
    (queue,) = [q for q in world.queues if q.function == "notifications"]
    sqs = aws.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=queue.queue_url, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"]
    ).get("Messages", [])
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": m["Attributes"]["ApproximateReceiveCount"]},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue.queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def test_a_campaigns_request_reaches_the_queue_by_its_rule_and_is_delivered_once(notifying) -> None:
    functions, apis, world = notifying
    published = Published(world)
    _put_on_bus(world, campaign_event())
    batch = _queued(world)
    [record] = batch["Records"]
    assert json.loads(record["body"])["source"] == "switchboard.campaigns"
    assert functions.invoke("notifications", batch) == {"batchItemFailures": []}
    [message] = apis.messages
    assert message.to == DRIVER_PHONE and message.text == f"[negative-mention] {CAMPAIGN_TEXT}"
    [event] = published()
    assert event["detail-type"] == "notification.sent"
    attributes = event["detail"]["attributes"]
    assert (attributes["campaign"], attributes["run"], attributes["responder"]) == ("cmp_1", "run_1", "driver-1")
    # The campaign replays its step (same idempotency key, same event id): nothing more is sent.
    _put_on_bus(world, campaign_event())
    assert functions.invoke("notifications", _queued(world)) == {"batchItemFailures": []}
    assert len(apis.messages) == 1 and [e["detail"]["id"] for e in published()] == [event["detail"]["id"]] * 2


def test_a_campaigns_request_naming_nobody_is_reported_not_retried(notifying) -> None:
    functions, apis, world = notifying
    published = Published(world)
    batch = sqs_event([envelope(campaign_event(target=None)), envelope(campaign_event("k2", to="owner"))])
    assert functions.invoke("notifications", batch) == {"batchItemFailures": []}
    assert apis.messages == []
    assert [e["detail"]["attributes"]["reason"] for e in published()] == ["no_recipient", "invalid_request"]


def test_the_rule_takes_the_campaigns_request_and_routings_triggers_and_nothing_else(notifying) -> None:
    _, _, world = notifying
    wanted = [campaign_event(), routing_event(1), routing_event(2, "routing.unassigned", assignee=None)]
    unwanted = [
        routing_event(3, "conversation.opened"),
        routing_event(4, "conversation.updated"),
        routing_event(5, "reply.requested"),
        campaign_event("k-other-source", provider="twilio"),  # the same type from another source
        campaign_event("k-routing-source", provider="routing"),
        canonical_event(
            "campaign.run_started",
            "run_1:started",
            received_at=NOW,
            provider="campaigns",
            connection="campaigns",
            channel=Channel.GENERIC,
            attributes={"run": "run_1"},
        ),
    ]
    for event in wanted + unwanted:
        _put_on_bus(world, event)
    queued = [json.loads(r["body"])["detail"]["id"] for r in _queued(world)["Records"]]
    assert sorted(queued) == sorted(e.id for e in wanted)
