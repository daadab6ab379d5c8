"""Per-member event summaries that segments count from, and each segment's first evaluation.

``event_summaries`` holds, per member, event type, category and UTC day, how many events there
were and the last instant among them: the counted fields of segment conditions
(``events.<type>.count_<N>d``, ``categories.<cat>.count``, ``days_since_last``) are read from it
for a whole population instead of aggregating ``events`` (see ``fidelia.segments.summaries``).
``category`` is ``''`` on the row of every event of the type; a purchase also has one row per
distinct category of its lines. The intake keeps it in the events' transaction.

``segment_baselines`` records a segment's first evaluation (when, how many members): those
first members are written without history rows or notices, and counts over time start there.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.models.base import Base


class EventSummary(Base):
    """A member's events of one type (and category) on one UTC day: count and last instant."""

    __tablename__ = "event_summaries"
    __table_args__ = (
        # a window of one type and category for a whole programme: a range scan, index-only
        Index(
            "ix_event_summaries_programme_id_type_category_day",
            "programme_id",
            "type",
            "category",
            "day",
            postgresql_include=["member_id", "n", "last_at"],
        ),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    type: Mapped[str] = mapped_column(String(64), primary_key=True)
    category: Mapped[str] = mapped_column(String(100), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    n: Mapped[int]
    last_at: Mapped[datetime]


class SegmentBaseline(Base):
    """A segment's first evaluation: its members then entered without history or notices."""

    __tablename__ = "segment_baselines"

    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), primary_key=True
    )
    segment: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime]
    members: Mapped[int]
