"""Slack: Events API (and slash commands).

Contract (docs/providers/slack.md has the sources):

* Signature: ``X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:" + ts + ":" + raw
  body)>`` with ``X-Slack-Request-Timestamp`` (unix seconds) no more than 5 minutes from now
  in either direction (slack_sdk's SignatureVerifier uses the same 300 s).
* Handshake: ``url_verification`` is a signed POST; it normalises to no events, so the
  ingest path answers it with ``success_response`` = the challenge as text/plain (after the
  signature was verified).
* Retries carry ``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason`` (kept in attributes as
  ``retry_num`` / ``retry_reason``) and reuse ``event_id``: the delivery id is ``event_id``,
  so a retry is a duplicate.

Normalisation of ``event_callback`` (one event per callback):

* ``message`` (no subtype, or ``file_share``/``thread_broadcast``...) ->
  ``message.received``; a bot's message (``bot_id``, ``bot_message``: the hub's own
  auto-replies among them) -> ``message.sent`` with ``automated: true`` and no contact;
  ``message_changed`` -> ``message.updated`` (the new message);
  user = ``SocialHandle(platform="slack", id=user, handle=username)``; conversation_key
  ``slack:{team}:{channel}:{thread_ts or ts}``; files become attachments.
* ``app_mention`` -> ``mention.created`` (same key); ``reaction_added`` -> ``reaction.created``
  (key of the reacted message); anything else -> ``provider.notification``.
* Slash commands (``application/x-www-form-urlencoded`` with ``command``) ->
  ``interaction.created``; interactivity (``payload=<json>``) -> ``interaction.created``.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any, ClassVar

from switchboard_core.events import (
    Attachment,
    Channel,
    Contact,
    EventDraft,
    SocialHandle,
)
from switchboard_core.providers._common import (
    aware,
    body_digest_id,
    clean_str,
    dig,
    draft,
    from_seconds,
    header,
    load_json,
    parsed_body,
    refuse_invalid_models,
    scalar_str,
    secret_bytes,
    stable_hash,
    text_or_none,
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

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
FORM = "application/x-www-form-urlencoded"
_UPDATE_SUBTYPES = ("message_changed",)
_MAX_CHALLENGE = 2048


def _slack_ts(value: Any) -> datetime | None:
    """Slack message ts "1355517523.000005" (seconds.micro) as a datetime."""
    if not isinstance(value, str) or len(value) > 32:
        return None
    seconds = value.split(".", 1)[0]
    return from_seconds(seconds) if seconds.isascii() and seconds.isdigit() else None


def _form_fields(request: WebhookRequest) -> dict[str, str]:
    form = request.form()
    return {clean_str(key): clean_str(values[0]) for key, values in form.items() if values}


class SlackAdapter(ProviderAdapter):
    name: ClassVar[str] = "slack"
    channel: ClassVar[Channel] = Channel.SOCIAL
    title: ClassVar[str] = "Slack (Events API, slash commands)"
    credential_fields: ClassVar[tuple[str, ...]] = ("signing_secret",)
    content_types: ClassVar[tuple[str, ...]] = ("application/json", FORM)
    replay_window: ClassVar[timedelta | None] = timedelta(minutes=5)

    # ------------------------------------------------------------------ verify
    def verify(self, request: WebhookRequest, credentials: Credentials, now: datetime) -> None:
        signature = header(request, SIGNATURE_HEADER)
        if signature is None:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        stamp = header(request, TIMESTAMP_HEADER)
        if stamp is None:
            raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            raise SignatureError(f"{TIMESTAMP_HEADER} is not a unix timestamp")
        assert self.replay_window is not None
        if abs(aware(now).timestamp() - int(stamp)) > self.replay_window.total_seconds():
            raise SignatureError(f"{TIMESTAMP_HEADER} is outside the 5-minute window")
        secret = secret_bytes(credentials, "signing_secret")
        if secret is None:
            raise SignatureError("the connection has no signing_secret to verify with")
        base = b"v0:" + stamp.encode("ascii") + b":" + request.body
        expected = "v0=" + hmac.new(secret, base, sha256).hexdigest()
        if not constant_time_equal(expected, signature):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")

    def delivery_id(self, request: WebhookRequest) -> str:
        # Read from the signed body whatever the (unsigned) Content-Type says: a form body is
        # never a JSON object, and a JSON event re-sent as form must stay the same delivery.
        event_id = scalar_str(parsed_body(request).get("event_id"))
        return event_id if event_id else body_digest_id(request.body)

    # --------------------------------------------------------------- normalise
    @refuse_invalid_models
    def normalise(self, request: WebhookRequest) -> list[EventDraft]:
        retry = self._retry_attributes(request)
        if request.content_type == FORM:
            return [self._form(request, retry)]
        payload = load_json(request)
        if not isinstance(payload, dict):
            raise MalformedPayload("expected a JSON object with 'type'")
        kind = payload.get("type")
        if kind == "url_verification":
            if not isinstance(payload.get("challenge"), str) or not payload["challenge"]:
                raise MalformedPayload("url_verification needs a string challenge")
            if len(payload["challenge"]) > _MAX_CHALLENGE:
                raise MalformedPayload("challenge is too long")
            return []
        if kind == "event_callback":
            event = payload.get("event")
            if not isinstance(event, dict):
                raise MalformedPayload("event_callback needs an 'event' object")
            return [self._event(payload, event, retry)]
        if not isinstance(kind, str) or not kind:
            raise MalformedPayload("'type' must be a non-empty string")
        # app_rate_limited and other envelope types
        return [
            draft(
                type="provider.notification",
                provider_event_id=f"slack:{kind}:{stable_hash(payload)}",
                attributes={"kind": f"slack.{kind}", **retry, "data": payload},
            )
        ]

    @staticmethod
    def _retry_attributes(request: WebhookRequest) -> dict[str, Any]:
        retry: dict[str, Any] = {}
        num, reason = header(request, "X-Slack-Retry-Num"), header(request, "X-Slack-Retry-Reason")
        if num is not None:
            retry["retry_num"] = int(num) if num.isascii() and num.isdigit() and len(num) < 6 else num
        if reason is not None:
            retry["retry_reason"] = reason
        return retry

    def _event(self, payload: dict[str, Any], event: dict[str, Any], retry: dict[str, Any]) -> EventDraft:
        team = scalar_str(payload.get("team_id")) or scalar_str(event.get("team")) or "-"
        event_id = scalar_str(payload.get("event_id"))
        envelope = {k: v for k, v in payload.items() if k not in ("event", "token", "authorizations")}
        if isinstance(payload.get("authorizations"), list):
            envelope["authorizations"] = payload["authorizations"]
        event_type = scalar_str(event.get("type")) or "event"
        subtype = scalar_str(event.get("subtype"))
        channel = (
            scalar_str(event.get("channel"))
            if not isinstance(event.get("channel"), dict)
            else scalar_str(dig(event, "channel", "id"))
        )
        occurred = from_seconds(payload.get("event_time")) or _slack_ts(event.get("event_ts"))
        fallback_id = f"slack:{team}:{event_type}:{stable_hash(event)}"

        if event_type in ("message", "app_mention"):
            message = event
            canonical = "message.received" if event_type == "message" else "mention.created"
            if subtype in _UPDATE_SUBTYPES and isinstance(event.get("message"), dict):
                message, canonical = event["message"], "message.updated"
            elif subtype == "message_deleted":
                canonical = "provider.notification"
            ts = scalar_str(message.get("ts")) or scalar_str(event.get("ts"))
            thread = scalar_str(message.get("thread_ts")) or ts
            user = scalar_str(message.get("user")) or scalar_str(message.get("bot_id"))
            handle_name = text_or_none(message.get("username"))
            attributes = {
                **envelope,
                **retry,
                "event_type": event_type,
                **{k: v for k, v in event.items() if k not in ("text", "files")},
            }
            if canonical == "message.received" and (message.get("bot_id") or subtype == "bot_message"):
                # A bot wrote it (the hub's own auto-reply comes back this way): the business's
                # side of the thread, not a customer; no contact, it threads by its key.
                canonical, user = "message.sent", None
                attributes["automated"] = True
            if canonical == "provider.notification":
                attributes = {"kind": f"slack.{event_type}.{subtype}", **attributes}
            return draft(
                type=canonical,
                provider_event_id=event_id or fallback_id,
                occurred_at=occurred or _slack_ts(ts),
                contact=Contact(handles=[SocialHandle(platform="slack", id=user, handle=handle_name)] if user else []),
                conversation_key=f"slack:{team}:{channel}:{thread}" if channel and thread else None,
                text=text_or_none(message.get("text")),
                attachments=self._files(message.get("files")),
                attributes=attributes,
            )
        if event_type == "reaction_added":
            user = scalar_str(event.get("user"))
            item = event.get("item")
            item = item if isinstance(item, dict) else {}
            item_channel, item_ts = scalar_str(item.get("channel")), scalar_str(item.get("ts"))
            return draft(
                type="reaction.created",
                provider_event_id=event_id or fallback_id,
                occurred_at=occurred,
                contact=Contact(handles=[SocialHandle(platform="slack", id=user)] if user else []),
                conversation_key=f"slack:{team}:{item_channel}:{item_ts}" if item_channel and item_ts else None,
                attributes={**envelope, **retry, "event_type": event_type, **event},
            )
        user = (
            scalar_str(event.get("user"))
            if not isinstance(event.get("user"), dict)
            else scalar_str(dig(event, "user", "id"))
        )
        return draft(
            type="provider.notification",
            provider_event_id=event_id or fallback_id,
            occurred_at=occurred,
            contact=Contact(handles=[SocialHandle(platform="slack", id=user)] if user else []),
            conversation_key=f"slack:{team}:{channel}" if channel else None,
            attributes={"kind": f"slack.{event_type}", **envelope, **retry, "event": event},
        )

    @staticmethod
    def _files(value: Any) -> list[Attachment]:
        attachments = []
        for item in value if isinstance(value, list) else []:
            if not isinstance(item, dict):
                continue
            url = item.get("url_private")
            attachments.append(
                Attachment(
                    url=url if isinstance(url, str) and url else None,
                    content_type=text_or_none(item.get("mimetype")),
                    provider_id=scalar_str(item.get("id")),
                )
            )
        return attachments

    def _form(self, request: WebhookRequest, retry: dict[str, Any]) -> EventDraft:
        fields = _form_fields(request)
        if "payload" in fields:  # interactivity: block actions, shortcuts, view submissions
            payload = load_json(
                WebhookRequest(method="POST", url="", headers={}, body=fields["payload"].encode("utf-8"))
            )
            if not isinstance(payload, dict):
                raise MalformedPayload("interactivity payload must be a JSON object")
            team = scalar_str(dig(payload, "team", "id")) or "-"
            user = scalar_str(dig(payload, "user", "id"))
            channel = scalar_str(dig(payload, "channel", "id"))
            thread = (
                scalar_str(dig(payload, "message", "thread_ts"))
                or scalar_str(dig(payload, "message", "ts"))
                or scalar_str(dig(payload, "container", "message_ts"))
            )
            trigger = scalar_str(payload.get("trigger_id"))
            actions = payload.get("actions")
            first_action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
            return draft(
                type="interaction.created",
                provider_event_id=f"interaction:{trigger}" if trigger else f"slack:interaction:{stable_hash(payload)}",
                occurred_at=_slack_ts(first_action.get("action_ts")),
                contact=Contact(
                    handles=[
                        SocialHandle(platform="slack", id=user, handle=text_or_none(dig(payload, "user", "username")))
                    ]
                    if user
                    else []
                ),
                conversation_key=(f"slack:{team}:{channel}:{thread}" if thread else f"slack:{team}:{channel}")
                if channel
                else None,
                text=text_or_none(first_action.get("value")),
                attributes={
                    "interaction_type": payload.get("type"),
                    **retry,
                    **{k: v for k, v in payload.items() if k not in ("token",)},
                },
            )
        command = fields.get("command")
        if not command:
            raise MalformedPayload("a form body needs 'command' (slash command) or 'payload' (interactivity)")
        team = fields.get("team_id") or "-"
        user = fields.get("user_id")
        channel = fields.get("channel_id")
        trigger = fields.get("trigger_id")
        return draft(
            type="interaction.created",
            provider_event_id=f"command:{trigger}" if trigger else f"slack:command:{stable_hash(fields)}",
            contact=Contact(
                handles=[SocialHandle(platform="slack", id=user, handle=fields.get("user_name"))] if user else []
            ),
            conversation_key=f"slack:{team}:{channel}" if channel else None,
            text=fields.get("text"),
            attributes={
                "interaction_type": "slash_command",
                **retry,
                **{k: v for k, v in fields.items() if k not in ("token", "text")},
            },
        )

    # ---------------------------------------------------------------- response
    def success_response(self, request: WebhookRequest) -> HttpResponse:
        if request.content_type == "application/json":
            payload = parsed_body(request)
            if payload.get("type") == "url_verification" and isinstance(payload.get("challenge"), str):
                return HttpResponse.text(clean_str(payload["challenge"]))
        if request.content_type == FORM:
            # Slash commands: an empty 200 acknowledges without posting anything in the channel.
            return HttpResponse(status=200, body="", content_type="text/plain; charset=utf-8")
        return HttpResponse.ok()
