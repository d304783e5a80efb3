"""The delivery function's world: moto (the subscriptions table, Secrets Manager, the bus),
partner endpoints as real HTTP servers on loopback, a clock the test moves."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from functions.delivery.logic import DeliveryDeps, SigningKeys
from infra import topology
from switchboard_core import aws
from switchboard_core.bus import EventPublisher
from switchboard_core.events import CanonicalEvent, Channel, Contact, EventDraft
from switchboard_core.subscriptions.deliveries import DeliveryWriter
from switchboard_core.subscriptions.models import DeliveryMessage, Subscription
from switchboard_core.subscriptions.policy import DeliveryPolicy
from switchboard_core.subscriptions.secrets import SigningSecretStore
from switchboard_core.subscriptions.sender import post
from switchboard_core.subscriptions.signing import SigningSecrets, new_secret
from switchboard_core.subscriptions.store import SubscriptionStore

# The topology's shape on a short schedule, without jitter (the waits are then exact). The send
# timeout is long enough for a loopback receiver on a loaded machine (0.5 s once timed out a
# delivery in CI); the timeout's own test shortens it.
FAST_POLICY = DeliveryPolicy(
    retry_schedule_seconds=(0, 5, 60, 300),
    retry_jitter=0,
    timeout_seconds=5,
    failing_after_seconds=24 * 3600,
    disabled_after_seconds=5 * 24 * 3600,
    breaker_failure_threshold=5,
    breaker_cooldown_seconds=30,
    breaker_max_cooldown_seconds=3600,
    rotation_grace_seconds=24 * 3600,
    attempts_ttl_seconds=3600,
)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0


class Receiver:
    """A partner endpoint: records every request, answers what the test queued (then 200)."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[Received] = []
        self.answers: deque[Answer] = deque()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                answer = receiver.answers.popleft() if receiver.answers else Answer()
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/switchboard?k=1"

    def answer(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"


class Clock:
    def __init__(self) -> None:
        # Near the real time: standardwebhooks refuses timestamps more than 5 minutes off.
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    deps: DeliveryDeps
    clock: Clock
    subscriptions: SubscriptionStore
    log: DeliveryWriter
    secrets: SigningSecretStore
    woken: list[str]
    aws_world: Any

    def subscribe(self, url: str, *, ordered: bool = False, tenant: str = "acme", sub_id: str = "sub_1") -> str:
        """Store a subscription and its signing secret; returns the secret."""
        now = self.clock()
        self.subscriptions.create(
            Subscription(
                id=sub_id,
                tenant=tenant,
                owner="key_partner",
                url=url,
                event_pattern={"source": [{"prefix": "switchboard."}]},
                ordered=ordered,
                created_at=now,
                updated_at=now,
            )
        )
        secret = new_secret()
        self.secrets.create(sub_id, SigningSecrets(current=secret))
        return secret

    def change(self, sub_id: str = "sub_1", **update: Any) -> Subscription:
        current = self.subscriptions.get(sub_id)
        assert current is not None
        changed = current.model_copy(update={**update, "version": current.version + 1})
        assert self.subscriptions.save(changed, expected_version=current.version)
        return changed

    def subscription(self, sub_id: str = "sub_1") -> Subscription:
        found = self.subscriptions.get(sub_id)
        assert found is not None
        return found

    def published(self) -> list[dict[str, Any]]:
        return [e for e in self.aws_world.bus.events() if e["source"] == "switchboard.delivery"]


def canonical(n: int, *, tenant: str = "acme", conversation: str | None = None, at: datetime | None = None):
    attributes = {"conversation": conversation} if conversation else {}
    return CanonicalEvent.from_draft(
        EventDraft(
            type="message.received",
            provider_event_id=f"SM{n:032d}",
            text=f"message {n}",
            contact=Contact(phone="+14155550100"),
            attributes=attributes,
        ),
        provider="twilio",
        connection="con_twilio",
        tenant=tenant,
        channel=Channel.TELEPHONY,
        received_at=at or datetime(2026, 12, 1, 12, 0, n % 60, tzinfo=UTC),
        raw_ref=None,
    )


def message(
    event: CanonicalEvent, *, sub_id: str = "sub_1", trigger: str | None = None, replay: str | None = None
) -> DeliveryMessage:
    envelope: dict[str, Any] = {
        "version": "0",
        "id": "eb-" + event.id,
        "detail-type": event.type,
        "source": event.source,
        "time": event.received_at.isoformat(),
        "detail": json.loads(event.model_dump_json()),
    }
    if replay:
        envelope["replay-name"] = replay
    body: dict[str, Any] = {"subscription": sub_id, "event": envelope}
    if trigger:
        body["trigger"] = trigger
    return DeliveryMessage.model_validate(body)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def world(aws_world) -> World:
    table = aws.resource("dynamodb").Table(aws_world.names.table("subscriptions"))
    secrets = SigningSecretStore(aws.client("secretsmanager"), topology.subscription_secrets_prefix("test"))
    clock = Clock()
    woken: list[str] = []
    deps = DeliveryDeps(
        subscriptions=SubscriptionStore(table),
        log=DeliveryWriter(table),
        keys=SigningKeys(secrets),
        send=post,
        publish=EventPublisher(aws.client("events"), aws_world.names.bus).publish,
        policy=FAST_POLICY,
        local_endpoints=True,
        wake=woken.append,
        clock=clock,
        rand=lambda: 0.5,
    )
    return World(deps, clock, deps.subscriptions, deps.log, secrets, woken, aws_world)
