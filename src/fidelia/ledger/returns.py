"""Taking value back: returns of an earn, and reversals of any transaction.

Design note
-----------
A return takes back a share of what one ``earn`` transaction awarded, from the lots it opened,
never recomputed: the share is a fraction of the original award (cumulative across partial
returns, so returns whose fractions add up to 1 take back exactly the award) or an explicit
amount. Value is taken back from the original lot (its pending part first: a return inside
the return window cancels points before release), then from the member's other available
lots (soonest-expiring first), and what is left -- value already spent -- follows the
wallet's policy: ``allow_debt`` puts the balance below zero (repaid by future earnings),
``clamp`` stops at zero and books the rest on the ``unrecovered`` system account, and every
lot reversal records both parts. A reversal undoes a whole transaction the same way (credits
taken back, debits restored to their lots, or to a new lot if theirs has expired), linked by
``reverses_id``; a second reversal is refused (and a partial UNIQUE index backs this).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fidelia.errors import NotFound, ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.ledger import followed
from fidelia.ledger import repository as repo
from fidelia.ledger.errors import ExceedsAward, NotReversible, UnbalancedPosting
from fidelia.ledger.expiry import expiry_instant
from fidelia.ledger.schemas import Amount
from fidelia.ledger.service import Leg, NewLot, Posting, check_unused, post
from fidelia.ledger.wallets import expiry_policy, to_minor
from fidelia.models import Account, Entry, LedgerTransaction, Lot, LotReversal, Programme, Wallet

COUNTER_OF_KIND = {"earn": "earned", "return": "earned", "spend": "spent", "expire": "expired"}


@dataclass
class _Taker:
    """Takes value back from one member account within one posting."""

    session: Session
    account: Account
    now: datetime
    legs: list[Leg] = field(default_factory=list)
    used: dict[tuple[uuid.UUID, bool], int] = field(default_factory=lambda: defaultdict(int))
    others: list[Lot] | None = None

    def take(self, lot: Lot | None, amount: int, moved: Sequence[Lot] = ()) -> int:
        """Take ``amount`` from ``lot``, then from the lots a merge ``moved`` it to, then from
        the account's other lots; returns the part that could not be taken (clamp policy)."""
        rest = amount
        for source in [lot, *moved] if lot is not None else []:
            if source.account_id == self.account.id:
                rest = self._from_lot(source, rest, pending=True)
                rest = self._from_lot(source, rest, pending=False)
        if rest and self.others is None:
            self.others = repo.available_lots(
                self.session, account=self.account, now=self.now, include_overdue=True
            )
        for other in self.others or []:
            if not rest:
                break
            rest = self._from_lot(other, rest, pending=False)
        if rest and self.account.allows_debt:
            self.legs.append(Leg(self.account.id, -rest))
            rest = 0
        return rest

    def _from_lot(self, lot: Lot, amount: int, *, pending: bool) -> int:
        key = (lot.id, pending)
        room = (lot.pending if pending else lot.remaining - lot.pending) - self.used[key]
        part = min(amount, room)
        if part > 0:
            self.used[key] += part
            self.legs.append(Leg(self.account.id, -part, pending, lot))
        return amount - max(part, 0)


def _transaction(session: Session, programme: Programme, txn_id: uuid.UUID) -> LedgerTransaction:
    repo.flush_deferred(session)
    txn = session.get(LedgerTransaction, txn_id)
    if txn is None or txn.programme_id != programme.id:
        raise NotFound(f"ledger transaction {txn_id} does not exist")
    return txn


def _returned(session: Session, lots: list[Lot]) -> dict[uuid.UUID, int]:
    rows = session.execute(
        select(LotReversal.lot_id, func.sum(LotReversal.amount))
        .where(LotReversal.lot_id.in_([lot.id for lot in lots]))
        .group_by(LotReversal.lot_id)
    )
    found = {lot_id: int(total) for lot_id, total in rows}
    return {lot.id: found.get(lot.id, 0) for lot in lots}


def _opened_lots(session: Session, txn: LedgerTransaction) -> list[Lot]:
    query = select(Lot).where(Lot.transaction_id == txn.id).order_by(Lot.id)
    return list(session.scalars(query.execution_options(populate_existing=True)))


def _previous_fraction(session: Session, original: LedgerTransaction) -> Decimal:
    details = session.scalars(
        select(LedgerTransaction.details).where(
            LedgerTransaction.reverses_id == original.id, LedgerTransaction.kind == "return"
        )
    )
    return sum((Decimal(d.get("fraction", "0")) for d in details), Decimal(0))


def _target(
    wallet: Wallet,
    *,
    total: int,
    left: int,
    before: Decimal,
    fraction: Decimal | None,
    amount: Amount | None,
) -> tuple[int, Decimal]:
    """How much to take back now, and the fraction of the award it stands for."""
    if (fraction is None) == (amount is None):
        raise ValidationFailed.on("fraction", "give either a fraction or an amount")
    if amount is not None:
        minor = to_minor(wallet, amount)
        if minor <= 0:
            raise ValidationFailed.on("amount", "must be greater than zero")
        fraction = Decimal(minor) / Decimal(total)
    else:
        assert fraction is not None
        if not Decimal(0) < fraction <= Decimal(1):
            raise ValidationFailed.on("fraction", "must be in (0, 1]")
        cumulative = (Decimal(total) * (before + fraction)).quantize(Decimal(1), ROUND_HALF_UP)
        minor = int(cumulative) - (total - left)
    if left == 0 or minor > left or before + fraction > Decimal(1):
        raise ExceedsAward(
            f"this return takes back {minor} but only {left} of {total} is left to return"
        )
    return max(minor, 0), fraction


def _allocate(amount: int, lots: list[Lot], left: dict[uuid.UUID, int]) -> list[tuple[Lot, int]]:
    """Split ``amount`` over lots in proportion to what is left of each (largest remainder)."""
    total = sum(left.values())
    shares = [(lot, amount * left[lot.id] // total) for lot in lots]
    short = amount - sum(s for _, s in shares)
    order = sorted(range(len(lots)), key=lambda i: -(amount * left[lots[i].id] % total))
    for i in order[:short]:
        shares[i] = (shares[i][0], shares[i][1] + 1)
    return [(lot, share) for lot, share in shares if share > 0]


def return_award(
    session: Session,
    *,
    programme: Programme,
    transaction_id: uuid.UUID,
    idempotency_key: str,
    fraction: Decimal | None = None,
    amount: Amount | None = None,
    source_type: str = "event",
    source_id: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> LedgerTransaction | None:
    """Take back ``fraction`` of what the earn ``transaction_id`` awarded (or ``amount`` in the
    wallet's unit), including pending and already-spent value (see the module note).

    Returns None when the share rounds to nothing. Raises :class:`ExceedsAward` (409) when more
    than what is left of the award would be taken back, :class:`AlreadyPosted` (409) when the
    idempotency key (the return's key) was used.
    """
    now = now or utcnow()
    original = _transaction(session, programme, transaction_id)
    member_id = original.member_id
    if original.kind != "earn" or member_id is None:
        raise NotReversible(f"transaction {original.id} is a {original.kind}, not an earn")
    wallet = session.get(Wallet, original.wallet_id)
    assert wallet is not None
    holder = followed.holder(session, member_id=member_id)
    accounts = repo.lock_member_accounts(
        session, programme=programme, wallet=wallet, member_ids=[holder]
    )
    check_unused(session, programme=programme, key=idempotency_key)
    lots = _opened_lots(session, original)
    moved = followed.successors(session, member_id=member_id, lot_ids=[lot.id for lot in lots])
    returned = _returned(session, lots)
    left = {lot.id: lot.amount - returned[lot.id] for lot in lots}
    total = sum(lot.amount for lot in lots)
    minor, share = _target(
        wallet,
        total=total,
        left=sum(left.values()),
        before=_previous_fraction(session, original),
        fraction=fraction,
        amount=amount,
    )
    if minor == 0:
        return None
    taker = _Taker(session, accounts[holder], now)
    reversals = [
        (lot, part, taker.take(lot, part, moved.get(lot.id, ())))
        for lot, part in _allocate(minor, lots, left)
    ]
    legs = _with_counterparts(session, wallet, taker.legs, reversals, original)
    posting = Posting(
        wallet=wallet,
        kind="return",
        idempotency_key=idempotency_key,
        legs=legs,
        occurred_at=now,
        member_id=holder,
        source_type=source_type,
        source_id=source_id,
        reason=reason,
        reverses_id=original.id,
        counter="earned",
        reversals=reversals,
        details={"fraction": str(share)},
    )
    return post(session, programme=programme, posting=posting, accounts=accounts, now=now)


def _with_counterparts(
    session: Session,
    wallet: Wallet,
    legs: list[Leg],
    reversals: list[tuple[Lot, int, int]],
    original: LedgerTransaction,
) -> list[Leg]:
    """Member legs plus the ``unrecovered`` leg and the original's system account leg."""
    unrecovered = sum(z for _, _, z in reversals)
    out = list(legs)
    if unrecovered:
        out.append(
            Leg(repo.system_account_id(session, wallet=wallet, kind="unrecovered"), -unrecovered)
        )
    rest = -sum(leg.amount for leg in out)
    if rest:
        system = session.scalar(
            select(Entry.account_id)
            .join(Account, Account.id == Entry.account_id)
            .where(Entry.transaction_id == original.id, Account.member_id.is_(None))
            .limit(1)
        )
        if system is None:
            raise UnbalancedPosting(f"cannot balance the reversal of {original.id}")
        out.append(Leg(system, rest))
    return out


def reverse(
    session: Session,
    *,
    programme: Programme,
    transaction_id: uuid.UUID,
    idempotency_key: str,
    reason: str,
    actor: str,
    now: datetime | None = None,
) -> LedgerTransaction:
    """Undo transaction ``transaction_id`` with a linked ``reverse`` transaction: value it
    credited is taken back (what is left of it after returns), value it debited is restored.
    Releases, returns and reversals cannot be reversed; a transaction is reversed once."""
    now = now or utcnow()
    original = _transaction(session, programme, transaction_id)
    if original.kind in ("release", "return", "reverse"):
        raise NotReversible(f"a {original.kind} transaction cannot be reversed")
    entries = list(session.scalars(select(Entry).where(Entry.transaction_id == original.id)))
    locked = repo.lock_accounts_by_id(session, {e.account_id for e in entries})
    _check_not_reversed(session, original)
    check_unused(session, programme=programme, key=idempotency_key)
    accounts = {a.member_id: a for a in locked if a.member_id is not None}
    wallet = session.get(Wallet, original.wallet_id)
    assert wallet is not None
    opened = _opened_lots(session, original)
    route, moved = _follow_merges(session, programme, wallet, accounts, entries)
    takers = {a.id: _Taker(session, a, now) for a in accounts.values()}
    returned = _returned(session, opened)
    reversals = [
        (
            lot,
            lot.amount - returned[lot.id],
            takers[route.get(lot.account_id, lot.account_id)].take(
                lot, lot.amount - returned[lot.id], moved.get(lot.id, ())
            ),
        )
        for lot in opened
        if lot.amount > returned[lot.id]
    ]
    restores = _restores(session, programme, wallet, entries, takers, route, original, now)
    member_legs = [leg for t in takers.values() for leg in t.legs] + restores
    if not member_legs:
        raise NotReversible(f"transaction {original.id} has nothing left to reverse")
    posting = Posting(
        wallet=wallet,
        kind="reverse",
        idempotency_key=idempotency_key,
        legs=_with_counterparts(session, wallet, member_legs, reversals, original),
        occurred_at=now,
        member_id=original.member_id,
        source_type="operator",
        source_id=actor,
        actor=actor,
        reason=reason,
        reverses_id=original.id,
        counter=COUNTER_OF_KIND.get(original.kind),
        reversals=reversals,
    )
    return post(session, programme=programme, posting=posting, accounts=accounts, now=now)


def _follow_merges(
    session: Session,
    programme: Programme,
    wallet: Wallet,
    accounts: dict[uuid.UUID, Account],
    entries: list[Entry],
) -> tuple[dict[uuid.UUID, uuid.UUID], dict[uuid.UUID, list[Lot]]]:
    """Accounts of merged members routed to their holder's account (locked and added to
    ``accounts``), and where the lots of the entries went (see ``followed``)."""
    holders = {m: followed.holder(session, member_id=m) for m in list(accounts)}
    new = {h for m, h in holders.items() if h != m and h not in accounts}
    if new:
        accounts.update(
            repo.lock_member_accounts(session, programme=programme, wallet=wallet, member_ids=new)
        )
    route = {accounts[m].id: accounts[h].id for m, h in holders.items() if h != m}
    lot_ids = [e.lot_id for e in entries if e.lot_id is not None]
    moved: dict[uuid.UUID, list[Lot]] = {}
    for member_id in holders:
        moved.update(followed.successors(session, member_id=member_id, lot_ids=lot_ids))
    return route, moved


def _check_not_reversed(session: Session, original: LedgerTransaction) -> None:
    found = session.scalar(
        select(LedgerTransaction.id).where(
            LedgerTransaction.reverses_id == original.id, LedgerTransaction.kind == "reverse"
        )
    )
    if found is not None:
        raise NotReversible(f"transaction {original.id} was already reversed by {found}")


def _restores(
    session: Session,
    programme: Programme,
    wallet: Wallet,
    entries: list[Entry],
    takers: dict[uuid.UUID, _Taker],
    route: dict[uuid.UUID, uuid.UUID],
    original: LedgerTransaction,
    now: datetime,
) -> list[Leg]:
    """Give back what the original debited from lots it did not open: to the same lot while
    it is valid, else to a new lot under the wallet's expiry policy from now. A member merged
    since gets nothing: its holder (``route``) gets a new lot with the lot's expiry."""
    legs: list[Leg] = []
    for entry in entries:
        if entry.account_id not in takers or entry.amount > 0 or entry.lot_id is None:
            continue
        lot = session.get(Lot, entry.lot_id, populate_existing=True)
        assert lot is not None
        if lot.transaction_id == original.id:
            continue  # a debt repayment inside the original: undone with the lot itself
        valid = lot.expires_at is None or lot.expires_at > now
        target = route.get(entry.account_id)
        if target is not None and valid:
            legs.append(Leg(target, -entry.amount, opens=NewLot(lot.expires_at)))
        elif target is None and valid and lot.remaining - entry.amount <= lot.amount:
            legs.append(Leg(entry.account_id, -entry.amount, entry.pending, lot))
        else:
            tz = ZoneInfo(programme.timezone)
            expires = expiry_instant(expiry_policy(wallet), earned_at=now, tz=tz)
            legs.append(Leg(target or entry.account_id, -entry.amount, opens=NewLot(expires)))
    return legs
