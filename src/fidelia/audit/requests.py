"""The audit entry of an API write: installed as the auth layer's write hook, so every
authenticated write through the API is recorded without a line in any endpoint.

The entry is written in the request's own transaction before the endpoint runs: it is
committed with the write, and rolled back with it when the endpoint fails (a refused call
leaves no entry, as it leaves no change). ``actor`` is the key (``api_key:<id>``), ``action``
the method and route (``POST /members/{member_id}/erase``), ``target_type`` the route's first
segment, ``target_id`` its first path parameter, ``after`` the request's JSON body with every
secret-looking field (names holding secret, password, token, or ``key``) redacted; bodies that
are not JSON or over 16 KiB are summarised by their size. The intake's own event stream
(``/events``, group-committed without a session) is not copied here: the event log records it.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from fidelia.audit import service as audit
from fidelia.auth.service import Principal

API_PREFIX = "/api/v1"
MAX_BODY = 16 * 1024
REDACTED = "[redacted]"
SECRET_MARKERS = ("secret", "password", "token", "authorization")


def is_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered in ("key", "api_key") or any(m in lowered for m in SECRET_MARKERS)


def redact(value: Any) -> Any:
    """A copy of a JSON value with every secret-looking field's value replaced."""
    if isinstance(value, dict):
        return {k: REDACTED if is_secret(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def summary(body: bytes, content_type: str) -> dict[str, Any] | None:
    if not body:
        return None
    if len(body) > MAX_BODY or "json" not in content_type:
        return {"body_bytes": len(body), "content_type": content_type[:100]}
    try:
        # NaN and the infinities kept as their literals: a JSON column cannot hold them
        # (PostgreSQL's jsonb refuses them, so the write failed before its endpoint could say
        # what is wrong with the value), and the audit copies what was sent
        value = json.loads(body, parse_constant=str)
    except ValueError:
        return {"body_bytes": len(body), "content_type": content_type[:100]}
    redacted = redact(value)
    return redacted if isinstance(redacted, dict) else {"body": redacted}


def record_request(session: Session, principal: Principal, request: Request, body: bytes) -> None:
    route = request.scope.get("route")
    template = str(getattr(route, "path", request.url.path)).removeprefix(API_PREFIX)
    segments = [s for s in template.split("/") if s]
    params = request.path_params
    content_type = request.headers.get("content-type", "")
    audit.record(
        session,
        programme_id=principal.programme.id,
        actor=f"api_key:{principal.key_id}",
        action=f"{request.method} {template}"[:64],
        target_type=(segments[0] if segments else "api")[:32],
        target_id=str(next(iter(params.values()), ""))[:64],
        # events name many members: the event log keeps them, the audit their size only
        after=summary(body, "" if segments[:1] == ["events"] else content_type),
    )
