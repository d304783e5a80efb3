"""Auto-replies end to end on the local runtime: a signed webhook in, routing asks for
the reply, the replies function sends it through the provider's API (the loopback
provider sandbox) and reports reply.* on the bus; the contact's timeline shows it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from switchboard_core.routing.assignment import Responder
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.rules import RuleSet
from tests.integration.conftest import wait_for
from tests.integration.test_routing_stories import post_twilio_sms, post_whatsapp

pytestmark = pytest.mark.integration
ACK = {
    "name": "acknowledge",
    "when": {"channels": ["telephony", "social"]},
    "then": {
        "kind": "auto_reply",
        "template": "Thanks! The ${team} team has your message; ${assignee} replies within ${reply_within}.",
    },
}


# Its own team and responder, so these conversations take no capacity the routing stories count on.
RULES = {"default_team": "front-desk", "rules": [ACK, {"name": "care", "then": {"kind": "assign", "team": "care"}}]}


@pytest.fixture(scope="module")
def replying(hub):
    from switchboard_core import aws

    store = RoutingConfigStore(aws.resource("dynamodb").Table(hub.runtime.names.table("routing")))
    current = store.rules("demo")  # other modules may have saved one; each module sets its own
    store.put_rules("demo", RuleSet.model_validate(RULES), current[1] if current else None, datetime.now(UTC))
    store.put_responder(Responder(id="rea", tenant="demo", name="Rea", teams=["care"], capacity=100))
    return hub


def outcomes(hub, seen: list, phone: str) -> list[dict]:
    seen.extend(hub.bus.events())
    return [
        e["detail"]
        for e in seen
        if e["source"] == "switchboard.replies" and e["detail"]["contact"].get("phone") == phone
    ]


def sandbox_messages(hub, to: str) -> list:
    return [m for m in hub.runtime.provider_apis.messages if m.to == to]


def test_an_sms_gets_the_rendered_auto_reply_once_per_conversation(replying):
    hub, seen, phone = replying, [], "+14155550151"
    post_twilio_sms(hub, phone, "My BP-200 brake pad squeals since Monday")
    sent = wait_for(lambda: outcomes(hub, seen, phone), timeout=20)
    assert [o["type"] for o in sent] == ["reply.sent"], sent
    (message,) = sandbox_messages(hub, phone)
    assert message.text == "Thanks! The care team has your message; Rea replies within 4 hours."
    assert (
        message.details["from"] == "+14155550100" and sent[0]["attributes"]["provider_message_id"] == message.message_id
    )

    post_twilio_sms(hub, phone, "Hello? Anyone?")
    both = wait_for(lambda: len(outcomes(hub, seen, phone)) >= 2 and outcomes(hub, seen, phone), timeout=20)
    assert [o["type"] for o in both] == ["reply.sent", "reply.skipped"]
    assert both[1]["attributes"]["reason"] == "already_sent"
    assert len(sandbox_messages(hub, phone)) == 1  # the customer got one auto-reply, not two


def test_the_auto_reply_is_on_the_contacts_timeline(replying):
    hub, seen, phone = replying, [], "+14155550152"
    post_twilio_sms(hub, phone, "Do you have a spare part for the BP-200?")
    assert wait_for(lambda: outcomes(hub, seen, phone), timeout=20)

    def contact_id() -> str | None:
        seen.extend(hub.bus.events())
        found = [
            e["detail"]["attributes"]["contact"]["id"]
            for e in seen
            if e["detail-type"] == "reply.requested" and e["detail"]["contact"].get("phone") == phone
        ]
        return found[0] if found else None

    contact = wait_for(contact_id)

    def timeline_types() -> list[str]:
        status, timeline = hub.admin("GET", f"/admin/contacts/{contact}/timeline?limit=10")
        assert status == 200
        return [e["type"] for e in timeline["events"]]

    assert wait_for(lambda: "reply.sent" in timeline_types()), timeline_types()
    assert timeline_types()[-1] == "message.received"


def test_a_customer_who_texted_stop_gets_no_auto_reply(replying):
    hub, seen, phone = replying, [], "+14155550153"
    post_twilio_sms(hub, phone, "STOP")
    skipped = wait_for(lambda: outcomes(hub, seen, phone), timeout=20)
    assert [(o["type"], o["attributes"]["reason"]) for o in skipped] == [("reply.skipped", "opted_out")]
    assert sandbox_messages(hub, phone) == []


def test_a_whatsapp_message_is_answered_on_whatsapp_from_the_receiving_number(replying):
    hub, seen = replying, []
    post_whatsapp(hub, "14155550154", "Is the BP-200 brake pad in stock?")
    sent = wait_for(lambda: outcomes(hub, seen, "+14155550154"), timeout=20)
    assert [o["type"] for o in sent] == ["reply.sent"], sent
    assert sent[0]["attributes"]["via"] == "meta"
    (message,) = sandbox_messages(hub, "14155550154")
    assert message.text.startswith("Thanks! The care team has your message")
    assert message.details == {"product": "whatsapp", "from": "3749"}  # from the number that received it
