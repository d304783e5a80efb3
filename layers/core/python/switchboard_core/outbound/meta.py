"""Meta Graph API: replies on WhatsApp (Cloud API) and Messenger (Send API).

Both are ``POST https://graph.facebook.com/<version>/<node id>/messages`` with a JSON body
and the access token as ``Authorization: Bearer <token>``; the version is pinned here
(GRAPH_API_VERSION) so a Graph release cannot change the calls under us
(https://developers.facebook.com/docs/apps/versions: a version stays usable two years
after its successor ships).

* WhatsApp Cloud API (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages):
  node = the business phone number id, body ``{"messaging_product": "whatsapp",
  "recipient_type": "individual", "to": <wa_id>, "type": "text", "text": {"body": ...}}``
  with a system-user or business token; 200 ``{"messaging_product", "contacts": [...],
  "messages": [{"id": "wamid..."}]}``. Free-form text is only delivered inside the
  24-hour customer service window (else error 131047), as an immediate auto-reply is.
* Messenger Send API (https://developers.facebook.com/docs/messenger-platform/reference/send-api):
  node = the Page id (the inbound ``recipient.id``), body ``{"recipient": {"id": <PSID>},
  "messaging_type": "RESPONSE", "message": {"text": ..., "metadata": AUTO_REPLY_MARK}}`` with a
  Page access token (the metadata is echoed back in ``message_echoes``);
  200 ``{"recipient_id", "message_id"}``.

Errors (https://developers.facebook.com/docs/graph-api/guides/error-handling,
https://developers.facebook.com/docs/messenger-platform/reference/send-api/error-codes,
https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes) are
``{"error": {"message", "type", "code", "error_subcode", "is_transient", "fbtrace_id"}}``.
Retryable: ``is_transient``, HTTP 429/5xx, and the codes in TRANSIENT_CODES (temporary
outages 1/2, Messenger's temporary send failure 1200, the rate limits 4/17/32/341/613 and
WhatsApp's 80007/130429/131056); anything else (190 bad token, 10/200-299 permissions,
100 bad parameter, 131047 outside the window...) is permanent, as ``meta_<code>``.

Address: only a customer's ``message.received`` on WhatsApp or Messenger. Instagram
messaging replies are not supported yet (they need the Instagram account's own send
endpoint and token), nor are comments, mentions, receipts, echoes of the Page's own
messages, reactions, WhatsApp system messages, or Messenger messages delivered on the
standby channel (another app owns the thread: sending would fail).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound.base import (
    AUTO_REPLY_MARK,
    OutboundMessage,
    OutboundRequest,
    PermanentFailure,
    ProviderResponse,
    Sender,
    TransientFailure,
    Visibility,
    clip,
    failure_for_status,
)

GRAPH_API_VERSION = "v24.0"
# 1 API Unknown, 2 API Service (downtime); 4, 17, 32 (Page), 341, 613 rate limits;
# 1200 Messenger temporary send failure; WhatsApp 80007 (account), 130429 (throughput),
# 131056 (pair rate limit).
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 613, 1200, 80007, 130429, 131056})
_GRAPH_ID = re.compile(r"^\d{1,32}$")
_WHATSAPP_SKIPPED = ("reaction", "system")


class MetaCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A WhatsApp system-user/business token or a Page access token (pages_messaging).
    access_token: str = Field(min_length=20, max_length=1024, pattern=r"^\S+$")


def _graph_id(value: Any) -> str | None:
    return value if isinstance(value, str) and _GRAPH_ID.match(value) else None


def _platform(event: CanonicalEvent) -> str | None:
    """whatsapp / messenger / instagram, from the conversation key the adapter set
    (``meta:<platform>:...``) or else the customer's handle."""
    key = event.conversation_key or ""
    if key.startswith("meta:"):
        return key.split(":", 2)[1]
    platforms = {handle.platform for handle in event.contact.handles}
    return platforms.pop() if len(platforms) == 1 else None


def _handle_id(event: CanonicalEvent, platform: str) -> str | None:
    for handle in event.contact.handles:
        if handle.platform == platform and handle.id:
            return handle.id
    return None


def _error_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 12:
        return int(value)
    return None


class MetaSender(Sender):
    provider: ClassVar[str] = "meta"
    base_url: ClassVar[str] = "https://graph.facebook.com"
    credentials_model: ClassVar[type[BaseModel]] = MetaCredentials

    def address(self, event: CanonicalEvent, visibility: Visibility | None = None) -> dict[str, str] | None:
        if visibility == "public":  # private messages only on this channel
            return None
        if event.type != "message.received":
            return None
        attributes = event.attributes
        platform = _platform(event)
        if platform == "whatsapp":
            if attributes.get("message_type") in _WHATSAPP_SKIPPED:
                return None
            phone_number_id = _graph_id(attributes.get("phone_number_id"))
            wa_id = _graph_id(_handle_id(event, "whatsapp"))
            if phone_number_id is None or wa_id is None:
                return None
            return {"product": "whatsapp", "phone_number_id": phone_number_id, "to": wa_id}
        if platform == "messenger":
            if attributes.get("standby") is True or "reaction" in attributes:
                return None
            page_id = _graph_id(attributes.get("recipient_id"))
            psid = _graph_id(attributes.get("sender_id"))
            if page_id is None or psid is None or page_id == psid:
                return None
            return {"product": "messenger", "page_id": page_id, "to": psid}
        return None  # Instagram (not supported yet) and anything else

    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        text = message.text
        assert isinstance(credentials, MetaCredentials)
        body: dict[str, Any]
        if address["product"] == "whatsapp":
            node = address["phone_number_id"]
            body = {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": address["to"],
                "type": "text",
                "text": {"body": clip(text)},
            }
        elif address["product"] == "messenger":
            node = address["page_id"]
            # metadata comes back in the message echo: the adapter marks that echo automated.
            body = {
                "recipient": {"id": address["to"]},
                "messaging_type": "RESPONSE",
                "message": {"text": clip(text), "metadata": AUTO_REPLY_MARK},
            }
        else:
            raise PermanentFailure("outbound_unsupported", f"meta cannot send to {address['product']!r}")
        return OutboundRequest(
            method="POST",
            url=f"{base_url}/{GRAPH_API_VERSION}/{quote(node, safe='')}/messages",
            headers={
                "Authorization": f"Bearer {credentials.access_token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        )

    def outcome(self, response: ProviderResponse) -> str:
        payload = response.json()
        if response.status == 200 and isinstance(payload, dict):
            messages = payload.get("messages")
            if (
                isinstance(messages, list)
                and messages
                and isinstance(messages[0], dict)
                and isinstance(messages[0].get("id"), str)
                and messages[0]["id"]
            ):
                return str(messages[0]["id"])  # WhatsApp
            if isinstance(payload.get("message_id"), str) and payload["message_id"]:
                return str(payload["message_id"])  # Messenger
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            code = _error_code(error.get("code"))
            details = error.get("error_data", {}).get("details") if isinstance(error.get("error_data"), dict) else None
            detail = " ".join(
                str(part)
                for part in (
                    error.get("message", ""),
                    details or "",
                    f"(subcode {error['error_subcode']})" if error.get("error_subcode") is not None else "",
                    f"[fbtrace_id {error['fbtrace_id']}]" if error.get("fbtrace_id") else "",
                )
                if part
            )
            name = f"meta_{code}" if code is not None else f"http_{response.status}"
            if error.get("is_transient") is True or code in TRANSIENT_CODES:
                raise TransientFailure(name, detail)
            raise failure_for_status(response, name, detail)
        if 200 <= response.status < 300:
            raise PermanentFailure("unexpected_response", "Meta answered without a message id")
        raise failure_for_status(response, f"http_{response.status}", response.body[:200].decode("utf-8", "replace"))
