"""The notifications function's logic against moto (tables, Secrets Manager, SES) with the
provider transport passed in: recipients, preferences, templates, rate limit and digest,
once-only sends, and each channel's success and failure."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, time, timedelta
from urllib.parse import parse_qs

import pytest

from functions.notifications.channels import ChannelDeps
from functions.notifications.ledger import NotificationLedger
from functions.notifications.logic import (
    NotificationDeps,
    NotificationPolicy,
    flush_digests,
    handle,
    is_urgent,
    map_url,
)
from functions.notifications.templates import render
from infra import topology
from switchboard_core import aws
from switchboard_core.connections import Connection, ConnectionStore, CredentialStore
from switchboard_core.endpoints import CheckedEndpoint
from switchboard_core.events import CanonicalEvent, Channel, Contact
from switchboard_core.notification_signing import NotificationSigningKeys
from switchboard_core.outbound import TransientFailure
from switchboard_core.outbound.base import OutboundRequest, ProviderResponse
from switchboard_core.providers.standard_webhooks import sign
from switchboard_core.routing.assignment import Responder, Team
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.contact_points import ContactPoint, NotificationPreferences, QuietHours
from switchboard_core.subscriptions.sender import SendResult
from switchboard_core.subscriptions.signing import SigningSecrets
from tests.builders import canonical_event

NOW = datetime(2026, 11, 23, 12, 1, tzinfo=UTC)
TWILIO = {"account_sid": "AC" + "1" * 32, "auth_token": "t" * 32}
SLACK = {"bot_token": "xoxb-" + "1" * 24}
FROM = "notifications@example.com"
DRIVER_PHONE = "+14155550101"
CUSTOMER = "+14155550178"


class FakeProviders:
    """The transport: records each request, answers what the test queued (default: success)."""

    def __init__(self) -> None:
        self.requests: list[OutboundRequest] = []
        self.answers: list[ProviderResponse] = []

    def __call__(self, request: OutboundRequest) -> ProviderResponse:
        self.requests.append(request)
        if self.answers:
            return self.answers.pop(0)
        if "slack" in request.url or "chat.postMessage" in request.url:
            return ProviderResponse(status=200, body=json.dumps({"ok": True, "ts": "1700000000.000100"}).encode())
        return ProviderResponse(status=201, body=json.dumps({"sid": "SM" + secrets.token_hex(16)}).encode())

    def sms(self) -> list[dict[str, str]]:
        return [{k: v[0] for k, v in parse_qs(r.body.decode()).items()} for r in self.requests if "Messages" in r.url]

    def slack(self) -> list[dict]:
        return [json.loads(r.body) for r in self.requests if "chat.postMessage" in r.url]


class FakeWebhook:
    def __init__(self) -> None:
        self.posts: list[tuple[CheckedEndpoint, bytes, dict[str, str]]] = []
        self.status = 200

    def __call__(self, endpoint: CheckedEndpoint, body: bytes, headers: dict[str, str], timeout: float) -> SendResult:
        self.posts.append((endpoint, body, headers))
        return SendResult(status_code=self.status, latency_ms=3)


@pytest.fixture
def world(aws_world):
    resource = aws.resource("dynamodb")
    names = aws_world.names
    connections = ConnectionStore(resource.Table(names.table("connections")))
    outbound = CredentialStore(
        aws.client("secretsmanager"), topology.outbound_secrets_prefix("test"), max_age_seconds=0
    )
    for cid, provider, creds in (("con_twilio", "twilio", TWILIO), ("con_slack", "slack", SLACK)):
        connections.put(
            Connection(id=cid, provider=provider, tenant="acme", created_at=NOW, outbound_configured_at=NOW)
        )
        outbound.replace(cid, creds, "acme")
    aws.client("ses").verify_email_identity(EmailAddress=FROM)
    config = RoutingConfigStore(resource.Table(names.table("routing")))
    config.put_team(
        "acme",
        Team(name="field", contact_points=[ContactPoint(channel="sms", to="+14155550999")]),
    )
    config.put_team("acme", Team(name="quiet"))
    config.put_responder(
        Responder(
            id="driver-1",
            tenant="acme",
            name="Dana",
            teams=["field"],
            contact_points=[ContactPoint(channel="sms", to=DRIVER_PHONE)],
        )
    )
    transport, webhook = FakeProviders(), FakeWebhook()
    keys = NotificationSigningKeys(aws.client("secretsmanager"), topology.notification_secrets_prefix("test"))
    deps = NotificationDeps(
        config=config,
        ledger=NotificationLedger(resource.Table(names.table("notifications"))),
        channels=ChannelDeps(
            connections=connections,
            credentials=outbound,
            transport=transport,
            ses=aws.client("sesv2"),
            email_from=FROM,
            sms_from="+15005550006",
            webhook_keys=keys.keys,
            post=webhook,
            resolve=lambda host, port: ["93.184.215.14"],
        ),
        policy=NotificationPolicy(rate_limit=3, window_seconds=300),
    )
    return deps, transport, webhook, config


def routing_event(
    n: int,
    kind: str = "routing.assigned",
    *,
    assignee: str | None = "driver-1",
    queue: str = "field",
    text: str = "My car broke down on the highway, need a tow",
    **extra,
) -> CanonicalEvent:
    attributes = {
        "conversation": f"cv_{n}",
        "queue": queue,
        "assignee": assignee,
        "priority": 3,
        "topics": ["towing"],
        "sentiment": -0.4,
        "urgency": "normal",
        "distance_km": 3.2456,
        "location": {"latitude": 48.8566, "longitude": 2.3522},
        **extra,
    }
    return canonical_event(
        kind,
        f"e{n}:{kind}",
        received_at=NOW,
        provider="routing",
        occurred_at=NOW,
        contact=Contact(phone=CUSTOMER),
        conversation_key=f"cv_{n}",
        text=text,
        attributes=attributes,
    )


# --- recipients and the story ------------------------------------------------------------


def test_assigned_responder_gets_one_sms_with_distance_and_map_link(world) -> None:
    deps, transport, _, _ = world
    outcomes = handle(routing_event(1), deps, NOW)
    [sms] = transport.sms()
    assert sms["To"] == DRIVER_PHONE and sms["From"] == "+15005550006"
    assert "3.2 km away" in sms["Body"]
    assert "https://www.openstreetmap.org/?mlat=48.85660&mlon=2.35220#map=15/48.85660/2.35220" in sms["Body"]
    assert "broke down" in sms["Body"] and CUSTOMER in sms["Body"]
    [sent] = outcomes
    assert sent.type == "notification.sent" and sent.provider == "notifications"
    assert sent.attributes["responder"] == "driver-1"
    assert sent.attributes["channel"] == "sms"
    assert sent.attributes["trigger_event"] == routing_event(1).id
    assert sent.attributes["distance_km"] == 3.2


def test_a_redelivered_trigger_sends_nothing_more(world) -> None:
    deps, transport, _, _ = world
    [first] = handle(routing_event(1), deps, NOW)
    # The redelivery sends nothing; it publishes the stored outcome again (same id: one event in the log).
    assert handle(routing_event(1), deps, NOW + timedelta(seconds=5)) == [first]
    assert len(transport.sms()) == 1


def test_unassigned_reaches_the_teams_on_call_contact(world) -> None:
    deps, transport, _, _ = world
    [sent] = handle(routing_event(2, "routing.unassigned", assignee=None), deps, NOW)
    assert sent.attributes["team"] == "field" and "responder" not in sent.attributes
    [sms] = transport.sms()
    assert sms["To"] == "+14155550999" and sms["Body"].startswith("Unassigned in field")


def test_assigned_without_a_free_responder_reaches_the_team(world) -> None:
    deps, _, _, _ = world
    [sent] = handle(routing_event(3, assignee=None), deps, NOW)
    assert sent.attributes["team"] == "field"


def test_escalation_reaches_the_team_and_the_assignee_as_urgent(world) -> None:
    deps, transport, _, _ = world
    event = routing_event(4, "routing.escalated", overdue_seconds=600)
    outcomes = handle(event, deps, NOW)
    assert sorted(o.attributes.get("responder") or o.attributes.get("team") for o in outcomes) == ["driver-1", "field"]
    bodies = [m["Body"] for m in transport.sms()]
    assert all(b.startswith("ESCALATED (URGENT)") and "SLA passed 10 min ago" in b for b in bodies)


def test_an_escalation_to_a_team_without_contact_points_is_reported(world) -> None:
    deps, transport, _, _ = world
    [failed] = handle(routing_event(5, "routing.escalated", assignee=None, queue="quiet"), deps, NOW)
    assert failed.type == "notification.failed" and failed.attributes["reason"] == "no_contact_point"
    assert failed.attributes["team"] == "quiet" and transport.requests == []


def test_an_assignment_to_someone_without_contact_points_is_not_news(world) -> None:
    deps, transport, _, config = world
    config.put_responder(Responder(id="driver-1", tenant="acme", name="Dana"))
    assert handle(routing_event(5), deps, NOW) == []
    assert handle(routing_event(6, "routing.unassigned", assignee=None, queue="quiet"), deps, NOW) == []
    assert transport.requests == []


def test_other_event_types_are_ignored(world) -> None:
    deps, _, _, _ = world
    assert handle(routing_event(6, "conversation.opened"), deps, NOW) == []


# --- urgency and preferences ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "extra", "urgent"),
    [
        ("routing.assigned", {"urgency": "high"}, True),
        ("routing.assigned", {"urgency": "critical"}, True),
        ("routing.assigned", {"priority": 1}, True),
        ("routing.assigned", {"priority": 2}, True),
        ("routing.assigned", {"priority": 3, "urgency": "normal"}, False),
        ("routing.escalated", {}, True),
    ],
)
def test_urgency_rule(kind, extra, urgent) -> None:
    assert is_urgent(routing_event(7, kind, **extra)) is urgent


def _with_preferences(config: RoutingConfigStore, **preferences) -> None:
    config.put_responder(
        Responder(
            id="driver-1",
            tenant="acme",
            name="Dana",
            teams=["field"],
            contact_points=[
                ContactPoint(channel="sms", to=DRIVER_PHONE),
                ContactPoint(channel="email", to="dana@example.com"),
                ContactPoint(channel="slack", to="U0123ABC", connection="con_slack"),
            ],
            notification_preferences=NotificationPreferences(**preferences),
        )
    )


def test_quiet_hours_hold_back_a_non_urgent_notification_and_say_so(world) -> None:
    deps, transport, _, config = world
    _with_preferences(config, time_zone="Europe/Paris", quiet_hours=QuietHours(start=time(12), end=time(14)))
    [held] = handle(routing_event(8), deps, NOW)  # 13:01 in Paris
    assert held.type == "notification.failed" and held.attributes["reason"] == "quiet_hours"
    assert transport.requests == []
    assert handle(routing_event(8), deps, NOW) == [held]  # said once: the same event again


def test_quiet_hours_let_an_urgent_notification_through(world) -> None:
    deps, transport, _, config = world
    _with_preferences(
        config, channels=["sms"], time_zone="Europe/Paris", quiet_hours=QuietHours(start=time(12), end=time(14))
    )
    [sent] = handle(routing_event(9, urgency="critical"), deps, NOW)
    assert sent.type == "notification.sent" and "(URGENT)" in transport.sms()[0]["Body"]


def test_channels_in_the_preferred_order_only(world) -> None:
    deps, transport, _, config = world
    _with_preferences(config, channels=["slack", "email"])
    outcomes = handle(routing_event(10), deps, NOW)
    assert [o.attributes["channel"] for o in outcomes] == ["slack", "email"]
    assert transport.sms() == []
    [post] = transport.slack()
    assert post["channel"] == "U0123ABC" and "3.2 km" in post["text"]


# --- channels ------------------------------------------------------------------------------


def test_email_goes_through_ses_from_the_configured_identity(world) -> None:
    deps, _, _, config = world
    _with_preferences(config, channels=["email"])
    [sent] = handle(routing_event(11), deps, NOW)
    assert sent.type == "notification.sent" and sent.attributes["channel"] == "email"
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    [message] = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    assert message.source == FROM and message.destinations["ToAddresses"] == ["dana@example.com"]
    assert "Distance: 3.2 km" in message.body and "openstreetmap.org" in message.body
    assert message.subject.startswith("New for you")


def test_email_from_an_unverified_identity_fails_permanently(world) -> None:
    deps, _, _, config = world
    deps.channels.email_from = "someone@unverified.example"
    _with_preferences(config, channels=["email"])
    [failed] = handle(routing_event(12), deps, NOW)
    assert failed.type == "notification.failed" and failed.attributes["reason"] == "ses_MessageRejected"


def test_slack_with_a_refused_token_fails_permanently(world) -> None:
    deps, transport, _, config = world
    _with_preferences(config, channels=["slack"])
    transport.answers.append(ProviderResponse(status=200, body=b'{"ok": false, "error": "invalid_auth"}'))
    [failed] = handle(routing_event(13), deps, NOW)
    assert failed.attributes["reason"] == "slack_invalid_auth"


def test_slack_through_a_twilio_connection_is_refused(world) -> None:
    deps, transport, _, config = world
    config.put_responder(
        Responder(
            id="driver-1",
            tenant="acme",
            name="Dana",
            contact_points=[ContactPoint(channel="slack", to="U0123ABC", connection="con_twilio")],
        )
    )
    [failed] = handle(routing_event(14), deps, NOW)
    assert failed.attributes["reason"] == "wrong_connection" and transport.requests == []


def test_sms_without_an_sms_connection_fails(world) -> None:
    deps, _, _, _ = world
    deps.channels.connections.delete("con_twilio")
    [failed] = handle(routing_event(15), deps, NOW)
    assert failed.attributes["reason"] == "not_configured"


def test_webhook_is_signed_per_standard_webhooks_with_the_tenants_secret(world) -> None:
    deps, _, webhook, config = world
    config.put_responder(
        Responder(
            id="driver-1",
            tenant="acme",
            name="Dana",
            contact_points=[ContactPoint(channel="webhook", to="https://hooks.example.com/dana")],
        )
    )
    [sent] = handle(routing_event(16), deps, NOW)
    assert sent.type == "notification.sent" and sent.attributes["channel"] == "webhook"
    [(endpoint, body, headers)] = webhook.posts
    assert endpoint.addresses == ("93.184.215.14",)
    stored = aws.client("secretsmanager").get_secret_value(SecretId="switchboard/test/notifications/acme")
    key = SigningSecrets.model_validate_json(stored["SecretString"]).signing_keys(NOW)[0]
    assert headers["webhook-signature"] == sign(key, headers["webhook-id"], headers["webhook-timestamp"], body)
    payload = json.loads(body)
    assert payload["trigger_event"] == routing_event(16).id and payload["details"]["distance_km"] == 3.2


def test_webhook_to_a_private_address_is_refused_at_send(world) -> None:
    deps, _, webhook, config = world
    deps.channels.resolve = lambda host, port: ["10.0.0.5"]
    config.put_responder(
        Responder(
            id="driver-1",
            tenant="acme",
            name="Dana",
            contact_points=[ContactPoint(channel="webhook", to="https://internal.example.com/x")],
        )
    )
    [failed] = handle(routing_event(17), deps, NOW)
    assert failed.attributes["reason"] == "endpoint_refused" and webhook.posts == []


# --- failures: retried, then reported ----------------------------------------------------------


def test_a_transient_failure_raises_for_the_queue_and_the_retry_sends_once(world) -> None:
    deps, transport, _, _ = world
    transport.answers.append(ProviderResponse(status=503, body=b"{}"))
    with pytest.raises(TransientFailure):
        handle(routing_event(18), deps, NOW)
    [sent] = handle(routing_event(18), deps, NOW + timedelta(seconds=30))
    assert sent.type == "notification.sent" and len(transport.sms()) == 2  # the failed try, then one delivery


def test_on_the_last_attempt_a_transient_failure_is_reported(world) -> None:
    deps, transport, _, _ = world
    transport.answers.append(ProviderResponse(status=503, body=b"{}"))
    [failed] = handle(routing_event(19), deps, NOW, last_attempt=True)
    assert failed.type == "notification.failed" and failed.attributes["reason"] == "http_503"
    assert "last attempt" in failed.attributes["detail"]


# --- rate limit and digest ---------------------------------------------------------------------


def test_two_hundred_assignments_in_a_minute_become_a_handful_of_messages(world) -> None:
    deps, transport, _, _ = world
    published = []
    for n in range(200):
        published += handle(routing_event(100 + n), deps, NOW + timedelta(seconds=n * 0.3))
    assert len(transport.sms()) == 3 and len(published) == 3
    # Redeliveries of digested triggers add nothing.
    handle(routing_event(150), deps, NOW + timedelta(seconds=59))
    assert flush_digests(deps, NOW + timedelta(minutes=2), lambda events: None) == []  # window not over
    digest = flush_digests(deps, NOW + timedelta(minutes=5), lambda events: None)
    assert [d.type for d in digest] == ["notification.sent"]
    assert digest[0].attributes["digest"] is True and digest[0].attributes["count"] == 197
    assert len(transport.sms()) == 4
    assert transport.sms()[-1]["Body"].startswith("197 more notifications in the last 5 min")
    assert flush_digests(deps, NOW + timedelta(minutes=6), lambda events: None) == []  # sent once


def test_a_digest_that_fails_transiently_waits_for_the_next_run(world) -> None:
    deps, transport, _, _ = world
    for n in range(5):
        handle(routing_event(400 + n), deps, NOW)
    transport.answers.append(ProviderResponse(status=503, body=b"{}"))
    assert flush_digests(deps, NOW + timedelta(minutes=5), lambda events: None) == []
    [sent] = flush_digests(deps, NOW + timedelta(minutes=6), lambda events: None)
    assert sent.attributes["count"] == 2


def test_the_limit_is_per_recipient(world) -> None:
    deps, transport, _, _ = world
    for n in range(4):
        handle(routing_event(500 + n), deps, NOW)
    handle(routing_event(600, "routing.unassigned", assignee=None), deps, NOW)
    assert [m["To"] for m in transport.sms()].count("+14155550999") == 1


# --- templates ---------------------------------------------------------------------------------


def test_templates_are_sandboxed_and_never_evaluate_what_customers_write(world) -> None:
    deps, transport, _, _ = world
    handle(routing_event(700, text="{{ ''.__class__.__mro__ }} {% for x in range(9) %}x{% endfor %}"), deps, NOW)
    assert "{{ ''.__class__.__mro__ }}" in transport.sms()[0]["Body"]


def test_sandbox_refuses_unsafe_attribute_access() -> None:
    from jinja2.exceptions import SecurityError

    from functions.notifications.templates import environment

    with pytest.raises(SecurityError):
        environment().from_string("{{ x.__class__.__subclasses__() }}").render(x=1)


def test_sms_stays_short_and_slack_carries_everything() -> None:
    from functions.notifications.templates import SMS_MAX_CHARS, NotificationView

    view = NotificationView(
        kind="assigned",
        recipient_name="Dana",
        contact="+14155550178",
        message="word " * 200,
        topics=["towing", "breakdown"],
        sentiment=-0.5,
        urgency="high",
        urgent=True,
        distance_km=12.0,
        map_url=map_url(1.0, 2.0),
    )
    _, sms = render("sms", view)
    assert len(sms) <= SMS_MAX_CHARS and "12.0 km away" in sms and map_url(1.0, 2.0) in sms
    _, slack = render("slack", view)
    assert "Topics: towing, breakdown" in slack and "Urgency: high" in slack and "sentiment -0.50" in slack


def test_a_webhook_goes_out_through_the_real_sender_and_verifies_with_the_public_library(world) -> None:
    """The partner-delivery sender (wall-clock deadline, checked address) to a loopback receiver;
    the receiver verifies the Standard Webhooks signature with the `standardwebhooks` package."""
    import http.server
    import threading

    from standardwebhooks import Webhook

    from switchboard_core.subscriptions.sender import post

    received: list[tuple[bytes, dict[str, str]]] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the name http.server calls
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, {k.lower(): v for k, v in self.headers.items()}))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        deps, _, _, config = world
        deps.channels.post = post
        deps.channels.local_endpoints = True
        url = f"http://127.0.0.1:{server.server_port}/dispatch"
        config.put_responder(
            Responder(
                id="driver-1", tenant="acme", name="Dana", contact_points=[ContactPoint(channel="webhook", to=url)]
            )
        )
        [sent] = handle(routing_event(800), deps, NOW)
    finally:
        server.shutdown()
    assert sent.type == "notification.sent"
    [(body, headers)] = received
    stored = aws.client("secretsmanager").get_secret_value(SecretId="switchboard/test/notifications/acme")
    secret = SigningSecrets.model_validate_json(stored["SecretString"]).current
    payload = Webhook(secret).verify(body, headers)
    assert payload["recipient"] == {"responder": "driver-1"} and "3.2 km" in payload["text"]


# --- campaigns' notify steps ---------------------------------------------------------------

CAMPAIGN_TEXT = "Customer said no to the offer: call patched to you now"


def campaign_event(
    key: str = "run_1:notify:1",
    *,
    to: str = "assignee",
    target: str | None = "driver-1",
    text: str = CAMPAIGN_TEXT,
    urgent: bool = False,
    provider: str = "campaigns",
    drop: tuple[str, ...] = (),
    **extra,
) -> CanonicalEvent:
    """A campaign's campaign.notification_requested, as the campaign function publishes it."""
    attributes = {
        "campaign": "cmp_1",
        "campaign_name": "negative-mention",
        "version": 2,
        "run": "run_1",
        "conversation": "cv_9",
        "contact": {"id": "ct_1"},
        "to": to,
        "target": target,
        "text": text,
        "urgent": urgent,
        "idempotency_key": key,
        **extra,
    }
    for name in drop:
        del attributes[name]
    return canonical_event(
        "campaign.notification_requested",
        key,
        received_at=NOW,
        provider=provider,
        connection="campaigns",
        channel=Channel.GENERIC,
        occurred_at=NOW,
        contact=Contact(phone=CUSTOMER),
        conversation_key="cv_9",
        attributes=attributes,
    )


def test_a_campaign_notifies_the_assignee_with_its_text_once(world) -> None:
    deps, transport, _, _ = world
    event = campaign_event()
    [sent] = handle(event, deps, NOW)
    [sms] = transport.sms()
    assert sms["To"] == DRIVER_PHONE and sms["Body"] == f"[negative-mention] {CAMPAIGN_TEXT}"
    assert sent.type == "notification.sent" and sent.provider == "notifications"
    attributes = sent.attributes
    assert attributes["responder"] == "driver-1" and attributes["channel"] == "sms"
    assert (attributes["campaign"], attributes["run"], attributes["version"]) == ("cmp_1", "run_1", 2)
    assert attributes["campaign_name"] == "negative-mention" and attributes["idempotency_key"] == "run_1:notify:1"
    assert attributes["trigger_event"] == event.id and attributes["trigger_type"] == "campaign.notification_requested"
    assert attributes["conversation"] == "cv_9" and sent.contact.phone == CUSTOMER
    # The same request again (the campaign replayed its step: same key, same event id): nothing more is sent.
    assert handle(campaign_event(), deps, NOW + timedelta(seconds=5)) == [sent]
    assert len(transport.sms()) == 1


def test_a_campaign_notifies_a_named_responder_and_a_teams_on_call_contact(world) -> None:
    deps, transport, _, _ = world
    [to_responder] = handle(campaign_event("run_1:notify:1", to="responder", target="driver-1"), deps, NOW)
    [to_team] = handle(campaign_event("run_1:tell-team:1", to="team", target="field"), deps, NOW)
    assert to_responder.attributes["responder"] == "driver-1"
    assert to_team.attributes["team"] == "field" and "responder" not in to_team.attributes
    assert [m["To"] for m in transport.sms()] == [DRIVER_PHONE, "+14155550999"]
    assert to_team.attributes["run"] == "run_1" and to_team.id != to_responder.id


@pytest.mark.parametrize(
    ("to", "target"),
    [
        ("assignee", None),  # the run's conversation has no assignee
        ("assignee", "driver-404"),
        ("responder", "driver-404"),
        ("team", "nobody-here"),
    ],
)
def test_a_campaign_naming_nobody_is_reported_as_no_recipient(world, to, target) -> None:
    deps, transport, _, _ = world
    [failed] = handle(campaign_event(to=to, target=target), deps, NOW)
    assert failed.type == "notification.failed" and failed.attributes["reason"] == "no_recipient"
    assert (failed.attributes["to"], failed.attributes["target"]) == (to, target)
    assert failed.attributes["campaign"] == "cmp_1" and failed.attributes["run"] == "run_1"
    assert failed.attributes["channel"] is None and "responder" not in failed.attributes
    assert transport.requests == []
    assert handle(campaign_event(to=to, target=target), deps, NOW) == [failed]  # same id: said once


def test_a_campaign_reaching_a_team_without_contact_points_is_reported(world) -> None:
    deps, transport, _, _ = world
    [failed] = handle(campaign_event(to="team", target="quiet"), deps, NOW)
    assert failed.attributes["reason"] == "no_contact_point" and failed.attributes["team"] == "quiet"
    assert failed.attributes["campaign"] == "cmp_1" and transport.requests == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"to": "manager"}, "to"),
        ({"text": "   "}, "text is empty"),
        ({"urgent": "yes"}, "urgent"),
        ({"version": "2"}, "version"),
        ({"version": 0}, "version"),
        ({"to": "team", "target": None}, "target is required when to is team"),
        ({"to": "responder", "target": ""}, "target is required when to is responder"),
        ({"drop": ("run",)}, "run"),
        ({"drop": ("idempotency_key",)}, "idempotency_key"),
        ({"drop": ("text",)}, "text"),
    ],
)
def test_a_malformed_campaign_request_is_reported_and_sends_nothing(world, change, named) -> None:
    deps, transport, _, _ = world
    [failed] = handle(campaign_event(**change), deps, NOW)
    assert failed.type == "notification.failed" and failed.attributes["reason"] == "invalid_request"
    assert named in failed.attributes["detail"]
    assert failed.attributes["trigger_type"] == "campaign.notification_requested"
    assert transport.requests == []


def test_a_malformed_campaign_request_keeps_only_its_well_typed_origin() -> None:
    from functions.notifications.logic import campaign_attributes

    event = campaign_event(campaign=7, run=["run_1"], version=True)
    assert campaign_attributes(event) == {"campaign_name": "negative-mention", "idempotency_key": "run_1:notify:1"}
    assert campaign_attributes(routing_event(1)) == {}


def test_a_campaign_request_from_anyone_but_the_campaign_function_is_ignored(world) -> None:
    deps, transport, _, _ = world
    assert handle(campaign_event(provider="routing"), deps, NOW) == []
    assert handle(campaign_event(provider="standard-webhooks"), deps, NOW) == []
    assert transport.requests == []


def test_campaign_urgency_is_what_the_step_says() -> None:
    assert is_urgent(campaign_event(urgent=True)) is True
    assert is_urgent(campaign_event(urgent=False)) is False
    assert is_urgent(campaign_event(urgent=False, urgency="critical", priority=1)) is False


def test_quiet_hours_hold_back_a_campaign_notification_unless_it_is_urgent(world) -> None:
    deps, transport, _, config = world
    _with_preferences(
        config, channels=["sms"], time_zone="Europe/Paris", quiet_hours=QuietHours(start=time(12), end=time(14))
    )
    [held] = handle(campaign_event("run_1:notify:1"), deps, NOW)  # 13:01 in Paris
    assert held.type == "notification.failed" and held.attributes["reason"] == "quiet_hours"
    assert held.attributes["campaign"] == "cmp_1" and transport.requests == []
    [sent] = handle(campaign_event("run_2:notify:1", urgent=True), deps, NOW)
    assert sent.type == "notification.sent"
    assert transport.sms()[0]["Body"] == f"[negative-mention] URGENT {CAMPAIGN_TEXT}"


def test_campaign_notifications_share_the_recipients_rate_limit_and_digest(world) -> None:
    deps, transport, _, _ = world
    for n in range(3):
        handle(routing_event(800 + n), deps, NOW)
    assert handle(campaign_event("run_1:notify:1"), deps, NOW) == []  # over the limit: digested
    assert len(transport.sms()) == 3
    [digest] = flush_digests(deps, NOW + timedelta(minutes=5), lambda events: None)
    assert digest.attributes["count"] == 1 and digest.attributes["triggers"] == [campaign_event().id]
    assert f"[negative-mention] {CAMPAIGN_TEXT}" in transport.sms()[-1]["Body"]


def test_campaign_text_on_slack_and_email_is_whole_with_where_it_came_from(world) -> None:
    deps, transport, _, config = world
    _with_preferences(config, channels=["slack", "email"])
    long_text = "Call the customer back about the refund. " * 6  # longer than a customer's excerpt
    outcomes = handle(campaign_event(text=long_text, urgent=True), deps, NOW)
    assert [o.attributes["channel"] for o in outcomes] == ["slack", "email"]
    [post] = transport.slack()
    assert post["text"].startswith("*negative-mention* (URGENT)\n" + long_text.strip())
    assert CUSTOMER in post["text"] and "conversation cv_9" in post["text"] and "run run_1" in post["text"]
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    [message] = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    assert message.destinations["ToAddresses"] == ["dana@example.com"]
    assert message.subject == f"URGENT: negative-mention: {CUSTOMER}"
    assert long_text.strip() in message.body and "From the campaign negative-mention (cmp_1, version 2)" in message.body


def test_campaign_sms_stays_within_two_segments() -> None:
    from functions.notifications.templates import SMS_MAX_CHARS, NotificationView

    view = NotificationView(
        kind="campaign", recipient_name="Dana", text="x" * 1000, campaign="cmp_1", campaign_name="n", run="run_1"
    )
    _, body = render("sms", view)
    assert len(body) == SMS_MAX_CHARS and body.startswith("[n] xxx") and body.endswith("…")
    subject, email = render("email", view.model_copy(update={"urgent": True, "campaign_version": 3}))
    assert subject == "URGENT: n: a customer"
    assert "x" * 1000 in email and "From the campaign n (cmp_1, version 3), run run_1." in email


def test_campaign_text_is_data_not_a_template(world) -> None:
    deps, transport, _, _ = world
    handle(campaign_event(text="{{ ''.__class__.__mro__ }} {% for x in range(3) %}x{% endfor %}"), deps, NOW)
    assert "{{ ''.__class__.__mro__ }} {% for x in range(3) %}x{% endfor %}" in transport.sms()[0]["Body"]


def test_a_campaign_webhook_carries_the_text_and_the_campaign(world) -> None:
    deps, _, webhook, config = world
    config.put_responder(
        Responder(
            id="driver-1",
            tenant="acme",
            name="Dana",
            contact_points=[ContactPoint(channel="webhook", to="https://hooks.example.com/dana")],
        )
    )
    [sent] = handle(campaign_event(), deps, NOW)
    assert sent.attributes["channel"] == "webhook" and sent.attributes["campaign"] == "cmp_1"
    [(_, body, headers)] = webhook.posts
    payload = json.loads(body)
    assert payload["trigger_type"] == "campaign.notification_requested"
    assert payload["trigger_event"] == sent.attributes["trigger_event"] == headers["webhook-id"].split("_")[1]
    assert payload["text"].startswith(f"*negative-mention*\n{CAMPAIGN_TEXT}\n")
    details = payload["details"]
    assert details["kind"] == "campaign" and details["text"] == CAMPAIGN_TEXT
    assert (details["campaign"], details["campaign_version"], details["run"]) == ("cmp_1", 2, "run_1")


class PutAppliedThenTimedOut:
    """The notifications table as a timeout after AWS applied a put looks to the caller: the put is
    applied, then botocore's retry sends it again and gets the second answer."""

    def __init__(self, table) -> None:
        self._table = table

    def __getattr__(self, name: str):
        return getattr(self._table, name)

    def put_item(self, **request):
        self._table.put_item(**request)
        return self._table.put_item(**request)


def test_a_claim_aws_applied_but_answered_with_a_timeout_still_sends_once(world) -> None:
    """Fault injection found it (tests/faults): the retried claim failed its condition on its own
    claim, the record was reported done with nothing sent, and the notification was lost."""
    deps, transport, _, _ = world
    deps.ledger = NotificationLedger(PutAppliedThenTimedOut(deps.ledger._table))
    [sent] = handle(routing_event(31), deps, NOW)
    assert sent.type == "notification.sent" and len(transport.sms()) == 1


def test_a_claim_held_by_an_attempt_that_did_not_finish_is_retried_not_finished(world) -> None:
    """Reporting it done while another attempt holds the claim would lose it if that attempt died."""
    deps, transport, _, _ = world
    assert deps.ledger.claim(routing_event(32).id, "responder:driver-1", "sms", NOW)  # an attempt that died
    with pytest.raises(TransientFailure):
        handle(routing_event(32), deps, NOW + timedelta(seconds=30))
    [sent] = handle(routing_event(32), deps, NOW + timedelta(minutes=6))  # its claim went stale: sent now
    assert sent.type == "notification.sent" and len(transport.sms()) == 1
