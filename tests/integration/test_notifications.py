"""Notifications on the local runtime: signed webhooks in, routing, then the notifications
consumer behind its queue sending through the provider sandbox, notification.* in the
event log. The demo tenant's sample set-up (docs/examples/) gives the field technicians
and the field team SMS contact points."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from infra.local.runtime import EXAMPLES_DIR, load_routing_example
from switchboard_core import aws
from switchboard_core.bus import EventPublisher
from switchboard_core.events import CanonicalEvent, Channel, Contact
from switchboard_core.routing.config_store import RoutingConfigStore
from tests.builders import canonical_event
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

JO_PHONE, RAY_PHONE, FIELD_ON_CALL = "+14155550111", "+14155550122", "+14155550199"
OAKLAND = {"Latitude": "37.8044", "Longitude": "-122.2712"}  # Jo (Berkeley) is 7.5 km away


@pytest.fixture(scope="module")
def field(hub):
    """The sample rule set, teams and responders in force (other modules may have put their own rules)."""
    store = RoutingConfigStore(aws.resource("dynamodb").Table(hub.runtime.names.table("routing")))
    example = load_routing_example(EXAMPLES_DIR, hub.runtime.demo["tenant"])
    current = store.rules(example.tenant)
    store.put_rules(example.tenant, example.rule_set, current[1] if current else None, datetime.now(UTC))
    for team in example.teams:
        store.put_team(example.tenant, team)
    for responder in example.responders:
        store.put_responder(responder)
    return hub


def signed_sms(hub, sender: str, body: str, **extra: str) -> tuple[bytes, dict[str, str]]:
    url, token = hub.webhook_url("twilio"), hub.connection("twilio")["credentials"]["auth_token"]
    sid = "SM" + secrets.token_hex(16)
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "2" * 32,
        "From": sender,
        "To": "+14155550100",
        "Body": body,
        "NumMedia": "0",
        **extra,
    }
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": RequestValidator(token).compute_signature(url, params),
    }
    return urlencode(params).encode(), headers


def sms_to(hub, phone: str) -> list:
    return [m for m in hub.runtime.provider_apis.messages if m.provider == "twilio" and m.to == phone]


def notifications(hub, trigger_ids: set[str]) -> list[dict]:
    return [
        e
        for e in hub.logged_events(type="notification.sent", limit="100")
        if e["attributes"].get("trigger_event") in trigger_ids
    ]


def routing_events(hub, kind: str, phone: str) -> list[dict]:
    return [e for e in hub.bus.events() if e["detail-type"] == kind and e["detail"]["contact"].get("phone") == phone]


def test_a_stranded_driver_sms_with_a_location_notifies_the_nearest_field_responder_once(field) -> None:
    hub = field
    driver = "+14155550161"
    before = len(sms_to(hub, JO_PHONE))
    body, headers = signed_sms(hub, driver, "My car broke down on the highway, I'm stranded", **OAKLAND)
    status, _, _ = hub.request("POST", hub.webhook_url("twilio"), body, headers)
    assert status == 200

    assigned = wait_for(lambda: routing_events(hub, "routing.assigned", driver), timeout=20)
    assert assigned and assigned[0]["detail"]["attributes"]["assignee"] == "jo-berkeley"
    trigger = assigned[0]["detail"]["id"]
    sent = wait_for(lambda: notifications(hub, {trigger}), timeout=20)
    assert len(sent) == 1
    attributes = sent[0]["attributes"]
    assert attributes["responder"] == "jo-berkeley" and attributes["channel"] == "sms"
    assert attributes["distance_km"] == pytest.approx(7.4, abs=0.2)
    [message] = sms_to(hub, JO_PHONE)[before:]
    assert f"{attributes['distance_km']:.1f} km away" in message.text
    assert "https://www.openstreetmap.org/?mlat=37.80440&mlon=-122.27120#map=15/37.80440/-122.27120" in message.text
    assert driver in message.text and "broke down" in message.text

    # The provider delivers the same webhook again: deduplicated, nothing more is sent.
    status, _, _ = hub.request("POST", hub.webhook_url("twilio"), body, headers)
    assert status == 200
    wait_for(lambda: len(sms_to(hub, JO_PHONE)) > before + 1, timeout=4)
    assert len(sms_to(hub, JO_PHONE)) == before + 1
    assert len(notifications(hub, {trigger})) == 1


def test_an_escalation_reaches_the_teams_on_call_contact_and_the_assignee(field) -> None:
    hub = field
    now = datetime.now(UTC)
    escalated = canonical_event(
        "routing.escalated",
        f"cv_{secrets.token_hex(4)}:escalated",
        received_at=now,
        provider="routing",
        connection="routing",
        tenant=hub.runtime.demo["tenant"],
        occurred_at=now,
        contact=Contact(phone="+14155550162"),
        conversation_key="cv_escalated",
        attributes={
            "conversation": "cv_escalated",
            "queue": "field",
            "assignee": "ray-san-jose",
            "priority": 2,
            "overdue_seconds": 900,
            "reason": "SLA due time passed without an answer",
        },
    )
    EventPublisher(aws.client("events"), hub.runtime.names.bus).publish([escalated])
    sent = wait_for(lambda: len(notifications(hub, {escalated.id})) == 2 and notifications(hub, {escalated.id}))
    assert sent, "the escalation reached nobody"
    assert sorted(e["attributes"].get("team") or e["attributes"].get("responder") for e in sent) == [
        "field",
        "ray-san-jose",
    ]
    on_call = [m for m in sms_to(hub, FIELD_ON_CALL) if "SLA passed 15 min ago" in m.text]
    assert len(on_call) == 1 and on_call[0].text.startswith("ESCALATED (URGENT)")
    # Ray has quiet hours at night, but an escalation is urgent: it reaches him whatever the time.
    assert any("SLA passed 15 min ago" in m.text for m in sms_to(hub, RAY_PHONE))


def published_routing_event(hub, kind: str, attributes: dict) -> CanonicalEvent:
    now = datetime.now(UTC)
    event = canonical_event(
        kind,
        f"cv_{secrets.token_hex(4)}:{kind}",
        received_at=now,
        provider="routing",
        connection="routing",
        tenant=hub.runtime.demo["tenant"],
        occurred_at=now,
        contact=Contact(phone="+14155550163"),
        conversation_key=attributes["conversation"],
        text="The van's engine light is blinking",
        attributes=attributes,
    )
    EventPublisher(aws.client("events"), hub.runtime.names.bus).publish([event])
    return event


def test_email_goes_through_the_emulators_ses_and_the_cli_lists_every_channel(field, capsys) -> None:
    from infra.local.cli import main
    from switchboard_core.routing.assignment import Responder
    from switchboard_core.routing.contact_points import ContactPoint

    hub = field
    store = RoutingConfigStore(aws.resource("dynamodb").Table(hub.runtime.names.table("routing")))
    store.put_responder(
        Responder(
            id="mia-mail",
            tenant=hub.runtime.demo["tenant"],
            name="Mia",
            teams=["support"],
            contact_points=[ContactPoint(channel="email", to="mia@example.com")],
        )
    )
    event = published_routing_event(
        hub, "routing.assigned", {"conversation": "cv_mail", "queue": "support", "assignee": "mia-mail"}
    )
    sent = wait_for(lambda: notifications(hub, {event.id}), timeout=20)
    assert sent and sent[0]["attributes"]["channel"] == "email"

    capsys.readouterr()
    code = main(["--state-dir", str(hub.runtime.state.path), "notifications"])
    out = "".join(line for line in capsys.readouterr().out.splitlines(keepends=True) if not line.startswith('{"'))
    assert code == 0
    email_rows = [line for line in out.splitlines() if "mia-mail" in line]
    assert email_rows and "email" in email_rows[0] and "mia@example.com" in email_rows[0]
    assert "engine light" in email_rows[0]
    sms_rows = [line for line in out.splitlines() if "jo-berkeley" in line]
    assert sms_rows and JO_PHONE in sms_rows[0] and "broke down" in sms_rows[0]


def test_two_hundred_assignments_to_one_responder_become_a_handful_of_messages(field) -> None:
    """Through the bus, the queue and the function on the local runtime; the digest's window
    end is brought forward instead of waiting five minutes."""
    from switchboard_core.routing.assignment import Responder
    from switchboard_core.routing.contact_points import ContactPoint

    hub = field
    # A number no other test texts (the hub is shared by the package; an auto-reply to a shared
    # number once counted as a 7th direct message).
    phone, tenant = f"+1415559{secrets.randbelow(10_000):04d}", hub.runtime.demo["tenant"]
    store = RoutingConfigStore(aws.resource("dynamodb").Table(hub.runtime.names.table("routing")))
    store.put_responder(
        Responder(id="tow-burst", tenant=tenant, name="Burst", contact_points=[ContactPoint(channel="sms", to=phone)])
    )
    publisher = EventPublisher(aws.client("events"), hub.runtime.names.bus)
    now = datetime.now(UTC)
    events = [
        canonical_event(
            "routing.assigned",
            f"burst-{secrets.token_hex(4)}-{n}:routing.assigned",
            received_at=now,
            provider="routing",
            connection="routing",
            tenant=tenant,
            occurred_at=now,
            contact=Contact(phone=f"+1415556{n:04d}"),
            conversation_key=f"cv_burst_{n}",
            text=f"Pile-up on the bridge, car {n} needs a tow",
            attributes={"conversation": f"cv_burst_{n}", "queue": "field", "assignee": "tow-burst"},
        )
        for n in range(200)
    ]
    publisher.publish(events)
    table = aws.resource("dynamodb").Table(hub.runtime.names.table("notifications"))

    def handled() -> int:
        claims = [
            i for i in table.scan()["Items"] if i["pk"].startswith("SENT#") and "#responder:tow-burst#" in i["pk"]
        ]
        return len(claims)

    # 200 single-record invocations on a shared 2-core machine: allow for a slow run (it returns when done).
    # Each look scans the table through the hub's emulator, the one the 200 invocations write to:
    # once a second, not five times, so the looking takes little from the work looked at.
    assert wait_for(lambda: handled() == 200, timeout=240, interval=1), f"only {handled()} of 200 handled"
    done = datetime.now(UTC)
    # The scheduled run may already have sent an earlier window's digest (a burst that crossed a
    # window's end): that one is not a direct message.
    direct = len([m for m in sms_to(hub, phone) if not re.match(r"\d+ more notification", m.text)])
    # 3 per 5-minute window: as many windows as the burst spanned (a slow, loaded run spans more).
    windows = int(done.timestamp()) // 300 - int(now.timestamp()) // 300 + 1
    assert 3 <= direct <= 3 * windows
    digests = [i for i in table.scan()["Items"] if i["pk"].startswith(f"DIGEST#{tenant}#responder:tow-burst#")]
    assert digests and sum(len(d["triggers"]) for d in digests) == 200 - direct
    for digest in digests:  # the windows end now
        table.update_item(
            Key={"pk": digest["pk"]},
            UpdateExpression="SET due_at = :past",
            ExpressionAttributeValues={":past": now.isoformat()},
        )
    hub.runtime.functions.invoke("notifications", {"source": "aws.scheduler"})
    messages = wait_for(lambda: len(sms_to(hub, phone)) == direct + len(digests) and sms_to(hub, phone))
    assert messages and len(messages) <= 4 * windows, "200 assignments must become a handful of messages"
    assert any(m.text.startswith(f"{200 - direct} more notifications") for m in messages) or len(digests) > 1


def published_campaign_request(hub, key: str, **attributes) -> CanonicalEvent:
    """A campaign's notify step as the campaign function publishes it (switchboard.campaigns)."""
    now = datetime.now(UTC)
    event = canonical_event(
        "campaign.notification_requested",
        key,
        received_at=now,
        provider="campaigns",
        connection="campaigns",
        tenant=hub.runtime.demo["tenant"],
        channel=Channel.GENERIC,
        occurred_at=now,
        contact=Contact(phone="+14155550164"),
        conversation_key="cv_campaign",
        attributes={
            "campaign": "cmp_local",
            "campaign_name": "negative-mention",
            "version": 1,
            "run": key.split(":")[0],
            "conversation": "cv_campaign",
            "contact": {"id": "ct_local"},
            "text": "The customer said no: their call is ringing through to you",
            "urgent": False,
            "idempotency_key": key,
            **attributes,
        },
    )
    EventPublisher(aws.client("events"), hub.runtime.names.bus).publish([event])
    return event


def test_a_campaigns_notify_steps_reach_the_team_and_the_responder_they_name(field) -> None:
    hub = field
    run = f"run_{secrets.token_hex(8)}"
    to_team = published_campaign_request(hub, f"{run}:tell-team:1", to="team", target="field")
    # Ray has quiet hours at night; the step says urgent, so it reaches him whatever the time.
    to_ray = published_campaign_request(hub, f"{run}:tell-ray:1", to="responder", target="ray-san-jose", urgent=True)
    nobody = published_campaign_request(hub, f"{run}:tell-assignee:1", to="assignee", target=None)
    ids = {to_team.id, to_ray.id}
    sent = wait_for(lambda: len(notifications(hub, ids)) == 2 and notifications(hub, ids), timeout=20)
    assert sent, "the campaign's notify steps reached nobody"
    assert {(e["attributes"].get("team") or e["attributes"].get("responder")) for e in sent} == {
        "field",
        "ray-san-jose",
    }
    assert all(e["attributes"]["campaign"] == "cmp_local" and e["attributes"]["run"] == run for e in sent)
    assert [m for m in sms_to(hub, FIELD_ON_CALL) if m.text.startswith("[negative-mention] The customer said no")]
    assert [m for m in sms_to(hub, RAY_PHONE) if m.text.startswith("[negative-mention] URGENT The customer said no")]

    def failed() -> list[dict]:
        return [
            e
            for e in hub.logged_events(type="notification.failed", limit="100")
            if e["attributes"].get("trigger_event") == nobody.id
        ]

    [no_recipient] = wait_for(failed, timeout=20)
    assert no_recipient["attributes"]["reason"] == "no_recipient" and no_recipient["attributes"]["run"] == run
