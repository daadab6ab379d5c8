"""Ledger operations: award, spend, adjust, transfer, release and expire.

Design note
-----------
Each operation locks the member accounts it touches (primary-key order), reads their lots,
plans the legs and hands them to :func:`fidelia.ledger.service.post`, the one writer. Amounts
are given in the wallet's unit (int points or Decimal money) and converted exactly to minor
units. Every operation takes ``now`` (defaults to the clock) so that tests, replays and jobs
pin time. Returns and reversals, which take value back, live in ``returns``.

Awards also come many at a time (:func:`award_many`, and :class:`DeferredAwards`, which the
engine run fills during a batch of events): they are planned one by one, exactly as
:func:`award` plans them, and written together by
:func:`fidelia.ledger.service.post_earns`, the set-based writer of earns.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.errors import ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.ledger import repository as repo
from fidelia.ledger.errors import AlreadyPosted, InsufficientPoints, NotSpendable
from fidelia.ledger.expiry import expiry_instant, pending_until
from fidelia.ledger.schemas import Amount
from fidelia.ledger.service import Earn, Leg, NewLot, Posting, check_unused, post, post_earns
from fidelia.ledger.wallets import expiry_policy, get_wallet, pending_policy, to_minor
from fidelia.models import Account, LedgerTransaction, Lot, Programme, Wallet

UNSET = datetime.min.replace(tzinfo=UTC)  # "use the wallet's policy" (None means "never expires")


def _positive(wallet: Wallet, amount: Amount) -> int:
    minor = to_minor(wallet, amount)
    if minor <= 0:
        raise ValidationFailed.on("amount", "must be greater than zero")
    return minor


def award(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    wallet: str,
    amount: Amount,
    idempotency_key: str,
    occurred_at: datetime | None = None,
    source_type: str = "event",
    source_id: str | None = None,
    rule_id: str | None = None,
    rule_version: int | None = None,
    expires_at: datetime | None = UNSET,
    available_at: datetime | None = None,
    hold: bool = False,
    fresh_key: bool = False,
    now: datetime | None = None,
) -> LedgerTransaction:
    """Credit ``amount`` to a member as a new lot (kind ``earn``), against ``issued``.

    Expiry follows the wallet's policy from ``occurred_at`` unless ``expires_at`` overrides it
    (None: never). The lot is pending until ``available_at`` (or the wallet's pending policy);
    ``hold=True`` keeps it pending until :func:`release_lot`. ``fresh_key``: the key comes
    from a row created in this transaction (an event's id), so no lookup is needed first.
    """
    now = now or utcnow()
    occurred_at = occurred_at or now
    found = get_wallet(session, programme=programme, code=wallet)
    minor = _positive(found, amount)
    lot, pending = _new_lot(programme, found, occurred_at, now, expires_at, available_at, hold)
    accounts = repo.lock_member_accounts(
        session, programme=programme, wallet=found, member_ids=[member_id]
    )
    issued = repo.system_account_id(session, wallet=found, kind="issued")
    legs = [Leg(accounts[member_id].id, minor, pending, opens=lot), Leg(issued, -minor)]
    posting = Posting(
        wallet=found,
        kind="earn",
        idempotency_key=idempotency_key,
        legs=legs,
        occurred_at=occurred_at,
        member_id=member_id,
        source_type=source_type,
        source_id=source_id,
        rule_id=rule_id,
        rule_version=rule_version,
        counter="earned",
        fresh_key=fresh_key,
    )
    return post(session, programme=programme, posting=posting, accounts=accounts, now=now)


@dataclass(frozen=True, slots=True)
class AwardRequest:
    """One award for :func:`award_many` or :class:`DeferredAwards`: :func:`award`'s arguments."""

    member_id: uuid.UUID
    wallet: str
    amount: Amount
    idempotency_key: str
    occurred_at: datetime | None = None
    source_type: str = "event"
    source_id: str | None = None
    rule_id: str | None = None
    rule_version: int | None = None
    expires_at: datetime | None = UNSET
    available_at: datetime | None = None
    hold: bool = False
    fresh_key: bool = False


def plan_award(
    session: Session, *, programme: Programme, request: AwardRequest, now: datetime
) -> Earn:
    """The earn :func:`award` would post for ``request``, checked and dated now: the errors
    of a bad wallet or amount are raised here, before anything is written."""
    occurred_at = request.occurred_at or now
    found = get_wallet(session, programme=programme, code=request.wallet)
    minor = _positive(found, request.amount)
    lot, pending = _new_lot(
        programme,
        found,
        occurred_at,
        now,
        request.expires_at,
        request.available_at,
        request.hold,
    )
    return Earn(
        wallet=found,
        member_id=request.member_id,
        amount=minor,
        pending=pending,
        lot=lot,
        idempotency_key=request.idempotency_key,
        occurred_at=occurred_at,
        source_type=request.source_type,
        source_id=request.source_id,
        rule_id=request.rule_id,
        rule_version=request.rule_version,
        fresh_key=request.fresh_key,
    )


def award_many(
    session: Session,
    *,
    programme: Programme,
    awards: Sequence[AwardRequest],
    now: datetime | None = None,
) -> list[uuid.UUID]:
    """Post many awards (of any members and wallets of ``programme``) at once, set-based
    (:func:`~fidelia.ledger.service.post_earns`): the same rows, balances and jobs as
    :func:`award` for each in turn, in a few statements. All or nothing. Returns the
    transaction ids, in order."""
    now = now or utcnow()
    earns = [plan_award(session, programme=programme, request=r, now=now) for r in awards]
    return post_earns(session, programme=programme, earns=earns, now=now)


class DeferredAwards:
    """Awards checked and planned as they come, posted together by :meth:`flush`.

    While it holds awards, anything that locks or reads ledger rows through the repository
    (another posting, a return, a balance) flushes it first, as the ORM autoflushes: every
    reader sees the awards planned before it, in their order. One per session at a time
    (registering replaces the previous one). If the transaction (or savepoint) it was made in
    is rolled back, its awards are dropped; a flush from a savepoint opened since would be
    lost with it if that savepoint rolled back, so it is refused (RuntimeError). A flush that
    fails (:class:`BalanceLimit`, :class:`AlreadyPosted`) posts none and keeps them all.
    """

    def __init__(self, session: Session, *, programme: Programme, now: datetime) -> None:
        self.session, self.programme, self.now = session, programme, now
        self.earns: list[Earn] = []
        self.keys: set[str] = set()
        self.home = session.get_nested_transaction()
        self.root = session.get_transaction()
        session.info[repo.DEFERRED] = self.flush

    def __len__(self) -> int:
        return len(self.earns)

    def add(self, request: AwardRequest) -> None:
        """Check and plan ``request``; raises what :func:`award` would for a bad wallet,
        amount or used idempotency key."""
        earn = plan_award(self.session, programme=self.programme, request=request, now=self.now)
        if earn.idempotency_key in self.keys:
            raise AlreadyPosted(earn.idempotency_key)
        if not earn.fresh_key:
            check_unused(self.session, programme=self.programme, key=earn.idempotency_key)
        self.keys.add(earn.idempotency_key)
        self.earns.append(earn)

    def truncate(self, size: int) -> None:
        """Drop the awards added after the first ``size`` (not posted yet)."""
        for earn in self.earns[size:]:
            self.keys.discard(earn.idempotency_key)
        del self.earns[size:]

    def flush(self) -> list[uuid.UUID]:
        """Post the awards held (one :func:`post_earns`); their transaction ids."""
        if not self.earns:
            return []
        home = self.home or self.root
        if home is None or not home.is_active:  # rolled back: they were never written
            self.earns.clear()
            self.close()
            return []
        if self.session.get_nested_transaction() is not self.home:
            raise RuntimeError("deferred awards flushed inside a savepoint opened after them")
        earns, self.earns = self.earns, []  # a flush from inside post_earns finds nothing
        try:
            return post_earns(self.session, programme=self.programme, earns=earns, now=self.now)
        except BaseException:
            # Nothing was posted: the awards stay, so that the next flush (the batch's write
            # at the latest) fails too, rather than their events standing without them.
            self.earns[:0] = earns
            raise

    def close(self) -> None:
        """Unregister from the session (flush first: what is held is dropped)."""
        if self.session.info.get(repo.DEFERRED) == self.flush:
            del self.session.info[repo.DEFERRED]


def _new_lot(
    programme: Programme,
    wallet: Wallet,
    occurred_at: datetime,
    now: datetime,
    expires_at: datetime | None,
    available_at: datetime | None,
    hold: bool,
) -> tuple[NewLot, bool]:
    """The lot to open and whether it starts pending."""
    if expires_at is UNSET:
        tz = ZoneInfo(programme.timezone)
        expires_at = expiry_instant(expiry_policy(wallet), earned_at=occurred_at, tz=tz)
    if hold:
        return NewLot(expires_at, None), True
    if available_at is None:
        pending, available_at = pending_until(
            pending_policy(wallet), earned_at=occurred_at, now=now
        )
        return NewLot(expires_at, available_at if pending else None), pending
    if available_at <= now:
        return NewLot(expires_at, None), False
    return NewLot(expires_at, available_at), True


def consume(lots: list[Lot], amount: int) -> list[tuple[Lot, int]]:
    """Take ``amount`` from ``lots`` in their order; the caller checked that they cover it."""
    taken: list[tuple[Lot, int]] = []
    for lot in lots:
        if amount <= 0:
            break
        part = min(amount, lot.remaining - lot.pending)
        if part > 0:
            taken.append((lot, part))
            amount -= part
    return taken


def _debit_legs(
    session: Session, account: Account, wallet: Wallet, minor: int, now: datetime
) -> list[Leg]:
    lots = repo.available_lots(session, account=account, now=now)
    spendable = sum(lot.remaining - lot.pending for lot in lots)
    usable = min(spendable, account.available)
    if usable < minor:
        raise InsufficientPoints(
            f"wallet {wallet.code!r} has {max(usable, 0)} available (minor units), {minor} needed"
        )
    return [Leg(account.id, -part, lot=lot) for lot, part in consume(lots, minor)]


def spend(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    wallet: str,
    amount: Amount,
    idempotency_key: str,
    source_type: str = "redemption",
    source_id: str | None = None,
    occurred_at: datetime | None = None,
    now: datetime | None = None,
) -> LedgerTransaction:
    """Debit ``amount`` from the member's available lots, soonest-expiring first (kind
    ``spend``, against ``redeemed``); 409 :class:`InsufficientPoints` if they do not cover it.
    """
    now = now or utcnow()
    found = get_wallet(session, programme=programme, code=wallet)
    if not found.spendable:
        raise NotSpendable(f"wallet {wallet!r} cannot be spent")
    minor = _positive(found, amount)
    accounts = repo.lock_member_accounts(
        session, programme=programme, wallet=found, member_ids=[member_id]
    )
    legs = _debit_legs(session, accounts[member_id], found, minor, now)
    redeemed = repo.system_account_id(session, wallet=found, kind="redeemed")
    posting = Posting(
        wallet=found,
        kind="spend",
        idempotency_key=idempotency_key,
        legs=[*legs, Leg(redeemed, minor)],
        occurred_at=occurred_at or now,
        member_id=member_id,
        source_type=source_type,
        source_id=source_id,
        counter="spent",
    )
    return post(session, programme=programme, posting=posting, accounts=accounts, now=now)


def adjust(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    wallet: str,
    amount: Amount,
    reason: str,
    actor: str,
    idempotency_key: str,
    expires_at: datetime | None = UNSET,
    now: datetime | None = None,
) -> LedgerTransaction:
    """An operator's correction against ``adjusted``: a positive ``amount`` opens a lot (wallet
    expiry unless overridden), a negative one debits lots like a spend (never below zero)."""
    now = now or utcnow()
    found = get_wallet(session, programme=programme, code=wallet)
    minor = to_minor(found, amount)
    if minor == 0:
        raise ValidationFailed.on("amount", "must not be zero")
    if not reason.strip() or not actor.strip():
        raise ValidationFailed.on("reason", "an adjustment needs a reason and an actor")
    accounts = repo.lock_member_accounts(
        session, programme=programme, wallet=found, member_ids=[member_id]
    )
    account = accounts[member_id]
    if minor > 0:
        lot, _ = _new_lot(programme, found, now, now, expires_at, now, False)
        legs = [Leg(account.id, minor, opens=lot)]
    else:
        legs = _debit_legs(session, account, found, -minor, now)
    adjusted = repo.system_account_id(session, wallet=found, kind="adjusted")
    posting = Posting(
        wallet=found,
        kind="adjust",
        idempotency_key=idempotency_key,
        legs=[*legs, Leg(adjusted, -minor)],
        occurred_at=now,
        member_id=member_id,
        source_type="operator",
        source_id=actor,
        actor=actor,
        reason=reason,
    )
    return post(session, programme=programme, posting=posting, accounts=accounts, now=now)


def transfer(
    session: Session,
    *,
    programme: Programme,
    from_member_id: uuid.UUID,
    to_member_id: uuid.UUID,
    wallet: str,
    amount: Amount,
    idempotency_key: str,
    reason: str | None = None,
    now: datetime | None = None,
) -> LedgerTransaction:
    """Move ``amount`` between two members in one transaction. The receiver gets one lot per
    lot consumed from the sender, with the same expiry, so a transfer never extends validity."""
    now = now or utcnow()
    if from_member_id == to_member_id:
        raise ValidationFailed.on("to_member_id", "a member cannot transfer to themself")
    found = get_wallet(session, programme=programme, code=wallet)
    if not found.spendable:
        raise NotSpendable(f"wallet {wallet!r} cannot be transferred")
    minor = _positive(found, amount)
    accounts = repo.lock_member_accounts(
        session, programme=programme, wallet=found, member_ids=[from_member_id, to_member_id]
    )
    debits = _debit_legs(session, accounts[from_member_id], found, minor, now)
    receiver = accounts[to_member_id].id
    credits = [
        Leg(receiver, -leg.amount, opens=NewLot(expires_at=leg.lot.expires_at if leg.lot else None))
        for leg in debits
    ]
    posting = Posting(
        wallet=found,
        kind="transfer",
        idempotency_key=idempotency_key,
        legs=[*debits, *credits],
        occurred_at=now,
        member_id=from_member_id,
        source_type="member",
        source_id=str(from_member_id),
        reason=reason,
        details={"to_member_id": str(to_member_id)},
    )
    return post(session, programme=programme, posting=posting, accounts=accounts, now=now)


def _owner(session: Session, lot: Lot) -> tuple[Account, Wallet, uuid.UUID]:
    account = session.get(Account, lot.account_id)
    wallet = session.get(Wallet, lot.wallet_id)
    if account is None or account.member_id is None or wallet is None:
        raise LookupError(f"lot {lot.id} has no member account")
    return account, wallet, account.member_id


def release_lot(
    session: Session, *, programme: Programme, lot_id: uuid.UUID, now: datetime | None = None
) -> LedgerTransaction | None:
    """Make a pending lot available (kind ``release``, key ``release:<lot>``); None if it is
    not pending any more (released, or cancelled by a return)."""
    now = now or utcnow()
    lot = repo.lot_for_update(session, programme=programme, lot_id=lot_id)
    if lot.pending == 0:
        return None
    account, wallet, member_id = _owner(session, lot)
    due = lot.available_at if lot.available_at is not None and lot.available_at <= now else now
    posting = Posting(
        wallet=wallet,
        kind="release",
        idempotency_key=f"release:{lot.id}",
        legs=[Leg(account.id, -lot.pending, True, lot), Leg(account.id, lot.pending, False, lot)],
        occurred_at=due,
        member_id=member_id,
        details={"lot_id": str(lot.id)},
    )
    return post(
        session,
        programme=programme,
        posting=posting,
        accounts={member_id: account},
        now=now,
    )


def expire_lot(
    session: Session, *, programme: Programme, lot_id: uuid.UUID, now: datetime | None = None
) -> LedgerTransaction | None:
    """Expire what remains of a due lot (kind ``expire``, key ``expire:<lot>``, against
    ``expired``, effective at the lot's expiry); None if nothing is due."""
    now = now or utcnow()
    lot = repo.lot_for_update(session, programme=programme, lot_id=lot_id)
    if lot.expires_at is None or lot.expires_at > now or lot.remaining == 0:
        return None
    account, wallet, member_id = _owner(session, lot)
    legs = [Leg(account.id, -lot.pending, True, lot)] if lot.pending else []
    if lot.remaining > lot.pending:
        legs.append(Leg(account.id, -(lot.remaining - lot.pending), False, lot))
    expired = repo.system_account_id(session, wallet=wallet, kind="expired")
    posting = Posting(
        wallet=wallet,
        kind="expire",
        idempotency_key=f"expire:{lot.id}",
        legs=[*legs, Leg(expired, lot.remaining)],
        occurred_at=lot.expires_at,
        member_id=member_id,
        counter="expired",
        details={"lot_id": str(lot.id)},
    )
    return post(
        session,
        programme=programme,
        posting=posting,
        accounts={member_id: account},
        now=now,
    )


def due_lots(
    session: Session, *, programme: Programme, now: datetime, limit: int = 1000
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Ids of lots due for release and for expiry (for a catch-up sweep without the worker)."""
    base = select(Lot.id).where(Lot.programme_id == programme.id).limit(limit)
    release = base.where(Lot.pending > 0, Lot.available_at <= now)
    expire = base.where(Lot.remaining > 0, Lot.expires_at <= now)
    return list(session.scalars(release)), list(session.scalars(expire))
