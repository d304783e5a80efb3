"""The delivery function's logic against moto and real receivers on loopback: what is sent,
signed, retried, held, disabled and logged, and that nothing is sent twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from functions.delivery.logic import MalformedMessage, deliver, retry_after_seconds
from switchboard_core.subscriptions.models import DeliveryMessage, DeliveryState, SubscriptionStatus
from switchboard_core.subscriptions.secrets import SigningSecretStore
from switchboard_core.subscriptions.signing import SigningSecrets, new_secret
from tests.unit.delivery.support import Answer, canonical, closed_port_url, message


def attempts(world, sub_id="sub_1"):
    return world.log.attempts(sub_id)[0]


def test_a_matching_event_is_delivered_once_signed_for_the_public_library(world, receiver):
    secret = world.subscribe(receiver.url)
    event = canonical(1)
    verdict = deliver(message(event), world.deps)
    assert (verdict.outcome, verdict.wait_seconds, verdict.status_code) == ("delivered", None, 200)
    (request,) = receiver.requests
    assert request.path == "/hooks/switchboard?k=1"
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload == {"type": "message.received", "timestamp": "2026-12-01T12:00:01Z", "data": payload["data"]}
    assert payload["data"]["id"] == event.id and payload["data"]["text"] == "message 1"
    assert request.headers["webhook-id"] == event.id
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("Switchboard-Webhooks/")
    assert request.headers["host"] == receiver.url.split("/")[2]
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)  # another secret does not verify it
    delivery = world.log.get("sub_1", event.id)
    assert delivery.state == DeliveryState.DELIVERED and delivery.attempts == 1
    assert delivery.delivered_triggers == ["bus"] and delivery.last_status_code == 200
    (logged,) = attempts(world)
    assert (logged.attempt, logged.status_code, logged.error, logged.outcome, logged.trigger) == (
        1,
        200,
        None,
        "delivered",
        "bus",
    )
    assert logged.response_excerpt == "ok" and logged.latency_ms >= 0 and logged.next_attempt_at is None


def test_a_redelivered_message_is_not_sent_again(world, receiver):
    world.subscribe(receiver.url)
    event = canonical(1)
    assert deliver(message(event), world.deps).outcome == "delivered"
    again = deliver(message(event), world.deps)
    assert (again.outcome, again.wait_seconds) == ("duplicate", None)
    assert len(receiver.requests) == 1 and len(attempts(world)) == 1


def test_a_copy_sending_at_the_same_time_waits_for_the_lease(world, receiver):
    world.subscribe(receiver.url)
    event = canonical(1)
    other = world.log.claim(
        "sub_1",
        event.id,
        owner="another-copy",
        now=world.clock(),
        lease_seconds=90,
        event_type=event.type,
        event_time=event.received_at,
        order_key=None,
    )
    assert other.delivery is not None
    verdict = deliver(message(event), world.deps)
    assert verdict.outcome == "in_progress" and 89 <= verdict.wait_seconds <= 91 * 1.5
    assert receiver.requests == []
    assert world.log.release("sub_1", event.id, "another-copy")
    assert deliver(message(event), world.deps).outcome == "delivered"


def test_retry_replay_and_resume_triggers_send_again_and_each_only_once(world, receiver):
    world.subscribe(receiver.url)
    event = canonical(1)
    assert deliver(message(event), world.deps).outcome == "delivered"
    assert deliver(message(event, trigger="retry:r1"), world.deps).outcome == "delivered"
    assert deliver(message(event, replay="replay-2026"), world.deps).outcome == "delivered"
    assert deliver(message(event, trigger="retry:r1"), world.deps).outcome == "duplicate"
    assert deliver(message(event, replay="replay-2026"), world.deps).outcome == "duplicate"
    assert [r.headers["webhook-id"] for r in receiver.requests] == [event.id] * 3  # stable across sends
    delivery = world.log.get("sub_1", event.id)
    assert delivery.attempts == 3 and sorted(delivery.delivered_triggers) == ["bus", "replay:replay-2026", "retry:r1"]
    assert [(a.attempt, a.trigger) for a in attempts(world)] == [
        (3, "replay:replay-2026"),
        (2, "retry:r1"),
        (1, "bus"),
    ]


def test_a_503_is_retried_on_schedule_and_delivered_when_the_endpoint_recovers(world, receiver):
    world.subscribe(receiver.url)
    receiver.answer(Answer(503, body=b"down for maintenance"))
    event = canonical(1)
    first = deliver(message(event), world.deps)
    assert (first.outcome, first.status_code, first.wait_seconds) == ("retry", 503, 5)
    delivery = world.log.get("sub_1", event.id)
    assert delivery.state == DeliveryState.RETRYING and delivery.next_attempt_at == world.clock() + timedelta(seconds=5)
    assert world.subscription().failing_since == world.clock()
    early = deliver(message(event), world.deps)  # back before it is due (e.g. woken): waits, sends nothing
    assert (early.outcome, early.wait_seconds) == ("not_due", 5) and len(receiver.requests) == 1
    world.clock.advance(5)
    assert deliver(message(event), world.deps).outcome == "delivered"
    newest, oldest = attempts(world)
    assert (oldest.attempt, oldest.status_code, oldest.outcome) == (1, 503, "retry")
    assert oldest.response_excerpt == "down for maintenance" and oldest.next_attempt_at == world.clock()
    assert (newest.attempt, newest.status_code, newest.outcome) == (2, 200, "delivered")
    recovered = world.subscription()
    assert recovered.failing_since is None and recovered.status == SubscriptionStatus.ACTIVE
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1


def test_retry_after_is_honoured_when_longer_than_the_schedule(world, receiver):
    world.subscribe(receiver.url)
    receiver.answer(Answer(429, headers={"Retry-After": "120"}))
    verdict = deliver(message(canonical(1)), world.deps)
    assert (verdict.outcome, verdict.status_code, verdict.wait_seconds) == ("retry", 429, 120)
    receiver.answer(Answer(503, headers={"Retry-After": "1"}))  # shorter than the schedule: the schedule wins
    world.clock.advance(120)
    assert deliver(message(canonical(1)), world.deps).wait_seconds == 60


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert retry_after_seconds("30", now) == 30
    assert retry_after_seconds(format_datetime(now + timedelta(minutes=2), usegmt=True), now) == 120
    assert retry_after_seconds(format_datetime(now - timedelta(minutes=2), usegmt=True), now) == 0
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None
    assert retry_after_seconds("-5", now) is None


def test_a_timeout_is_a_failed_attempt_that_is_retried(world, receiver):
    world.subscribe(receiver.url)
    world.deps.policy = world.deps.policy.model_copy(update={"timeout_seconds": 0.5})
    receiver.answer(Answer(200, delay=2.0))
    verdict = deliver(message(canonical(1)), world.deps)
    assert (verdict.outcome, verdict.status_code, verdict.wait_seconds) == ("retry", None, 5)
    (logged,) = attempts(world)
    assert logged.status_code is None and logged.error.startswith("timeout")
    assert 450 <= logged.latency_ms < 1900
    delivery = world.log.get("sub_1", canonical(1).id)
    assert delivery.state == DeliveryState.RETRYING and delivery.last_error.startswith("timeout")


def test_a_refused_connection_is_a_failed_attempt_that_is_retried(world):
    world.subscribe(closed_port_url())
    verdict = deliver(message(canonical(1)), world.deps)
    assert (verdict.outcome, verdict.wait_seconds) == ("retry", 5)
    (logged,) = attempts(world)
    assert logged.status_code is None and logged.error.startswith("could not connect")


def test_other_4xx_and_redirects_are_retried_not_followed(world, receiver):
    world.subscribe(receiver.url)
    receiver.answer(Answer(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}), Answer(400))
    assert deliver(message(canonical(1)), world.deps).status_code == 302
    world.clock.advance(5)
    assert deliver(message(canonical(1)), world.deps).status_code == 400
    assert len(receiver.requests) == 2  # the redirect was not followed
    assert [a.status_code for a in attempts(world)] == [400, 302]


def test_the_schedule_spent_leaves_the_delivery_failed_and_replayable(world, receiver):
    world.subscribe(receiver.url)
    receiver.answer(*[Answer(500)] * 4)
    event = canonical(1)
    waits = []
    for _ in range(4):
        verdict = deliver(message(event), world.deps)
        waits.append(verdict.wait_seconds)
        world.clock.advance(verdict.wait_seconds or 0)
    assert waits == [5, 60, 300, None] and verdict.outcome == "failed"
    delivery = world.log.get("sub_1", event.id)
    assert delivery.state == DeliveryState.FAILED and delivery.attempts == 4 and delivery.next_attempt_at is None
    assert attempts(world)[0].outcome == "failed" and attempts(world)[0].next_attempt_at is None
    assert deliver(message(event), world.deps).outcome == "finished"  # a late copy of the message
    assert len(receiver.requests) == 4
    assert deliver(message(event, trigger="retry:by-hand"), world.deps).outcome == "delivered"
    assert world.log.get("sub_1", event.id).attempts == 5


def test_a_superseded_trigger_stops_when_its_message_returns(world, receiver):
    world.subscribe(receiver.url)
    receiver.answer(Answer(503))
    event = canonical(1)
    assert deliver(message(event), world.deps).outcome == "retry"
    assert deliver(message(event, trigger="retry:now"), world.deps).outcome == "delivered"
    world.clock.advance(5)
    assert deliver(message(event), world.deps).outcome == "superseded"
    assert len(receiver.requests) == 2


def test_410_disables_the_subscription_holds_the_event_and_tells_the_tenant(world, receiver):
    world.subscribe(receiver.url)
    receiver.answer(Answer(410, body=b"gone"))
    event = canonical(1)
    verdict = deliver(message(event), world.deps)
    assert (verdict.outcome, verdict.wait_seconds, verdict.status_code) == ("disabled", None, 410)
    subscription = world.subscription()
    assert subscription.status == SubscriptionStatus.DISABLED and "410" in subscription.status_reason
    assert world.log.get("sub_1", event.id).state == DeliveryState.HELD
    assert attempts(world)[0].outcome == "disabled"
    (published,) = world.published()
    assert published["detail-type"] == "subscription.disabled"
    detail = published["detail"]
    assert detail["tenant"] == "acme" and detail["provider"] == "delivery"
    assert detail["attributes"]["subscription"] == "sub_1" and detail["attributes"]["owner"] == "key_partner"
    assert receiver.url not in json.dumps(detail)  # a URL may carry a token: never in the news
    assert "410" in detail["attributes"]["reason"]
    later = canonical(2)
    assert deliver(message(later), world.deps).outcome == "held"
    assert len(receiver.requests) == 1 and world.log.get("sub_1", later.id).state == DeliveryState.HELD


def test_a_paused_subscription_holds_events_and_resume_sends_them(world, receiver):
    world.subscribe(receiver.url)
    world.change(status=SubscriptionStatus.PAUSED)
    event = canonical(1)
    assert deliver(message(event), world.deps).outcome == "held"
    assert deliver(message(event), world.deps).outcome == "finished"  # its redelivery stays held
    assert receiver.requests == [] and attempts(world) == []
    assert [d.event_id for d in world.log.in_state("sub_1", DeliveryState.HELD)] == [event.id]
    world.change(status=SubscriptionStatus.ACTIVE)
    assert deliver(message(event, trigger="resume:r1"), world.deps).outcome == "delivered"
    assert len(receiver.requests) == 1


def test_five_failures_open_the_breaker_and_waiting_spends_no_attempt(world, receiver):
    world.subscribe(receiver.url)
    receiver.answer(*[Answer(503)] * 6)
    for n in range(5):
        assert deliver(message(canonical(n)), world.deps).outcome == "retry"
    health = world.log.health(f"acme http://127.0.0.1:{receiver.server.server_address[1]}")
    assert health.consecutive_failures == 5 and health.open_until == world.clock() + timedelta(seconds=30)
    blocked = canonical(10)
    verdict = deliver(message(blocked), world.deps)
    assert (verdict.outcome, verdict.wait_seconds) == ("breaker_open", 30)
    assert len(receiver.requests) == 5 and world.log.get("sub_1", blocked.id).attempts == 0
    world.clock.advance(30)
    probe = deliver(message(blocked), world.deps)  # the cool-down is over: one probe, which fails
    assert probe.outcome == "retry" and len(receiver.requests) == 6
    health = world.log.health(health.endpoint)
    assert health.consecutive_failures == 6 and health.open_until == world.clock() + timedelta(seconds=60)
    world.clock.advance(60)
    assert deliver(message(canonical(11)), world.deps).outcome == "delivered"  # the probe gets through
    health = world.log.health(health.endpoint)
    assert health.consecutive_failures == 0 and health.open_until is None and health.last_success_at == world.clock()


def test_only_one_message_probes_a_half_open_breaker(world, receiver):
    world.subscribe(receiver.url)
    endpoint = f"acme http://127.0.0.1:{receiver.server.server_address[1]}"
    for _ in range(5):
        world.log.count_failure(endpoint, world.clock(), "HTTP 503")
    world.log.open_breaker(endpoint, world.clock())
    receiver.answer(Answer(200, delay=0.2))
    seen = world.log.health(endpoint).open_until
    assert world.log.take_probe(endpoint, seen, world.clock() + timedelta(seconds=100))
    verdict = deliver(message(canonical(1)), world.deps)
    assert verdict.outcome == "breaker_open" and receiver.requests == []


def test_copies_waiting_on_a_probe_send_promptly_once_it_succeeded(world, receiver):
    """Copies that meet a half-open breaker look again once the probe's send is over (its
    timeout plus a few seconds), not at the end of the probe's window (timeout + 90 s lease)."""
    lease_seconds = 90
    world.subscribe(receiver.url)
    endpoint = f"acme http://127.0.0.1:{receiver.server.server_address[1]}"
    for _ in range(5):
        world.log.count_failure(endpoint, world.clock(), "HTTP 503")
    world.log.open_breaker(endpoint, world.clock())
    timeout = world.deps.policy.timeout_seconds
    seen = world.log.health(endpoint).open_until
    assert world.log.take_probe(endpoint, seen, world.clock() + timedelta(seconds=timeout + lease_seconds))
    waiting = deliver(message(canonical(1)), world.deps)
    limit = (timeout + 10) * (1 + world.deps.policy.retry_jitter)
    assert waiting.outcome == "breaker_open" and waiting.wait_seconds <= limit < timeout + lease_seconds
    world.clock.advance(timeout + 1)
    assert deliver(message(canonical(2)), world.deps).outcome == "breaker_open"  # the probe is still out
    world.log.count_success(endpoint, world.clock())  # the probe got through
    assert deliver(message(canonical(1)), world.deps).outcome == "delivered"
    assert len(receiver.requests) == 1


def test_a_lease_aws_applied_but_answered_with_a_timeout_is_still_this_turns(world, receiver):
    """botocore's retry of a lease write that AWS applied meets the turn's own lease: it sends now
    instead of waiting out its own 90 s lease."""
    world.subscribe(receiver.url)
    table = world.log._table

    class AppliedThenTimedOut:
        def __getattr__(self, name):
            return getattr(table, name)

        def update_item(self, **request):
            if ":now_epoch" in request.get("ExpressionAttributeValues", {}):  # the lease
                table.update_item(**request)  # applied; the answer is lost and botocore sends it again
            return table.update_item(**request)

    world.log._table = AppliedThenTimedOut()
    try:
        verdict = deliver(message(canonical(1)), world.deps)
    finally:
        world.log._table = table
    assert verdict.outcome == "delivered" and len(receiver.requests) == 1


def test_failing_for_a_day_tells_the_tenant_and_five_days_disable(world, receiver):
    world.subscribe(receiver.url)
    receiver.answer(*[Answer(503)] * 10)
    start = world.clock()
    deliver(message(canonical(1)), world.deps)
    assert world.subscription().failing_since == start and world.published() == []
    world.clock.advance(24 * 3600 + 1)
    deliver(message(canonical(2)), world.deps)
    failing = world.subscription()
    assert failing.status == SubscriptionStatus.FAILING and failing.failing_notified_at == world.clock()
    (told,) = world.published()
    assert told["detail-type"] == "subscription.failing" and told["detail"]["tenant"] == "acme"
    assert told["detail"]["attributes"]["failing_since"] == start.isoformat()
    assert "503" in told["detail"]["attributes"]["reason"]
    world.clock.advance(2 * 24 * 3600)
    deliver(message(canonical(3)), world.deps)  # still failing: told once only
    assert world.published() == [] and world.subscription().status == SubscriptionStatus.FAILING
    world.clock.advance(2 * 24 * 3600)
    deliver(message(canonical(4)), world.deps)
    disabled = world.subscription()
    assert disabled.status == SubscriptionStatus.DISABLED and "failed for 5.0 days" in disabled.status_reason
    (gone,) = world.published()
    assert gone["detail-type"] == "subscription.disabled"
    assert gone["detail"]["attributes"]["subscription"] == "sub_1"
    assert deliver(message(canonical(5)), world.deps).outcome == "held"


def test_failing_past_five_days_is_not_disabled_before_the_tenant_was_told_a_day_ahead(world, receiver):
    world.subscribe(receiver.url)
    receiver.answer(*[Answer(503)] * 10)
    deliver(message(canonical(1)), world.deps)
    world.clock.advance(6 * 24 * 3600)  # no event for days: the next failure only tells
    deliver(message(canonical(2)), world.deps)
    assert world.subscription().status == SubscriptionStatus.FAILING
    assert [e["detail-type"] for e in world.published()] == ["subscription.failing"]
    world.clock.advance(24 * 3600)
    deliver(message(canonical(3)), world.deps)
    assert world.subscription().status == SubscriptionStatus.DISABLED


def test_a_delivery_after_failing_makes_the_subscription_active_again(world, receiver):
    world.subscribe(receiver.url)
    receiver.answer(Answer(503), Answer(503))
    deliver(message(canonical(1)), world.deps)
    world.clock.advance(24 * 3600 + 1)
    deliver(message(canonical(2)), world.deps)
    assert world.subscription().status == SubscriptionStatus.FAILING
    world.clock.advance(60)
    assert deliver(message(canonical(3)), world.deps).outcome == "delivered"
    active = world.subscription()
    assert active.status == SubscriptionStatus.ACTIVE and active.failing_since is None
    assert active.failing_notified_at is None and active.status_reason is None


def test_an_ordered_subscription_sends_a_conversation_in_order(world, receiver):
    world.subscribe(receiver.url, ordered=True)
    base = datetime(2026, 12, 1, 12, tzinfo=UTC)
    first = canonical(1, conversation="cv_1", at=base)
    second = canonical(2, conversation="cv_1", at=base + timedelta(seconds=1))
    elsewhere = canonical(3, conversation="cv_2", at=base + timedelta(seconds=2))
    receiver.answer(Answer(503))
    assert deliver(message(first), world.deps, receipt="rcpt-1").outcome == "retry"
    waiting = deliver(message(second), world.deps, receipt="rcpt-2")
    assert (waiting.outcome, waiting.wait_seconds) == ("waiting", 5)  # until the head's next attempt
    assert world.log.get("sub_1", second.id).attempts == 0
    assert deliver(message(elsewhere), world.deps).outcome == "delivered"  # another conversation goes on
    world.clock.advance(5)
    assert deliver(message(first), world.deps).outcome == "delivered"
    assert world.woken == ["rcpt-2"]  # the head woke the next in line
    assert deliver(message(second), world.deps, receipt="rcpt-2").outcome == "delivered"
    sent = [json.loads(r.body)["data"]["id"] for r in receiver.requests]
    assert sent == [first.id, elsewhere.id, first.id, second.id]
    assert world.log.line("sub_1", "conversation:cv_1") == []


def test_an_ordered_line_is_not_blocked_by_a_head_that_finished_without_leaving(world, receiver):
    world.subscribe(receiver.url, ordered=True)
    base = datetime(2026, 12, 1, 12, tzinfo=UTC)
    first = canonical(1, conversation="cv_1", at=base)
    second = canonical(2, conversation="cv_1", at=base + timedelta(seconds=1))
    assert deliver(message(first), world.deps).outcome == "delivered"
    # A crash between the head's outcome and leaving the line leaves its place behind:
    world.log.join_line("sub_1", "conversation:cv_1", base, first.id, world.clock(), 3600)
    assert deliver(message(second), world.deps).outcome == "delivered"


def test_rotation_signs_with_both_secrets_until_the_grace_ends(world, receiver):
    old = world.subscribe(receiver.url)
    assert deliver(message(canonical(1)), world.deps).outcome == "delivered"  # caches the old secret
    new = new_secret()
    grace_ends = world.clock() + timedelta(hours=24)
    world.secrets.put("sub_1", SigningSecrets(current=old).rotated(new, grace_ends))
    world.change(secret_version=2)
    assert deliver(message(canonical(2)), world.deps).outcome == "delivered"
    rotated = receiver.requests[-1]
    assert len(rotated.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(rotated.body, rotated.headers)
    world.clock.advance(24 * 3600)
    assert deliver(message(canonical(3)), world.deps).outcome == "delivered"
    assert len(receiver.requests[-1].headers["webhook-signature"].split(" ")) == 1


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("10.0.0.1", "10.0.0.1 is not a public address"),
        ("169.254.169.254", "169.254.169.254 is link-local"),
        ("::ffff:169.254.169.254", "::ffff:a9fe:a9fe is link-local"),
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
    ],
)
def test_an_endpoint_resolving_to_a_forbidden_address_at_send_is_a_failed_attempt(world, receiver, address, problem):
    world.deps.local_endpoints = False
    world.deps.resolve = lambda host, port: [address]
    world.subscribe("https://hooks.partner.example/switchboard")
    verdict = deliver(message(canonical(1)), world.deps)
    assert (verdict.outcome, verdict.wait_seconds) == ("retry", 5)  # DNS may change back: retried
    (logged,) = attempts(world)
    assert logged.status_code is None and logged.latency_ms == 0
    assert logged.error.startswith("endpoint refused") and problem in logged.error
    assert receiver.requests == []


def test_an_endpoint_that_is_not_loopback_is_refused_by_the_local_runtime(world, receiver):
    world.deps.resolve = lambda host, port: ["93.184.216.34"]
    world.subscribe("http://partner.example/hooks")
    deliver(message(canonical(1)), world.deps)
    assert "not a loopback address" in attempts(world)[0].error


def test_a_deleted_subscription_drops_the_message(world, receiver):
    verdict = deliver(message(canonical(1), sub_id="sub_gone"), world.deps)
    assert (verdict.outcome, verdict.wait_seconds) == ("dropped", None) and "sub_gone" in verdict.detail


def test_another_tenants_event_is_never_sent(world, receiver):
    world.subscribe(receiver.url)
    verdict = deliver(message(canonical(1, tenant="globex")), world.deps)
    assert (verdict.outcome, verdict.wait_seconds) == ("refused", None)
    assert receiver.requests == [] and world.log.get("sub_1", canonical(1, tenant="globex").id) is None


def test_a_message_without_an_event_id_is_an_error(world, receiver):
    world.subscribe(receiver.url)
    with pytest.raises(MalformedMessage, match=r"detail\.id"):
        deliver(DeliveryMessage(subscription="sub_1", event={"detail": {"tenant": "acme"}}), world.deps)
    assert receiver.requests == []


def test_a_waiting_line_holds_only_its_own_key(world):
    at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    world.log.join_line("sub_1", "thread:con_1:a#b", at, "e1", world.clock(), 3600)
    world.log.join_line("sub_1", "thread:con_1:a", at + timedelta(seconds=1), "e2", world.clock(), 3600)
    assert [p.event_id for p in world.log.line("sub_1", "thread:con_1:a")] == ["e2"]
    assert [p.event_id for p in world.log.line("sub_1", "thread:con_1:a#b")] == ["e1"]


def test_an_ordered_event_waits_behind_its_head_until_the_breaker_closes(world, receiver):
    world.subscribe(receiver.url, ordered=True)
    base = datetime(2026, 12, 1, 12, tzinfo=UTC)
    first = canonical(1, conversation="cv_1", at=base)
    second = canonical(2, conversation="cv_1", at=base + timedelta(seconds=1))
    endpoint = f"acme http://127.0.0.1:{receiver.server.server_address[1]}"
    world.log.open_breaker(endpoint, world.clock() + timedelta(seconds=600))
    assert deliver(message(first), world.deps).outcome == "breaker_open"
    waiting = deliver(message(second), world.deps)
    assert (waiting.outcome, waiting.wait_seconds) == ("waiting", 600)
    assert receiver.requests == []


def test_a_head_that_has_not_moved_for_longer_than_any_wait_leaves_the_line(world, receiver):
    world.subscribe(receiver.url, ordered=True)
    base = datetime(2026, 12, 1, 12, tzinfo=UTC)
    first = canonical(1, conversation="cv_1", at=base)
    second = canonical(2, conversation="cv_1", at=base + timedelta(seconds=1))
    receiver.answer(Answer(503))
    assert deliver(message(first), world.deps).outcome == "retry"  # then its message is lost (dead-lettered)
    world.clock.advance(14 * 3600)
    assert deliver(message(second), world.deps).outcome == "delivered"
    assert [p.event_id for p in world.log.line("sub_1", "conversation:cv_1")] == []


def test_a_delivery_record_expires_with_the_event_log_entry_it_needs(world, receiver):
    from switchboard_core import aws
    from switchboard_core.subscriptions.deliveries import DELIVERY_RECORD_TTL_SECONDS, event_sk
    from switchboard_core.subscriptions.store import subscription_pk

    world.subscribe(receiver.url)
    event = canonical(1)
    table = aws.resource("dynamodb").Table(world.aws_world.names.table("subscriptions"))
    assert deliver(message(event), world.deps).outcome == "delivered"
    item = table.get_item(Key={"pk": subscription_pk("sub_1"), "sk": event_sk(event.id)})["Item"]
    assert int(item["expires_at"]) == int(world.deps.clock().timestamp()) + DELIVERY_RECORD_TTL_SECONDS


def test_a_second_resume_of_the_same_held_event_sends_nothing(world, receiver):
    world.subscribe(receiver.url)
    world.change(status=SubscriptionStatus.PAUSED)
    event = canonical(1)
    assert deliver(message(event), world.deps).outcome == "held"
    world.change(status=SubscriptionStatus.ACTIVE)
    # Two resumes (a double click) queued the held event twice, under two triggers.
    assert deliver(message(event, trigger="resume:first"), world.deps).outcome == "delivered"
    again = deliver(message(event, trigger="resume:second"), world.deps)
    assert again.outcome == "duplicate" and again.wait_seconds is None
    assert len(receiver.requests) == 1


def test_an_event_held_while_a_resume_ran_is_not_left_held(world, receiver, monkeypatch):
    world.subscribe(receiver.url)
    world.change(status=SubscriptionStatus.PAUSED)
    event = canonical(1)
    paused_read = world.deps.subscriptions.get
    reads = []

    def resumed_after_first_read(subscription_id):
        found = paused_read(subscription_id)
        reads.append(found.status)
        if len(reads) == 1:  # the turn read it paused; the owner resumes before it marks the event held
            world.change(status=SubscriptionStatus.ACTIVE)
        return found

    monkeypatch.setattr(world.deps.subscriptions, "get", resumed_after_first_read)
    verdict = deliver(message(event), world.deps)
    assert verdict.outcome == "resumed" and verdict.wait_seconds is not None
    assert world.log.get("sub_1", event.id).state == DeliveryState.PENDING
    monkeypatch.undo()
    assert deliver(message(event), world.deps).outcome == "delivered"  # its own message sends it
    assert len(receiver.requests) == 1


def test_one_tenants_failures_do_not_open_the_breaker_for_another_tenant(world, receiver):
    world.subscribe(receiver.url, tenant="evil", sub_id="sub_evil")
    world.subscribe(receiver.url, tenant="acme", sub_id="sub_1")
    receiver.answer(*[Answer(503)] * 5)
    for n in range(5):
        assert deliver(message(canonical(n, tenant="evil"), sub_id="sub_evil"), world.deps).outcome == "retry"
    blocked = deliver(message(canonical(9, tenant="evil"), sub_id="sub_evil"), world.deps)
    assert blocked.outcome == "breaker_open"
    assert deliver(message(canonical(10)), world.deps).outcome == "delivered"  # acme's breaker is its own


def test_a_4xx_is_retried_but_does_not_count_towards_the_breaker(world, receiver):
    world.subscribe(receiver.url)
    receiver.answer(*[Answer(404)] * 6)
    for n in range(6):
        assert deliver(message(canonical(n)), world.deps).outcome == "retry"
    health = world.log.health(f"acme http://127.0.0.1:{receiver.server.server_address[1]}")
    assert health.consecutive_failures == 0 and health.open_until is None


def test_a_partners_subscription_gets_news_only_of_its_own_subscriptions(world, receiver):
    from functions.delivery.logic import subscription_event

    world.subscribe(receiver.url)
    world.change(owner_role="partner")
    mine, other = world.subscription(), world.subscription().model_copy(update={"id": "sub_2", "owner": "key_b"})
    now = world.clock()
    about_other = subscription_event("failing", other, now, "failing since yesterday", "failing:x")
    refused = deliver(message(about_other), world.deps)
    assert refused.outcome == "refused" and receiver.requests == []
    about_mine = subscription_event("failing", mine, now, "failing since yesterday", "failing:y")
    assert deliver(message(about_mine), world.deps).outcome == "delivered"


class CountingSecretStore(SigningSecretStore):
    """A SigningSecretStore that counts its reads (what Secrets Manager would be asked)."""

    def __init__(self) -> None:
        super().__init__(client=None, prefix="")
        self.reads = 0

    def get(self, subscription_id: str) -> SigningSecrets:
        self.reads += 1
        return SigningSecrets(current=new_secret())


def test_fanning_out_to_a_thousand_subscriptions_reads_each_signing_secret_once():
    """An event goes to every subscription it matches, so one execution environment takes them in
    turn: its cache must hold them all, or every delivery reads Secrets Manager again (a
    512-entry LRU did at 1,000 subscriptions; tests/bench/fanout.py measures it)."""
    from functions.delivery.logic import SigningKeys
    from switchboard_core.subscriptions.models import Subscription

    now = datetime.now(UTC)
    subscriptions = [
        Subscription(
            id=f"sub_{n:04d}",
            tenant="acme",
            owner="key_partner",
            url="https://partner.example/hooks",
            event_pattern={"source": [{"prefix": "switchboard."}]},
            created_at=now,
            updated_at=now,
        )
        for n in range(1_000)
    ]
    store = CountingSecretStore()
    keys = SigningKeys(store, monotonic=lambda: 0.0)  # the delivery handler's sizes; time stands still
    for _ in range(3):  # three events, each fanned out to every subscription
        for subscription in subscriptions:
            keys.keys(subscription, now)
    assert store.reads == 1_000
    rotated = subscriptions[7].model_copy(update={"secret_version": subscriptions[7].secret_version + 1})
    keys.keys(rotated, now)  # a rotation is still read at once
    assert store.reads == 1_001
