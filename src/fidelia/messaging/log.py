"""The delivery log: one row per step of a message."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from fidelia.kit.ids import uuid7
from fidelia.models.messaging import Message, MessageLog


def add(
    session: Session, message: Message, status: str, at: datetime, detail: str | None = None
) -> None:
    session.add(
        MessageLog(
            id=uuid7(),
            programme_id=message.programme_id,
            message_id=message.id,
            status=status,
            at=at,
            detail=detail[:4000] if detail else None,
        )
    )
