"""Sample webhooks for `salesforce`: Outbound Messages (SOAP 1.1, text/xml) shaped like the
outbound-messaging WSDL, carrying the connection's organization id (Salesforce signs nothing)."""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timedelta
from xml.sax.saxutils import escape

from infra.local.samples.base import SignedRequest, phone, random_hex

PROVIDER = "salesforce"
SAMPLES: tuple[str, ...] = ("contact-updated", "case-updated")

_ALNUM = string.ascii_letters + string.digits
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

# The SOAP envelope's opening tag, split only to keep source lines short.
_ENVELOPE_OPEN = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
)


def salesforce_id(prefix: str) -> str:
    """A well-formed 18-character Salesforce id: 15 characters + the case-safe checksum."""
    base = prefix + "5g" + "".join(secrets.choice(_ALNUM) for _ in range(15 - len(prefix) - 2))
    suffix = "".join(
        _CHECKSUM[sum(1 << j for j, c in enumerate(base[k * 5 : k * 5 + 5]) if "A" <= c <= "Z")] for k in range(3)
    )
    return base + suffix


def demo_credentials() -> dict[str, str]:
    return {"organization_id": salesforce_id("00D")}


def _sobject(kind: str, fields: dict[str, str | None]) -> str:
    lines = []
    for name, value in fields.items():
        if value is None:
            lines.append(f'     <sf:{name} xsi:nil="true"/>')
        else:
            lines.append(f"     <sf:{name}>{escape(value)}</sf:{name}>")
    inner = "\n".join(lines)
    return (
        f'    <sObject xsi:type="sf:{kind}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">\n{inner}\n    </sObject>'
    )


def build(sample: str, credentials: dict[str, str], url: str, now: datetime) -> SignedRequest:
    org = credentials["organization_id"]
    modified = (now - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    email = f"ada.{random_hex(3)}@example.com"
    contact_id = salesforce_id("003")
    if sample == "contact-updated":
        sobject = _sobject(
            "Contact",
            {
                "Id": contact_id,
                "Email": email,
                "FirstName": "Ada",
                "LastName": "Lovelace",
                "LastModifiedDate": modified,
                "MobilePhone": phone(),
                "Phone": None,
            },
        )
    else:  # case-updated
        sobject = _sobject(
            "Case",
            {
                "Id": salesforce_id("500"),
                "CaseNumber": f"{secrets.randbelow(10**8):08d}",
                "ContactId": contact_id,
                "Description": "My order never arrived.",
                "LastModifiedDate": modified,
                "Status": "New",
                "Subject": "Order never arrived",
                "SuppliedEmail": email,
                "SuppliedName": "Ada Lovelace",
                "SuppliedPhone": phone(),
            },
        )
    org15 = org[:15]
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
{_ENVELOPE_OPEN}
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
   <ActionId>{salesforce_id("04k")}</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/59.0/{org15}</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/59.0/{org15}</PartnerUrl>
   <Notification>
    <Id>{salesforce_id("04l")}</Id>
{sobject}
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>
""".encode()
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""', "User-Agent": "Salesforce"}
    return SignedRequest("POST", url, headers, body)
