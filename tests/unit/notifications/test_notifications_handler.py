"""The notifications function through its handler (as Lambda calls it), against moto and the
loopback provider sandbox: SQS records in, SMS out, notification.* on the bus, partial batch
failures, and the scheduled run that sends digests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra import topology
from infra.local.emulator import LOCAL_NOTIFICATION_SMS_FROM
from infra.local.lambdas import LocalFunctions
from infra.local.provider_apis import ProviderApis, serve
from switchboard_core import aws
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from switchboard_core.outbound import API_OVERRIDE_ENV
from switchboard_core.routing.assignment import Responder
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.contact_points import ContactPoint
from tests.unit.event_log.test_event_log_consumer import envelope, sqs_event
from tests.unit.notifications.test_notifications import DRIVER_PHONE, TWILIO, routing_event

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
