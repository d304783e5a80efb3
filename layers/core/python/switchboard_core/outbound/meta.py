"""Meta: answers on WhatsApp (Cloud API), Messenger and Instagram messages, public replies to
Facebook Page and Instagram comments, and private replies to a comment.

Every call is ``POST <host>/<version>/<node id>/<edge>`` with a JSON body and the access
token as ``Authorization: Bearer <token>``; the version is pinned (GRAPH_API_VERSION) so a
Graph release cannot change the calls under us (https://developers.facebook.com/docs/apps/versions).

* WhatsApp Cloud API (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages,
  https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/image-messages/,
  .../document-messages, .../template-messages): ``graph.facebook.com``, node = the business
  phone number id; ``{"messaging_product": "whatsapp", "recipient_type": "individual", "to":
  <wa_id>, "type": "text", "text": {"body"}}``, a media message ``"type": "image" | "document" |
  "audio" | "video"`` with ``{"link", "caption"?, "filename"?}``, or ``"type": "template"`` with
  ``{"name", "language": {"code"}, "components": [{"type": "body", "parameters": [...]}]}``;
  ``biz_opaque_callback_data`` carries the hub's message id (Meta returns it in the status
  webhooks). 200 ``{"messages": [{"id": "wamid..."}]}``. Free-form messages only inside the
  24-hour customer service window (after it: error 131047); templates any time.
* Messenger Send API (https://developers.facebook.com/docs/messenger-platform/reference/send-api,
  https://developers.facebook.com/docs/messenger-platform/send-messages/message-tags):
  ``graph.facebook.com``, node = the Page id, ``{"recipient": {"id": <PSID>}, "messaging_type":
  "RESPONSE", "message": {"text" | "attachment", "metadata"}}`` with a Page access token; between
  24 hours and 7 days after the customer's last message a person may still answer with
  ``"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"``. 200 ``{"recipient_id", "message_id"}``.
  ``metadata`` comes back in the ``message_echoes`` echo: AUTO_REPLY_MARK on an auto-reply (the
  adapter marks that echo ``automated``), ``switchboard:message:<hub message id>`` on a staff
  answer (its echo is read by ``status`` as delivered, and is not automated).
* Instagram messages, through the Instagram API with Instagram Login
  (https://developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login/messaging-api,
  https://developers.facebook.com/docs/instagram-platform/private-replies,
  https://developers.facebook.com/docs/instagram-platform/comment-moderation): ``graph.instagram.com``,
  node = the Instagram professional account id, the same body and windows as Messenger, with an
  Instagram User access token (``instagram_access_token``). Chosen over the Messenger Platform's
  Page route because every id the call needs is in the webhook (the Page route needs the id of
  the Facebook Page linked to the account, which Instagram webhooks do not carry) and since
  2024 an Instagram professional account needs no linked Page at all.
* Public replies: a Facebook Page comment ``POST /<comment-id>/comments {"message",
  "attachment_url"?}`` and a visitor's post ``POST /<post-id>/comments``
  (https://developers.facebook.com/documentation/pages-api/comments-mentions), with the Page
  token; an Instagram comment ``POST graph.instagram.com/<ig-comment-id>/replies {"message"}``
  (https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-comment/replies).
  200 ``{"id"}``.
* Private replies to a comment or a visitor's post (one message, within 7 days of it:
  https://developers.facebook.com/documentation/business-messaging/messenger-platform/discovery/private-replies):
  ``POST /<page-id>/messages {"recipient": {"comment_id" | "post_id"}, "message": {"text"}}``;
  Instagram ``POST graph.instagram.com/<ig-id>/messages {"recipient": {"comment_id"}, ...}``.

Meta takes no per-message status callback (``message.status_callback`` is unused): statuses
come through the app's webhook subscriptions and ``status`` reads them (WhatsApp ``statuses[]``,
https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components; the
``message_echoes`` echo,
https://developers.facebook.com/docs/messenger-platform/reference/webhook-events/message-echoes/;
the Page's or account's own new comment).

Errors (https://developers.facebook.com/docs/graph-api/guides/error-handling,
https://developers.facebook.com/docs/messenger-platform/error-codes,
https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes) are
``{"error": {"message", "type", "code", "error_subcode", "is_transient", "error_data", "fbtrace_id"}}``.
Retryable: ``is_transient``, HTTP 429/5xx, and TRANSIENT_CODES (temporary outages 1/2,
Messenger's temporary send failure 1200, the rate limits 4/17/32/341/613/80007 and WhatsApp's
130429/131056), after Retry-After or the ``estimated_time_to_regain_access`` of the
``X-Business-Use-Case-Usage`` / ``X-App-Usage`` headers
(https://developers.facebook.com/docs/graph-api/overview/rate-limiting); anything else
(190 bad token, 10/200-299 permissions, 100 bad parameter, 131047 outside the window, 551
person unavailable...) is permanent, as ``meta_<code>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound.base import (
    AUTO_REPLY_MARK,
    Attachment,
    DeliveryState,
    DeliveryStatus,
    OutboundMessage,
    OutboundRequest,
    PermanentFailure,
    ProviderResponse,
    Refused,
    Sender,
    TransientFailure,
    Visibility,
    clip,
    failure_for_status,
    retry_after,
)

GRAPH_API_VERSION = "v24.0"
GRAPH_BASE_URL = "https://graph.facebook.com"
INSTAGRAM_BASE_URL = "https://graph.instagram.com"
# Any other base URL (the provider sandbox) serves Instagram's host under this path.
INSTAGRAM_SANDBOX_PATH = "/instagram"
# 1 API Unknown, 2 API Service (downtime); 4, 17, 32 (Page), 341, 613, 80007 rate limits;
# 1200 Messenger temporary send failure; WhatsApp 130429 (throughput), 131056 (pair rate limit).
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 613, 1200, 80007, 130429, 131056})
# The hub's message id travels in Messenger/Instagram `metadata` as this prefix + the id.
STAFF_MARK_PREFIX = "switchboard:message:"
WHATSAPP_WINDOW = timedelta(hours=24)
STANDARD_WINDOW = timedelta(hours=24)  # Messenger and Instagram
HUMAN_AGENT_WINDOW = timedelta(days=7)
PRIVATE_REPLY_WINDOW = timedelta(days=7)
TEMPLATE_HINT = 'send with "template": {"name", "language", "parameters"?} (an approved WhatsApp template)'

_GRAPH_ID = re.compile(r"^\d{1,32}$")
_COMMENT_ID = re.compile(r"^\d{1,32}(_\d{1,32})?$")  # Facebook comment and post ids are "<id>_<id>"
_WHATSAPP_SKIPPED = ("reaction", "system")
# WhatsApp status values that are delivery steps (not "deleted", "warning" or anything newer).
_WHATSAPP_STATES: dict[str, DeliveryState] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
}


class MetaCredentials(BaseModel):
    """Outbound credentials: ``access_token`` (a WhatsApp system-user or business token, or a
    Page access token with pages_messaging / pages_manage_engagement) for graph.facebook.com,
    and ``instagram_access_token`` (an Instagram User token, instagram_business_manage_messages
    / _comments) for graph.instagram.com. At least one."""

    model_config = ConfigDict(extra="forbid")

    access_token: str | None = Field(default=None, min_length=20, max_length=1024, pattern=r"^\S+$")
    instagram_access_token: str | None = Field(default=None, min_length=20, max_length=1024, pattern=r"^IG\S+$")
    # The business's own senders, for a campaign's first message to a contact (a reply takes
    # them from the customer's message instead): the WhatsApp phone number id and the Page id.
    whatsapp_phone_number_id: str | None = Field(default=None, pattern=r"^[0-9]{1,32}$")
    page_id: str | None = Field(default=None, pattern=r"^[0-9]{1,32}$")

    @model_validator(mode="after")
    def _one_token(self) -> MetaCredentials:
        if self.access_token is None and self.instagram_access_token is None:
            raise ValueError("give access_token (WhatsApp, Messenger, Facebook) or instagram_access_token")
        return self


class WhatsAppTemplate(BaseModel):
    """``message.template`` for WhatsApp: an approved template's name and language, and the
    body's parameters (positional as a list, named as an object)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_]{1,512}$")
    language: str = Field(pattern=r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")
    parameters: list[str] | dict[str, str] | None = None


def _graph_id(value: Any) -> str | None:
    return value if isinstance(value, str) and _GRAPH_ID.match(value) else None


def _comment_id(value: Any) -> str | None:
    return value if isinstance(value, str) and _COMMENT_ID.match(value) else None


def _platform(event: CanonicalEvent) -> str | None:
    """whatsapp / messenger / instagram / facebook, from the conversation key the adapter set
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


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def template_of(message: OutboundMessage) -> WhatsAppTemplate | None:
    """The message's WhatsApp template, validated; None without one."""
    if message.template is None:
        return None
    try:
        return WhatsAppTemplate.model_validate(dict(message.template))
    except (ValidationError, TypeError, ValueError) as error:
        raise PermanentFailure(
            "invalid_template",
            'template must be {"name": <lower-case approved name>, "language": <code like en_US>, '
            f'"parameters"?: [..] or {{..}}}}: {error}',
        ) from None


def regain_access_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds until Meta lifts a rate limit, from ``estimated_time_to_regain_access`` (minutes)
    in the ``X-Business-Use-Case-Usage`` header (JSON ``{<business id>: [{...}]}``) or
    ``X-App-Usage``; None when neither says."""
    minutes: list[float] = []
    for name in ("x-business-use-case-usage", "x-app-usage"):
        raw = headers.get(name)
        if not raw:
            continue
        try:
            usage = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        entries: list[Any] = []
        if isinstance(usage, dict) and "estimated_time_to_regain_access" in usage:
            entries = [usage]
        elif isinstance(usage, dict):
            for value in usage.values():
                entries.extend(value if isinstance(value, list) else [value])
        for entry in entries:
            wait = entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else None
            if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0:
                minutes.append(float(wait))
    return min(max(minutes) * 60, 15 * 60) if minutes else None


class MetaSender(Sender):
    provider: ClassVar[str] = "meta"
    base_url: ClassVar[str] = GRAPH_BASE_URL
    credentials_model: ClassVar[type[BaseModel]] = MetaCredentials

    # ------------------------------------------------------------------ address
    def address(self, event: CanonicalEvent, visibility: Visibility | None = None) -> dict[str, str] | None:
        platform = _platform(event)
        if event.type == "message.received":
            return None if visibility == "public" else self._message_address(event, platform)
        if event.type == "comment.created":
            return self._comment_address(event, platform, visibility)
        if event.type == "mention.created":
            return self._mention_address(event, platform, visibility)
        return None  # receipts, echoes, notifications

    @staticmethod
    def _message_address(event: CanonicalEvent, platform: str | None) -> dict[str, str] | None:
        attributes = event.attributes
        if platform == "whatsapp":
            if attributes.get("message_type") in _WHATSAPP_SKIPPED:
                return None
            phone_number_id = _graph_id(attributes.get("phone_number_id"))
            wa_id = _graph_id(_handle_id(event, "whatsapp"))
            if phone_number_id is None or wa_id is None:
                return None
            return {"product": "whatsapp", "phone_number_id": phone_number_id, "to": wa_id}
        if platform in ("messenger", "instagram"):
            # Standby: another app owns the thread (sending would fail); reactions are not messages.
            if attributes.get("standby") is True or "reaction" in attributes:
                return None
            account_id = _graph_id(attributes.get("recipient_id"))
            user_id = _graph_id(attributes.get("sender_id"))
            if account_id is None or user_id is None or account_id == user_id:
                return None
            key = "page_id" if platform == "messenger" else "account_id"
            return {"product": platform, key: account_id, "to": user_id}
        return None

    @staticmethod
    def _comment_address(
        event: CanonicalEvent, platform: str | None, visibility: Visibility | None
    ) -> dict[str, str] | None:
        attributes = event.attributes
        if platform == "facebook":
            comment_id = _comment_id(attributes.get("comment_id"))
            page_id = _graph_id(attributes.get("account_id"))
            if comment_id is None:
                return None
            if visibility == "private":
                if page_id is None:
                    return None
                return {"product": "messenger_private_reply", "page_id": page_id, "comment_id": comment_id}
            return {"product": "facebook_comment", "object_id": comment_id}
        if platform == "instagram":
            comment_id = _graph_id(attributes.get("id"))
            account_id = _graph_id(attributes.get("account_id"))
            if comment_id is None:
                return None
            # Comments on a live video take no public replies: a private reply is the answer.
            live = attributes.get("field") == "live_comments"
            if visibility == "private" or (visibility is None and live):
                if account_id is None:
                    return None
                return {"product": "instagram_private_reply", "account_id": account_id, "comment_id": comment_id}
            if live:
                return None
            return {"product": "instagram_comment", "comment_id": comment_id}
        return None

    @staticmethod
    def _mention_address(
        event: CanonicalEvent, platform: str | None, visibility: Visibility | None
    ) -> dict[str, str] | None:
        """A visitor's post on the Page (feed) is answered with a comment on it, or privately;
        a mention of the Page elsewhere with a comment on the mentioning comment or post (Private
        Replies cover only the Page's own posts). Instagram mentions are answered through the
        Facebook-Login-only mentions API, which this sender does not use: no address."""
        if platform != "facebook":
            return None
        attributes = event.attributes
        post_id = _comment_id(attributes.get("post_id"))
        comment_id = _comment_id(attributes.get("comment_id"))
        page_id = _graph_id(attributes.get("account_id"))
        if attributes.get("field") == "feed" and post_id is not None:
            if visibility == "private":
                if page_id is None:
                    return None
                return {"product": "messenger_private_reply", "page_id": page_id, "post_id": post_id}
            return {"product": "facebook_comment", "object_id": post_id}
        if attributes.get("field") == "mention" and visibility != "private" and (comment_id or post_id):
            return {"product": "facebook_comment", "object_id": str(comment_id or post_id)}
        return None

    # ------------------------------------------------------------------ prepare
    def contact_address(self, channel: str, to: str, credentials: BaseModel) -> dict[str, str] | None:
        """WhatsApp from the credentials' `whatsapp_phone_number_id` to a phone (wa_id: its digits);
        Messenger from their `page_id` to a page-scoped user id, as an ``UPDATE`` (a message the
        business starts: Meta accepts it inside the 24-hour window, refuses it after)."""
        assert isinstance(credentials, MetaCredentials)
        if channel == "whatsapp" and credentials.whatsapp_phone_number_id:
            wa_id = to.strip().removeprefix("+")
            if not wa_id.isdigit():
                return None
            return {"product": "whatsapp", "phone_number_id": credentials.whatsapp_phone_number_id, "to": wa_id}
        if channel == "messenger" and credentials.page_id and _graph_id(to):
            return {"product": "messenger", "page_id": credentials.page_id, "to": to, "messaging_type": "UPDATE"}
        return None

    def prepare(
        self, address: Mapping[str, str], message: OutboundMessage, inbound_at: datetime, now: datetime
    ) -> dict[str, str]:
        """The platform's window for this answer, then the message checked against what the
        call can carry (a bad template or attachment is refused now, before it is queued)."""
        try:
            prepared = self._windows(address, message, inbound_at, now)
            self._call(prepared, message)
            too_long = _too_long(prepared, message)
            if too_long is not None:
                raise Refused("text_too_long", too_long[1], limit=too_long[0])
        except PermanentFailure as failure:
            hints = {"template": TEMPLATE_HINT} if failure.code == "invalid_template" else {}
            raise Refused(failure.code, failure.detail, **hints) from None
        except KeyError as missing:
            raise Refused("bad_address", f"a meta {address.get('product')} address needs {missing}") from None
        return prepared

    def _windows(
        self, address: Mapping[str, str], message: OutboundMessage, inbound_at: datetime, now: datetime
    ) -> dict[str, str]:
        product = address.get("product")
        prepared = {k: v for k, v in address.items() if k != "tag"}
        elapsed = now - inbound_at
        if product == "whatsapp":
            if template_of(message) is not None:
                return prepared  # approved templates may be sent at any time
            if elapsed > WHATSAPP_WINDOW:
                closed = inbound_at + WHATSAPP_WINDOW
                raise Refused(
                    "whatsapp_window_closed",
                    "WhatsApp's 24-hour customer service window closed at "
                    f"{closed.isoformat()}: only an approved template can be sent until the customer writes again",
                    window="whatsapp_customer_service_window",
                    window_closed_at=closed.isoformat(),
                    template=TEMPLATE_HINT,
                )
            return prepared
        if message.template is not None:
            raise Refused("template_unsupported", f"templates are WhatsApp's; {product} answers are free text")
        if product in ("messenger", "instagram"):
            if elapsed <= STANDARD_WINDOW:
                return prepared
            if elapsed <= HUMAN_AGENT_WINDOW:
                # A person answering after 24 h: Meta's human agent tag allows it for 7 days.
                return {**prepared, "tag": "HUMAN_AGENT"}
            closed = inbound_at + HUMAN_AGENT_WINDOW
            raise Refused(
                f"{product}_window_closed",
                f"{product.capitalize()}'s messaging window (24 hours, 7 days for a human agent) closed at "
                f"{closed.isoformat()}: the customer has to write again before they can be answered",
                window=f"{product}_human_agent_window",
                window_closed_at=closed.isoformat(),
            )
        if product in ("messenger_private_reply", "instagram_private_reply") and elapsed > PRIVATE_REPLY_WINDOW:
            closed = inbound_at + PRIVATE_REPLY_WINDOW
            raise Refused(
                "private_reply_window_closed",
                f"a private reply must be sent within 7 days of the comment; that closed at {closed.isoformat()}",
                window="private_reply_window",
                window_closed_at=closed.isoformat(),
                visibility='answer publicly with "visibility": "public"',
            )
        return prepared

    # ------------------------------------------------------------------ request
    def request(
        self, base_url: str, address: Mapping[str, str], message: OutboundMessage, credentials: BaseModel
    ) -> OutboundRequest:
        assert isinstance(credentials, MetaCredentials)
        product = address.get("product")
        instagram = product in ("instagram", "instagram_comment", "instagram_private_reply")
        if instagram:
            token = credentials.instagram_access_token
            root = INSTAGRAM_BASE_URL if base_url.rstrip("/") == GRAPH_BASE_URL else base_url + INSTAGRAM_SANDBOX_PATH
            if token is None:
                raise PermanentFailure("not_configured", "Instagram answers need instagram_access_token")
        else:
            token, root = credentials.access_token, base_url
            if token is None:
                raise PermanentFailure("not_configured", f"{product} answers need access_token")
        try:
            node, edge, body = self._call(address, message)
        except KeyError as missing:
            raise PermanentFailure("bad_address", f"a meta {product} address needs {missing}") from None
        return OutboundRequest(
            method="POST",
            url=f"{root}/{GRAPH_API_VERSION}/{quote(node, safe='')}/{edge}",
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        )

    def _call(self, address: Mapping[str, str], message: OutboundMessage) -> tuple[str, str, dict[str, Any]]:
        """(node, edge, JSON body) for the address's product."""
        product = address.get("product")
        text = message.text
        if product == "whatsapp":
            return address["phone_number_id"], "messages", self._whatsapp_body(address, message)
        if product in ("messenger", "instagram"):
            node = address["page_id"] if product == "messenger" else address["account_id"]
            body: dict[str, Any] = {"recipient": {"id": address["to"]}}
            if address.get("tag") == "HUMAN_AGENT":
                body.update(messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
            elif address.get("messaging_type") == "UPDATE":  # the business starts the exchange
                body["messaging_type"] = "UPDATE"
            else:
                body["messaging_type"] = "RESPONSE"
            body["message"] = {**self._dm_content(product, message), "metadata": _mark(message)}
            return node, "messages", body
        if product in ("messenger_private_reply", "instagram_private_reply"):
            self._no_attachments(message, "a private reply")
            if product == "messenger_private_reply":
                node = address["page_id"]
                # A visitor's post is answered by its post_id, a comment by its comment_id.
                key = "post_id" if "post_id" in address else "comment_id"
                recipient = {key: address[key]}
            else:
                node, recipient = address["account_id"], {"comment_id": address["comment_id"]}
            return (
                node,
                "messages",
                {"recipient": recipient, "message": {"text": fit(product, text), "metadata": _mark(message)}},
            )
        if product == "facebook_comment":
            comment: dict[str, Any] = {"message": fit(product, text)}
            if message.attachments:
                # A comment takes one image (or GIF) by URL: attachment_url.
                if len(message.attachments) > 1 or not _is_image(message.attachments[0]):
                    raise PermanentFailure("attachments_unsupported", "a Facebook comment takes one image at most")
                comment["attachment_url"] = message.attachments[0].url
            return address["object_id"], "comments", comment
        if product == "instagram_comment":
            self._no_attachments(message, "an Instagram comment reply")
            return address["comment_id"], "replies", {"message": fit(product, text)}
        raise PermanentFailure("outbound_unsupported", f"meta cannot send to {product!r}")

    @staticmethod
    def _no_attachments(message: OutboundMessage, what: str) -> None:
        if message.attachments:
            raise PermanentFailure("attachments_unsupported", f"{what} is text only")

    @staticmethod
    def _whatsapp_body(address: Mapping[str, str], message: OutboundMessage) -> dict[str, Any]:
        body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": address["to"]}
        template = template_of(message)
        if template is not None:
            content: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
            if isinstance(template.parameters, list) and template.parameters:
                content["components"] = [
                    {"type": "body", "parameters": [{"type": "text", "text": p} for p in template.parameters]}
                ]
            elif isinstance(template.parameters, dict) and template.parameters:
                parameters = [
                    {"type": "text", "parameter_name": name, "text": value}
                    for name, value in template.parameters.items()
                ]
                content["components"] = [{"type": "body", "parameters": parameters}]
            body.update(type="template", template=content)
        elif message.attachments:
            if len(message.attachments) > 1:
                raise PermanentFailure("attachments_unsupported", "a WhatsApp message carries one media item")
            attachment = message.attachments[0]
            kind = _whatsapp_media_kind(attachment)
            media: dict[str, Any] = {"link": attachment.url}
            if message.text.strip():
                if kind == "audio":
                    raise PermanentFailure(
                        "attachments_unsupported", "a WhatsApp audio message has no caption: send the text separately"
                    )
                media["caption"] = fit("whatsapp_caption", message.text)
            if kind == "document":
                name = urlsplit(attachment.url).path.rsplit("/", 1)[-1]
                if name:
                    media["filename"] = name[:240]
            body.update(type=kind, **{kind: media})
        else:
            body.update(type="text", text={"body": fit("whatsapp", message.text)})
        if message.message_id:
            # Cloud API returns it in every status webhook for this message.
            body["biz_opaque_callback_data"] = message.message_id[:512]
        return body

    @staticmethod
    def _dm_content(product: str, message: OutboundMessage) -> dict[str, Any]:
        """``{"text"}`` or one ``{"attachment"}``: the Send API takes one or the other per message."""
        if not message.attachments:
            return {"text": fit(product, message.text)}
        if len(message.attachments) > 1 or message.text.strip():
            raise PermanentFailure(
                "attachments_unsupported",
                f"a {product} message is either text or one attachment: send the text and each attachment separately",
            )
        attachment = message.attachments[0]
        kind = _whatsapp_media_kind(attachment)
        if kind == "document":
            if product == "instagram":
                raise PermanentFailure("attachments_unsupported", "Instagram messages take images, video and audio")
            kind = "file"
        return {"attachment": {"type": kind, "payload": {"url": attachment.url, "is_reusable": False}}}

    # ------------------------------------------------------------------ outcome
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
                return str(payload["message_id"])  # Messenger / Instagram messages, private replies
            if isinstance(payload.get("id"), str) and payload["id"] and "error" not in payload:
                return str(payload["id"])  # a comment or comment reply
        headers = {name.lower(): value for name, value in response.headers.items()}
        wait = retry_after(headers)
        wait = wait if wait is not None else regain_access_seconds(headers)
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
                raise TransientFailure(name, detail, retry_after=wait)
            failure = failure_for_status(response, name, detail)
            if failure.transient:
                raise TransientFailure(name, detail, retry_after=wait)
            raise failure
        if 200 <= response.status < 300:
            raise PermanentFailure("unexpected_response", "Meta answered without a message id")
        failure = failure_for_status(
            response, f"http_{response.status}", response.body[:200].decode("utf-8", "replace")
        )
        if failure.transient:
            raise TransientFailure(failure.code, failure.detail, retry_after=wait)
        raise failure

    # ------------------------------------------------------------------ status
    def status(self, event: CanonicalEvent) -> DeliveryStatus | None:
        attributes = event.attributes
        platform = _platform(event)
        if event.type == "message.status_updated" and platform == "whatsapp":
            return _whatsapp_status(attributes)
        if event.type == "message.status_updated" and platform in ("messenger", "instagram"):
            # A delivery receipt names the messages it covers; one mid reads as that message delivered.
            mids = attributes.get("mids")
            one = mids[0] if isinstance(mids, list) and len(mids) == 1 else None
            if attributes.get("status") == "delivered" and isinstance(one, str) and one:
                return DeliveryStatus(one, "delivered")
            return None
        if event.type == "message.sent" and platform in ("messenger", "instagram"):
            # The echo of a message the hub sent (its metadata came back): it reached the thread.
            # Meta documents `metadata` on Messenger echoes only: an Instagram echo without any is
            # read too (keyed by its mid, an id the hub never sent matches nothing); another
            # app's metadata never is.
            metadata = attributes.get("metadata")
            ours = isinstance(metadata, str) and (metadata == AUTO_REPLY_MARK or metadata.startswith(STAFF_MARK_PREFIX))
            unmarked_instagram = platform == "instagram" and metadata is None
            if attributes.get("is_echo") is True and (ours or unmarked_instagram):
                return DeliveryStatus(event.provider_event_id, "delivered")
            return None
        if event.type == "provider.notification":
            return _own_comment(attributes)
        return None


# The longest text each kind of answer takes (Meta's documented limits); Instagram counts UTF-8 bytes.
TEXT_LIMITS: dict[str, tuple[int, bool]] = {
    "whatsapp": (4096, False),
    "whatsapp_caption": (1024, False),
    "messenger": (2000, False),
    "messenger_private_reply": (2000, False),
    "instagram": (1000, True),
    "instagram_private_reply": (1000, True),
    "facebook_comment": (8000, False),
    "instagram_comment": (2200, False),
}


def fit(kind: str, text: str) -> str:
    """`text` cut (with an ellipsis) to what `kind` takes: auto-replies are clipped, while a
    staff answer that does not fit is refused in `prepare` first."""
    limit, in_bytes = TEXT_LIMITS.get(kind, (4096, False))
    if not in_bytes:
        return clip(text, limit)
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode("utf-8", "ignore") + "…"


def _too_long(address: Mapping[str, str], message: OutboundMessage) -> tuple[int, str] | None:
    """(limit, detail) when the message's text is longer than its kind of answer takes."""
    product = str(address.get("product"))
    if product == "whatsapp":
        if message.template is not None:
            return None
        product = "whatsapp_caption" if message.attachments else "whatsapp"
    limit, in_bytes = TEXT_LIMITS.get(product, (4096, False))
    size = len(message.text.encode("utf-8")) if in_bytes else len(message.text)
    if size <= limit:
        return None
    unit = "bytes of UTF-8" if in_bytes else "characters"
    return limit, f"a {product} answer takes at most {limit} {unit}; this one has {size}"


def _mark(message: OutboundMessage) -> str:
    """Echoed back in `metadata`: an auto-reply is marked automated; a staff answer carries its id."""
    return f"{STAFF_MARK_PREFIX}{message.message_id}"[:1000] if message.message_id else AUTO_REPLY_MARK


def _is_image(attachment: Attachment) -> bool:
    return (attachment.content_type or "").lower().startswith("image/")


def _whatsapp_media_kind(attachment: Attachment) -> str:
    """image / video / audio by the content type's family; anything else is a document."""
    family = (attachment.content_type or "").lower().split("/", 1)[0]
    return family if family in ("image", "video", "audio") else "document"


def _whatsapp_status(attributes: Mapping[str, Any]) -> DeliveryStatus | None:
    wamid, state = attributes.get("id"), attributes.get("status")
    if not isinstance(wamid, str) or not wamid or state not in _WHATSAPP_STATES:
        return None  # "deleted", "warning" and unknown states are not delivery steps
    reason = None
    if state == "failed":
        errors = attributes.get("errors")
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], Mapping) else {}
        code = _error_code(first.get("code"))
        title = first.get("title") or first.get("message")
        details = _dig(first, "error_data", "details")
        words = [str(p) for p in (title, details if details != title else None) if p]
        reason = (f"meta_{code}: " if code is not None else "") + (
            ": ".join(words) or "WhatsApp reported the message failed without a reason"
        )
    return DeliveryStatus(wamid, _WHATSAPP_STATES[state], reason)


def _own_comment(attributes: Mapping[str, Any]) -> DeliveryStatus | None:
    """The Page's (or Instagram account's) own new comment, which the adapter keeps as a
    notification: the published echo of a public reply the hub sent."""
    value = attributes.get("value")
    account = attributes.get("account_id")
    if not isinstance(value, Mapping) or not account:
        return None
    kind = attributes.get("kind")
    by_account = _dig(value, "from", "id") == account
    comment_id = value.get("comment_id")
    added = value.get("item") == "comment" and value.get("verb") == "add"
    if kind == "messenger.feed" and by_account and added and isinstance(comment_id, str):
        return DeliveryStatus(comment_id, "delivered")
    if kind == "instagram.comments" and by_account and isinstance(value.get("id"), str):
        return DeliveryStatus(value["id"], "delivered")
    return None
