"""Referrals, leaderboards, streaks and store check-ins (issue 14).

``leaderboard_scores`` is the ranking: one row per (board, period, scope, member), kept up to
date by the intake as events arrive. ``rank_score`` is ``-score`` so that the ranking order
(highest score, then who got there first, then the member id) is one ascending index;
``leaderboard_counts`` holds how many visible members hold each score, so that a member's rank
is a sum over the distinct scores above theirs plus a COUNT of the ties ahead of them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fidelia.kit.clock import utcnow
from fidelia.models.base import Base, uuid_pk
from fidelia.models.member import Member

_SCORE = Numeric(16, 2)


class ReferralCode(Base):
    """A member's referral code (created the first time it is asked for)."""

    __tablename__ = "referral_codes"
    __table_args__ = (UniqueConstraint("programme_id", "code"),)

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Referral(Base):
    """A referee's enrolment with a referrer's code: the link, or its refusal and why.

    ``status``: ``enrolled`` (link recorded), ``qualified`` (first qualifying purchase made,
    rewards given), ``reversed`` (that purchase returned, rewards taken back) or ``refused``
    (``reason`` says which fraud guard refused it). One row per referee: one referrer each.
    """

    __tablename__ = "referrals"
    __table_args__ = (
        UniqueConstraint("programme_id", "referee_id"),
        Index("ix_referrals_referrer", "programme_id", "referrer_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    referrer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    referee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    # Declared so that a flush writes the member enrolled in the batch before this row.
    referee: Mapped[Member] = relationship(lazy="raise", foreign_keys=[referee_id])
    code: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    enrolled_at: Mapped[datetime]
    qualified_at: Mapped[datetime | None]
    order_id: Mapped[str | None] = mapped_column(String(100))
    event_id: Mapped[uuid.UUID | None]  # the qualifying purchase
    referrer_rewarded: Mapped[bool] = mapped_column(default=False)
    rewards: Mapped[dict[str, Any]] = mapped_column(default=dict)


class LeaderboardScore(Base):
    """A member's score on one board for one period (and store, for boards by store)."""

    __tablename__ = "leaderboard_scores"
    __table_args__ = (
        Index(
            "ix_leaderboard_scores_rank",
            "programme_id",
            "board",
            "period",
            "scope",
            "visible",
            "rank_score",
            "reached_at",
            "member_id",
        ),
        Index("ix_leaderboard_scores_member", "member_id"),
    )

    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), primary_key=True
    )
    board: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)  # store code, or ""
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    score: Mapped[Decimal] = mapped_column(_SCORE)
    rank_score: Mapped[Decimal] = mapped_column(_SCORE)  # -score: the index ascends
    reached_at: Mapped[datetime]  # when the score was last raised: ties go to the first
    visible: Mapped[bool]  # the member opted in to the leaderboards


class LeaderboardCount(Base):
    """How many visible members hold each score on a board's period and scope.

    A rank is the sum of the counts above the member's score (one short index range: one
    row per distinct score) plus the members tied with them who got there first, so it does
    not cost a COUNT over everyone above. Moved by the same batch that moves the scores."""

    __tablename__ = "leaderboard_counts"

    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), primary_key=True
    )
    board: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    rank_score: Mapped[Decimal] = mapped_column(_SCORE, primary_key=True)
    members: Mapped[int]


class LeaderboardMember(Base):
    """A member's leaderboard choice: opted in or not, under which name."""

    __tablename__ = "leaderboard_members"

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    opted_in: Mapped[bool]
    display_name: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LeaderboardPayout(Base):
    """The end-of-period rewards of one board's period and scope: written once, before paying."""

    __tablename__ = "leaderboard_payouts"
    __table_args__ = (UniqueConstraint("programme_id", "board", "period", "scope"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    board: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(64))
    paid_at: Mapped[datetime]
    winners: Mapped[list[Any]]


class MemberStreak(Base):
    """A member's run of consecutive periods with a qualifying event, for one streak."""

    __tablename__ = "member_streaks"

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    streak: Mapped[str] = mapped_column(String(64), primary_key=True)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    current: Mapped[int]
    best: Mapped[int]
    started: Mapped[int]  # the period index the current run started in
    last: Mapped[int]  # the last period index with a qualifying event
    freezes_used: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StoreCheckIn(Base):
    """An accepted store check-in: at most one per member, store and local day."""

    __tablename__ = "store_check_ins"
    __table_args__ = (UniqueConstraint("programme_id", "member_id", "store", "day"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    member: Mapped[Member] = relationship(lazy="raise")
    store: Mapped[str] = mapped_column(String(64))
    day: Mapped[str] = mapped_column(String(10))  # local date, ISO
    event_id: Mapped[uuid.UUID]
    distance_m: Mapped[int]
    checked_in_at: Mapped[datetime]
