"""The audit log: who did what to which row, when, with the state before and after."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.models.base import Base, uuid_pk


class AuditEntry(Base):
    """One recorded write. ``actor`` is readable (``user:alice@example.com``); ``user_id`` links
    the back-office user when there is one. Rows are never updated."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_programme_id_id", "programme_id", "id"),
        Index("ix_audit_log_programme_id_target", "programme_id", "target_type", "target_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    actor: Mapped[str] = mapped_column(String(320))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("backoffice_users.id", ondelete="SET NULL")
    )
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    at: Mapped[datetime]
