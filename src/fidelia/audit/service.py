"""Recording and reading the audit log. Any domain or delivery layer calls :func:`record` in
the transaction of the write it describes, so the entry exists exactly when the write does."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.errors import ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.kit.pagination import decode_cursor, encode_cursor
from fidelia.models.audit import AuditEntry


def record(
    session: Session,
    *,
    programme_id: uuid.UUID,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
    user_id: uuid.UUID | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Write one entry: ``actor`` did ``action`` to ``target_type``/``target_id``."""
    entry = AuditEntry(
        programme_id=programme_id,
        actor=actor[:320],
        user_id=user_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=before,
        after=after,
        reason=reason,
        at=at or utcnow(),
    )
    session.add(entry)
    session.flush()
    return entry


def entries(
    session: Session,
    *,
    programme_id: uuid.UUID,
    target_type: str | None = None,
    target_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[AuditEntry], str | None]:
    """The programme's entries, newest first, filtered by target, actor, action (a prefix:
    ``POST /members``) and time (``since`` inclusive, ``until`` exclusive); one page."""
    query = select(AuditEntry).where(AuditEntry.programme_id == programme_id)
    if target_type:
        query = query.where(AuditEntry.target_type == target_type)
    if target_id:
        query = query.where(AuditEntry.target_id == target_id)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))
    if since:
        query = query.where(AuditEntry.at >= since)
    if until:
        query = query.where(AuditEntry.at < until)
    if cursor:
        try:
            (before,) = decode_cursor(cursor)
            query = query.where(AuditEntry.id < uuid.UUID(before))
        except ValueError as exc:
            raise ValidationFailed.on(("query", "cursor"), "not a cursor this page gave") from exc
    rows = list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit + 1)))
    next_cursor = encode_cursor([str(rows[limit - 1].id)]) if len(rows) > limit else None
    return rows[:limit], next_cursor
