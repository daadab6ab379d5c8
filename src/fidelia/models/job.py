from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.kit.clock import utcnow
from fidelia.models.base import Base, created_at, uuid_pk


class Job(Base):
    """Durable background work, written in the transaction of the change that needs it.

    ``status``: pending -> done, or pending -> (retries) -> dead after ``max_attempts``.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_due_at", "status", "due_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=8)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    finished_at: Mapped[datetime | None]
