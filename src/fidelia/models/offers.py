"""Offer tables: who was offered what (targets), each use of an offer, and first-N counters.

Offers themselves are declared in the programme document (``offers`` section); these tables
hold what happened to them: ``offer_targets`` is one row per member an offer was given to
(by hand, a list, a segment, or a first-N slot), with its own validity and use count;
``offer_uses`` records each use with the revenue it came with (the conversion measure);
``offer_counters`` counts the slots a first-N offer gave, one row per offer, locked only by
an enrolment the offer applies to.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fidelia.models.base import Base, created_at, uuid_pk
from fidelia.models.ledger import DecimalText
from fidelia.models.member import Member


class OfferTarget(Base):
    """An offer given to one member: from when, until when, how many times used."""

    __tablename__ = "offer_targets"
    __table_args__ = (
        Index("uq_offer_targets_member", "programme_id", "offer", "member_id", unique=True),
        Index("ix_offer_targets_member_id", "member_id"),
        CheckConstraint("uses >= 0", name="uses_not_negative"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    offer: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    # Declared so that a flush writes the member before the rows that point at it.
    member: Mapped[Member] = relationship(lazy="raise")
    source: Mapped[str] = mapped_column(String(16))  # member | list | segment | first_n
    given_at: Mapped[datetime]
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime | None]
    uses: Mapped[int] = mapped_column(default=0)
    revenue: Mapped[Decimal] = mapped_column(DecimalText(), default=Decimal(0))
    voucher_id: Mapped[uuid.UUID | None]
    slot: Mapped[int | None]  # the first-N slot it took (1..N)
    actor: Mapped[str | None] = mapped_column(String(200))
    last_used_at: Mapped[datetime | None]


class OfferUse(Base):
    """One use of an offer by its member: a boosted purchase, a voucher used at the till, or
    points credited; ``revenue`` is the basket it came with (zero when there is none)."""

    __tablename__ = "offer_uses"
    __table_args__ = (
        Index("uq_offer_uses_target_ref", "target_id", "ref", unique=True),
        Index("ix_offer_uses_programme_offer", "programme_id", "offer"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    offer: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("offer_targets.id", ondelete="CASCADE"))
    # Declared so that a flush writes the target before its uses.
    target: Mapped[OfferTarget] = relationship(lazy="raise")
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    ref: Mapped[str] = mapped_column(String(200))  # the event id or the order id
    revenue: Mapped[Decimal] = mapped_column(DecimalText(), default=Decimal(0))
    used_at: Mapped[datetime]


class OfferCounter(Base):
    """How many slots of a first-N offer were given."""

    __tablename__ = "offer_counters"
    __table_args__ = (CheckConstraint("claimed >= 0", name="claimed_not_negative"),)

    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), primary_key=True
    )
    offer: Mapped[str] = mapped_column(String(64), primary_key=True)
    claimed: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = created_at()
