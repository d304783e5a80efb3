"""The local HTTP API: each request becomes the API Gateway (HTTP API, payload 2.0)
event AWS would send, routed by topology.ROUTES, with the Lambda authorizer in
front of authorized routes exactly as the deployed API has it.

Bodies are bounded before they are buffered: a Content-Length above the limit is
refused at once, and a body without one (chunked) is read only up to limit + 1 bytes.
Request logs name the path, never the query string (Meta's `hub.verify_token` and
other handshake secrets travel there)."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.exceptions import ClientDisconnected
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import get_input_stream

from infra import topology
from switchboard_core.errors import PayloadTooLarge

TEXT_TYPES = (
    "text/",
    "application/json",
    "application/x-www-form-urlencoded",
    "application/xml",
    "application/atom+xml",
    "application/soap+xml",
)

Invoke = Callable[[str, dict[str, Any]], Any]
INGEST_FUNCTION = "ingest"
ADMIN_FUNCTION = "admin"

BODY_TIMEOUT_SECONDS = 30.0
"""How long the gateway waits on a client that stopped sending (API Gateway's own limit is 30 s)."""


class GatewayRequestHandler(WSGIRequestHandler):
    """werkzeug's handler with a socket timeout: a client that stops sending in the middle of
    its headers or body (a Content-Length above what it sent, a stalled chunked body) gets a
    408 or a closed connection after BODY_TIMEOUT_SECONDS, instead of holding a thread forever."""

    timeout = BODY_TIMEOUT_SECONDS

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's refusals of what is not HTTP (a request line it cannot split, a header
        line over 64 KB, more than 100 headers) as the hub's JSON error instead of an HTML page,
        with an HTTP/1.1 status line even when the request line was too broken to name a version."""
        import json

        short, long = self.responses.get(code, ("Error", ""))
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.1"
        self.log_error("code %d, message %s", code, message)
        body = json.dumps(
            {"error": {"code": short.lower().replace(" ", "_"), "message": f"{message or short}: {explain or long}"}}
        ).encode()
        self.send_response(code, short)  # the standard reason: `message` may echo the client's bytes
        self.send_header("Connection", "close")
        self.close_connection = True
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@dataclass(frozen=True)
class CompiledRoute:
    route: topology.Route
    pattern: re.Pattern[str]

    @property
    def route_key(self) -> str:
        return f"{self.route.method} {self.route.path}"


def compile_route(route: topology.Route) -> CompiledRoute:
    regex = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", route.path)
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
    return CompiledRoute(route, re.compile(f"^{regex}$"))


def match(routes: list[CompiledRoute], method: str, path: str) -> tuple[CompiledRoute, dict[str, str]] | None:
    for compiled in routes:
        found = compiled.pattern.match(path)
        if found and compiled.route.method in ("ANY", method):
            return compiled, found.groupdict()
    return None


def is_text(content_type: str) -> bool:
    content_type = content_type.lower()
    return any(content_type.startswith(t) for t in TEXT_TYPES)


def read_body(request: Request, limit: int) -> bytes:
    """The request body, or PayloadTooLarge without reading more than limit + 1 bytes.

    A declared Content-Length above `limit` is refused before reading anything. Otherwise
    werkzeug's input stream ends at the Content-Length, or at the end of a chunked body;
    reading stops one byte past the limit, which is enough to know the body is too large.
    (werkzeug's own `max_content_length` would stop a chunked body silently at the limit.)
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"body is {declared} bytes (Content-Length); the limit is {limit}")
    stream = get_input_stream(request.environ, max_content_length=None)
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        data = stream.read(min(64 * 1024, limit + 1 - size))
        if not data:
            break
        parts.append(data)
        size += len(data)
    if size > limit:
        raise PayloadTooLarge(f"body is more than {limit} bytes; the limit is {limit}")
    return b"".join(parts)


def api_event(
    request: Request, compiled: CompiledRoute, path_parameters: dict[str, str], body: bytes
) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    headers.setdefault("x-forwarded-proto", request.scheme)
    query: dict[str, str] = {}
    for name, value in request.args.items(multi=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    now = datetime.now(UTC)
    text = is_text(request.content_type or "")
    try:
        decoded = body.decode("utf-8") if text else None
    except UnicodeDecodeError:
        decoded = None
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": compiled.route_key,
        "rawPath": request.path,
        "rawQueryString": request.query_string.decode("latin-1"),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": request.host,
            "domainPrefix": request.host.split(".")[0],
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "sourceIp": request.remote_addr or "127.0.0.1",
                "userAgent": request.headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": compiled.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": decoded is None and bool(body),
    }
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = decoded if decoded is not None else base64.b64encode(body).decode()
    if request.cookies:
        event["cookies"] = [f"{k}={v}" for k, v in request.cookies.items()]
    return event


def authorizer_event(event: dict[str, Any]) -> dict[str, Any]:
    http = event["requestContext"]["http"]
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": f"arn:aws:execute-api:us-east-1:123456789012:local/$default/{http['method']}{http['path']}",
        "identitySource": [event["headers"].get("authorization", "")],
        "routeKey": event["routeKey"],
        "rawPath": event["rawPath"],
        "rawQueryString": event["rawQueryString"],
        "headers": event["headers"],
        "queryStringParameters": event.get("queryStringParameters", {}),
        "requestContext": event["requestContext"],
        "pathParameters": event.get("pathParameters", {}),
    }


def json_response(status: int, message: str) -> Response:
    import json

    return Response(json.dumps({"message": message}), status=status, content_type="application/json")


def too_large_response(error: PayloadTooLarge) -> Response:
    """413 in the shape the ingest function answers it (`{"error": {"code", "message"}}`)."""
    import json

    return Response(json.dumps(error.body()), status=error.status, content_type="application/json")


def unreadable_body_response(error: BaseException) -> Response:
    """A body the gateway could not read: it stopped arriving (408), or it ended before its
    Content-Length or broke the chunked encoding (400). werkzeug raises ClientDisconnected
    from the socket's error for a Content-Length body, the socket's or the decoder's OSError
    itself for a chunked one."""
    import json

    cause = error.__context__ if isinstance(error, ClientDisconnected) else error
    if isinstance(cause, TimeoutError):
        status, code, message = 408, "request_timeout", f"the body stopped arriving for {BODY_TIMEOUT_SECONDS:.0f} s"
    elif isinstance(error, ClientDisconnected) or cause is None:
        status, code, message = 400, "incomplete_body", "the body ended before its Content-Length"
    else:
        status, code, message = 400, "malformed_body", f"the body could not be read: {cause}"
    body = {"error": {"code": code, "message": message}}
    return Response(json.dumps(body), status=status, content_type="application/json", headers={"Connection": "close"})


def to_response(result: Any) -> Response:
    """Lambda proxy result -> HTTP response (payload 2.0 rules)."""
    import json

    if not isinstance(result, dict) or "statusCode" not in result:
        return Response(json.dumps(result), status=200, content_type="application/json")
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    response = Response(data, status=int(result["statusCode"]))
    response.headers.pop("Content-Type", None)
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.add(name, str(value))
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    return response


class Gateway:
    """A WSGI application standing in for the HTTP API."""

    def __init__(
        self,
        invoke: Invoke,
        routes: tuple[topology.Route, ...] = topology.ROUTES,
        log: Callable[[str], None] | None = None,
        max_body_bytes: int = topology.MAX_BODY_BYTES,
        journal: Callable[[dict[str, Any]], None] | None = None,
        after_admin_change: Callable[[], object] | None = None,
    ) -> None:
        self._invoke = invoke
        self._routes = [compile_route(r) for r in routes]
        self._log = log
        self._max_body_bytes = max_body_bytes
        # The local hub's persistence (infra/local/persistence.py): each webhook ingest accepted is
        # journalled before its 2xx leaves; an admin change is saved before its answer leaves.
        self._journal = journal
        self._after_admin_change = after_admin_change

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        started = time.monotonic()
        response = self.handle(request)
        if self._log:
            # The path only: query strings carry handshake secrets (hub.verify_token).
            self._log(
                f"{request.method} {request.path} -> {response.status_code} "
                f"({(time.monotonic() - started) * 1000:.0f} ms)"
            )
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        found = match(self._routes, request.method, request.path)
        if found is None:
            return json_response(404, "Not Found")
        compiled, path_parameters = found
        try:
            body = read_body(request, self._max_body_bytes)
        except PayloadTooLarge as error:
            return too_large_response(error)
        except (ClientDisconnected, OSError) as error:
            return unreadable_body_response(error)
        event = api_event(request, compiled, path_parameters, body)
        if compiled.route.authorized:
            if not event["headers"].get("authorization"):
                return json_response(401, "Unauthorized")
            decision = self._invoke(topology.AUTHORIZER_FUNCTION, authorizer_event(event))
            if not decision.get("isAuthorized"):
                return json_response(403, "Forbidden")
            event["requestContext"]["authorizer"] = {"lambda": decision.get("context") or {}}
        try:
            result = self._invoke(compiled.route.function, event)
        except Exception as exc:  # noqa: BLE001 - an unhandled Lambda error is a 500, as on AWS
            if self._log:
                self._log(f"function {compiled.route.function} raised {type(exc).__name__}: {exc}")
            return json_response(500, "Internal Server Error")
        response = to_response(result)
        if 200 <= response.status_code < 300:
            self.keep(compiled, event)
        return response

    def keep(self, compiled: CompiledRoute, event: dict[str, Any]) -> None:
        """What an acknowledged request needs to outlive a kill of the local hub."""
        function = compiled.route.function
        method = event["requestContext"]["http"]["method"]
        if function == INGEST_FUNCTION and method == "POST" and self._journal:
            self._journal(event)
        elif function == ADMIN_FUNCTION and method != "GET" and self._after_admin_change:
            self._after_admin_change()
