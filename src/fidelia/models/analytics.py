"""Analytics tables: anonymous purchases and the KPI aggregates (issue 15).

``anonymous_purchases`` holds the purchases of customers who are not members (no member, no
points, no rules): they exist so that members vs non-members figures are real. The
``analytics_*`` tables are aggregates of the event log and of these purchases, rebuilt
incrementally by :func:`fidelia.analytics.aggregates.refresh`; they are never the source of
truth, so dropping them loses nothing. Money is in cents (integers), exact on both databases.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.kit.clock import utcnow
from fidelia.models.base import Base, BigInt, uuid_pk


class AnonymousPurchase(Base):
    """A purchase by a customer who is not a member, as sent to the intake. Append-only."""

    __tablename__ = "anonymous_purchases"
    __table_args__ = (
        UniqueConstraint("programme_id", "idempotency_key"),
        UniqueConstraint("programme_id", "order_id"),
        Index("ix_anonymous_purchases_programme_id_received_at", "programme_id", "received_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    channel: Mapped[str | None] = mapped_column(String(16))
    store: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(String(100))
    total_cents: Mapped[int] = mapped_column(BigInt)
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)


class DailySales(Base):
    """Orders and sales of one programme per UTC day, store, channel, member or not."""

    __tablename__ = "analytics_daily_sales"

    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    store: Mapped[str] = mapped_column(String(64), primary_key=True)  # "" when none
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)  # "" when none
    member: Mapped[bool] = mapped_column(primary_key=True)
    orders: Mapped[int] = mapped_column(BigInt)
    sales_cents: Mapped[int] = mapped_column(BigInt)
    # return events (members only) and their refund_total in cents, on the day of the return
    returns: Mapped[int] = mapped_column(BigInt, server_default="0")
    refund_cents: Mapped[int] = mapped_column(BigInt, server_default="0")


class MemberMonth(Base):
    """One member's purchases in one UTC month (first day of the month)."""

    __tablename__ = "analytics_member_months"
    __table_args__ = (
        Index("ix_analytics_member_months_programme_id_month", "programme_id", "month"),
    )

    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    orders: Mapped[int] = mapped_column(BigInt)
    sales_cents: Mapped[int] = mapped_column(BigInt)


class AnalyticsState(Base):
    """Up to which ``received_at`` the aggregates of a programme include events (a watermark),
    and the row that serialises refreshes (locked ``FOR UPDATE``)."""

    __tablename__ = "analytics_state"

    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), primary_key=True
    )
    refreshed_to: Mapped[datetime | None]
    refreshed_at: Mapped[datetime | None]
    # the month of bit 0 of ``MemberActivity.months`` (migration 0024)
    mask_base: Mapped[date | None] = mapped_column(Date)
    # up to which ``posted_at`` the daily ledger aggregate includes postings (migration 0029)
    ledger_to: Mapped[datetime | None]


class MemberActivity(Base):
    """One row per member with a purchase: bitmaps of the months (from ``AnalyticsState.
    mask_base``, bit ``i`` = ``i`` months later, 62 months) with a purchase (``months``) and
    with two or more (``multi``), and the first purchase at or after enrolment
    (``activated_at``), so that buying and repeat members of whole months and activation are
    one scan of one row per member (migration 0024)."""

    __tablename__ = "analytics_member_activity"
    __table_args__ = (
        Index("ix_analytics_member_activity_programme_id_enrolled_at", "programme_id",
              "enrolled_at"),
    )  # fmt: skip

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    enrolled_at: Mapped[datetime]
    activated_at: Mapped[datetime | None]
    months: Mapped[int] = mapped_column(BigInt)
    multi: Mapped[int] = mapped_column(BigInt)
