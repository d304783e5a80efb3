"""Intercom: webhook notifications (Developer Hub → app → Webhooks).

Contract (docs/providers/intercom.md has the sources):

* ``X-Hub-Signature: sha1=<hex HMAC-SHA1(app client_secret, raw body)>``; no timestamp,
  so replays are bounded only by deduplication on the notification ``id``.
* Envelope: ``{"type": "notification_event", "id": "notif_…", "topic", "app_id",
  "created_at", "delivery_attempts", "first_sent_at", "data": {"type": "notification_event_data",
  "item": {…}}}``. The ``ping`` topic (sent when the webhook is saved) is a handshake:
  no events, answered 200.

Normalisation (one event per notification, provider_event_id = notification id):

* ``conversation.user.created`` / ``conversation.user.replied`` → ``message.received``;
  ``conversation.admin.replied`` / ``conversation.admin.single.created`` /
  ``conversation.admin.noted`` → ``message.sent``. Text = the newest conversation part's
  body (or the opening message, ``source.body`` / ``conversation_message.body``), HTML
  reduced to plain text. Contact = the conversation's user (``source.author`` when it is a
  user/lead/contact, else ``user`` / first of ``contacts.contacts``): e-mail, name,
  ``crm_ids["intercom"]``. conversation_key ``intercom:{app_id}:{conversation id}``.
* ``contact.*.created`` / ``user.created`` / ``contact.created`` → ``contact.created``;
  ``*.deleted`` → ``contact.deleted``; other ``contact.*`` / ``user.*`` (updated, email
  updated, tag, signed_up…) → ``contact.updated``; e-mail, phone (E.164), name, id.
* Every other topic → ``provider.notification`` with the topic as ``kind``.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime
from hashlib import sha1
from html.parser import HTMLParser
from typing import Any, ClassVar

from switchboard_core.events import Channel, Contact, EventDraft
from switchboard_core.providers._common import (
    body_digest_id,
    bounded_id,
    clean_str,
    draft,
    email_or_none,
    from_seconds,
    header,
    load_json,
    refuse_invalid_models,
    scalar_str,
    secret_bytes,
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

SIGNATURE_HEADER = "X-Hub-Signature"
PING_TOPIC = "ping"

_RECEIVED_TOPICS = {"conversation.user.created", "conversation.user.replied"}
_SENT_TOPICS = {"conversation.admin.replied", "conversation.admin.single.created", "conversation.admin.noted"}
_PERSON_PREFIXES = ("contact.", "user.")
_PERSON_AUTHORS = {"user", "lead", "contact"}
_BLOCK_TAGS = {"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "tr"}
_SPACES = re.compile(r"[ \t\r\f\v]+")


def _collapse_blanks(line: str) -> str:
    """Runs of blanks and tab-like blanks as one space. Most lines have neither (no double
    space, nothing unprintable), and the regular expression costs ~130 ns a character even
    where it matches nothing: 34 ms for a 256 KB message (docs/benchmarks.md, providers)."""
    if "  " not in line and line.isprintable():
        return line
    return _SPACES.sub(" ", line)


def compute_signature(client_secret: str | bytes, body: bytes) -> str:
    """'sha1=' + hex HMAC-SHA1(client secret, raw body)."""
    key = client_secret.encode("utf-8") if isinstance(client_secret, str) else client_secret
    return "sha1=" + hmac.new(key, body, sha1).hexdigest()


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(value: Any) -> str | None:
    """Intercom part bodies are HTML ('<p>Hi</p>'): their text, paragraphs on their own lines."""
    if not isinstance(value, str):
        return None
    parser = _TextExtractor()
    try:
        parser.feed(value)
        parser.close()
    except (AssertionError, ValueError):  # pragma: no cover - HTMLParser is lenient
        return clean_str(value)
    text = "".join(parser.parts)
    if "  " in text or any(blank in text for blank in "\t\r\f\v"):
        lines = (_collapse_blanks(line).strip() for line in text.split("\n"))
    else:  # no run to collapse anywhere: five searches of the text instead of a check per line
        lines = (line.strip() for line in text.split("\n"))
    return clean_str("\n".join(line for line in lines if line)) or None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _person(item: dict[str, Any]) -> Contact:
    person_id = scalar_str(item.get("id"))
    return Contact(
        email=email_or_none(item.get("email")),
        phone=typed_phone(item.get("phone")),
        name=scalar_str(item.get("name")),
        crm_ids={"intercom": person_id} if person_id else {},
    )


class IntercomAdapter(ProviderAdapter):
    name: ClassVar[str] = "intercom"
    channel: ClassVar[Channel] = Channel.CRM
    title: ClassVar[str] = "Intercom (webhook notifications)"
    credential_fields: ClassVar[tuple[str, ...]] = ("client_secret",)

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        signature = header(request, SIGNATURE_HEADER)
        if signature is None:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        secret = secret_bytes(credentials, "client_secret")
        if secret is None:
            raise SignatureError("the connection has no client_secret to verify with")
        scheme, _, digest = signature.partition("=")
        if scheme.lower() != "sha1" or not digest:
            raise SignatureError(f"{SIGNATURE_HEADER} must be sha1=<hex digest>")
        expected = compute_signature(secret, request.body)[len("sha1=") :]
        if not constant_time_equal(expected, digest.lower()):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the request")

    # ------------------------------------------------------------- delivery id
    def delivery_id(self, request: WebhookRequest) -> str:
        try:
            payload = load_json(request)
        except MalformedPayload:
            return body_digest_id(request.body)
        notification_id = scalar_str(payload.get("id")) if isinstance(payload, dict) else None
        return bounded_id(notification_id) if notification_id is not None else body_digest_id(request.body)

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        payload = load_json(request)
        if not isinstance(payload, dict):
            raise MalformedPayload("an Intercom notification must be a JSON object")
        topic = payload.get("topic")
        if not isinstance(topic, str) or not topic.strip():
            raise MalformedPayload("the notification has no topic")
        topic = topic.strip()
        if topic == PING_TOPIC:
            return []  # the handshake sent when the webhook is saved
        notification_id = scalar_str(payload.get("id"))
        if notification_id is None:
            raise MalformedPayload("the notification has no id")
        data = payload.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("item"), dict):
            raise MalformedPayload("the notification has no data.item object")
        item = data["item"]
        app_id = scalar_str(payload.get("app_id")) or "-"
        attributes = {key: value for key, value in payload.items() if key not in ("id", "data")}
        attributes["item"] = item
        common = {"provider_event_id": notification_id, "occurred_at": from_seconds(payload.get("created_at"))}

        if topic in _RECEIVED_TOPICS or topic in _SENT_TOPICS:
            conversation_id = scalar_str(item.get("id"))
            return [
                draft(
                    type="message.received" if topic in _RECEIVED_TOPICS else "message.sent",
                    contact=self._conversation_contact(item),
                    conversation_key=f"intercom:{app_id}:{conversation_id}" if conversation_id else None,
                    text=self._conversation_text(item),
                    attributes=attributes,
                    **common,
                )
            ]
        if topic.startswith(_PERSON_PREFIXES):
            if topic.endswith(".created") and topic.count(".") <= 2 and ".tag." not in topic:
                event_type = "contact.created"
            elif topic.endswith(".deleted") and ".tag." not in topic:
                event_type = "contact.deleted"
            else:
                event_type = "contact.updated"
            return [draft(type=event_type, contact=_person(item), attributes=attributes, **common)]
        return [draft(type="provider.notification", attributes={"kind": topic, **attributes}, **common)]

    def _conversation_contact(self, item: dict[str, Any]) -> Contact:
        author = _dict(_dict(item.get("source")).get("author"))
        if scalar_str(author.get("type")) in _PERSON_AUTHORS:
            return _person(author)
        user = _dict(item.get("user"))
        if user:
            return _person(user)
        contacts = _dict(item.get("contacts")).get("contacts")
        if isinstance(contacts, list) and contacts and isinstance(contacts[0], dict):
            return _person(contacts[0])
        return Contact()

    def _conversation_text(self, item: dict[str, Any]) -> str | None:
        parts = _dict(item.get("conversation_parts")).get("conversation_parts")
        if isinstance(parts, list):
            for part in reversed(parts):
                if isinstance(part, dict):
                    text = html_to_text(part.get("body"))
                    if text:
                        return text
        for opening in (_dict(item.get("source")), _dict(item.get("conversation_message"))):
            text = html_to_text(opening.get("body"))
            if text:
                return text
        return None
