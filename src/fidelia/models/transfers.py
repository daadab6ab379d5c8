"""Points given by one member to another (issue 16).

One row per transfer, written in the transaction of its ``transfer`` ledger posting: who gave,
who received, how much (minor units of the wallet), through which channel and under which
reference (the caller's idempotency key). The monthly limits of the programme's ``transfers``
section are sums over these rows; the ledger keeps the value itself.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.models.base import Base, BigInt, created_at, uuid_pk


class PointTransfer(Base):
    __tablename__ = "point_transfers"
    __table_args__ = (
        Index(
            "uq_point_transfers_sender_reference",
            "programme_id",
            "sender_id",
            "reference",
            unique=True,
        ),
        Index("ix_point_transfers_sender", "programme_id", "sender_id", "created_at"),
        Index("ix_point_transfers_receiver", "programme_id", "receiver_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    wallet_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_wallets.id", ondelete="CASCADE")
    )
    sender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    receiver_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(BigInt)
    transaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_transactions.id", ondelete="CASCADE"), unique=True
    )
    reference: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = created_at()
