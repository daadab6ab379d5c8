"""Two ASGI middlewares that hold for every request, whatever the endpoint.

``Guard`` refuses what no endpoint should ever see: a body over the size limit (413, counted
as it streams, so a lying or absent ``Content-Length`` does not help), and a NUL character in
the path, the query string or a JSON body (422 naming where): PostgreSQL cannot store it in
text, and SQLite would, so refusing it at the door keeps both databases alike.

``CatchAll`` turns any unexpected exception into the one error shape (500) and does not
re-raise it. Starlette's own last-resort handler re-raises after answering, and uvicorn then
closes the connection, so the next request a client sends on that keep-alive connection is
reset. Here the exception is logged and the connection stays usable.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fidelia.kit.bounds import find_nul

log = logging.getLogger("fidelia.api")

JSON = [(b"content-type", b"application/json")]


def _error_body(code: str, detail: str, fields: list[dict[str, Any]] | None = None) -> bytes:
    return json.dumps({"error": code, "detail": detail, "fields": fields or []}).encode()


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [*JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass


class Guard:
    """Body size limit and NUL refusal; ``large_paths`` take ``large_limit`` (bulk calls)."""

    def __init__(
        self, app: ASGIApp, *, limit: int, large_limit: int, large_paths: frozenset[str]
    ) -> None:
        self.app = app
        self.limit = limit
        self.large_limit = large_limit
        self.large_paths = large_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = _nul_in_target(scope)
        if where is not None:
            await _refuse_nul(send, where)
            return
        limit = self.large_limit if scope["path"] in self.large_paths else self.limit
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, limit)
            return
        try:
            body = await _read_body(receive, limit)
        except BodyTooLarge:
            await _too_large(send, limit)
            return
        if _is_json(scope) and (b"\\u0000" in body or b"\x00" in body):
            path = _nul_in_json(body)
            if path is not None:
                await _refuse_nul(send, ["body", *path])
                return
        await self.app(scope, _replay(body, receive), send)


def _nul_in_target(scope: Scope) -> list[str | int] | None:
    if "\x00" in scope["path"] or b"%00" in scope.get("raw_path", b""):
        return ["path"]
    query: bytes = scope.get("query_string", b"")
    if b"\x00" in unquote_to_bytes(query):
        return ["query"]
    return None


def _nul_in_json(body: bytes) -> list[str | int] | None:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: the endpoint's own parsing answers
    path = find_nul(value)
    return None if path is None else list(path)


async def _refuse_nul(send: Send, loc: list[str | int]) -> None:
    msg = "text must not contain the NUL character (\\u0000)"
    where = ".".join(str(p) for p in loc)
    body = _error_body("validation_error", f"{where}: {msg}", [{"loc": loc, "msg": msg}])
    await _answer(send, 422, body)


async def _too_large(send: Send, limit: int) -> None:
    detail = f"the request body is larger than {limit} bytes"
    await _answer(send, 413, _error_body("payload_too_large", detail))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return b"json" in value.lower()
    return False


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as Starlette expects

    return replay


class CatchAll:
    """Any exception becomes an error-shaped 500, and the connection stays usable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                return  # the answer is on its way; nothing better can be sent now
            detail = "an unexpected error occurred; it has been logged"
            await _answer(send, 500, _error_body("internal_error", detail))
