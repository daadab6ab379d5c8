"""Rewards tables: the catalogue, redemptions, voucher pools, vouchers and their uses.

Money definitions (a voucher's face value, a minimum basket) are exact decimals stored as text;
amounts that are summed (the value of redemptions, e.g. donation totals) are integers of the
programme currency's minor unit, so sums are exact on SQLite and PostgreSQL alike. Stock and
voucher uses are guarded by CHECK constraints; the reward row is the lock that serialises
redemptions of one reward.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.kit.clock import utcnow
from fidelia.models.base import Base, BigInt, created_at, uuid_pk
from fidelia.models.ledger import DecimalText

REWARD_KINDS = ("voucher", "product", "donation", "experience", "event", "early_access", "cashback")
REDEMPTION_STATUSES = ("requested", "issued", "used", "expired", "cancelled")
VOUCHER_STATUSES = ("available", "active", "used", "expired", "cancelled")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class VoucherPool(Base):
    """A family of voucher codes sharing one discount and validity (``WELCOME-XXXX-XXXX``)."""

    __tablename__ = "voucher_pools"
    __table_args__ = (
        UniqueConstraint("programme_id", "code"),
        CheckConstraint("discount_type IN ('amount', 'percent')", name="discount_type"),
        CheckConstraint("max_uses >= 1", name="max_uses"),
        CheckConstraint("validity_days IS NULL OR validity_days >= 1", name="validity_days"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    pattern: Mapped[str | None] = mapped_column(String(64))
    discount_type: Mapped[str] = mapped_column(String(8))
    discount_value: Mapped[Decimal] = mapped_column(DecimalText())
    min_basket: Mapped[Decimal | None] = mapped_column(DecimalText())
    categories: Mapped[list[Any]] = mapped_column(default=list)
    max_uses: Mapped[int] = mapped_column(default=1)
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    validity_days: Mapped[int | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Reward(Base):
    """One entry of the catalogue. ``stock`` None means unlimited."""

    __tablename__ = "rewards"
    __table_args__ = (
        UniqueConstraint("programme_id", "code"),
        CheckConstraint(_in("kind", REWARD_KINDS), name="kind"),
        CheckConstraint("cost_points > 0", name="cost_points"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
        CheckConstraint("limit_per_member IS NULL OR limit_per_member >= 1", name="limit"),
        CheckConstraint("first_n IS NULL OR first_n >= 1", name="first_n"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cost_points: Mapped[int]
    cost_by_tier: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stock: Mapped[int | None]
    available_from: Mapped[datetime | None]
    available_until: Mapped[datetime | None]
    eligible_tiers: Mapped[list[Any]] = mapped_column(default=list)
    condition: Mapped[dict[str, Any] | None]
    limit_per_member: Mapped[int | None]
    first_n: Mapped[int | None]
    featured: Mapped[bool] = mapped_column(default=False)
    visible: Mapped[bool] = mapped_column(default=True)
    archived: Mapped[bool] = mapped_column(default=False)
    pool_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("voucher_pools.id"))
    association: Mapped[str | None] = mapped_column(String(200))
    value: Mapped[Decimal | None] = mapped_column(DecimalText())
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Redemption(Base):
    """A member's redemption of a reward: points spent, then a voucher or a fulfilment."""

    __tablename__ = "redemptions"
    __table_args__ = (
        UniqueConstraint("programme_id", "idempotency_key"),
        Index("ix_redemptions_reward_id_member_id", "reward_id", "member_id"),
        Index("ix_redemptions_member_id_requested_at", "member_id", "requested_at"),
        Index("ix_redemptions_programme_id_association", "programme_id", "association"),
        CheckConstraint(_in("status", REDEMPTION_STATUSES), name="status"),
        CheckConstraint("points > 0", name="points"),
        CheckConstraint("quantity >= 1", name="quantity"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    reward_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rewards.id"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(default=1)
    points: Mapped[int]
    value_minor: Mapped[int | None] = mapped_column(BigInt)
    association: Mapped[str | None] = mapped_column(String(200))
    spend_transaction_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_transactions.id")
    )
    refund_transaction_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_transactions.id")
    )
    cashback_transaction_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_transactions.id")
    )
    fulfilment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requested_at: Mapped[datetime]
    issued_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Voucher(Base):
    """One code. ``member_id`` None: a bearer code anyone may use (or one still in stock)."""

    __tablename__ = "vouchers"
    __table_args__ = (
        UniqueConstraint("programme_id", "code"),
        UniqueConstraint("programme_id", "idempotency_key"),
        Index("ix_vouchers_pool_id_status_id", "pool_id", "status", "id"),
        Index("ix_vouchers_member_id", "member_id"),
        Index("ix_vouchers_redemption_id", "redemption_id"),
        CheckConstraint(_in("status", VOUCHER_STATUSES), name="status"),
        CheckConstraint("uses >= 0 AND uses <= max_uses", name="uses"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    pool_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("voucher_pools.id"))
    code: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE")
    )
    redemption_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("redemptions.id"))
    status: Mapped[str] = mapped_column(String(16))
    uses: Mapped[int] = mapped_column(default=0)
    max_uses: Mapped[int] = mapped_column(default=1)
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str | None] = mapped_column(String(200))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    issued_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class VoucherUse(Base):
    """One use of a voucher at the till, for one order (a retried redeem finds it)."""

    __tablename__ = "voucher_uses"
    __table_args__ = (UniqueConstraint("voucher_id", "order_id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    voucher_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vouchers.id", ondelete="CASCADE"))
    order_id: Mapped[str] = mapped_column(String(200))
    member_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL")
    )
    discount: Mapped[Decimal] = mapped_column(DecimalText())
    basket_total: Mapped[Decimal] = mapped_column(DecimalText())
    used_at: Mapped[datetime]
