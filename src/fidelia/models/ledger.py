"""Ledger tables: wallets, accounts, transactions, entries, lots and lot reversals.

Amounts are integers in the wallet's minor unit (1 point, or 1 cent for a EUR wallet), so sums
are exact on SQLite and PostgreSQL alike. ``ledger_transactions``, ``ledger_entries`` and
``lot_reversals`` are append-only (database triggers); ``ledger_accounts`` and ``ledger_lots``
carry caches (balances, remaining) maintained by the posting function in the same transaction
and re-derived by ``fidelia ledger verify``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, Dialect, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from fidelia.kit.clock import utcnow
from fidelia.models.base import Base, BigInt, created_at, uuid_pk


class DecimalText(TypeDecorator[Decimal]):
    """An exact decimal stored as text (SQLite has no exact numeric type)."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class Wallet(Base):
    """A kind of value a programme gives: points, cashback, status points...

    ``scale`` is the number of decimal places of one unit (0 for points, 2 for EUR cashback);
    amounts are stored as integers of 10**-scale units.
    """

    __tablename__ = "ledger_wallets"
    __table_args__ = (
        Index("uq_ledger_wallets_programme_id_code", "programme_id", "code", unique=True),
        CheckConstraint("unit IN ('points', 'money')", name="unit"),
        CheckConstraint("scale >= 0 AND scale <= 6", name="scale"),
        CheckConstraint("debt_policy IN ('allow_debt', 'clamp')", name="debt_policy"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(8))
    scale: Mapped[int] = mapped_column(default=0)
    unit_value: Mapped[Decimal] = mapped_column(DecimalText(), default=Decimal(0))
    spendable: Mapped[bool] = mapped_column(default=True)
    debt_policy: Mapped[str] = mapped_column(String(16), default="clamp")
    expiry_policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    pending_policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Account(Base):
    """A member's balance in one wallet, or a programme system account (``member_id`` null).

    Only member accounts carry cached balances: system accounts (issued, redeemed, expired...)
    are touched by every posting of the programme, so caching on them would serialise all
    writers; their balances are sums over entries.
    """

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        Index(
            "uq_ledger_accounts_member",
            "wallet_id",
            "member_id",
            unique=True,
            sqlite_where=text("member_id IS NOT NULL"),
            postgresql_where=text("member_id IS NOT NULL"),
        ),
        Index(
            "uq_ledger_accounts_system",
            "wallet_id",
            "kind",
            unique=True,
            sqlite_where=text("member_id IS NULL"),
            postgresql_where=text("member_id IS NULL"),
        ),
        CheckConstraint(
            "member_id IS NULL OR allows_debt OR available >= 0", name="available_not_negative"
        ),
        CheckConstraint("pending >= 0", name="pending_not_negative"),
        CheckConstraint(
            "(member_id IS NULL) = (kind <> 'member')",
            name="kind",
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    wallet_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_wallets.id", ondelete="CASCADE")
    )
    member_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    allows_debt: Mapped[bool] = mapped_column(default=False)
    available: Mapped[int] = mapped_column(BigInt, default=0)
    pending: Mapped[int] = mapped_column(BigInt, default=0)
    lifetime_earned: Mapped[int] = mapped_column(BigInt, default=0)
    lifetime_spent: Mapped[int] = mapped_column(BigInt, default=0)
    lifetime_expired: Mapped[int] = mapped_column(BigInt, default=0)
    created_at: Mapped[datetime] = created_at()


class LedgerTransaction(Base):
    """One posting: a set of entries summing to zero, in one wallet. Append-only."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (
        Index(
            "uq_ledger_transactions_programme_id_key",
            "programme_id",
            "idempotency_key",
            unique=True,
        ),
        # A transaction is reversed at most once.
        Index(
            "uq_ledger_transactions_reverses_id",
            "reverses_id",
            unique=True,
            sqlite_where=text("kind = 'reverse'"),
            postgresql_where=text("kind = 'reverse'"),
        ),
        Index("ix_ledger_transactions_source", "programme_id", "source_type", "source_id"),
        Index("ix_ledger_transactions_member_id", "member_id"),
        CheckConstraint(
            "kind IN ('earn', 'spend', 'expire', 'release', 'adjust', 'transfer', 'reverse', "
            "'return')",
            name="kind",
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    wallet_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_wallets.id", ondelete="CASCADE")
    )
    member_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    source_type: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str | None] = mapped_column(String(200))
    rule_id: Mapped[str | None] = mapped_column(String(100))
    rule_version: Mapped[int | None]
    actor: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_transactions.id", ondelete="CASCADE")
    )
    occurred_at: Mapped[datetime]
    posted_at: Mapped[datetime] = mapped_column(default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Lot(Base):
    """Value credited by one earn (or adjustment, transfer), consumed soonest-expiring first.

    ``remaining`` and ``pending`` are caches of the sums of the lot's entries (all buckets;
    pending bucket). A lot is pending while ``pending > 0``.
    """

    __tablename__ = "ledger_lots"
    __table_args__ = (
        Index("ix_ledger_lots_account_id_expires_at", "account_id", "expires_at"),
        Index("ix_ledger_lots_programme_id_expires_at", "programme_id", "expires_at"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_bounds"),
        CheckConstraint("pending >= 0 AND pending <= remaining", name="pending_bounds"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    wallet_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_wallets.id", ondelete="CASCADE")
    )
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_accounts.id", ondelete="CASCADE")
    )
    transaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_transactions.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[int] = mapped_column(BigInt)
    remaining: Mapped[int] = mapped_column(BigInt)
    pending: Mapped[int] = mapped_column(BigInt, default=0)
    available_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()


class Entry(Base):
    """One signed amount on one account (and lot), in the available or the pending bucket."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_account_id_effective_at", "account_id", "effective_at"),
        Index("ix_ledger_entries_account_id_transaction_id", "account_id", "transaction_id"),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    transaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_transactions.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_accounts.id", ondelete="CASCADE")
    )
    lot_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_lots.id", ondelete="CASCADE"), index=True
    )
    pending: Mapped[bool] = mapped_column(default=False)
    amount: Mapped[int] = mapped_column(BigInt)
    effective_at: Mapped[datetime]


class LotReversal(Base):
    """How much of a lot's award a return or reversal took back (recovered or not)."""

    __tablename__ = "ledger_lot_reversals"

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    transaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_transactions.id", ondelete="CASCADE"), index=True
    )
    lot_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_lots.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[int] = mapped_column(BigInt)
    unrecovered: Mapped[int] = mapped_column(BigInt, default=0)
