"""Fan-out benchmark: `make bench` (full) or `python -m tests.bench.fanout --quick`.

Does the work of one event grow with how many subscriptions and campaigns are stored? Each
event is handled by the functions' own logic against moto (AWS in-process), in two worlds side
by side -- a small and a large one (10 and 1,000; the quick form CI runs: 10 and 200) -- and
the AWS work it does is counted by a botocore `after-call` hook (the model is
tests/bench/scale.py's DynamoCounter): round trips per service and operation, and DynamoDB
items read (`ScannedCount` of a Query or Scan, the items a GetItem or BatchGetItem returned).
CPU per event is `time.process_time` over many repetitions, the two worlds interleaved, so a
busy moment of the shared machine falls on both. The verdict is the ratio large/small: flat is
1.00x. Counts hold on any machine, so the quick form asserts them; CPU is almost all moto
answering in-process, and is printed.

1. Delivery (functions/delivery): one event delivered to one subscription -- the queue
   message parsed as the handler parses it (`message_of`), then `deliver` with DeliveryDeps as
   the handler builds them; the partner's endpoint is a stub Sender that checks every
   signature with the subscription's secret -- while the tenant has N subscriptions and other
   tenants N more, each with its signing secret in Secrets Manager. Measured twice: the same
   subscription event after event, and fan-out (each event to every one of the tenant's
   subscriptions in turn, as EventBridge hands one event to each matching rule's target).
   Which subscriptions an event goes to is EventBridge's work, not ours: one rule per
   subscription on the bus, matched by the bus (not measured: AWS's side).
2. Campaigns (switchboard_core.campaigns.runner, through functions/campaigns/logic.handle):
   a customer's reply (routing's conversation.updated carrying an inbound message) answering
   one waiting run while N other runs are in flight for other contacts on N other campaigns;
   and a campaign trigger (the message a published campaign's rule puts on the queue) with N
   published campaigns stored, each event for a campaign taken in turn.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from tests.bench import use_in_process_moto

TENANT = "acme"
OTHER_TENANTS = ("globex", "initech", "umbrella")
NOW = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # the campaigns' clock: outside the default quiet hours
PARTNER_URL = "http://127.0.0.1:9/hooks/switchboard"  # never connected to: the Sender is a stub
ASK = {
    "start": "ask",
    "steps": {
        "ask": {"type": "send_message", "channel": "sms", "text": "Hi ${name}, all sorted?", "next": "await"},
        "await": {"type": "wait_for_reply", "timeout": "PT4H", "next": "read", "on_timeout": "done"},
        "read": {"type": "branch", "cases": [{"when": {"reply_words": ["no"]}, "next": "sorry"}], "default": "won"},
        "sorry": {"type": "end"},
        "won": {"type": "end", "converted": True},
        "done": {"type": "end"},
    },
}


# --- counting -------------------------------------------------------------------------------------


@dataclass
class Calls:
    """What one event cost AWS: round trips by `service.Operation`, and DynamoDB items read."""

    round_trips: Counter[str] = field(default_factory=Counter)
    items_read: int = 0
    aws_cpu_s: float = 0.0  # CPU inside the AWS calls: botocore and moto answering in-process

    @property
    def total(self) -> int:
        return sum(self.round_trips.values())

    def of(self, service: str) -> int:
        return sum(n for name, n in self.round_trips.items() if name.startswith(service + "."))


class AwsCounter:
    """A botocore `after-call` hook on each client given: counts every call and the DynamoDB
    items it read (as tests/bench/scale.py's DynamoCounter does, for every service)."""

    def __init__(self, clients: dict[str, Any]) -> None:
        self.calls = Calls()
        self._call_started = 0.0
        for service, client in clients.items():
            prefix = client.meta.service_model.endpoint_prefix
            client.meta.events.register(f"before-call.{prefix}", self._started)
            client.meta.events.register(f"after-call.{prefix}", self._hook(service))

    def _started(self, **_: Any) -> None:
        self._call_started = time.process_time()

    def _hook(self, service: str) -> Callable[..., None]:
        def count(parsed: dict[str, Any], model: Any, **_: Any) -> None:
            self.calls.aws_cpu_s += time.process_time() - self._call_started
            self.calls.round_trips[f"{service}.{model.name}"] += 1
            if "ScannedCount" in parsed:
                self.calls.items_read += parsed["ScannedCount"]
            elif model.name == "GetItem":
                self.calls.items_read += 1 if parsed.get("Item") else 0
            elif model.name in ("BatchGetItem", "TransactGetItems"):
                found = parsed.get("Responses", {})
                self.calls.items_read += sum(len(v) for v in found.values()) if isinstance(found, dict) else len(found)

        return count

    @contextmanager
    def measure(self) -> Iterator[Calls]:
        measured = self.calls = Calls()
        try:
            yield measured
        finally:
            self.calls = Calls()  # what is done between measurements (setting up the next) is not counted


@dataclass
class Tally:
    """Events measured in one world: CPU and the counts of each."""

    cpu_s: float = 0.0
    events: int = 0
    counts: list[Calls] = field(default_factory=list)
    round_seconds: float | None = None  # the fan-out's measured round, wall time

    def add(self, cpu_s: float, calls: Calls) -> None:
        self.cpu_s += cpu_s
        self.events += 1
        self.counts.append(calls)

    def figures(self) -> dict[str, Any]:
        """Per event: CPU, round trips (total and by operation) and items read, as means; and
        whether every event cost the same (`steady`)."""
        n = max(self.events, 1)
        by_operation: Counter[str] = Counter()
        for calls in self.counts:
            by_operation.update(calls.round_trips)
        totals = {calls.total for calls in self.counts}
        return {
            "events": self.events,
            "cpu_us": round(self.cpu_s / n * 1e6, 1),
            # Our own code's share: moto answers a Query by walking its whole table, so the calls'
            # CPU grows with the store where DynamoDB's work would not (the counts say so).
            "own_cpu_us": round((self.cpu_s - sum(c.aws_cpu_s for c in self.counts)) / n * 1e6, 1),
            "round_trips": round(sum(c.total for c in self.counts) / n, 2),
            "items_read": round(sum(c.items_read for c in self.counts) / n, 2),
            "secrets_manager": round(sum(c.of("secretsmanager") for c in self.counts) / n, 2),
            "by_operation": {name: round(count / n, 2) for name, count in sorted(by_operation.items())},
            "round_trips_min_max": [min(totals, default=0), max(totals, default=0)],
        } | ({"round_seconds": round(self.round_seconds, 1)} if self.round_seconds is not None else {})


def timed(counter: AwsCounter, work: Callable[[], Any]) -> tuple[Any, float, Calls]:
    with counter.measure() as calls:
        started = time.process_time()
        result = work()
        cpu = time.process_time() - started
    return result, cpu, calls


# --- delivery -------------------------------------------------------------------------------------


class Partner:
    """The partner's endpoint as a Sender: answers 200 and checks each request's Standard
    Webhooks signature with the subscription's secret (a wrong secret would raise)."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # the subscription's path -> its secret
        self.received = 0

    def __call__(self, endpoint: Any, body: bytes, headers: dict[str, str], timeout: float) -> Any:
        from standardwebhooks.webhooks import Webhook

        from switchboard_core.subscriptions.sender import SendResult

        Webhook(self.secrets[endpoint.url]).verify(body, headers)
        self.received += 1
        return SendResult(status_code=200, latency_ms=0)


@dataclass
class DeliveryWorld:
    size: int
    deps: Any
    partner: Partner
    subscriptions: list[str]  # the tenant's
    counter: AwsCounter
    sent: int = 0

    def deliver(self, subscription: str) -> Callable[[], Any]:
        """One queue message (the subscription and a new event), handled as the handler does."""
        from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

        from functions.delivery.handler import message_of
        from functions.delivery.logic import deliver

        self.sent += 1
        body = json.dumps({"subscription": subscription, "event": envelope(self.sent, self.size)})
        record = SQSRecord({"messageId": f"m{self.sent}", "receiptHandle": f"r{self.sent}", "body": body})

        def turn() -> Any:
            verdict = deliver(message_of(record), self.deps, receipt=record.receipt_handle)
            assert verdict.outcome == "delivered", verdict
            return verdict

        return turn


def envelope(n: int, world: int) -> dict[str, Any]:
    """A routed SMS in EventBridge's envelope, as a subscription's rule puts it on the queue."""
    from switchboard_core.events import CanonicalEvent, Channel, Contact, EventDraft

    event = CanonicalEvent.from_draft(
        EventDraft(
            type="message.received",
            provider_event_id=f"SM{world:05d}{n:027d}",
            text=f"message {n}",
            contact=Contact(phone="+14155550100"),
        ),
        provider="twilio",
        connection="con_twilio",
        tenant=TENANT,
        channel=Channel.TELEPHONY,
        received_at=datetime.now(UTC),
        raw_ref=None,
    )
    return {
        "version": "0",
        "id": f"eb-{event.id}",
        "detail-type": event.type,
        "source": event.source,
        "time": event.received_at.isoformat(),
        "detail": json.loads(event.model_dump_json()),
    }


def delivery_world(size: int) -> DeliveryWorld:
    """`size` subscriptions of the tenant and `size` of other tenants, each with its secret."""
    from functions.delivery.logic import DeliveryDeps, SigningKeys
    from infra import topology
    from infra.local.emulator import create_table
    from switchboard_core import aws
    from switchboard_core.bus import EventPublisher
    from switchboard_core.subscriptions.deliveries import DeliveryWriter
    from switchboard_core.subscriptions.models import Subscription
    from switchboard_core.subscriptions.policy import DeliveryPolicy
    from switchboard_core.subscriptions.secrets import SigningSecretStore
    from switchboard_core.subscriptions.signing import SigningSecrets, new_secret
    from switchboard_core.subscriptions.store import SubscriptionStore, to_item

    dynamodb = aws.resource("dynamodb")
    name = f"bench-{size}-subscriptions"
    create_table(dynamodb.meta.client, name, topology.TABLES["subscriptions"])
    table = dynamodb.Table(name)
    secrets = SigningSecretStore(aws.client("secretsmanager"), f"bench/{size}/subscriptions/")
    partner = Partner()
    mine: list[str] = []
    now = datetime.now(UTC)
    with table.batch_writer() as out:
        for n in range(2 * size):
            tenant = TENANT if n < size else OTHER_TENANTS[n % len(OTHER_TENANTS)]
            sub_id = f"sub_{tenant}_{n:05d}"
            url = f"{PARTNER_URL}/{sub_id}"
            subscription = Subscription(
                id=sub_id,
                tenant=tenant,
                owner="key_partner",
                url=url,
                event_pattern={"source": [{"prefix": "switchboard."}], "detail-type": ["message.received"]},
                created_at=now,
                updated_at=now,
            )
            out.put_item(Item=to_item(subscription))
            secret = new_secret()
            secrets.create(sub_id, SigningSecrets(current=secret))
            partner.secrets[url] = secret
            if tenant == TENANT:
                mine.append(sub_id)
    bus = f"bench-{size}-bus"
    aws.client("events").create_event_bus(Name=bus)
    deps = DeliveryDeps(
        subscriptions=SubscriptionStore(table),
        log=DeliveryWriter(table),
        keys=SigningKeys(secrets),  # the handler's: default size and age
        send=partner,
        publish=EventPublisher(aws.client("events"), bus).publish,
        policy=DeliveryPolicy.model_validate(topology.delivery_policy()),
        local_endpoints=True,  # loopback partner URLs, as the local runtime allows
        wake=lambda receipt: None,
    )
    counter = AwsCounter(
        {
            "dynamodb": dynamodb.meta.client,
            "secretsmanager": aws.client("secretsmanager"),
            "events": aws.client("events"),
        }
    )
    return DeliveryWorld(size, deps, partner, mine, counter)


def measure_delivery(sizes: tuple[int, int], repetitions: int, fanout_sample: int | None) -> dict[str, Any]:
    small, large = (delivery_world(size) for size in sizes)
    worlds = (small, large)
    first: dict[int, dict[str, Any]] = {}
    for world in worlds:  # the first delivery of an execution environment: its secret not cached yet
        tally = Tally()
        _, cpu, calls = timed(world.counter, world.deliver(world.subscriptions[0]))
        tally.add(cpu, calls)
        first[world.size] = tally.figures()
    same = {world.size: Tally() for world in worlds}
    for rep in range(repetitions):  # one subscription, event after event; the worlds interleaved
        for world in worlds if rep % 2 == 0 else reversed(worlds):
            _, cpu, calls = timed(world.counter, world.deliver(world.subscriptions[0]))
            same[world.size].add(cpu, calls)
    # Fan-out: events go to every subscription of the tenant in turn. A first round reads each
    # one's signing key as its delivery would (into the execution environment's cache, as far as
    # that holds); the second round is delivered and measured: all of it, or (`fanout_sample`, the
    # quick form) that many of its deliveries, spread over the round, after the ones before them
    # have been looked up in the cache as their deliveries would.
    fanout = {world.size: Tally() for world in worlds}
    for world in worlds:
        for sub_id in world.subscriptions:
            found = world.deps.subscriptions.get(sub_id)
            world.deps.keys.secrets(found)
        stride = max(1, len(world.subscriptions) // fanout_sample) if fanout_sample else 1
        started = time.perf_counter()
        for n, sub_id in enumerate(world.subscriptions):
            if n % stride:
                world.deps.keys.secrets(world.deps.subscriptions.get(sub_id))
                continue
            _, cpu, calls = timed(world.counter, world.deliver(sub_id))
            fanout[world.size].add(cpu, calls)
        # A cached secret is read again after 5 minutes: a round slower than that reads some again.
        fanout[world.size].round_seconds = time.perf_counter() - started
    for world in worlds:
        assert world.partner.received == world.sent  # every delivery went out, correctly signed
    before = {world.size: before_fanout_secret_reads(world) for world in worlds}
    return {
        "first delivery (signing secret not cached)": {size: first[size] for size in sizes},
        "one subscription, event after event": {size: same[size].figures() for size in sizes},
        "fan-out: each of the tenant's subscriptions in turn": {size: fanout[size].figures() for size in sizes},
        BEFORE_FANOUT: before,
    }


BEFORE_FANOUT = "(before) fan-out, signing-key cache of 512 entries: Secrets Manager reads per delivery"


def before_fanout_secret_reads(world: DeliveryWorld) -> dict[str, Any]:
    """The fan-out's Secrets Manager reads with the cache the delivery function had before (512
    entries): two rounds of the lookups each delivery makes (the rest of a delivery is the same),
    the second counted."""
    from functions.delivery.logic import SigningKeys

    keys = SigningKeys(world.deps.keys._store, max_entries=512)
    found = [world.deps.subscriptions.get(sub_id) for sub_id in world.subscriptions]
    for subscription in found:
        keys.secrets(subscription)
    with world.counter.measure() as calls:
        for subscription in found:
            keys.secrets(subscription)
    reads = calls.of("secretsmanager") / len(found)
    return {
        "events": len(found),
        "cpu_us": 0.0,
        "own_cpu_us": 0.0,
        "round_trips": reads,
        "items_read": 0,
        "secrets_manager": reads,
    }


# --- campaigns ------------------------------------------------------------------------------------


@dataclass
class Accepted:
    provider: str
    provider_message_id: str
    connection: str


class Channels:
    """The channel executors (their providers' APIs are not what is measured): each send or
    call is accepted with a new provider id."""

    def __init__(self) -> None:
        self.sent = 0

    def _accept(self) -> Accepted:
        self.sent += 1
        return Accepted("twilio", f"SM{self.sent:032d}", "con_twilio")

    def send_message(self, action: Any, tenant: str, hand_off: Any) -> Accepted:
        hand_off()
        return self._accept()

    def place_call(self, action: Any, tenant: str, hand_off: Any) -> Accepted:
        hand_off()
        return self._accept()

    def connect_call(self, action: Any, responder_phone: str, tenant: str, hand_off: Any) -> Accepted:
        hand_off()
        return self._accept()

    def call_outcome(self, event: Any) -> None:
        return None


@dataclass
class CampaignWorld:
    size: int
    deps: Any
    counter: AwsCounter
    campaigns: list[str]
    contacts: Any
    made: int = 0

    def contact(self) -> str:
        """A new contact of the tenant (as routing creates one), with its phone."""
        from switchboard_core.routing.contacts import Identity

        self.made += 1
        phone = f"+1555{self.size % 1000:03d}{self.made:04d}"
        record = self.contacts.resolve(TENANT, [Identity(kind="phone", value=phone)], reason="bench", now=NOW)
        assert record is not None
        return str(record.id)

    def phone(self, contact_id: str) -> str:
        record = self.contacts.get(contact_id)
        return next(token.split("#", 1)[1] for token in record.identities if token.startswith("phone#"))

    def handle(self, body: str, now: datetime) -> Any:
        from functions.campaigns.logic import handle
        from switchboard_core.campaigns.runner import Runner

        return handle(body, Runner(self.deps, now))

    def start(self, campaign: str, contact_id: str) -> str:
        from switchboard_core.campaigns.work import StartRequest

        request = StartRequest(
            tenant=TENANT, campaign=campaign, version=1, contact=contact_id, request=f"r_{contact_id}"
        )
        handled = self.handle(request.model_dump_json(), NOW)
        assert handled.outcome == "started", handled
        return str(handled.runs[0])


def routing_event(kind: str, contact_id: str, phone: str, source_event: str, **attributes: Any) -> Any:
    """An event as routing publishes it about a contact (its summary in `contact`)."""
    from switchboard_core.events import CanonicalEvent, Channel, Contact, EventDraft

    return CanonicalEvent.from_draft(
        EventDraft(
            type=kind,
            provider_event_id=f"{source_event}:{kind}",
            occurred_at=NOW + timedelta(minutes=5),
            contact=Contact(phone=phone),
            text="yes, thank you",
            attributes={
                "source_event": source_event,
                "contact": {"id": contact_id, "identities": [f"phone#{phone}"], "attributes": {}, "opted_out": False},
                **attributes,
            },
        ),
        provider="routing",
        connection="con_twilio",
        tenant=TENANT,
        channel=Channel.TELEPHONY,
        received_at=NOW + timedelta(minutes=5),
        raw_ref=None,
    )


def bus_body(event: Any) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": f"eb-{event.id}",
            "detail-type": event.type,
            "source": event.source,
            "account": "123456789012",
            "time": event.received_at.isoformat(),
            "region": "us-east-1",
            "resources": [],
            "detail": json.loads(event.model_dump_json()),
        }
    )


def no_webhooks(endpoint: Any, body: bytes, headers: dict[str, str], timeout: float) -> Any:
    raise AssertionError("the measured flow has no webhook step")


def campaign_world(size: int) -> CampaignWorld:
    """`size` published campaigns, and `size` runs in flight: run n for contact n on campaign n."""
    from infra import topology
    from infra.local.emulator import create_table
    from switchboard_core import aws
    from switchboard_core.bus import EventPublisher
    from switchboard_core.campaigns.flow import Flow
    from switchboard_core.campaigns.models import Author, Campaign, CampaignVersion
    from switchboard_core.campaigns.run_store import RunStore
    from switchboard_core.campaigns.runner import CampaignScheduler, RunnerDeps
    from switchboard_core.campaigns.store import CampaignStore, head_item, version_item
    from switchboard_core.routing.config_store import RoutingConfigStore
    from switchboard_core.routing.contacts import ContactStore
    from switchboard_core.routing.conversations import ConversationStore

    dynamodb = aws.resource("dynamodb")
    tables = {}
    for name in ("campaigns", "campaign_runs", "contacts", "conversations", "routing"):
        physical = f"bench-{size}-{name}"
        create_table(dynamodb.meta.client, physical, topology.TABLES[name])
        tables[name] = dynamodb.Table(physical)
    scheduler = aws.client("scheduler")
    group = f"bench-{size}-campaigns"
    scheduler.create_schedule_group(Name=group)
    bus = f"bench-{size}-campaign-bus"
    aws.client("events").create_event_bus(Name=bus)
    deps = RunnerDeps(
        runs=RunStore(tables["campaign_runs"]),
        campaigns=CampaignStore(tables["campaigns"]),
        contacts=ContactStore(tables["contacts"]),
        conversations=ConversationStore(tables["conversations"], timedelta(hours=4)),
        config=RoutingConfigStore(tables["routing"]),
        executor=Channels(),
        scheduler=CampaignScheduler(
            scheduler,
            group,
            "arn:aws:sqs:us-east-1:123456789012:bench-campaigns",
            "arn:aws:iam::123456789012:role/bench-campaign-scheduler",
        ),
        publish=EventPublisher(aws.client("events"), bus).publish,
        webhook_keys=lambda tenant: [b"k" * 32],
        post=no_webhooks,
    )
    author = Author(key_id="k1", name="ana")
    flow = Flow.model_validate(ASK)
    campaigns = [f"cmp_{n:05d}" for n in range(size)]
    with tables["campaigns"].batch_writer() as out:  # published, in the shape the store writes
        for campaign_id in campaigns:
            head = Campaign(
                id=campaign_id,
                tenant=TENANT,
                name=campaign_id,
                owner=author,
                created_at=NOW,
                updated_at=NOW,
                latest_version=1,
                published_version=1,
                published_at=NOW,
                published_by=author,
            )
            out.put_item(Item=head_item(head))
            version = CampaignVersion(
                campaign=campaign_id, version=1, flow=flow, saved_at=NOW, saved_by=author, published_at=NOW
            )
            out.put_item(Item=version_item(version))
    counter = AwsCounter({"dynamodb": dynamodb.meta.client, "events": aws.client("events"), "scheduler": scheduler})
    world = CampaignWorld(size, deps, counter, campaigns, deps.contacts)
    # The runs in flight: one started through the runner (it asked and waits for the reply), then
    # copied for a contact of its own on each campaign, in the shape the run store writes.
    template = deps.runs.get(world.start(campaigns[0], world.contact()))
    assert template is not None and template.waiting is not None
    with tables["campaign_runs"].batch_writer() as out:
        for n, campaign_id in enumerate(campaigns[1:], start=1):
            contact = template.contact.model_copy(update={"id": f"ct_other_{n:05d}", "phone": f"+1666{n:07d}"})
            run = template.model_copy(update={"id": f"run_other_{n:05d}", "campaign": campaign_id, "contact": contact})
            out.put_item(Item=deps.runs._state_item(run, []))
    in_flight = deps.runs.for_contact(TENANT, "ct_other_00001") if size > 1 else [template]
    assert len(in_flight) == 1 and not in_flight[0].finished
    return world


def measure_campaigns(sizes: tuple[int, int], repetitions: int) -> dict[str, Any]:
    from switchboard_core.campaigns.work import TriggerMessage

    started = time.perf_counter()
    worlds = tuple(campaign_world(size) for size in sizes)
    seeded_s = time.perf_counter() - started
    replies = {world.size: Tally() for world in worlds}
    triggers = {world.size: Tally() for world in worlds}
    for rep in range(repetitions):
        for world in worlds if rep % 2 == 0 else reversed(worlds):
            # A reply: the contact's run on the first campaign waits for it (set up unmeasured).
            contact_id = world.contact()
            run = world.start(world.campaigns[0], contact_id)
            event = routing_event(
                "conversation.updated",
                contact_id,
                world.phone(contact_id),
                f"ev_reply_{rep}",
                conversation=f"conv_{contact_id}",
                source_type="message.received",
                topics=[],
                sentiment=0.6,
            )
            body = bus_body(event)
            handled, cpu, calls = timed(world.counter, partial(world.handle, body, NOW + timedelta(minutes=5)))
            assert handled.outcome == "applied" and handled.runs == (run,), handled
            replies[world.size].add(cpu, calls)
            # A trigger: a published campaign's rule matched routing's event about a contact.
            contact_id = world.contact()
            campaign = world.campaigns[rep % world.size]
            event = routing_event(
                "routing.assigned", contact_id, world.phone(contact_id), f"ev_mention_{rep}", conversation="conv_1"
            )
            message = TriggerMessage(
                campaign=campaign,
                event={"source": event.source, "detail-type": event.type, "detail": event.model_dump(mode="json")},
            )
            body = message.model_dump_json()
            handled, cpu, calls = timed(world.counter, partial(world.handle, body, NOW))
            assert handled.outcome == "started", handled
            triggers[world.size].add(cpu, calls)
    return {
        "seeding_seconds": round(seeded_s, 1),
        "reply answering one waiting run, N other runs in flight on N campaigns": {
            size: replies[size].figures() for size in sizes
        },
        "trigger of a published campaign, N published campaigns": {size: triggers[size].figures() for size in sizes},
    }


# --- the report -----------------------------------------------------------------------------------


def ratios(small: dict[str, Any], large: dict[str, Any]) -> dict[str, float]:
    def ratio(name: str) -> float:
        a, b = small[name], large[name]
        return 1.0 if a == b else round(b / a, 2) if a else float("inf")

    return {name: ratio(name) for name in ("cpu_us", "own_cpu_us", "round_trips", "items_read", "secrets_manager")}


def run(
    sizes: tuple[int, int],
    repetitions: int,
    campaign_repetitions: int,
    fanout_sample: int | None,
    only: str | None = None,
) -> dict[str, Any]:
    from moto import mock_aws

    from infra.local.emulator import patch_moto
    from switchboard_core import aws

    use_in_process_moto(POWERTOOLS_TRACE_DISABLED="true")
    patch_moto()
    with mock_aws():
        aws.reset_clients(keep_session=True)
        try:
            figures: dict[str, Any] = {}
            if only in (None, "delivery"):
                figures["delivery"] = measure_delivery(sizes, repetitions, fanout_sample)
            if only in (None, "campaigns"):
                figures["campaigns"] = measure_campaigns(sizes, campaign_repetitions)
        finally:
            aws.reset_clients(keep_session=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (CI): 10 and 200")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sizes", type=int, nargs=2, metavar=("SMALL", "LARGE"), help="other sizes (default 10 1000)")
    parser.add_argument("--only", choices=("delivery", "campaigns"), help="one part only")
    args = parser.parse_args(argv)
    sizes = tuple(args.sizes) if args.sizes else (10, 200) if args.quick else (10, 1_000)
    # Under moto a delivery is four conditional updates and a few reads (tens of ms of CPU each):
    # a few hundred of each kind of event make the CPU figures steady; the counts are exact anyway.
    repetitions, campaign_repetitions = (10, 4) if args.quick else (100, 30)
    fanout_sample = 20 if args.quick else None
    figures = run(sizes, repetitions, campaign_repetitions, fanout_sample, args.only)
    small, large = sizes
    scenarios: dict[str, dict[str, Any]] = {}
    for part in figures:
        for label, per_size in figures[part].items():
            if isinstance(per_size, dict):
                scenarios[f"{part}: {label}"] = {
                    "small": per_size[small],
                    "large": per_size[large],
                    "ratio": ratios(per_size[small], per_size[large]),
                }
    counted = ("round_trips", "items_read", "secrets_manager")
    report = {
        "quick": args.quick,
        "sizes": list(sizes),
        "repetitions": repetitions,
        "campaign_seeding_seconds": figures.get("campaigns", {}).get("seeding_seconds"),
        "scenarios": scenarios,
        "worst_count_ratio": max(
            s["ratio"][name] for label, s in scenarios.items() if "(before)" not in label for name in counted
        ),
        "worst_cpu_ratio": max(s["ratio"]["cpu_us"] for label, s in scenarios.items() if "(before)" not in label),
        "worst_own_cpu_ratio": max(
            s["ratio"]["own_cpu_us"] for label, s in scenarios.items() if "(before)" not in label
        ),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"Work per event with {small:,} and {large:,} subscriptions / campaigns stored ({repetitions} repetitions):")
    print(
        f"  {'event':<94} {'round trips':>13} {'items read':>13} {'secrets':>11} {'CPU us (ratio)':>25}"
        f" {'own CPU us (ratio)':>25}"
    )
    for label, figures_of in scenarios.items():
        a, b, r = figures_of["small"], figures_of["large"], figures_of["ratio"]
        print(
            f"  {label:<94} {a['round_trips']:>6} {b['round_trips']:>6} {a['items_read']:>6} {b['items_read']:>6}"
            f" {a['secrets_manager']:>5} {b['secrets_manager']:>5}"
            f" {a['cpu_us']:>8} {b['cpu_us']:>8} {r['cpu_us']:>6.2f}x"
            f" {a['own_cpu_us']:>8} {b['own_cpu_us']:>8} {r['own_cpu_us']:>6.2f}x"
        )
    for label, figures_of in scenarios.items():
        if "by_operation" in figures_of["large"]:
            print(f"  {label}: by operation at {large:,}: {figures_of['large']['by_operation']}")
        if "round_seconds" in figures_of["large"]:
            rounds = f"{figures_of['small']['round_seconds']} s and {figures_of['large']['round_seconds']} s"
            print(f"  {label}: measured rounds took {rounds} (a cached secret is read again after 300 s)")
    print(
        f"worst ratio large/small of round trips, items read and Secrets Manager reads per event: "
        f"{report['worst_count_ratio']:.2f}x; of CPU per event: {report['worst_cpu_ratio']:.2f}x, of our code's "
        f"(outside the AWS calls, which moto answers in-process): {report['worst_own_cpu_ratio']:.2f}x (flat: 1.00x)"
    )
    print(
        "Which subscriptions and campaigns an event goes to is EventBridge's matching: one rule per "
        "subscription and per published campaign's trigger on the bus, none of it our code (not measured)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
