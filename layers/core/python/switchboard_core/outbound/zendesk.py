"""Zendesk Support: an answer is a comment on the customer's ticket.

API (https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-ticket,
https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/ "Creating ticket
comments", https://developer.zendesk.com/documentation/ticketing/reference-guides/ticket-audit-events-reference/):
``PUT https://{subdomain}.zendesk.com/api/v2/tickets/{ticket_id}.json`` with
``{"ticket": {"comment": {"body", "public", "author_id"?}, "metadata": {...}}}`` and API token
auth: HTTP Basic ``{email}/token:{api_token}``
(https://developer.zendesk.com/api-reference/introduction/security-and-auth/). ``public: true``
is a reply the requester sees (and is e-mailed); ``public: false`` is an internal note. The
ticket's ``metadata`` is write-only and lands in the audit's ``metadata.custom``: the hub's
message id goes there, so a comment found in Zendesk can be traced to the answer.

The answer 200 is ``{"ticket": {...}, "audit": {"id", "events": [...]}}``; the Comment event
of the audit carries the comment's id (a comment *is* an audit event), and that id is the
provider message id: the ``ticket.comment_added`` webhook for the comment names it as
``event.comment.id``, which `status` reads back as ``delivered``. Zendesk sends no other
delivery report.

Errors (https://developer.zendesk.com/api-reference/introduction/requests/ "Response format",
https://developer.zendesk.com/api-reference/introduction/rate-limits/): ``{"error": "RecordNotFound",
"description": "Not found"}`` (404), ``{"error": "RecordInvalid", "description", "details":
{field: [{"description"}]}}`` (422: e.g. a closed ticket or the 5,000-comment limit),
``{"error": "Couldn't authenticate you"}`` (401), 403 forbidden, 409 a concurrent update of the
same ticket (retried), 429 with ``Retry-After`` seconds, 5xx. Codes: ``zendesk_<error>``.

Per-tenant host: the API lives on the account's own host. ``base_url`` is the template
``https://{subdomain}.zendesk.com``: with it the request goes to the connection's subdomain;
with any other base URL (the loopback sandbox, ``SWITCHBOARD_PROVIDER_API_URL`` + ``/zendesk``)
the base replaces the origin and the subdomain becomes the first path segment
(``{base}/{subdomain}/api/v2/...``). The subdomain is validated (``^[a-z0-9][a-z0-9-]*$``), so the
URL can only ever be a zendesk.com host.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound.base import (
    DeliveryStatus,
    OutboundMessage,
    OutboundRequest,
    PermanentFailure,
    ProviderResponse,
    Sender,
    TransientFailure,
    Visibility,
    failure_for_status,
    retry_after,
)

HOST_TEMPLATE = "https://{subdomain}.zendesk.com"
# Zendesk's own limit for one comment body is far above this; long answers are not clipped
# to SMS length here (a ticket comment is e-mail-like), only bounded.
MAX_COMMENT_CHARS = 65_000
# 409: "the ticket was updated by someone else at the same time" -- the same update succeeds later.
TRANSIENT_STATUSES = frozenset({409})
_ID = re.compile(r"^[1-9][0-9]{0,19}$")
_ERROR = re.compile(r"^[A-Za-z][A-Za-z0-9_ ']{0,63}$")


class ZendeskCredentials(BaseModel):
    """An agent's API token (Admin Center -> Apps and integrations -> Zendesk API)."""

    model_config = ConfigDict(extra="forbid")

    subdomain: str = Field(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
        description="the account's subdomain: 'acme' for acme.zendesk.com",
    )
    email: str = Field(pattern=r"^[^@\s/:]{1,64}@[^@\s/:]{1,255}\.[A-Za-z]{2,63}$", description="the token's agent")
    api_token: str = Field(pattern=r"^[A-Za-z0-9]{20,80}$")
    author_id: str | None = Field(
        default=None, pattern=r"^[1-9][0-9]{0,19}$", description="post as this agent (user id); default: the token's"
    )


def ticket_origin(base_url: str, template: str, subdomain: str) -> str:
    """The per-tenant origin: the provider's host for its template, else the sandbox base + /subdomain."""
    return template.format(subdomain=subdomain) if base_url == template else f"{base_url}/{subdomain}"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id(value: Any) -> str | None:
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    return text if text is not None and _ID.match(text) else None


def _ticket_id(event: CanonicalEvent) -> str | None:
    attributes = event.attributes
    if attributes.get("kind") == "zendesk.trigger":  # a trigger body names the ticket its own way
        ticket = _dict(attributes.get("ticket"))
        return _id(attributes.get("ticket_id")) or _id(ticket.get("id")) or _id(attributes.get("id"))
    subject = attributes.get("subject")
    from_subject = None
    if isinstance(subject, str) and subject.startswith("zen:ticket:"):
        from_subject = subject.rsplit(":", 1)[-1]
    return _id(_dict(attributes.get("detail")).get("id")) or _id(from_subject)


def _is_staff_comment(event: CanonicalEvent) -> bool:
    author = _dict(_dict(_dict(event.attributes.get("event")).get("comment")).get("author"))
    return author.get("is_staff") is True


class ZendeskSender(Sender):
    provider: ClassVar[str] = "zendesk"
    base_url: ClassVar[str] = HOST_TEMPLATE
    credentials_model: ClassVar[type[BaseModel]] = ZendeskCredentials

    def address(self, event: CanonicalEvent, visibility: Visibility | None = None) -> dict[str, str] | None:
        # A ticket is answered by a comment: public (the requester sees it) unless asked for a note.
        if event.type not in ("ticket.created", "ticket.updated", "ticket.comment_added"):
            return None
        if str(event.attributes.get("type", "")).startswith("zen:event-type:messaging_ticket."):
            # Messaging tickets (web widget, social messaging) are answered in the messaging
            # conversation, which the Tickets API does not write to.
            return None
        if event.type == "ticket.comment_added" and _is_staff_comment(event):
            return None  # an agent's own comment (our answer's echo included): answering it would loop
        ticket_id = _ticket_id(event)
        if ticket_id is None:
            return None
        return {"ticket_id": ticket_id, "public": "false" if visibility == "private" else "true"}

    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        assert isinstance(credentials, ZendeskCredentials)
        if message.attachments:
            raise PermanentFailure(
                "attachments_unsupported", "Zendesk comments take uploaded files (upload tokens), not links"
            )
        comment: dict[str, Any] = {"body": message.text[:MAX_COMMENT_CHARS], "public": address.get("public") != "false"}
        if credentials.author_id:
            comment["author_id"] = int(credentials.author_id)
        ticket: dict[str, Any] = {"comment": comment}
        if message.message_id:
            ticket["metadata"] = {"switchboard_message_id": message.message_id}
        login = f"{credentials.email}/token:{credentials.api_token}".encode()
        origin = ticket_origin(base_url, self.base_url, credentials.subdomain)
        return OutboundRequest(
            method="PUT",
            url=f"{origin}/api/v2/tickets/{quote(address['ticket_id'], safe='')}.json",
            headers={
                "Authorization": "Basic " + base64.b64encode(login).decode("ascii"),
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            body=json.dumps({"ticket": ticket}, ensure_ascii=False).encode("utf-8"),
        )

    def outcome(self, response: ProviderResponse) -> str:
        payload = response.json()
        if response.status == 200 and isinstance(payload, dict):
            events = _dict(payload.get("audit")).get("events")
            comments = [e for e in events or [] if isinstance(e, dict) and e.get("type") in ("Comment", "VoiceComment")]
            comment_id = _id(comments[-1].get("id")) if comments else None
            if comment_id is None:
                raise PermanentFailure("unexpected_response", "Zendesk answered without a Comment audit event")
            return comment_id
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):  # some endpoints nest it: {"error": {"title", "message"}}
            error = error.get("title")
        # Zendesk's label as an identifier: "RecordNotFound"; "Couldn't authenticate you" -> Couldn_t_authenticate_you.
        label = (
            re.sub(r"[^A-Za-z0-9]+", "_", error).strip("_") if isinstance(error, str) and _ERROR.match(error) else ""
        )
        code = f"zendesk_{label}" if label else None
        detail = _detail(payload) or response.body[:200].decode("utf-8", "replace")
        code = code or f"http_{response.status}"
        if response.status in TRANSIENT_STATUSES:
            raise TransientFailure(code, detail, retry_after=retry_after(response.headers))
        raise failure_for_status(response, code, detail)

    def status(self, event: CanonicalEvent) -> DeliveryStatus | None:
        # The comment webhook is Zendesk's only word on a comment: it was added (delivered).
        # Only agents' comments can be ours; the hub matches the id to what it sent.
        if event.type != "ticket.comment_added" or not _is_staff_comment(event):
            return None
        comment_id = _id(_dict(_dict(event.attributes.get("event")).get("comment")).get("id"))
        return DeliveryStatus(comment_id, "delivered") if comment_id else None


def _detail(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    parts = []
    for key in ("error", "description"):
        value = payload.get(key)
        if isinstance(value, dict):
            value = value.get("message") or value.get("title")
        if isinstance(value, str) and value:
            parts.append(value)
    for field, problems in _dict(payload.get("details")).items():
        for problem in problems if isinstance(problems, list) else []:
            if isinstance(problem, dict) and isinstance(problem.get("description"), str):
                parts.append(f"{field}: {problem['description']}")
    return "; ".join(parts) or None
