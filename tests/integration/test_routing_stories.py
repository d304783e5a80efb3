"""The customer-service stories, end to end on the local runtime: signed webhooks in,
conversation.* and routing.* events out on the bus (routing consumer behind its queue)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from switchboard_core.routing.assignment import GeoPoint, Responder
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.rules import RuleSet
from switchboard_core.routing.sensing import Entity, Taxonomy, Topic
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

RULES = {
    "default_team": "front-desk",
    "rules": [
        {"name": "keep-agent", "then": {"kind": "sticky"}},
        {"name": "roadside", "when": {"topics_any": ["breakdown"]}, "then": {"kind": "nearest", "skill": "towing"}},
        {
            "name": "parts",
            "when": {"topics_any": ["parts"]},
            "then": {"kind": "assign", "team": "parts", "skills": {"parts": 2}},
        },
    ],
}


@pytest.fixture(scope="module")
def configured(hub):
    from switchboard_core import aws

    store = RoutingConfigStore(aws.resource("dynamodb").Table(hub.runtime.names.table("routing")))
    now = datetime.now(UTC)
    current = store.rules("demo")  # other tests may have saved one already
    store.put_rules("demo", RuleSet.model_validate(RULES), current[1] if current else None, now)
    store.put_taxonomy(
        "demo",
        Taxonomy(
            topics=[
                Topic(name="parts", phrases=["brake pad", "spare part"]),
                Topic(name="breakdown", phrases=["broke down", "stranded"]),
            ],
            entities={"parts": [Entity(name="BP-200", aliases=["bp200"])]},
        ),
        now,
    )
    for responder in (
        Responder(id="pia", tenant="demo", name="Pia", teams=["parts"], skills={"parts": 3}),
        Responder(
            id="kiel-tow",
            tenant="demo",
            name="Kiel towing",
            skills={"towing": 3},
            location=GeoPoint(latitude=54.3233, longitude=10.1228),
        ),
        Responder(
            id="bremen-tow",
            tenant="demo",
            name="Bremen towing",
            skills={"towing": 3},
            location=GeoPoint(latitude=53.0793, longitude=8.8017),
        ),
    ):
        store.put_responder(responder)
    return hub


def routed(hub, seen: list, source_event_ids: set[str], kind: str) -> list[dict]:
    seen.extend(hub.bus.events())
    return [
        e
        for e in seen
        if e["source"] == "switchboard.routing"
        and e["detail-type"] == kind
        and e["detail"]["attributes"].get("source_event") in source_event_ids
    ]


def post_twilio_sms(hub, sender: str, body: str, connection: tuple[str, str] | None = None, **extra: str) -> None:
    """A signed Twilio SMS to the demo connection, or to `connection` (its webhook URL and auth token)."""
    url, token = connection or (hub.webhook_url("twilio"), hub.connection("twilio")["credentials"]["auth_token"])
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
    signature = RequestValidator(token).compute_signature(url, params)
    status, _, _ = hub.request(
        "POST",
        url,
        urlencode(params).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )
    assert status == 200


def post_whatsapp(hub, wa_id: str, text: str) -> None:
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "1",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {"display_phone_number": "15550100100", "phone_number_id": "3749"},
                                "contacts": [{"profile": {"name": "Ana"}, "wa_id": wa_id}],
                                "messages": [
                                    {
                                        "from": wa_id,
                                        "id": "wamid." + secrets.token_hex(12),
                                        "timestamp": str(int(time.time())),
                                        "type": "text",
                                        "text": {"body": text},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()
    secret = hub.connection("meta")["credentials"]["app_secret"].encode()
    signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    status, _, _ = hub.request(
        "POST", hub.webhook_url("meta"), body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    )
    assert status == 200


# Routing may have other modules' events queued before these (the hub is shared by every
# integration module a worker runs: test_cli waits as long for the same reason); each wait
# returns as soon as the event is on the bus.
ROUTED_WITHIN = 60


def source_ids(hub, seen: list, provider: str, predicate) -> set[str]:
    seen.extend(hub.bus.events())
    return {e["detail"]["id"] for e in seen if e["detail"]["provider"] == provider and predicate(e["detail"])}


def test_negative_post_about_a_part_and_an_sms_from_that_phone_end_in_one_conversation_for_parts(configured):
    hub, seen = configured, []
    post_whatsapp(hub, "14155550142", "The BP-200 brake pad you sold me is useless, squealing after a week!")
    posts = wait_for(lambda: source_ids(hub, seen, "meta", lambda d: d["contact"].get("phone") == "+14155550142"))
    assigned = wait_for(lambda: routed(hub, seen, posts, "routing.assigned"), timeout=ROUTED_WITHIN)
    assert assigned, "the post was never assigned"
    # The SMS comes after the post was routed: routing runs concurrently, as on AWS, so two posted
    # at once may be routed in either order (and the first opens the conversation).
    post_twilio_sms(hub, "+14155550142", "Hi, any update on my brakes? Still waiting.")
    texts = wait_for(lambda: source_ids(hub, seen, "twilio", lambda d: d["contact"].get("phone") == "+14155550142"))
    attributes = assigned[0]["detail"]["attributes"]
    assert attributes["queue"] == "parts" and attributes["assignee"] == "pia"
    assert attributes["sentiment"] < 0 and "parts" in attributes["topics"]
    updated = wait_for(lambda: routed(hub, seen, texts, "conversation.updated"), timeout=ROUTED_WITHIN)
    assert updated and updated[0]["detail"]["conversation_key"] == attributes["conversation"]
    assert not routed(hub, seen, texts, "routing.assigned")  # sticky: the SMS stays with Pia


def test_a_stranded_driver_sms_with_a_location_goes_to_the_nearest_towing_responder(configured):
    hub, seen = configured, []
    post_twilio_sms(
        hub,
        "+14155550143",
        "I'm stranded on the A7 near Neumuenster, the car broke down",
        Latitude="54.0730",
        Longitude="9.9840",
    )
    sms = wait_for(lambda: source_ids(hub, seen, "twilio", lambda d: d["contact"].get("phone") == "+14155550143"))
    assigned = wait_for(lambda: routed(hub, seen, sms, "routing.assigned"), timeout=ROUTED_WITHIN)
    assert assigned, "the stranded driver was never assigned"
    attributes = assigned[0]["detail"]["attributes"]
    assert attributes["assignee"] == "kiel-tow" and attributes["strategy"] == "nearest"


def test_the_read_api_shows_the_conversation_and_the_cross_channel_timeline(configured):
    hub, seen = configured, []
    post_whatsapp(hub, "14155550144", "Where is the spare part I ordered?")
    posts = wait_for(lambda: source_ids(hub, seen, "meta", lambda d: d["contact"].get("phone") == "+14155550144"))
    # Routed first, so it opens the conversation the SMS joins (routing runs concurrently, as on AWS).
    assert wait_for(lambda: routed(hub, seen, posts, "conversation.opened"), timeout=ROUTED_WITHIN)
    post_twilio_sms(hub, "+14155550144", "Sorry, to add: it is the BP-200 brake pad")
    texts = wait_for(lambda: source_ids(hub, seen, "twilio", lambda d: d["contact"].get("phone") == "+14155550144"))
    updated = wait_for(lambda: routed(hub, seen, texts, "conversation.updated"), timeout=ROUTED_WITHIN)
    assert updated
    attributes = updated[0]["detail"]["attributes"]
    contact_id, conversation_id = attributes["contact"]["id"], attributes["conversation"]

    status, contact = hub.admin("GET", f"/admin/contacts/{contact_id}")
    assert status == 200 and "phone#+14155550144" in contact["identities"]
    status, timeline = hub.admin("GET", f"/admin/contacts/{contact_id}/timeline?limit=10")
    assert status == 200
    assert [e["provider"] for e in timeline["events"]][:2] == ["twilio", "meta"]  # newest first, across channels
    _, first = hub.admin("GET", f"/admin/contacts/{contact_id}/timeline?limit=1")
    assert len(first["events"]) == 1 and first["next_cursor"]
    _, second = hub.admin("GET", f"/admin/contacts/{contact_id}/timeline?limit=1&cursor={first['next_cursor']}")
    assert [e["provider"] for e in first["events"] + second["events"]] == ["twilio", "meta"]

    status, conversation = hub.admin("GET", f"/admin/conversations/{conversation_id}")
    assert status == 200 and conversation["channels"] == ["social", "telephony"] and conversation["assignee"] == "pia"
    status, listed = hub.admin("GET", "/admin/conversations?assignee=pia&topic=parts&limit=50")
    assert status == 200 and conversation_id in [c["id"] for c in listed["conversations"]]
    assert hub.admin("GET", "/admin/conversations?status=sleeping")[0] == 400
    assert hub.admin("GET", "/admin/contacts/ct_nobody")[0] == 404


def test_an_unanswered_conversation_is_escalated_by_the_scheduled_function(configured):
    from datetime import timedelta

    from infra import topology
    from infra.local.scheduler import schedule_input
    from switchboard_core import aws
    from switchboard_core.routing.conversations import ConversationStore

    hub, seen = configured, []
    post_twilio_sms(hub, "+14155550145", "Is anyone there? My brake pad order is late")
    sms = wait_for(lambda: source_ids(hub, seen, "twilio", lambda d: d["contact"].get("phone") == "+14155550145"))
    assigned = wait_for(lambda: routed(hub, seen, sms, "routing.assigned"), timeout=ROUTED_WITHIN)
    conversation_id = assigned[0]["detail"]["attributes"]["conversation"]
    # Nobody answers; move the clock: make the SLA due time lie in the past.
    store = ConversationStore(
        aws.resource("dynamodb").Table(hub.runtime.names.table("conversations")), timedelta(hours=4)
    )
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    store._table.update_item(
        Key={"pk": f"CONV#{conversation_id}"},
        UpdateExpression="SET sla_due_at = :past",
        ExpressionAttributeValues={":past": past},
    )
    result = hub.runtime.functions.invoke("escalation", schedule_input(topology.FUNCTIONS["escalation"]))
    assert result["escalated"] >= 1

    def escalations() -> list[dict]:
        seen.extend(hub.bus.events())
        return [
            e
            for e in seen
            if e["detail-type"] == "routing.escalated" and e["detail"]["conversation_key"] == conversation_id
        ]

    escalated = wait_for(escalations)
    assert escalated and escalated[0]["detail"]["attributes"]["assignee"] == "pia"
    assert (
        hub.runtime.functions.invoke("escalation", schedule_input(topology.FUNCTIONS["escalation"]))["escalated"] == 0
    )
