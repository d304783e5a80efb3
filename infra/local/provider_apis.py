"""The providers' send APIs on loopback, for the local runtime and the tests.

moto stands in for AWS; this stands in for the few provider endpoints Switchboard calls
to reply to a customer (switchboard_core.outbound). Each route checks credentials the
way the real API does (against the sets registered with `accept`), answers in the
provider's documented success and error shapes, and records what was sent, so a demo or
a test can see the reply that would have reached the customer:

    GET /_sandbox/messages              every accepted message, oldest first
    GET /_sandbox/calls                 every accepted call update (Twilio Calls API) or Call Control
                                        command (Telnyx), oldest first
    GET /_sandbox/placed_calls          every call the hub placed (Twilio Calls create, Vonage create call:
                                        a campaign's place_call / connect_call), oldest first
    POST /_sandbox/call_outcome {"call_id", "outcome", "digits"?}   what became of a placed call, posted
                                        to the hub as the provider would (outcome answered, no-answer, busy,
                                        failed; digits: the keypad input its Gather / input reads), signed
    POST /_sandbox/fail {"provider", "status", "times"}   make the next sends fail (tests)
    POST /_sandbox/status {"message_id", "state", "reason"?}  call the hub back with the provider's
                                        status webhook for an accepted message (its provider id)
    POST /_sandbox/hubspot/messages {Message}   a customer's message in a HubSpot inbox thread, which
                                        the Conversations API's GET then answers (`add_hubspot_message`)

Senders reach it through SWITCHBOARD_PROVIDER_API_URL (base URL + "/<provider>").
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

Handler = Callable[["ProviderApis", Request, dict[str, str]], Response]


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")


@dataclass
class SentMessage:
    provider: str
    to: str
    text: str
    message_id: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class CallUpdate:
    provider: str
    call_sid: str
    twiml: str | None
    url: str | None
    status: str | None
    action: str | None = None  # Telnyx: the Call Control command (answer, playback_start, speak, transfer)
    body: dict[str, Any] | None = None  # Telnyx: the command's JSON body


@dataclass
class PlacedCall:
    """A call the hub placed: the provider's id for it, who it rings, from which number, what it
    runs (Twilio's TwiML, Vonage's NCCO) and where its callbacks go (Twilio StatusCallback,
    Vonage event_url)."""

    provider: str
    call_id: str
    to: str
    from_: str | None
    twiml: str | None = None
    ncco: list[dict[str, Any]] | None = None
    callback_url: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


CALL_OUTCOMES = ("answered", "no-answer", "busy", "failed")


class ProviderApis:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted: dict[str, list[dict[str, str]]] = {}
        self._failures: dict[str, list[int]] = {}
        self.messages: list[SentMessage] = []
        self.call_updates: list[CallUpdate] = []
        self.placed_calls: list[PlacedCall] = []
        # Set by the local runtime: posts the provider's signed callbacks of a placed call to the hub
        # (PlacedCall, outcome, digits) -> the hub's HTTP status of each callback, in order.
        self.call_webhook: Callable[[PlacedCall, str, str | None], list[int]] | None = None
        # Call sids the sandbox answers 400/21220 for ("Call is not in-progress"): a caller who hung up.
        self.ended_calls: set[str] = set()
        self._command_ids: set[tuple[str, str]] = set()  # Telnyx (call_control_id, command_id) already taken
        # HubSpot inbox messages customers wrote, (thread id, message id) -> the Message JSON the
        # Conversations API answers (`add_hubspot_message`); the hub's own are in `messages`.
        self.hubspot_threads: dict[tuple[str, str], dict[str, Any]] = {}
        # Set by the local runtime: posts the provider's signed status webhook for a sent message to the hub
        # (SentMessage, state, reason) -> the hub's HTTP status.
        self.status_webhook: Callable[[SentMessage, str, str | None], int] | None = None
        self._routes = Map(
            [
                Rule(
                    path,
                    endpoint=handler,
                    methods=ROUTE_METHODS.get(path) or list(getattr(handler, "methods", ("POST",))),
                )
                for path, handler in ROUTES.items()
            ]
            + [
                Rule("/_sandbox/messages", endpoint="messages", methods=["GET"]),
                Rule("/_sandbox/calls", endpoint="calls", methods=["GET"]),
                Rule("/_sandbox/placed_calls", endpoint="placed_calls", methods=["GET"]),
                Rule("/_sandbox/call_outcome", endpoint="call_outcome", methods=["POST"]),
                Rule("/_sandbox/fail", endpoint="fail", methods=["POST"]),
                Rule("/_sandbox/status", endpoint="status", methods=["POST"]),
                Rule("/_sandbox/hubspot/messages", endpoint="hubspot_messages", methods=["POST"]),
            ]
        )

    def accept(self, provider: str, credentials: dict[str, str]) -> None:
        """Credentials the sandbox treats as valid for `provider`."""
        with self._lock:
            self._accepted.setdefault(provider, []).append(dict(credentials))

    def accepted(self, provider: str) -> list[dict[str, str]]:
        with self._lock:
            return list(self._accepted.get(provider, []))

    def fail_next(self, provider: str, status: int, times: int = 1) -> None:
        with self._lock:
            self._failures.setdefault(provider, []).extend([status] * times)

    def record(self, message: SentMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def add_hubspot_message(self, message: dict[str, Any]) -> None:
        """A message a customer wrote in a HubSpot inbox thread (a Message as the Conversations API
        returns it, e.g. `hubspot_inbound_message(...)`), so `GET .../threads/{id}/messages/{id}` answers it."""
        thread_id, message_id = str(message["conversationsThreadId"]), str(message["id"])
        if not thread_id.isdigit() or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", message_id):
            raise ValueError("a HubSpot message needs a numeric conversationsThreadId and an opaque id")
        with self._lock:
            self.hubspot_threads[(thread_id, message_id)] = dict(message)

    def hubspot_message(self, thread_id: str, message_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self.hubspot_threads.get((thread_id, message_id))

    def record_call_update(self, update: CallUpdate) -> None:
        with self._lock:
            self.call_updates.append(update)

    def record_placed_call(self, placed: PlacedCall) -> None:
        with self._lock:
            self.placed_calls.append(placed)

    def placed_call(self, call_id: str) -> PlacedCall | None:
        with self._lock:
            return next((c for c in self.placed_calls if c.call_id == call_id), None)

    def _emit_call_outcome(self, request: Request) -> Response:
        try:
            order = json.loads(request.get_data() or b"{}")
            call_id, outcome, digits = str(order["call_id"]), order["outcome"], order.get("digits")
        except (ValueError, KeyError, TypeError):
            return json_response({"error": 'expected {"call_id", "outcome", "digits"?}'}, status=400)
        if outcome not in CALL_OUTCOMES:
            return json_response({"error": f"outcome must be one of {', '.join(CALL_OUTCOMES)}"}, status=400)
        if digits is not None and not (isinstance(digits, str) and re.fullmatch(r"[0-9*#]{0,16}", digits)):
            return json_response({"error": "digits must be up to 16 of 0-9, * and #"}, status=400)
        placed = self.placed_call(call_id)
        if placed is None:
            return json_response({"error": f"no call {call_id!r} was placed through the sandbox"}, status=404)
        if self.call_webhook is None:
            return json_response({"error": "no hub to call back (the sandbox runs alone)"}, status=409)
        try:
            statuses = self.call_webhook(placed, outcome, digits)
        except ValueError as error:  # no callback URL, or credentials the sandbox cannot sign with
            return json_response({"error": str(error)}, status=409)
        return json_response({"provider": placed.provider, "call_id": placed.call_id, "hub_statuses": statuses})

    def first_command(self, call_control_id: str, command_id: str) -> bool:
        """False when Telnyx has already seen this command id on this call (it ignores the repeat)."""
        with self._lock:
            key = (call_control_id, command_id)
            if key in self._command_ids:
                return False
            self._command_ids.add(key)
            return True

    def sent(self, provider_message_id: str) -> SentMessage | None:
        with self._lock:
            return next((m for m in reversed(self.messages) if m.message_id == provider_message_id), None)

    def _emit_status(self, request: Request) -> Response:
        try:
            order = json.loads(request.get_data() or b"{}")
            message_id, state, reason = order["message_id"], order["state"], order.get("reason")
        except (ValueError, KeyError, TypeError):
            return json_response({"error": 'expected {"message_id", "state", "reason"?}'}, status=400)
        if state not in ("sent", "delivered", "read", "failed"):
            return json_response({"error": "state must be sent, delivered, read or failed"}, status=400)
        sent = self.sent(str(message_id))
        if sent is None:
            return json_response({"error": f"no message {message_id!r} was sent through the sandbox"}, status=404)
        if self.status_webhook is None:
            return json_response({"error": "no hub to call back (the sandbox runs alone)"}, status=409)
        try:
            hub_status = self.status_webhook(sent, state, reason)
        except ValueError as error:  # the provider sends no status webhooks
            return json_response({"error": str(error)}, status=409)
        return json_response({"provider": sent.provider, "message_id": sent.message_id, "hub_status": hub_status})

    def _injected_failure(self, provider: str) -> int | None:
        with self._lock:
            queue = self._failures.get(provider)
            return queue.pop(0) if queue else None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        adapter = self._routes.bind_to_environ(environ)
        try:
            endpoint, values = adapter.match()
        except Exception:  # noqa: BLE001 - werkzeug's HTTPException answers itself
            response = json_response({"error": "no such sandbox endpoint"}, status=404)
            return response(environ, start_response)
        if endpoint == "messages":
            with self._lock:
                listed = [vars(m) for m in self.messages]
            response = json_response({"messages": listed})
        elif endpoint == "calls":
            with self._lock:
                updates = [vars(u) for u in self.call_updates]
            response = json_response({"calls": updates})
        elif endpoint == "placed_calls":
            with self._lock:
                placed = [vars(c) for c in self.placed_calls]
            response = json_response({"placed_calls": placed})
        elif endpoint == "call_outcome":
            response = self._emit_call_outcome(request)
        elif endpoint == "status":
            response = self._emit_status(request)
        elif endpoint == "hubspot_messages":  # the local demo's customer writing in a HubSpot thread
            try:
                self.add_hubspot_message(json.loads(request.get_data() or b"{}"))
                response = json_response({"ok": True}, status=201)
            except (ValueError, KeyError, TypeError) as error:
                response = json_response({"error": f"expected a HubSpot Message: {error}"}, status=400)
        elif endpoint == "fail":
            order = json.loads(request.get_data() or b"{}")
            self.fail_next(order["provider"], int(order["status"]), int(order.get("times", 1)))
            response = json_response({"ok": True})
        else:
            provider = request.path.strip("/").split("/", 1)[0]
            status = self._injected_failure(provider)
            if status is not None:
                response = json_response({"error": "sandbox: injected failure", "status": status}, status=status)
            else:
                response = endpoint(self, request, values)
        return response(environ, start_response)


# --------------------------------------------------------------------------- twilio
def _bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer` header (werkzeug parses the header)."""
    auth = request.authorization
    return auth.token if auth is not None and auth.type == "bearer" else None


def _twilio_authenticated(apis: ProviderApis, request: Request, values: dict[str, str]) -> bool:
    auth = request.authorization  # HTTP Basic: account SID and auth token
    return (
        auth is not None
        and auth.type == "basic"
        and any(
            c["account_sid"] == auth.username == values["account_sid"] and c["auth_token"] == auth.password
            for c in apis.accepted("twilio")
        )
    )


def _twilio_unauthenticated() -> Response:
    return json_response(
        {
            "code": 20003,
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401,
        },
        status=401,
    )


def twilio_messages(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """Messages create: ``To``, ``From`` or ``MessagingServiceSid``, ``Body`` and/or ``MediaUrl``
    (repeated, up to 10) or ``ContentSid``, optional ``StatusCallback``."""
    if not _twilio_authenticated(apis, request, values):
        return _twilio_unauthenticated()
    params = parse_qs(request.get_data(as_text=True))
    form = {k: v[0] for k, v in params.items()}
    media = params.get("MediaUrl", [])
    to, body = form.get("To", ""), form.get("Body", "")
    if not to or not (form.get("From") or form.get("MessagingServiceSid")):
        return json_response(
            {"code": 21604, "message": "A 'To' and a 'From' (or 'MessagingServiceSid') are required", "status": 400},
            status=400,
        )
    if not body and not media and not form.get("ContentSid"):
        return json_response({"code": 21602, "message": "Message body is required.", "status": 400}, status=400)
    if len(media) > 10:
        return json_response(
            {"code": 21623, "message": "Too many media files: at most 10 MediaUrl", "status": 400}, status=400
        )
    if any(not re.match(r"^https?://[^/\s]+", url) for url in media):
        return json_response({"code": 21620, "message": "Invalid media URL(s)", "status": 400}, status=400)
    sid = ("MM" if media else "SM") + secrets.token_hex(16)
    apis.record(
        SentMessage(
            "twilio",
            to=to,
            text=body,
            message_id=sid,
            details={
                "from": form.get("From") or form.get("MessagingServiceSid"),
                "account_sid": values["account_sid"],
                "media": media,
                "content_sid": form.get("ContentSid"),
                "status_callback": form.get("StatusCallback"),
            },
        )
    )
    return json_response(
        {
            "sid": sid,
            "account_sid": values["account_sid"],
            "to": to,
            "from": form.get("From"),
            "body": body,
            "num_media": str(len(media)),
            "status": "queued",
            "direction": "outbound-api",
        },
        status=201,
    )


def twilio_update_call(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """Twilio's Calls update: a live call gets new TwiML (``Twiml``) or a URL to fetch it from
    (``Url``), or is ended (``Status=completed|canceled``). Recorded when Twilio would take it."""
    if not _twilio_authenticated(apis, request, values):
        return _twilio_unauthenticated()
    form = {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
    twiml, url, status = form.get("Twiml"), form.get("Url"), form.get("Status")
    if not (twiml or url or status):
        return json_response(
            {"code": 21218, "message": "Either 'Url', 'Twiml' or 'Status' is required", "status": 400}, status=400
        )
    if status is not None and status not in ("completed", "canceled"):
        return json_response({"code": 21218, "message": f"Invalid Status: {status}", "status": 400}, status=400)
    call_sid = values["call_sid"]
    if not re.fullmatch(r"CA[0-9a-fA-F]{32}", call_sid):
        return json_response(
            {"code": 20404, "message": f"The requested resource {request.path} was not found", "status": 404},
            status=404,
        )
    if call_sid in apis.ended_calls:
        ended = {"code": 21220, "message": "Call is not in-progress. Cannot redirect.", "status": 400}
        return json_response(ended, status=400)
    apis.record_call_update(CallUpdate("twilio", call_sid=call_sid, twiml=twiml, url=url, status=status))
    return json_response(
        {
            "sid": call_sid,
            "account_sid": values["account_sid"],
            "status": status or "in-progress",
            "direction": "inbound",
        },
        status=200,
    )


_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def twilio_create_call(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """Twilio's Calls create: ``To``, ``From`` (E.164), ``Twiml`` or ``Url``, optional
    ``StatusCallback``; 201 with the call resource (``sid`` CA..., status queued). Recorded."""
    if not _twilio_authenticated(apis, request, values):
        return _twilio_unauthenticated()
    form = {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
    to, sender = form.get("To", ""), form.get("From", "")
    if not _E164.match(to):
        return json_response({"code": 21201, "message": "No 'To' number is specified", "status": 400}, status=400)
    if not _E164.match(sender):
        return json_response({"code": 21213, "message": "No 'From' number is specified", "status": 400}, status=400)
    twiml = form.get("Twiml")
    if not twiml and not form.get("Url"):
        return json_response(
            {"code": 21205, "message": "Url or Twiml parameter is required", "status": 400}, status=400
        )
    if twiml:
        from xml.etree import ElementTree as ET

        try:
            document = ET.fromstring(twiml)  # noqa: S314 - the hub's own TwiML, on loopback
        except ET.ParseError:
            return json_response({"code": 12100, "message": "Document parse failure", "status": 400}, status=400)
        if document.tag != "Response":
            return json_response({"code": 12102, "message": "Invalid root element", "status": 400}, status=400)
    sid = "CA" + secrets.token_hex(16)
    apis.record_placed_call(
        PlacedCall(
            "twilio",
            call_id=sid,
            to=to,
            from_=sender,
            twiml=twiml,
            callback_url=form.get("StatusCallback"),
            details={"account_sid": values["account_sid"], "url": form.get("Url"), "timeout": form.get("Timeout")},
        )
    )
    return json_response(
        {
            "sid": sid,
            "account_sid": values["account_sid"],
            "to": to,
            "from": sender,
            "status": "queued",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
        },
        status=201,
    )


# --------------------------------------------------------------------------- telnyx
_TELNYX_ACTIONS = ("answer", "playback_start", "speak", "transfer")


def _telnyx_error(status: int, code: str, title: str, detail: str = "") -> Response:
    return json_response({"errors": [{"code": code, "title": title, "detail": detail or title}]}, status=status)


def _telnyx_authenticated(apis: ProviderApis, request: Request) -> bool:
    return any(_bearer(request) == c.get("api_key") for c in apis.accepted("telnyx"))


def telnyx_messages(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``POST /v2/messages`` (``from``, ``to``, ``text`` and/or ``media_urls``, optional ``webhook_url``)."""
    if not _telnyx_authenticated(apis, request):
        return _telnyx_error(401, "10009", "Authentication failed")
    body = _json_or_form(request) or {}
    sender, to, text, media = body.get("from"), body.get("to"), body.get("text"), body.get("media_urls", [])
    if not all(isinstance(v, str) and v for v in (sender, to)):
        return _telnyx_error(422, "10015", "Invalid parameter", "from and to are required")
    if not isinstance(media, list) or len(media) > 10 or not all(isinstance(url, str) for url in media):
        return _telnyx_error(422, "10015", "Invalid parameter", "media_urls must be a list of at most 10 URLs")
    if not (isinstance(text, str) and text) and not media:
        return _telnyx_error(422, "10015", "Invalid parameter", "text or media_urls is required")
    message_id = str(uuid.uuid4())
    details = {"from": sender, "media": media, "webhook_url": body.get("webhook_url")}
    apis.record(SentMessage("telnyx", to=str(to), text=str(text or ""), message_id=message_id, details=details))
    return json_response(
        {
            "data": {
                "id": message_id,
                "record_type": "message",
                "direction": "outbound",
                "type": "MMS" if media else "SMS",
                "from": {"phone_number": sender},
                "to": [{"phone_number": to, "status": "queued"}],
                "text": text,
            }
        }
    )


def telnyx_call_action(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``POST /v2/calls/{call_control_id}/actions/{action}``: answer, playback_start, speak,
    transfer (``to`` required). A repeated ``command_id`` on the same call is ignored, as Telnyx does."""
    if not _telnyx_authenticated(apis, request):
        return _telnyx_error(401, "10009", "Authentication failed")
    action, call_control_id = values["action"], values["call_control_id"]
    if action not in _TELNYX_ACTIONS:
        return _telnyx_error(404, "10005", "Resource not found", f"no call command {action!r} in the sandbox")
    body = _json_or_form(request)
    if body is None:
        return _telnyx_error(422, "10015", "Invalid parameter", "the body must be a JSON object")
    if action == "transfer" and not (isinstance(body.get("to"), str) and body["to"]):
        return _telnyx_error(422, "10015", "Invalid parameter", "to is required")
    if action == "playback_start" and not (body.get("audio_url") or body.get("media_name")):
        return _telnyx_error(422, "10015", "Invalid parameter", "audio_url or media_name is required")
    if action == "speak" and not (isinstance(body.get("payload"), str) and body.get("voice")):
        return _telnyx_error(422, "10015", "Invalid parameter", "payload and voice are required")
    if call_control_id in apis.ended_calls:
        return _telnyx_error(422, "90018", "Call has already ended")
    command_id = body.get("command_id")
    if not isinstance(command_id, str) or apis.first_command(call_control_id, command_id):
        apis.record_call_update(
            CallUpdate("telnyx", call_sid=call_control_id, twiml=None, url=None, status=None, action=action, body=body)
        )
    return json_response({"data": {"result": "ok"}})


# ------------------------------------------------------------------------- telegram
_TELEGRAM_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]{30,}$")


def _telegram_error(status: int, description: str) -> Response:
    return json_response({"ok": False, "error_code": status, "description": description}, status=status)


def _json_or_form(request: Request) -> dict[str, Any] | None:
    """The parameters of a JSON or form-encoded body (Bot API and Web API accept both)."""
    if request.mimetype == "application/x-www-form-urlencoded":
        return {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
    try:
        payload = json.loads(request.get_data() or b"{}")
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def telegram_send_message(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    token = values["token"]
    if not _TELEGRAM_TOKEN.match(token):
        return _telegram_error(404, "Not Found")  # what api.telegram.org answers for a malformed token
    if not any(c.get("bot_token") == token for c in apis.accepted("telegram")):
        return _telegram_error(401, "Unauthorized")
    params = _json_or_form(request)
    if params is None:
        return _telegram_error(400, "Bad Request: can't parse JSON")
    chat_id, text = params.get("chat_id"), params.get("text")
    if chat_id in (None, ""):
        return _telegram_error(400, "Bad Request: chat_id is empty")
    if not isinstance(text, str) or not text.strip():
        return _telegram_error(400, "Bad Request: message text is empty")
    if len(text) > 4096:
        return _telegram_error(400, "Bad Request: message is too long")
    reply = params.get("reply_parameters")
    if isinstance(reply, str):
        try:
            reply = json.loads(reply)
        except ValueError:
            return _telegram_error(400, "Bad Request: can't parse reply parameters JSON object")
    if reply is not None and not (isinstance(reply, dict) and isinstance(reply.get("message_id"), int)):
        return _telegram_error(400, "Bad Request: invalid reply parameters specified")
    message_id = 1 + secrets.randbelow(2**31 - 1)
    bot_id = int(token.split(":", 1)[0])
    apis.record(
        SentMessage(
            "telegram",
            to=str(chat_id),
            text=text,
            message_id=str(message_id),
            details={
                "reply_to_message_id": reply.get("message_id") if isinstance(reply, dict) else None,
                "message_thread_id": params.get("message_thread_id"),
                "business_connection_id": params.get("business_connection_id"),
            },
        )
    )
    chat_type = "private" if not str(chat_id).startswith("-") else "supergroup"
    return json_response(
        {
            "ok": True,
            "result": {
                "message_id": message_id,
                "from": {
                    "id": bot_id,
                    "is_bot": True,
                    "first_name": "Switchboard",
                    "username": "switchboard_sandbox_bot",
                },
                "chat": {"id": chat_id, "type": chat_type},
                "date": int(time.time()),
                "text": text,
            },
        }
    )


# ---------------------------------------------------------------------------- slack
def _slack(payload: dict[str, Any], status: int = 200) -> Response:
    return json_response(payload, status=status)


def slack_post_message(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    # The Web API answers HTTP 200 with ok:false for every refusal but rate limiting.
    params = _json_or_form(request)
    token = _bearer(request) or (params or {}).get("token")
    if not token:
        return _slack({"ok": False, "error": "not_authed"})
    if not any(c.get("bot_token") == token for c in apis.accepted("slack")):
        return _slack({"ok": False, "error": "invalid_auth"})
    if params is None:
        return _slack({"ok": False, "error": "invalid_json"})
    channel, text = params.get("channel"), params.get("text")
    if not isinstance(channel, str) or not channel:
        return _slack({"ok": False, "error": "channel_not_found"})
    if not isinstance(text, str) or not text.strip():
        return _slack({"ok": False, "error": "no_text"})
    if len(text) > 40000:
        return _slack({"ok": False, "error": "msg_too_long"})
    thread_ts = params.get("thread_ts")
    if thread_ts is not None and not (isinstance(thread_ts, str) and re.match(r"^\d+\.\d+$", thread_ts)):
        return _slack({"ok": False, "error": "invalid_thread_ts"})
    ts = f"{time.time():.6f}"
    apis.record(SentMessage("slack", to=channel, text=text, message_id=ts, details={"thread_ts": thread_ts}))
    message: dict[str, Any] = {
        "type": "message",
        "subtype": "bot_message",
        "text": text,
        "ts": ts,
        "bot_id": "B" + secrets.token_hex(5).upper(),
    }
    if thread_ts:
        message["thread_ts"] = thread_ts
    return _slack({"ok": True, "channel": channel, "ts": ts, "message": message})


# ----------------------------------------------------------------------------- meta
# Graph API (graph.facebook.com, under /meta) and the Instagram API with Instagram Login
# (graph.instagram.com, under /meta/instagram): WhatsApp Cloud API, Messenger Send API and
# Private Replies, Page comment replies, Instagram messages, private and comment replies.
_GRAPH_VERSION = re.compile(r"^v\d+\.\d+$")
_GRAPH_NODE = re.compile(r"^\d{1,32}$")
_GRAPH_OBJECT = re.compile(r"^\d{1,32}(_\d{1,32})?$")
_WHATSAPP_MEDIA = ("image", "document", "audio", "video")
_MESSENGER_TAGS = ("HUMAN_AGENT", "ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE")


def _graph_error(status: int, code: int, message: str, type_: str = "OAuthException", **extra: Any) -> Response:
    return json_response(
        {"error": {"message": message, "type": type_, "code": code, **extra, "fbtrace_id": secrets.token_urlsafe(9)}},
        status=status,
    )


def _graph_invalid(message: str) -> Response:
    return _graph_error(400, 100, f"(#100) {message}", "GraphMethodException")


def _meta_token_ok(apis: ProviderApis, request: Request, field: str) -> bool:
    token = _bearer(request) or request.args.get("access_token", "")
    return bool(token) and any(c.get(field) == token for c in apis.accepted("meta"))


def _meta_path_ok(values: dict[str, str], node: str, pattern: re.Pattern[str]) -> bool:
    return bool(_GRAPH_VERSION.match(values["version"]) and pattern.match(values[node]))


def _meta_unknown_path(request: Request) -> Response:
    return _graph_error(400, 2500, f"Unknown path components: {request.path}")


def _meta_mid() -> str:
    return "m_" + secrets.token_urlsafe(48)


def _graph_digits(n: int) -> str:
    return str(1 + secrets.randbelow(9)) + "".join(str(secrets.randbelow(10)) for _ in range(n - 1))


def meta_messages(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """graph.facebook.com ``POST /<version>/<node id>/messages``: the WhatsApp Cloud API (node =
    phone number id), the Messenger Send API and Private Replies (node = Page id)."""
    if not _meta_path_ok(values, "node_id", _GRAPH_NODE):
        return _meta_unknown_path(request)
    body = _json_or_form(request)
    whatsapp = isinstance(body, dict) and "messaging_product" in body
    if not _meta_token_ok(apis, request, "access_token"):
        # Cloud API documents 190 as HTTP 401; the Graph API at large answers OAuthException with 400.
        return _graph_error(401 if whatsapp else 400, 190, "Invalid OAuth access token - Cannot parse access token")
    if body is None:
        return _graph_invalid("The request body must be a JSON object")
    if whatsapp:
        return _whatsapp_message(apis, values["node_id"], body)
    return _page_message(apis, "messenger", values["node_id"], body)


def instagram_messages(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """graph.instagram.com ``POST /<version>/<IG id>/messages``: Instagram messages and private
    replies to a comment, with an Instagram User access token."""
    if not _meta_path_ok(values, "node_id", _GRAPH_NODE):
        return _meta_unknown_path(request)
    if not _meta_token_ok(apis, request, "instagram_access_token"):
        return _graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
    body = _json_or_form(request)
    if body is None:
        return _graph_invalid("The request body must be a JSON object")
    return _page_message(apis, "instagram", values["node_id"], body)


def meta_comment_reply(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """graph.facebook.com ``POST /<version>/<comment or post id>/comments`` (``message``,
    ``attachment_url``): the Page's public reply; 200 ``{"id"}``."""
    if not _meta_path_ok(values, "object_id", _GRAPH_OBJECT):
        return _meta_unknown_path(request)
    if not _meta_token_ok(apis, request, "access_token"):
        return _graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
    params = _json_or_form(request)
    if params is None:
        return _graph_invalid("The request body must be a JSON object")
    message, attachment = params.get("message"), params.get("attachment_url")
    if not (isinstance(message, str) and message.strip()) and not attachment:
        return _graph_invalid("Comment must have a message or an attachment")
    if attachment is not None and not (isinstance(attachment, str) and attachment.startswith(("http://", "https://"))):
        return _graph_invalid("Param attachment_url must be a valid URL")
    object_id = values["object_id"]
    comment_id = f"{object_id.rsplit('_', 1)[-1]}_{_graph_digits(15)}"
    apis.record(
        SentMessage(
            "meta",
            to=object_id,
            text=message if isinstance(message, str) else "",
            message_id=comment_id,
            details={"product": "facebook_comment", "object_id": object_id, "attachment_url": attachment},
        )
    )
    return json_response({"id": comment_id})


def instagram_comment_reply(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """graph.instagram.com ``POST /<version>/<ig comment id>/replies`` (``message``): a public
    reply under the comment; 200 ``{"id"}``."""
    if not _meta_path_ok(values, "comment_id", _GRAPH_NODE):
        return _meta_unknown_path(request)
    if not _meta_token_ok(apis, request, "instagram_access_token"):
        return _graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
    params = _json_or_form(request)
    message = params.get("message") if params is not None else None
    if not isinstance(message, str) or not message.strip():
        return _graph_invalid("The parameter message is required")
    if len(message) > 2200:
        return _graph_invalid("Param message must be at most 2200 characters long")
    reply_id = _graph_digits(17)
    apis.record(
        SentMessage(
            "meta",
            to=values["comment_id"],
            text=message,
            message_id=reply_id,
            details={"product": "instagram_comment", "comment_id": values["comment_id"]},
        )
    )
    return json_response({"id": reply_id})


def _whatsapp_message(apis: ProviderApis, phone_number_id: str, body: dict[str, Any]) -> Response:
    def invalid(details: str) -> Response:
        return _graph_error(
            400, 100, "(#100) Invalid parameter", error_data={"messaging_product": "whatsapp", "details": details}
        )

    if body.get("messaging_product") != "whatsapp":
        return invalid("The parameter messaging_product must be 'whatsapp'")
    to = body.get("to")
    if not isinstance(to, str) or not to.lstrip("+").isdigit():
        return invalid("The parameter to is required")
    kind = body.get("type", "text")
    callback = body.get("biz_opaque_callback_data")
    if callback is not None and not (isinstance(callback, str) and len(callback.encode()) <= 512):
        return invalid("Param biz_opaque_callback_data must be a string of at most 512 bytes")
    content = body.get(kind) if isinstance(kind, str) else None
    if not isinstance(content, dict):
        return invalid(f"The parameter {kind} is required")
    # Only what a status webhook needs beyond a text message's {"product", "from"} (kept that small).
    details: dict[str, Any] = {"product": "whatsapp", "from": phone_number_id}
    if kind != "text":
        details["type"] = kind
    if kind == "text":
        text = content.get("body")
        if not isinstance(text, str) or not text.strip():
            return invalid("The parameter text['body'] is required")
        if len(text) > 4096:
            return invalid("Param text['body'] must be at most 4096 characters long")
    elif kind == "template":
        name, language = content.get("name"), (content.get("language") or {})
        if not isinstance(name, str) or not name or not isinstance(language, dict) or not language.get("code"):
            return invalid("The parameters template['name'] and template['language']['code'] are required")
        text = f"[template {name} {language['code']}]"
        details["template"] = content
    elif kind in _WHATSAPP_MEDIA:
        link = content.get("link")
        if not isinstance(link, str) or not link.startswith(("http://", "https://")):
            return invalid(f"Param {kind}['link'] must be a valid URL")
        if kind == "audio" and "caption" in content:
            return invalid("Param audio['caption'] is not supported for audio messages")
        caption = content.get("caption")
        text = caption if isinstance(caption, str) else ""
        details["media"] = content
    else:
        return invalid(f"The sandbox does not accept messages of type {kind!r}")
    wamid = "wamid." + base64.b64encode(secrets.token_bytes(30)).decode()
    if callback is not None:
        details["biz_opaque_callback_data"] = callback
    apis.record(SentMessage("meta", to=to, text=text, message_id=wamid, details=details))
    return json_response(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
            "messages": [{"id": wamid}],
        }
    )


def _page_message(apis: ProviderApis, platform: str, account_id: str, body: dict[str, Any]) -> Response:
    """A Send API body for Messenger (``platform`` messenger) or Instagram: to a user id, or a
    private reply to a comment (or, on Messenger, a visitor's post)."""
    recipient = body.get("recipient")
    if isinstance(recipient, str):  # form-encoded bodies carry JSON-encoded objects
        try:
            recipient = json.loads(recipient)
        except ValueError:
            recipient = None
    recipient = recipient if isinstance(recipient, dict) else {}
    user_id, comment_id, post_id = recipient.get("id"), recipient.get("comment_id"), recipient.get("post_id")
    private_reply = comment_id is not None or (platform == "messenger" and post_id is not None)
    if private_reply:
        target = comment_id if comment_id is not None else post_id
        if not isinstance(target, str) or not _GRAPH_OBJECT.match(target):
            return _graph_invalid("The parameter recipient['comment_id'] is invalid")
    elif not isinstance(user_id, str) or not user_id.isdigit():
        return _graph_invalid("The parameter recipient is required")
    messaging_type = body.get("messaging_type")
    if not private_reply:
        if messaging_type not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
            return _graph_invalid("Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
        if messaging_type == "MESSAGE_TAG" and body.get("tag") not in _MESSENGER_TAGS:
            return _graph_invalid("Param tag must be a valid message tag when messaging_type is MESSAGE_TAG")
    message = body.get("message")
    message = message if isinstance(message, dict) else {}
    text, attachment = message.get("text"), message.get("attachment")
    if text is not None and attachment is not None:
        return _graph_invalid("Only one of text or attachment can be specified in param message")
    if attachment is not None:
        if private_reply:
            return _graph_invalid("A private reply can only contain text")
        url = attachment.get("payload", {}).get("url") if isinstance(attachment, dict) else None
        kinds = ("image", "video", "audio", "file") if platform == "messenger" else ("image", "video", "audio")
        if not (isinstance(attachment, dict) and attachment.get("type") in kinds) or not (
            isinstance(url, str) and url.startswith(("http://", "https://"))
        ):
            return _graph_invalid("Param message[attachment] must have a valid type and payload[url]")
        shown = ""
    else:
        if not isinstance(text, str) or not text.strip():
            return _graph_invalid("Must send either message or sender_action")
        # Messenger counts characters; Instagram 1000 bytes of UTF-8.
        too_long = len(text) > 2000 if platform == "messenger" else len(text.encode("utf-8")) > 1000
        if too_long:
            limit = "2000" if platform == "messenger" else "1000 bytes"
            return _graph_invalid(f"Length of param message[text] must be less than or equal to {limit}")
        shown = text
    metadata = message.get("metadata")
    if metadata is not None and not (isinstance(metadata, str) and len(metadata) <= 1000):
        return _graph_invalid("Param message[metadata] must be a string of at most 1000 characters")
    mid = _meta_mid() if platform == "messenger" else "aWdfZAG1faXRlbToxOklHTWVzc2FnZA" + secrets.token_urlsafe(40)
    # A private reply goes to the commenter, whose page-scoped id Meta resolves and returns.
    to = _graph_digits(16) if private_reply else str(user_id)
    product = f"{platform}_private_reply" if private_reply else platform
    details = {
        "product": product,
        "from": account_id,
        "metadata": metadata,
        "messaging_type": messaging_type,
        "tag": body.get("tag"),
        "comment_id": comment_id,
        "post_id": post_id,
        "attachment": attachment,
    }
    apis.record(SentMessage("meta", to=to, text=shown, message_id=mid, details=details))
    return json_response({"recipient_id": to, "message_id": mid})


# ------------------------------------------------------------ social answers: x, discord
def _x_problem(status: int, title: str, detail: str, kind: str = "about:blank", **extra: Any) -> Response:
    """X API v2 errors: RFC 7807 problem details."""
    return Response(
        json.dumps({"title": title, "type": kind, "status": status, "detail": detail, **extra}),
        status=status,
        content_type="application/problem+json",
    )


def _x_invalid(message: str, parameter: str, value: Any) -> Response:
    return _x_problem(
        400,
        "Invalid Request",
        "One or more parameters to your request was invalid.",
        "https://api.x.com/2/problems/invalid-request",
        errors=[{"parameters": {parameter: [str(value)]}, "message": message}],
    )


def _x_body(apis: ProviderApis, request: Request) -> dict[str, Any] | Response:
    """The JSON body of an X call made with an accepted user-context token, or X's refusal."""
    token = _bearer(request)
    if token is None or not any(c.get("access_token") == token for c in apis.accepted("x")):
        return _x_problem(401, "Unauthorized", "Unauthorized")
    try:
        body = json.loads(request.get_data() or b"")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _x_invalid("The request body must be a JSON object", "body", request.get_data(as_text=True)[:40])
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return _x_invalid("text must be a non-empty string", "text", text)
    return body


def _x_snowflake() -> str:
    # X ids are snowflakes: milliseconds since X's epoch (2010-11-04) in the high bits.
    return str(((int(time.time() * 1000) - 1288834974657) << 22) | secrets.randbits(22))


def x_create_post(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``POST /2/tweets`` with ``text`` and ``reply.in_reply_to_tweet_id``: 201 ``{"data": {"id", "text"}}``."""
    from switchboard_core.outbound.x import MAX_TWEET_WEIGHT, tweet_weight

    body = _x_body(apis, request)
    if isinstance(body, Response):
        return body
    text = body["text"]
    reply = body.get("reply")
    in_reply_to = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
    if reply is not None and not (isinstance(in_reply_to, str) and re.fullmatch(r"\d{1,19}", in_reply_to)):
        return _x_invalid("reply.in_reply_to_tweet_id must be a post id", "reply.in_reply_to_tweet_id", in_reply_to)
    if tweet_weight(text) > MAX_TWEET_WEIGHT:
        return _x_problem(
            403,
            "Forbidden",
            "Your Tweet text is too long. For more information on how X determines text length, "
            "see https://github.com/twitter/twitter-text.",
        )
    with apis._lock:
        earlier = list(apis.messages)
    if any(
        m.provider == "x" and m.text == text and m.details.get("in_reply_to_tweet_id") == in_reply_to for m in earlier
    ):
        return _x_problem(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.")
    post_id = _x_snowflake()
    apis.record(
        SentMessage(
            "x",
            to=in_reply_to or "",
            text=text,
            message_id=post_id,
            details={"kind": "reply" if in_reply_to else "post", "in_reply_to_tweet_id": in_reply_to},
        )
    )
    return json_response({"data": {"id": post_id, "text": text, "edit_history_tweet_ids": [post_id]}}, status=201)


def x_send_dm(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``POST /2/dm_conversations/with/{participant_id}/messages`` with ``text``: 201
    ``{"data": {"dm_conversation_id", "dm_event_id"}}``."""
    from infra.local.samples.x import ACCOUNT

    body = _x_body(apis, request)
    if isinstance(body, Response):
        return body
    participant = values["participant_id"]
    if not re.fullmatch(r"\d{1,19}", participant):
        return _x_invalid("participant_id must be a user id", "participant_id", participant)
    if len(body["text"]) > 10_000:
        return _x_invalid("text must be at most 10000 characters", "text", body["text"][:20])
    event_id = _x_snowflake()
    conversation = "-".join(sorted((str(ACCOUNT["id_str"]), participant), key=int))
    apis.record(
        SentMessage(
            "x",
            to=participant,
            text=body["text"],
            message_id=event_id,
            details={"kind": "dm", "dm_conversation_id": conversation},
        )
    )
    return json_response({"data": {"dm_conversation_id": conversation, "dm_event_id": event_id}}, status=201)


def _discord_snowflake() -> str:
    # Discord ids are snowflakes: milliseconds since Discord's epoch (2015-01-01) in the high bits.
    return str(((int(time.time() * 1000) - 1420070400000) << 22) | secrets.randbits(22))


def _discord_error(status: int, code: int, message: str, **extra: Any) -> Response:
    return json_response({"message": message, "code": code, **extra}, status=status)


def discord_followup(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``POST /api/v10/webhooks/{application_id}/{interaction_token}[?wait=true]``: an
    interaction follow-up. 200 with the message object when ``wait=true``, else 204. A repeated
    ``nonce`` with ``enforce_nonce`` gives back the message already created (nothing is sent)."""
    application_id, token = values["application_id"], values["token"]
    if not any(c.get("application_id") == application_id for c in apis.accepted("discord")):
        return _discord_error(404, 10015, "Unknown Webhook")
    if not token.startswith("aW50ZXJhY3Rpb246"):  # base64 "interaction:": Discord's interaction tokens
        return _discord_error(401, 50027, "Invalid Webhook Token")
    try:
        body = json.loads(request.get_data() or b"")
    except ValueError:
        return _discord_error(400, 50109, "The request body contains invalid JSON.")
    if not isinstance(body, dict):
        return _discord_error(400, 50109, "The request body contains invalid JSON.")
    content = body.get("content")
    if content in (None, "") and not body.get("embeds"):
        return _discord_error(400, 50006, "Cannot send an empty message")
    if not isinstance(content, str) or len(content) > 2000:
        problem = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}
        return _discord_error(400, 50035, "Invalid Form Body", errors={"content": problem})
    nonce = body.get("nonce")
    if nonce is not None and not (isinstance(nonce, str) and len(nonce) <= 25):
        problem = {"_errors": [{"code": "BASE_TYPE_BAD_LENGTH", "message": "Must be between 1 and 25 in length."}]}
        return _discord_error(400, 50035, "Invalid Form Body", errors={"nonce": problem})
    with apis._lock:
        earlier = list(apis.messages)
    repeat = (
        next(
            (
                m
                for m in earlier
                if m.provider == "discord"
                and m.details.get("application_id") == application_id
                and m.details.get("nonce") == nonce
            ),
            None,
        )
        if nonce is not None and body.get("enforce_nonce") is True
        else None
    )
    if repeat is None:
        message_id = _discord_snowflake()
        apis.record(
            SentMessage(
                "discord",
                to="interaction:" + hashlib.sha256(token.encode()).hexdigest()[:16],
                text=content,
                message_id=message_id,
                details={"application_id": application_id, "nonce": nonce, "flags": body.get("flags")},
            )
        )
    else:
        message_id, content = repeat.message_id, repeat.text
    if request.args.get("wait") != "true":
        return Response(status=204)
    return json_response(
        {
            "id": message_id,
            "type": 0,
            "content": content,
            "channel_id": _discord_snowflake(),
            "author": {"id": application_id, "username": "Switchboard", "bot": True, "discriminator": "0000"},
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime()),
            "webhook_id": application_id,
            "application_id": application_id,
            "nonce": nonce,
            "flags": body.get("flags") or 0,
            "mentions": [],
            "attachments": [],
            "embeds": [],
        }
    )


# ------------------------------------------------------------ telegram files (social answers)
def _telegram_call(apis: ProviderApis, request: Request, values: dict[str, str]) -> dict[str, Any] | Response:
    """The parameters of a Bot API call made with an accepted token, or Telegram's refusal."""
    token = values["token"]
    if not _TELEGRAM_TOKEN.match(token):
        return _telegram_error(404, "Not Found")
    if not any(c.get("bot_token") == token for c in apis.accepted("telegram")):
        return _telegram_error(401, "Unauthorized")
    params = _json_or_form(request)
    if params is None:
        return _telegram_error(400, "Bad Request: can't parse JSON")
    if params.get("chat_id") in (None, ""):
        return _telegram_error(400, "Bad Request: chat_id is empty")
    caption = params.get("caption")
    if caption is not None and (not isinstance(caption, str) or len(caption) > 1024):
        return _telegram_error(400, "Bad Request: message caption is too long")
    return params


def _telegram_file_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _telegram_sent_files(
    apis: ProviderApis, token: str, params: dict[str, Any], method: str, files: list[str], caption: str
) -> list[dict[str, Any]]:
    """Telegram's Message objects for the files sent (one each), recorded as one answer."""
    reply = params.get("reply_parameters")
    first_id = 1 + secrets.randbelow(2**31 - 11)
    bot = {"id": int(token.split(":", 1)[0]), "is_bot": True, "first_name": "Switchboard"}
    chat_id = params["chat_id"]
    apis.record(
        SentMessage(
            "telegram",
            to=str(chat_id),
            text=caption,
            message_id=str(first_id),
            details={
                "method": method,
                "files": files,
                "reply_to_message_id": reply.get("message_id") if isinstance(reply, dict) else None,
                "message_thread_id": params.get("message_thread_id"),
                "business_connection_id": params.get("business_connection_id"),
            },
        )
    )
    group = secrets.token_hex(8) if len(files) > 1 else None
    messages = []
    for index, _ in enumerate(files):
        message: dict[str, Any] = {
            "message_id": first_id + index,
            "from": bot,
            "chat": {"id": chat_id, "type": "private" if not str(chat_id).startswith("-") else "supergroup"},
            "date": int(time.time()),
        }
        if group:
            message["media_group_id"] = group
        if caption and index == 0:
            message["caption"] = caption
        messages.append(message)
    return messages


def telegram_send_file(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``sendPhoto`` / ``sendDocument`` with the file as an HTTP URL (Telegram downloads it)."""
    params = _telegram_call(apis, request, values)
    if isinstance(params, Response):
        return params
    method = request.path.rsplit("/", 1)[-1]
    field_name = "photo" if method == "sendPhoto" else "document"
    if not _telegram_file_url(params.get(field_name)):
        return _telegram_error(400, f"Bad Request: there is no {field_name} in the request")
    [message] = _telegram_sent_files(
        apis, values["token"], params, method, [params[field_name]], params.get("caption") or ""
    )
    message[field_name] = (
        [{"file_id": "AgAC" + secrets.token_urlsafe(40), "width": 800, "height": 600}]
        if field_name == "photo"
        else {"file_id": "BQAC" + secrets.token_urlsafe(40), "file_name": params[field_name].rsplit("/", 1)[-1]}
    )
    return json_response({"ok": True, "result": message})


def telegram_send_media_group(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``sendMediaGroup``: 2-10 InputMedia items, photos and documents not mixed."""
    params = _telegram_call(apis, request, values)
    if isinstance(params, Response):
        return params
    media = params.get("media")
    if isinstance(media, str):
        try:
            media = json.loads(media)
        except ValueError:
            return _telegram_error(400, "Bad Request: can't parse media JSON object")
    if not isinstance(media, list) or not 2 <= len(media) <= 10:
        return _telegram_error(400, "Bad Request: wrong number of media specified")
    kinds = {item.get("type") for item in media if isinstance(item, dict)}
    if not all(isinstance(item, dict) and _telegram_file_url(item.get("media")) for item in media):
        return _telegram_error(400, "Bad Request: wrong HTTP URL specified")
    if "document" in kinds and kinds != {"document"}:
        return _telegram_error(400, "Bad Request: document can't be mixed with other media types")
    caption = media[0].get("caption") or ""
    if not isinstance(caption, str) or len(caption) > 1024:
        return _telegram_error(400, "Bad Request: message caption is too long")
    messages = _telegram_sent_files(
        apis, values["token"], params, "sendMediaGroup", [item["media"] for item in media], caption
    )
    return json_response({"ok": True, "result": messages})


# ----------------------------------------------------------------- plivo, bandwidth
# The SMS/MMS send APIs of Plivo and Bandwidth (switchboard_core.outbound.plivo / .bandwidth).
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def _basic(request: Request) -> tuple[str, str] | None:
    auth = request.authorization
    if auth is None or auth.type != "basic" or auth.username is None or auth.password is None:
        return None
    return auth.username, auth.password


def _plivo_error(status: int, error: str) -> Response:
    return json_response({"api_id": str(uuid.uuid4()), "error": error}, status=status)


def plivo_messages(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``POST /v1/Account/{auth_id}/Message/`` (JSON ``src``, ``dst``, ``text``, ``type`` sms|mms,
    ``media_urls``, ``url`` + ``method`` for status callbacks): 202 ``{"api_id", "message",
    "message_uuid": [...]}``; errors ``{"api_id", "error"}``."""
    credentials = _basic(request)
    if credentials is None or not any(
        c["auth_id"] == credentials[0] == values["auth_id"] and c["auth_token"] == credentials[1]
        for c in apis.accepted("plivo")
    ):
        return _plivo_error(401, "authentication failed")
    body = _json_or_form(request)
    if body is None:
        return _plivo_error(400, "invalid JSON body")
    src, dst, text, kind = body.get("src"), body.get("dst"), body.get("text"), body.get("type", "sms")
    media = body.get("media_urls", [])
    if not isinstance(src, str) or not src:
        return _plivo_error(400, "src parameter is required")
    if not isinstance(dst, str) or not re.fullmatch(r"\+?[0-9]{6,15}", dst):
        return _plivo_error(400, "dst parameter is required and must be a phone number")
    if kind not in ("sms", "mms"):
        return _plivo_error(400, "type must be sms or mms")
    if not isinstance(media, list) or len(media) > 10 or not all(isinstance(url, str) for url in media):
        return _plivo_error(400, "media_urls must be a list of at most 10 URLs")
    if media and kind != "mms":
        return _plivo_error(400, "media_urls are allowed only when type is mms")
    if not (isinstance(text, str) and text) and not media:
        return _plivo_error(400, "text parameter is required")
    callback = body.get("url")
    if callback is not None and body.get("method", "POST") not in ("GET", "POST"):
        return _plivo_error(400, "method must be GET or POST")
    message_uuid = str(uuid.uuid4())
    apis.record(
        SentMessage(
            "plivo",
            to=dst,
            text=str(text or ""),
            message_id=message_uuid,
            details={"from": src, "type": kind, "media": media, "url": callback, "auth_id": values["auth_id"]},
        )
    )
    return json_response(
        {"api_id": str(uuid.uuid4()), "message": "message(s) queued", "message_uuid": [message_uuid]}, status=202
    )


def _bandwidth_error(status: int, type_: str, description: str, **extra: Any) -> Response:
    return json_response({"type": type_, "description": description, **extra}, status=status)


def bandwidth_messages(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``POST /api/v2/users/{accountId}/messages`` (JSON ``applicationId``, ``to`` [...], ``from``,
    ``text``, ``media``, ``tag``): 202 with the message; errors ``{"type", "description",
    "fieldErrors"?}`` as Bandwidth documents them."""
    credentials = _basic(request)
    accepted = [
        c
        for c in apis.accepted("bandwidth")
        if credentials is not None and (c["username"], c["password"]) == credentials
    ]
    if not accepted:
        return _bandwidth_error(401, "unauthorized", "Authentication Failed")
    account = next((c for c in accepted if c["account_id"] == values["account_id"]), None)
    if account is None:
        return _bandwidth_error(403, "forbidden", "Access Denied")
    if request.mimetype != "application/json":
        return _bandwidth_error(
            415,
            "unsupported-content-type",
            f"Content type '{request.content_type}' not supported. Please use 'application/json'",
        )
    body = _json_or_form(request)
    if body is None:
        return _bandwidth_error(400, "request-validation", "Your request could not be accepted")
    problems: list[dict[str, str]] = []
    to, sender = body.get("to"), body.get("from")
    text, media, tag = body.get("text"), body.get("media", []), body.get("tag")
    if not isinstance(to, list) or not to or not all(isinstance(n, str) and _E164.match(n) for n in to):
        problems.append({"fieldName": "to", "description": "must be a list of E164 formatted telephone numbers"})
    elif len(to) > 9:
        problems.append({"fieldName": "to", "description": "a group message has at most 10 participants"})
    if not isinstance(sender, str) or not _E164.match(sender):
        problems.append({"fieldName": "from", "description": f"'{sender}' must be a valid E164 telephone number"})
    if body.get("applicationId") != account["application_id"]:
        problems.append({"fieldName": "applicationId", "description": "is not an application of this account"})
    if not isinstance(media, list) or not all(isinstance(url, str) for url in media):
        problems.append({"fieldName": "media", "description": "must be a list of URLs"})
    if not (isinstance(text, str) and text) and not media:
        problems.append({"fieldName": "text", "description": "text or media is required"})
    if tag is not None and (not isinstance(tag, str) or len(tag) > 1024):
        problems.append({"fieldName": "tag", "description": "must be a string of at most 1024 characters"})
    if problems:
        return _bandwidth_error(400, "request-validation", "Your request could not be accepted", fieldErrors=problems)
    assert isinstance(to, list) and isinstance(sender, str)
    message_id = f"{int(time.time() * 1000)}{secrets.token_hex(8)[:15]}"
    apis.record(
        SentMessage(
            "bandwidth",
            to=",".join(to),
            text=str(text or ""),
            message_id=message_id,
            details={"from": sender, "to": to, "media": media, "tag": tag, "application_id": account["application_id"]},
        )
    )
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return json_response(
        {
            "id": message_id,
            "owner": sender,
            "applicationId": account["application_id"],
            "time": now,
            "segmentCount": 1,
            "direction": "out",
            "to": to,
            "from": sender,
            "text": text or "",
            "media": media,
            "tag": tag,
            "priority": "default",
        },
        status=202,
    )


# ---------------------------------------------------------------- support tools
# Zendesk and Freshdesk live on the account's own host ({subdomain}.zendesk.com,
# {domain}.freshdesk.com): in the sandbox the subdomain is the first path segment after the
# provider (the senders put it there whenever the base URL is not the provider's own).
def _zendesk_error(status: int, error: str, description: str | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"error": error}
    if description is not None:
        body["description"] = description
    return json_response({**body, **extra}, status=status)


def zendesk_update_ticket(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``PUT /api/v2/tickets/{id}.json`` with ``{"ticket": {"comment": {"body", "public", "author_id"?}}}``:
    200 ``{"ticket", "audit": {"events": [{"type": "Comment", "id"}]}}``; Basic ``{email}/token:{api_token}``."""
    auth = request.authorization
    subdomain = values["subdomain"]
    if not (
        auth is not None
        and auth.type == "basic"
        and (auth.username or "").endswith("/token")
        and any(
            c.get("subdomain") == subdomain
            and f"{c.get('email')}/token" == auth.username
            and c.get("api_token") == auth.password
            for c in apis.accepted("zendesk")
        )
    ):
        return _zendesk_error(401, "Couldn't authenticate you")
    ticket_id = values["ticket_id"]
    if not re.fullmatch(r"[1-9][0-9]{0,19}", ticket_id):
        return _zendesk_error(404, "RecordNotFound", "Not found")
    payload = _json_or_form(request)
    ticket = payload.get("ticket") if isinstance(payload, dict) else None
    comment = ticket.get("comment") if isinstance(ticket, dict) else None
    body = comment.get("body") if isinstance(comment, dict) else None
    if not isinstance(comment, dict) or not isinstance(body, str) or not body.strip():
        return _zendesk_error(
            422,
            "RecordInvalid",
            "Record validation errors",
            details={"base": [{"description": "Comment: cannot be blank", "error": "BlankValue"}]},
        )
    public = comment.get("public", True)
    if not isinstance(public, bool):
        return _zendesk_error(400, "InvalidValue", "public must be true or false")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    author = comment.get("author_id") or 1 + secrets.randbelow(10**11)
    comment_id = 10**10 + secrets.randbelow(9 * 10**10)
    audit_id = comment_id - 1
    metadata = ticket.get("metadata") if isinstance(ticket, dict) else None
    apis.record(
        SentMessage(
            "zendesk",
            to=ticket_id,
            text=body,
            message_id=str(comment_id),
            details={"subdomain": subdomain, "ticket_id": ticket_id, "public": public, "author_id": str(author)},
        )
    )
    return json_response(
        {
            "ticket": {"id": int(ticket_id), "status": "open", "updated_at": now, "url": request.url},
            "audit": {
                "id": audit_id,
                "ticket_id": int(ticket_id),
                "created_at": now,
                "author_id": author,
                "metadata": {"custom": metadata if isinstance(metadata, dict) else {}, "system": {}},
                "events": [
                    {
                        "id": comment_id,
                        "type": "Comment",
                        "author_id": author,
                        "body": body,
                        "public": public,
                        "attachments": [],
                        "audit_id": audit_id,
                    }
                ],
            },
        }
    )


zendesk_update_ticket.methods = ("PUT",)  # type: ignore[attr-defined]


def _intercom_error(status: int, code: str, message: str) -> Response:
    return json_response(
        {"type": "error.list", "request_id": secrets.token_hex(10), "errors": [{"code": code, "message": message}]},
        status=status,
    )


def intercom_reply(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``POST /conversations/{id}/reply`` ``{"message_type": "comment"|"note", "type": "admin",
    "admin_id", "body"}`` with a Bearer access token: 200 the Conversation with the new part."""
    token = _bearer(request)
    if token is None:
        return _intercom_error(401, "token_not_found", "Access Token Not Found")
    accepted = [c for c in apis.accepted("intercom") if c.get("access_token") == token]
    if not accepted:
        return _intercom_error(401, "unauthorized", "Access Token Invalid")
    conversation_id = values["conversation_id"]
    if not conversation_id.isdigit():
        return _intercom_error(404, "not_found", "Resource Not Found")
    body = _json_or_form(request)
    if body is None:
        return _intercom_error(400, "parameter_invalid", "Request body is not valid JSON")
    message_type, text, admin_id = body.get("message_type"), body.get("body"), body.get("admin_id")
    if body.get("type") != "admin" or message_type not in ("comment", "note"):
        return _intercom_error(400, "parameter_invalid", "type must be admin and message_type comment or note")
    if not isinstance(text, str) or not text.strip():
        return _intercom_error(400, "parameter_not_found", "Body is required")
    if not any(str(admin_id) == c.get("admin_id") for c in accepted):
        return _intercom_error(404, "admin_not_found", "Admin Not Found")
    urls = body.get("attachment_urls") or []
    if not isinstance(urls, list) or len(urls) > 10:
        return _intercom_error(400, "parameter_invalid", "attachment_urls must be a list of at most 10 URLs")
    now = int(time.time())
    part_id = str(10**9 + secrets.randbelow(9 * 10**9))
    apis.record(
        SentMessage(
            "intercom",
            to=conversation_id,
            text=text,
            message_id=part_id,
            details={"conversation_id": conversation_id, "message_type": message_type, "admin_id": str(admin_id)},
        )
    )
    part = {
        "type": "conversation_part",
        "id": part_id,
        "part_type": message_type,
        "body": text,
        "created_at": now,
        "updated_at": now,
        "notified_at": now,
        "assigned_to": None,
        "author": {"type": "admin", "id": str(admin_id), "name": "Support", "email": "support@example.com"},
        "attachments": [{"type": "upload", "url": url} for url in urls],
        "external_id": None,
        "redacted": False,
    }
    return json_response(
        {
            "type": "conversation",
            "id": conversation_id,
            "created_at": now - 60,
            "updated_at": now,
            "open": True,
            "state": "open",
            "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [part], "total_count": 1},
        }
    )


def _freshdesk_conversation(apis: ProviderApis, request: Request, values: dict[str, str], note: bool) -> Response:
    auth = request.authorization  # Basic: the API key as user name, any password
    domain = values["domain"]
    if not (
        auth is not None
        and auth.type == "basic"
        and any(c.get("domain") == domain and c.get("api_key") == auth.username for c in apis.accepted("freshdesk"))
    ):
        return json_response(
            {"code": "invalid_credentials", "message": "You have to be logged in to perform this action."}, 401
        )
    ticket_id = values["ticket_id"]
    if not re.fullmatch(r"[1-9][0-9]{0,19}", ticket_id):
        return Response(b"", status=404)
    payload = _json_or_form(request) or {}
    body = payload.get("body")
    if not isinstance(body, str) or not body.strip():
        return json_response(
            {
                "description": "Validation failed",
                "errors": [{"field": "body", "message": "Mandatory attribute missing", "code": "missing_field"}],
            },
            400,
        )
    if note and not isinstance(payload.get("private", True), bool):
        return json_response(
            {
                "description": "Validation failed",
                "errors": [
                    {
                        "field": "private",
                        "message": "Value set is of type String.It should be a/an Boolean",
                        "code": "datatype_mismatch",
                    }
                ],
            },
            400,
        )
    conversation_id = 10**10 + secrets.randbelow(9 * 10**10)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    private = bool(note and payload.get("private", True))
    apis.record(
        SentMessage(
            "freshdesk",
            to=ticket_id,
            text=body,
            message_id=str(conversation_id),
            details={"domain": domain, "ticket_id": ticket_id, "kind": "note" if note else "reply", "private": private},
        )
    )
    conversation: dict[str, Any] = {
        "id": conversation_id,
        "body": body,
        "body_text": re.sub(r"<[^>]+>", " ", body).strip(),
        "ticket_id": int(ticket_id),
        "user_id": payload.get("user_id") or 1 + secrets.randbelow(10**10),
        "attachments": [],
        "created_at": now,
        "updated_at": now,
    }
    if note:
        conversation.update({"incoming": False, "private": private, "notified_to": []})
    else:
        conversation.update({"from_email": f"support@{domain}.freshdesk.com", "cc_emails": [], "bcc_emails": []})
    return json_response(conversation, status=201)


def freshdesk_reply(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``POST /api/v2/tickets/{id}/reply`` ``{"body", "user_id"?}``: 201 the reply."""
    return _freshdesk_conversation(apis, request, values, note=False)


def freshdesk_note(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``POST /api/v2/tickets/{id}/notes`` ``{"body", "private"?, "user_id"?}``: 201 the note."""
    return _freshdesk_conversation(apis, request, values, note=True)


def _hubspot_error(status: int, category: str, message: str) -> Response:
    return json_response(
        {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category}, status
    )


def hubspot_thread_message(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``POST /conversations/v3/conversations/threads/{threadId}/messages``: ``MESSAGE`` (text,
    senderActorId, channelId, channelAccountId) or ``COMMENT`` (text); Bearer private app token."""
    token = _bearer(request)
    accepted = [c for c in apis.accepted("hubspot") if token is not None and c.get("access_token") == token]
    if not accepted:
        return _hubspot_error(
            401, "INVALID_AUTHENTICATION", "Authentication credentials not found or invalid for this request."
        )
    thread_id = values["thread_id"]
    if not thread_id.isdigit():
        return _hubspot_error(404, "OBJECT_NOT_FOUND", f"Thread {thread_id} not found")
    body = _json_or_form(request) or {}
    kind, text = body.get("type"), body.get("text")
    if kind not in ("MESSAGE", "COMMENT"):
        return _hubspot_error(400, "VALIDATION_ERROR", "type must be MESSAGE or COMMENT")
    if not isinstance(text, str) or not text.strip():
        return _hubspot_error(400, "VALIDATION_ERROR", "text is required")
    sender, channel, account = body.get("senderActorId"), body.get("channelId"), body.get("channelAccountId")
    if kind == "MESSAGE":
        if not (isinstance(channel, str) and channel and isinstance(account, str) and account):
            return _hubspot_error(400, "VALIDATION_ERROR", "channelId and channelAccountId are required for a MESSAGE")
        if not any(c.get("sender_actor_id") == sender for c in accepted):
            return _hubspot_error(400, "VALIDATION_ERROR", f"senderActorId {sender} is not an agent of this account")
    message_id = secrets.token_hex(16)
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    sent = SentMessage(
        "hubspot",
        to=thread_id,
        text=text,
        message_id=message_id,
        details={
            "thread_id": thread_id,
            "type": kind,
            "channel_id": channel,
            "channel_account_id": account,
            "sender_actor_id": sender or "A-1",
            "rich_text": body.get("richText") or text,
            "created_at": now,
        },
    )
    apis.record(sent)
    return json_response(_hubspot_sent_message(sent), status=201)


def _hubspot_sent_message(sent: SentMessage) -> dict[str, Any]:
    """The Message HubSpot returns for one the hub posted (when posting it, and when fetched later)."""
    details = sent.details
    return {
        "type": details["type"],
        "id": sent.message_id,
        "conversationsThreadId": details["thread_id"],
        "createdAt": details["created_at"],
        "updatedAt": details["created_at"],
        "createdBy": details["sender_actor_id"],
        "client": {"clientType": "INTEGRATION", "integrationAppId": 1},
        "senders": [{"actorId": details["sender_actor_id"]}],
        "recipients": [],
        "archived": False,
        "text": sent.text,
        "richText": details["rich_text"],
        "attachments": [],
        "truncationStatus": "NOT_TRUNCATED",
        "direction": "OUTGOING",
        "channelId": details["channel_id"],
        "channelAccountId": details["channel_account_id"],
        "status": {"statusType": "SENT"},
    }


def hubspot_get_thread_message(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``GET /conversations/v3/conversations/threads/{threadId}/messages/{messageId}``: the Message
    (a customer's registered with `add_hubspot_message`, or one the hub posted); Bearer token."""
    token = _bearer(request)
    if token is None or not any(c.get("access_token") == token for c in apis.accepted("hubspot")):
        return _hubspot_error(
            401, "INVALID_AUTHENTICATION", "Authentication credentials not found or invalid for this request."
        )
    thread_id, message_id = values["thread_id"], values["message_id"]
    known = apis.hubspot_message(thread_id, message_id)
    if known is not None:
        return json_response(known)
    sent = apis.sent(message_id)
    if sent is not None and sent.provider == "hubspot" and sent.details.get("thread_id") == thread_id:
        return json_response(_hubspot_sent_message(sent))
    return _hubspot_error(404, "OBJECT_NOT_FOUND", f"Message {message_id} not found in thread {thread_id}")


hubspot_get_thread_message.methods = ("GET",)  # type: ignore[attr-defined]


def hubspot_inbound_message(
    thread_id: str,
    text: str,
    *,
    message_id: str | None = None,
    contact_id: str | None = None,
    email: str | None = None,
    name: str | None = None,
    channel_id: str = "1000",
    channel_account_id: str = "100000001",
) -> dict[str, Any]:
    """A customer's live-chat message in a thread, shaped like the Conversations API's Message
    (``direction: INCOMING``, the visitor ``V-<contact id>`` as sender), for `add_hubspot_message`."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    sender: dict[str, Any] = {"actorId": f"V-{contact_id or 1 + secrets.randbelow(10**9)}"}
    if name:
        sender["name"] = name
    if email:
        sender["deliveryIdentifier"] = {"type": "HS_EMAIL_ADDRESS", "value": email}
    return {
        "type": "MESSAGE",
        "id": message_id or secrets.token_hex(16),
        "conversationsThreadId": thread_id,
        "createdAt": now,
        "updatedAt": now,
        "createdBy": sender["actorId"],
        "client": {"clientType": "HUBSPOT"},
        "senders": [sender],
        "recipients": [],
        "archived": False,
        "text": text,
        "richText": f"<p>{html.escape(text)}</p>",
        "attachments": [],
        "truncationStatus": "NOT_TRUNCATED",
        "direction": "INCOMING",
        "channelId": channel_id,
        "channelAccountId": channel_account_id,
        "status": {"statusType": "RECEIVED"},
    }


ROUTES: dict[str, Handler] = {
    "/twilio/2010-04-01/Accounts/<account_sid>/Messages.json": twilio_messages,
    "/twilio/2010-04-01/Accounts/<account_sid>/Calls/<call_sid>.json": twilio_update_call,
    "/twilio/2010-04-01/Accounts/<account_sid>/Calls.json": twilio_create_call,
    "/telnyx/v2/messages": telnyx_messages,
    "/telnyx/v2/calls/<call_control_id>/actions/<action>": telnyx_call_action,
    "/telegram/bot<token>/sendMessage": telegram_send_message,
    "/slack/api/chat.postMessage": slack_post_message,
    "/meta/<version>/<node_id>/messages": meta_messages,
    "/meta/<version>/<object_id>/comments": meta_comment_reply,
    "/meta/instagram/<version>/<node_id>/messages": instagram_messages,
    "/meta/instagram/<version>/<comment_id>/replies": instagram_comment_reply,
    "/x/2/tweets": x_create_post,
    "/x/2/dm_conversations/with/<participant_id>/messages": x_send_dm,
    "/discord/api/v10/webhooks/<application_id>/<token>": discord_followup,
    "/telegram/bot<token>/sendPhoto": telegram_send_file,
    "/telegram/bot<token>/sendDocument": telegram_send_file,
    "/telegram/bot<token>/sendMediaGroup": telegram_send_media_group,
    "/plivo/v1/Account/<auth_id>/Message/": plivo_messages,
    "/bandwidth/api/v2/users/<account_id>/messages": bandwidth_messages,
    # support tools
    "/zendesk/<subdomain>/api/v2/tickets/<ticket_id>.json": zendesk_update_ticket,
    "/intercom/conversations/<conversation_id>/reply": intercom_reply,
    "/freshdesk/<domain>/api/v2/tickets/<ticket_id>/reply": freshdesk_reply,
    "/freshdesk/<domain>/api/v2/tickets/<ticket_id>/notes": freshdesk_note,
    "/hubspot/conversations/v3/conversations/threads/<thread_id>/messages": hubspot_thread_message,
    "/hubspot/conversations/v3/conversations/threads/<thread_id>/messages/<message_id>": hubspot_get_thread_message,
}


def serve(apis: ProviderApis, host: str = "127.0.0.1", port: int = 0) -> tuple[Any, str]:
    """Start the sandbox on a thread; the server and its base URL."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class UnloggedRequests(WSGIRequestHandler):
        # werkzeug logs each request line, and these APIs carry credentials in their paths as
        # the real ones do (Discord's interaction token, Telegram's bot token): none in the logs.
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return

    server = make_server(host, port, apis, threaded=True, request_handler=UnloggedRequests)
    threading.Thread(target=server.serve_forever, name="provider-apis", daemon=True).start()
    return server, f"http://{host}:{server.server_port}"


DEMO_SENDER = {"from_number": "+15005550006"}
DEMO_WHATSAPP_NUMBER_ID = "106540352242922"
DEMO_PAGE_ID = "1122334455667788"


def demo_outbound_credentials(provider: str) -> dict[str, str]:
    """Fresh random outbound credentials shaped like the provider's real ones (for the
    sandbox's `accept` and a connection's outbound credentials in demos and tests)."""
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

    def pick(alphabet: str, n: int) -> str:
        return "".join(secrets.choice(alphabet) for _ in range(n))

    # The SMS and voice providers' own number (Twilio's test "from" number, valid for any account),
    # Meta's WhatsApp number id and Page: the senders of a campaign's first messages and calls.
    if provider == "twilio":
        return {"account_sid": "AC" + secrets.token_hex(16), "auth_token": secrets.token_hex(16)} | DEMO_SENDER
    if provider == "telegram":  # "<bot id>:<35-character secret>" as @BotFather issues them
        return {"bot_token": f"{pick('123456789', 1)}{pick('0123456789', 9)}:AA{pick(alnum + '_-', 33)}"}
    if provider == "slack":  # xoxb-<team number>-<bot number>-<24 alphanumerics>
        return {"bot_token": f"xoxb-{pick('0123456789', 13)}-{pick('0123456789', 13)}-{pick(alnum, 24)}"}
    if provider == "meta":  # long-lived Graph access tokens start with "EAA", Instagram User tokens with "IG"
        return {
            "access_token": "EAA" + pick(alnum, 180),
            "instagram_access_token": "IGAA" + pick(alnum, 180),
            "whatsapp_phone_number_id": DEMO_WHATSAPP_NUMBER_ID,
            "page_id": DEMO_PAGE_ID,
        }
    if provider == "telnyx":  # API v2 keys: "KEY" + hex, "_" + secret
        return {"api_key": f"KEY{secrets.token_hex(16).upper()}_{pick(alnum, 22)}"} | DEMO_SENDER
    if provider == "x":  # OAuth 2.0 user-context access tokens: ~90 URL-safe characters
        return {"access_token": pick(alnum, 64) + "OjE3" + pick(alnum, 24) + "MToxOmF0OjE"}
    if provider == "discord":  # the application id, a snowflake (follow-ups need no bot token)
        return {"application_id": _discord_snowflake()}
    if provider == "plivo":  # Auth ID "MA" + 18 upper-case alphanumerics, a 40-character Auth Token
        return {"auth_id": "MA" + pick(alnum[:26] + "0123456789", 18), "auth_token": pick(alnum, 40)} | DEMO_SENDER
    if provider == "bandwidth":  # account id, an API user and its password, the messaging application
        return {
            "account_id": pick("0123456789", 7),
            "username": "switchboard-api-" + secrets.token_hex(4),
            "password": secrets.token_urlsafe(24),
            "application_id": str(uuid.uuid4()),
        } | DEMO_SENDER
    if provider == "zendesk":  # an agent's API token: 40 alphanumerics
        return {
            "subdomain": "acme" + pick("abcdefghijklmnopqrstuvwxyz0123456789", 6),
            "email": "agent@example.com",
            "api_token": pick(alnum, 40),
        }
    if provider == "intercom":  # access tokens are base64 text; admin ids are numbers
        return {
            "access_token": base64.b64encode(secrets.token_bytes(45)).decode("ascii"),
            "admin_id": pick("0123456789", 7),
        }
    if provider == "freshdesk":  # an agent's API key: 20 alphanumerics; the helpdesk the samples come from
        return {"domain": "acme", "api_key": pick(alnum, 20)}
    if provider == "hubspot":  # a private app token (pat-<region>-<uuid>), an agent actor, a chat channel account
        return {
            "access_token": f"pat-na1-{uuid.uuid4()}",
            "sender_actor_id": "A-" + pick("123456789", 1) + pick("0123456789", 7),
            "channel_id": "1000",
            "channel_account_id": pick("123456789", 1) + pick("0123456789", 8),
        }
    if provider == "vonage":  # an application id and its RSA private key
        return demo_vonage_credentials() | DEMO_SENDER
    from switchboard_core.outbound import SENDERS

    raise ValueError(f"no outbound credentials for {provider!r}; providers that can send: {', '.join(SENDERS)}")


# --------------------------------------------------------------------------- vonage
# Voice API call control and the Messages API, authenticated like Vonage: an application JWT
# (RS256) checked against the public key of an application registered with `accept`
# ({"application_id", "private_key"}: the sandbox derives the public key, as Vonage holds it).
_VONAGE_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_VONAGE_CALL_ACTIONS = ("transfer", "hangup", "mute", "unmute", "earmuff", "unearmuff")
_NCCO_ACTIONS = ("talk", "stream", "connect", "record", "input", "notify", "wait", "conversation", "transfer")


def demo_vonage_credentials() -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {"application_id": str(uuid.uuid4()), "private_key": pem}


def _vonage_error(status: int, kind: str, title: str, detail: str, **extra: Any) -> Response:
    return json_response(
        {
            "type": f"https://developer.nexmo.com/api-errors#{kind}",
            "title": title,
            "detail": detail,
            "instance": str(uuid.uuid4()),
            **extra,
        },
        status=status,
    )


def _vonage_unauthorized() -> Response:
    return _vonage_error(401, "unauthorized", "Unauthorized", "You did not provide correct credentials.")


def _vonage_application(apis: ProviderApis, request: Request) -> str | None:
    """The application id whose key signed the request's JWT (RS256, with iat, jti and an exp
    still ahead), else None."""
    import jwt

    token = _bearer(request)
    if not token:
        return None
    for credentials in apis.accepted("vonage"):
        try:
            claims = jwt.decode(
                token,
                _vonage_public_key(credentials["private_key"]),
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "jti", "application_id"]},
            )
        except jwt.PyJWTError:
            continue
        if claims.get("application_id") == credentials["application_id"]:
            return str(credentials["application_id"])
    return None


@functools.lru_cache(maxsize=32)
def _vonage_public_key(private_pem: str) -> Any:
    """The public half Vonage keeps for an application (parsing a PEM takes tens of ms: once each)."""
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(private_pem.encode(), password=None).public_key()


def _ncco_problem(ncco: Any) -> str | None:
    """What makes `ncco` one Vonage would refuse, else None."""
    if not isinstance(ncco, list) or not ncco:
        return "ncco must be a non-empty array of actions"
    for index, action in enumerate(ncco):
        name = action.get("action") if isinstance(action, dict) else None
        if name not in _NCCO_ACTIONS:
            return f"ncco[{index}].action must be one of {', '.join(_NCCO_ACTIONS)}"
        assert isinstance(action, dict)
        if "eventUrl" in action and not (
            isinstance(action["eventUrl"], list) and all(isinstance(u, str) for u in action["eventUrl"])
        ):
            return f"ncco[{index}].eventUrl must be an array of URLs"
        if name == "talk" and not (isinstance(action.get("text"), str) and action["text"]):
            return f"ncco[{index}].text is required"
        if name == "stream" and not (isinstance(action.get("streamUrl"), list) and action["streamUrl"]):
            return f"ncco[{index}].streamUrl must be an array"
        if name == "connect":
            endpoints = action.get("endpoint")
            if not (isinstance(endpoints, list) and endpoints and all(isinstance(e, dict) for e in endpoints)):
                return f"ncco[{index}].endpoint must be an array of endpoints"
            phones = [e for e in endpoints if e.get("type") == "phone"]
            if any(not (isinstance(e.get("number"), str) and e["number"].isdigit()) for e in phones):
                return f"ncco[{index}].endpoint number must be E.164 digits"
    return None


def vonage_update_call(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``PUT /v1/calls/{uuid}``: ``transfer`` to an NCCO (inline ``ncco`` or ``url``), ``hangup``,
    ``mute``... 204 when taken; 404 for a call that does not exist or has ended."""
    if _vonage_application(apis, request) is None:
        return _vonage_unauthorized()
    call_uuid = values["call_uuid"]
    if not _VONAGE_UUID.match(call_uuid) or call_uuid in apis.ended_calls:
        return _vonage_error(404, "not-found", "Not Found", f"Call {call_uuid} doesn't exist or has ended.")
    body = _json_or_form(request) if request.mimetype == "application/json" else None
    if body is None:
        return _vonage_error(400, "bad-request", "Bad Request", "The request body did not contain valid JSON")
    action = body.get("action")
    if action not in _VONAGE_CALL_ACTIONS:
        return _vonage_error(
            400, "bad-request", "Bad Request", f"action must be one of {', '.join(_VONAGE_CALL_ACTIONS)}"
        )
    if action == "transfer":
        destination = body.get("destination")
        if not isinstance(destination, dict) or destination.get("type") != "ncco":
            return _vonage_error(400, "bad-request", "Bad Request", "destination.type must be ncco")
        url = destination.get("url")
        if url is None:
            problem = _ncco_problem(destination.get("ncco"))
        else:
            problem = None if isinstance(url, list) and url else "destination.url must be an array"
        if problem is not None:
            return _vonage_error(400, "bad-request", "Bad Request", problem)
    apis.record_call_update(
        CallUpdate("vonage", call_sid=call_uuid, twiml=None, url=None, status=None, action=action, body=body)
    )
    return Response(status=204)


def vonage_messages(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """Messages API ``POST /v1/messages``, SMS text: 202 ``{"message_uuid"}``."""
    if _vonage_application(apis, request) is None:
        return _vonage_unauthorized()
    body = _json_or_form(request) if request.mimetype == "application/json" else None
    if body is None:
        return _vonage_error(400, "bad-request", "Bad Request", "The request body did not contain valid JSON")
    invalid = [
        {"name": name, "reason": "is required"}
        for name in ("message_type", "channel", "to", "from", "text")
        if not (isinstance(body.get(name), str) and body[name])
    ]
    if not invalid and (body["message_type"], body["channel"]) != ("text", "sms"):
        invalid.append({"name": "channel", "reason": "the sandbox takes SMS text messages only"})
    if not invalid and not body["to"].isdigit():
        invalid.append({"name": "to", "reason": "must be E.164 digits"})
    if invalid:
        return _vonage_error(
            422, "invalid-params", "Invalid params", "Your request contained invalid params", invalid_parameters=invalid
        )
    message_uuid = str(uuid.uuid4())
    apis.record(
        SentMessage("vonage", to=body["to"], text=body["text"], message_id=message_uuid, details={"from": body["from"]})
    )
    return json_response({"message_uuid": message_uuid}, status=202)


def vonage_create_call(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """Voice API ``POST /v1/calls``: ``to`` (one phone endpoint), ``from`` or ``random_from_number``,
    an inline ``ncco`` (or ``answer_url``), ``event_url``; 201 ``{"uuid", "status": "started",
    "direction": "outbound", "conversation_uuid"}``. Recorded."""
    if _vonage_application(apis, request) is None:
        return _vonage_unauthorized()
    body = _json_or_form(request) if request.mimetype == "application/json" else None
    if body is None:
        return _vonage_error(400, "bad-request", "Bad Request", "The request body did not contain valid JSON")
    invalid: list[dict[str, str]] = []
    to = body.get("to")
    phones = [e for e in to if isinstance(e, dict) and e.get("type") == "phone"] if isinstance(to, list) else []
    if len(phones) != 1 or not str(phones[0].get("number", "")).isdigit():
        invalid.append({"name": "to", "reason": "must be one phone endpoint with E.164 digits"})
    sender = body.get("from")
    if body.get("random_from_number") is not True and not (
        isinstance(sender, dict) and str(sender.get("number", "")).isdigit()
    ):
        invalid.append({"name": "from", "reason": "a phone endpoint is required unless random_from_number is true"})
    ncco = body.get("ncco")
    if ncco is None and not body.get("answer_url"):
        invalid.append({"name": "ncco", "reason": "ncco or answer_url is required"})
    elif ncco is not None and (problem := _ncco_problem(ncco)) is not None:
        invalid.append({"name": "ncco", "reason": problem})
    event_url = body.get("event_url")
    if event_url is not None and not (isinstance(event_url, list) and all(isinstance(u, str) for u in event_url)):
        invalid.append({"name": "event_url", "reason": "must be an array of URLs"})
    if invalid:
        return _vonage_error(
            422, "invalid-params", "Invalid params", "Your request contained invalid params", invalid_parameters=invalid
        )
    call_uuid, conversation = str(uuid.uuid4()), "CON-" + str(uuid.uuid4())
    apis.record_placed_call(
        PlacedCall(
            "vonage",
            call_id=call_uuid,
            to=str(phones[0]["number"]),
            from_=str(sender["number"]) if isinstance(sender, dict) else None,
            ncco=ncco,
            callback_url=event_url[0] if event_url else None,
            details={"conversation_uuid": conversation, "ringing_timer": body.get("ringing_timer")},
        )
    )
    return json_response(
        {"uuid": call_uuid, "status": "started", "direction": "outbound", "conversation_uuid": conversation},
        status=201,
    )


ROUTES.update(
    {
        "/vonage/v1/calls": vonage_create_call,
        "/vonage/v1/calls/<call_uuid>": vonage_update_call,
        "/vonage/v1/messages": vonage_messages,
    }
)
ROUTE_METHODS: dict[str, list[str]] = {"/vonage/v1/calls/<call_uuid>": ["PUT"]}
