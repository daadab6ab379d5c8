"""One error base class carrying its HTTP status; every layer raises these.

The API renders them as ``{"error": code, "detail": text, "fields": [...]}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class FieldError:
    """One invalid field: ``loc`` is the path inside the request body."""

    loc: tuple[str | int, ...]
    msg: str

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg}


def error_message(err: Mapping[str, Any]) -> str:
    """A Pydantic error's message without the "Value error, " that wraps our validators' own."""
    return str(err["msg"]).removeprefix("Value error, ")


class FideliaError(Exception):
    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, detail: str, *, fields: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = fields or []

    def as_dict(self) -> dict[str, Any]:
        return {
            "error": self.code,
            "detail": self.detail,
            "fields": [f.as_dict() for f in self.fields],
        }


class ValidationFailed(FideliaError):
    status_code = 422
    code = "validation_error"

    @classmethod
    def on(cls, loc: tuple[str | int, ...] | str, msg: str) -> ValidationFailed:
        path = (loc,) if isinstance(loc, str) else loc
        return cls(f"{'.'.join(str(p) for p in path)}: {msg}", fields=[FieldError(path, msg)])


class NotFound(FideliaError):
    status_code = 404
    code = "not_found"


class Conflict(FideliaError):
    status_code = 409
    code = "conflict"


class Unauthorized(FideliaError):
    status_code = 401
    code = "unauthorized"


class Forbidden(FideliaError):
    status_code = 403
    code = "forbidden"


class RateLimited(FideliaError):
    """Too many requests: answered with 429 and ``Retry-After`` (whole seconds)."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}


_OFFSET_MSG = "datetime must carry a time zone offset (e.g. +01:00 or Z)"
_INVALID: dict[str, Any] = {
    "error": "validation_error",
    "detail": f"body.occurred_at: {_OFFSET_MSG}",
    "fields": [{"loc": ["body", "occurred_at"], "msg": _OFFSET_MSG}],
}


class FieldErrorOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": _INVALID["fields"]})

    loc: list[str | int]
    msg: str


class ErrorOut(BaseModel):
    """The one shape of every error the API returns."""

    model_config = ConfigDict(json_schema_extra={"examples": [_INVALID]})

    error: str = Field(description="A stable machine-readable code, e.g. 'not_found'")
    detail: str = Field(description="What went wrong, for a human")
    fields: list[FieldErrorOut] = Field(default_factory=list, description="The fields at fault")


def _error(code: str, detail: str) -> dict[str, Any]:
    return {"error": code, "detail": detail, "fields": []}


_ERROR_EXAMPLES: dict[int, dict[str, Any]] = {
    400: _error("bad_request", "There was an error parsing the body"),
    401: _error("unauthorized", "this API key has been revoked"),
    403: _error("forbidden", "this key has scope 'read'; this call needs 'integration'"),
    404: _error("not_found", "member 019ceb9e-6018-78a4-ad11-f033b48438b5 does not exist"),
    409: {
        "error": "conflict",
        "detail": "identity already belongs to another member: card",
        "fields": [{"loc": ["body", "card"], "msg": "card 'EC1625792787' is taken"}],
    },
    413: _error("payload_too_large", "the request body is larger than 1048576 bytes"),
    422: _INVALID,
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "model": ErrorOut,
        "description": text,
        "content": {"application/json": {"example": _ERROR_EXAMPLES[status]}},
    }
    for status, text in {
        400: "A body that cannot be read as text (not UTF-8)",
        401: "Missing, unknown or revoked API key",
        403: "The key's scope does not allow this call",
        404: "Unknown id",
        409: "Conflict with the current state",
        413: "The request body is over the size limit",
        422: "Invalid input; `fields` names the path of each invalid field",
    }.items()
}
