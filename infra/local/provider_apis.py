"""The providers' send APIs on loopback, for the local runtime and the tests.

moto stands in for AWS; this stands in for the few provider endpoints Switchboard calls
to reply to a customer (switchboard_core.outbound). Each route checks credentials the
way the real API does (against the sets registered with `accept`), answers in the
provider's documented success and error shapes, and records what was sent, so a demo or
a test can see the reply that would have reached the customer:

    GET /_sandbox/messages              every accepted message, oldest first
    GET /_sandbox/calls                 every accepted call update (Twilio Calls API) or Call Control
                                        command (Telnyx), oldest first
    POST /_sandbox/fail {"provider", "status", "times"}   make the next sends fail (tests)

Senders reach it through SWITCHBOARD_PROVIDER_API_URL (base URL + "/<provider>").
"""

from __future__ import annotations

import base64
import functools
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


class ProviderApis:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted: dict[str, list[dict[str, str]]] = {}
        self._failures: dict[str, list[int]] = {}
        self.messages: list[SentMessage] = []
        self.call_updates: list[CallUpdate] = []
        # Call sids the sandbox answers 400/21220 for ("Call is not in-progress"): a caller who hung up.
        self.ended_calls: set[str] = set()
        self._command_ids: set[tuple[str, str]] = set()  # Telnyx (call_control_id, command_id) already taken
        self._routes = Map(
            [
                Rule(path, endpoint=handler, methods=ROUTE_METHODS.get(path, ["POST"]))
                for path, handler in ROUTES.items()
            ]
            + [
                Rule("/_sandbox/messages", endpoint="messages", methods=["GET"]),
                Rule("/_sandbox/calls", endpoint="calls", methods=["GET"]),
                Rule("/_sandbox/fail", endpoint="fail", methods=["POST"]),
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

    def record_call_update(self, update: CallUpdate) -> None:
        with self._lock:
            self.call_updates.append(update)

    def first_command(self, call_control_id: str, command_id: str) -> bool:
        """False when Telnyx has already seen this command id on this call (it ignores the repeat)."""
        with self._lock:
            key = (call_control_id, command_id)
            if key in self._command_ids:
                return False
            self._command_ids.add(key)
            return True

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
    if not _twilio_authenticated(apis, request, values):
        return _twilio_unauthenticated()
    form = {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
    to, body = form.get("To", ""), form.get("Body", "")
    if not to or not (form.get("From") or form.get("MessagingServiceSid")):
        return json_response(
            {"code": 21604, "message": "A 'To' and a 'From' (or 'MessagingServiceSid') are required", "status": 400},
            status=400,
        )
    if not body:
        return json_response({"code": 21602, "message": "Message body is required.", "status": 400}, status=400)
    sid = "SM" + secrets.token_hex(16)
    apis.record(
        SentMessage(
            "twilio",
            to=to,
            text=body,
            message_id=sid,
            details={"from": form.get("From") or form.get("MessagingServiceSid")},
        )
    )
    return json_response(
        {
            "sid": sid,
            "account_sid": values["account_sid"],
            "to": to,
            "from": form.get("From"),
            "body": body,
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


# --------------------------------------------------------------------------- telnyx
_TELNYX_ACTIONS = ("answer", "playback_start", "speak", "transfer")


def _telnyx_error(status: int, code: str, title: str, detail: str = "") -> Response:
    return json_response({"errors": [{"code": code, "title": title, "detail": detail or title}]}, status=status)


def _telnyx_authenticated(apis: ProviderApis, request: Request) -> bool:
    return any(_bearer(request) == c.get("api_key") for c in apis.accepted("telnyx"))


def telnyx_messages(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """``POST /v2/messages`` (``from``, ``to``, ``text``)."""
    if not _telnyx_authenticated(apis, request):
        return _telnyx_error(401, "10009", "Authentication failed")
    body = _json_or_form(request) or {}
    sender, to, text = body.get("from"), body.get("to"), body.get("text")
    if not all(isinstance(v, str) and v for v in (sender, to, text)):
        return _telnyx_error(422, "10015", "Invalid parameter", "from, to and text are required")
    message_id = str(uuid.uuid4())
    apis.record(SentMessage("telnyx", to=str(to), text=str(text), message_id=message_id, details={"from": sender}))
    return json_response({"data": {"id": message_id, "record_type": "message"}})


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
def _graph_error(status: int, code: int, message: str, type_: str = "OAuthException", **extra: Any) -> Response:
    return json_response(
        {"error": {"message": message, "type": type_, "code": code, **extra, "fbtrace_id": secrets.token_urlsafe(9)}},
        status=status,
    )


def meta_messages(apis: ProviderApis, request: Request, values: dict[str, str]) -> Response:
    """WhatsApp Cloud API and Messenger Send API: both POST /<version>/<node id>/messages."""
    if not re.match(r"^v\d+\.\d+$", values["version"]) or not values["node_id"].isdigit():
        return _graph_error(400, 2500, f"Unknown path components: /{values['version']}/{values['node_id']}/messages")
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError:
        body = None
    whatsapp = isinstance(body, dict) and "messaging_product" in body
    token = _bearer(request) or request.args.get("access_token", "")
    if not any(c.get("access_token") == token for c in apis.accepted("meta")):
        # Cloud API documents 190 as HTTP 401; the Graph API at large answers OAuthException with 400.
        return _graph_error(401 if whatsapp else 400, 190, "Invalid OAuth access token - Cannot parse access token")
    if not isinstance(body, dict):
        return _graph_error(400, 100, "(#100) The request body must be a JSON object", "GraphMethodException")
    node = values["node_id"]
    if whatsapp:
        return _whatsapp_message(apis, node, body)
    return _messenger_message(apis, node, body)


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
    if body.get("type", "text") != "text":
        return invalid("The sandbox accepts text messages only")
    text = body.get("text", {}).get("body") if isinstance(body.get("text"), dict) else None
    if not isinstance(text, str) or not text.strip():
        return invalid("The parameter text['body'] is required")
    if len(text) > 4096:
        return invalid("Param text['body'] must be at most 4096 characters long")
    wamid = "wamid." + base64.b64encode(secrets.token_bytes(30)).decode()
    apis.record(
        SentMessage(
            "meta", to=to, text=text, message_id=wamid, details={"product": "whatsapp", "from": phone_number_id}
        )
    )
    return json_response(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
            "messages": [{"id": wamid}],
        }
    )


def _messenger_message(apis: ProviderApis, page_id: str, body: dict[str, Any]) -> Response:
    recipient = body.get("recipient")
    psid = recipient.get("id") if isinstance(recipient, dict) else None
    if not isinstance(psid, str) or not psid.isdigit():
        return _graph_error(400, 100, "(#100) The parameter recipient is required")
    if body.get("messaging_type") not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
        return _graph_error(400, 100, "(#100) Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
    message = body.get("message")
    text = message.get("text") if isinstance(message, dict) else None
    if not isinstance(text, str) or not text.strip():
        return _graph_error(400, 100, "(#100) Must send either message or sender_action")
    if len(text) > 2000:
        return _graph_error(400, 100, "(#100) Length of param message[text] must be less than or equal to 2000")
    mid = "m_" + secrets.token_urlsafe(48)
    apis.record(
        SentMessage("meta", to=psid, text=text, message_id=mid, details={"product": "messenger", "from": page_id})
    )
    return json_response({"recipient_id": psid, "message_id": mid})


ROUTES: dict[str, Handler] = {
    "/twilio/2010-04-01/Accounts/<account_sid>/Messages.json": twilio_messages,
    "/twilio/2010-04-01/Accounts/<account_sid>/Calls/<call_sid>.json": twilio_update_call,
    "/telnyx/v2/messages": telnyx_messages,
    "/telnyx/v2/calls/<call_control_id>/actions/<action>": telnyx_call_action,
    "/telegram/bot<token>/sendMessage": telegram_send_message,
    "/slack/api/chat.postMessage": slack_post_message,
    "/meta/<version>/<node_id>/messages": meta_messages,
}


def serve(apis: ProviderApis, host: str = "127.0.0.1", port: int = 0) -> tuple[Any, str]:
    """Start the sandbox on a thread; the server and its base URL."""
    from werkzeug.serving import make_server

    server = make_server(host, port, apis, threaded=True)
    threading.Thread(target=server.serve_forever, name="provider-apis", daemon=True).start()
    return server, f"http://{host}:{server.server_port}"


def demo_outbound_credentials(provider: str) -> dict[str, str]:
    """Fresh random outbound credentials shaped like the provider's real ones (for the
    sandbox's `accept` and a connection's outbound credentials in demos and tests)."""
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

    def pick(alphabet: str, n: int) -> str:
        return "".join(secrets.choice(alphabet) for _ in range(n))

    if provider == "twilio":
        return {"account_sid": "AC" + secrets.token_hex(16), "auth_token": secrets.token_hex(16)}
    if provider == "telegram":  # "<bot id>:<35-character secret>" as @BotFather issues them
        return {"bot_token": f"{pick('123456789', 1)}{pick('0123456789', 9)}:AA{pick(alnum + '_-', 33)}"}
    if provider == "slack":  # xoxb-<team number>-<bot number>-<24 alphanumerics>
        return {"bot_token": f"xoxb-{pick('0123456789', 13)}-{pick('0123456789', 13)}-{pick(alnum, 24)}"}
    if provider == "meta":  # long-lived Graph access tokens start with "EAA"
        return {"access_token": "EAA" + pick(alnum, 180)}
    if provider == "telnyx":  # API v2 keys: "KEY" + hex, "_" + secret
        return {"api_key": f"KEY{secrets.token_hex(16).upper()}_{pick(alnum, 22)}"}
    if provider == "vonage":  # an application id and its RSA private key
        return demo_vonage_credentials()
    raise ValueError(
        f"no outbound credentials for {provider!r}; "
        "providers that can send: twilio, telegram, slack, meta, telnyx, vonage"
    )


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


ROUTES.update(
    {
        "/vonage/v1/calls/<call_uuid>": vonage_update_call,
        "/vonage/v1/messages": vonage_messages,
    }
)
ROUTE_METHODS: dict[str, list[str]] = {"/vonage/v1/calls/<call_uuid>": ["PUT"]}
