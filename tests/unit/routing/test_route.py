"""route(): the customer-service stories, against moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.routing.logic import RoutingDeps, route
from infra import topology
from infra.local.emulator import create_table
from switchboard_core import aws
from switchboard_core.events import CanonicalEvent, Channel, Contact, SocialHandle
from switchboard_core.routing.assignment import GeoPoint, Responder
from switchboard_core.routing.config_store import RoutingConfigStore
from switchboard_core.routing.contacts import ContactStore, Identity
from switchboard_core.routing.conversations import ConversationStore
from switchboard_core.routing.rules import RuleSet
from switchboard_core.routing.sensing import Entity, Taxonomy, Topic
from tests.builders import canonical_event

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
PUBLISHED: list = []
RULES = {
    "default_team": "front-desk",
    "rules": [
        {"name": "keep-agent", "then": {"kind": "sticky"}},
        {"name": "roadside", "when": {"topics_any": ["breakdown"]}, "then": {"kind": "nearest", "skill": "towing"}},
        {
            "name": "parts",
            "when": {"topics_any": ["parts"]},
            "then": {"kind": "assign", "team": "parts", "skills": {"parts": 2}, "priority": 2},
        },
    ],
}
TAXONOMY = Taxonomy(
    topics=[
        Topic(name="parts", phrases=["brake pad", "spare part"]),
        Topic(name="breakdown", phrases=["broke down", "stranded", "flat tyre"]),
    ],
    entities={"parts": [Entity(name="BP-200", aliases=["bp200"])]},
)


@pytest.fixture
def deps(aws_world):
    client, resource = aws.client("dynamodb"), aws.resource("dynamodb")
    create_table(client, "contacts-t", topology.Table("contacts", partition_key="pk"))
    create_table(client, "conversations-t", topology.Table("conversations", partition_key="pk"))
    create_table(client, "routing-t", topology.Table("routing", partition_key="pk", sort_key="sk"))
    config = RoutingConfigStore(resource.Table("routing-t"))
    config.put_rules("acme", RuleSet.model_validate(RULES), None, NOW)
    config.put_taxonomy("acme", TAXONOMY, NOW)
    for responder in (
        Responder(id="pia", tenant="acme", name="Pia", teams=["parts"], skills={"parts": 3}),
        Responder(id="tom", tenant="acme", name="Tom", teams=["parts"], skills={"parts": 1}),
        Responder(
            id="kiel-tow",
            tenant="acme",
            name="Kiel towing",
            teams=["roadside"],
            skills={"towing": 3},
            location=GeoPoint(latitude=54.3233, longitude=10.1228),
        ),
        Responder(
            id="bremen-tow",
            tenant="acme",
            name="Bremen towing",
            teams=["roadside"],
            skills={"towing": 2},
            location=GeoPoint(latitude=53.0793, longitude=8.8017),
        ),
    ):
        config.put_responder(responder)
    return RoutingDeps(
        contacts=ContactStore(resource.Table("contacts-t")),
        conversations=ConversationStore(resource.Table("conversations-t"), timedelta(hours=4)),
        config=config,
        sensors={},
    )


def canonical(
    n: int, text: str, *, provider: str, channel: Channel, contact: Contact, key: str, at: datetime = NOW, **attributes
) -> CanonicalEvent:
    return canonical_event(
        "message.received",
        f"p{n}",
        received_at=at,
        provider=provider,
        connection="con_1",
        channel=channel,
        text=text,
        contact=contact,
        conversation_key=key,
        occurred_at=at,
        attributes=attributes,
    )


def by_type(events):
    return {e.type: e for e in events}


def test_negative_post_about_a_part_and_an_sms_from_the_same_phone_are_one_conversation_for_parts(deps):
    phone = "+14155550123"
    post = canonical(
        1,
        "Your BP-200 brake pad is useless, squealing after a week!",
        provider="meta",
        channel=Channel.SOCIAL,
        key="meta:whatsapp:1:14155550123",
        contact=Contact(phone=phone, handles=[SocialHandle(platform="whatsapp", id="14155550123")]),
    )
    sms = canonical(
        2,
        "Hello? Any news about my brakes?",
        provider="twilio",
        channel=Channel.TELEPHONY,
        key="twilio:AC1:+14155550100:+14155550123",
        contact=Contact(phone=phone),
        at=NOW + timedelta(minutes=30),
    )
    first = by_type(route(post, deps, NOW, PUBLISHED.extend))
    second = by_type(route(sms, deps, NOW, PUBLISHED.extend))
    assigned = first["routing.assigned"].attributes
    assert assigned["queue"] == "parts" and assigned["assignee"] == "pia"  # skilled enough, least loaded
    assert (
        assigned["reason"] == "rule 'parts' (topics_any)" and first["routing.assigned"].source == "switchboard.routing"
    )
    assert first["conversation.opened"].attributes["sentiment"] < -0.3
    assert set(second) == {"conversation.updated"}  # sticky: stays with Pia
    conversation_id = assigned["conversation"]
    assert second["conversation.updated"].conversation_key == conversation_id
    conversation = deps.conversations.get(conversation_id)
    assert conversation.assignee == "pia" and conversation.channels == ["social", "telephony"]
    assert conversation.topics == ["parts"] and conversation.sla_due_at == NOW + timedelta(hours=1)


def test_a_stranded_driver_with_a_location_gets_the_nearest_towing_responder(deps):
    sms = canonical(
        3,
        "Help, I broke down on the A7 near Neumünster",
        provider="twilio",
        channel=Channel.TELEPHONY,
        key="twilio:AC1:+14155550100:+14155550155",
        contact=Contact(phone="+14155550155"),
        Latitude="54.0730",
        Longitude="9.9840",
    )
    assigned = by_type(route(sms, deps, NOW, PUBLISHED.extend))["routing.assigned"].attributes
    assert assigned["assignee"] == "kiel-tow" and assigned["strategy"] == "nearest"
    assert 25 < assigned["distance_km"] < 30


def test_redelivery_routes_once_and_capacity_is_taken_once(deps):
    post = canonical(
        4,
        "spare part missing",
        provider="meta",
        channel=Channel.SOCIAL,
        key="k4",
        contact=Contact(phone="+14155550177"),
    )
    assert route(post, deps, NOW, PUBLISHED.extend)
    assert route(post, deps, NOW, PUBLISHED.extend) == []
    assert deps.config.responder("acme", "pia").load == 1


def test_stop_records_the_opt_out_on_the_contact(deps):
    stop = canonical(
        5, "STOP", provider="twilio", channel=Channel.TELEPHONY, key="k5", contact=Contact(phone="+14155550188")
    )
    route(stop, deps, NOW, PUBLISHED.extend)
    owner = deps.contacts.owner("acme", Identity(kind="phone", value="+14155550188"))
    consent = deps.contacts.get(owner).consent
    assert consent.opted_out and consent.channel == "telephony" and consent.source == stop.id


def test_without_a_rule_set_events_are_threaded_but_not_routed(deps):
    event = canonical(6, "hi", provider="meta", channel=Channel.SOCIAL, key="k6", contact=Contact(phone="+14155550199"))
    event = event.model_copy(update={"tenant": "globex"})
    assert [e.type for e in route(event, deps, NOW, PUBLISHED.extend)] == ["conversation.opened"]


def test_a_failed_publish_leaves_the_event_to_be_routed_again(deps):
    post = canonical(
        7,
        "brake pad question",
        provider="meta",
        channel=Channel.SOCIAL,
        key="k7",
        contact=Contact(phone="+14155550166"),
    )

    def failing(events):
        raise RuntimeError("bus unavailable")

    with pytest.raises(RuntimeError):
        route(post, deps, NOW, failing)
    retried = route(post, deps, NOW, PUBLISHED.extend)
    assert {e.type for e in retried} >= {"routing.assigned"}


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"propertyName": "tier", "propertyValue": "gold"}, {"tier": "gold"}),  # HubSpot
        (
            {"fields": {"Tier__c": "gold", "OwnerId": "005xx", "Language__c": "de"}},  # Salesforce
            {"tier": "gold", "owner": "005xx", "language": "de"},
        ),
        ({"data": {"owner_id": 17, "locale": "de_DE"}}, {"owner": "17", "locale": "de_DE"}),  # Pipedrive v2
    ],
)
def test_crm_attributes_are_synced_from_every_provider_shape(deps, attributes, expected):
    event = canonical_event(
        "contact.updated",
        str(sorted(attributes)),
        received_at=NOW,
        provider="salesforce",
        connection="con_1",
        channel=Channel.CRM,
        attributes=attributes,
        contact=Contact(email="crm@example.com"),
    )
    route(event, deps, NOW, PUBLISHED.extend)
    owner = deps.contacts.owner("acme", Identity(kind="email", value="crm@example.com"))
    assert deps.contacts.get(owner).attributes == expected


def test_a_crm_opt_out_flag_is_recorded(deps):
    event = canonical_event(
        "contact.updated",
        "sf1",
        received_at=NOW,
        provider="salesforce",
        connection="con_1",
        channel=Channel.CRM,
        attributes={"fields": {"HasOptedOutOfEmail": "true"}},
        contact=Contact(email="out@example.com"),
    )
    route(event, deps, NOW, PUBLISHED.extend)
    owner = deps.contacts.owner("acme", Identity(kind="email", value="out@example.com"))
    assert deps.contacts.get(owner).consent.opted_out


def test_no_auto_reply_is_addressed_to_a_public_comment_or_mention() -> None:
    from functions.routing.logic import posts_in_public

    def event(provider: str, kind: str) -> CanonicalEvent:
        return canonical_event(
            kind,
            f"{provider}-{kind}",
            received_at=datetime(2026, 12, 2, tzinfo=UTC),
            provider=provider,
            connection="con_1",
            channel=Channel.SOCIAL,
        )

    assert posts_in_public(event("meta", "comment.created")) and posts_in_public(event("x", "mention.created"))
    assert not posts_in_public(event("meta", "message.received"))
    assert not posts_in_public(event("slack", "mention.created"))  # a thread reply in the team's own workspace
