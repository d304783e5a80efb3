"""Salesforce adapter: Outbound Messages (defusedxml parsing, OrganizationId check, one event per
Notification, SOAP acknowledgement), fuzzing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import defusedxml.ElementTree as DET
import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard_core.errors import HubError
from switchboard_core.events import Channel
from switchboard_core.providers import get_adapter
from switchboard_core.providers.base import (
    MalformedPayload,
    SignatureError,
    WebhookRequest,
)
from switchboard_core.providers.salesforce import SalesforceAdapter, org_key
from tests.unit.providers.fuzz import FUZZ
from tests.unit.providers.support import (
    assert_drafts_publishable,
    assert_raises_only_hub_errors,
    recorded_event,
)

ORG18 = "00D5g000004bQwEEAU"
ORG15 = "00D5g000004bQwE"
CREDENTIALS = {"organization_id": ORG18}
URL = "https://hub.example.com/webhooks/salesforce/conn_01HZZ"
NOW = datetime(2024, 6, 12, 14, 8, 6, tzinfo=UTC)
SOAP_NS = 'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'


def request(body: bytes) -> WebhookRequest:
    return WebhookRequest(
        method="POST", url=URL, headers={"content-type": "text/xml; charset=utf-8"}, body=body, received_at=NOW
    )


def recorded(name: str) -> bytes:
    return recorded_event("salesforce", name)


def envelope(inner: str, org: str = ORG18) -> bytes:
    return (
        f'<soapenv:Envelope {SOAP_NS} xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        f'<notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>{org}</OrganizationId>'
        f"{inner}</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


def notification(nid: str, kind: str = "Contact", fields: str = "<sf:Id>0035g00000ZzY1xAAF</sf:Id>") -> str:
    return (
        f'<Notification><Id>{nid}</Id><sObject xsi:type="sf:{kind}" '
        f'xmlns:sf="urn:sobject.enterprise.soap.sforce.com">{fields}</sObject></Notification>'
    )


def assert_publishable(drafts) -> None:
    assert_drafts_publishable(drafts, "salesforce", Channel.CRM, NOW)


@pytest.fixture
def adapter() -> SalesforceAdapter:
    return get_adapter("salesforce")


# --- the organization check ----------------------------------------------------------------------


@pytest.mark.parametrize("configured", [ORG18, ORG15, f"  {ORG18} "])
def test_matching_organization_is_accepted_in_15_or_18_character_form(adapter, configured):
    for name in ("contact-and-lead.xml", "case.xml"):
        adapter.verify(request(recorded(name)), {"organization_id": configured}, NOW)


@pytest.mark.parametrize(
    "configured", ["00D5g000004bQwF", "00D5g000004bqwE", "00D5g000004bQwEEAV"[:-3] + "X", "00Dxx0000001gER", "other"]
)
def test_another_organization_is_401(adapter, configured):
    with pytest.raises(SignatureError, match="OrganizationId"):
        adapter.verify(request(recorded("contact-and-lead.xml")), {"organization_id": configured}, NOW)


def test_a_message_without_organization_id_is_401(adapter):
    body = recorded("case.xml").replace(b"<OrganizationId>00D5g000004bQwEEAU</OrganizationId>", b"")
    with pytest.raises(SignatureError, match="OrganizationId"):
        adapter.verify(request(body), CREDENTIALS, NOW)
    with pytest.raises(SignatureError):
        adapter.verify(request(recorded("case.xml")), {"organization_id": ""}, NOW)


def test_org_key():
    assert org_key(ORG18) == org_key(ORG15) == ORG15
    assert org_key("short") == "short"


def test_credentials_must_look_like_an_org_id(adapter):
    assert adapter.validate_credentials({"organization_id": ORG18}) == CREDENTIALS
    for bad in ("00D5g000004bQw", "0035g00000ZzY1xAAF", "00D5g000004bQw!", ""):
        with pytest.raises(HubError) as caught:
            adapter.validate_credentials({"organization_id": bad})
        assert caught.value.status == 400


# --- hostile and malformed XML -------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">
]><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>&lol2;</soapenv:Body></soapenv:Envelope>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><x>&xxe;</x>"""


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        XXE,
        b"",
        b"not xml",
        b"<a>",
        b"\xff\xfe<a/>",
        b'<?xml version="1.0" encoding="klingon"?><a/>',
        b"<a/>",
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"/>',
        f"<soapenv:Envelope {SOAP_NS}><soapenv:Body><other/></soapenv:Body></soapenv:Envelope>".encode(),
        b'<Envelope xmlns="urn:other"><Body/></Envelope>',
        b'{"json": true}',
        b"<a>\x00</a>",
    ],
)
def test_unreadable_bodies_are_400_everywhere(adapter, body):
    with pytest.raises(MalformedPayload):
        adapter.verify(request(body), CREDENTIALS, NOW)
    with pytest.raises(MalformedPayload):
        adapter.normalise(request(body))
    assert adapter.delivery_id(request(body)).startswith("sha256:")


@pytest.mark.parametrize(
    "inner",
    [
        "",
        notification(""),
        "<Notification><Id>04l</Id></Notification>",
        "".join(notification(f"04l{i:015d}") for i in range(101)),
    ],
)
def test_wrong_shapes_are_400(adapter, inner):
    with pytest.raises(MalformedPayload):
        adapter.normalise(request(envelope(inner)))


def test_one_hundred_notifications_are_accepted(adapter):
    body = envelope("".join(notification(f"04l{i:015d}") for i in range(100)))
    adapter.verify(request(body), CREDENTIALS, NOW)
    events = adapter.normalise(request(body))
    assert len(events) == 100 and len({e.provider_event_id for e in events}) == 100
    assert adapter.delivery_id(request(body)).startswith("notifications-sha256:")


# --- normalisation -------------------------------------------------------------------------------


def test_contact_and_lead(adapter):
    drafts = adapter.normalise(request(recorded("contact-and-lead.xml")))
    assert_publishable(drafts)
    contact, lead = drafts
    assert (contact.type, lead.type) == ("contact.updated", "contact.updated")
    assert contact.provider_event_id == "04l5g00000Fh2QaAAJ"
    assert contact.contact.email == "ada.lovelace@example.com"
    assert contact.contact.phone == "+14155550123"  # MobilePhone, as Phone is nil
    assert contact.contact.name == "Ada Lovelace"
    assert contact.contact.crm_ids == {"salesforce": "0035g00000ZzY1xAAF"}
    assert contact.conversation_key == f"salesforce:{ORG15}:Contact:0035g00000ZzY1xAAF"
    assert contact.occurred_at == datetime(2024, 6, 12, 14, 8, 3, tzinfo=UTC)
    fields = contact.attributes["fields"]
    assert fields["Title"] == "Analyst & Programmer" and fields["Phone"] is None
    assert fields["Account"] == {"type": "Account", "Id": "0015g00000Ac1BcAAJ", "Name": "Analytical Engines Ltd"}
    assert contact.attributes["sobject_type"] == "Contact"
    assert contact.attributes["organization_id"] == ORG18
    assert lead.contact.email == "charles@example.com" and lead.contact.phone == "+442079460000"
    assert lead.contact.name == "Charles Babbage"


def test_session_id_is_never_copied(adapter):
    drafts = adapter.normalise(request(recorded("contact-and-lead.xml")))
    dumped = json.dumps([d.model_dump(mode="json") for d in drafts])
    assert "FakeSessionToken" not in dumped
    assert drafts[0].attributes["session_id_sent"] is True


def test_case_and_other_sobjects(adapter):
    case, opportunity = adapter.normalise(request(recorded("case.xml")))
    assert_publishable([case, opportunity])
    assert case.type == "ticket.updated"
    assert case.text == "My order #1042 never arrived."
    assert case.contact.email == "ada.lovelace@example.com" and case.contact.phone == "+14155550123"
    assert case.contact.crm_ids == {"salesforce": "0035g00000ZzY1xAAF"}
    assert case.conversation_key == f"salesforce:{ORG15}:Case:5005g00000Cd9LkAAJ"
    assert case.attributes["fields"]["CaseNumber"] == "00001042"
    assert opportunity.type == "crm.object_changed"
    assert opportunity.attributes["sobject_type"] == "Opportunity"
    assert opportunity.contact.crm_ids == {"salesforce_opportunity": "0065g00000Op4RsAAJ"}
    assert case.attributes["session_id_sent"] is False


def test_delivery_id_is_the_sorted_notification_ids(adapter):
    assert (
        adapter.delivery_id(request(recorded("contact-and-lead.xml")))
        == "notifications:04l5g00000Fh2QaAAJ,04l5g00000Fh2QbAAJ"
    )
    swapped = envelope(notification("B") + notification("A"))
    assert adapter.delivery_id(request(swapped)) == "notifications:A,B"


def test_success_response_is_the_wsdl_acknowledgement(adapter):
    response = adapter.success_response(request(recorded("case.xml")))
    assert response.status == 200 and response.content_type.startswith("text/xml")
    root = DET.fromstring(response.body)
    ack = root.find(
        "{http://schemas.xmlsoap.org/soap/envelope/}Body/"
        "{http://soap.sforce.com/2005/09/outbound}notificationsResponse/"
        "{http://soap.sforce.com/2005/09/outbound}Ack"
    )
    assert ack is not None and ack.text == "true"


# --- property tests --------------------------------------------------------------------------------

XML_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12).map(
    lambda s: s.replace("&", "&amp;").replace("<", "&lt;")
)
FIELD = st.tuples(
    st.sampled_from(
        [
            "Id",
            "Email",
            "Phone",
            "MobilePhone",
            "Name",
            "FirstName",
            "LastName",
            "LastModifiedDate",
            "SuppliedEmail",
            "SuppliedPhone",
            "ContactId",
            "Description",
            "Custom__c",
        ]
    ),
    st.one_of(
        XML_TEXT, st.sampled_from(["a@b.c", "+1 415 555 0100", "2024-06-12T14:08:05.000Z", "not a date", "00 44"])
    ),
)


@st.composite
def messages(draw):
    items = []
    for index in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["Contact", "Lead", "Case", "Opportunity", "x", ""]))
        fields = "".join(f"<sf:{n}>{v}</sf:{n}>" for n, v in draw(st.lists(FIELD, max_size=6)))
        items.append(notification(draw(st.one_of(st.just(f"04l{index}"), XML_TEXT)), kind, fields))
    return envelope("".join(items), org=draw(st.sampled_from([ORG18, ORG15, "00D5g000004bQwF"])))


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=300),
        messages().map(lambda b: b[: len(b)]),
        st.tuples(messages(), st.integers(0, 400)).map(lambda t: t[0][: t[1]]),
    ),
    organization=st.one_of(st.text(max_size=20), st.just(ORG18)),
)
def test_property_any_request_raises_only_hub_errors(body, organization):
    adapter = get_adapter("salesforce")
    req = request(body)
    assert_raises_only_hub_errors(adapter, req, {"organization_id": organization}, NOW, assert_publishable)


@FUZZ
@given(body=messages())
def test_property_messages_of_our_org_verify_and_normalise_or_are_malformed(body):
    adapter = get_adapter("salesforce")
    req = request(body)
    try:
        adapter.verify(req, CREDENTIALS, NOW)
    except SignatureError:
        assert b"00D5g000004bQwF<" in body  # only the other org is refused
        return
    assert adapter.delivery_id(req)
    try:
        assert_publishable(adapter.normalise(req))
    except MalformedPayload:
        pass
