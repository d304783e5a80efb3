"""One scenario per function of infra/topology.FUNCTIONS: what it is sent, how the platform
retries it, and what must exist afterwards for each request it acknowledged.

Each scenario takes a fresh fault world (moto, the injector) and `requests`, and returns its
Row. The checks are the function's promise, read back with the injector off:
ingest: every acknowledged webhook on the bus and in the raw store; event_log: every event done
is in the log; routing: every message done is threaded and its conversation event published;
delivery: every message done reached the partner; the senders: every request done was sent
(or its failure published) and sent once per retry at most; the scheduled functions: every due
item handled by a run that succeeded, or by the next run; admin: every write answered 2xx is
stored; authorizer: no key is allowed when its check failed, and a valid key is never refused
with a 2xx.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from infra import topology
from tests.faults.harness import (
    FaultWorld,
    Row,
    bus_events,
    call_api,
    detail_of,
    drain,
    fault_world,
    invoke,
    send_records,
)

Scenario = Callable[[int, float, int], Row]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    def register(function: Scenario) -> Scenario:
        SCENARIOS[name] = function
        return function

    return register


def _finish(row: Row, world: FaultWorld) -> Row:
    row.faults = world.injector.stats
    return row


def canonical(n: int, *, tenant: str = "acme", text: str | None = None, phone: str | None = None) -> Any:
    from switchboard_core.events import CanonicalEvent, Channel, Contact, EventDraft

    return CanonicalEvent.from_draft(
        EventDraft(
            type="message.received",
            provider_event_id=f"SM{n:032d}",
            text=text or f"message {n}",
            contact=Contact(phone=phone or f"+1415555{n % 10000:04d}"),
        ),
        provider="twilio",
        connection="con_twilio",
        tenant=tenant,
        channel=Channel.TELEPHONY,
        received_at=datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=n % 3600),
        raw_ref=None,
    )


def envelope(event: Any) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "eb-" + event.id,
            "detail-type": event.type,
            "source": event.source,
            "account": "123456789012",
            "time": event.received_at.isoformat(),
            "region": "us-east-1",
            "resources": [],
            "detail": event.model_dump(mode="json"),
        }
    )


def reconcile_queue(row: Row, outcome: Any, effect: Callable[[dict[str, Any]], bool]) -> None:
    """done -> acknowledged (and delivered if its effect is found); dead -> in_dlq; lost: the rest."""
    row.attempts = outcome.invocations
    row.acknowledged = len(outcome.done)
    row.in_dlq = len(outcome.dead)
    row.delivered = sum(1 for message in outcome.done if effect(message))
    missing_effect = row.acknowledged - row.delivered
    unaccounted = row.requests - row.acknowledged - row.in_dlq
    row.lost = missing_effect + max(0, unaccounted)
    if outcome.left:
        row.notes.append("queue not drained")


def record_sends(row: Row, sends: Counter[Any], outcome: Any) -> None:
    """What reached partners or providers: a second send of one key is allowed only as an
    at-least-once retry, so the bound is the number of redeliveries."""
    row.partner_sends = sum(sends.values())
    row.partner_duplicates = sum(count - 1 for count in sends.values() if count > 1)
    row.duplicate_bound = sum(outcome.receives.values()) - len(outcome.receives)


# --- ingest (API Gateway) ---

STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _gateway_event(provider: str, connection: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    path = f"/webhooks/{provider}/{connection}"
    return {
        "version": "2.0",
        "routeKey": "ANY /webhooks/{provider}/{connection}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "host": "hooks.example.com",
            "x-forwarded-proto": "https",
            **{k.lower(): v for k, v in headers.items()},
        },
        "pathParameters": {"provider": provider, "connection": connection},
        "requestContext": {
            "http": {"method": "POST", "path": path, "sourceIp": "1.2.3.4"},
            "domainName": "hooks.example.com",
            "requestId": "r1",
            "stage": "$default",
            "routeKey": "ANY /webhooks/{provider}/{connection}",
        },
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


@scenario("ingest")
def ingest(requests: int, rate: float, seed: int) -> Row:
    from infra.local.samples import build_sample
    from switchboard_core import aws
    from switchboard_core.connections import Connection, ConnectionStore, CredentialStore

    row = Row("ingest", "api", requests=requests)
    with fault_world(rate, seed, {"CREDENTIALS_CACHE_SECONDS": "60"}) as world:
        connections = ConnectionStore(aws.resource("dynamodb").Table(world.names.table("connections")))
        credentials = CredentialStore(aws.client("secretsmanager"), topology.secrets_prefix("test"))
        providers = {
            "standard-webhooks": ("con_00000000000000aa", {"secret": STANDARD_SECRET}),
            "twilio": ("con_00000000000000bb", {"auth_token": "0123456789abcdef0123456789abcdef"}),
        }
        for provider, (connection, secret) in providers.items():
            connections.put(Connection(id=connection, provider=provider, tenant="acme", created_at=datetime.now(UTC)))
            credentials.create(connection, secret, "acme")
        acknowledged_bodies: list[bytes] = []
        for n in range(requests):
            provider = ("standard-webhooks", "twilio")[n % 2]
            connection, secret = providers[provider]
            sample = build_sample(provider, None, secret, f"https://hooks.example.com/webhooks/{provider}/{connection}")
            outcome = call_api(
                world,
                "ingest",
                partial(_gateway_event, provider, connection, sample.body, sample.headers),
                between_attempts=lambda: _expire_in_progress(world),
            )
            row.attempts += outcome.attempts
            if outcome.acknowledged:
                row.acknowledged += 1
                acknowledged_bodies.append(sample.body)
            else:
                row.unacknowledged += 1
                row.notes.append(f"gave up after {outcome.attempts} attempts, last status {outcome.status}")
        published = [e["detail"] for e in bus_events(world) if e["source"].startswith("switchboard.")]
        raw = _raw_bodies(world)
        by_raw_key = Counter((d.get("raw_ref") or {}).get("key") for d in published)
        for body in acknowledged_bodies:
            keys = [key for key, stored in raw.items() if stored == body]
            if keys and any(by_raw_key[key] for key in keys):
                row.delivered += 1
        row.lost = row.acknowledged - row.delivered
        copies = Counter(d["id"] for d in published)
        row.notes.append(f"{sum(c - 1 for c in copies.values())} events on the bus twice (at-least-once)")
    return _finish(row, world)


def _expire_in_progress(world: FaultWorld) -> None:
    """A provider's retry comes minutes later, after the function's timeout: an idempotency
    record left INPROGRESS by an attempt that failed half-way has expired by then."""
    from switchboard_core import aws

    table = aws.resource("dynamodb").Table(world.names.table("idempotency"))
    for item in table.scan()["Items"]:
        if item.get("status") == "INPROGRESS":
            table.update_item(
                Key={"id": item["id"]},
                UpdateExpression="SET in_progress_expiration = :past",
                ExpressionAttributeValues={":past": 1},
            )


def _raw_bodies(world: FaultWorld) -> dict[str, bytes]:
    """The raw store's objects: key -> the request body it kept."""
    from switchboard_core import aws

    s3 = aws.client("s3")
    bucket = world.names.bucket("raw")
    found: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            document = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found[item["Key"]] = base64.b64decode(json.loads(document)["body_base64"])
    return found


# --- event_log (SQS) ---


@scenario("event_log")
def event_log(requests: int, rate: float, seed: int) -> Row:
    from switchboard_core import aws

    row = Row("event_log", "sqs", requests=requests)
    with fault_world(rate, seed) as world:
        send_records(world, "event_log", [envelope(canonical(n)) for n in range(requests)])
        outcome = drain(world, "event_log")
        table = aws.resource("dynamodb").Table(world.names.table("event_log"))

        def logged(message: dict[str, Any]) -> bool:
            event_id = detail_of(message["Body"])["id"]
            return "Item" in table.get_item(Key={"id": event_id})

        reconcile_queue(row, outcome, logged)
    return _finish(row, world)


# --- routing (SQS) ---


@scenario("routing")
def routing(requests: int, rate: float, seed: int) -> Row:
    row = Row("routing", "sqs", requests=requests)
    with fault_world(rate, seed) as world:
        events = [canonical(n, phone=f"+1415555{n % 7:04d}") for n in range(requests)]
        send_records(world, "routing", [envelope(e) for e in events])
        outcome = drain(world, "routing")
        published = [e["detail"] for e in bus_events(world) if e["source"] == topology.ROUTING_SOURCE]
        routed = Counter(
            d["attributes"].get("source_event") for d in published if d["type"].startswith("conversation.")
        )
        reconcile_queue(row, outcome, lambda m: routed[detail_of(m["Body"])["id"]] > 0)
        copies = Counter(d["id"] for d in published)
        row.notes.append(f"{sum(c - 1 for c in copies.values())} derived events on the bus twice (at-least-once)")
    return _finish(row, world)


# --- delivery (SQS, to partners) ---


def _expire_leases(table: Any) -> None:
    """Time passes to the messages' visibility (a lease's wait): leases left by a turn that failed
    half-way, or by a claim AWS applied but whose answer was lost, have ended by then."""
    for item in table.scan()["Items"]:
        if "lease_until" in item:
            table.update_item(
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="SET lease_until = :past",
                ExpressionAttributeValues={":past": 0},
            )


@scenario("delivery")
def delivery(requests: int, rate: float, seed: int) -> Row:
    from switchboard_core import aws
    from switchboard_core.subscriptions.models import Subscription
    from switchboard_core.subscriptions.secrets import SigningSecretStore
    from switchboard_core.subscriptions.signing import SigningSecrets, new_secret
    from switchboard_core.subscriptions.store import SubscriptionStore
    from tests.unit.delivery.support import FAST_POLICY, Receiver, message

    # The topology's policy with its waits at zero: the harness does not sleep through them.
    policy = FAST_POLICY.model_copy(update={"retry_schedule_seconds": (0,) * 8, "timeout_seconds": 5})
    row = Row("delivery", "sqs", requests=requests)
    receiver = Receiver()
    try:
        with fault_world(rate, seed, {"DELIVERY_POLICY": policy.model_dump_json()}) as world:
            table = aws.resource("dynamodb").Table(world.names.table("subscriptions"))
            now = datetime.now(UTC)
            SubscriptionStore(table).create(
                Subscription(
                    id="sub_1",
                    tenant="acme",
                    owner="key_partner",
                    url=receiver.url,
                    event_pattern={"source": [{"prefix": "switchboard."}]},
                    created_at=now,
                    updated_at=now,
                )
            )
            secrets = SigningSecretStore(aws.client("secretsmanager"), topology.subscription_secrets_prefix("test"))
            secrets.create("sub_1", SigningSecrets(current=new_secret()))
            events = [canonical(n) for n in range(requests)]
            send_records(world, "delivery", [message(e).model_dump_json() for e in events])
            outcome = drain(world, "delivery", advance=lambda: _expire_leases(table))
            sends = Counter(r.headers.get("webhook-id") for r in receiver.requests)
            reconcile_queue(row, outcome, lambda m: sends[json.loads(m["Body"])["event"]["detail"]["id"]] > 0)
            record_sends(row, sends, outcome)
    finally:
        receiver.stop()
    return _finish(row, world)


# --- the senders: replies, answers, notifications, calls, campaigns, hubspot_threads ---


class _Sandbox:
    """The provider sandbox (infra/local/provider_apis) on loopback, recording every send, with
    a Twilio connection whose outbound credentials the senders use."""

    def __init__(self) -> None:
        from infra.local.provider_apis import ProviderApis, serve
        from tests.unit.replies.test_replies import OUTBOUND

        self.apis = ProviderApis()
        self.server, self.url = serve(self.apis)
        self.apis.accept("twilio", OUTBOUND)

    @property
    def env(self) -> dict[str, str]:
        from switchboard_core.outbound import API_OVERRIDE_ENV

        return {API_OVERRIDE_ENV: self.url}

    def connect(self, world: FaultWorld) -> None:
        from switchboard_core import aws
        from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
        from tests.unit.replies.test_replies import OUTBOUND

        now = datetime.now(UTC)
        ConnectionStore(aws.resource("dynamodb").Table(world.names.table("connections"))).put(
            Connection(id="con_twilio", provider="twilio", tenant="acme", created_at=now, outbound_configured_at=now)
        )
        CredentialStore(aws.client("secretsmanager"), topology.outbound_secrets_prefix("test")).replace(
            "con_twilio", OUTBOUND, "acme"
        )

    def stop(self) -> None:
        self.server.shutdown()


@scenario("replies")
def replies(requests: int, rate: float, seed: int) -> Row:
    from tests.unit.replies.test_replies import request_event
    from tests.unit.replies.test_replies_handler import age_claims

    row = Row("replies", "sqs", requests=requests)
    sandbox = _Sandbox()
    try:
        with fault_world(rate, seed, sandbox.env) as world:
            sandbox.connect(world)
            requested = [
                request_event(n, "ct_unknown", conversation=f"cv_{n}", text=f"reply {n}", template=f"reply {n}")
                for n in range(requests)
            ]
            send_records(world, "replies", [envelope(e) for e in requested])
            # Time skips past the once-per-conversation claims of attempts that failed half-way.
            outcome = drain(world, "replies", advance=lambda: age_claims(world, timedelta(seconds=121)))
            published = [e["detail"] for e in bus_events(world) if e["source"] == "switchboard.replies"]
            outcomes = Counter(d["attributes"].get("request") for d in published)
            reconcile_queue(row, outcome, lambda m: outcomes[detail_of(m["Body"])["id"]] > 0)
            record_sends(row, Counter(m.text for m in sandbox.apis.messages), outcome)
            failed = sum(1 for d in published if d["type"] == "reply.failed")
            row.notes.append(f"{failed} reply.failed published (sent on the queue's last attempt)")
    finally:
        sandbox.stop()
    return _finish(row, world)


def _age_claims(world: FaultWorld, table_name: str, seconds: int) -> None:
    """Time skips by the queue's visibility timeout: claims of attempts that failed half-way
    (`claimed_at`) are that much older by then."""
    from switchboard_core import aws

    table = aws.resource("dynamodb").Table(world.names.table(table_name))
    for item in table.scan()["Items"]:
        if "claimed_at" in item:
            claimed = datetime.fromisoformat(item["claimed_at"]) - timedelta(seconds=seconds)
            table.update_item(
                Key={name: item[name] for name in ("pk", "sk") if name in item},
                UpdateExpression="SET claimed_at = :at",
                ExpressionAttributeValues={":at": claimed.isoformat()},
            )


@scenario("answers")
def answers(requests: int, rate: float, seed: int) -> Row:
    from functions.admin import answers as admin
    from tests.unit.answers.test_answers import NOW, STAFF, World

    row = Row("answers", "sqs", requests=requests)
    sandbox = _Sandbox()
    try:
        with fault_world(rate, seed, {**sandbox.env, "PUBLIC_BASE_URL": "https://hub.example"}) as world:
            staff = World(world.names)
            bodies = []
            for n in range(requests):
                _, conversation = staff.customer_sms(f"question {n}", sender=f"+1415556{n % 10000:04d}")
                admin.post_message(STAFF, conversation, admin.PostMessage(text=f"answer {n}"), staff.admin, NOW)
                bodies.append(envelope(staff.last("message.sent")))
            send_records(world, "answers", bodies)
            outcome = drain(world, "answers", advance=lambda: _age_claims(world, "messages", 120))
            published = [e["detail"] for e in bus_events(world) if e["source"] == "switchboard.answers"]
            reported = Counter(d["attributes"].get("message_id") for d in published)
            sends = Counter(m.text for m in sandbox.apis.messages)

            provider_ids = {m.text: m.message_id for m in sandbox.apis.messages}

            def answered(message: dict[str, Any]) -> bool:
                message_id = detail_of(message["Body"])["attributes"].get("message_id")
                record = staff.messages.get(message_id)
                # Sent to the customer, its status published for the timeline, and recorded `sent`
                # with the id the provider returned (never `outcome_unknown` for a send that went),
                # findable by that id (its pointer, or the mark while the pointer is missing).
                if record is None or sends[record.text] == 0 or reported[message_id] == 0:
                    return False
                sid = provider_ids[record.text]
                return (
                    record.state == "sent"
                    and record.provider_message_id == sid
                    and message_id
                    in (staff.messages.by_provider_id("twilio", sid), staff.messages.by_unpointed("twilio", sid))
                )

            reconcile_queue(row, outcome, answered)
            record_sends(row, sends, outcome)
            row.duplicate_bound = 0  # a staff answer goes at most once, whatever the queue redelivers
            _answer_reports(row, world, staff, provider_ids)
    finally:
        sandbox.stop()
    return _finish(row, world)


def _answer_reports(row: Row, world: FaultWorld, staff: Any, provider_ids: dict[str, str]) -> None:
    """Twilio's `delivered` status callback for each answer it took, through the same queue under
    the same faults: each must move its answer to `delivered` (by its pointer, or by the mark of
    one whose pointer's write failed). One acknowledged without moving it is lost."""
    from tests.unit.answers.test_answers import twilio_report

    table = staff.messages._table
    marked = sum(1 for item in table.scan()["Items"] if "unpointed" in item)
    reports = [twilio_report(sid, "delivered", at=datetime.now(UTC)) for sid in provider_ids.values()]
    send_records(world, "answers", [envelope(report) for report in reports])
    outcome = drain(world, "answers")
    bus_events(world)  # the delivered statuses: read from the answers themselves below

    def threaded(message: dict[str, Any]) -> bool:
        sid = detail_of(message["Body"])["attributes"]["MessageSid"]
        message_id = staff.messages.by_provider_id("twilio", sid)
        record = staff.messages.get(message_id) if message_id else None
        return record is not None and record.state == "delivered"

    moved = sum(1 for message in outcome.done if threaded(message))
    row.attempts += outcome.invocations
    row.lost += len(outcome.done) - moved + max(0, len(reports) - len(outcome.done) - len(outcome.dead))
    row.notes.append(
        f"{len(reports)} delivery reports: {moved} threaded, {len(outcome.dead)} in DLQ; "
        f"{marked} answers still without their pointer after the sends (found by their mark)"
    )


@scenario("hubspot_threads")
def hubspot_threads(requests: int, rate: float, seed: int) -> Row:
    from infra.local.provider_apis import hubspot_inbound_message
    from switchboard_core import aws
    from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
    from tests.unit.hubspot_threads.test_hubspot_threads import CONNECTION, OUTBOUND, THREAD, webhook

    row = Row("hubspot_threads", "sqs", requests=requests)
    sandbox = _Sandbox()
    sandbox.apis.accept("hubspot", OUTBOUND)
    try:
        with fault_world(rate, seed, sandbox.env) as world:
            now = datetime.now(UTC)
            ConnectionStore(aws.resource("dynamodb").Table(world.names.table("connections"))).put(
                Connection(id=CONNECTION, provider="hubspot", tenant="acme", created_at=now, outbound_configured_at=now)
            )
            CredentialStore(aws.client("secretsmanager"), topology.outbound_secrets_prefix("test")).create(
                CONNECTION, OUTBOUND, "acme"
            )
            for n in range(requests):
                sandbox.apis.add_hubspot_message(
                    hubspot_inbound_message(THREAD, f"hubspot {n}", message_id=f"msg{n:08d}", email="ada@example.com")
                )
            send_records(world, "hubspot_threads", [envelope(webhook(f"msg{n:08d}")) for n in range(requests)])
            outcome = drain(world, "hubspot_threads")
            texts = Counter(e["detail"]["text"] for e in bus_events(world) if e["source"] == "switchboard.hubspot")

            def published(message: dict[str, Any]) -> bool:
                n = int(detail_of(message["Body"])["attributes"]["messageId"].removeprefix("msg"))
                return texts[f"hubspot {n}"] > 0

            reconcile_queue(row, outcome, published)
    finally:
        sandbox.stop()
    return _finish(row, world)


# --- escalation (schedule) ---

SCHEDULED_RUNS = 6  # runs of the schedule after the conversations fell due (one a minute)


@scenario("escalation")
def escalation(requests: int, rate: float, seed: int) -> Row:
    """Conversations past their SLA; the schedule runs the function once a minute (a failed run
    is simply followed by the next): each must get its routing.escalated, once per run at most."""
    from switchboard_core import aws
    from switchboard_core.events import CanonicalEvent, Channel, EventDraft
    from switchboard_core.routing.conversations import ConversationStore
    from switchboard_core.routing.sensing import Sensed

    row = Row("escalation", "schedule", requests=requests)
    with fault_world(rate, seed) as world:
        store = ConversationStore(aws.resource("dynamodb").Table(world.names.table("conversations")))
        now = datetime.now(UTC)
        due: set[str] = set()
        for n in range(requests):
            event = CanonicalEvent.from_draft(
                EventDraft(type="message.received", provider_event_id=f"esc{n}"),
                provider="twilio",
                connection="con_1",
                tenant="acme",
                channel=Channel.TELEPHONY,
                received_at=now - timedelta(hours=1),
                raw_ref=None,
            )
            conversation = store.thread(event, f"ct_{n}", now - timedelta(hours=1)).conversation
            store.record_routing(
                conversation.id,
                tenant="acme",
                sensed=Sensed(),
                decision=None,
                assignment=None,
                sla_due_at=now - timedelta(minutes=5),
            )
            due.add(conversation.id)
        succeeded = 0
        for _ in range(SCHEDULED_RUNS):
            _, error = invoke(world, "escalation", {"version": "0", "detail-type": "Scheduled Event"})
            row.attempts += 1
            succeeded += error is None
        row.acknowledged = requests  # due: the schedule owes each one its escalation
        escalated = Counter(
            e["detail"]["attributes"]["conversation"]
            for e in bus_events(world)
            if e["detail-type"] == "routing.escalated"
        )
        row.delivered = sum(1 for conversation in due if escalated[conversation])
        row.lost = requests - row.delivered
        copies = sum(count - 1 for count in escalated.values() if count > 1)
        row.notes.append(f"{succeeded} of {row.attempts} runs succeeded; {copies} escalations published twice")
    return _finish(row, world)


# --- authorizer (API Gateway) ---


@scenario("authorizer")
def authorizer(requests: int, rate: float, seed: int) -> Row:
    """Admin requests with valid, revoked and unknown keys: a fault is API Gateway's 500 (the client
    retries); an answer must be right: a valid key never refused, a revoked or unknown one never let in."""
    from switchboard_core import aws
    from switchboard_core.principals import ApiKeyStore, Role

    row = Row("authorizer", "api", requests=requests)
    with fault_world(rate, seed) as world:
        keys = ApiKeyStore(aws.resource("dynamodb").Table(world.names.table("api_keys")))
        now = datetime.now(UTC)
        valid, _ = keys.create(tenant="acme", name="ops", role=Role.ADMIN, now=now)
        revoked, record = keys.create(tenant="acme", name="old", role=Role.ADMIN, now=now)
        keys.revoke(record.key_id, now)
        wrong = 0
        for n in range(requests):
            key, allowed = ((valid, True), (revoked, False), ("sbk_" + "x" * 40, False))[n % 3]
            event = {
                "version": "2.0",
                "type": "REQUEST",
                "routeArn": "arn:aws:execute-api:us-east-1:123456789012:api/$default/GET/admin/connections",
                "identitySource": [f"Bearer {key}"],
                "routeKey": "ANY /admin/{proxy+}",
                "rawPath": "/admin/connections",
                "rawQueryString": "",
                "headers": {"authorization": f"Bearer {key}"},
                "requestContext": {"http": {"method": "GET", "path": "/admin/connections"}},
            }
            outcome = call_api(world, "authorizer", partial(copy.deepcopy, event))
            row.attempts += outcome.attempts
            if outcome.acknowledged:
                row.acknowledged += 1
                if outcome.answer.get("isAuthorized") is allowed:
                    row.delivered += 1
                else:
                    wrong += 1
            else:
                row.unacknowledged += 1
        row.lost = wrong
        row.notes.append(f"{wrong} wrong answers (a valid key refused or a bad one allowed)")
    return _finish(row, world)


# --- console (API Gateway, static files) ---


@scenario("console")
def console(requests: int, rate: float, seed: int) -> Row:
    """The console's pages: it makes no AWS call, so faults cannot reach it; every answer must be
    the file asked for, byte for byte (the injector's count of calls shows it stayed at 0)."""
    from functions.console import handler as console_function

    row = Row("console", "api", requests=requests)
    paths = ("/console", "/console/console.css", "/console/js/app.js", "/console/js/pages/events.js")
    with fault_world(rate, seed) as world:
        wrong = 0
        for n in range(requests):
            path = paths[n % len(paths)]
            event = {"version": "2.0", "rawPath": path, "requestContext": {"http": {"method": "GET", "path": path}}}
            outcome = call_api(world, "console", partial(copy.deepcopy, event))
            row.attempts += outcome.attempts
            if not outcome.acknowledged:
                row.unacknowledged += 1
                continue
            row.acknowledged += 1
            expected = console_function.read_asset(console_function.asset_path(path) or "")
            if expected is not None and outcome.answer["body"].encode() == expected:
                row.delivered += 1
            else:
                wrong += 1
        row.lost = wrong
        row.notes.append(f"{wrong} wrong answers (not the file asked for)")
    return _finish(row, world)


# --- admin (API Gateway) ---


@scenario("admin")
def admin(requests: int, rate: float, seed: int) -> Row:
    """Connections created through the admin API: every 201 must have stored the connection and
    its credentials (a client that got a 5xx retries; a retried create may make a second one)."""
    from switchboard_core import aws
    from switchboard_core.connections import ConnectionStore, CredentialStore
    from tests.unit.admin.conftest import admin_event

    principal = {"key_id": "k1", "tenant": "acme", "name": "ops", "role": "admin"}
    row = Row("admin", "api", requests=requests)
    with fault_world(rate, seed) as world:
        created: list[str] = []
        for n in range(requests):
            body = json.dumps(
                {"provider": "twilio", "tenant": "acme", "name": f"line {n}", "credentials": {"auth_token": "a" * 32}}
            )
            outcome = call_api(
                world, "admin", partial(admin_event, "POST", "/admin/connections", body=body, principal=principal)
            )
            row.attempts += outcome.attempts
            if outcome.acknowledged:
                row.acknowledged += 1
                created.append(json.loads(outcome.answer["body"])["id"])
            else:
                row.unacknowledged += 1
        connections = ConnectionStore(aws.resource("dynamodb").Table(world.names.table("connections")))
        credentials = CredentialStore(aws.client("secretsmanager"), topology.secrets_prefix("test"), max_age_seconds=0)
        for connection_id in created:
            try:
                connections.get(connection_id)
                credentials.get(connection_id)
            except Exception:  # noqa: BLE001 - missing either half is a loss
                continue
            row.delivered += 1
        row.lost = row.acknowledged - row.delivered
    return _finish(row, world)


@scenario("notifications")
def notifications(requests: int, rate: float, seed: int) -> Row:
    """routing.assigned events for a responder reachable by SMS; the rate limit raised so each is
    sent on its own (digests are the scheduled run's): each done record sent once and published."""
    from switchboard_core import aws
    from switchboard_core.routing.assignment import Responder
    from switchboard_core.routing.config_store import RoutingConfigStore
    from switchboard_core.routing.contact_points import ContactPoint
    from tests.unit.notifications.test_notifications import DRIVER_PHONE, routing_event

    policy = {**topology.notification_policy(), "rate_limit": 1_000_000}
    row = Row("notifications", "sqs", requests=requests)
    sandbox = _Sandbox()
    try:
        env = {**sandbox.env, topology.NOTIFICATION_POLICY_ENV: json.dumps(policy)}
        with fault_world(rate, seed, env) as world:
            sandbox.connect(world)
            RoutingConfigStore(aws.resource("dynamodb").Table(world.names.table("routing"))).put_responder(
                Responder(
                    id="driver-1",
                    tenant="acme",
                    name="Dana",
                    contact_points=[ContactPoint(channel="sms", to=DRIVER_PHONE)],
                )
            )
            events = [routing_event(n, text=f"tow request {n}") for n in range(requests)]
            send_records(world, "notifications", [envelope(e) for e in events])
            outcome = drain(world, "notifications", advance=lambda: _age_claims(world, "notifications", 360))
            published = [e["detail"] for e in bus_events(world) if e["source"] == "switchboard.notifications"]
            outcomes = {d["attributes"].get("trigger_event"): d["type"] for d in published}
            sends = Counter(
                found.group(1) for m in sandbox.apis.messages if (found := re.search(r"tow request (\d+)", m.text))
            )

            def notified(message: dict[str, Any]) -> bool:
                detail = detail_of(message["Body"])
                n = detail["conversation_key"].removeprefix("cv_")
                kind = outcomes.get(detail["id"])
                return (kind == "notification.sent" and sends[n] > 0) or kind == "notification.failed"

            reconcile_queue(row, outcome, notified)
            record_sends(row, sends, outcome)
    finally:
        sandbox.stop()
    return _finish(row, world)


@scenario("calls")
def calls(requests: int, rate: float, seed: int) -> Row:
    """Live calls assigned to a responder: each done record has its call put through (a Twilio call
    update) and call.patched published; an update sent twice is a duplicate to the provider."""
    from switchboard_core import aws
    from switchboard_core.routing.config_store import RoutingConfigStore
    from tests.unit.calls.test_calls import BUSINESS, CALLER, NEUMUENSTER, assigned, responder

    row = Row("calls", "sqs", requests=requests)
    sandbox = _Sandbox()
    try:
        with fault_world(rate, seed, sandbox.env) as world:
            sandbox.connect(world)
            world.functions.set_public_base_url("https://hub.example.com")
            RoutingConfigStore(aws.resource("dynamodb").Table(world.names.table("routing"))).put_responder(
                responder("kiel", 54.3233, 10.1228, "+494310001")
            )
            sids = [f"CA{n:032x}" for n in range(requests)]
            events = [
                assigned(
                    n=n,
                    call={"provider": "twilio", "sid": sid, "from": CALLER, "to": BUSINESS, "location": NEUMUENSTER},
                )
                for n, sid in enumerate(sids)
            ]
            send_records(world, "calls", [envelope(e) for e in events])
            outcome = drain(world, "calls")
            published = [e["detail"] for e in bus_events(world) if e["source"] == "switchboard.calls"]
            outcomes = Counter(d["attributes"].get("call_sid") for d in published if d["type"] == "call.patched")
            updates = Counter(update.call_sid for update in sandbox.apis.call_updates)

            def put_through(message: dict[str, Any]) -> bool:
                sid = detail_of(message["Body"])["attributes"]["call"]["sid"]
                return outcomes[sid] > 0 and updates[sid] > 0

            reconcile_queue(row, outcome, put_through)
            record_sends(row, updates, outcome)
            other = Counter(d["type"] for d in published if d["type"] != "call.patched")
            if other:
                row.notes.append(f"also published: {dict(other)}")
    finally:
        sandbox.stop()
    return _finish(row, world)


CAMPAIGN_FLOW = {
    "start": "text",
    "steps": {
        "text": {"type": "send_message", "channel": "sms", "text": "Hi, campaign message", "next": "done"},
        "done": {"type": "end"},
    },
}


@scenario("campaigns")
def campaigns(requests: int, rate: float, seed: int) -> Row:
    """Start requests of a published one-step campaign, one per contact: each done record has its
    run started, stepped and completed on the bus."""
    from switchboard_core import aws
    from switchboard_core.campaigns.flow import Flow
    from switchboard_core.campaigns.models import Campaign, CampaignVersion
    from switchboard_core.campaigns.store import CampaignStore
    from switchboard_core.campaigns.work import StartRequest
    from switchboard_core.routing.contacts import ContactStore, Identity
    from tests.unit.campaigns.runner_world import ANA
    from tests.zones import DAYTIME, zone_where

    row = Row("campaigns", "sqs", requests=requests)
    sandbox = _Sandbox()
    try:
        with fault_world(rate, seed, {**sandbox.env, "PUBLIC_BASE_URL": "https://hub.example"}) as world:
            sandbox.connect(world)
            now = datetime.now(UTC)
            store = CampaignStore(aws.resource("dynamodb").Table(world.names.table("campaigns")))
            store.create(
                Campaign(
                    id="cmp_1", tenant="acme", name="hello", owner=ANA, created_at=now, updated_at=now, latest_version=1
                ),
                CampaignVersion(
                    campaign="cmp_1", version=1, flow=Flow.model_validate(CAMPAIGN_FLOW), saved_at=now, saved_by=ANA
                ),
            )
            store.publish("cmp_1", 1, ANA, now)
            contacts = ContactStore(aws.resource("dynamodb").Table(world.names.table("contacts")))
            phones = [f"+1555000{n:04d}" for n in range(requests)]
            # In a zone where it is daytime now: quiet hours would postpone every send at night.
            daytime = zone_where(DAYTIME)
            for phone in phones:
                record = contacts.resolve("acme", [Identity(kind="phone", value=phone)], reason="test", now=now)
                contacts.update_attributes(record.id, {"timezone": daytime}, now)
            bodies = [
                StartRequest(
                    tenant="acme", campaign="cmp_1", version=1, contact=phone, request=f"req_{n}"
                ).model_dump_json()
                for n, phone in enumerate(phones)
            ]
            send_records(world, "campaigns", bodies)
            outcome = drain(world, "campaigns", advance=lambda: _age_claims(world, "campaign_runs", 120))
            published = [e["detail"] for e in bus_events(world) if e["source"] == "switchboard.campaigns"]
            runs = Counter(d["contact"]["phone"] for d in published if d["type"] == "campaign.run_completed")
            # A run that completes has started, sent its step and ended: its end is on the bus.
            reconcile_queue(row, outcome, lambda m: runs[json.loads(m["Body"])["contact"]] > 0)
            copies = Counter(d["id"] for d in published)
            row.notes.append(
                f"{sum(c - 1 for c in copies.values())} campaign events on the bus twice (at-least-once); "
                "the step's provider send is not exercised (requested without a conversation's channel)"
            )
    finally:
        sandbox.stop()
    return _finish(row, world)
