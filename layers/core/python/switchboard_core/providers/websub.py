"""WebSub (W3C, formerly PubSubHubbub) subscriber: YouTube push notifications and any hub.

Contract (docs/providers/websub.md has the sources):

* Verification of intent: ``GET ?hub.mode=subscribe|unsubscribe&hub.topic=...&hub.challenge=...
  [&hub.lease_seconds=...]`` -> 200 with the challenge verbatim as the body. The hub
  cannot prove who it is here (no secret is involved), so any well-formed request for
  either mode is confirmed; a missing mode/topic/challenge is 400, another mode
  (e.g. ``denied``) is 403.
* Authenticated content distribution: ``X-Hub-Signature: <method>=<hex HMAC(secret, raw
  body)>`` with method sha1 (what Google's hub sends), sha256, sha384 or sha512. When the
  connection's ``secret`` is non-empty the signature is required; with an empty secret
  (a subscription made without hub.secret) requests are accepted unsigned.
* Bodies: Atom (``application/atom+xml``; ``text/xml``/``application/xml`` too) parsed with
  defusedxml. No delivery id: the delivery id is a digest of the body; each entry's id is
  ``{entry id}@{updated}``, so a re-notification of an updated entry is a new event.

Normalisation: one ``content.published`` per ``<entry>`` (a feed with no entries, e.g. a
deletion notice with ``at:deleted-entry``, -> ``provider.notification``); text = title, the
author as ``SocialHandle(platform="youtube" for YouTube feeds else "websub", id=channel id
or author uri, handle=name)``, conversation_key ``websub:{yt:channelId or feed id}``;
``yt:videoId``, ``yt:channelId``, link, published, updated and the topic in attributes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from switchboard_core.events import Channel, Contact, EventDraft, SocialHandle
from switchboard_core.providers._common import (
    body_digest_id,
    clean_str,
    draft,
    from_iso,
    header,
    query_value,
    refuse_invalid_models,
    safe_xml,
    secret_bytes,
    stable_hash,
    xml_local_name,
)
from switchboard_core.providers.base import (
    Credentials,
    HandshakeRefused,
    HttpResponse,
    MalformedPayload,
    ProviderAdapter,
    SignatureError,
    WebhookRequest,
    constant_time_equal,
)

SIGNATURE_HEADER = "X-Hub-Signature"
ATOM = "{http://www.w3.org/2005/Atom}"
YT = "{http://www.youtube.com/xml/schemas/2015}"
TOMBSTONE = "{http://purl.org/atompub/tombstones/1.0}deleted-entry"
_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
_MAX_CHALLENGE = 2048
_MAX_TEXT = 16_384


def _text(element: Element | None, path: str) -> str | None:
    if element is None:
        return None
    found = element.find(path)
    if found is None or found.text is None:
        return None
    text = clean_str(found.text).strip()
    return text[:_MAX_TEXT] or None


def _plain(element: Element, depth: int = 0) -> Any:
    """An element as JSON: text, or a dict of children (repeated names become lists)."""
    children = list(element)
    if not children or depth > 8:
        value: Any = clean_str(element.text or "").strip()[:_MAX_TEXT]
        attributes = {clean_str(xml_local_name(k)): clean_str(v)[:_MAX_TEXT] for k, v in element.attrib.items()}
        return {**attributes, "text": value} if attributes and value else (attributes or value)
    result: dict[str, Any] = {clean_str(xml_local_name(k)): clean_str(v)[:_MAX_TEXT] for k, v in element.attrib.items()}
    for child in children:
        key = clean_str(xml_local_name(child.tag))
        value = _plain(child, depth + 1)
        if key in result:
            if not isinstance(result[key], list):
                result[key] = [result[key]]
            result[key].append(value)
        else:
            result[key] = value
    return result


class WebSubAdapter(ProviderAdapter):
    name: ClassVar[str] = "websub"
    channel: ClassVar[Channel] = Channel.SOCIAL
    title: ClassVar[str] = "WebSub (YouTube push notifications, any WebSub hub)"
    credential_fields: ClassVar[tuple[str, ...]] = ("secret",)
    content_types: ClassVar[tuple[str, ...]] = ("application/atom+xml", "text/xml", "application/xml")
    supports_handshake: ClassVar[bool] = True

    def validate_credentials(self, credentials: Mapping[str, Any]) -> dict[str, str]:
        # The secret may be empty (a subscription without hub.secret), but must be present.
        if isinstance(credentials, Mapping) and credentials.get("secret") == "":
            checked = super().validate_credentials({**credentials, "secret": "-"})
            return {**checked, "secret": ""}
        return super().validate_credentials(credentials)

    # --------------------------------------------------------------- handshake
    def handshake(self, request: WebhookRequest, credentials: Sequence[Credentials]) -> HttpResponse:
        mode = query_value(request, "hub.mode")
        topic = query_value(request, "hub.topic")
        challenge = query_value(request, "hub.challenge")
        if mode is None or topic is None:
            raise MalformedPayload("a WebSub verification needs hub.mode and hub.topic")
        if mode not in ("subscribe", "unsubscribe"):
            raise HandshakeRefused(f"hub.mode {mode[:20]!r} is not a verification of intent")
        if challenge is None:
            raise MalformedPayload("a WebSub verification needs hub.challenge")
        if len(challenge) > _MAX_CHALLENGE:
            raise MalformedPayload("hub.challenge is too long")
        lease = query_value(request, "hub.lease_seconds")
        if mode == "subscribe" and lease is not None and not (lease.isascii() and lease.isdigit()):
            raise MalformedPayload("hub.lease_seconds must be a number of seconds")
        return HttpResponse.text(challenge)

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        secret_value = credentials.get("secret") if isinstance(credentials, Mapping) else None
        if secret_value == "":
            return  # subscribed without hub.secret: the hub sends no signature
        secret = secret_bytes(credentials, "secret")
        if secret is None:
            raise SignatureError("the connection has no secret to verify with")
        signature = header(request, SIGNATURE_HEADER)
        if signature is None:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        method, _, given = signature.partition("=")
        algorithm = _ALGORITHMS.get(method.strip().lower())
        if algorithm is None or not given:
            raise SignatureError(f"{SIGNATURE_HEADER} must be sha1=, sha256=, sha384= or sha512= and a hex digest")
        expected = hmac.new(secret, request.body, algorithm).hexdigest()
        if not constant_time_equal(expected, given.strip().lower()):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")

    def delivery_id(self, request: WebhookRequest) -> str:
        return body_digest_id(request.body)

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        root = self._parse(request.body)
        if root.tag != f"{ATOM}feed":
            raise MalformedPayload("expected an Atom <feed> document")
        feed_id = _text(root, f"{ATOM}id")
        topic = self._link(root, "self")
        hub = self._link(root, "hub")
        feed = {"feed_id": feed_id, "topic": topic, "hub": hub, "feed_title": _text(root, f"{ATOM}title")}
        events = [self._entry(entry, feed) for entry in root.findall(f"{ATOM}entry")]
        if events:
            return events
        deleted = root.findall(TOMBSTONE)
        return [
            draft(
                type="provider.notification",
                provider_event_id=f"websub:{'deleted' if deleted else 'feed'}:{stable_hash(_plain(root))}",
                attributes={
                    "kind": "websub.deleted_entry" if deleted else "websub.feed",
                    **feed,
                    "deleted_refs": [clean_str(item.get("ref") or "")[:_MAX_TEXT] for item in deleted],
                    "feed": _plain(root),
                },
            )
        ]

    @staticmethod
    def _parse(body: bytes) -> Element:
        if not body.strip():
            raise MalformedPayload("empty body")
        try:
            root = safe_xml(body)
        except (SafeET.ParseError, DefusedXmlException, ValueError, LookupError, RecursionError, UnicodeError) as exc:
            raise MalformedPayload(f"body is not well-formed, safe XML: {type(exc).__name__}") from None
        return root

    @staticmethod
    def _link(element: Element, rel: str) -> str | None:
        for link in element.findall(f"{ATOM}link"):
            if link.get("rel") == rel and link.get("href"):
                return clean_str(link.get("href") or "")[:_MAX_TEXT]
        return None

    def _entry(self, entry: Element, feed: dict[str, Any]) -> EventDraft:
        entry_id = _text(entry, f"{ATOM}id")
        updated = _text(entry, f"{ATOM}updated")
        published = _text(entry, f"{ATOM}published")
        video_id = _text(entry, f"{YT}videoId")
        channel_id = _text(entry, f"{YT}channelId")
        author = entry.find(f"{ATOM}author")
        author_name, author_uri = _text(author, f"{ATOM}name"), _text(author, f"{ATOM}uri")
        platform = "youtube" if video_id or channel_id else "websub"
        handle_id = channel_id or author_uri
        link = self._link(entry, "alternate")
        if entry_id:
            event_id = f"{entry_id}@{updated}" if updated else entry_id
        else:
            event_id = f"websub:entry:{stable_hash(_plain(entry))}"
        source = channel_id or feed.get("feed_id") or feed.get("topic")
        return draft(
            type="content.published",
            provider_event_id=event_id,
            occurred_at=from_iso(updated) or from_iso(published),
            contact=Contact(
                name=author_name,
                handles=[SocialHandle(platform=platform, id=handle_id, handle=author_name)]
                if handle_id or author_name
                else [],
            ),
            conversation_key=f"websub:{source}" if source else None,
            text=_text(entry, f"{ATOM}title"),
            attributes={
                **feed,
                "entry_id": entry_id,
                "video_id": video_id,
                "channel_id": channel_id,
                "link": link,
                "published": published,
                "updated": updated,
                "author_uri": author_uri,
                "entry": _plain(entry),
            },
        )
