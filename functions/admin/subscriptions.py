"""Partner subscriptions: who may see and change which, the checks a subscription passes
when saved, and the bus rule, signing secret and delivery-queue messages behind it.

A subscription is three things kept in step: its META item (table `subscriptions`), its
signing secret (Secrets Manager) and its EventBridge rule (on the hub's bus, named
SUBSCRIPTION_RULE_PREFIX + id, matching the partner's pattern ANDed with the tenant, one
target: the delivery queue). Creation makes them in that order and undoes what it made
if a later step fails; deletion removes them in an order a retried DELETE can finish.

Visibility: a partner key sees only the subscriptions it created; anything else answers
404 exactly as a missing id does, so ids do not leak. Staff read their tenant's, admins
manage their tenants'.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from functions.admin.routing_config import tenant_for
from switchboard_core.bus import to_entry
from switchboard_core.cursors import CursorCodec
from switchboard_core.endpoints import Resolver, check_endpoint
from switchboard_core.errors import HubError, NotFound, invalid_request
from switchboard_core.event_log import EventLogStore
from switchboard_core.event_rules import delete_queue_rule, put_queue_rule, wrapped_event_template
from switchboard_core.events import CanonicalEvent
from switchboard_core.principals import ALL_TENANTS, Principal
from switchboard_core.subscriptions import patterns, signing
from switchboard_core.subscriptions.deliveries import DeliveryLog
from switchboard_core.subscriptions.models import (
    RESUME_TRIGGER_PREFIX,
    SUBSCRIPTION_ID_PREFIX,
    DeliveryMessage,
    DeliveryState,
    Subscription,
    SubscriptionStatus,
)
from switchboard_core.subscriptions.policy import DeliveryPolicy
from switchboard_core.subscriptions.secrets import SigningSecretStore
from switchboard_core.subscriptions.store import SubscriptionStore

TARGET_ID = "delivery"
MAX_URL_CHARS = 2048
MAX_DESCRIPTION_CHARS = 500
# The event log keeps 30 days: a longer replay could not be served locally, and on AWS it
# would re-send more than a partner can have missed since the log's oldest event.
MAX_REPLAY = timedelta(days=30)
CLOCK_SKEW = timedelta(minutes=1)
SQS_BATCH = 10
SQS_BATCH_BYTES = 256 * 1024
NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"

logger = Logger(child=True)


# --- requests ---------------------------------------------------------------------------------


class CreateSubscription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1, max_length=MAX_URL_CHARS, description="where deliveries go: https (http only to loopback locally)"
    )
    event_pattern: dict[str, Any] = Field(
        description="an EventBridge event pattern over source, detail-type and detail.*; the tenant is ANDed in"
    )
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    tenant: str | None = Field(default=None, min_length=1, max_length=64, pattern=NAME_PATTERN)
    ordered: bool = Field(default=False, description="deliver one conversation's events one at a time, in order")


class UpdateSubscription(BaseModel):
    """The fields a PATCH may change; those left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=MAX_URL_CHARS)
    event_pattern: dict[str, Any] | None = None
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)
    ordered: bool | None = None


class ReplayRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime = Field(description="re-send events received at or after this (ISO 8601 with an offset)")
    until: AwareDatetime = Field(description="... and before this")

    @model_validator(mode="after")
    def _ordered(self) -> ReplayRange:
        if self.since >= self.until:
            raise ValueError("since must be before until")
        if self.until - self.since > MAX_REPLAY:
            raise ValueError(f"a replay covers at most {MAX_REPLAY.days} days (the event log's retention)")
        return self


# --- dependencies -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSettings:
    bus_name: str
    rule_prefix: str
    queue_url: str
    queue_arn: str
    dead_letter_queue_arn: str
    archive_arn: str | None  # AWS only: replays come from the bus archive; locally from the event log

    def rule_name(self, subscription_id: str) -> str:
        return f"{self.rule_prefix}{subscription_id}"

    @property
    def region_and_account(self) -> tuple[str, str]:
        parts = self.queue_arn.split(":")  # arn:aws:sqs:<region>:<account>:<name>
        return parts[3], parts[4]

    def _arn(self, resource: str) -> str:
        # Built from the archive's ARN (same partition, region and account as the bus): no
        # DescribeEventBus/DescribeRule permission needed just to name them for StartReplay.
        if not self.archive_arn:
            raise ValueError("the bus and rule ARNs are named from the archive's, and there is none")
        return ":".join(self.archive_arn.split(":")[:5]) + f":{resource}"

    @property
    def bus_arn(self) -> str:
        return self._arn(f"event-bus/{self.bus_name}")

    def rule_arn(self, subscription_id: str) -> str:
        return self._arn(f"rule/{self.bus_name}/{self.rule_name(subscription_id)}")


@dataclass
class SubscriptionDeps:
    store: SubscriptionStore
    deliveries: DeliveryLog
    secrets: SigningSecretStore
    event_log: EventLogStore
    events: Any  # EventBridge client
    sqs: Any
    settings: RuleSettings
    policy: DeliveryPolicy
    local: bool  # the local runtime: loopback endpoints only (SWITCHBOARD_ENDPOINTS=loopback)
    resolve: Resolver
    new_id: Callable[[], str] = lambda: SUBSCRIPTION_ID_PREFIX + uuid.uuid4().hex[:16]


# --- views ------------------------------------------------------------------------------------


def view(subscription: Subscription) -> dict[str, Any]:
    """A subscription as the API shows it: never its secret (which is not in the item anyway)."""
    return subscription.model_dump(mode="json", exclude={"version"})


# --- who sees what ----------------------------------------------------------------------------


def visible(principal: Principal, subscription_id: str, deps: SubscriptionDeps) -> Subscription:
    found = deps.store.get(subscription_id) if subscription_id.startswith(SUBSCRIPTION_ID_PREFIX) else None
    if found is None or not principal.can_read_subscription(found.tenant, found.owner):
        # The same answer for a missing id and one the key may not see: ids do not leak.
        raise NotFound(f"unknown subscription {subscription_id!r}", code="unknown_subscription")
    return found


def manageable(principal: Principal, subscription_id: str, deps: SubscriptionDeps) -> Subscription:
    found = visible(principal, subscription_id, deps)
    principal.require_manage_subscription(found.tenant, found.owner)
    return found


# --- checks when saving -----------------------------------------------------------------------


def checked(url: str, pattern: dict[str, Any], tenant: str, deps: SubscriptionDeps) -> dict[str, Any]:
    """The pattern scoped to the tenant, once the URL and the pattern passed every check: the
    hub's own pattern check first (local, names every problem), then the endpoint (resolves its
    host), then EventBridge's TestEventPattern on a sample event of the tenant."""
    patterns.check_pattern(pattern, tenant)
    check_endpoint(url, local=deps.local, resolve=deps.resolve)
    scoped = patterns.scoped_to_tenant(pattern, tenant)
    pattern_matches(scoped, sample_event(tenant, deps.settings), deps)
    return scoped


def sample_event(tenant: str, settings: RuleSettings, event: CanonicalEvent | None = None) -> dict[str, Any]:
    """An event as it is on the bus, with every field TestEventPattern requires."""
    region, account = settings.region_and_account
    moment = event.received_at if event else datetime.now(UTC)
    return {
        "id": event.id if event else str(uuid.uuid4()),
        "account": account,
        "source": event.source if event else "switchboard.test",
        "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail-type": event.type if event else "message.received",
        "detail": json.loads(event.model_dump_json()) if event else {"tenant": tenant},
    }


def pattern_matches(scoped: dict[str, Any], event: dict[str, Any], deps: SubscriptionDeps) -> bool:
    """EventBridge's own verdict: whether `event` matches, or a 400 naming its reason."""
    from botocore.exceptions import ClientError

    try:
        answer = deps.events.test_event_pattern(EventPattern=json.dumps(scoped), Event=json.dumps(event))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") != "InvalidEventPatternException":
            raise
        reason = error.get("Message") or "invalid pattern"
        problem = {"field": "event_pattern", "in": "body", "problem": f"EventBridge: {reason}"}
        raise patterns.InvalidPattern([problem]) from None
    return bool(answer.get("Result"))


# --- the rule ---------------------------------------------------------------------------------


def input_template(subscription_id: str) -> str:
    return wrapped_event_template({"subscription": subscription_id})


def put_rule(subscription: Subscription, scoped: dict[str, Any], deps: SubscriptionDeps) -> None:
    """Create or update the rule and its one target. The state follows the subscription
    (a paused subscription's rule stays disabled)."""
    settings = deps.settings
    put_queue_rule(
        deps.events,
        bus_name=settings.bus_name,
        name=settings.rule_name(subscription.id),
        pattern=scoped,
        description=f"Switchboard subscription {subscription.id} (tenant {subscription.tenant})",
        target_id=TARGET_ID,
        queue_arn=settings.queue_arn,
        input_template=input_template(subscription.id),
        dead_letter_queue_arn=settings.dead_letter_queue_arn,  # the delivery DLQ (alarmed)
        # Every subscription is one rule; EventBridge allows 300 per bus unless the quota is raised.
        quota_message=(
            "the event bus has reached its quota of rules, one per subscription: delete unused subscriptions, "
            "or ask the operator to raise the EventBridge 'Rules per event bus' quota"
        ),
        enabled=subscription.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.FAILING),
    )


def delete_rule(subscription_id: str, deps: SubscriptionDeps) -> None:
    """Remove the rule and its target; a rule already gone is fine (a retried delete)."""
    settings = deps.settings
    delete_queue_rule(
        deps.events, bus_name=settings.bus_name, name=settings.rule_name(subscription_id), target_id=TARGET_ID
    )


def set_rule_state(subscription_id: str, enabled: bool, deps: SubscriptionDeps) -> None:
    settings = deps.settings
    change = deps.events.enable_rule if enabled else deps.events.disable_rule
    change(Name=settings.rule_name(subscription_id), EventBusName=settings.bus_name)


# --- operations -------------------------------------------------------------------------------


def create(principal: Principal, request: CreateSubscription, deps: SubscriptionDeps, now: datetime) -> dict[str, Any]:
    tenant = request.tenant or principal.tenant
    if tenant == ALL_TENANTS:
        raise invalid_request([{"field": "tenant", "in": "body", "problem": "required for an operator key ('*')"}])
    principal.require_subscribe(tenant)
    scoped = checked(request.url, request.event_pattern, tenant, deps)
    subscription = Subscription(
        id=deps.new_id(),
        tenant=tenant,
        owner=principal.key_id,
        owner_role=principal.role.value,
        url=request.url,
        event_pattern=request.event_pattern,
        description=request.description,
        ordered=request.ordered,
        created_at=now,
        updated_at=now,
    )
    secret = signing.new_secret()
    undo: list[Callable[[], Any]] = []
    try:
        deps.secrets.create(subscription.id, signing.SigningSecrets(current=secret))
        undo.append(lambda: deps.secrets.delete(subscription.id))
        deps.store.create(subscription)
        undo.append(lambda: deps.store.delete(subscription.id))
        undo.append(lambda: delete_rule(subscription.id, deps))  # a half-made rule (target refused)
        put_rule(subscription, scoped, deps)
    except Exception:
        for step in reversed(undo):  # nothing is left half-made: no rule without a record, no orphan secret
            try:
                step()
            except Exception:  # keep undoing the rest; the original failure is what the caller gets
                logger.exception(
                    "undoing a failed subscription creation failed", extra={"subscription": subscription.id}
                )
        raise
    return view(subscription) | {"secret": secret}


def list_subscriptions(
    principal: Principal,
    tenant: str | None,
    limit: int,
    cursor: str | None,
    deps: SubscriptionDeps,
    codec: CursorCodec,
) -> dict[str, Any]:
    chosen = tenant_for(principal, tenant)
    principal.require_subscription_listing(chosen)
    owner = principal.owner_filter()
    scope = {"listing": "subscriptions", "tenant": chosen, "owner": owner}
    after = codec.open(cursor, scope, SubscriptionPosition) if cursor else None
    found, last = deps.store.list_for_tenant(chosen, owner=owner, limit=limit, start_key=after)
    return {"subscriptions": [view(s) for s in found], "next_cursor": codec.seal(scope, last) if last else None}


class SubscriptionPosition(BaseModel):
    """Where a listing of the subscriptions' by_tenant index stopped."""

    model_config = ConfigDict(extra="forbid")

    pk: str
    sk: str
    tenant: str
    created_at: str


class AttemptPosition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pk: str
    sk: str


def update(
    principal: Principal, subscription_id: str, request: UpdateSubscription, deps: SubscriptionDeps, now: datetime
) -> dict[str, Any]:
    current = manageable(principal, subscription_id, deps)
    changes = request.model_dump(exclude_none=True)
    if not changes:
        return view(current)
    url = changes.get("url", current.url)
    pattern = changes.get("event_pattern", current.event_pattern)
    scoped = checked(url, pattern, current.tenant, deps)
    updated = current.model_copy(update=changes | {"updated_at": now, "version": current.version + 1})
    save(updated, current.version, deps)
    if "event_pattern" in changes:
        try:
            put_rule(updated, scoped, deps)
        except Exception:
            # The rule still has the old pattern: so must the record.
            deps.store.save(current.model_copy(update={"version": updated.version + 1}), updated.version)
            raise
    return view(updated)


def save(subscription: Subscription, expected_version: int, deps: SubscriptionDeps) -> None:
    if not deps.store.save(subscription, expected_version):
        raise HubError(
            f"subscription {subscription.id!r} changed (or was deleted) while this request ran; read it and try again",
            status=409,
            code="version_conflict",
        )


def set_paused(
    principal: Principal, subscription_id: str, paused: bool, deps: SubscriptionDeps, now: datetime
) -> dict[str, Any]:
    """Pause: the rule is disabled (nothing more is queued) and the delivery function holds
    what was already queued. Resume: the rule is enabled, a failing or disabled subscription
    starts afresh, and every held delivery is sent again."""
    current = manageable(principal, subscription_id, deps)
    status = SubscriptionStatus.PAUSED if paused else SubscriptionStatus.ACTIVE
    updated = current.model_copy(
        update={
            "status": status,
            "status_reason": "paused by its owner" if paused else None,
            "failing_since": None if not paused else current.failing_since,
            "failing_notified_at": None if not paused else current.failing_notified_at,
            "updated_at": now,
            "version": current.version + 1,
        }
    )
    save(updated, current.version, deps)
    set_rule_state(current.id, not paused, deps)
    answer = view(updated)
    if not paused:
        held = [delivery.event_id for delivery in deps.deliveries.in_state(current.id, DeliveryState.HELD)]
        queued, missing = send_events(updated, held, f"{RESUME_TRIGGER_PREFIX}{uuid.uuid4()}", deps)
        answer |= {"resent": queued, "missing_events": missing}
    return answer


def rotate(principal: Principal, subscription_id: str, deps: SubscriptionDeps, now: datetime) -> dict[str, Any]:
    """A new secret signs from now on; the previous one keeps signing too (both signatures
    in one header) for rotation_grace_seconds, so receivers can switch without a gap."""
    current = manageable(principal, subscription_id, deps)
    secret = signing.new_secret()
    grace_ends = now + timedelta(seconds=deps.policy.rotation_grace_seconds)
    before = deps.secrets.get(current.id)
    deps.secrets.put(current.id, before.rotated(secret, grace_ends))
    updated = current.model_copy(
        update={"secret_version": current.secret_version + 1, "updated_at": now, "version": current.version + 1}
    )
    try:
        save(updated, current.version, deps)
    except HubError:
        # Not saved (409): the secret nobody was shown must not sign, or a second rotation would
        # make it the "previous" one and stop the partner's current secret at once.
        deps.secrets.put(current.id, before)
        raise
    return view(updated) | {"secret": secret, "previous_secret_valid_until": grace_ends.isoformat()}


def delete(principal: Principal, subscription_id: str, deps: SubscriptionDeps) -> None:
    """The rule first (nothing new is queued), then the secret, then the record: a delete that
    fails half-way is finished by the next one, which still finds the record."""
    current = manageable(principal, subscription_id, deps)
    delete_rule(current.id, deps)
    deps.secrets.delete(current.id)
    deps.store.delete(current.id)


def list_attempts(
    principal: Principal,
    subscription_id: str,
    event_id: str | None,
    limit: int,
    cursor: str | None,
    deps: SubscriptionDeps,
    codec: CursorCodec,
) -> dict[str, Any]:
    subscription = visible(principal, subscription_id, deps)
    scope = {"listing": "deliveries", "subscription": subscription.id, "event_id": event_id}
    after = codec.open(cursor, scope, AttemptPosition) if cursor else None
    attempts, last = deps.deliveries.attempts(subscription.id, limit=limit, start_key=after, event_id=event_id)
    return {
        "attempts": [a.model_dump(mode="json", exclude={"subscription"}) for a in attempts],
        "next_cursor": codec.seal(scope, {"pk": last["pk"], "sk": last["sk"]}) if last else None,
    }


def retry(principal: Principal, subscription_id: str, event_id: str, deps: SubscriptionDeps) -> dict[str, Any]:
    """Send one event to the subscription again, now, whatever became of earlier attempts."""
    subscription = manageable(principal, subscription_id, deps)
    event = deps.event_log.get(event_id)
    if event is None or event.tenant != subscription.tenant:
        raise NotFound(
            f"event {event_id!r} is not in the event log (it keeps {MAX_REPLAY.days} days)", code="unknown_event"
        )
    if deps.deliveries.get(subscription.id, event_id) is None:
        # Never delivered here: send it only if the subscription's pattern matches it.
        scoped = patterns.scoped_to_tenant(subscription.event_pattern, subscription.tenant)
        if not pattern_matches(scoped, sample_event(subscription.tenant, deps.settings, event), deps):
            raise NotFound(
                f"event {event_id!r} does not match subscription {subscription.id!r}'s pattern, so it has no delivery",
                code="unknown_delivery",
            )
    trigger = f"retry:{uuid.uuid4()}"
    _enqueue(subscription, [event], trigger, deps)
    return {"subscription": subscription.id, "event_id": event_id, "trigger": trigger}


def replay(
    principal: Principal, subscription_id: str, request: ReplayRange, deps: SubscriptionDeps, now: datetime
) -> dict[str, Any]:
    """Re-send what the subscription matched in [since, until): on AWS EventBridge replays its
    archive through this subscription's rule only; locally the event log is read, each
    event of the tenant tested against the rule's pattern and the matching ones queued."""
    subscription = manageable(principal, subscription_id, deps)
    if request.until > now + CLOCK_SKEW:
        raise invalid_request([{"field": "until", "in": "body", "problem": "is in the future"}])
    settings = deps.settings
    name = f"{subscription.id}-{uuid.uuid4().hex[:12]}"
    answer: dict[str, Any] = {
        "subscription": subscription.id,
        "replay": name,
        "since": request.since.isoformat(),
        "until": request.until.isoformat(),
    }
    if settings.archive_arn:
        from botocore.exceptions import ClientError

        try:
            deps.events.start_replay(
                ReplayName=name,
                Description=f"subscription {subscription.id}",
                EventSourceArn=settings.archive_arn,
                EventStartTime=request.since,
                EventEndTime=request.until,
                Destination={"Arn": settings.bus_arn, "FilterArns": [settings.rule_arn(subscription.id)]},
            )
        except ClientError as exc:
            error = exc.response["Error"]
            if error["Code"] == "LimitExceededException":  # EventBridge runs 10 replays at once per account
                raise HubError(
                    "EventBridge is running as many replays as it allows at once; try again in a few minutes",
                    status=503,
                    code="replays_busy",
                ) from None
            if error["Code"] not in ("ValidationException", "InvalidEventPatternException"):
                raise
            # e.g. a range before the archive existed, or past what it keeps
            raise invalid_request(
                [{"field": "since", "in": "body", "problem": f"EventBridge refused the replay: {error.get('Message')}"}]
            ) from None
        return answer | {"source": "archive", "queued": None}
    scoped = patterns.scoped_to_tenant(subscription.event_pattern, subscription.tenant)
    matching = [
        event
        for event in deps.event_log.between(subscription.tenant, request.since, request.until)
        if pattern_matches(scoped, sample_event(subscription.tenant, settings, event), deps)
    ]
    _enqueue(subscription, matching, f"replay:{name}", deps)
    return answer | {"source": "event_log", "queued": len(matching)}


def send_events(
    subscription: Subscription, event_ids: Iterable[str], trigger: str, deps: SubscriptionDeps
) -> tuple[int, list[str]]:
    """Queue the events named (read from the event log); how many were queued, and the ids
    the log no longer has."""
    wanted = list(event_ids)
    logged = deps.event_log.get_many(wanted)
    found = [logged[i] for i in wanted if i in logged and logged[i].tenant == subscription.tenant]
    _enqueue(subscription, found, trigger, deps)
    return len(found), [i for i in wanted if i not in logged or logged[i].tenant != subscription.tenant]


def envelope(event: CanonicalEvent, bus_name: str) -> dict[str, Any]:
    """The event as the bus carried it (an oversized one slimmed as the bus copy was), as much
    as the delivery function reads of it."""
    return {
        "source": event.source,
        "detail-type": event.type,
        "time": event.received_at.isoformat(),
        "detail": json.loads(to_entry(event, bus_name)["Detail"]),
    }


def _enqueue(subscription: Subscription, events: list[CanonicalEvent], trigger: str, deps: SubscriptionDeps) -> None:
    bodies = [
        DeliveryMessage(
            subscription=subscription.id, event=envelope(event, deps.settings.bus_name), trigger=trigger
        ).model_dump_json()
        for event in events
    ]
    for batch in _batches(bodies):
        entries = [{"Id": str(index), "MessageBody": body} for index, body in enumerate(batch)]
        answer = deps.sqs.send_message_batch(QueueUrl=deps.settings.queue_url, Entries=entries)
        if answer.get("Failed"):
            raise HubError(
                f"the delivery queue refused {len(answer['Failed'])} of {len(entries)} messages; try again",
                status=503,
                code="temporarily_unavailable",
            )


def _batches(bodies: list[str]) -> Iterable[list[str]]:
    """SendMessageBatch takes 10 messages and 256 KiB in all."""
    batch: list[str] = []
    size = 0
    for body in bodies:
        length = len(body.encode())
        if batch and (len(batch) == SQS_BATCH or size + length > SQS_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(body)
        size += length
    if batch:
        yield batch
