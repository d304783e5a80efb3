"""Freshdesk: webhooks fired by automation rules ("Trigger webhook" action).

Contract (docs/providers/freshdesk.md has the sources):

* Freshdesk does not sign webhooks. The automation rule's webhook action lets the admin
  choose the authentication, so a connection holds exactly one of two credential shapes:
  - ``{"header_name", "header_value"}``: a custom header (added under "Custom headers")
    carrying a shared secret; the header value is compared in constant time;
  - ``{"username", "password"}``: the rule's "Requires authentication → Username/Password"
    option, i.e. HTTP Basic auth; both halves are compared in constant time.
  Anything else when the connection is created is a 400 naming the two shapes.
* No timestamp: replays are bounded by deduplication.

Body: the JSON the rule's "Advanced" content defines; docs/providers/freshdesk.md gives the
recommended template. Accepted: a JSON object (optionally wrapped in ``freshdesk_webhook``,
or with a ``ticket`` object) naming the ticket (``ticket_id``, ``ticket.id`` or ``id``) →
one ``ticket.updated``; requester e-mail/phone/name, ``latest_public_comment`` as text.
Event and delivery id: ``ticket:{id}:{updated_at}`` (so every update of a ticket is an
event, and a retry of the same one is a duplicate); without ``updated_at``, the body digest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from switchboard_core.events import Channel, Contact, EventDraft
from switchboard_core.providers._common import (
    body_digest_id,
    bounded_id,
    check_basic_auth,
    clean_str,
    draft,
    email_or_none,
    from_iso,
    header,
    invalid_credentials,
    load_json,
    refuse_invalid_models,
    scalar_str,
    secret_bytes,
    text_or_none,
    typed_phone,
)
from switchboard_core.providers.base import (
    Credentials,
    MalformedPayload,
    ProviderAdapter,
    SignatureError,
    WebhookRequest,
    constant_time_equal,
)

HEADER_SHAPE = ("header_name", "header_value")
BASIC_SHAPE = ("username", "password")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$")  # an HTTP header field name
_RESERVED_HEADERS = {"content-type", "content-length", "host", "user-agent", "transfer-encoding", "connection"}


class FreshdeskAdapter(ProviderAdapter):
    name: ClassVar[str] = "freshdesk"
    channel: ClassVar[Channel] = Channel.CRM
    title: ClassVar[str] = "Freshdesk (automation-rule webhooks)"
    # Two alternative shapes: header_name + header_value, or username + password (see describe()).
    credential_fields: ClassVar[tuple[str, ...]] = HEADER_SHAPE + BASIC_SHAPE

    # ------------------------------------------------------------- credentials
    def validate_credentials(self, credentials: Mapping[str, Any]) -> dict[str, str]:
        given = set(credentials) if isinstance(credentials, Mapping) else set()
        shape = next((fields for fields in (HEADER_SHAPE, BASIC_SHAPE) if given == set(fields)), None)
        if shape is None:
            raise invalid_credentials(
                "credentials for freshdesk need exactly one of two shapes: "
                '{"header_name", "header_value"} (a custom header with a shared secret) or '
                '{"username", "password"} (Basic auth); got fields '
                f"{sorted(str(name) for name in given)}"
            )
        values = {name: credentials[name] for name in shape}
        if not all(isinstance(value, str) and value for value in values.values()):
            raise invalid_credentials(f"credential values {list(shape)} must be non-empty strings")
        if shape == HEADER_SHAPE:
            name = values["header_name"]
            if not _TOKEN.match(name) or name.lower() in _RESERVED_HEADERS:
                raise invalid_credentials(
                    "header_name must be a plain HTTP header name (letters, digits, '-'), "
                    "not one Freshdesk or the network sets itself"
                )
            if len(values["header_value"]) < 16:
                raise invalid_credentials("header_value must be a random secret of at least 16 characters")
        return values

    def describe(self) -> dict[str, Any]:
        description = super().describe()
        description["credential_shapes"] = [list(HEADER_SHAPE), list(BASIC_SHAPE)]
        return description

    def credential_headers(self, credentials: Credentials) -> frozenset[str]:
        """The configured header carries the shared secret itself (Basic auth arrives in
        Authorization, which every provider redacts)."""
        header_name = credentials.get("header_name") if isinstance(credentials, Mapping) else None
        extra = {header_name.lower()} if isinstance(header_name, str) and header_name else set()
        return super().credential_headers(credentials) | extra

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        header_name = credentials.get("header_name") if isinstance(credentials, Mapping) else None
        if isinstance(header_name, str) and header_name:
            expected = secret_bytes(credentials, "header_value")
            if expected is None:
                raise SignatureError("the connection has no header_value to check")
            given = header(request, header_name)
            if given is None:
                raise SignatureError(f"missing the {clean_str(header_name)} header this connection is configured with")
            if not constant_time_equal(expected, given):
                raise SignatureError(f"the {clean_str(header_name)} header does not match the connection")
            return
        username, password = secret_bytes(credentials, "username"), secret_bytes(credentials, "password")
        if username is None or password is None:
            raise SignatureError("the connection has neither a header secret nor Basic auth credentials")
        check_basic_auth(request, username, password)

    # ------------------------------------------------------------- delivery id
    def delivery_id(self, request: WebhookRequest) -> str:
        try:
            payload = load_json(request)
            ticket_id, updated_at = self._ids(self._unwrap(payload))
        except MalformedPayload:
            return body_digest_id(request.body)
        if updated_at is None:
            return body_digest_id(request.body)
        return bounded_id(f"ticket:{ticket_id}:{updated_at}")

    @staticmethod
    def _unwrap(payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise MalformedPayload("a Freshdesk webhook body must be a JSON object")
        if isinstance(payload.get("freshdesk_webhook"), dict):
            return payload["freshdesk_webhook"]
        return payload

    @staticmethod
    def _ticket(payload: dict[str, Any]) -> dict[str, Any]:
        return payload["ticket"] if isinstance(payload.get("ticket"), dict) else payload

    def _ids(self, payload: dict[str, Any]) -> tuple[str, str | None]:
        ticket = self._ticket(payload)
        ticket_id = scalar_str(payload.get("ticket_id")) or scalar_str(ticket.get("id"))
        if ticket_id is None:
            raise MalformedPayload("the body must name the ticket: ticket_id, ticket.id or id")
        updated_at = (
            scalar_str(payload.get("updated_at"))
            or scalar_str(ticket.get("updated_at"))
            or scalar_str(payload.get("ticket_updated_at"))
        )
        return ticket_id.lstrip("#"), updated_at

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        outer = load_json(request)
        payload = self._unwrap(outer)
        ticket_id, updated_at = self._ids(payload)
        ticket = self._ticket(payload)
        requester = ticket.get("requester")
        requester = requester if isinstance(requester, dict) else {}

        def pick(*names: str) -> Any:
            for name in names:
                for source in (payload, ticket, requester):
                    if source.get(name) not in (None, ""):
                        return source.get(name)
            return None

        email = email_or_none(pick("requester_email", "ticket_requester_email")) or email_or_none(
            requester.get("email")
        )
        phone = (
            typed_phone(pick("requester_phone", "ticket_requester_phone"))
            or typed_phone(requester.get("phone"))
            or typed_phone(requester.get("mobile"))
        )
        name = text_or_none(pick("requester_name", "ticket_requester_name")) or text_or_none(requester.get("name"))
        requester_id = scalar_str(pick("requester_id", "ticket_requester_id")) or scalar_str(requester.get("id"))
        text = text_or_none(pick("latest_public_comment", "ticket_latest_public_comment", "comment"))
        domain = scalar_str(pick("domain")) or "-"
        event_id = f"ticket:{ticket_id}:{updated_at}" if updated_at else body_digest_id(request.body)
        return [
            draft(
                type="ticket.updated",
                provider_event_id=event_id,
                occurred_at=from_iso(updated_at),
                contact=Contact(
                    email=email, phone=phone, name=name, crm_ids={"freshdesk": requester_id} if requester_id else {}
                ),
                conversation_key=f"freshdesk:{domain}:{ticket_id}",
                text=text or None,
                attributes={"kind": "freshdesk.automation", **outer},
            )
        ]
