"""Engagement tables: badges earned, challenge completions, and each member's counters.

``engagement_states`` holds one JSON document per member with the counters badges and
challenges need (events matching a badge, a challenge round's progress), updated in the same
transaction as each event, so progress never requires scanning the event log.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fidelia.kit.clock import utcnow
from fidelia.models.base import Base, uuid_pk
from fidelia.models.member import Member


class EngagementState(Base):
    """A member's badge and challenge counters: ``{"badges": {...}, "challenges": {...}}``."""

    __tablename__ = "engagement_states"

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    # Declared so that a flush writes the member before the rows that point at it.
    member: Mapped[Member] = relationship(lazy="raise")
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    data: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MemberBadge(Base):
    """A badge (at one level) a member earned. Never removed."""

    __tablename__ = "member_badges"
    __table_args__ = (UniqueConstraint("member_id", "badge", "level"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    # Declared so that a flush writes the member before the rows that point at it.
    member: Mapped[Member] = relationship(lazy="raise")
    badge: Mapped[str] = mapped_column(String(64))
    level: Mapped[int]
    earned_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(64))  # "condition", "rule:<id>", "challenge:<id>"
    event_id: Mapped[uuid.UUID | None]


class ChallengeCompletion(Base):
    """One completion of a challenge round by a member, with the reward it gave."""

    __tablename__ = "challenge_completions"
    __table_args__ = (UniqueConstraint("member_id", "challenge", "round"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    # Declared so that a flush writes the member before the rows that point at it.
    member: Mapped[Member] = relationship(lazy="raise")
    challenge: Mapped[str] = mapped_column(String(64))
    round: Mapped[str] = mapped_column(String(64))
    completed_at: Mapped[datetime]
    event_id: Mapped[uuid.UUID | None]
    reward: Mapped[dict[str, Any]]
