"""Set-based spends: many debits posted together (redemptions, a group of them).

Design note
-----------
:func:`spend_many` writes the rows :func:`fidelia.ledger.operations.spend` would write for each
spend in turn (kind ``spend`` against the wallet's ``redeemed`` account; lots consumed
soonest-expiring first, never-expiring last, then oldest; pending and overdue lots left out;
:class:`InsufficientPoints` when the lots or the available balance do not cover it), in a
fixed number of statements whatever the number of spends: the wallet and the member accounts
locked in one query (primary-key order; missing accounts are created through the repository),
their spendable lots read in one query, then one INSERT of the transactions, one of the
entries, one UPDATE of the lots and one of the balances, Core rows without ORM objects.

On PostgreSQL the lots are read in a statement of their own, after the lock: under READ
COMMITTED a statement sees the rows of other tables as they were when it started, so lots read
by the locking statement itself would be stale if it had to wait for the lock (another spend,
an expiry, a return of the same account committing meanwhile), and could be spent twice. On
SQLite one writer at a time holds the database (``BEGIN IMMEDIATE``), so the locking query
reads the lots too. On PostgreSQL a single spend (a redemption's) is written by one statement,
its four writes as data-modifying CTEs (:func:`_posting_one`): one round trip instead of four.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect, Select, Uuid, and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from fidelia.errors import ValidationFailed
from fidelia.kit.bulk import insert_rows
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.kit.prepared import Prepared
from fidelia.ledger import noticing
from fidelia.ledger.errors import AlreadyPosted, InsufficientPoints, NotSpendable
from fidelia.ledger.repository import (
    BALANCE_COLUMNS,
    flush_deferred,
    lock_member_balances,
    system_account_id,
)
from fidelia.ledger.schemas import Amount
from fidelia.ledger.service import _Balance, _check_bounds, check_unused
from fidelia.ledger.wallets import get_wallet, to_minor
from fidelia.models import Account, Base, Lot, Programme, Wallet
from fidelia.notices import Notice, record_many

_TABLES = Base.metadata.tables
_LOTS, _ACCOUNTS = _TABLES["ledger_lots"], _TABLES["ledger_accounts"]
_WALLETS, _TRANSACTIONS = _TABLES["ledger_wallets"], _TABLES["ledger_transactions"]
# one spend's transaction row, compiled once (kit.prepared): on PostgreSQL a one-row
# insert_rows goes through SQLAlchemy's execution, several times the driver's own work
_INSERT_ONE = Prepared(
    insert(_TRANSACTIONS).values(
        {c: bindparam(f"t_{c.key}", type_=c.type) for c in _TRANSACTIONS.c}
    )
)


@dataclass(frozen=True, slots=True)
class SpendRequest:
    """One spend for :func:`spend_many`: :func:`~fidelia.ledger.operations.spend`'s arguments.
    ``fresh_key``: the key comes from a row created in this transaction (a redemption's id), so
    no lookup is needed first (the unique constraint still guards it). ``transaction_id`` is
    drawn when the request is made, so that the caller can refer to it before it is posted."""

    member_id: uuid.UUID
    amount: Amount
    idempotency_key: str
    wallet: str = "points"
    source_type: str = "redemption"
    source_id: str | None = None
    occurred_at: datetime | None = None
    fresh_key: bool = False
    transaction_id: uuid.UUID = field(default_factory=uuid7)


@dataclass(slots=True)
class _SpendableLot:
    id: uuid.UUID
    remaining: int
    taken: int = 0  # by the spends of this call


def spend_many(
    session: Session,
    *,
    programme: Programme,
    spends: Sequence[SpendRequest],
    now: datetime | None = None,
    notices: list[Notice] | None = None,
) -> list[uuid.UUID]:
    """Post ``spends`` (of any members and spendable wallets of ``programme``) set-based, in
    order: a member's second spend consumes what the first left. All or nothing: raises
    :class:`InsufficientPoints`, :class:`NotSpendable`, :class:`AlreadyPosted` or
    :class:`BalanceLimit` before writing anything. Returns the transaction ids, in order.
    ``notices``: the spends' ``points.spent`` notices are appended to it, for the caller to
    write with its own in one statement (else they are written here)."""
    if not spends:
        return []
    now = now or utcnow()
    session.flush()  # ORM changes to accounts or lots must not land after these updates
    wallets, balances, lots = _prepared(session, programme, spends, now)
    minors = _check_requests(session, programme, spends, wallets)
    if balances is None:  # not the common case: several wallets, or a spender without account
        balances = _lock(session, programme, wallets, spends)
        lots = _spendable_lots(session, [b.id for b in balances.values()], now)
    txns: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    spent: dict[uuid.UUID, int] = {}
    for request, minor in zip(spends, minors, strict=True):
        wallet = wallets[request.wallet]
        account = balances[(wallet.id, request.member_id)]
        taken = _consume(wallet, account, lots.get(account.id, []), minor)
        redeemed = system_account_id(session, wallet=wallet, kind="redeemed")
        occurred_at = request.occurred_at or now
        txns.append(_spend_row(programme, wallet, request, occurred_at, now))
        legs = [(account.id, lot.id, -part) for lot, part in taken] + [(redeemed, None, minor)]
        entries += [
            {
                "id": uuid7(),
                "programme_id": programme.id,
                "transaction_id": request.transaction_id,
                "account_id": account_id,
                "lot_id": lot_id,
                "pending": False,
                "amount": amount,
                "effective_at": occurred_at,
            }
            for account_id, lot_id, amount in legs
        ]
        account.available -= minor
        account.lifetime_spent += minor
        spent[account.id] = spent.get(account.id, 0) + minor
    _check_bounds(balances.values(), [])
    consumed = [lot for found in lots.values() for lot in found if lot.taken]
    debited = [b for b in balances.values() if b.id in spent]
    try:
        if len(txns) == 1 and session.get_bind().dialect.name == "postgresql":
            _post_one_postgres(session, txns[0], entries, consumed, debited[0], spent)
        else:
            _insert_transactions(session, txns)
            insert_rows(session, _TABLES["ledger_entries"], entries)
            _write(session, consumed, debited, spent)
    except IntegrityError as exc:  # a concurrent posting with one of these keys committed first
        if "idempotency_key" in str(exc.orig) or "uq_ledger_transactions" in str(exc.orig):
            raise AlreadyPosted(", ".join(s.idempotency_key for s in spends)) from exc
        raise
    _refresh(session, consumed, debited)
    spent_notices = noticing.notices(
        noticing.Moved(
            "spend", wallets[s.wallet], s.member_id, -minor, s.occurred_at or now,
            s.transaction_id, s.source_type,
        )
        for s, minor in zip(spends, minors, strict=True)
    )  # fmt: skip
    if notices is None:
        record_many(session, programme.id, spent_notices)
    else:
        notices += spent_notices
    return [s.transaction_id for s in spends]


def _check_requests(
    session: Session,
    programme: Programme,
    spends: Sequence[SpendRequest],
    wallets: dict[str, Wallet],
) -> list[int]:
    """The minor amounts of ``spends``; the errors of a bad one, in order. ``wallets``: those
    found so far, completed here."""
    minors, keys = [], set()
    for request in spends:
        wallet = wallets.get(request.wallet)
        if wallet is None:
            wallet = wallets[request.wallet] = get_wallet(
                session, programme=programme, code=request.wallet
            )
        if not wallet.spendable:
            raise NotSpendable(f"wallet {request.wallet!r} cannot be spent")
        minor = to_minor(wallet, request.amount)
        if minor <= 0:
            raise ValidationFailed.on("amount", "must be greater than zero")
        if request.idempotency_key in keys:
            raise AlreadyPosted(request.idempotency_key)
        keys.add(request.idempotency_key)
        if not request.fresh_key:
            check_unused(session, programme=programme, key=request.idempotency_key)
        minors.append(minor)
    return minors


# The wallet's columns a spend reads (amounts, checks, notices, accounts it may create):
# the wallet object spend_many makes has only these loaded (another attribute raises
# DetachedInstanceError). The others (two JSON policies, times) were read again on each lot's
# row of the locking query, and made into values each time (issue 18).
_WALLET_READ = ("id", "programme_id", "code", "unit", "scale", "spendable", "debt_policy")


def _locking(*, with_lots: bool, one: bool) -> Select[Any]:
    """The query of :func:`_prepared`: the wallet (by code) and the spenders' accounts in it,
    locked in primary-key order; ``with_lots``, each account's spendable lots joined in
    consumption order (SQLite only: see :func:`_prepared`); ``one``: for one spender
    (``member_id``), else for ``member_ids``. Plain columns: the wallet is made an object by
    :func:`_wallet`."""
    account = _ACCOUNTS.c
    spenders = (
        account.member_id == bindparam("member_id")
        if one
        else account.member_id.in_(bindparam("member_ids", expanding=True))
    )
    balances = [account[column.key] for column in BALANCE_COLUMNS]
    query = (
        select(*(_WALLETS.c[name] for name in _WALLET_READ), account.member_id, *balances)
        .join(_ACCOUNTS, account.wallet_id == _WALLETS.c.id)
        .where(
            _WALLETS.c.programme_id == bindparam("programme_id"),
            _WALLETS.c.code == bindparam("wallet"),
            spenders,
        )
    )
    if not with_lots:
        return query.order_by(account.id).with_for_update(of=_ACCOUNTS)
    lot = _LOTS.c
    spendable = and_(
        lot.account_id == account.id,
        lot.remaining > 0,
        lot.pending == 0,
        or_(lot.expires_at.is_(None), lot.expires_at > bindparam("now")),
    )
    return (
        query.add_columns(lot.id, lot.remaining)
        .outerjoin(_LOTS, spendable)
        .order_by(account.id, lot.expires_at.is_(None), lot.expires_at, lot.id)
    )


# (postgres, one spender) -> the query; those for one spender compiled once (kit.prepared)
_LOCKING: dict[tuple[bool, bool], Select[Any] | Prepared] = {
    (postgres, one): Prepared(query) if one else query
    for postgres in (False, True)
    for one in (False, True)
    for query in (_locking(with_lots=not postgres, one=one),)
}
_WALLET_COLUMNS = len(_WALLET_READ)
Balances = dict[tuple[uuid.UUID, uuid.UUID], _Balance]
Lots = dict[uuid.UUID, list[_SpendableLot]]


def _wallet(values: Sequence[Any]) -> Wallet:
    """The wallet's :data:`_WALLET_READ` columns as a detached object, not added to the
    session (which may hold the same row already)."""
    found: Wallet = Wallet.__mapper__.class_manager.new_instance()
    found.__dict__.update(zip(_WALLET_READ, values, strict=True))  # as the ORM loads
    make_transient_to_detached(found)
    return found


def _prepared(
    session: Session, programme: Programme, spends: Sequence[SpendRequest], now: datetime
) -> tuple[dict[str, Wallet], Balances | None, Lots]:
    """For spends of one wallet whose spenders all have an account (the usual case): the
    wallet and the accounts, locked, in one query, and on SQLite their spendable lots in the
    same query (one writer at a time: nothing can change between the lock and the read). On
    PostgreSQL the lots are read next, by a statement of its own (see the design note).
    Otherwise no balances: the caller locks through the repository."""
    flush_deferred(session)
    codes = {s.wallet for s in spends}
    if len(codes) != 1:
        return {}, None, {}
    members = {s.member_id for s in spends}
    postgres = session.get_bind().dialect.name == "postgresql"
    params: dict[str, Any] = {"programme_id": programme.id, "wallet": next(iter(codes))}
    if len(members) == 1:
        params["member_id"] = next(iter(members))
    else:
        params["member_ids"] = sorted(members)
    if not postgres:
        params["now"] = now
    query = _LOCKING[(postgres, len(members) == 1)]
    rows = (
        query.rows(session, params)
        if isinstance(query, Prepared)
        else session.execute(query, params)
    )
    wallet: Wallet | None = None
    balances: Balances = {}
    lots: Lots = {}
    at = _WALLET_COLUMNS
    for row in rows:
        if wallet is None:
            wallet = _wallet(row[:at])
        member_id = row[at]
        balance = balances.get((wallet.id, member_id))
        if balance is None:
            balance = balances[(wallet.id, member_id)] = _Balance(*row[at + 1 : at + 8])
            lots[balance.id] = []
        if not postgres and row[at + 8] is not None:
            lots[balance.id].append(_SpendableLot(row[at + 8], row[at + 9]))
    wallets = {} if wallet is None else {wallet.code: wallet}
    if len(balances) != len(members):
        return wallets, None, {}
    if postgres:
        lots = _spendable_lots(session, [b.id for b in balances.values()], now)
    return wallets, balances, lots


def _lock(
    session: Session,
    programme: Programme,
    wallets: dict[str, Wallet],
    spends: Sequence[SpendRequest],
) -> Balances:
    """The spenders' accounts, locked in primary-key order by the repository, which creates
    the missing ones."""
    pairs = {(wallets[s.wallet].id, s.member_id): (wallets[s.wallet], s.member_id) for s in spends}
    return {
        key: _Balance(*row)
        for key, row in lock_member_balances(
            session, programme=programme, pairs=pairs.values()
        ).items()
    }


# compiled once (kit.prepared: on PostgreSQL the ids go as one array, ``= ANY``)
_SPENDABLE = Prepared(
    select(_LOTS.c.id, _LOTS.c.account_id, _LOTS.c.remaining)
    .where(
        _LOTS.c.account_id.in_(bindparam("account_ids", type_=Uuid(), expanding=True)),
        _LOTS.c.remaining > 0,
        _LOTS.c.pending == 0,
        or_(_LOTS.c.expires_at.is_(None), _LOTS.c.expires_at > bindparam("now")),
    )
    .order_by(_LOTS.c.account_id, _LOTS.c.expires_at.is_(None), _LOTS.c.expires_at, _LOTS.c.id)
)


def _spendable_lots(
    session: Session, account_ids: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, list[_SpendableLot]]:
    """The accounts' available lots in consumption order (as ``repository.available_lots``)."""
    params = {"account_ids": account_ids, "now": now}
    found: dict[uuid.UUID, list[_SpendableLot]] = {}
    for lot_id, account_id, remaining in _SPENDABLE.rows(session, params):
        found.setdefault(account_id, []).append(_SpendableLot(lot_id, remaining))
    return found


def _consume(
    wallet: Wallet, account: _Balance, lots: list[_SpendableLot], minor: int
) -> list[tuple[_SpendableLot, int]]:
    spendable = sum(lot.remaining - lot.taken for lot in lots)
    usable = min(spendable, account.available)
    if usable < minor:
        raise InsufficientPoints(
            f"wallet {wallet.code!r} has {max(usable, 0)} available (minor units), {minor} needed"
        )
    taken: list[tuple[_SpendableLot, int]] = []
    for lot in lots:
        if minor <= 0:
            break
        part = min(minor, lot.remaining - lot.taken)
        if part > 0:
            taken.append((lot, part))
            lot.taken += part
            minor -= part
    return taken


def _spend_row(
    programme: Programme,
    wallet: Wallet,
    request: SpendRequest,
    occurred_at: datetime,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": request.transaction_id,
        "programme_id": programme.id,
        "wallet_id": wallet.id,
        "member_id": request.member_id,
        "kind": "spend",
        "idempotency_key": request.idempotency_key,
        "source_type": request.source_type,
        "source_id": request.source_id,
        "rule_id": None,
        "rule_version": None,
        "actor": None,
        "reason": None,
        "reverses_id": None,
        "occurred_at": occurred_at,
        "posted_at": now,
        "details": {},
    }


_TAKE_FROM_LOTS_SQLITE = "UPDATE ledger_lots SET remaining = remaining - ? WHERE id = ?"
_TAKE_FROM_BALANCES_SQLITE = (
    "UPDATE ledger_accounts SET available = available - ?, lifetime_spent = lifetime_spent + ? "
    "WHERE id = ?"
)
# PostgreSQL: one statement each whatever the number of rows, the ids as one uuid[] literal
# (as kit.bulk sends them), run through the driver (SQLAlchemy's execution of a text() with
# arrays cost more than the server's work)
_TAKE_FROM_LOTS_PG = (
    "UPDATE ledger_lots AS l SET remaining = l.remaining - d.taken "
    "FROM unnest(CAST(%(ids)s AS uuid[]), CAST(%(taken)s AS bigint[])) AS d(id, taken) "
    "WHERE l.id = d.id"
)
_TAKE_FROM_BALANCES_PG = (
    "UPDATE ledger_accounts AS a SET available = a.available - d.spent, "
    "lifetime_spent = a.lifetime_spent + d.spent "
    "FROM unnest(CAST(%(ids)s AS uuid[]), CAST(%(spent)s AS bigint[])) AS d(id, spent) "
    "WHERE a.id = d.id"
)
_TAKE_FROM_BALANCE_PG = (
    "UPDATE ledger_accounts SET available = available - %(spent)s, "
    "lifetime_spent = lifetime_spent + %(spent)s WHERE id = %(id)s"
)


def _insert_transactions(session: Session, txns: list[dict[str, Any]]) -> None:
    if len(txns) == 1:  # a redemption's: compiled once (see _INSERT_ONE)
        _INSERT_ONE.run(session, {f"t_{key}": value for key, value in txns[0].items()})
    else:
        insert_rows(session, _TRANSACTIONS, txns)


def _posting_one(lots: int) -> Prepared:
    """PostgreSQL: one spend written by one statement (one round trip instead of four), for
    a spend over ``lots`` lots: its transaction and its entries inserted and its lots and
    balance updated by data-modifying CTEs around the balance's UPDATE. The sub-statements
    run on one snapshot and touch different rows; the foreign keys between them (entries to
    their transaction and lots) are checked at the end of the statement, after all of them,
    and the CHECK constraints row by row, as in four statements."""
    entries = _TABLES["ledger_entries"]
    txn = insert(_TRANSACTIONS).values(
        {c: bindparam(f"t_{c.key}", type_=c.type) for c in _TRANSACTIONS.c}
    )
    legs = insert(entries).values(
        [{c: bindparam(f"e{i}_{c.key}", type_=c.type) for c in entries.c} for i in range(lots + 1)]
    )
    amount = _LOTS.c.remaining.type
    ctes = [txn.cte("t"), legs.cte("e")] + [
        update(_LOTS)
        .where(_LOTS.c.id == bindparam(f"l{i}_id", type_=Uuid()))
        .values(remaining=_LOTS.c.remaining - bindparam(f"l{i}_taken", type_=amount))
        .cte(f"l{i}")
        for i in range(lots)
    ]
    spent = bindparam("a_spent", type_=_ACCOUNTS.c.available.type)
    balance = (
        update(_ACCOUNTS)
        .where(_ACCOUNTS.c.id == bindparam("a_id", type_=Uuid()))
        .values(
            available=_ACCOUNTS.c.available - spent,
            lifetime_spent=_ACCOUNTS.c.lifetime_spent + spent,
        )
    )
    return Prepared(balance.add_cte(*ctes))


_POSTING_ONE: dict[int, Prepared] = {}  # by number of lots, compiled once each


def _post_one_postgres(
    session: Session,
    txn: dict[str, Any],
    entries: list[dict[str, Any]],
    lots: list[_SpendableLot],
    balance: _Balance,
    spent: dict[uuid.UUID, int],
) -> None:
    """Write one spend (``txn``, its ``entries``, what it took from ``lots`` and ``balance``)
    in one statement: see :func:`_posting_one`."""
    statement = _POSTING_ONE.get(len(lots))
    if statement is None:
        statement = _POSTING_ONE.setdefault(len(lots), _posting_one(len(lots)))
    params = {f"t_{key}": value for key, value in txn.items()}
    for i, entry in enumerate(entries):
        params.update({f"e{i}_{key}": value for key, value in entry.items()})
    for i, lot in enumerate(lots):
        params[f"l{i}_id"], params[f"l{i}_taken"] = lot.id, lot.taken
    params["a_id"], params["a_spent"] = balance.id, spent[balance.id]
    statement.run(session, params)


def _uuids(ids: Sequence[uuid.UUID]) -> str:
    """A uuid[] in PostgreSQL's text form (as kit.bulk sends uuid arrays)."""
    return "{" + ",".join(f"{i.int:032x}" for i in ids) + "}"


def _write_postgres(
    session: Session,
    lots: list[_SpendableLot],
    balances: list[_Balance],
    spent: dict[uuid.UUID, int],
) -> None:
    connection = session.connection()
    params: dict[str, Any]
    if lots:
        taken = [lot.taken for lot in lots]
        params = {"ids": _uuids([lot.id for lot in lots]), "taken": taken}
        connection.exec_driver_sql(_TAKE_FROM_LOTS_PG, params)
    if len(balances) == 1:
        (balance,) = balances
        params = {"id": balance.id, "spent": spent[balance.id]}
        connection.exec_driver_sql(_TAKE_FROM_BALANCE_PG, params)
    elif balances:
        amounts = [spent[b.id] for b in balances]
        params = {"ids": _uuids([b.id for b in balances]), "spent": amounts}
        connection.exec_driver_sql(_TAKE_FROM_BALANCES_PG, params)


def _uuid_bind(dialect: Dialect) -> Callable[[uuid.UUID], Any]:
    """How the dialect binds a UUID (on SQLite: its 32 hex digits, as ``Uuid`` stores it)."""
    found = _UUID_BINDS.get(dialect.name)
    if found is None:
        process = Uuid().dialect_impl(dialect).bind_processor(dialect)
        found = _UUID_BINDS[dialect.name] = process or (lambda value: value)
    return found


_UUID_BINDS: dict[str, Callable[[uuid.UUID], Any]] = {}


def _write(
    session: Session,
    lots: list[_SpendableLot],
    balances: list[_Balance],
    spent: dict[uuid.UUID, int],
) -> None:
    """What the spends took from the lots and the cached balances: one UPDATE each (from
    arrays on PostgreSQL, an executemany handed to the driver on SQLite)."""
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":
        # the driver's executemany directly: SQLAlchemy's parameter building for these two
        # small statements cost more than SQLite's work (issue 18)
        uuid_bind = _uuid_bind(dialect)
        connection = session.connection()
        taken = [(lot.taken, uuid_bind(lot.id)) for lot in lots]
        amounts = [(spent[b.id], spent[b.id], uuid_bind(b.id)) for b in balances]
        for sql, rows in ((_TAKE_FROM_LOTS_SQLITE, taken), (_TAKE_FROM_BALANCES_SQLITE, amounts)):
            if rows:
                connection.exec_driver_sql(sql, rows[0] if len(rows) == 1 else rows)
    else:
        _write_postgres(session, lots, balances, spent)


def _refresh(session: Session, lots: list[_SpendableLot], balances: list[_Balance]) -> None:
    """The lots and accounts the session holds as objects get the values just written, so
    that nothing reads a stale value from its identity map."""
    identities = session.identity_map
    for lot in lots:
        held_lot = identities.get(Session.identity_key(Lot, lot.id))
        if held_lot is not None:
            set_committed_value(held_lot, "remaining", lot.remaining - lot.taken)
    for balance in balances:
        held = identities.get(Session.identity_key(Account, balance.id))
        if held is not None:
            for column in ("available", "lifetime_spent"):
                set_committed_value(held, column, getattr(balance, column))
