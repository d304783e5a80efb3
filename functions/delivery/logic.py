"""Delivering one event to one partner subscription: one turn per queue message.

A turn, in order:

1. The subscription is read (consistently). Gone -> the message is dropped. An event of
   another tenant is refused (the rule already scopes the tenant; this is the second lock).
2. The event's delivery is claimed with a lease (a conditional write), so two copies of one
   queue message never send at once; the other copy waits for the lease to end.
3. Exactly once: a trigger (`bus`, `retry:<id>`, `replay:<name>`, `resume:<id>`) already in
   the delivery's delivered_triggers is not sent again. A new trigger takes the delivery
   over with a schedule of its own; the trigger it replaced stops when its message returns.
   A retrying delivery whose next attempt is not due yet waits for it.
4. A paused or disabled subscription -> the delivery is `held` (resume re-sends it).
5. Ordered subscriptions: the event joins its order key's waiting line; only the oldest
   waiting event is sent, the others wait without spending an attempt, and the head wakes
   the next one when it leaves the line (delivered, failed for good, or held).
6. The endpoint's circuit breaker: while open, the message waits without spending an
   attempt; when the cool-down ends, one message probes.
7. The send: the URL is checked by the SSRF guard again (DNS may have changed), the body
   signed per Standard Webhooks and POSTed to the checked address. 2xx -> delivered;
   410 -> the subscription is disabled (subscription.disabled) and the event held; anything
   else -> the next attempt after the schedule's delay (at least Retry-After), or `failed`
   (kept, replayable) when the schedule is spent. Each attempt is logged.
8. The subscription's health: failing_since is set at its first failure after a success;
   failing for failing_after_seconds -> status failing + subscription.failing; failing for
   disabled_after_seconds, and told at least failing_after_seconds before -> disabled +
   subscription.disabled. A success clears it.

The turn returns a Verdict; a wait (`wait_seconds`) makes the handler move the message's
visibility and report it as a batch item failure, so it returns when due.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from switchboard_core.endpoints import EndpointRefused, Resolver, check_endpoint, resolve_host
from switchboard_core.events import CanonicalEvent, Channel, EventDraft
from switchboard_core.subscriptions.deliveries import DeliveryWriter, EndpointHealth, LinePlace
from switchboard_core.subscriptions.models import (
    DELIVERY_PROVIDER,
    Attempt,
    Delivery,
    DeliveryMessage,
    DeliveryState,
    Subscription,
    SubscriptionStatus,
    about_another_partners_subscription,
    delivery_body,
    is_resume,
    order_key,
)
from switchboard_core.subscriptions.policy import SQS_MAX_VISIBILITY_SECONDS, DeliveryPolicy
from switchboard_core.subscriptions.secrets import SigningSecretStore
from switchboard_core.subscriptions.sender import USER_AGENT, Sender, SendResult
from switchboard_core.subscriptions.signing import SigningSecrets, webhook_headers
from switchboard_core.subscriptions.store import SubscriptionStore

# Longer than the function's timeout (30 s): a holder past it is surely gone.
LEASE_SECONDS = 90
# A half-open breaker's probe holds the endpoint for its send timeout plus this (a probe whose
# turn died frees it then); copies waiting on a probe look again after the timeout plus
# PROBE_SETTLE_SECONDS (the probe's outcome written by then).
PROBE_WINDOW_EXTRA_SECONDS = LEASE_SECONDS
PROBE_SETTLE_SECONDS = 5
# A line's head whose delivery has not moved for longer than any wait of its message can
# last has lost its message (dead-lettered): it leaves the line so the others go on.
ABANDONED_AFTER = timedelta(seconds=SQS_MAX_VISIBILITY_SECONDS + 3600)
DUE_TOLERANCE = timedelta(seconds=1)
MIN_WAIT_SECONDS = 1.0


class MalformedMessage(ValueError):
    """A queue message that names no event: reported, so it reaches the dead-letter queue."""


@dataclass(frozen=True)
class Verdict:
    """How a turn ended. `wait_seconds` set: the message comes back after that long;
    None: the message is finished (delivered, failed for good, held, dropped...)."""

    outcome: str
    wait_seconds: float | None = None
    detail: str = ""
    status_code: int | None = None


# Signing secrets one execution environment keeps. An event fans out to every subscription it
# matches, one message each, so an environment takes subscriptions in turn: an LRU smaller than
# their number misses on every delivery (512 did at 1,000 subscriptions: one Secrets Manager
# read per delivery, tests/bench/fanout.py). An entry is about 1 KB: 10,000 are ~10 MB.
SIGNING_KEYS_CACHED = 10_000


class SigningKeys:
    """Subscriptions' signing secrets, cached per execution environment under (subscription,
    secret_version): rotation bumps secret_version on the subscription, which every turn reads,
    so the new secret is used at once; entries also expire after `max_age_seconds`."""

    def __init__(
        self,
        store: SigningSecretStore,
        *,
        max_age_seconds: float = 300,
        max_entries: int = SIGNING_KEYS_CACHED,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._max_age = max_age_seconds
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._cache: OrderedDict[tuple[str, int], tuple[float, SigningSecrets]] = OrderedDict()

    def secrets(self, subscription: Subscription) -> SigningSecrets:
        key = (subscription.id, subscription.secret_version)
        cached = self._cache.get(key)
        if cached is not None and self._monotonic() - cached[0] < self._max_age:
            self._cache.move_to_end(key)
            return cached[1]
        secrets = self._store.get(subscription.id)
        self._cache[key] = (self._monotonic(), secrets)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return secrets

    def keys(self, subscription: Subscription, now: datetime) -> list[bytes]:
        return self.secrets(subscription).signing_keys(now)


@dataclass
class DeliveryDeps:
    subscriptions: SubscriptionStore
    log: DeliveryWriter
    keys: SigningKeys
    send: Sender
    publish: Callable[[list[CanonicalEvent]], None]
    policy: DeliveryPolicy
    local_endpoints: bool  # the local runtime: loopback endpoints only (switchboard_core.endpoints)
    wake: Callable[[str], None]  # make a waiting message (its receipt handle) visible now
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    rand: Callable[[], float] = random.random
    resolve: Resolver = resolve_host


@dataclass(frozen=True)
class Turn:
    """What one message is about, worked out once."""

    subscription: Subscription
    message: DeliveryMessage
    event_id: str
    trigger: str
    event_time: datetime
    order_key: str | None
    receipt: str | None


def deliver(message: DeliveryMessage, deps: DeliveryDeps, receipt: str | None = None) -> Verdict:
    """One turn of one queue message (`receipt`: its receipt handle, for ordered lines)."""
    now = deps.clock()
    detail = message.detail
    event_id = detail.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedMessage("the message's event has no detail.id: it cannot be delivered")
    subscription = deps.subscriptions.get(message.subscription)
    if subscription is None:
        return Verdict("dropped", detail=f"subscription {message.subscription} no longer exists")
    if detail.get("tenant") != subscription.tenant:
        return Verdict("refused", detail="the event's tenant is not the subscription's: not sent")
    if about_another_partners_subscription(subscription, detail):
        return Verdict("refused", detail="news of another partner's subscription: not sent")
    turn = Turn(
        subscription=subscription,
        message=message,
        event_id=event_id,
        trigger=message.effective_trigger,
        event_time=event_moment(message, now),
        order_key=order_key(detail) if subscription.ordered else None,
        receipt=receipt,
    )
    owner = uuid.uuid4().hex
    claim = deps.log.claim(
        subscription.id,
        event_id,
        owner=owner,
        now=now,
        lease_seconds=LEASE_SECONDS,
        event_type=str(detail.get("type") or message.event.get("detail-type") or "unknown"),
        event_time=turn.event_time,
        order_key=turn.order_key,
    )
    if claim.delivery is None:
        held_for = (claim.held_until - now).total_seconds() if claim.held_until else LEASE_SECONDS
        return Verdict("in_progress", wait_seconds=jittered(held_for, deps), detail="another copy is sending it")
    try:
        return take_turn(turn, claim.delivery, deps, now)
    finally:
        deps.log.release(subscription.id, event_id, owner)


def take_turn(turn: Turn, delivery: Delivery, deps: DeliveryDeps, now: datetime) -> Verdict:
    subscription = turn.subscription
    if turn.trigger in delivery.delivered_triggers:
        return Verdict("duplicate", detail=f"already delivered for {turn.trigger}")
    if is_resume(turn.trigger) and delivery.trigger != turn.trigger and delivery.state != DeliveryState.HELD:
        # A resume re-sends what was held; a second resume (a double click, a retried request)
        # or a resume racing the event's own message finds it no longer held: nothing to send.
        return Verdict("duplicate", detail=f"no longer held ({delivery.state.value} for {delivery.trigger})")
    if delivery.trigger != turn.trigger:
        if turn.trigger in delivery.triggers:
            return Verdict("superseded", detail=f"{delivery.trigger} took this delivery over")
        delivery = deps.log.start_trigger(subscription.id, turn.event_id, turn.trigger, now)
    elif delivery.state in (DeliveryState.FAILED, DeliveryState.HELD, DeliveryState.DELIVERED):
        return Verdict("finished", detail=f"already {delivery.state.value} for {turn.trigger}")
    elif delivery.next_attempt_at is not None and delivery.next_attempt_at > now + DUE_TOLERANCE:
        return Verdict("not_due", wait_seconds=(delivery.next_attempt_at - now).total_seconds())
    if subscription.status in (SubscriptionStatus.PAUSED, SubscriptionStatus.DISABLED):
        held = delivery.model_copy(update={"updated_at": now})
        deps.log.mark_held(held)
        leave_line(turn, deps)
        current = deps.subscriptions.get(subscription.id)
        if current is not None and current.status not in (SubscriptionStatus.PAUSED, SubscriptionStatus.DISABLED):
            # Resumed since this turn read it: resume's sweep of held deliveries may have run
            # before this one was marked, so it is not left held; its message sends it shortly.
            deps.log.mark_pending(held)
            return Verdict("resumed", wait_seconds=jittered(MIN_WAIT_SECONDS, deps), detail="resumed meanwhile")
        return Verdict("held", detail=f"the subscription is {subscription.status.value}")
    endpoint = endpoint_key(subscription.tenant, subscription.url)
    health = deps.log.health(endpoint)
    if turn.order_key is not None:
        waiting = wait_in_line(turn, health, deps, now)
        if waiting is not None:
            return waiting
    closed = breaker_gate(health, deps, now)
    if closed is not None:
        return closed
    return attempt(turn, delivery, health, deps)


# --- ordered subscriptions ---


def wait_in_line(turn: Turn, health: EndpointHealth, deps: DeliveryDeps, now: datetime) -> Verdict | None:
    """None when this event is at the head of its line (send it); else a wait behind the head:
    until the head's next attempt or the breaker's end, whichever is later (the head wakes it
    sooner when it leaves the line)."""
    assert turn.order_key is not None
    subscription_id = turn.subscription.id
    deps.log.join_line(
        subscription_id, turn.order_key, turn.event_time, turn.event_id, now, deps.policy.attempts_ttl_seconds
    )
    for _ in range(10):
        line = deps.log.line(subscription_id, turn.order_key, limit=1)
        if not line or line[0].event_id == turn.event_id:
            return None
        head = line[0]
        head_delivery = deps.log.get(subscription_id, head.event_id)
        if has_left(head_delivery, now):  # its turn ended without leaving the line (a crash)
            deps.log.leave_line(subscription_id, head.order_key, head.event_time, head.event_id)
            continue
        assert head_delivery is not None
        if turn.receipt is not None:
            place = LinePlace(turn.event_id, turn.event_time, turn.order_key, now, None)
            deps.log.wait_in_line(subscription_id, place, turn.receipt)
        due = max(
            [moment for moment in (head_delivery.next_attempt_at, health.open_until) if moment is not None],
            default=now,
        )
        wait = (due - now).total_seconds() if due > now else deps.policy.timeout_seconds
        return Verdict("waiting", wait_seconds=jittered(wait, deps), detail=f"behind event {head.event_id}")
    return Verdict("waiting", wait_seconds=jittered(MIN_WAIT_SECONDS, deps), detail="its line keeps changing")


def has_left(head: Delivery | None, now: datetime) -> bool:
    if head is None or head.state in (DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.HELD):
        return True
    return now - head.updated_at > ABANDONED_AFTER


def leave_line(turn: Turn, deps: DeliveryDeps) -> None:
    """Leave the line and wake the next waiting event, so it need not sit out its wait."""
    if turn.order_key is None:
        return
    deps.log.leave_line(turn.subscription.id, turn.order_key, turn.event_time, turn.event_id)
    following = deps.log.line(turn.subscription.id, turn.order_key, limit=1)
    if following and following[0].receipt:
        deps.wake(following[0].receipt)


# --- the circuit breaker ---


def endpoint_key(tenant: str, url: str) -> str:
    """<tenant> scheme://host:port: what the circuit breaker counts failures of. Per tenant, so
    one tenant's failing subscription (a wrong path on a shared receiver) cannot slow another
    tenant's deliveries to the same host."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return f"{tenant} {url[:200]}"
    return f"{tenant} {parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def is_endpoint_failure(result: SendResult) -> bool:
    """What says the endpoint itself is in trouble (the breaker counts these): no answer, 429 or
    5xx. A 4xx other than 429 is about this request (a wrong path, a rejected signature): it is
    retried but does not slow down other subscriptions' deliveries to the endpoint."""
    return result.status_code is None or result.status_code == 429 or result.status_code >= 500


def breaker_gate(health: EndpointHealth, deps: DeliveryDeps, now: datetime) -> Verdict | None:
    """None when the breaker lets a send through (closed, or this turn is the probe)."""
    endpoint = health.endpoint
    if health.open_until is None:
        return None
    # A probe's send is over within the send timeout: copies waiting on it look again then, so a
    # successful probe (which closes the breaker) lets them send promptly instead of at the end
    # of the probe's window (timeout + lease, kept for a probe whose turn died).
    probe_wait = min(deps.policy.timeout_seconds + PROBE_SETTLE_SECONDS, PROBE_WINDOW_EXTRA_SECONDS)
    if health.open_until > now:
        wait = (health.open_until - now).total_seconds()
        if health.probe_started_at is not None:
            return Verdict(
                "breaker_open",
                wait_seconds=jittered(min(wait, probe_wait), deps),
                detail=f"another delivery is probing {endpoint}",
            )
        return Verdict("breaker_open", wait_seconds=jittered(wait, deps), detail=f"{endpoint} is failing")
    probe_window = timedelta(seconds=deps.policy.timeout_seconds + PROBE_WINDOW_EXTRA_SECONDS)
    if deps.log.take_probe(endpoint, health.open_until, now + probe_window):
        return None  # the cool-down is over: this turn tries the endpoint again
    return Verdict(
        "breaker_open",
        wait_seconds=jittered(probe_wait, deps),
        detail=f"another delivery is probing {endpoint}",
    )


# --- the send ---


def attempt(turn: Turn, delivery: Delivery, health: EndpointHealth, deps: DeliveryDeps) -> Verdict:
    subscription, policy, endpoint = turn.subscription, deps.policy, health.endpoint
    body = json.dumps(delivery_body(turn.message.detail), separators=(",", ":")).encode()
    sent_at = deps.clock()
    headers = {
        **webhook_headers(deps.keys.keys(subscription, sent_at), turn.event_id, int(sent_at.timestamp()), body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    try:
        checked = check_endpoint(subscription.url, local=deps.local_endpoints, resolve=deps.resolve)
    except EndpointRefused as refused:
        problems = refused.details.get("problems") or [{"problem": refused.message}]
        problem = problems[0]["problem"]
        result = SendResult(status_code=None, latency_ms=0, error=f"endpoint refused: {problem}")
    else:
        result = deps.send(checked, body, headers, policy.timeout_seconds)
    spent = delivery.model_copy(
        update={
            "attempts": delivery.attempts + 1,
            "trigger_attempts": delivery.trigger_attempts + 1,
            "updated_at": sent_at,
        }
    )

    def log_attempt(outcome: str, next_attempt_at: datetime | None = None) -> None:
        deps.log.record_attempt(
            Attempt(
                subscription=subscription.id,
                event_id=turn.event_id,
                attempt=spent.attempts,
                at=sent_at,
                status_code=result.status_code,
                error=result.error,
                latency_ms=result.latency_ms,
                response_excerpt=result.excerpt,
                outcome=outcome,
                next_attempt_at=next_attempt_at,
                trigger=turn.trigger,
            ),
            policy.attempts_ttl_seconds,
        )

    if result.delivered:
        assert result.status_code is not None
        log_attempt("delivered")
        deps.log.mark_delivered(spent, turn.trigger, result.status_code)
        if health.consecutive_failures or health.open_until is not None:  # a healthy endpoint is not written
            deps.log.count_success(endpoint, sent_at)
        leave_line(turn, deps)
        if subscription.failing_since is not None or subscription.status == SubscriptionStatus.FAILING:
            update_subscription(subscription.id, recovered, deps, sent_at)
        return Verdict("delivered", status_code=result.status_code)

    if result.status_code == 410:
        log_attempt("disabled")
        reason = f"the endpoint answered 410 Gone to event {turn.event_id}"
        gone = f"gone:{turn.event_id}"
        update_subscription(subscription.id, lambda current, now: disabled(current, now, reason, gone), deps, sent_at)
        deps.log.mark_held(spent)
        leave_line(turn, deps)
        return Verdict("disabled", status_code=410, detail=reason)

    problem = result.error or f"HTTP {result.status_code}"
    if is_endpoint_failure(result):
        health = deps.log.count_failure(endpoint, sent_at, problem)
        if health.consecutive_failures >= policy.breaker_failure_threshold:
            cooldown = policy.breaker_cooldown(health.consecutive_failures)
            deps.log.open_breaker(endpoint, sent_at + timedelta(seconds=cooldown))
    retry_after = retry_after_seconds(result.headers.get("retry-after"), sent_at)
    delay = policy.delay_before(spent.trigger_attempts + 1, retry_after, deps.rand)
    if delay is None:
        log_attempt("failed")
        deps.log.mark_failed(spent, result.status_code, result.error)
        leave_line(turn, deps)
        verdict = Verdict("failed", status_code=result.status_code, detail=problem)
    else:
        next_attempt_at = sent_at + timedelta(seconds=delay)
        log_attempt("retry", next_attempt_at)
        deps.log.mark_retrying(spent, next_attempt_at, result.status_code, result.error)
        verdict = Verdict("retry", wait_seconds=delay, status_code=result.status_code, detail=problem)
    update_subscription(
        subscription.id, lambda current, now: still_failing(current, now, problem, policy), deps, sent_at
    )
    return verdict


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """An endpoint's Retry-After: seconds, or an HTTP date (RFC 9110); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    # ASCII digits only: headers arrive Latin-1 decoded, and "²" is a digit to str.isdigit
    # that float() refuses (a ValueError out of the delivery function, for one odd header).
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


# --- the subscription's health ---

Change = Callable[[Subscription, datetime], tuple[Subscription, CanonicalEvent | None] | None]


def update_subscription(subscription_id: str, change: Change, deps: DeliveryDeps, now: datetime) -> None:
    """Apply `change` to the stored subscription (read again, so an admin's edit is not undone),
    publishing its event first: a failed save reads and decides again, and the event's id is
    deterministic, so a second publish of the same decision is a duplicate consumers drop."""
    for _ in range(3):
        current = deps.subscriptions.get(subscription_id)
        if current is None:
            return
        decided = change(current, now)
        if decided is None:
            return
        updated, event = decided
        if event is not None:
            deps.publish([event])
        updated = updated.model_copy(update={"version": current.version + 1, "updated_at": now})
        if deps.subscriptions.save(updated, expected_version=current.version):
            return


def recovered(subscription: Subscription, now: datetime) -> tuple[Subscription, None] | None:
    if subscription.failing_since is None and subscription.status != SubscriptionStatus.FAILING:
        return None
    status = SubscriptionStatus.ACTIVE if subscription.status == SubscriptionStatus.FAILING else subscription.status
    update = {"failing_since": None, "failing_notified_at": None, "status": status}
    if status == SubscriptionStatus.ACTIVE:
        update["status_reason"] = None
    return subscription.model_copy(update=update), None


def still_failing(
    subscription: Subscription, now: datetime, problem: str, policy: DeliveryPolicy
) -> tuple[Subscription, CanonicalEvent | None] | None:
    if subscription.status in (SubscriptionStatus.PAUSED, SubscriptionStatus.DISABLED):
        return None
    if subscription.failing_since is None:
        return subscription.model_copy(update={"failing_since": now}), None
    failing_for = (now - subscription.failing_since).total_seconds()
    if subscription.failing_notified_at is None:
        if failing_for < policy.failing_after_seconds:
            return None
        reason = f"every delivery has failed since {subscription.failing_since.isoformat()}; last: {problem}"
        failing = subscription.model_copy(
            update={"status": SubscriptionStatus.FAILING, "status_reason": reason, "failing_notified_at": now}
        )
        event = subscription_event("failing", failing, now, reason, f"failing:{subscription.failing_since.isoformat()}")
        return failing, event
    told_for = (now - subscription.failing_notified_at).total_seconds()
    if failing_for < policy.disabled_after_seconds or told_for < policy.failing_after_seconds:
        return None
    reason = (
        f"every delivery failed for {failing_for / 86400:.1f} days (since {subscription.failing_since.isoformat()}); "
        f"last: {problem}"
    )
    return disabled(subscription, now, reason, f"failing:{subscription.failing_since.isoformat()}")


def disabled(
    subscription: Subscription, now: datetime, reason: str, cause: str
) -> tuple[Subscription, CanonicalEvent] | None:
    if subscription.status == SubscriptionStatus.DISABLED:
        return None  # already (a concurrent turn, or an earlier try of this one that was saved)
    stopped = subscription.model_copy(update={"status": SubscriptionStatus.DISABLED, "status_reason": reason})
    return stopped, subscription_event("disabled", stopped, now, reason, f"disabled:{cause}")


def subscription_event(
    kind: str, subscription: Subscription, now: datetime, reason: str, decision: str
) -> CanonicalEvent:
    """subscription.failing / subscription.disabled, for the subscription's tenant."""
    # Its id and owner, not its URL or description: another subscription of the tenant may
    # receive this event, and a URL can carry a partner's token (the owner reads the rest).
    attributes: dict[str, Any] = {
        "subscription": subscription.id,
        "owner": subscription.owner,
        "status": subscription.status.value,
        "failing_since": subscription.failing_since.isoformat() if subscription.failing_since else None,
        "reason": reason,
    }
    text = {
        "failing": f"Deliveries of subscription {subscription.id} are failing; it will be disabled if they go on.",
        "disabled": f"Subscription {subscription.id} was disabled; its undelivered events are kept.",
    }[kind]
    return CanonicalEvent.from_draft(
        EventDraft(
            type=f"subscription.{kind}",
            provider_event_id=f"{subscription.id}:{decision}",
            occurred_at=now,
            text=text,
            attributes=attributes,
        ),
        provider=DELIVERY_PROVIDER,
        connection=DELIVERY_PROVIDER,
        tenant=subscription.tenant,
        channel=Channel.GENERIC,
        received_at=now,
        raw_ref=None,
    )


# --- small helpers ---


def event_moment(message: DeliveryMessage, now: datetime) -> datetime:
    """When the event happened for ordering: the canonical received_at, else the envelope's time."""
    for raw in (message.detail.get("received_at"), message.event.get("time")):
        if isinstance(raw, str):
            try:
                moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                continue
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return now


def jittered(seconds: float, deps: DeliveryDeps) -> float:
    """A wait with the policy's jitter, so messages that wait together do not return together."""
    return max(MIN_WAIT_SECONDS, seconds) * (1 + deps.policy.retry_jitter * deps.rand())
