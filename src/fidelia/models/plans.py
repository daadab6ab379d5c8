"""Paid membership and till payment tables.

Plans are declared in the programme document (``plans`` section). ``subscriptions`` holds a
member's subscription to one of them and its lifecycle state (at most one live subscription
per member: a partial UNIQUE index); ``subscription_changes`` is the append-only history of
its states and what caused each (an operator, a payment event, the calendar);
``payment_events`` stores each webhook delivery from a payment provider once (UNIQUE on the
provider's event id), whatever it did; ``payment_endpoints`` holds each provider's webhook
secret. ``till_payments`` records the cashback or points a member paid an order with, one row
per order and wallet, and how much of it a return gave back.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fidelia.kit.clock import utcnow
from fidelia.models.base import Base, BigInt, created_at, uuid_pk
from fidelia.models.ledger import DecimalText
from fidelia.models.member import Member

LIVE = "status IN ('trialing', 'active', 'past_due')"


class Subscription(Base):
    """A member's subscription to a plan of the programme document."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        Index(
            "uq_subscriptions_live_member",
            "programme_id",
            "member_id",
            unique=True,
            sqlite_where=text(LIVE),
            postgresql_where=text(LIVE),
        ),
        Index(
            "uq_subscriptions_provider_ref",
            "programme_id",
            "provider_ref",
            unique=True,
            sqlite_where=text("provider_ref IS NOT NULL"),
            postgresql_where=text("provider_ref IS NOT NULL"),
        ),
        Index("ix_subscriptions_member_id", "member_id"),
        CheckConstraint(
            "status IN ('trialing', 'active', 'past_due', 'cancelled', 'expired')", name="status"
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    # Declared so that a flush writes the member before the rows that point at it.
    member: Mapped[Member] = relationship(lazy="raise")
    plan: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    provider_ref: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime]
    trial_ends_at: Mapped[datetime | None]
    period_end: Mapped[datetime]
    grace_until: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SubscriptionChange(Base):
    """One state change of a subscription. Never changed."""

    __tablename__ = "subscription_changes"
    __table_args__ = (Index("ix_subscription_changes_sub", "subscription_id", "at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE")
    )
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    cause: Mapped[str] = mapped_column(String(16))  # operator | payment | schedule
    payment_event_id: Mapped[uuid.UUID | None]
    actor: Mapped[str | None] = mapped_column(String(200))
    period_end: Mapped[datetime | None]


class PaymentEndpoint(Base):
    """A payment provider's webhook: its id is in the URL, its secret signs the deliveries."""

    __tablename__ = "payment_endpoints"

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = created_at()
    revoked_at: Mapped[datetime | None]


class PaymentEvent(Base):
    """One webhook delivery of a payment provider, stored once by the provider's event id."""

    __tablename__ = "payment_events"
    __table_args__ = (
        Index("uq_payment_events_provider_event", "endpoint_id", "provider_event_id", unique=True),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("payment_endpoints.id", ondelete="CASCADE")
    )
    provider_event_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    subscription_id: Mapped[uuid.UUID | None]
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = created_at()


class TillPayment(Base):
    """Cashback or points a member paid one order with, and how much a return gave back."""

    __tablename__ = "till_payments"
    __table_args__ = (
        Index("uq_till_payments_order", "programme_id", "order_id", "wallet", unique=True),
        CheckConstraint("refunded >= 0 AND refunded <= amount", name="refunded_bounds"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    order_id: Mapped[str] = mapped_column(String(100))
    wallet: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInt)  # minor units of the wallet
    value: Mapped[Decimal] = mapped_column(DecimalText())  # in the programme currency
    order_total: Mapped[Decimal] = mapped_column(DecimalText())
    transaction_id: Mapped[uuid.UUID]
    refunded: Mapped[int] = mapped_column(BigInt, default=0)
    status: Mapped[str] = mapped_column(String(16), default="used")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
