"""The daily ledger aggregate of the points economy KPIs (issue 15, migration 0029).

``analytics_ledger_daily`` sums the ledger's entries on member accounts per programme, UTC day
of the transaction's ``occurred_at`` (which is every entry's ``effective_at``), wallet,
transaction kind and rule: the points issued, redeemed, expired... of any period are a sum of
its days' rows, and the outstanding balance at a day's end (the liability) the sum of every row
up to that day, the same sum as the ledger's as-of balances. Rebuilt incrementally by
:func:`fidelia.analytics.ledger_daily.refresh`; never the source of truth.
"""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.models.base import Base, BigInt
from fidelia.models.ledger import LedgerTransaction


class LedgerDay(Base):
    """Member-account entries of one programme, UTC day, wallet, kind and rule."""

    __tablename__ = "analytics_ledger_daily"

    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    wallet_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_wallets.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(100), primary_key=True)  # "" when none
    transactions: Mapped[int] = mapped_column(BigInt)  # transactions touching a member account
    amount: Mapped[int] = mapped_column(BigInt)  # their member entries, available and pending
    pending: Mapped[int] = mapped_column(BigInt)  # of which in the pending bucket


# The refresh's two indexes on the ledger (migration 0029), declared here with the table they
# serve rather than in the ledger's model: what was posted since the watermark, and the
# transactions of the days to recompute.
Index(
    "ix_ledger_transactions_programme_id_posted_at",
    LedgerTransaction.programme_id,
    LedgerTransaction.posted_at,
)
Index(
    "ix_ledger_transactions_programme_id_occurred_at",
    LedgerTransaction.programme_id,
    LedgerTransaction.occurred_at,
)
