"""Reading the ledger: balances, history, balance as of an instant, one transaction.

Design note
-----------
Current balances come from the cached columns of the member account (maintained by the posting
function); a balance as of an instant is the sum of the account's entries effective at or
before it (``effective_at`` is the transaction's ``occurred_at``: an expiry is effective at the
lot's expiry even when the job ran later). History is one row per transaction, newest first,
paginated by transaction id (UUIDv7, so in posting order).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from fidelia.errors import NotFound, ValidationFailed
from fidelia.kit.pagination import decode_cursor, encode_cursor
from fidelia.models import Account, Entry, LedgerTransaction, Wallet


@dataclass(frozen=True)
class HistoryRow:
    """A transaction as it changed one account: available and pending deltas (minor units)."""

    transaction: LedgerTransaction
    available: int
    pending: int


_AVAILABLE = func.sum(case((Entry.pending.is_(False), Entry.amount), else_=0))
_PENDING = func.sum(case((Entry.pending.is_(True), Entry.amount), else_=0))


def balance_as_of(session: Session, *, account: Account, as_of: datetime) -> tuple[int, int]:
    """``(available, pending)`` of ``account`` from its entries effective at or before
    ``as_of``."""
    row = session.execute(
        select(_AVAILABLE, _PENDING).where(
            Entry.account_id == account.id, Entry.effective_at <= as_of
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0)


def history(
    session: Session, *, account: Account, cursor: str | None = None, limit: int = 50
) -> tuple[list[HistoryRow], str | None]:
    """The account's transactions, newest first, one page after ``cursor``."""
    query = (
        select(Entry.transaction_id, _AVAILABLE, _PENDING)
        .where(Entry.account_id == account.id)
        .group_by(Entry.transaction_id)
        .order_by(Entry.transaction_id.desc())
        .limit(limit + 1)
    )
    if cursor:
        try:
            (before,) = decode_cursor(cursor)
            query = query.where(Entry.transaction_id < uuid.UUID(before))
        except ValueError as exc:
            raise ValidationFailed.on(("query", "cursor"), "not a cursor this API gave") from exc
    rows = session.execute(query).all()
    page = rows[:limit]
    txns = {
        t.id: t
        for t in session.scalars(
            select(LedgerTransaction).where(LedgerTransaction.id.in_([r[0] for r in page]))
        )
    }
    items = [HistoryRow(txns[r[0]], int(r[1] or 0), int(r[2] or 0)) for r in page]
    next_cursor = encode_cursor([str(page[-1][0])]) if len(rows) > limit else None
    return items, next_cursor


def transaction_with_entries(
    session: Session, *, programme_id: uuid.UUID, transaction_id: uuid.UUID
) -> tuple[LedgerTransaction, Wallet, list[tuple[Entry, Account]]]:
    """One transaction, its wallet and its entries with their accounts."""
    txn = session.get(LedgerTransaction, transaction_id)
    if txn is None or txn.programme_id != programme_id:
        raise NotFound(f"ledger transaction {transaction_id} does not exist")
    wallet = session.get(Wallet, txn.wallet_id)
    assert wallet is not None
    rows = session.execute(
        select(Entry, Account)
        .join(Account, Account.id == Entry.account_id)
        .where(Entry.transaction_id == txn.id)
        .order_by(Entry.id)
    )
    return txn, wallet, [(e, a) for e, a in rows]
