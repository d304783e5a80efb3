"""Freshdesk: an answer is a reply on the customer's ticket, or a private note.

API v2 (https://developers.freshdesk.com/api/#reply_ticket, https://developers.freshdesk.com/api/#add_note_to_a_ticket,
https://developers.freshdesk.com/api/#authentication, https://developers.freshdesk.com/api/#error,
https://developers.freshdesk.com/api/#ratelimit):

* public: ``POST https://{domain}.freshdesk.com/api/v2/tickets/{id}/reply`` ``{"body", "user_id"?}``
  (e-mailed to the requester);
* private: ``POST .../api/v2/tickets/{id}/notes`` ``{"body", "private": true, "user_id"?}``
  (agents only);
* HTTP Basic with the agent's API key as the user name and any password (``X``).

``body`` is HTML: the text is escaped and its line breaks become ``<br>``. Both answer 201 with
the conversation (``{"id", "body", "body_text", "ticket_id", "user_id", ...}``); its ``id`` is
the provider message id. Freshdesk has no webhook that names a reply's id (automation rules
render the ticket, not the conversation), so there is no delivery status beyond the API's answer.

Errors: ``{"description": "Validation failed", "errors": [{"field", "message", "code"}]}`` (400),
``{"code": "invalid_credentials", "message"}`` (401), ``{"code": "access_denied", ...}`` (403),
404 (no such ticket: empty body), 429 with ``Retry-After`` seconds, 5xx. Codes:
``freshdesk_<code>`` (the first error's ``code``); 429 and 5xx are retried.

Per-tenant host, as for Zendesk: ``base_url`` is the template ``https://{domain}.freshdesk.com``;
any other base URL (the sandbox) replaces the origin and carries the domain as the first path
segment. ``domain`` is validated (a bare subdomain), so the URL can only be a freshdesk.com host.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound.base import (
    OutboundMessage,
    OutboundRequest,
    PermanentFailure,
    ProviderResponse,
    Sender,
    Visibility,
    failure_for_status,
)

HOST_TEMPLATE = "https://{domain}.freshdesk.com"
MAX_BODY_CHARS = 60_000
_ID = re.compile(r"^[1-9][0-9]{0,19}$")
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_DOMAIN = re.compile(r"^([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\.freshdesk\.com$")


class FreshdeskCredentials(BaseModel):
    """An agent's API key (Profile settings -> View API key)."""

    model_config = ConfigDict(extra="forbid")

    domain: str = Field(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", description="the helpdesk: 'acme' for acme.freshdesk.com"
    )
    api_key: str = Field(pattern=r"^[A-Za-z0-9]{16,64}$")
    user_id: str | None = Field(default=None, pattern=r"^[1-9][0-9]{0,19}$", description="answer as this agent")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id(value: Any) -> str | None:
    text = str(value).strip().lstrip("#") if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    return text if text is not None and _ID.match(text) else None


def _helpdesk(payload: Mapping[str, Any]) -> str | None:
    """The helpdesk's subdomain, from the rule body's ``domain`` or its ticket URL, when it names one."""
    for key in ("domain", "url", "ticket_url"):
        value = payload.get(key)
        if not isinstance(value, str):
            continue
        try:
            host = urlsplit(value if "//" in value else f"//{value}").hostname or ""
        except ValueError:  # not a URL at all ("[" ...)
            continue
        match = _DOMAIN.match(host)
        if match:
            return match.group(1)
    return None


def as_html(text: str) -> str:
    return html.escape(text.replace("\r\n", "\n")).replace("\n", "<br>")


class FreshdeskSender(Sender):
    provider: ClassVar[str] = "freshdesk"
    base_url: ClassVar[str] = HOST_TEMPLATE
    credentials_model: ClassVar[type[BaseModel]] = FreshdeskCredentials

    def address(self, event: CanonicalEvent, visibility: Visibility | None = None) -> dict[str, str] | None:
        if event.type != "ticket.updated" or event.attributes.get("kind") != "freshdesk.automation":
            return None
        attributes = event.attributes
        payload = _dict(attributes.get("freshdesk_webhook")) or attributes  # the rule's "simple" wrapper
        ticket = _dict(payload.get("ticket"))
        ticket_id = _id(payload.get("ticket_id")) or _id(ticket.get("id")) or _id(payload.get("id"))
        if ticket_id is None:
            return None
        address = {"ticket_id": ticket_id, "kind": "note" if visibility == "private" else "reply"}
        domain = _helpdesk(payload)
        if domain:  # so an answer never goes to another helpdesk than the one that wrote
            address["domain"] = domain
        return address

    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        assert isinstance(credentials, FreshdeskCredentials)
        if address.get("domain") and address["domain"] != credentials.domain:
            raise PermanentFailure(
                "domain_mismatch",
                f"the ticket is on {address['domain']}.freshdesk.com; the outbound credentials are for "
                f"{credentials.domain}.freshdesk.com",
            )
        if message.attachments:
            raise PermanentFailure("attachments_unsupported", "Freshdesk takes attachments as uploaded files only")
        note = address.get("kind") == "note"
        body: dict[str, Any] = {"body": as_html(message.text[:MAX_BODY_CHARS])}
        if note:
            body["private"] = True
        if credentials.user_id:
            body["user_id"] = int(credentials.user_id)
        login = base64.b64encode(f"{credentials.api_key}:X".encode()).decode("ascii")
        # The helpdesk's own host, or the sandbox base with the domain as the first path segment.
        origin = (
            HOST_TEMPLATE.format(domain=credentials.domain)
            if base_url == HOST_TEMPLATE
            else f"{base_url}/{credentials.domain}"
        )
        return OutboundRequest(
            method="POST",
            url=f"{origin}/api/v2/tickets/{quote(address['ticket_id'], safe='')}/{'notes' if note else 'reply'}",
            headers={
                "Authorization": f"Basic {login}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        )

    def outcome(self, response: ProviderResponse) -> str:
        payload = response.json()
        if response.status in (200, 201) and isinstance(payload, dict):
            conversation_id = _id(payload.get("id"))
            if conversation_id is None:
                raise PermanentFailure("unexpected_response", "Freshdesk answered without the conversation id")
            return conversation_id
        payload = _dict(payload)
        errors = payload.get("errors")
        first = _dict(errors[0]) if isinstance(errors, list) and errors else {}
        code = first.get("code") or payload.get("code")
        words = [
            str(part)
            for part in (payload.get("description"), first.get("field"), first.get("message"), payload.get("message"))
            if isinstance(part, str) and part
        ]
        if not words:
            words = ["no such ticket"] if response.status == 404 else [f"HTTP {response.status}"]
        raise failure_for_status(
            response,
            f"freshdesk_{code}" if isinstance(code, str) and _CODE.match(code) else f"http_{response.status}",
            ": ".join(words),
        )
