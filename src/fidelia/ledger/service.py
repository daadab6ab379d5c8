"""The posting function: the one place that writes ledger rows.

Design note
-----------
A :class:`Posting` is a list of :class:`Leg` (signed amounts on accounts, in the available or
the pending bucket, on an existing lot or opening a new one) that must sum to zero. The
planners in ``operations`` and ``returns`` lock the member accounts, read their lots and build
postings; :func:`post` checks the posting (zero sum, one wallet, known accounts, lot bounds,
no negative balance unless the wallet allows debt, idempotency key unused), repays a member's
debt from any value credited to an available lot, then writes the transaction, its lots,
entries and lot reversals and updates the cached balances, all in the caller's transaction.
The database backs every check: UNIQUE idempotency key, CHECKs on balances and lots,
immutability triggers on the journal. New lots get their release and expiry jobs here too.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from fidelia.jobs import service as jobs
from fidelia.kit.bounds import MAX_BALANCE
from fidelia.kit.bulk import insert_tuples
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.kit.prepared import Prepared
from fidelia.ledger import noticing
from fidelia.ledger.errors import (
    AlreadyPosted,
    BalanceLimit,
    InsufficientPoints,
    UnbalancedPosting,
)
from fidelia.ledger.repository import (
    is_system_account,
    lock_member_balances,
    system_account_id,
)
from fidelia.models import (
    Account,
    Base,
    LedgerTransaction,
    Lot,
    Programme,
    Wallet,
)

RELEASE_JOB = "ledger.release"
EXPIRE_JOB = "ledger.expire"
# Which lifetime counter a transaction kind moves, and with which sign of the member's amount.
COUNTERS = {"earned": ("lifetime_earned", 1), "spent": ("lifetime_spent", -1)}
COUNTERS["expired"] = ("lifetime_expired", -1)


@dataclass(frozen=True, slots=True)
class NewLot:
    """A lot to open with the leg's amount."""

    expires_at: datetime | None
    available_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Leg:
    """A signed amount on one account: on an existing ``lot``, opening one, or lot-less (debt)."""

    account_id: uuid.UUID
    amount: int
    pending: bool = False
    lot: Lot | None = None
    opens: NewLot | None = None


@dataclass(frozen=True, slots=True)
class Posting:
    """Everything :func:`post` writes for one transaction."""

    wallet: Wallet
    kind: str
    idempotency_key: str
    legs: Sequence[Leg]
    occurred_at: datetime
    member_id: uuid.UUID | None = None
    source_type: str = "system"
    source_id: str | None = None
    rule_id: str | None = None
    rule_version: int | None = None
    actor: str | None = None
    reason: str | None = None
    reverses_id: uuid.UUID | None = None
    counter: str | None = None
    reversals: Sequence[tuple[Lot, int, int]] = ()
    details: dict[str, Any] = field(default_factory=dict)
    # The caller derived the key from a row it created in this transaction, so it cannot have
    # been used: the database's unique constraint still guards it, without a lookup first.
    fresh_key: bool = False


def post(
    session: Session,
    *,
    programme: Programme,
    posting: Posting,
    accounts: Mapping[uuid.UUID, Account],
    now: datetime | None = None,
) -> LedgerTransaction:
    """Write ``posting`` in the caller's transaction and return its transaction row.

    ``accounts`` are the member accounts the caller locked, by member id. Raises
    :class:`AlreadyPosted` if the idempotency key was used, :class:`InsufficientPoints` if a
    member's available balance would turn negative without a debt policy, and
    :class:`UnbalancedPosting` for a posting that does not sum to zero.
    """
    now = now or utcnow()
    members = {a.id: a for a in accounts.values()}
    _check_shape(session, posting, members)
    if not posting.fresh_key:
        check_unused(session, programme=programme, key=posting.idempotency_key)
    txn = _transaction_row(programme, posting, now)
    lots = {leg_lot.id: leg_lot for leg in posting.legs if (leg_lot := leg.lot) is not None}
    legs = _open_lots(posting, txn, members, lots)
    legs += _debt_repayments(legs, members)
    entries = [_apply(leg, txn, members, lots, posting.counter) for leg in legs]
    _check_bounds(members.values(), lots.values())
    opened = [lot for lot in lots.values() if lot.transaction_id == txn.id]
    _insert(session, posting, txn, opened, entries, programme)
    _schedule(session, programme, opened)
    moved = noticing.member_amounts(((leg.account_id, leg.amount) for leg in legs), accounts)
    noticing.record(
        session,
        programme=programme,
        moved=[
            noticing.Moved(
                posting.kind, posting.wallet, member_id, minor, posting.occurred_at, txn.id,
                posting.source_type, posting.reason,
            )
            for member_id, minor in moved.items()
        ],
    )  # fmt: skip
    return txn


@dataclass(frozen=True, slots=True)
class Earn:
    """One earn for :func:`post_earns`: ``amount`` (minor units) to a member as a new lot,
    against the wallet's ``issued`` account; the posting :func:`post` would get from
    :func:`fidelia.ledger.operations.award`. Its ids are drawn when it is planned, so a
    deferred earn keeps its place among the transactions posted meanwhile."""

    wallet: Wallet
    member_id: uuid.UUID
    amount: int
    pending: bool
    lot: NewLot
    idempotency_key: str
    occurred_at: datetime
    source_type: str = "event"
    source_id: str | None = None
    rule_id: str | None = None
    rule_version: int | None = None
    fresh_key: bool = False
    transaction_id: uuid.UUID = field(default_factory=uuid7)
    lot_id: uuid.UUID = field(default_factory=uuid7)


@dataclass(slots=True)
class _Balance:
    """A locked member account's cached balances, as :func:`_check_bounds` reads them."""

    id: uuid.UUID
    allows_debt: bool
    available: int
    pending: int
    lifetime_earned: int
    lifetime_spent: int
    lifetime_expired: int
    added: list[int] = field(default_factory=lambda: [0, 0])  # to available, to pending

    def add(self, amount: int, *, pending: bool) -> None:
        """Credit ``amount`` earned (the debt it repays moves nothing on the balance)."""
        if pending:
            self.pending += amount
        else:
            self.available += amount
        self.added[pending] += amount
        self.lifetime_earned += amount


def post_earns(
    session: Session,
    *,
    programme: Programme,
    earns: Sequence[Earn],
    now: datetime | None = None,
) -> list[uuid.UUID]:
    """Write many earns, of any members and wallets of ``programme``, set-based; returns
    their transaction ids in order.

    The rows and balances are those :func:`post` would write for each earn in turn (a lot
    credited to an account in debt repays the debt first), with a few statements whatever
    their number: one to lock the accounts (in primary-key order; missing ones are created),
    one INSERT per table and one UPDATE of the balances. All or nothing: raises
    :class:`AlreadyPosted` (a key used, or twice in ``earns``) or :class:`BalanceLimit`
    before writing anything.
    """
    if not earns:
        return []
    now = now or utcnow()
    session.flush()  # rows the earns refer to (a member enrolled by the batch) go first
    _check_keys(session, programme, earns)
    pairs = {(e.wallet.id, e.member_id): (e.wallet, e.member_id) for e in earns}.values()
    balances = {
        key: _Balance(*row)
        for key, row in lock_member_balances(session, programme=programme, pairs=pairs).items()
    }
    wallets = {e.wallet.id: e.wallet for e in earns}
    issued = {
        wallet_id: system_account_id(session, wallet=wallet, kind="issued")
        for wallet_id, wallet in wallets.items()
    }
    programme_id = programme.id
    txns: list[tuple[Any, ...]] = []
    lots: list[tuple[Any, ...]] = []
    entries: list[tuple[Any, ...]] = []
    jobs_due: list[tuple[str, uuid.UUID, datetime]] = []
    for earn in earns:
        wallet_id, lot_id, amount = earn.wallet.id, earn.lot_id, earn.amount
        txn_id = earn.transaction_id
        account = balances[(wallet_id, earn.member_id)]
        account_id, at, pending, new_lot = account.id, earn.occurred_at, earn.pending, earn.lot
        txns.append(
            (
                txn_id, programme_id, wallet_id, earn.member_id, "earn", earn.idempotency_key,
                earn.source_type, earn.source_id, earn.rule_id, earn.rule_version,
                None, None, None, at, now, {},
            )
        )  # fmt: skip
        remaining = amount
        entries.append((uuid7(), programme_id, txn_id, account_id, lot_id, pending, amount, at))
        entries.append((uuid7(), programme_id, txn_id, issued[wallet_id], None, False, -amount, at))
        if account.available < 0 and not pending:  # see _debt_repayments
            paid = min(-account.available, amount)
            entries.append((uuid7(), programme_id, txn_id, account_id, lot_id, False, -paid, at))
            entries.append((uuid7(), programme_id, txn_id, account_id, None, False, paid, at))
            remaining -= paid
        held = amount if pending else 0
        if not 0 <= held <= remaining <= amount:
            raise UnbalancedPosting(f"lot {lot_id} out of bounds")
        lots.append(
            (
                lot_id, programme_id, wallet_id, account_id, txn_id, amount, remaining, held,
                new_lot.available_at, new_lot.expires_at, now,
            )
        )  # fmt: skip
        account.add(amount, pending=pending)
        if pending and new_lot.available_at is not None:
            jobs_due.append((RELEASE_JOB, lot_id, new_lot.available_at))
        if new_lot.expires_at is not None:
            jobs_due.append((EXPIRE_JOB, lot_id, new_lot.expires_at))
    _check_bounds(balances.values(), [])
    try:
        insert_tuples(session, _TABLES["ledger_transactions"], _TRANSACTION_KEYS, txns)
    except IntegrityError as exc:  # a concurrent posting with one of these keys committed first
        if "idempotency_key" in str(exc.orig) or "uq_ledger_transactions" in str(exc.orig):
            raise AlreadyPosted(", ".join(e.idempotency_key for e in earns)) from exc
        raise
    insert_tuples(session, _TABLES["ledger_lots"], _LOT_KEYS, lots)
    insert_tuples(session, _TABLES["ledger_entries"], _ENTRY_KEYS, entries)
    programme_text = str(programme_id)
    jobs.enqueue_many(
        session,
        [
            (kind, {"lot_id": str(lot_id), "programme_id": programme_text}, due, programme_id)
            for kind, lot_id, due in jobs_due
        ],
    )
    _add_to_balances(session, [b for b in balances.values() if any(b.added)])
    noticing.record(
        session,
        programme=programme,
        moved=[
            noticing.Moved(
                "earn", e.wallet, e.member_id, e.amount, e.occurred_at, e.transaction_id,
                e.source_type,
            )
            for e in earns
            if e.source_type != "event"  # the intake notices its events' earns (noticing)
        ],
    )  # fmt: skip
    return [earn.transaction_id for earn in earns]


def _check_keys(session: Session, programme: Programme, earns: Sequence[Earn]) -> None:
    seen: set[str] = set()
    for earn in earns:
        if earn.idempotency_key in seen:
            raise AlreadyPosted(earn.idempotency_key)
        seen.add(earn.idempotency_key)
    keys = [e.idempotency_key for e in earns if not e.fresh_key]
    for start in range(0, len(keys), 500):
        found = session.execute(
            select(LedgerTransaction.idempotency_key, LedgerTransaction.id).where(
                LedgerTransaction.programme_id == programme.id,
                LedgerTransaction.idempotency_key.in_(keys[start : start + 500]),
            )
        ).first()
        if found is not None:
            raise AlreadyPosted(found[0], found[1])


_TABLES = Base.metadata.tables  # Core inserts: the rows are complete, no ORM bookkeeping needed
# The columns of the rows post_earns builds as tuples (every column: the rows are complete).
_TRANSACTION_KEYS = (
    "id", "programme_id", "wallet_id", "member_id", "kind", "idempotency_key", "source_type",
    "source_id", "rule_id", "rule_version", "actor", "reason", "reverses_id", "occurred_at",
    "posted_at", "details",
)  # fmt: skip
_LOT_KEYS = (
    "id", "programme_id", "wallet_id", "account_id", "transaction_id", "amount", "remaining",
    "pending", "available_at", "expires_at", "created_at",
)  # fmt: skip
_ENTRY_KEYS = (
    "id", "programme_id", "transaction_id", "account_id", "lot_id", "pending", "amount",
    "effective_at",
)  # fmt: skip
for _table, _keys in (
    ("ledger_transactions", _TRANSACTION_KEYS),
    ("ledger_lots", _LOT_KEYS),
    ("ledger_entries", _ENTRY_KEYS),
):
    assert set(_keys) == set(_TABLES[_table].c.keys()), _table


_ACCOUNTS = Base.metadata.tables["ledger_accounts"]
# The class of an account's identity key: (class, (id,), token), token None in our sessions
_ACCOUNT_IDENTITY = Session.identity_key(Account, uuid.UUID(int=0))[0]
assert Session.identity_key(Account, uuid.UUID(int=0)) == (
    _ACCOUNT_IDENTITY,
    (uuid.UUID(int=0),),
    None,
)
# compiled once, run through the driver (kit.prepared)
_ADD_TO_BALANCES = Prepared(
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("b_id"))
    .values(
        available=_ACCOUNTS.c.available + bindparam("b_available"),
        pending=_ACCOUNTS.c.pending + bindparam("b_pending"),
        lifetime_earned=_ACCOUNTS.c.lifetime_earned
        + bindparam("b_available")
        + bindparam("b_pending"),
    )
)
_ADD_TO_BALANCES_PG = Prepared(
    text(
        "UPDATE ledger_accounts AS a SET available = a.available + d.available, "
        "pending = a.pending + d.pending, "
        "lifetime_earned = a.lifetime_earned + d.available + d.pending "
        "FROM unnest(CAST(:ids AS uuid[]), CAST(:available AS bigint[]), "
        "CAST(:pending AS bigint[])) AS d(id, available, pending) WHERE a.id = d.id"
    )
)


def _add_to_balances(session: Session, balances: list[_Balance]) -> None:
    """Add what :func:`post_earns` credited to the cached balances: one UPDATE from arrays on
    PostgreSQL, an executemany on SQLite (in process); accounts the session holds as objects
    get the new values too, so that nothing reads a stale balance from its identity map."""
    if not balances:
        return
    if session.get_bind().dialect.name == "postgresql":
        _ADD_TO_BALANCES_PG.run(
            session,
            {
                "ids": [b.id for b in balances],
                "available": [b.added[0] for b in balances],
                "pending": [b.added[1] for b in balances],
            },
        )
    else:
        _ADD_TO_BALANCES.run_many(
            session,
            [{"b_id": b.id, "b_available": b.added[0], "b_pending": b.added[1]} for b in balances],
        )
    identities = session.identity_map
    for balance in balances:
        held = identities.get((_ACCOUNT_IDENTITY, (balance.id,), None))  # Session.identity_key
        if held is not None:
            for column in ("available", "pending", "lifetime_earned"):
                set_committed_value(held, column, getattr(balance, column))


def _insert(
    session: Session,
    posting: Posting,
    txn: LedgerTransaction,
    opened: list[Lot],
    entries: list[dict[str, Any]],
    programme: Programme,
) -> None:
    """Insert in foreign-key order with bulk statements; caches of existing rows are flushed
    (as UPDATEs) by the first statement's autoflush."""
    try:
        session.execute(insert(_TABLES["ledger_transactions"]), [_row(txn)])
    except IntegrityError as exc:  # a concurrent posting with the same key committed first
        if "idempotency_key" in str(exc.orig) or "uq_ledger_transactions" in str(exc.orig):
            raise AlreadyPosted(posting.idempotency_key) from exc
        raise
    if opened:
        session.execute(insert(_TABLES["ledger_lots"]), [_row(lot) for lot in opened])
    session.execute(insert(_TABLES["ledger_entries"]), entries)
    if posting.reversals:
        rows = [
            {
                "id": uuid7(),
                "programme_id": programme.id,
                "transaction_id": txn.id,
                "lot_id": lot.id,
                "amount": amount,
                "unrecovered": unrecovered,
            }
            for lot, amount, unrecovered in posting.reversals
        ]
        session.execute(insert(_TABLES["ledger_lot_reversals"]), rows)
    session.flush()


def _row(obj: LedgerTransaction | Lot) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}


def _check_shape(session: Session, posting: Posting, members: Mapping[uuid.UUID, Account]) -> None:
    if not posting.legs or sum(leg.amount for leg in posting.legs) != 0:
        raise UnbalancedPosting(f"posting {posting.idempotency_key!r} does not sum to zero")
    for leg in posting.legs:
        if leg.amount == 0:
            raise UnbalancedPosting("a leg of zero")
        member_account = members.get(leg.account_id)
        if member_account is None:
            if leg.lot or leg.opens or leg.pending:
                raise UnbalancedPosting("lots and pending value belong to member accounts")
            if not is_system_account(session, wallet=posting.wallet, account_id=leg.account_id):
                raise UnbalancedPosting(f"account {leg.account_id} is not of this wallet")
        elif member_account.wallet_id != posting.wallet.id:
            raise UnbalancedPosting("a member account of another wallet")
        if leg.opens is not None and (leg.amount < 0 or leg.lot is not None):
            raise UnbalancedPosting("a lot opens with a positive amount")
        if leg.lot is not None and leg.lot.account_id != leg.account_id:
            raise UnbalancedPosting("a lot of another account")


def check_unused(session: Session, *, programme: Programme, key: str) -> None:
    """Raise :class:`AlreadyPosted` if the programme has a transaction with ``key``."""
    found = session.scalar(
        select(LedgerTransaction.id).where(
            LedgerTransaction.programme_id == programme.id,
            LedgerTransaction.idempotency_key == key,
        )
    )
    if found is not None:
        raise AlreadyPosted(key, found)


def _transaction_row(programme: Programme, posting: Posting, now: datetime) -> LedgerTransaction:
    return LedgerTransaction(
        id=uuid7(),
        programme_id=programme.id,
        wallet_id=posting.wallet.id,
        member_id=posting.member_id,
        kind=posting.kind,
        idempotency_key=posting.idempotency_key,
        source_type=posting.source_type,
        source_id=posting.source_id,
        rule_id=posting.rule_id,
        rule_version=posting.rule_version,
        actor=posting.actor,
        reason=posting.reason,
        reverses_id=posting.reverses_id,
        occurred_at=posting.occurred_at,
        posted_at=now,
        details=posting.details,
    )


def _open_lots(
    posting: Posting,
    txn: LedgerTransaction,
    members: Mapping[uuid.UUID, Account],
    lots: dict[uuid.UUID, Lot],
) -> list[Leg]:
    """Legs with every ``opens`` replaced by a new lot (amount set, remaining zero)."""
    legs = []
    for leg in posting.legs:
        if leg.opens is not None:
            lot = Lot(
                id=uuid7(),
                programme_id=txn.programme_id,
                wallet_id=txn.wallet_id,
                account_id=leg.account_id,
                transaction_id=txn.id,
                amount=leg.amount,
                remaining=0,
                pending=0,
                available_at=leg.opens.available_at,
                expires_at=leg.opens.expires_at,
                created_at=txn.posted_at,
            )
            lots[lot.id] = lot
            leg = Leg(leg.account_id, leg.amount, leg.pending, lot)
        legs.append(leg)
    return legs


def _debt_repayments(legs: list[Leg], members: Mapping[uuid.UUID, Account]) -> list[Leg]:
    """Value credited to an available lot of an account in debt repays the debt first: the lot
    gives up the amount and the lot-less (debt) part of the balance receives it."""
    debt = {a.id: -a.available for a in members.values() if a.available < 0}
    repayments: list[Leg] = []
    for leg in legs:
        owed = debt.get(leg.account_id, 0)
        if owed <= 0 or leg.amount <= 0 or leg.pending or leg.lot is None:
            continue
        paid = min(owed, leg.amount)
        debt[leg.account_id] = owed - paid
        repayments += [Leg(leg.account_id, -paid, lot=leg.lot), Leg(leg.account_id, paid)]
    return repayments


def _apply(
    leg: Leg,
    txn: LedgerTransaction,
    members: Mapping[uuid.UUID, Account],
    lots: Mapping[uuid.UUID, Lot],
    counter: str | None,
) -> dict[str, Any]:
    account = members.get(leg.account_id)
    if account is not None:
        if leg.pending:
            account.pending += leg.amount
        else:
            account.available += leg.amount
        if counter is not None:
            column, sign = COUNTERS[counter]
            setattr(account, column, getattr(account, column) + sign * leg.amount)
    lot_id = None
    if leg.lot is not None:
        lot = lots[leg.lot.id]
        lot.remaining += leg.amount
        if leg.pending:
            lot.pending += leg.amount
        lot_id = lot.id
    return {
        "id": uuid7(),
        "programme_id": txn.programme_id,
        "transaction_id": txn.id,
        "account_id": leg.account_id,
        "lot_id": lot_id,
        "pending": leg.pending,
        "amount": leg.amount,
        "effective_at": txn.occurred_at,
    }


def _check_bounds(accounts: Sequence[Account] | Any, lots: Sequence[Lot] | Any) -> None:
    for account in accounts:
        for column in ("available", "pending", *(c for c, _ in COUNTERS.values())):
            if abs(getattr(account, column)) > MAX_BALANCE:
                raise BalanceLimit(
                    f"this posting would take the {column.replace('_', ' ')} balance of the "
                    f"member's account beyond the ledger's limit of {MAX_BALANCE} units"
                )
        if account.pending < 0:
            raise UnbalancedPosting(f"pending balance of account {account.id} below zero")
        if account.available < 0 and not account.allows_debt:
            raise InsufficientPoints("the available balance does not cover this amount")
    for lot in lots:
        if not 0 <= lot.pending <= lot.remaining <= lot.amount:
            raise UnbalancedPosting(f"lot {lot.id} out of bounds")


def _schedule(session: Session, programme: Programme, lots: list[Lot]) -> None:
    """Release and expiry jobs for new lots. The lot ids are new, so no job key is needed:
    exactly-once comes from the posting keys ``release:<lot>`` and ``expire:<lot>``."""
    for lot in lots:
        payload = {"lot_id": str(lot.id), "programme_id": str(programme.id)}
        if lot.pending and lot.available_at is not None:
            jobs.enqueue(
                session,
                kind=RELEASE_JOB,
                payload=payload,
                due_at=lot.available_at,
                programme_id=programme.id,
            )
        if lot.expires_at is not None:
            jobs.enqueue(
                session,
                kind=EXPIRE_JOB,
                payload=payload,
                due_at=lot.expires_at,
                programme_id=programme.id,
            )
