from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.kit.clock import utcnow
from fidelia.models.base import Base, created_at, uuid_pk


class Event(Base):
    """Everything that happens to a member. Append-only (database triggers refuse changes).

    ``idempotency_key`` is the caller's event id, unique per programme; ``outcome`` is what the
    intake answered the first time, returned again when the same event is resent.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("programme_id", "idempotency_key"),
        Index("ix_events_member_id_occurred_at_id", "member_id", "occurred_at", "id"),
        # An order is bought once: purchase order ids are unique within a programme.
        Index(
            "uq_events_purchase_order",
            "programme_id",
            "reference",
            unique=True,
            sqlite_where=text("type = 'purchase'"),
            postgresql_where=text("type = 'purchase'"),
        ),
        Index("ix_events_programme_id_reference", "programme_id", "reference"),
        # Segments count a type of event over a window for a whole programme (migration 0009)
        Index(
            "ix_events_programme_id_type_occurred_at",
            "programme_id",
            "type",
            "occurred_at",
            postgresql_include=["member_id"],
        ),
        # The analytics refresh reads what arrived since its watermark (migration 0015)
        Index("ix_events_programme_id_received_at", "programme_id", "received_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the event as sent: a resend with the same key but other content is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    channel: Mapped[str | None] = mapped_column(String(16))
    store: Mapped[str | None] = mapped_column(String(64))
    # The order id of a purchase or a return, so that returns find their purchase.
    reference: Mapped[str | None] = mapped_column(String(100))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    outcome: Mapped[dict[str, Any]] = mapped_column(default=dict)


class EventType(Base):
    """A programme's declaration of a custom event type, with the JSON schema of its properties."""

    __tablename__ = "event_types"
    __table_args__ = (UniqueConstraint("programme_id", "name"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    json_schema: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ImportRun(Base):
    """Progress of one bulk import of one file, so that a crashed import resumes where it was."""

    __tablename__ = "import_runs"
    __table_args__ = (UniqueConstraint("programme_id", "kind", "file_digest"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    file_name: Mapped[str] = mapped_column(String(500))
    file_digest: Mapped[str] = mapped_column(String(64))
    lines_done: Mapped[int] = mapped_column(default=0)
    accepted: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = created_at()
    finished_at: Mapped[datetime | None]
