"""Errors that carry the HTTP answer they deserve.

Everything the hub refuses is a HubError: its status and a JSON body naming the
problem (`{"error": {"code": ..., "message": ...}}`).
"""

from __future__ import annotations

from typing import Any, TypeVar

ModelT = TypeVar("ModelT")


class HubError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
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


def validated(model: type[ModelT], data: Any, what: str) -> ModelT:
    """`model` built from `data`, or a 400 `validation_error` naming every bad field."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)  # type: ignore[attr-defined,no-any-return]
    except ValidationError as exc:
        problems = field_problems(exc)
        raise HubError(f"invalid {what}: {', '.join(p['field'] for p in problems)}", status=400,
                       code="validation_error", details={"problems": problems}) from None
