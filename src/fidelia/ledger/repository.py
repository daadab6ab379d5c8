"""Ledger reads and row locks: accounts, lots in consumption order.

Design note
-----------
Every writer locks the member accounts it touches with ``SELECT ... FOR UPDATE`` in primary-key
order (no deadlock between a transfer A->B and B->A), and reads lots only after that lock, so
two spends of the same member serialise and the second sees what the first consumed. System
accounts are never locked: they carry no cached balance. On SQLite ``FOR UPDATE`` renders to
nothing and the single-writer lock (``BEGIN IMMEDIATE``) gives the same serialisation.
Every lock and read here first posts the awards the session deferred (:func:`flush_deferred`).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fidelia.errors import NotFound
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.kit.prepared import Prepared
from fidelia.ledger import followed
from fidelia.models import Account, Lot, Member, Programme, Wallet

SYSTEM_ACCOUNTS = ("issued", "redeemed", "expired", "adjusted", "unrecovered")
# session.info key of the flush of the session's deferred awards (operations.DeferredAwards)
DEFERRED = "fidelia.ledger.deferred"
# (wallet id, kind) -> account id; system accounts are immutable rows, safe to cache.
_system_ids: dict[tuple[uuid.UUID, str], uuid.UUID] = {}


def flush_deferred(session: Session) -> None:
    """Post the awards the session deferred (:class:`~fidelia.ledger.operations.DeferredAwards`)
    before something locks or reads the ledger, so that it sees them."""
    flush = session.info.get(DEFERRED)
    if flush is not None:
        flush()


def _insert_ignoring_conflicts(session: Session, rows: list[dict[str, object]]) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(Account).values(rows).on_conflict_do_nothing())


def system_account_id(session: Session, *, wallet: Wallet, kind: str) -> uuid.UUID:
    """The id of the wallet's system account ``kind`` (created on first use)."""
    key = (wallet.id, kind)
    if key not in _system_ids:
        query = select(Account.id).where(
            Account.wallet_id == wallet.id, Account.kind == kind, Account.member_id.is_(None)
        )
        found = session.scalar(query)
        if found is None:  # not cached: the row may vanish if this transaction rolls back
            create_system_accounts(session, wallet=wallet)
            created = session.scalar(query)
            assert created is not None
            return created
        _system_ids[key] = found
    return _system_ids[key]


def create_system_accounts(session: Session, *, wallet: Wallet) -> None:
    """Create the wallet's system accounts (issued, redeemed, ...) that do not exist yet."""
    rows = [
        {"id": uuid7(), "programme_id": wallet.programme_id, "wallet_id": wallet.id, **_zero(k)}
        for k in SYSTEM_ACCOUNTS
    ]
    _insert_ignoring_conflicts(session, rows)


def is_system_account(session: Session, *, wallet: Wallet, account_id: uuid.UUID) -> bool:
    """Whether ``account_id`` is one of the wallet's system accounts."""
    if any(_system_ids.get((wallet.id, k)) == account_id for k in SYSTEM_ACCOUNTS):
        return True
    account = session.get(Account, account_id)
    return account is not None and account.wallet_id == wallet.id and account.member_id is None


def _zero(kind: str, *, allows_debt: bool = True) -> dict[str, object]:
    return {
        "kind": kind,
        "allows_debt": allows_debt,
        "available": 0,
        "pending": 0,
        "lifetime_earned": 0,
        "lifetime_spent": 0,
        "lifetime_expired": 0,
        "created_at": utcnow(),
    }


def lock_member_accounts(
    session: Session, *, programme: Programme, wallet: Wallet, member_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Account]:
    """The members' accounts in ``wallet``, created if missing, locked in primary-key order.
    409 ``member_merged`` (naming the survivor) for a member merged into another."""
    flush_deferred(session)
    wanted = set(member_ids)
    followed.refuse_merged(session, member_ids=wanted)
    accounts = _select_locked(session, wallet, wanted)
    missing = wanted - accounts.keys()
    if missing:
        _check_members(session, programme, missing)
        debt = wallet.debt_policy == "allow_debt"
        rows = [
            {
                "id": uuid7(),
                "programme_id": programme.id,
                "wallet_id": wallet.id,
                "member_id": member_id,
                **_zero("member", allows_debt=debt),
            }
            for member_id in sorted(missing)
        ]
        _insert_ignoring_conflicts(session, rows)
        accounts = _select_locked(session, wallet, wanted)
    return accounts


def _select_locked(
    session: Session, wallet: Wallet, member_ids: set[uuid.UUID]
) -> dict[uuid.UUID, Account]:
    query = (
        select(Account)
        .where(Account.wallet_id == wallet.id, Account.member_id.in_(member_ids))
        .order_by(Account.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {a.member_id: a for a in session.scalars(query) if a.member_id is not None}


# What set-based postings read of a locked member account, in this order.
BALANCE_COLUMNS = (
    Account.id,
    Account.allows_debt,
    Account.available,
    Account.pending,
    Account.lifetime_earned,
    Account.lifetime_spent,
    Account.lifetime_expired,
)
_PAIRS_PER_QUERY = 2000  # (wallet, member) pairs: 4,000 parameters
# PostgreSQL: the accounts of (wallet, member) pairs given as two arrays, locked in primary-key
# order, compiled once (kit.prepared); planned as an index scan per pair on (wallet, member)
_LOCK_PAIRS_PG = Prepared(
    text(
        "SELECT a.wallet_id, a.member_id, a.id, a.allows_debt, a.available, a.pending, "
        "a.lifetime_earned, a.lifetime_spent, a.lifetime_expired FROM ledger_accounts AS a "
        "WHERE a.member_id IS NOT NULL AND (a.wallet_id, a.member_id) IN "
        "(SELECT * FROM unnest(CAST(:wallets AS uuid[]), CAST(:members AS uuid[]))) "
        "ORDER BY a.id FOR UPDATE OF a"
    )
)
# SQLite: the accounts of some members in some wallets, compiled once (kit.prepared)
_BALANCES_OF_MEMBERS = Prepared(
    select(Account.wallet_id, Account.member_id, *BALANCE_COLUMNS).where(
        Account.member_id.is_not(None),
        Account.wallet_id.in_(bindparam("wallets", expanding=True)),
        Account.member_id.in_(bindparam("members", expanding=True)),
    )
)


def lock_member_balances(
    session: Session, *, programme: Programme, pairs: Collection[tuple[Wallet, uuid.UUID]]
) -> dict[tuple[uuid.UUID, uuid.UUID], tuple[Any, ...]]:
    """The balances (:data:`BALANCE_COLUMNS`) of the member accounts ``(wallet, member)``,
    by ``(wallet id, member id)``: created if missing, locked in primary-key order, read as
    rows (no ORM objects) for set-based postings. One query for up to 2,000 accounts."""
    flush_deferred(session)
    wallets = {wallet.id: wallet for wallet, _ in pairs}
    wanted = {(wallet.id, member_id) for wallet, member_id in pairs}
    found = _lock_balances(session, wanted)
    missing = sorted(wanted - found.keys())
    if missing:
        _check_members(session, programme, {member_id for _, member_id in missing})
        rows = [
            {
                "id": uuid7(),
                "programme_id": programme.id,
                "wallet_id": wallet_id,
                "member_id": member_id,
                **_zero("member", allows_debt=wallets[wallet_id].debt_policy == "allow_debt"),
            }
            for wallet_id, member_id in missing
        ]
        for start in range(0, len(rows), 500):
            _insert_ignoring_conflicts(session, rows[start : start + 500])
        found.update(_lock_balances(session, set(missing)))
    return found


def _lock_balances(
    session: Session, pairs: set[tuple[uuid.UUID, uuid.UUID]]
) -> dict[tuple[uuid.UUID, uuid.UUID], tuple[Any, ...]]:
    """Lock in primary-key order, on PostgreSQL: the pairs in one query, or beyond one query's
    worth, their ids looked up first (unlocked) and locked by id in order, chunk after chunk:
    still one global order. SQLite locks nothing (one writer) and its planner scans the whole
    table for a list of pairs (row values): it reads the accounts of these members in these
    wallets through the (wallet, member) index and keeps the pairs asked for."""
    columns = (Account.wallet_id, Account.member_id, *BALANCE_COLUMNS)
    ordered = sorted(pairs)
    chunks = [ordered[i : i + _PAIRS_PER_QUERY] for i in range(0, len(ordered), _PAIRS_PER_QUERY)]
    found: dict[tuple[uuid.UUID, uuid.UUID], tuple[Any, ...]] = {}
    if session.get_bind().dialect.name != "postgresql":
        for chunk in chunks:
            wallet_ids = list(dict.fromkeys(wallet_id for wallet_id, _ in chunk))
            member_ids = list(dict.fromkeys(member_id for _, member_id in chunk))
            params = {"wallets": wallet_ids, "members": member_ids}
            for row in _BALANCES_OF_MEMBERS.rows(session, params):
                key = row[:2]
                if key in pairs:
                    found[key] = row[2:]
        return found
    pair = tuple_(Account.wallet_id, Account.member_id)
    if len(chunks) <= 1:  # the usual case (a group's accounts): one prepared statement
        params = {"wallets": [w for w, _ in ordered], "members": [m for _, m in ordered]}
        for row in _LOCK_PAIRS_PG.rows(session, params):
            found[row[:2]] = row[2:]
        return found
    ids = sorted(
        account_id
        for chunk in chunks
        for account_id in session.scalars(
            select(Account.id).where(Account.member_id.is_not(None), pair.in_(chunk))
        )
    )
    step = _PAIRS_PER_QUERY
    conditions = [[Account.id.in_(ids[i : i + step])] for i in range(0, len(ids), step)]
    for where in conditions:
        query = (
            select(*columns)
            .where(Account.member_id.is_not(None), *where)
            .order_by(Account.id)
            .with_for_update()
        )
        for row in session.execute(query):
            found[(row.wallet_id, row.member_id)] = tuple(row)[2:]
    return found


def _check_members(session: Session, programme: Programme, member_ids: set[uuid.UUID]) -> None:
    found = set(
        session.scalars(
            select(Member.id).where(Member.programme_id == programme.id, Member.id.in_(member_ids))
        )
    )
    for member_id in sorted(member_ids - found):
        raise NotFound(f"member {member_id} does not exist")


def find_member_account(
    session: Session, *, wallet: Wallet, member_id: uuid.UUID
) -> Account | None:
    """The member's account in ``wallet`` (not locked), or None if nothing was ever posted."""
    flush_deferred(session)
    return session.scalar(
        select(Account).where(Account.wallet_id == wallet.id, Account.member_id == member_id)
    )


def lock_accounts_by_id(session: Session, account_ids: Iterable[uuid.UUID]) -> list[Account]:
    """Lock the given accounts in primary-key order (used by reversals)."""
    flush_deferred(session)
    query = (
        select(Account)
        .where(Account.id.in_(set(account_ids)))
        .order_by(Account.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(query))


def available_lots(
    session: Session, *, account: Account, now: datetime, include_overdue: bool = False
) -> list[Lot]:
    """The account's available lots in consumption order: soonest expiry first, never-expiring
    last, then oldest first. Overdue lots (past expiry, not yet expired by the job) are left
    out of spends; returns and debits may take them."""
    flush_deferred(session)
    query = select(Lot).where(Lot.account_id == account.id, Lot.remaining > 0, Lot.pending == 0)
    if not include_overdue:
        query = query.where((Lot.expires_at.is_(None)) | (Lot.expires_at > now))
    query = query.order_by(Lot.expires_at.is_(None), Lot.expires_at, Lot.id)
    return list(session.scalars(query.execution_options(populate_existing=True)))


def lot_for_update(session: Session, *, programme: Programme, lot_id: uuid.UUID) -> Lot:
    """A lot with its account locked first, then the lot re-read."""
    flush_deferred(session)
    lot = session.get(Lot, lot_id)
    if lot is None or lot.programme_id != programme.id:
        raise NotFound(f"lot {lot_id} does not exist")
    lock_accounts_by_id(session, [lot.account_id])
    session.refresh(lot)
    return lot
