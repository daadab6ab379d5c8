"""Export jobs (issue 16): one file of a programme's table written by the worker, with its
progress, kept for a few days."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.models.base import Base, BigInt, created_at, uuid_pk


class ExportRun(Base):
    """``status``: queued -> running -> done (the file is there until ``expires_at``) ->
    expired (the file was deleted); or failed (``error``). ``last_key``: the keyset position
    reached; ``size_bytes``: the length of the file written so far (a retried chunk cuts the
    file back to it before appending)."""

    __tablename__ = "export_runs"

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), index=True
    )
    table_name: Mapped[str] = mapped_column(String(32))
    format: Mapped[str] = mapped_column(String(8))
    since: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="queued")
    rows_done: Mapped[int] = mapped_column(BigInt, default=0)
    rows_estimated: Mapped[int] = mapped_column(BigInt, default=0)
    size_bytes: Mapped[int] = mapped_column(BigInt, default=0)
    last_key: Mapped[str | None] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at()
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
