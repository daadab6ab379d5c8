"""Verification: re-derive every cached balance and lot from the journal.

Design note
-----------
The journal (transactions and entries) is the truth; account balances, lifetime counters and
lot ``remaining``/``pending`` are caches. :func:`verify` recomputes all of them with grouped
queries (it scales with the size of the ledger, not with round trips) and reports every
difference, plus the rules no cache can express: each transaction sums to zero in one wallet,
lot-less (debt) value is never positive, debt only where the wallet allows it and only when
the member has no available lot left.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, aliased

from fidelia.models import Account, Entry, LedgerTransaction, Lot

COUNTER_SIGNS = {"earn": ("earned", 1), "return": ("earned", 1), "spend": ("spent", -1)}
COUNTER_SIGNS["expire"] = ("expired", -1)


@dataclass(frozen=True)
class Discrepancy:
    """One thing that does not add up."""

    check: str
    subject: str
    detail: str


@dataclass
class Report:
    """What :func:`verify` looked at and what it found."""

    transactions: int = 0
    accounts: int = 0
    lots: int = 0
    problems: list[Discrepancy] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def add(self, check: str, subject: Any, detail: str) -> None:
        """Record a discrepancy."""
        self.problems.append(Discrepancy(check, str(subject), detail))


def verify(session: Session, *, programme_id: uuid.UUID | None = None) -> Report:
    """Check the whole ledger (or one programme's) and return the report."""
    report = Report()
    _transactions(session, programme_id, report)
    _accounts(session, programme_id, report)
    _lots(session, programme_id, report)
    return report


def _where(model: Any, programme_id: uuid.UUID | None) -> list[Any]:
    return [] if programme_id is None else [model.programme_id == programme_id]


def _transactions(session: Session, programme_id: uuid.UUID | None, report: Report) -> None:
    report.transactions = (
        session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(*_where(LedgerTransaction, programme_id))
        )
        or 0
    )
    sums = (
        select(
            LedgerTransaction.id,
            func.coalesce(func.sum(Entry.amount), 0),
            func.count(Entry.id),
            func.sum(case((Account.wallet_id != LedgerTransaction.wallet_id, 1), else_=0)),
        )
        .outerjoin(Entry, Entry.transaction_id == LedgerTransaction.id)
        .outerjoin(Account, Account.id == Entry.account_id)
        .where(*_where(LedgerTransaction, programme_id))
        .group_by(LedgerTransaction.id)
    )
    for txn_id, total, count, foreign in session.execute(sums):
        if total != 0:
            report.add("zero_sum", txn_id, f"entries sum to {total}")
        if count < 2:
            report.add("zero_sum", txn_id, f"{count} entries (a posting needs two or more)")
        if foreign:
            report.add("one_wallet", txn_id, f"{foreign} entries on accounts of another wallet")


def _accounts(session: Session, programme_id: uuid.UUID | None, report: Report) -> None:
    derived = _derived_balances(session, programme_id)
    lotless = _lotless(session, programme_id)
    lots = _available_lots(session, programme_id)
    query = select(Account).where(Account.member_id.is_not(None), *_where(Account, programme_id))
    for account in session.scalars(query):
        report.accounts += 1
        want = derived.get(account.id, {})
        for column in ("available", "pending", "earned", "spent", "expired"):
            cached = getattr(
                account, column if column in ("available", "pending") else f"lifetime_{column}"
            )
            if cached != want.get(column, 0):
                report.add(
                    "balance",
                    account.id,
                    f"{column}: cached {cached}, entries say {want.get(column, 0)}",
                )
        debt = lotless.get(account.id, 0)
        if debt > 0:
            report.add("debt", account.id, f"lot-less value is positive ({debt})")
        if debt < 0 and not account.allows_debt:
            report.add("debt", account.id, f"debt of {-debt} but the wallet does not allow debt")
        if debt < 0 and lots.get(account.id, 0) > 0:
            report.add("debt", account.id, "debt while available lots remain")
        if account.available < 0 and not account.allows_debt:
            report.add("balance", account.id, f"negative available balance {account.available}")


def _derived_balances(
    session: Session, programme_id: uuid.UUID | None
) -> dict[uuid.UUID, dict[str, int]]:
    original = aliased(LedgerTransaction)
    rows = session.execute(
        select(
            Entry.account_id,
            Entry.pending,
            LedgerTransaction.kind,
            original.kind,
            func.sum(Entry.amount),
        )
        .join(LedgerTransaction, LedgerTransaction.id == Entry.transaction_id)
        .outerjoin(original, original.id == LedgerTransaction.reverses_id)
        .where(*_where(Entry, programme_id))
        .group_by(Entry.account_id, Entry.pending, LedgerTransaction.kind, original.kind)
    )
    out: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for account_id, pending, kind, original_kind, total in rows:
        out[account_id]["pending" if pending else "available"] += int(total)
        counter = COUNTER_SIGNS.get(original_kind if kind == "reverse" else kind)
        if counter is not None:
            out[account_id][counter[0]] += counter[1] * int(total)
    return out


def _lotless(session: Session, programme_id: uuid.UUID | None) -> dict[uuid.UUID, int]:
    rows = session.execute(
        select(Entry.account_id, func.sum(Entry.amount))
        .where(Entry.lot_id.is_(None), Entry.pending.is_(False), *_where(Entry, programme_id))
        .join(Account, Account.id == Entry.account_id)
        .where(Account.member_id.is_not(None))
        .group_by(Entry.account_id)
    )
    return {account_id: int(total) for account_id, total in rows}


def _available_lots(session: Session, programme_id: uuid.UUID | None) -> dict[uuid.UUID, int]:
    rows = session.execute(
        select(Lot.account_id, func.sum(Lot.remaining - Lot.pending))
        .where(*_where(Lot, programme_id))
        .group_by(Lot.account_id)
    )
    return {account_id: int(total or 0) for account_id, total in rows}


def _lots(session: Session, programme_id: uuid.UUID | None, report: Report) -> None:
    opening = case(
        (
            Entry.transaction_id == Lot.transaction_id,
            case((Entry.amount > 0, Entry.amount), else_=0),
        ),
        else_=0,
    )
    rows = session.execute(
        select(
            Lot,
            func.coalesce(func.sum(Entry.amount), 0),
            func.coalesce(func.sum(case((Entry.pending.is_(True), Entry.amount), else_=0)), 0),
            func.coalesce(func.sum(opening), 0),
            func.sum(case((Entry.account_id != Lot.account_id, 1), else_=0)),
        )
        .outerjoin(Entry, Entry.lot_id == Lot.id)
        .where(*_where(Lot, programme_id))
        .group_by(Lot.id)
    )
    for lot, remaining, pending, opened, foreign in rows:
        report.lots += 1
        if (lot.remaining, lot.pending, lot.amount) != (remaining, pending, opened):
            report.add(
                "lot",
                lot.id,
                f"cached amount/remaining/pending {lot.amount}/{lot.remaining}/{lot.pending}, "
                f"entries say {opened}/{remaining}/{pending}",
            )
        if foreign:
            report.add("lot", lot.id, f"{foreign} entries of another account")
        if not 0 <= lot.pending <= lot.remaining <= lot.amount:
            report.add("lot", lot.id, "remaining or pending out of bounds")
