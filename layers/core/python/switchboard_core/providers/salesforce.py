"""Salesforce: Outbound Messages (workflow / flow outbound message actions), SOAP 1.1.

Contract (docs/providers/salesforce.md has the sources):

* A POST of ``text/xml``: ``soapenv:Envelope/Body/notifications`` (namespace
  ``http://soap.sforce.com/2005/09/outbound``) with ``OrganizationId``, ``ActionId``,
  ``SessionId`` (nillable), ``EnterpriseUrl``, ``PartnerUrl`` and 1..100 ``Notification``
  elements, each ``<Id>`` (the notification id) + ``<sObject xsi:type="sf:Contact">``
  with the fields the outbound message selected.
* Parsed with defusedxml only (no DTDs, no entities, no external references); anything
  unreadable is MalformedPayload (400).
* **Authenticity.** Outbound messages carry no signature. The only check the payload
  allows is that ``OrganizationId`` is the connection's ``organization_id`` (15- or
  18-character id; the first 15 characters are compared, case-sensitively, in constant
  time). That is *not* cryptographic: anyone who knows the org id can forge a message.
  Real protection is on the network side — mutual TLS with Salesforce's client
  certificate and/or Salesforce's IP ranges — which the hub's edge must provide.
* ``SessionId`` is a live API session: it is never stored in attributes or logged.
* Success = the WSDL's ``notificationsResponse`` with ``<Ack>true</Ack>`` (text/xml);
  anything else makes Salesforce retry (up to 24 hours).

Normalisation: one event per ``Notification``, provider_event_id = ``Notification/Id``
(Salesforce redelivers and says to dedupe on it). Contact/Lead → ``contact.updated``
(Email, Phone/MobilePhone through _common.typed_phone, Name or FirstName + LastName,
``crm_ids["salesforce"]``); Case → ``ticket.updated`` (SuppliedEmail/ContactEmail,
SuppliedPhone/ContactPhone, SuppliedName, ``crm_ids["salesforce"]`` = ContactId, Description
as text); any other sObject → ``crm.object_changed``. The sObject type and every field go
into attributes. conversation_key ``salesforce:{org id (15)}:{sObject type}:{record id}``.
Delivery id: the sorted notification ids of the message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException

from switchboard_core.errors import HubError
from switchboard_core.events import Channel, Contact, EventDraft
from switchboard_core.providers._common import (
    clean_str,
    draft,
    email_or_none,
    from_iso,
    refuse_invalid_models,
    safe_xml,
    typed_phone,
    xml_local_name,
)
from switchboard_core.providers.base import (
    Credentials,
    HttpResponse,
    MalformedPayload,
    ProviderAdapter,
    SignatureError,
    WebhookRequest,
    constant_time_equal,
)

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_NOTIFICATIONS = 100
MAX_FIELD_DEPTH = 4

ACK_RESPONSE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}">'
    "<soapenv:Body>"
    f'<notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>true</Ack></notificationsResponse>'
    "</soapenv:Body>"
    "</soapenv:Envelope>"
)

_CONTACT_TYPES = {"Contact", "Lead"}


def _child(element: Element, name: str) -> Element | None:
    for child in element:
        if xml_local_name(child.tag) == name:
            return child
    return None


def _text(element: Element | None) -> str | None:
    if element is None or element.get(f"{{{XSI_NS}}}nil") == "true":
        return None
    text = clean_str(element.text or "").strip()
    return text or None


def org_key(value: str) -> str:
    """The part of an org id that identifies it: the 15 case-sensitive characters of a 15- or
    18-character id (the last 3 of an 18-character id are a checksum of the first 15)."""
    value = value.strip()
    if len(value) in (15, 18) and value.isascii() and value.isalnum():
        return value[:15]
    return value


def _fields(element: Element, depth: int = 1) -> dict[str, Any]:
    """An sObject's fields: name -> text (None when nil); a nested record (e.g. Account on a
    Contact) -> dict, to a bounded depth."""
    fields: dict[str, Any] = {}
    for child in element:
        name = clean_str(xml_local_name(child.tag))
        if len(child) and depth < MAX_FIELD_DEPTH:
            value: Any = _fields(child, depth + 1)
            sobject_type = _sobject_type(child)
            if sobject_type:
                value = {"type": sobject_type, **value}
        else:
            value = _text(child)
        fields[name] = value
    return fields


def _sobject_type(element: Element) -> str | None:
    declared = element.get(f"{{{XSI_NS}}}type")
    if not declared:
        return None
    return clean_str(declared.rsplit(":", 1)[-1]).strip() or None


class ParsedMessage:
    """The parts of an outbound message the adapter uses."""

    def __init__(self, body: bytes) -> None:
        try:
            root = safe_xml(body)
        except (ParseError, DefusedXmlException, ValueError, LookupError, UnicodeError, RecursionError) as exc:
            raise MalformedPayload(f"body is not a readable XML document ({type(exc).__name__})") from None
        if root.tag != f"{{{SOAP_ENV}}}Envelope":
            raise MalformedPayload("body is not a SOAP 1.1 Envelope")
        soap_body = root.find(f"{{{SOAP_ENV}}}Body")
        notifications = soap_body.find(f"{{{OUTBOUND_NS}}}notifications") if soap_body is not None else None
        if notifications is None:
            raise MalformedPayload("the SOAP Body holds no outbound-messaging notifications element")
        self.organization_id = _text(_child(notifications, "OrganizationId"))
        self.action_id = _text(_child(notifications, "ActionId"))
        self.has_session = _text(_child(notifications, "SessionId")) is not None
        self.enterprise_url = _text(_child(notifications, "EnterpriseUrl"))
        self.partner_url = _text(_child(notifications, "PartnerUrl"))
        self.notifications = [child for child in notifications if xml_local_name(child.tag) == "Notification"]


def parsed_message(request: WebhookRequest) -> ParsedMessage:
    """The request's message, parsed once per request (verify, the delivery id and normalise
    all read it); a body that cannot be read raises MalformedPayload each time."""
    message = request.__dict__.get("_salesforce_message")
    if message is None:
        message = ParsedMessage(request.body)
        object.__setattr__(request, "_salesforce_message", message)  # frozen: a cache, not a field
    return message


class SalesforceAdapter(ProviderAdapter):
    name: ClassVar[str] = "salesforce"
    channel: ClassVar[Channel] = Channel.CRM
    title: ClassVar[str] = "Salesforce (Outbound Messages)"
    credential_fields: ClassVar[tuple[str, ...]] = ("organization_id",)
    content_types: ClassVar[tuple[str, ...]] = ("text/xml",)

    def validate_credentials(self, credentials: Mapping[str, Any]) -> dict[str, str]:
        values = super().validate_credentials(credentials)
        org = values["organization_id"].strip()
        if not (len(org) in (15, 18) and org.isascii() and org.isalnum() and org.startswith("00D")):
            raise HubError(
                "organization_id must be a Salesforce org id (15 or 18 characters starting with 00D)",
                status=400,
                code="invalid_credentials",
            )
        return {"organization_id": org}

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        expected = credentials.get("organization_id") if isinstance(credentials, Mapping) else None
        if not isinstance(expected, str) or not expected.strip():
            raise SignatureError("the connection has no organization_id to check the message against")
        message = parsed_message(request)
        if message.organization_id is None:
            raise SignatureError("the message names no OrganizationId")
        if not constant_time_equal(org_key(clean_str(expected)), org_key(message.organization_id)):
            raise SignatureError("OrganizationId is not this connection's organization")

    # ------------------------------------------------------------- delivery id
    def delivery_id(self, request: WebhookRequest) -> str:
        try:
            message = parsed_message(request)
        except MalformedPayload:
            return "sha256:" + hashlib.sha256(request.body).hexdigest()
        ids = sorted({_text(_child(item, "Id")) or "" for item in message.notifications})
        joined = ",".join(ids)
        if not joined or len(joined) > 200:
            source = f"{message.organization_id or ''}|{joined}" if joined else request.body.decode("latin-1")
            return "notifications-sha256:" + hashlib.sha256(source.encode("utf-8")).hexdigest()
        return "notifications:" + joined

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        message = parsed_message(request)
        if not message.notifications:
            raise MalformedPayload("the message has no Notification")
        if len(message.notifications) > MAX_NOTIFICATIONS:
            raise MalformedPayload(f"the message has more than {MAX_NOTIFICATIONS} notifications")
        org = org_key(message.organization_id or "-")
        envelope = {
            "organization_id": message.organization_id,
            "action_id": message.action_id,
            "enterprise_url": message.enterprise_url,
            "partner_url": message.partner_url,
            "session_id_sent": message.has_session,
        }
        return [self._event(item, index, org, envelope) for index, item in enumerate(message.notifications)]

    def _event(self, item: Element, index: int, org: str, envelope: dict[str, Any]) -> EventDraft:
        notification_id = _text(_child(item, "Id"))
        if notification_id is None:
            raise MalformedPayload(f"notification #{index} has no Id")
        sobject = _child(item, "sObject")
        if sobject is None:
            raise MalformedPayload(f"notification #{index} has no sObject")
        sobject_type = _sobject_type(sobject) or "sObject"
        fields = _fields(sobject)

        def field(*names: str) -> str | None:
            for name in names:
                value = fields.get(name)
                if isinstance(value, str) and value:
                    return value
            return None

        record_id = field("Id")
        if sobject_type in _CONTACT_TYPES:
            event_type = "contact.updated"
            name = field("Name") or " ".join(part for part in (field("FirstName"), field("LastName")) if part) or None
            contact = Contact(
                email=email_or_none(field("Email")),
                phone=typed_phone(field("Phone")) or typed_phone(field("MobilePhone")),
                name=name,
                crm_ids={"salesforce": record_id} if record_id else {},
            )
            text = None
        elif sobject_type == "Case":
            event_type = "ticket.updated"
            contact_id = field("ContactId")
            contact = Contact(
                email=email_or_none(field("SuppliedEmail", "ContactEmail")),
                phone=typed_phone(field("SuppliedPhone", "ContactPhone", "ContactMobile")),
                name=field("SuppliedName"),
                crm_ids={"salesforce": contact_id} if contact_id else {},
            )
            text = field("Description")
        else:
            event_type = "crm.object_changed"
            contact = Contact(crm_ids={f"salesforce_{sobject_type.lower()}": record_id} if record_id else {})
            text = None
        return draft(
            type=event_type,
            provider_event_id=notification_id,
            occurred_at=from_iso(field("LastModifiedDate", "SystemModstamp", "CreatedDate")),
            contact=contact,
            conversation_key=f"salesforce:{org}:{sobject_type}:{record_id}" if record_id else None,
            text=text,
            attributes={"sobject_type": sobject_type, "fields": fields, **envelope},
        )

    # ---------------------------------------------------------------- response
    def success_response(self, request: WebhookRequest) -> HttpResponse:
        return HttpResponse(status=200, body=ACK_RESPONSE, content_type="text/xml; charset=utf-8")
