"""``GET /audit``: the programme's audit log for an admin."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from fidelia.audit import service
from fidelia.auth.dependencies import Admin, DbSession
from fidelia.errors import ERROR_RESPONSES
from fidelia.examples import examples
from fidelia.kit.bounds import Instant
from fidelia.kit.pagination import Page

router = APIRouter(prefix="/audit", tags=["audit"], responses=ERROR_RESPONSES)


ENTRY = {
    "id": "019ceb9e-7a10-7c11-9d2e-4b1f0c3a9e10",
    "at": "2026-11-30T15:00:00Z",
    "actor": "api_key:019ceb9e-5f00-7c11-9d2e-4b1f0c3a9e10",
    "user_id": None,
    "action": "PATCH /members/{member_id}",
    "target_type": "members",
    "target_id": "019ceb9e-6018-78a4-ad11-f033b48438b5",
    "reason": None,
    "before": None,
    "after": {"first_name": "Zoe"},
}


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ENTRY))

    id: uuid.UUID
    at: datetime
    actor: str
    user_id: uuid.UUID | None
    action: str
    target_type: str
    target_id: str
    reason: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@router.get("", response_model=Page[AuditEntryOut], summary="The audit log, newest first")
def audit_log(
    principal: Admin,
    session: DbSession,
    actor: Annotated[
        str | None, Query(max_length=320, description="api_key:<id>, user:<email>")
    ] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="A prefix: POST /members")
    ] = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Instant | None = None,
    until: Instant | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[AuditEntryOut]:
    """Every write made with an API key (`actor` `api_key:<id>`, `action` the method and route,
    `after` the request body with secrets redacted) or in the back-office (`user:<email>`, with
    the state before and after where it matters), newest first, filtered. Paged by `cursor`.

    422: a malformed filter or cursor.

    Scope: `admin`.
    """
    found, next_cursor = service.entries(
        session,
        programme_id=principal.programme.id,
        target_type=target_type,
        target_id=target_id,
        actor=actor,
        action=action,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=[AuditEntryOut.model_validate(e) for e in found], next_cursor=next_cursor)
