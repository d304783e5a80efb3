"""Intercom: an answer is an admin's reply (or internal note) in the customer's conversation.

API (https://developers.intercom.com/docs/references/rest-api/api.intercom.io/conversations/replyconversation,
https://developers.intercom.com/docs/references/rest-api/errors/http-responses,
https://developers.intercom.com/docs/references/rest-api/errors/rate-limiting):
``POST https://api.intercom.io/conversations/{id}/reply`` with ``{"message_type": "comment" |
"note", "type": "admin", "admin_id", "body", "attachment_urls"?}``, ``Authorization: Bearer
<access token>`` and ``Intercom-Version`` (pinned here, INTERCOM_VERSION, so a workspace's
default version cannot change the answer's shape under us). ``comment`` is a reply the
customer sees; ``note`` is visible to teammates only. The body is HTML: the text is escaped
and its paragraphs wrapped in ``<p>`` so a reply can never carry markup. Up to 10
``attachment_urls``.

The answer 200 is the whole Conversation; the reply is its newest conversation part by the
admin (``conversation_parts.conversation_parts[-1]``), whose id is the provider message id.
Intercom has no delivery report; its ``conversation.admin.replied`` / ``conversation.admin.noted``
webhook for the part (the adapter's ``message.sent``) is read back as ``delivered``.

Errors are ``{"type": "error.list", "request_id", "errors": [{"code", "message"}]}``:
``unauthorized`` (401), ``action_forbidden`` / ``forbidden`` (403), ``not_found`` (404: the
conversation or admin), ``parameter_invalid`` / ``parameter_not_found`` (400),
``rate_limit_exceeded`` (429, ``X-RateLimit-Reset`` in epoch seconds), ``server_error`` /
``service_unavailable`` (5xx): ``intercom_<code>``; 429 and 5xx are retried.
"""

from __future__ import annotations

import html
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
    Visibility,
    failure_for_status,
)

INTERCOM_VERSION = "2.11"
MAX_ATTACHMENTS = 10
MAX_BODY_CHARS = 60_000
_CUSTOMER_TOPICS = frozenset({"conversation.user.created", "conversation.user.replied"})
_ADMIN_TOPICS = frozenset({"conversation.admin.replied", "conversation.admin.noted"})
_ID = re.compile(r"^[0-9]{1,24}$")
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_PARAGRAPHS = re.compile(r"\n\s*\n")


class IntercomCredentials(BaseModel):
    """An access token of the workspace's app (Developer Hub -> app -> Authentication) and the
    admin (teammate) the answers are written as."""

    model_config = ConfigDict(extra="forbid")

    access_token: str = Field(pattern=r"^[A-Za-z0-9+/=_\-]{30,255}$")
    admin_id: str = Field(pattern=r"^[0-9]{1,20}$", description="the teammate answers are posted as")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id(value: Any) -> str | None:
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    return text if text is not None and _ID.match(text) else None


def as_html(text: str) -> str:
    """Plain text as Intercom's HTML body: escaped, one <p> per paragraph, <br> for line breaks."""
    paragraphs = [p.strip("\n") for p in _PARAGRAPHS.split(text.replace("\r\n", "\n")) if p.strip()]
    return "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs)


def _parts(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    parts = _dict(item.get("conversation_parts")).get("conversation_parts")
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _admin_part(item: Mapping[str, Any], admin_id: str | None = None) -> dict[str, Any] | None:
    """The newest part written by an admin (by `admin_id` when given)."""
    for part in reversed(_parts(item)):
        author = _dict(part.get("author"))
        if author.get("type") == "admin" and (admin_id is None or _id(author.get("id")) == admin_id):
            return part
    return None


class IntercomSender(Sender):
    provider: ClassVar[str] = "intercom"
    base_url: ClassVar[str] = "https://api.intercom.io"
    credentials_model: ClassVar[type[BaseModel]] = IntercomCredentials

    def address(self, event: CanonicalEvent, visibility: Visibility | None = None) -> dict[str, str] | None:
        # Only what a customer wrote (opened or replied to a conversation); the admins' own
        # parts (message.sent, our answers' echoes included) are never answered.
        if event.type != "message.received" or event.attributes.get("topic") not in _CUSTOMER_TOPICS:
            return None
        conversation_id = _id(_dict(event.attributes.get("item")).get("id"))
        if conversation_id is None:
            return None
        return {"conversation_id": conversation_id, "message_type": "note" if visibility == "private" else "comment"}

    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        assert isinstance(credentials, IntercomCredentials)
        if len(message.attachments) > MAX_ATTACHMENTS:
            raise PermanentFailure("too_many_attachments", f"Intercom takes at most {MAX_ATTACHMENTS} attachment URLs")
        body: dict[str, Any] = {
            "message_type": "note" if address.get("message_type") == "note" else "comment",
            "type": "admin",
            "admin_id": credentials.admin_id,
            "body": as_html(message.text[:MAX_BODY_CHARS]),
        }
        if message.attachments:
            body["attachment_urls"] = [attachment.url for attachment in message.attachments]
        return OutboundRequest(
            method="POST",
            url=f"{base_url}/conversations/{quote(address['conversation_id'], safe='')}/reply",
            headers={
                "Authorization": f"Bearer {credentials.access_token}",
                "Intercom-Version": INTERCOM_VERSION,
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        )

    def outcome(self, response: ProviderResponse) -> str:
        payload = response.json()
        if response.status == 200 and isinstance(payload, dict):
            if payload.get("type") == "conversation_part":  # a part on its own
                part: dict[str, Any] | None = payload
            else:
                part = _admin_part(payload)
            part_id = _id(part.get("id")) if part else None
            if part_id is None:
                raise PermanentFailure("unexpected_response", "Intercom answered without the admin's new part")
            return part_id
        errors = payload.get("errors") if isinstance(payload, dict) else None
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        code = first.get("code")
        message = first.get("message")
        raise failure_for_status(
            response,
            f"intercom_{code}" if isinstance(code, str) and _CODE.match(code) else f"http_{response.status}",
            message if isinstance(message, str) and message else response.body[:200].decode("utf-8", "replace"),
        )

    def status(self, event: CanonicalEvent) -> DeliveryStatus | None:
        # The admin-replied (or noted) webhook for a part is Intercom's only word on it.
        if event.type != "message.sent" or event.attributes.get("topic") not in _ADMIN_TOPICS:
            return None
        part = _admin_part(_dict(event.attributes.get("item")))
        part_id = _id(part.get("id")) if part else None
        return DeliveryStatus(part_id, "delivered") if part_id else None
