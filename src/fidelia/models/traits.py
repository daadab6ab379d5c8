"""Computed traits: one row per member with what their behaviour says about them.

The scalar traits are typed columns (segments compile conditions on them, see
``fidelia.traits.fields``); windowed figures and affinities are JSON. The row is kept current by
the intake (``fidelia.traits.service.apply_events``, in the event's own transaction) and
recomputed in bulk by ``fidelia traits rebuild`` and the daily job; both give the same row.

Shapes of the JSON columns (money as decimal strings, as in ``member_tiers.metrics``):

- ``windows``: ``{"30": {"purchases": 2, "spend": "41.80"}, "90": {...}}``: frequency and
  monetary value per declared window (days, UTC), exact as of ``windows_on``.
- ``days``: ``{"2026-06-12": [purchases, "spend"]}``: purchases per UTC day within the longest
  window, from which ``windows`` is recomputed as days go by.
- ``purchase_times``: sorted epoch seconds of every purchase (intervals and their median).
- ``affinities``: ``{"category": {"music": [purchases, "spend"]}, "brand": {...},
  "<declared attribute>": {...}}``; shares are these over ``purchases_count``/``spend_total``.
- ``channels`` and ``stores``: purchases per channel and per store.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Index, Numeric, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.kit.clock import utcnow
from fidelia.models.base import Base

MONEY = Numeric(14, 2)


class MemberTraits(Base):
    """A member's computed traits (one row per member who has had any event)."""

    __tablename__ = "member_traits"
    __table_args__ = (
        Index("ix_member_traits_programme_id_rfm_cell", "programme_id", "rfm_cell"),
        Index("ix_member_traits_programme_id_lifecycle_stage", "programme_id", "lifecycle_stage"),
        Index("ix_member_traits_programme_id_last_purchase_at", "programme_id", "last_purchase_at"),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    first_purchase_at: Mapped[datetime | None]
    last_purchase_at: Mapped[datetime | None]
    purchases_count: Mapped[int] = mapped_column(default=0)
    spend_total: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    average_basket: Mapped[Decimal | None] = mapped_column(MONEY)
    interval_mean_days: Mapped[float | None] = mapped_column(Float)
    interval_median_days: Mapped[float | None] = mapped_column(Float)
    last_interval_days: Mapped[float | None] = mapped_column(Float)
    expected_next_purchase_at: Mapped[datetime | None]
    rfm_r: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_f: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_m: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_cell: Mapped[str | None] = mapped_column(String(64))
    lifecycle_stage: Mapped[str | None] = mapped_column(String(64))
    promo_purchases: Mapped[int] = mapped_column(default=0)
    promo_spend: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    promo_purchases_share: Mapped[float | None] = mapped_column(Float)
    promo_spend_share: Mapped[float | None] = mapped_column(Float)
    favourite_store: Mapped[str | None] = mapped_column(String(64))
    favourite_channel: Mapped[str | None] = mapped_column(String(16))
    last_redemption_at: Mapped[datetime | None]
    # BG/NBD + Gamma-Gamma (fidelia.analytics.clv_service), refreshed by the analytics.clv job
    p_alive: Mapped[float | None] = mapped_column(Float)
    clv: Mapped[Decimal | None] = mapped_column(MONEY)
    churn_risk: Mapped[str | None] = mapped_column(String(16))
    windows: Mapped[dict[str, Any]] = mapped_column(default=dict)
    windows_on: Mapped[date | None] = mapped_column(Date)
    days: Mapped[dict[str, Any]] = mapped_column(default=dict)
    purchase_times: Mapped[list[Any]] = mapped_column(default=list)
    affinities: Mapped[dict[str, Any]] = mapped_column(default=dict)
    channels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
