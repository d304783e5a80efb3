"""Partner subscriptions end to end on the local runtime, with real receivers on loopback.

Each receiver verifies every delivery with the public `standardwebhooks` library, as a
partner would. The integration hub runs the delivery machinery on a fast clock
(FAST_DELIVERY_POLICY in conftest.py: the same schedule's shape in seconds), so retries,
time-outs and recovery happen within a test."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.integration.conftest import wait_for
from tests.integration.test_routing_stories import post_twilio_sms

pytestmark = pytest.mark.integration

Behaviour = Callable[[int], tuple[int, float]]  # request number (1-based) -> (status, seconds to stall first)


def always_ok(_: int) -> tuple[int, float]:
    return 204, 0.0


class Receiver:
    """A partner's endpoint: verifies signatures, answers per `behaviour`, records what it accepted."""

    def __init__(self, behaviour: Behaviour = always_ok, port: int = 0) -> None:
        self.behaviour = behaviour
        self.secret: str | None = None
        self.requests = 0
        self.accepted: list[dict[str, Any]] = []  # verified deliveries it answered 2xx
        self.rejected_signatures = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.requests += 1
                    number = receiver.requests
                status, stall = receiver.behaviour(number)
                if stall:
                    time.sleep(stall)
                try:
                    payload = Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                except WebhookVerificationError:
                    with receiver._lock:
                        receiver.rejected_signatures += 1
                    status = 401
                else:
                    if 200 <= status < 300:
                        with receiver._lock:
                            receiver.accepted.append(
                                {
                                    "id": self.headers["webhook-id"],
                                    "headers": dict(self.headers.items()),
                                    "raw": body,
                                    **payload,
                                }
                            )
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the hub gave up waiting (a stalled answer): nothing to answer
                    pass

            def log_message(self, *args: Any) -> None:
                return

        self._handler = Handler
        self.port = port or free_port()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def ids(self) -> Counter[str]:
        return Counter(delivery["id"] for delivery in self.accepted)

    def texts(self) -> list[str]:
        return [delivery["data"]["text"] for delivery in self.accepted]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def world(hub):
    """Two tenants, each with a Twilio connection and a partner key; a second partner in demo."""
    from switchboard_core import aws
    from switchboard_core.principals import ApiKeyStore, Role

    keys = ApiKeyStore(aws.resource("dynamodb").Table(hub.runtime.names.table("api_keys")))
    now = datetime.now(UTC)
    operator, _ = keys.create(tenant="*", name="operator", role=Role.ADMIN, now=now)
    token = secrets.token_hex(16)
    status, _, other = hub.request(
        "POST",
        "/admin/connections",
        {"provider": "twilio", "tenant": "acme", "credentials": {"auth_token": token}},
        key=operator,
    )
    assert status == 201, other
    world = {
        "hub": hub,
        "partner": keys.create(tenant="demo", name="partner-a", role=Role.PARTNER, now=now)[0],
        "second_partner": keys.create(tenant="demo", name="partner-b", role=Role.PARTNER, now=now)[0],
        "acme_partner": keys.create(tenant="acme", name="partner-acme", role=Role.PARTNER, now=now)[0],
        "staff": keys.create(tenant="demo", name="staff", role=Role.STAFF, now=now)[0],
        "demo_twilio": (hub.webhook_url("twilio"), hub.connection("twilio")["credentials"]["auth_token"]),
        "acme_twilio": (other["webhook_url"], token),
    }
    return world


def send_sms(hub, connection: tuple[str, str], text: str) -> None:
    post_twilio_sms(hub, "+14155550176", text, connection=connection)


def subscribe(hub, key: str, receiver: Receiver, pattern: dict[str, Any], **extra: Any) -> dict[str, Any]:
    status, _, created = hub.request(
        "POST", "/admin/subscriptions", {"url": receiver.url, "event_pattern": pattern, **extra}, key=key
    )
    assert status == 201, created
    assert created["secret"].startswith("whsec_")
    receiver.secret = created["secret"]
    return created


def orders_pattern(tag: str) -> dict[str, Any]:
    return {"detail-type": ["message.received"], "detail": {"text": [{"prefix": f"{tag} "}]}}


def attempts(hub, key: str, subscription: str) -> list[dict[str, Any]]:
    status, _, page = hub.request("GET", f"/admin/subscriptions/{subscription}/deliveries", key=key)
    assert status == 200, page
    return page["attempts"]


def settle(seconds: float = 3.0) -> None:
    """Time for anything that should not arrive (a duplicate, another tenant's event) to show up."""
    time.sleep(seconds)


def test_a_verifying_receiver_gets_each_matching_event_once_and_nothing_else(world):
    hub = world["hub"]
    demo_receiver, acme_receiver = Receiver().start(), Receiver().start()
    try:
        # The same pattern in both tenants: only the tenant the hub ANDs in tells them apart.
        subscribe(hub, world["partner"], demo_receiver, orders_pattern("ORDER"))
        subscribe(hub, world["acme_partner"], acme_receiver, orders_pattern("ORDER"))
        for n in range(5):
            send_sms(hub, world["demo_twilio"], f"ORDER demo-{n}")
            send_sms(hub, world["acme_twilio"], f"ORDER acme-{n}")
        send_sms(hub, world["demo_twilio"], "hello, no order here")  # does not match the prefix
        send_sms(hub, world["demo_twilio"], "ORDERS are not an ORDER")  # "ORDERS" lacks the space

        assert wait_for(lambda: len(demo_receiver.accepted) >= 5 and len(acme_receiver.accepted) >= 5, timeout=40)
        settle()
        assert sorted(demo_receiver.texts()) == [f"ORDER demo-{n}" for n in range(5)]
        assert sorted(acme_receiver.texts()) == [f"ORDER acme-{n}" for n in range(5)]
        assert set(demo_receiver.ids().values()) == {1} and set(acme_receiver.ids().values()) == {1}
        assert demo_receiver.rejected_signatures == acme_receiver.rejected_signatures == 0
        for delivery in demo_receiver.accepted:
            assert delivery["type"] == "message.received"
            assert delivery["id"] == delivery["data"]["id"]  # webhook-id is the canonical event id
            assert delivery["data"]["tenant"] == "demo"
            assert delivery["timestamp"] == delivery["data"]["received_at"]
    finally:
        demo_receiver.stop()
        acme_receiver.stop()


# The three events reach the receiver this long after the outage at most, on a loaded 2-core
# machine (the test returns as soon as they are in). Waiting copies now re-check a probe after
# timeout + 5 s, but 75 s was too short once in a fresh-clone CI (ci10, the 503 case): kept at 150 s
# until the worst case is measured.
RECOVERY_SECONDS = 150


@pytest.mark.parametrize("outage", ["503", "timeout", "refused"])
def test_a_receiver_that_fails_for_a_while_gets_every_event_after_it_recovers(world, outage):
    hub = world["hub"]
    tag = f"OUTAGE-{outage}"

    def failing_first(limit: int, status: int, stall: float) -> Behaviour:
        return lambda number: (status, stall) if number <= limit else (200, 0.0)

    if outage == "503":
        receiver = Receiver(failing_first(6, 503, 0.0)).start()
    elif outage == "timeout":  # stalls past the hub's (fast policy) time-out
        receiver = Receiver(failing_first(3, 200, 2.5)).start()
    else:  # nothing listens on the port until later
        receiver = Receiver()
    try:
        subscription = subscribe(hub, world["partner"], receiver, orders_pattern(tag))
        started = time.monotonic()
        for n in range(3):
            send_sms(hub, world["demo_twilio"], f"{tag} {n}")
        if outage == "refused":
            wait_for(lambda: any(a.get("error") for a in attempts(hub, world["partner"], subscription["id"])), 20)
            receiver.start()
        # Deliveries run concurrently (as on AWS): when the breaker half-opens, one copy probes and
        # the others look again once the probe's send is over (the fast policy's timeout + 5 s),
        # so after a successful probe they send within seconds, not after the probe's window.
        assert wait_for(lambda: len(set(receiver.texts())) >= 3, timeout=RECOVERY_SECONDS), attempts(
            hub, world["partner"], subscription["id"]
        )
        print(f"partner recovery ({outage}): every event {time.monotonic() - started:.1f} s after the first send")
        settle()
        assert sorted(set(receiver.texts())) == [f"{tag} {n}" for n in range(3)]
        if outage != "timeout":  # a stalled answer the hub gave up on may still have been accepted
            assert set(receiver.ids().values()) == {1}
        log = attempts(hub, world["partner"], subscription["id"])
        failed = [a for a in log if a["outcome"] == "retry"]
        assert failed, log
        if outage == "503":
            assert {a["status_code"] for a in failed} == {503}
        else:
            assert all(a["status_code"] is None and a["error"] for a in failed), failed
        delivered = [a for a in log if a["outcome"] == "delivered"]
        assert {a["event_id"] for a in delivered} == set(receiver.ids())
        for attempt in log:  # what the contract promises for each attempt
            assert {"event_id", "at", "status_code", "error", "latency_ms", "response_excerpt", "attempt"} <= set(
                attempt
            ), attempt
            assert "next_attempt_at" in attempt
        assert max(a["attempt"] for a in log) >= 2
    finally:
        receiver.stop()


def test_gone_disables_the_subscription_and_tells_the_tenant(world):
    hub = world["hub"]
    receiver = Receiver(lambda _: (410, 0.0)).start()
    try:
        subscription = subscribe(hub, world["partner"], receiver, orders_pattern("GONE"))
        send_sms(hub, world["demo_twilio"], "GONE 1")

        def status() -> str:
            _, _, current = hub.request("GET", f"/admin/subscriptions/{subscription['id']}", key=world["partner"])
            return current["status"]

        assert wait_for(lambda: status() == "disabled", timeout=30)
        assert "secret" not in hub.request("GET", f"/admin/subscriptions/{subscription['id']}", key=world["partner"])[2]
        [attempt] = attempts(hub, world["partner"], subscription["id"])
        assert attempt["status_code"] == 410 and attempt["outcome"] == "disabled"
        told = wait_for(
            lambda: [
                e
                for e in hub.logged_events(type="subscription.disabled")
                if e["attributes"].get("subscription") == subscription["id"]
            ],
            timeout=20,
        )
        assert told and told[0]["tenant"] == "demo"
        # Events that arrive while it is disabled are kept and sent when it is resumed.
        send_sms(hub, world["demo_twilio"], "GONE 2")
        settle()
        assert receiver.requests == 1
        receiver.behaviour = always_ok
        status_code, _, resumed = hub.request(
            "POST", f"/admin/subscriptions/{subscription['id']}/resume", key=world["partner"]
        )
        assert status_code == 200 and resumed["status"] == "active", resumed
        assert wait_for(lambda: sorted(receiver.texts()) == ["GONE 1", "GONE 2"], timeout=30), receiver.texts()
    finally:
        receiver.stop()


def test_replay_resends_what_matched_and_a_delivery_can_be_retried_by_hand(world):
    hub = world["hub"]
    receiver = Receiver().start()
    try:
        before = datetime.now(UTC)
        send_sms(hub, world["demo_twilio"], "REPLAY 1")  # before the subscription exists: never delivered
        assert wait_for(lambda: [e for e in hub.logged_events(type="message.received") if e["text"] == "REPLAY 1"])
        subscription = subscribe(hub, world["partner"], receiver, orders_pattern("REPLAY"))
        send_sms(hub, world["demo_twilio"], "REPLAY 2")
        assert wait_for(lambda: receiver.texts() == ["REPLAY 2"], timeout=30), receiver.texts()
        assert wait_for(lambda: [e for e in hub.logged_events(type="message.received") if e["text"] == "REPLAY 2"])

        status, _, replay = hub.request(
            "POST",
            f"/admin/subscriptions/{subscription['id']}/replay",
            {"since": before.isoformat(), "until": datetime.now(UTC).isoformat()},
            key=world["partner"],
        )
        assert status == 202, replay
        assert wait_for(lambda: sorted(receiver.texts()) == ["REPLAY 1", "REPLAY 2", "REPLAY 2"], timeout=30)

        event_id = receiver.accepted[0]["id"]
        status, _, retried = hub.request(
            "POST", f"/admin/subscriptions/{subscription['id']}/deliveries/{event_id}/retry", key=world["partner"]
        )
        assert status == 202, retried
        assert wait_for(lambda: receiver.ids()[event_id] == 3, timeout=30), receiver.ids()
    finally:
        receiver.stop()


def test_rotation_signs_with_both_secrets_during_the_grace_period(world):
    hub = world["hub"]
    receiver = Receiver().start()
    try:
        subscription = subscribe(hub, world["partner"], receiver, orders_pattern("ROTATE"))
        old = receiver.secret
        status, _, rotated = hub.request(
            "POST", f"/admin/subscriptions/{subscription['id']}/rotate", key=world["partner"]
        )
        assert status == 200 and rotated["secret"].startswith("whsec_") and rotated["secret"] != old, rotated
        receiver.secret = rotated["secret"]
        send_sms(hub, world["demo_twilio"], "ROTATE 1")
        assert wait_for(lambda: receiver.accepted, timeout=30)
        delivery = receiver.accepted[0]
        assert len(delivery["headers"]["webhook-signature"].split(" ")) == 2
        # A receiver not yet switched to the new secret accepts the same delivery too.
        assert Webhook(old).verify(delivery["raw"], delivery["headers"])["data"]["text"] == "ROTATE 1"
    finally:
        receiver.stop()


def test_partners_see_and_change_only_their_own_subscriptions(world):
    hub = world["hub"]
    receiver = Receiver().start()
    try:
        mine = subscribe(hub, world["partner"], receiver, orders_pattern("MINE"))
        path = f"/admin/subscriptions/{mine['id']}"
        for key in (world["second_partner"], world["acme_partner"]):
            assert hub.request("GET", path, key=key)[0] == 404
            assert hub.request("PATCH", path, {"description": "mine now"}, key=key)[0] == 404
            assert hub.request("POST", f"{path}/pause", key=key)[0] == 404
            assert hub.request("DELETE", path, key=key)[0] == 404
            listed = hub.request("GET", "/admin/subscriptions", key=key)[2]["subscriptions"]
            assert mine["id"] not in [s["id"] for s in listed]
        # A partner names no other tenant and creates no connections.
        status, _, refused = hub.request(
            "POST",
            "/admin/subscriptions",
            {"url": receiver.url, "event_pattern": orders_pattern("X"), "tenant": "acme"},
            key=world["partner"],
        )
        assert status == 403, refused
        status, _, refused = hub.request(
            "POST",
            "/admin/connections",
            {"provider": "twilio", "credentials": {"auth_token": "x" * 32}},
            key=world["partner"],
        )
        assert status == 403, refused
        # Staff of the tenant may look but not change; the tenant's admin may do both.
        assert hub.request("GET", path, key=world["staff"])[0] == 200
        assert hub.request("POST", f"{path}/pause", key=world["staff"])[0] == 403
        status, _, paused = hub.request("POST", f"{path}/pause", key=hub.runtime.admin_key)
        assert status == 200 and paused["status"] == "paused"
        assert hub.request("DELETE", path, key=world["partner"])[0] == 204
        assert hub.request("GET", path, key=world["partner"])[0] == 404
    finally:
        receiver.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.8/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://100.64.0.1/hooks",
        "http://192.168.1.10/hooks",
        "https://203.0.113.10/hooks",  # documentation range, and not loopback: the local runtime sends only here
    ],
)
def test_private_and_metadata_endpoints_are_refused(world, url):
    status, _, refused = world["hub"].request(
        "POST", "/admin/subscriptions", {"url": url, "event_pattern": orders_pattern("SSRF")}, key=world["partner"]
    )
    assert status == 400 and refused["error"]["code"] == "endpoint_refused", refused


def test_a_malformed_pattern_is_refused_naming_the_problem(world):
    status, _, refused = world["hub"].request(
        "POST",
        "/admin/subscriptions",
        {"url": "http://127.0.0.1:9/hooks", "event_pattern": {"detail": {"amount": [{"numeric": [">", "ten"]}]}}},
        key=world["partner"],
    )
    assert status == 400, refused
    fields = [p["field"] for p in refused["error"]["details"]["problems"]]
    assert fields == ["event_pattern.detail.amount[0].numeric"], refused
