"""Admin API handler: Powertools' event handler with request validation, one Router per
area (functions/admin/routes, each loaded when a request first reaches it), and one error
shape for everything it refuses.

Every 4xx answers `{"error": {"code", "message", "details"?}}` (switchboard_core.errors);
a request that does not validate lists each problem with its field and where it was
(`details.problems: [{"field", "in", "problem"}]`). The OpenAPI document generated from
these routes is served at GET /admin/openapi.json and committed as docs/openapi.json.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import re
from functools import cache
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from functions.admin.dependencies import cold_start, principal
from functions.admin.routes.params import answers
from switchboard_core.errors import HubError, invalid_request, located_problems
from switchboard_core.tracing import LazyTracer

API_TITLE = "Switchboard admin API"
API_VERSION = "1.0.0"
MAX_JSON_DEPTH = 32  # DynamoDB nests no deeper, and no admin document needs more

logger = Logger()
tracer = LazyTracer()
cold_start()


def parse_json_body(text: str) -> Any:
    """The request body as JSON: an object, nested at most MAX_JSON_DEPTH deep (a hostile body
    nested thousands deep would otherwise exhaust the parser's recursion: a 500)."""
    try:
        document = json.loads(text)
    except RecursionError:
        raise HubError(
            f"body nests deeper than {MAX_JSON_DEPTH} levels", status=400, code="malformed_request"
        ) from None
    except ValueError as exc:
        raise HubError(f"body is not valid JSON: {exc}", status=400, code="malformed_request") from None
    if not isinstance(document, dict):
        raise HubError("a JSON object body is required", status=400, code="malformed_request")
    if json_depth(document) > MAX_JSON_DEPTH:
        raise HubError(f"body nests deeper than {MAX_JSON_DEPTH} levels", status=400, code="malformed_request")
    try:
        # JSON may escape a lone UTF-16 surrogate ("\ud800"), which no store can encode.
        json.dumps(document, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise HubError(
            "body holds a lone surrogate escape (\\ud800-\\udfff), which is not text",
            status=400,
            code="malformed_request",
        ) from None
    return document


def json_depth(document: Any) -> int:
    """How deep objects and arrays nest (iteratively: the depth is what is being checked)."""
    deepest, pending = 0, [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


app = APIGatewayHttpResolver(
    enable_validation=True,
    json_body_deserializer=parse_json_body,
    # A response that does not match its model is our bug: a 500, never a 400.
    response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR,
)

# Each area's routes (functions/admin/routes/<module>.py), with its logic and models, are loaded
# when a request first reaches a path under /admin/<segment>, so a cold start pays for one area,
# not all nine. Areas are listed in the order their routers were always included; the OpenAPI
# document and the 405 check load them all.
AREAS: dict[str, tuple[str, ...]] = {
    "connections": ("connections",),
    "providers": ("connections",),
    "whoami": ("keys",),
    "events": ("events",),
    "routing": ("routing",),
    "teams": ("routing",),
    "responders": ("routing",),
    "contacts": ("contacts",),
    "conversations": ("conversations", "messages"),
    "subscriptions": ("subscriptions",),
    "campaigns": ("campaigns",),
}
AREA_MODULES = tuple(dict.fromkeys(module for modules in AREAS.values() for module in modules))
_included: set[str] = set()  # this app's; a reloaded handler (the local runtime) starts with none


def include_areas(modules: tuple[str, ...]) -> None:
    """Include these route modules' routers in the app, each once."""
    for module in modules:
        if module not in _included:
            app.include_router(importlib.import_module(f"functions.admin.routes.{module}").router)
            _included.add(module)


def include_area_of(path: str) -> None:
    """Load the routes of the area `path` is in (none for a path outside every area: a 404)."""
    segments = path.split("/")
    if len(segments) > 2 and segments[1] == "admin":
        include_areas(AREAS.get(segments[2], ()))


def refuse_unknown_query_parameters(app: APIGatewayHttpResolver, next_middleware: Any) -> Response:
    """A query parameter the route does not take is refused, not silently ignored (a typo
    would otherwise widen a listing). Runs after validation, on the route's declared ones."""
    known = {field.alias for field in app.context["_route"].dependant.query_params}
    unknown = sorted(set(app.current_event.query_string_parameters or {}) - known)
    if unknown:
        problem = f"not a parameter of this route (it takes: {', '.join(sorted(known)) or 'none'})"
        raise invalid_request(
            [{"field": name or "(empty name)", "in": "query", "problem": problem} for name in unknown]
        )
    return next_middleware(app)


app.use([refuse_unknown_query_parameters])


@app.get("/admin/openapi.json", tags=["api"], responses=answers(), summary="This API's OpenAPI document")
def openapi_json() -> dict[str, Any]:
    principal(app.current_event)
    return openapi_document()


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document, generated from the routes and their models."""
    # Powertools' OpenAPI document models (~100 ms to build) serve only this path.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    include_areas(AREA_MODULES)
    generated = json.loads(
        app.get_openapi_json_schema(
            title=API_TITLE,
            version=API_VERSION,
            description="Connections, events, routing and partner subscriptions of a Switchboard hub. "
            "Every refusal answers "
            '{"error": {"code", "message", "details"?}}; see ErrorBody.',
            security_schemes={"apiKey": HTTPBearer(description="an API key (sbk_...) from `switchboard keys create`")},
            security=[{"apiKey": []}],
        )
    )
    return in_area_order(with_hub_errors(generated))


def in_area_order(document: dict[str, Any]) -> dict[str, Any]:
    """The paths in one order whichever areas earlier requests loaded first: Powertools lists
    them in the order their routes were included, which here follows the requests."""
    document["paths"] = dict(sorted(document["paths"].items(), key=lambda item: _path_order(item[0])))
    return document


def _path_order(path: str) -> tuple[int, int, str]:
    """Dynamic paths before static ones, as Powertools lists them; then by area, then by path."""
    segments = path.split("/")
    area = AREAS.get(segments[2], ()) if len(segments) > 2 else ()
    position = AREA_MODULES.index(area[0]) if area else len(AREA_MODULES)
    return (0 if "{" in path else 1, position, path)


def with_hub_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Powertools documents its own 422 body for request validation, and a 500 for responses
    that fail their model; this API answers the first as 400 with ErrorBody (each route lists
    it), and the second is a bug it logs, not an answer to document. Both are dropped."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
            operation.get("responses", {}).pop("500", None)
    schemas = document.get("components", {}).get("schemas", {})
    text = json.dumps(document["paths"])
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        if f"#/components/schemas/{name}" not in text:
            schemas.pop(name, None)
    return document


def render_openapi() -> str:
    """docs/openapi.json exactly as committed (`make openapi` writes it)."""
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def error_response(error: HubError, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=error.status, content_type="application/json", body=error.body(), headers=headers)


@app.exception_handler(HubError)
def hub_error(error: HubError) -> Response:
    if error.status >= 500:
        logger.error("admin request failed", extra={"reason": error.code, "detail": error.message})
    return error_response(error)


@app.exception_handler(RequestValidationError)
def request_invalid(error: RequestValidationError) -> Response:
    if any(e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in error.errors()):
        return error_response(HubError("a JSON body is required", status=400, code="malformed_request"))
    return error_response(invalid_request(located_problems(error.errors())))


@app.exception_handler(RequestUnsupportedContentType)
def unsupported_content_type(error: RequestUnsupportedContentType) -> Response:
    content_type = app.current_event.headers.get("content-type", "")
    return error_response(
        HubError(
            f"the body must be application/json, not {content_type!r}",
            status=415,
            code="unsupported_media_type",
            details={"problems": located_problems(error.errors())},
        )
    )


@app.exception_handler(ResponseValidationError)
def response_invalid(error: ResponseValidationError) -> Response:
    logger.error("admin response does not match its model", extra={"problems": located_problems(error.errors())})
    return error_response(HubError("the hub built an invalid answer", status=500, code="internal_error"))


@app.exception_handler(Exception)
def unexpected(error: Exception) -> Response:
    logger.error("admin request failed", exc_info=error)
    return error_response(HubError("the hub failed to answer; try again", status=500, code="internal_error"))


@app.not_found
def not_found(_: NotFoundError) -> Response:
    method, path = app.current_event.http_method, app.current_event.path
    allowed = allowed_methods(path)
    if allowed:
        return error_response(
            HubError(
                f"{path} answers {', '.join(allowed)}, not {method}",
                status=405,
                code="method_not_allowed",
                details={"allowed": allowed},
            ),
            headers={"Allow": ", ".join(allowed)},
        )
    return error_response(HubError(f"no admin route {method} {path}", status=404, code="not_found"))


def allowed_methods(path: str) -> list[str]:
    """The methods the document lists for a path (for a 405's Allow header)."""
    return sorted(
        method.upper() for pattern, methods in _path_patterns() if pattern.fullmatch(path) for method in methods
    )


@cache
def _path_patterns() -> list[tuple[re.Pattern[str], list[str]]]:
    return [
        (re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path))), list(operations))
        for path, operations in openapi_document()["paths"].items()
    ]


def readable(event: dict[str, Any]) -> HubError | None:
    """Make the body text before Powertools sees it: a base64 body is decoded here, and a body
    that is not UTF-8 (or not base64 as flagged) is refused (Powertools would fail with a 500)."""
    body = event.get("body")
    if not body or not event.get("isBase64Encoded"):
        return None
    try:
        event["body"] = base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return HubError("request body is not UTF-8 text (JSON must be UTF-8)", status=400, code="malformed_request")
    event["isBase64Encoded"] = False
    return None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    refused = readable(event)
    if refused is not None:
        return {
            "statusCode": refused.status,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(refused.body()),
            "isBase64Encoded": False,
        }
    # An empty value (`?type=`) means no filter, as it always has.
    query = event.get("queryStringParameters")
    if query:
        event["queryStringParameters"] = {k: v for k, v in query.items() if v != ""} or None
    include_area_of(APIGatewayProxyEventV2(event).path)
    return app.resolve(event, context)
