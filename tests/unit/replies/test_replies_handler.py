"""The replies consumer through its handler (as Lambda calls it), against moto and the
loopback provider sandbox: outcome on the bus, partial batch failures, no secret logged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infra import topology
from infra.local.lambdas import LocalFunctions
from infra.local.provider_apis import ProviderApis, serve
from switchboard_core import aws
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from switchboard_core.outbound import API_OVERRIDE_ENV
from tests.conftest import capture_function_log
from tests.unit.event_log.test_event_log_consumer import envelope, sqs_event
from tests.unit.replies.test_replies import OUTBOUND, PHONE, request_event

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def age_claims(world, by: timedelta) -> None:
    """Move every once-per-conversation claim back in time (the clock is the handler's)."""
    table = aws.resource("dynamodb").Table(world.names.table("replies"))
    for item in table.scan()["Items"]:
        if item["pk"].startswith("ONCE#"):
            claimed = datetime.fromisoformat(item["claimed_at"]) - by
            table.update_item(
                Key={"pk": item["pk"]},
                UpdateExpression="SET claimed_at = :at",
                ExpressionAttributeValues={":at": claimed.isoformat()},
            )


@pytest.fixture
def sandbox():
    apis = ProviderApis()
    server, url = serve(apis)
    apis.accept("twilio", OUTBOUND)
    yield apis, url
    server.shutdown()


@pytest.fixture
def replies(aws_world, sandbox):
    apis, url = sandbox
    connections = ConnectionStore(aws.resource("dynamodb").Table(aws_world.names.table("connections")))
    connections.put(
        Connection(id="con_twilio", provider="twilio", tenant="acme", created_at=NOW, outbound_configured_at=NOW)
    )
    CredentialStore(aws.client("secretsmanager"), topology.outbound_secrets_prefix("test")).replace(
        "con_twilio", OUTBOUND, "acme"
    )
    functions = LocalFunctions(aws_world.names.mapping(), "test", extra_env={API_OVERRIDE_ENV: url})
    return functions, apis, aws_world


def test_a_request_is_sent_and_its_outcome_published_without_logging_a_secret(replies, capsys):
    functions, apis, world = replies
    # The first call imports the handler and its logger (a cold start); then capture its log.
    functions.invoke("replies", sqs_event([envelope(request_event(9, "ct_unknown", conversation="cv_9"))]))
    capture_function_log("switchboard-replies")
    world.bus.events()
    capsys.readouterr()
    result = functions.invoke("replies", sqs_event([envelope(request_event(1, "ct_unknown"))]))
    assert result == {"batchItemFailures": []}
    message = apis.messages[-1]
    assert (len(apis.messages), message.to, message.text) == (2, PHONE, "Thanks, we're on it")
    published = [e for e in world.bus.events() if e["source"] == "switchboard.replies"]
    assert [e["detail-type"] for e in published] == ["reply.sent"]
    assert published[0]["detail"]["attributes"]["provider_message_id"] == message.message_id
    logged = capsys.readouterr().out
    assert "reply handled" in logged and OUTBOUND["auth_token"] not in logged


def test_a_provider_outage_fails_only_that_record_and_the_retry_sends_once(replies):
    functions, apis, world = replies
    apis.fail_next("twilio", 503)
    batch = sqs_event(
        [envelope(request_event(1, "ct_unknown")), envelope(request_event(2, "ct_unknown", conversation="cv_2"))]
    )
    assert functions.invoke("replies", batch) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert [m.text for m in apis.messages] == ["Thanks, we're on it"]  # the second record went out
    retry = sqs_event([envelope(request_event(1, "ct_unknown"))])
    assert functions.invoke("replies", retry) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}  # too soon
    age_claims(world, timedelta(seconds=121))  # the queue's visibility timeout passes
    retry["Records"][0]["attributes"]["ApproximateReceiveCount"] = "3"
    assert functions.invoke("replies", retry) == {"batchItemFailures": []}
    assert len(apis.messages) == 2
    kinds = [e["detail-type"] for e in world.bus.events() if e["source"] == "switchboard.replies"]
    assert kinds == ["reply.sent", "reply.sent"]


def test_a_malformed_record_is_reported_not_dropped(replies):
    functions, apis, _ = replies
    batch = sqs_event(["{not json", envelope(request_event(1, "ct_unknown"))])
    assert functions.invoke("replies", batch) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert len(apis.messages) == 1  # it stays on the queue (then the DLQ); the good one is sent


def test_the_queues_last_attempt_publishes_reply_failed_instead_of_dead_lettering(replies):
    functions, apis, world = replies
    apis.fail_next("twilio", 503)
    batch = sqs_event([envelope(request_event(1, "ct_unknown"))])
    batch["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(
        topology.FUNCTIONS["replies"].consumer.max_receive_count
    )
    assert functions.invoke("replies", batch) == {"batchItemFailures": []}
    (failed,) = [e for e in world.bus.events() if e["source"] == "switchboard.replies"]
    assert failed["detail-type"] == "reply.failed" and "last attempt" in failed["detail"]["attributes"]["detail"]
    assert apis.messages == []
