"""One error base class carrying its HTTP status; every layer raises these.

The API renders them as ``{"error": code, "detail": text, "fields": [...]}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, Field


@dataclass(frozen=True)
class FieldError:
    """One invalid field: ``loc`` is the path inside the request body."""

    loc: tuple[str | int, ...]
    msg: str

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg}


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


class FieldErrorOut(BaseModel):
    loc: list[str | int]
    msg: str


class ErrorOut(BaseModel):
    """The one shape of every error the API returns."""

    error: str = Field(description="A stable machine-readable code, e.g. 'not_found'")
    detail: str = Field(description="What went wrong, for a human")
    fields: list[FieldErrorOut] = Field(default_factory=list, description="The fields at fault")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in {
        401: "Missing, unknown or revoked API key",
        403: "The key's scope does not allow this call",
        404: "Unknown id",
        409: "Conflict with the current state",
        422: "Invalid input; `fields` names the path of each invalid field",
    }.items()
}
