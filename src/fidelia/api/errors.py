"""Every error leaves the API in one JSON shape; no stack trace ever reaches a client."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fidelia.errors import FideliaError, error_message

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
}


def _body(
    code: str, detail: str, fields: list[dict[str, object]] | None = None
) -> dict[str, object]:
    return {"error": code, "detail": detail, "fields": fields or []}


_PARTS = ("body", "query", "path", "header")


def _in_request(field: dict[str, Any]) -> dict[str, Any]:
    """Services name fields inside the body; the API names them from the request, as FastAPI
    does for its own validation (``["body", "email"]``, ``["query", "cursor"]``)."""
    loc = field["loc"]
    if loc and loc[0] in _PARTS:
        return field
    return {**field, "loc": ["body", *loc]}


def install(app: FastAPI) -> None:
    @app.exception_handler(FideliaError)
    async def _fidelia(_request: Request, exc: FideliaError) -> JSONResponse:
        body = exc.as_dict()
        body["fields"] = [_in_request(f) for f in body["fields"]]
        headers = getattr(exc, "headers", None)  # a 429's Retry-After
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [(list(err["loc"]), error_message(err)) for err in exc.errors()]
        detail = "; ".join(".".join(str(p) for p in loc) + ": " + msg for loc, msg in errors)
        fields: list[dict[str, object]] = [{"loc": loc, "msg": msg} for loc, msg in errors]
        return JSONResponse(_body("validation_error", detail, fields), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        body = _body(code, str(exc.detail))
        # the exception's headers are part of the answer: a 405 lists the allowed methods
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    # Unexpected exceptions are answered by ``fidelia.api.middleware.CatchAll``: an
    # exception handler for ``Exception`` would run in Starlette's outermost middleware, which
    # re-raises after answering, and uvicorn then drops the keep-alive connection.
