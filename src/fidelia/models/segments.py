"""Segment tables: who is in each segment now, and every entry and exit.

``segment_members`` holds the current memberships (one row per member and segment).
``segment_changes`` is the history of every entry and exit, with its time and cause; it doubles
as the store of the internal ``segment_entered`` / ``segment_left`` events that scenarios
consume, in the order of ``seq`` (see docs/decisions.md, "Segments").
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.models.base import Base, BigInt


class SegmentMember(Base):
    """A member in a segment, since when."""

    __tablename__ = "segment_members"
    __table_args__ = (Index("ix_segment_members_member_id", "member_id"),)

    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), primary_key=True
    )
    segment: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    since: Mapped[datetime]


class SegmentChange(Base):
    """One entry into or exit from a segment (``segment_entered`` / ``segment_left``).

    ``cause`` is ``event`` (re-evaluated after ``event_id``), ``sweep`` (the daily
    re-evaluation: time passed) or ``definition`` (the segment was created or changed).
    """

    __tablename__ = "segment_changes"
    __table_args__ = (
        Index("ix_segment_changes_programme_id_seq", "programme_id", "seq"),
        Index("ix_segment_changes_segment_at", "programme_id", "segment", "at"),
        Index("ix_segment_changes_member_id_seq", "member_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    segment: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    cause: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[uuid.UUID | None]
