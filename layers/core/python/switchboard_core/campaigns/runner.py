"""Running campaigns: the engine's inputs read from the world, its actions done in it.

One input at a time (a trigger, a start or stop request, a timer, a customer's reply or
opt-out, a provider's report), for one run:

1. read the run (consistently); first finish what an earlier delivery left in its outbox;
2. `engine.start` / `engine.advance` with the guards' facts read fresh (the contact's consent,
   its recent sends across every campaign);
3. write the new state with its outbox (the actions, then the events) and the per-step
   counters in one transaction, conditional on the sequence read;
4. do the outbox in order: each outbound action claimed by its idempotency key first (a claim
   already done is not done again: its stored result stands in), timers scheduled, events
   published; what came of the sends (`Outcome`s) is applied in one more conditional write,
   which also empties the outbox.

A crash anywhere leaves either the old state (the input is applied again, with the same ids:
the engine is deterministic) or the new state with its outbox (the next delivery does what is
left, and a claim keeps any send from going twice). A write that loses to another one raises
`RetryLater`: the queue delivers the input again, and it is applied to the newer state.
Nothing here knows the queue or Lambda: every client comes in `RunnerDeps`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from switchboard_core.bus import PublishError
from switchboard_core.campaigns.guards import (
    CALL_CHANNEL,
    DEFAULT_QUIET_HOURS,
    EVERY_CHANNEL,
    FrequencyCap,
    SendGuards,
    opted_out,
    quiet_until,
)
from switchboard_core.campaigns.run_store import ClaimResult, RunStore, StoredRun
from switchboard_core.campaigns.runs import (
    ACTIONS,
    Action,
    Advanced,
    ConnectCallAction,
    EndAction,
    NotifyAction,
    Outcome,
    PlaceCallAction,
    Reply,
    Run,
    RunContact,
    RunInput,
    RunTrigger,
    ScheduleAction,
    SendMessageAction,
    Stop,
    TimerFired,
    UpdateContactAction,
    WebhookAction,
)
from switchboard_core.campaigns.work import StartRequest, StopRequest, TimerMessage, TriggerMessage
from switchboard_core.endpoints import EndpointRefused, Resolver, check_endpoint, resolve_host
from switchboard_core.events import E164, CanonicalEvent, Channel, EventDraft, SocialHandle
from switchboard_core.events import Contact as EventContact
from switchboard_core.outbound.base import OutcomeUnknown, PermanentFailure, TransientFailure
from switchboard_core.routing import CAMPAIGNS_PROVIDER
from switchboard_core.routing.contact_points import QuietHours

if TYPE_CHECKING:
    # The engine, the flow's and campaign's models and the contacts' and conversations' stores
    # are imported by the first message that starts a run or concerns one: most bus events concern
    # none (docs/benchmarks.md, "Cold start").
    from switchboard_core.campaigns.flow import Flow
    from switchboard_core.campaigns.models import Campaign
    from switchboard_core.campaigns.store import CampaignStore
    from switchboard_core.routing.contacts import Consent, ContactRecord, ContactStore
    from switchboard_core.routing.conversations import ConversationStore

# Longer than one invocation can last (the function's timeout is 30 s): a claim still pending
# after this belongs to a delivery that crashed mid-action.
CLAIM_LEASE = timedelta(seconds=90)
# A delivery that finds another's claim on an action still within its lease comes back within this.
BUSY_RETRY_SECONDS = 10
# A wake-up whose time has come already is scheduled this far ahead (a schedule must be future).
SCHEDULE_LEAD = timedelta(seconds=5)
# How many rounds of "do the outbox, apply what came of it" one input may take; each round's
# outcomes only settle sends or continue a call the run waited on, so two are the norm.
MAX_OUTBOX_ROUNDS = 10
WEBHOOK_TIMEOUT_SECONDS = 10
WEBHOOK_USER_AGENT = "Switchboard-Campaigns/1.0"
# The customer's own turns in a conversation (routing's `source_type`): a reply to a campaign.
# Not call.ringing: a call is not an answer a branch can read.
REPLY_SOURCE_TYPES = frozenset(
    {
        "message.received",
        "mention.created",
        "comment.created",
        "interaction.created",
        "ticket.created",
        "ticket.comment_added",
    }
)
CONVERSATION_TYPES = ("conversation.opened", "conversation.updated")
CALL_REPORT_TYPES = frozenset(
    {"call.in_progress", "call.completed", "call.no_answer", "call.busy", "call.failed", "call.canceled"}
)
# The hub's consent keeps one decision per contact with the kind of channel it came on: a
# telephony opt-out (SMS STOP) covers the texts sent to the phone number, a social one the
# messaging apps; one from a CRM flag or anything else covers every channel.
CONSENT_CHANNELS: dict[str, frozenset[str]] = {
    Channel.TELEPHONY.value: frozenset({"sms", "whatsapp"}),
    Channel.SOCIAL.value: frozenset({"whatsapp", "messenger", "telegram", "slack"}),
}
EVENT_CHANNEL = {
    "sms": Channel.TELEPHONY,
    "whatsapp": Channel.SOCIAL,
    "messenger": Channel.SOCIAL,
    "telegram": Channel.SOCIAL,
    "slack": Channel.SOCIAL,
    "call": Channel.TELEPHONY,
}
HANDLE_CHANNELS = ("messenger", "telegram", "slack")  # addressed by a handle; sms, whatsapp, calls by phone
# A customer's message's handle platform -> the campaign channel it answers on (Meta's Messenger
# messages name the sender as a `facebook` handle).
REPLY_HANDLE_CHANNELS = {
    "whatsapp": "whatsapp",
    "messenger": "messenger",
    "facebook": "messenger",
    "telegram": "telegram",
    "slack": "slack",
}
# Actions done again with the same key take effect once (the notifications function and a
# webhook's receiver drop a repeated key; setting attributes twice changes nothing more).
REPEATABLE_ACTIONS = (NotifyAction, UpdateContactAction, WebhookAction)


class RetryLater(Exception):
    """The input cannot be applied now (another change came first, a claim is held, the contact
    is not known yet): the queue delivers it again, within `retry_within` seconds when given
    (else on the growing backoff)."""

    def __init__(self, detail: str, retry_within: float | None = None) -> None:
        super().__init__(detail)
        self.retry_within = retry_within


class MalformedWork(ValueError):
    """A message no delivery can apply: it goes to the dead-letter queue, where it is kept."""


class Delivered(Protocol):
    """What a channel executor returns for a send or call the provider accepted."""

    @property
    def provider(self) -> str: ...

    @property
    def provider_message_id(self) -> str: ...

    @property
    def connection(self) -> str: ...


class HandOff:
    """The durable mark "it may have gone", written on the action's claim just before the
    provider's request (the executor calls it then): a claim that outlives its lease without it
    never reached the provider, and is taken over instead of given up as `outcome_unknown`."""

    def __init__(self, mark: Callable[[], bool]) -> None:
        self._mark = mark
        self.done = False

    def __call__(self) -> None:
        if self.done:
            return
        if not self._mark():
            raise RetryLater("the action's claim was taken over by another delivery")
        self.done = True


class Executor(Protocol):
    """The channels (switchboard_core.campaigns.channels), bound to their dependencies; each
    calls `hand_off` just before its provider request goes (it raises when the claim is lost)."""

    def send_message(self, action: SendMessageAction, tenant: str, hand_off: Callable[[], None]) -> Delivered: ...

    def place_call(self, action: PlaceCallAction, tenant: str, hand_off: Callable[[], None]) -> Delivered: ...

    def connect_call(
        self, action: ConnectCallAction, responder_phone: str, tenant: str, hand_off: Callable[[], None]
    ) -> Delivered: ...

    def call_outcome(self, event: CanonicalEvent) -> tuple[str, str, str, str | None] | None: ...


class WebhookResult(Protocol):
    @property
    def status_code(self) -> int | None: ...

    @property
    def error(self) -> str | None: ...


Poster = Callable[[Any, bytes, dict[str, str], float], WebhookResult]


class CampaignScheduler:
    """Runs' wake-ups as EventBridge Scheduler one-time schedules in the campaigns' group; each
    sends a TimerMessage to the campaigns queue and deletes itself. Locally the emulator keeps
    them and the local runtime's scheduler fires them."""

    def __init__(self, client: Any, group: str, queue_arn: str, role_arn: str) -> None:
        self._client = client
        self._group = group
        self._queue_arn = queue_arn
        self._role_arn = role_arn

    def schedule(self, run_id: str, action: ScheduleAction, now: datetime) -> None:
        from botocore.exceptions import ClientError

        at = max(action.at, now + SCHEDULE_LEAD).astimezone(UTC)
        # `at(...)` takes whole seconds: round up, so it never fires before the wait ends.
        at = datetime.fromtimestamp(math.ceil(at.timestamp()), UTC)
        body = TimerMessage(run=run_id, sequence=action.sequence).model_dump_json()
        try:
            self._client.create_schedule(
                Name=action.name,
                GroupName=self._group,
                ScheduleExpression=f"at({at.strftime('%Y-%m-%dT%H:%M:%S')})",
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                Target={"Arn": self._queue_arn, "RoleArn": self._role_arn, "Input": body},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConflictException":  # scheduled by an earlier delivery
                raise


@dataclass
class RunnerDeps:
    runs: RunStore
    campaigns: CampaignStore
    contacts: ContactStore
    conversations: ConversationStore
    config: Any  # RoutingConfigStore: responders and teams for connect_call
    executor: Executor
    scheduler: CampaignScheduler
    publish: Callable[[list[CanonicalEvent]], None]
    webhook_keys: Callable[[str], list[bytes]]  # tenant -> its notification signing keys
    post: Poster
    local_endpoints: bool = False
    resolve: Resolver = resolve_host
    cap: FrequencyCap = field(default_factory=FrequencyCap)
    quiet_hours: QuietHours | None = field(default_factory=lambda: DEFAULT_QUIET_HOURS)


@dataclass(frozen=True)
class Handled:
    """What one message did, for the log and the tests."""

    outcome: str  # started, applied, ignored, dropped, duplicate
    runs: tuple[str, ...] = ()
    detail: str = ""


# --- events ---------------------------------------------------------------------------------------


def _event_contact(contact: RunContact) -> EventContact:
    handles = [SocialHandle(platform=channel, id=address) for channel, address in sorted(contact.channels.items())]
    phone = contact.phone if contact.phone and E164.match(contact.phone) else None
    return EventContact(phone=phone, name=contact.name, handles=handles)


def campaign_event(
    run: Run,
    kind: str,
    event_key: str,
    now: datetime,
    step_channel: str | None = None,
    text: str | None = None,
    **extra: Any,
) -> CanonicalEvent:
    """One `campaign.<kind>` event of `run` (on the kind of channel its step used, else generic);
    its id depends only on the run and `event_key`, so doing the same outbox again publishes the
    same ids."""
    attributes = {
        "campaign": run.campaign,
        "campaign_name": run.campaign_name,
        "version": run.version,
        "run": run.id,
        "conversation": run.trigger.conversation,
        "contact": {"id": run.contact.id},
        **extra,
    }
    return CanonicalEvent.from_draft(
        EventDraft(
            type=f"campaign.{kind}",
            provider_event_id=f"{run.id}:{event_key}",
            occurred_at=now,
            contact=_event_contact(run.contact),
            conversation_key=run.trigger.conversation,
            text=text,
            attributes=attributes,
        ),
        provider=CAMPAIGNS_PROVIDER,
        connection=CAMPAIGNS_PROVIDER,
        tenant=run.tenant,
        channel=EVENT_CHANNEL.get(step_channel or "", Channel.GENERIC),
        received_at=now,
        raw_ref=None,
    )


def change_events(before: Run | None, after: Run, actions: Iterable[Action], now: datetime) -> list[CanonicalEvent]:
    """The events of one change of a run: run_started (a new run), one step_completed per step
    record the change added, run_completed when it ended."""
    events = []
    if before is None:
        events.append(
            campaign_event(
                after,
                "run_started",
                "run_started",
                now,
                trigger_event=after.trigger.event_id,
                trigger_type=after.trigger.event_type,
            )
        )
    kept_before = len(before.steps_done) if before else 0
    dropped_now = after.steps_dropped - (before.steps_dropped if before else 0)
    added = after.steps_done[max(0, kept_before - dropped_now) :]
    for index, record in enumerate(added):
        events.append(
            campaign_event(
                after,
                "step_completed",
                f"{after.sequence}:{index}",
                now,
                step=record.step,
                type=record.type,
                visit=record.visit,
                outcome=record.outcome,
                reason=record.reason,
                next=record.next,
            )
        )
    for action in actions:
        if isinstance(action, EndAction):
            events.append(
                campaign_event(
                    after,
                    "run_completed",
                    "run_completed",
                    now,
                    status=action.status.value,
                    end_reason=action.reason,
                    converted=action.converted,
                )
            )
    return events


def outbox_of(advanced: Advanced, before: Run | None, now: datetime) -> list[dict[str, Any]]:
    """What a change still has to do, in order: its actions (an `end` has nothing to do), then
    its events."""
    entries: list[dict[str, Any]] = [
        {"do": "action", "action": action.model_dump(mode="json")}
        for action in advanced.actions
        if not isinstance(action, EndAction)
    ]
    entries += [
        {"do": "publish", "event": event.model_dump(mode="json")}
        for event in change_events(before, advanced.run, advanced.actions, now)
    ]
    return entries


# --- contacts -------------------------------------------------------------------------------------


def opted_out_channels(consent: Consent) -> frozenset[str]:
    """The campaign channels the contact's consent refuses: one mapping for the guards before a
    send and for the runs a STOP ends at once, so the two never disagree."""
    if not consent.opted_out:
        return frozenset()
    return CONSENT_CHANNELS.get(consent.channel or "", frozenset({EVERY_CHANNEL}))


def _time_zone(value: str | None) -> str:
    if not value:
        return "UTC"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"  # a CRM's own zone name (HubSpot's us_slash_eastern...): quiet hours in UTC
    return value


def run_contact(record: ContactRecord, name: str | None = None) -> RunContact:
    """Who a run reaches: the contact's phone, its messaging handles, its time zone (the
    `timezone` attribute) and attributes, as they are when the run starts."""
    from switchboard_core.routing.contacts import Identity

    phone = None
    channels: dict[str, str] = {}
    for token in record.identities:
        identity = Identity.parse(token)
        if identity.kind == "phone" and phone is None:
            phone = identity.value
        elif identity.kind == "handle":
            platform, _, address = identity.value.partition(":")
            if platform in HANDLE_CHANNELS and address and platform not in channels:
                channels[platform] = address
    return RunContact(
        id=record.id,
        name=name or record.attributes.get("name"),
        phone=phone,
        channels=channels,
        time_zone=_time_zone(record.attributes.get("timezone")),
        attributes=dict(record.attributes),
    )


# --- the runner -----------------------------------------------------------------------------------


class Runner:
    """Applies queue messages to runs. One per message: it caches the flows it reads."""

    def __init__(self, deps: RunnerDeps, now: datetime, last_attempt: bool = False) -> None:
        self.deps = deps
        self.now = now
        # On the queue's last delivery a provider's transient failure is recorded as failed
        # rather than retried: the run goes on instead of stalling with the message dead-lettered.
        self.last_attempt = last_attempt
        self._flows: dict[tuple[str, int], Flow] = {}
        self._heads: dict[str, Campaign | None] = {}  # each campaign's head, read once per message

    # --- entry points ---------------------------------------------------------------------------

    def trigger(self, message: TriggerMessage) -> Handled:
        """A published campaign's rule matched a bus event: one run for the event's contact."""
        detail = message.event.get("detail")
        try:
            event = CanonicalEvent.model_validate(detail)
        except ValidationError as exc:
            raise MalformedWork(f"the trigger's event is not a canonical event: {exc.errors()[:3]}") from None
        campaign = self.deps.campaigns.get(message.campaign)
        if campaign is None:
            return Handled("dropped", detail=f"campaign {message.campaign} does not exist")
        if campaign.tenant != event.tenant:
            return Handled("dropped", detail="the event is another tenant's")
        if campaign.published_version is None:
            return Handled("dropped", detail="the campaign is not published (stopped since)")
        record = self._trigger_contact(event)
        if record is None:
            return Handled("dropped", detail="the event names no contact")
        attributes = event.attributes
        conversation = _str(attributes.get("conversation")) or self.deps.conversations.find(event, record.id)
        trigger = RunTrigger(
            event_id=event.id,
            event_type=event.type,
            conversation=conversation,
            conversation_key=event.conversation_key,
            assignee=_str(attributes.get("assignee")),
            team=_str(attributes.get("queue")),
        )
        return self._start(campaign, campaign.published_version, run_contact(record, event.contact.name), trigger)

    def start(self, request: StartRequest) -> Handled:
        """`POST /admin/campaigns/{id}/runs` asked for a run for one contact (id or E.164 phone)."""
        campaign = self.deps.campaigns.get(request.campaign)
        if campaign is None or campaign.tenant != request.tenant:
            return Handled("dropped", detail=f"campaign {request.campaign} does not exist in {request.tenant}")
        if campaign.published_version is None:
            return Handled("dropped", detail="the campaign was stopped before this run started")
        if request.contact.startswith("+"):
            if not E164.match(request.contact):
                raise MalformedWork(f"contact {request.contact!r} is not an E.164 phone number")
            from switchboard_core.routing.contacts import Identity

            record = self.deps.contacts.resolve(
                request.tenant,
                [Identity(kind="phone", value=request.contact)],
                reason=f"campaign:{request.request}",
                now=self.now,
            )
        else:
            record = self.deps.contacts.get(request.contact)
        if record is None or record.tenant != request.tenant:
            return Handled("dropped", detail=f"contact {request.contact} does not exist in {request.tenant}")
        trigger = RunTrigger(event_id=request.request, event_type="campaign.start_requested")
        return self._start(campaign, request.version, run_contact(record), trigger)

    def stop(self, request: StopRequest) -> Handled:
        return self.apply(request.run, Stop(reason=request.reason))

    def timer(self, message: TimerMessage) -> Handled:
        return self.apply(message.run, TimerFired(sequence=message.sequence))

    def bus_event(self, event: CanonicalEvent) -> Handled:
        """Routing's conversation events (replies, opt-outs) and providers' reports."""
        if event.provider == CAMPAIGNS_PROVIDER:
            return Handled("ignored", detail="the campaigns' own event")
        if event.type in CONVERSATION_TYPES:
            return self._conversation(event)
        if event.type == "message.status_updated":
            return self._delivery_report(event)
        if event.type in CALL_REPORT_TYPES:
            return self._call_report(event)
        return Handled("ignored", detail=f"{event.type} is not for campaigns")

    # --- applying an input ----------------------------------------------------------------------

    def apply(self, run_id: str, event: RunInput, tenant: str | None = None) -> Handled:
        stored = self.deps.runs.read(run_id)
        if stored is None or (tenant is not None and stored.run.tenant != tenant):
            return Handled("dropped", detail=f"no run {run_id}")
        from switchboard_core.campaigns import engine

        flow = self._flow(stored.run)
        stored = self._settle(stored, flow)
        stopped = self._campaign_stopped(stored.run)
        if stopped is not None and not stored.run.finished and not isinstance(event, Stop):
            # The campaign was stopped after this run started: the run stops on this input.
            advanced = engine.advance(stored.run, flow, Stop(reason=stopped), self.now, self._guards(stored.run))
            self._commit(stored, advanced, flow)
            if not isinstance(event, Outcome):  # a report of an earlier send is still recorded
                return Handled("applied", (run_id,), stopped)
            stored = StoredRun(run=advanced.run)
        try:
            advanced = engine.advance(stored.run, flow, event, self.now, self._guards(stored.run))
        except engine.RunError as exc:
            return Handled("ignored", (run_id,), f"{exc.code}: {exc.message}")
        if advanced.run.sequence == stored.sequence:  # nothing changed (an early timer may re-arm)
            for action in advanced.actions:
                if isinstance(action, ScheduleAction):
                    # A new name: the schedule that fired early may not be deleted yet, and a
                    # ConflictException would read as "armed already".
                    again = action.model_copy(update={"name": f"{action.name}-e{int(self.now.timestamp())}"})
                    self.deps.scheduler.schedule(run_id, again, self.now)
            return Handled("ignored", (run_id,), advanced.ignored or "")
        self._commit(stored, advanced, flow)
        return Handled("applied", (run_id,), advanced.ignored or "")

    def _resume(self, run_id: str) -> None:
        """Finish what a run's last change left in its outbox."""
        stored = self.deps.runs.read(run_id)
        if stored is not None and stored.outbox:
            self._settle(stored, self._flow(stored.run))

    def _start(self, campaign: Campaign, version: int, contact: RunContact, trigger: RunTrigger) -> Handled:
        found = self.deps.campaigns.version(campaign.id, version)
        if found is None or found.published_at is None:
            return Handled("dropped", detail=f"version {version} of {campaign.id} was never published")
        from switchboard_core.campaigns import engine

        flow = found.flow
        self._flows[(campaign.id, version)] = flow
        advanced = engine.start(
            flow, campaign, version, contact, trigger, self.now, self._guards_for(contact, campaign.tenant)
        )
        run = advanced.run
        existing = self.deps.runs.read(run.id)
        if existing is None:
            outbox = outbox_of(advanced, None, self.now)
            if self.deps.runs.create(run, outbox, advanced.counters):
                self._settle(StoredRun(run=run, outbox=outbox), flow)
                return Handled("started", (run.id,))
            existing = self.deps.runs.read(run.id)  # created meanwhile by another delivery
            if existing is None:
                raise RetryLater(f"run {run.id} was neither created nor found")
        # A redelivered trigger: its run exists; finish whatever that run's first change left.
        self._settle(existing, self._flow(existing.run))
        return Handled("duplicate", (run.id,), "the run exists already")

    def _commit(self, stored: StoredRun, advanced: Advanced, flow: Flow) -> None:
        outbox = outbox_of(advanced, stored.run, self.now)
        if not self.deps.runs.save(advanced.run, outbox, stored.sequence, advanced.counters):
            raise RetryLater(f"run {stored.run.id} changed since it was read")
        self._settle(StoredRun(run=advanced.run, outbox=outbox), flow)

    def _settle(self, stored: StoredRun, flow: Flow) -> StoredRun:
        """Do the run's outbox, then apply what came of its sends (which may fill the outbox
        again: a call the run waited on goes on), until nothing is left."""
        from switchboard_core.campaigns import engine

        for _ in range(MAX_OUTBOX_ROUNDS):
            if not stored.outbox:
                return stored
            outcomes = self._do(stored.run, stored.outbox)
            run, expected = stored.run, stored.sequence
            outbox: list[dict[str, Any]] = []
            counters = []
            for outcome in outcomes:
                try:
                    advanced = engine.advance(run, flow, outcome, self.now, self._guards(run))
                except engine.RunError:  # an outcome the run no longer remembers (history trimmed)
                    continue
                if advanced.run.sequence == run.sequence:
                    continue
                outbox += outbox_of(advanced, run, self.now)
                counters += advanced.counters
                run = advanced.run
            if run.sequence == expected:
                if not self.deps.runs.set_outbox(run, []):
                    raise RetryLater(f"run {run.id} changed while its outbox was done")
            elif not self.deps.runs.save(run, outbox, expected, counters):
                raise RetryLater(f"run {run.id} changed while its outbox was done")
            stored = StoredRun(run=run, outbox=outbox)
        raise RetryLater(f"run {stored.run.id} still has work after {MAX_OUTBOX_ROUNDS} rounds")

    def _do(self, run: Run, outbox: list[dict[str, Any]]) -> list[Outcome]:
        """The outbox's actions in order, then its events in one publish (the publisher batches
        them); what came of the actions is returned to be applied."""
        outcomes = []
        events = []
        for entry in outbox:
            if entry.get("do") == "publish":
                events.append(CanonicalEvent.model_validate(entry["event"]))
                continue
            action = ACTIONS.validate_python([entry["action"]])[0]
            if isinstance(action, ScheduleAction):
                self.deps.scheduler.schedule(run.id, action, self.now)
            elif not isinstance(action, EndAction):
                outcome = self._outbound(run, action)
                if outcome is not None:
                    outcomes.append(outcome)
        if events:
            self.deps.publish(events)
        return outcomes

    # --- outbound actions -----------------------------------------------------------------------

    def _outbound(self, run: Run, action: Any) -> Outcome | None:
        """Do one outbound action at most once (its claim), and say what came of it."""
        key = action.idempotency_key
        claim = self.deps.runs.claim(run.id, key, self.now, CLAIM_LEASE)
        if claim.status == "busy":
            # Soon, never later than 10 s on the growing backoff: its holder finishes within an
            # invocation, or its lease ends and the claim is taken over (or given up).
            raise RetryLater(f"action {key} is being done by another delivery", retry_within=BUSY_RETRY_SECONDS)
        if claim.status == "abandoned":
            result = ClaimResult(
                result="failed", reason="outcome_unknown: an earlier attempt stopped mid-way; not done again"
            )
            self.deps.runs.finish_claim(run.id, key, result, self.now)
        elif claim.status == "done":
            assert claim.result is not None
            result = claim.result
            self._point(run, action, result)  # again: its first write may have failed
        else:
            assert claim.token is not None
            result = self._perform(run, action, claim.token)
            # The pointer first: a report that comes before the claim is finished finds its run
            # (and waits for the claim) instead of passing for another system's message. What
            # came of it is recorded even when the pointer's write fails: a send that went and
            # was never recorded would be given up as outcome_unknown by the next delivery.
            try:
                self._point(run, action, result)
            finally:
                self.deps.runs.finish_claim(run.id, key, result, self.now)
        self._after(run, action, result)
        return self._outcome(action, result)

    def _perform(self, run: Run, action: Any, token: str) -> ClaimResult:
        key = action.idempotency_key
        hand_off = HandOff(lambda: self.deps.runs.hand_off(run.id, key, token, self.now))
        try:
            return self._held_back(run, action) or self._execute(run, action, hand_off)
        except OutcomeUnknown as exc:  # may have gone out: never sent again blindly
            return ClaimResult(result="failed", reason=f"outcome_unknown: {exc}")
        except TransientFailure as exc:
            if self.last_attempt:
                return ClaimResult(result="failed", reason=f"{exc.code}: {exc.detail} (gave up)")
            self.deps.runs.release_claim(run.id, key, token)
            raise
        except PermanentFailure as exc:
            return ClaimResult(result="failed", reason=f"{exc.code}: {exc.detail}")
        except Exception:
            # An unexpected error (DynamoDB, Secrets Manager...): an action nothing was handed to the
            # provider for, or one its key makes safe to do again, is let go, so the queue's
            # redelivery does it at once rather than finding its claim pending and waiting out the
            # lease. A send or call whose request went may have gone out: its claim stays.
            if not hand_off.done or isinstance(action, REPEATABLE_ACTIONS):
                self.deps.runs.release_claim(run.id, key, token)
            raise

    def _held_back(self, run: Run, action: Any) -> ClaimResult | None:
        """The guards again, just before a send or call goes out: one left in the outbox (a 429
        retried, a crash, a STOP handled meanwhile) may meet a contact who has opted out since
        (failed, `opted_out`, never sent) or quiet hours begun since (retried from the queue
        when they end). No action of a run whose campaign was stopped after it started goes."""
        try:
            stopped = self._campaign_stopped(run)
        except _aws_errors() as exc:
            raise TransientFailure("campaigns_unavailable", str(exc)) from exc
        if stopped is not None:
            return ClaimResult(result="failed", reason=f"campaign_stopped: {stopped}")
        if not isinstance(action, SendMessageAction | PlaceCallAction | ConnectCallAction):
            return None
        channel = action.channel if isinstance(action, SendMessageAction) else CALL_CHANNEL
        try:
            record = self.deps.contacts.get(run.contact.id)
        except _aws_errors() as exc:
            raise TransientFailure("contacts_unavailable", str(exc)) from exc
        guards = SendGuards(
            opted_out=opted_out_channels(record.consent) if record else frozenset(),
            quiet_hours=self.deps.quiet_hours,
        )
        if opted_out(guards, channel):
            return ClaimResult(result="failed", reason=f"opted_out: the contact opted out of {channel} before it went")
        quiet_end = quiet_until(guards, ZoneInfo(run.contact.time_zone), self.now)
        if quiet_end is not None:
            wait = (quiet_end - self.now).total_seconds()
            raise TransientFailure("quiet_hours", f"held back until {quiet_end.isoformat()}", retry_after=wait)
        return None

    def _execute(self, run: Run, action: Any, hand_off: HandOff) -> ClaimResult:
        executor = self.deps.executor
        if isinstance(action, SendMessageAction):
            return _accepted(executor.send_message(action, run.tenant, hand_off))
        if isinstance(action, PlaceCallAction):
            return _accepted(executor.place_call(action, run.tenant, hand_off))
        if isinstance(action, ConnectCallAction):
            try:
                phone = self._responder_phone(run, action)
            except _aws_errors() as exc:  # before the call: retried, never left pending
                raise TransientFailure("responders_unavailable", str(exc)) from exc
            return _accepted(executor.connect_call(action, phone, run.tenant, hand_off))
        if isinstance(action, NotifyAction):
            return self._notify(run, action)
        if isinstance(action, WebhookAction):
            return self._webhook(run, action)
        if isinstance(action, UpdateContactAction):
            self.deps.contacts.update_attributes(action.contact, dict(action.set), self.now)
            self.deps.contacts.remove_attributes(
                action.contact, [n for n in action.remove if n not in action.set], self.now
            )
            return ClaimResult(result="sent")
        raise MalformedWork(f"unknown action {action!r}")

    def _point(self, run: Run, action: Any, result: ClaimResult) -> None:
        """The pointer a sent message's or call's provider reports come back by."""
        if result.result != "sent" or not isinstance(action, SendMessageAction | PlaceCallAction | ConnectCallAction):
            return
        if result.provider and result.connection and result.provider_message_id:
            self.deps.runs.put_pointer(
                result.provider,
                result.connection,
                result.provider_message_id,
                run.id,
                action.idempotency_key,
                self.now,
            )

    def _after(self, run: Run, action: Any, result: ClaimResult) -> None:
        """What a send that went out leaves behind (each idempotent, so a redelivery redoes it):
        the contact's recent sends and `campaign.message_sent` (its pointer came before its
        claim was finished)."""
        if result.result != "sent" or not isinstance(action, SendMessageAction | PlaceCallAction | ConnectCallAction):
            return
        self.deps.runs.record_send(run.tenant, run.contact.id, action.idempotency_key, self.now, self.deps.cap.window)
        if isinstance(action, SendMessageAction):
            self.deps.publish(
                [
                    campaign_event(
                        run,
                        "message_sent",
                        f"{action.idempotency_key}:message_sent",
                        self.now,
                        step_channel=action.channel,
                        text=action.text,
                        step=action.step,
                        channel=action.channel,
                        via=result.provider,
                        provider_message_id=result.provider_message_id,
                        connection=result.connection,
                        to=action.to,
                        idempotency_key=action.idempotency_key,
                    )
                ]
            )

    @staticmethod
    def _outcome(action: Any, result: ClaimResult) -> Outcome | None:
        """The outcome applied at once: a message the provider took is `sent`; a call's outcome
        (answered or not, its keypad input) comes with the provider's call report instead."""
        if result.result == "sent" and isinstance(action, PlaceCallAction | ConnectCallAction):
            return None
        return Outcome(idempotency_key=action.idempotency_key, result=result.result, reason=result.reason)

    def _assignee(self, run: Run, target: str | None) -> str | None:
        if target is not None:
            return target
        # Assigned after the run started. A provider's event may start a run before routing has
        # threaded it (both consume it at once): its conversation is then found by its thread key.
        conversation_id = run.trigger.conversation
        if conversation_id is None and run.trigger.conversation_key:
            conversation_id = self.deps.conversations.threaded_into(run.tenant, run.trigger.conversation_key)
        if conversation_id:
            conversation = self.deps.conversations.get(conversation_id)
            return conversation.assignee if conversation else None
        return None

    def _responder_phone(self, run: Run, action: ConnectCallAction) -> str:
        if action.responder == "number":
            if not action.target:
                raise PermanentFailure("no_responder", "the step names no number")
            return action.target
        config = self.deps.config
        if action.responder == "assignee":
            assignee = self._assignee(run, action.target)
            responder = config.responder(run.tenant, assignee) if assignee else None
            if responder is None:
                raise PermanentFailure("no_responder", "the conversation has no assignee")
            phone = _phone_of(responder)
            if phone is None:
                raise PermanentFailure("no_responder", f"responder {responder.id} has no phone (sms contact point)")
            return phone
        # The team's member free to take it: least loaded, then by id (a campaign knows no
        # location to be near to).
        members = [
            r
            for r in config.responders(run.tenant)
            if action.target in r.teams and r.can_take_work(self.now) and _phone_of(r) is not None
        ]
        if not members:
            raise PermanentFailure("no_responder", f"nobody of team {action.target} is available with a phone")
        chosen = min(members, key=lambda r: (r.load / max(r.capacity, 1), r.id))
        phone = _phone_of(chosen)
        assert phone is not None
        return phone

    def _notify(self, run: Run, action: NotifyAction) -> ClaimResult:
        target = self._assignee(run, action.target) if action.to == "assignee" else action.target
        if target is None:
            return ClaimResult(result="failed", reason="no_recipient: the conversation has no assignee")
        event = campaign_event(
            run,
            "notification_requested",
            f"{action.idempotency_key}:notification_requested",
            self.now,
            text=action.text,
            step=action.step,
            to=action.to,
            target=target,
            urgent=action.urgent,
            idempotency_key=action.idempotency_key,
        )
        # The notifications function reads the rendered text from the attributes.
        event = event.model_copy(update={"attributes": {**event.attributes, "text": action.text}})
        try:
            self.deps.publish([event])
        except PublishError as error:  # not on the bus: the notification is retried, never lost
            raise TransientFailure("publish_failed", str(error)) from error
        return ClaimResult(result="sent", provider=CAMPAIGNS_PROVIDER, provider_message_id=event.id)

    def _webhook(self, run: Run, action: WebhookAction) -> ClaimResult:
        """A signed POST, as partner deliveries are sent: the URL checked by the SSRF guard at
        send time, the checked address connected to, Standard Webhooks headers signed with the
        tenant's notification secret; `webhook-id` is the action's idempotency key."""
        from switchboard_core.subscriptions.signing import webhook_headers

        try:
            checked = check_endpoint(action.url, local=self.deps.local_endpoints, resolve=self.deps.resolve)
        except EndpointRefused as refused:
            problems = refused.details.get("problems") or [{"problem": refused.message}]
            raise PermanentFailure("endpoint_refused", str(problems[0]["problem"])) from None
        body = json.dumps(action.payload, separators=(",", ":"), default=str).encode()
        try:
            keys = self.deps.webhook_keys(run.tenant)
        except LookupError as missing:  # notification_signing.MissingSigningSecret
            raise PermanentFailure("not_configured", str(missing)) from None
        headers = {
            **webhook_headers(keys, action.idempotency_key, int(self.now.timestamp()), body),
            "content-type": "application/json",
            "user-agent": WEBHOOK_USER_AGENT,
        }
        result = self.deps.post(checked, body, headers, WEBHOOK_TIMEOUT_SECONDS)
        status = result.status_code
        if status is not None and 200 <= status < 300:
            return ClaimResult(result="sent")
        problem = result.error or f"HTTP {status}"
        if status is None or status == 429 or status >= 500:
            raise TransientFailure("webhook_unavailable", problem)
        raise PermanentFailure("webhook_refused", problem)

    # --- facts ----------------------------------------------------------------------------------

    def _flow(self, run: Run) -> Flow:
        key = (run.campaign, run.version)
        if key not in self._flows:
            version = self.deps.campaigns.version(run.campaign, run.version)
            if version is None:
                raise MalformedWork(f"version {run.version} of campaign {run.campaign} is gone")
            self._flows[key] = version.flow
        return self._flows[key]

    def _campaign_stopped(self, run: Run) -> str | None:
        """Why `run` must stop when its campaign was stopped after the run started (the stop
        asks only so many runs itself); None otherwise."""
        if run.campaign not in self._heads:
            self._heads[run.campaign] = self.deps.campaigns.get(run.campaign)
        campaign = self._heads[run.campaign]
        if campaign is None or campaign.stopped_at is None or run.started_at >= campaign.stopped_at:
            return None
        by = campaign.stopped_by
        return f"campaign stopped by {by.name} (key {by.key_id})" if by else "campaign stopped"

    def _guards(self, run: Run) -> SendGuards:
        return self._guards_for(run.contact, run.tenant)

    def _guards_for(self, contact: RunContact, tenant: str) -> SendGuards:
        record = self.deps.contacts.get(contact.id)
        recent = self.deps.runs.recent_sends(tenant, contact.id, self.deps.cap.window, self.now)
        return SendGuards(
            opted_out=opted_out_channels(record.consent) if record else frozenset(),
            quiet_hours=self.deps.quiet_hours,
            cap=self.deps.cap,
            recent_sends=recent.count,
            oldest_recent_send=recent.oldest,
        )

    def _trigger_contact(self, event: CanonicalEvent) -> ContactRecord | None:
        """The trigger event's contact: routing's events name it; any other event's identities
        are looked up (read-only: routing creates contacts). Known identities but no contact yet
        (routing has not seen the event): RetryLater."""
        summary = event.attributes.get("contact")
        if event.provider == "routing" and isinstance(summary, dict) and isinstance(summary.get("id"), str):
            record = self.deps.contacts.get(summary["id"])
            if record is None:
                raise RetryLater(f"contact {summary['id']} is not readable yet")
            return record
        from switchboard_core.routing.contacts import identities_of

        identities = identities_of(event.contact)
        if not identities:
            return None
        for identity in identities:
            owner = self.deps.contacts.owner(event.tenant, identity)
            record = self.deps.contacts.get(owner) if owner else None
            if record is not None:
                return record
        raise RetryLater("the event's contact is not known yet (routing creates it)")

    # --- bus events -----------------------------------------------------------------------------

    def _conversation(self, event: CanonicalEvent) -> Handled:
        attributes = event.attributes
        summary = attributes.get("contact")
        if not isinstance(summary, dict) or not isinstance(summary.get("id"), str):
            return Handled("ignored", detail="no contact")
        contact_id: str = summary["id"]
        source_event = _str(attributes.get("source_event")) or event.id
        runs = self.deps.runs.for_contact(event.tenant, contact_id)
        if not runs:
            return Handled("ignored", detail="no run of the contact in flight")
        # Routing records an opt-out on the contact (with the event's id) before it publishes,
        # but its summary is read before that: the contact's consent says whether this very
        # event was the STOP. Only that event stops runs, so a later message of an opted-out
        # contact on another channel does not stop that channel's runs.
        record = self.deps.contacts.get(contact_id)
        if record is not None and record.consent.opted_out and record.consent.source == source_event:
            return self._opt_out(event, runs, opted_out_channels(record.consent))
        if attributes.get("source_type") not in REPLY_SOURCE_TYPES:
            return Handled("ignored", detail=f"{attributes.get('source_type')} is not a customer's reply")
        reply = Reply(
            event_id=source_event,
            text=event.text or "",
            topics=[t for t in attributes.get("topics") or [] if isinstance(t, str)],
            sentiment=_sentiment(attributes.get("sentiment")),
        )
        applied = []
        # One reply answers one question: the run it answers best (its conversation, else its
        # channel), recorded so a redelivery gives it to that run again and to no other.
        chosen = answered_run([run for run in runs if _awaits(run, event, source_event)], event)
        owner = None
        if chosen is not None:
            owner = self.deps.runs.assign_reply(event.tenant, contact_id, source_event, chosen.id, self.now)
        for run in runs:
            if run.id != owner:
                # Not this reply's run; but if this very reply moved it before a crash, what its
                # change left undone (the outbox) is finished here, as its redelivery should.
                self._resume(run.id)
        if owner is not None and self.apply(owner, reply, tenant=event.tenant).outcome == "applied":
            applied.append(owner)
        return Handled("applied" if applied else "ignored", tuple(applied), "reply")

    def _opt_out(self, event: CanonicalEvent, runs: list[Run], refused: frozenset[str]) -> Handled:
        from switchboard_core.campaigns import engine

        stopped = []
        for run in runs:
            if run.finished:
                self._resume(run.id)
                continue
            used = engine.channels_of(self._flow(run))
            hit = sorted(used if EVERY_CHANNEL in refused else used & refused)
            if not hit:
                continue
            reason = f"the contact opted out of {', '.join(hit)}"
            if self.apply(run.id, Stop(reason=reason), tenant=event.tenant).outcome == "applied":
                stopped.append(run.id)
        return Handled("applied" if stopped else "ignored", tuple(stopped), "opt-out")

    def _delivery_report(self, event: CanonicalEvent) -> Handled:
        from switchboard_core.outbound import delivery_status

        report = delivery_status(event)
        if report is None or report.state == "queued":
            return Handled("ignored", detail="not a delivery report")
        pointer = self.deps.runs.pointer(event.provider, event.connection, report.provider_message_id)
        if pointer is None:
            return Handled("ignored", detail="not a campaign's message")
        run_id, key = pointer
        result = "failed" if report.state == "failed" else "sent"
        return self.apply(run_id, Outcome(idempotency_key=key, result=result, reason=report.reason), event.tenant)

    def _call_report(self, event: CanonicalEvent) -> Handled:
        found = self.deps.executor.call_outcome(event)
        if found is None:
            return Handled("ignored", detail="not a call outcome")
        provider, call_id, result, digits = found
        pointer = self.deps.runs.pointer(provider, event.connection, call_id)
        if pointer is None:
            return Handled("ignored", detail="not a campaign's call")
        run_id, key = pointer
        if result not in ("answered", "not_answered"):
            return Handled("ignored", detail=f"call result {result!r}")
        outcome = Outcome(idempotency_key=key, result=result, digits=digits)
        return self.apply(run_id, outcome, event.tenant)


# --- small helpers --------------------------------------------------------------------------------


def _accepted(delivered: Delivered) -> ClaimResult:
    return ClaimResult(
        result="sent",
        provider=delivered.provider,
        provider_message_id=delivered.provider_message_id,
        connection=delivered.connection,
    )


def _aws_errors() -> tuple[type[Exception], ...]:
    """What AWS raises when a read fails (a throttle, a network error); imported only when one
    happens (an `except` clause is evaluated then)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def _phone_of(responder: Any) -> str | None:
    return next((point.to for point in responder.contact_points if point.channel == "sms"), None)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _sentiment(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return max(-1.0, min(1.0, float(value)))


def _awaits(run: Run, event: CanonicalEvent, source_event: str) -> bool:
    """Whether `run` waits for a reply that `event` can be: not its own trigger, nor a message
    written before the run asked."""
    waiting = run.waiting
    if run.finished or waiting is None or waiting.kind != "reply":
        return False
    if run.trigger.event_id in (source_event, event.id):
        return False
    since = _waiting_since(run)
    return since is None or event.occurred_at >= since


def reply_channels(event: CanonicalEvent) -> frozenset[str]:
    """The campaign channels a customer's message came on: its messaging app (by the contact's
    handle), else its phone's (texts and calls); none that a campaign sends on: empty."""
    apps = {REPLY_HANDLE_CHANNELS[h.platform] for h in event.contact.handles if h.platform in REPLY_HANDLE_CHANNELS}
    if apps:
        return frozenset(apps)
    return frozenset({"sms", CALL_CHANNEL}) if event.contact.phone else frozenset()


def answered_run(runs: list[Run], event: CanonicalEvent) -> Run | None:
    """Which of the contact's runs waiting for a reply `event` answers: one whose trigger's
    conversation it is in; else one whose question went out on its channel (to its phone, through
    the connection the step named, when they are known); else one whose question's channel is not
    known (it asked on none). Among several equally good, the one that started waiting last."""
    conversation = _str(event.attributes.get("conversation"))
    channels = reply_channels(event)
    phone = event.contact.phone

    def rank_of(run: Run) -> int | None:
        waiting = run.waiting
        assert waiting is not None
        if conversation and conversation == (waiting.conversation or run.trigger.conversation):
            return 0
        if waiting.asked_on is None:
            return 2
        if waiting.asked_on not in channels or (waiting.asked_via and waiting.asked_via != event.connection):
            return None
        if waiting.asked_on in ("sms", "whatsapp", CALL_CHANNEL) and waiting.asked_to and phone:
            return 1 if waiting.asked_to == phone else None
        return 1

    ranked = [(rank, run) for run in runs if (rank := rank_of(run)) is not None]
    if not ranked:
        return None
    best = min(rank for rank, _ in ranked)
    return max(
        (run for rank, run in ranked if rank == best),
        key=lambda run: (_waiting_since(run) or run.updated_at, run.started_at, run.id),
    )


def _waiting_since(run: Run) -> datetime | None:
    """When the run started waiting for the reply (its wait's step record)."""
    waiting = run.waiting
    if waiting is None:
        return None
    for record in reversed(run.steps_done):
        if record.step == waiting.step and record.outcome == "waiting":
            return record.at
    return None
