"""Tier tables: each member's standing (tier, review date, metric buckets) and tier history.

``member_tiers.tier`` mirrors ``member_states.state["tier"]`` (the key the engine and the
rewards domain read); both are written together by the tiers domain. ``tier_changes`` is the
append-only history of every change and doubles as the store of ``tier.changed`` domain events
(ordered by their uuid7 ids) for webhooks and scenarios.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fidelia.kit.clock import utcnow
from fidelia.models.base import Base, uuid_pk
from fidelia.models.member import Member


class MemberTier(Base):
    """A member's tier, why they hold it, when it is reviewed, and their metric per local day."""

    __tablename__ = "member_tiers"
    __table_args__ = (Index("ix_member_tiers_review", "programme_id", "review_at"),)

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    # Declared so that a flush writes the member before the rows that point at it.
    member: Mapped[Member] = relationship(lazy="raise")
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    tier: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), default="metric")  # metric | manual
    since: Mapped[datetime]
    review_at: Mapped[datetime | None]
    manual_until: Mapped[datetime | None]
    grace_until: Mapped[datetime | None]
    # {"days": {"2026-06-12": [purchases, "spend", status_points]}, "life": [p, "s", sp]}
    metrics: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TierChange(Base):
    """One tier change of a member (a ``tier.changed`` domain event). Never changed."""

    __tablename__ = "tier_changes"
    __table_args__ = (Index("ix_tier_changes_member", "member_id", "at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    # Declared so that a flush writes the member before the rows that point at it.
    member: Mapped[Member] = relationship(lazy="raise")
    from_tier: Mapped[str | None] = mapped_column(String(64))
    to_tier: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    event_id: Mapped[uuid.UUID | None]
    metric: Mapped[dict[str, Any]]
