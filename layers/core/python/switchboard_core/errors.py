"""Errors that carry the HTTP answer they deserve.

Everything the hub refuses is a HubError: its status and a JSON body naming the
problem (`{"error": {"code": ..., "message": ..., "details"?: {...}}}`). A request that
fails validation lists each problem in `details.problems` as `{"field", "problem"}`,
plus `"in"` (body, query, path) when the admin API knows where the field was.
"""

from __future__ import annotations

from typing import Any, TypeVar

ModelT = TypeVar("ModelT")


class HubError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.details = details or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class NotFound(HubError):
    status = 404
    code = "not_found"


class PayloadTooLarge(HubError):
    status = 413
    code = "payload_too_large"


class Unavailable(HubError):
    """A dependency failed; the provider should retry (503)."""

    status = 503
    code = "temporarily_unavailable"


def field_problems(exc: Any) -> list[dict[str, str]]:
    """A pydantic ValidationError as [{"field": "a.b.0", "problem": "..."}]."""
    return [{"field": ".".join(map(str, e["loc"])) or "(body)", "problem": e["msg"]} for e in exc.errors()]


def located_problems(errors: Any) -> list[dict[str, str]]:
    """Errors whose `loc` starts with where the field was (`("body", "rule_set", "rules", 0)`,
    `("query", "limit")`, as Powertools' request validation reports them) as
    [{"field": "rule_set.rules.0", "in": "body", "problem": "..."}]."""
    problems = []
    for error in errors:
        where, *path = [str(part) for part in error.get("loc") or ("body",)]
        problems.append({"field": ".".join(path) or f"({where})", "in": where, "problem": error.get("msg", "invalid")})
    return problems


def invalid_request(problems: list[dict[str, str]], what: str = "request") -> HubError:
    """The one 400 for a request that does not validate: every problem names its field."""
    fields = ", ".join(dict.fromkeys(p["field"] for p in problems))
    return HubError(f"invalid {what}: {fields}", status=400, code="validation_error", details={"problems": problems})


def validated(model: type[ModelT], data: Any, what: str) -> ModelT:
    """`model` built from `data`, or a 400 `validation_error` naming every bad field."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)  # type: ignore[attr-defined]
    except ValidationError as exc:
        raise invalid_request(field_problems(exc), what) from None
