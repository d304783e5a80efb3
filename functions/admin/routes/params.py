"""Parameters and error responses the routers share, so each is validated and documented alike."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, Field

from switchboard_core.cursors import MAX_CURSOR_CHARS

NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"  # tenants, teams, responders: as CreateConnection and the models have it

TenantQuery = Annotated[
    str | None,
    Query(
        description=(
            "the tenant to act on; a key of one tenant may name only its own, an operator key ('*') must name one"
        ),
        min_length=1,
        max_length=64,
        pattern=NAME_PATTERN,
    ),
]
Limit = Annotated[int, Query(description="page size", ge=1, le=100)]
Cursor = Annotated[
    str | None,
    Query(
        description="next_cursor of the previous page (opaque, bound to this listing)",
        min_length=1,
        max_length=MAX_CURSOR_CHARS,
    ),
]


# The error shape lives here, not in models.py, so the handler documents it without loading
# every area's response models.
class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable reason, e.g. validation_error, forbidden, not_found")
    message: str = Field(description="what was wrong, naming the fields")
    details: dict[str, Any] | None = Field(
        default=None, description="e.g. problems: [{field, in, problem}] for a request that does not validate"
    )


class ErrorBody(BaseModel):
    """Every refusal (4xx) has this shape."""

    error: ErrorDetail


def path_id(what: str) -> Any:
    """An id in the path: ids the hub issues are short, so anything longer cannot exist."""
    return Path(description=what, min_length=1, max_length=64)


def answers(*refusals: int, ok: int = 200, description: str = "done") -> dict[int, Any]:
    """The documented answers of a route: its success (the route's return model; none for a
    204) and its refusals, each with the ErrorBody shape. Every route may answer 400 (a request
    that does not validate) and 401/403 (the key)."""
    described = {
        400: "the request does not validate: details.problems names each field",
        401: "no principal: the authorizer did not pass the request",
        403: "the key may not do this: the message names the tenant and the role needed",
        404: "no such resource (or not visible to this key)",
        409: "a conflict with the current state (stale version, already undone)",
        413: "a document larger than can be stored",
        415: "a body that is not JSON",
    }
    documented: dict[int, Any] = {ok: {"description": description} | ({"content": {}} if ok == 204 else {})}
    for status in sorted({400, 401, 403, *refusals}):
        documented[status] = {"description": described[status], "content": {"application/json": {"model": ErrorBody}}}
    return documented
