"""Redemptions: requested -> issued -> used / expired / cancelled.

Redeeming locks the reward row (``FOR UPDATE``) first: stock, the member's limit and first-N
scarcity are read and changed under that lock, so of two redemptions of the last unit exactly
one wins. The points are spent through the ledger in the same transaction (which locks the
member's account), then the voucher or the fulfilment record is created; any failure rolls all
of it back. Lock order everywhere: voucher, redemption, reward, ledger accounts.

A redemption is idempotent by the caller's key: a retry returns the first redemption and
spends nothing. Cancelling an issued redemption reverses its spend (a linked ledger reversal),
returns the stock and cancels its unused voucher. Cashback conversions are final (``used`` at
once); vouchers become ``used`` at the till; other kinds when they are fulfilled.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fidelia.errors import NotFound, ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.kit.pagination import decode_cursor, encode_cursor
from fidelia.ledger import operations, returns
from fidelia.ledger.wallets import currency_scale
from fidelia.members import service as members
from fidelia.models import Programme, Redemption, Reward, Voucher, VoucherPool
from fidelia.rewards import eligibility, vouchers
from fidelia.rewards import service as catalogue
from fidelia.rewards.errors import IdempotencyMismatch, InvalidState, NotRedeemable, OutOfStock
from fidelia.rewards.schemas import FULFILLED_KINDS


def redeem(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    reward: str,
    idempotency_key: str,
    quantity: int = 1,
    fulfilment: dict[str, object] | None = None,
    now: datetime | None = None,
) -> Redemption:
    """Redeem ``quantity`` units of ``reward`` (code or id) for the member.

    Raises 404 (member, reward), 409 :class:`OutOfStock`, :class:`NotRedeemable` (window, tier,
    condition, limit, first-N), ``InsufficientPoints``, :class:`IdempotencyMismatch` (the key
    was used for another member or reward); the caller's transaction must then roll back.
    """
    now = now or utcnow()
    member = members.get_for_update(session, programme=programme, member_id=member_id)
    found = catalogue.find(session, programme=programme, ref=reward)
    if found.stock is not None or found.first_n is not None:
        # scarce: lock the reward so that the last unit (or the N-th member) is given once;
        # unlimited rewards stay unlocked, so members redeeming them never wait for each other
        session.refresh(found, with_for_update=True)
    first = by_key(session, programme, idempotency_key)
    if first is not None:
        if (first.member_id, first.reward_id) != (member_id, found.id):
            raise IdempotencyMismatch(f"key {idempotency_key!r} redeemed another reward or member")
        return first
    if quantity > 1 and found.kind == "voucher":
        raise ValidationFailed.on("quantity", "a voucher reward is redeemed one at a time")
    state = eligibility.member_state(session, member_id=member_id)
    ctx = eligibility.context(member, state)
    _check(session, programme, found, ctx, member_id, quantity, now)
    points = eligibility.price(found, ctx["member"]["tier"]) * quantity
    redemption = _insert(
        session, programme, found, member_id, idempotency_key, quantity, points, now
    )
    redemption.fulfilment = dict(fulfilment or {})
    spend = operations.spend(
        session,
        programme=programme,
        member_id=member_id,
        wallet="points",
        amount=points,
        idempotency_key=f"redemption:{redemption.id}",
        source_type="redemption",
        source_id=str(redemption.id),
        now=now,
    )
    redemption.spend_transaction_id = spend.id
    if found.stock is not None:
        found.stock -= quantity
    _issue(session, programme, found, redemption, now)
    session.flush()
    return redemption


def by_key(session: Session, programme: Programme, key: str) -> Redemption | None:
    return session.scalar(
        select(Redemption).where(
            Redemption.programme_id == programme.id, Redemption.idempotency_key == key
        )
    )


def _check(
    session: Session,
    programme: Programme,
    reward: Reward,
    ctx: dict[str, object],
    member_id: uuid.UUID,
    quantity: int,
    now: datetime,
) -> None:
    held = 0
    if reward.limit_per_member is not None or reward.first_n is not None:
        units = eligibility.units_of_member(session, member_id=member_id, reward_ids=[reward.id])
        held = units.get(reward.id, 0)
    served = 0
    if reward.first_n is not None and held == 0:
        served = eligibility.members_served(session, reward_ids=[reward.id]).get(reward.id, 0)
    why = eligibility.reasons(
        programme, reward, ctx=ctx, now=now, quantity=quantity, held=held, served=served
    )
    if why == ["out_of_stock"]:
        raise OutOfStock(f"reward {reward.code!r} has {reward.stock} left, {quantity} wanted")
    if why:
        raise NotRedeemable(f"reward {reward.code!r} cannot be redeemed", reasons=why)


def _insert(
    session: Session,
    programme: Programme,
    reward: Reward,
    member_id: uuid.UUID,
    key: str,
    quantity: int,
    points: int,
    now: datetime,
) -> Redemption:
    redemption = Redemption(
        programme_id=programme.id,
        member_id=member_id,
        reward_id=reward.id,
        kind=reward.kind,
        status="requested",
        idempotency_key=key,
        quantity=quantity,
        points=points,
        association=reward.association,
        value_minor=_value_minor(programme, reward, quantity),
        requested_at=now,
    )
    session.add(redemption)
    try:
        session.flush()
    except IntegrityError as exc:  # the same key, committed meanwhile for another reward
        # the caller rolls back the whole transaction, so no savepoint is needed
        raise IdempotencyMismatch(f"key {key!r} was used by a concurrent redemption") from exc
    return redemption


def _value_minor(programme: Programme, reward: Reward, quantity: int) -> int | None:
    if reward.value is None:
        return None
    minor = (reward.value * quantity).scaleb(currency_scale(programme.currency))
    return int(minor.to_integral_value())


def _issue(
    session: Session, programme: Programme, reward: Reward, redemption: Redemption, now: datetime
) -> None:
    """Create what the member gets: a voucher, a cashback credit, or a fulfilment to do."""
    redemption.status, redemption.issued_at = "issued", now
    if reward.kind == "voucher" and reward.pool_id is not None:
        pool = session.get(VoucherPool, reward.pool_id)
        assert pool is not None
        voucher = vouchers.issue(
            session,
            programme=programme,
            member_id=redemption.member_id,
            pool=pool,
            source="redemption",
            source_id=str(redemption.id),
            idempotency_key=f"redemption:{redemption.id}",
            redemption_id=redemption.id,
            now=now,
        )
        redemption.expires_at = voucher.valid_until
    elif reward.kind == "cashback" and reward.value is not None:
        credit = operations.award(
            session,
            programme=programme,
            member_id=redemption.member_id,
            wallet="cashback",
            amount=reward.value * redemption.quantity,
            idempotency_key=f"redemption:{redemption.id}:cashback",
            source_type="redemption",
            source_id=str(redemption.id),
            now=now,
        )
        redemption.cashback_transaction_id = credit.id
        redemption.status, redemption.used_at = "used", now


def get(
    session: Session, *, programme: Programme, redemption_id: uuid.UUID, lock: bool = False
) -> Redemption:
    """The programme's redemption ``redemption_id``; 404 if unknown."""
    query = select(Redemption).where(
        Redemption.programme_id == programme.id, Redemption.id == redemption_id
    )
    found = session.scalar(query.with_for_update() if lock else query)
    if found is None:
        raise NotFound(f"redemption {redemption_id} does not exist")
    return found


def voucher_of(session: Session, redemption: Redemption, *, lock: bool = False) -> Voucher | None:
    query = select(Voucher).where(Voucher.redemption_id == redemption.id)
    return session.scalar(query.with_for_update() if lock else query)


def cancel(
    session: Session,
    *,
    programme: Programme,
    redemption_id: uuid.UUID,
    reason: str,
    actor: str,
    now: datetime | None = None,
) -> Redemption:
    """Cancel an issued redemption: refund its points (a ledger reversal), return its stock,
    cancel its voucher. 409 :class:`InvalidState` if it is not issued or its voucher was used."""
    now = now or utcnow()
    unlocked = get(session, programme=programme, redemption_id=redemption_id)
    voucher = voucher_of(session, unlocked, lock=True)
    redemption = get(session, programme=programme, redemption_id=redemption_id, lock=True)
    if redemption.status != "issued":
        raise InvalidState(f"redemption {redemption.id} is {redemption.status}; only issued ones")
    if voucher is not None and voucher.uses > 0:
        raise InvalidState(f"the voucher of redemption {redemption.id} has been used")
    reward = catalogue.get(session, programme=programme, reward_id=redemption.reward_id, lock=True)
    if reward.stock is not None:
        reward.stock += redemption.quantity
    assert redemption.spend_transaction_id is not None
    refund = returns.reverse(
        session,
        programme=programme,
        transaction_id=redemption.spend_transaction_id,
        idempotency_key=f"redemption:{redemption.id}:cancel",
        reason=reason,
        actor=actor,
        now=now,
    )
    if voucher is not None:
        voucher.status, voucher.updated_at = "cancelled", now
    redemption.refund_transaction_id = refund.id
    redemption.status, redemption.cancelled_at, redemption.cancel_reason = "cancelled", now, reason
    session.flush()
    return redemption


def fulfil(
    session: Session,
    *,
    programme: Programme,
    redemption_id: uuid.UUID,
    actor: str,
    details: dict[str, object] | None = None,
    now: datetime | None = None,
) -> Redemption:
    """Record that an issued product, experience or donation was delivered (status used)."""
    now = now or utcnow()
    redemption = get(session, programme=programme, redemption_id=redemption_id, lock=True)
    if redemption.kind not in (*FULFILLED_KINDS, "donation"):
        raise InvalidState(f"a {redemption.kind} redemption is not fulfilled by hand")
    if redemption.status != "issued":
        raise InvalidState(f"redemption {redemption.id} is {redemption.status}; only issued ones")
    record = {"by": actor, "at": now.isoformat(), **(details or {})}
    redemption.fulfilment = {**redemption.fulfilment, "fulfilled": record}
    redemption.status, redemption.used_at = "used", now
    session.flush()
    return redemption


def list_for_member(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Redemption], str | None]:
    """The member's redemptions, newest first, by pages."""
    members.get(session, programme=programme, member_id=member_id)
    query = select(Redemption).where(
        Redemption.programme_id == programme.id, Redemption.member_id == member_id
    )
    if status is not None:
        query = query.where(Redemption.status == status)
    if cursor is not None:
        try:
            (after,) = decode_cursor(cursor)
            query = query.where(Redemption.id < uuid.UUID(str(after)))
        except ValueError as exc:
            raise ValidationFailed.on(("query", "cursor"), "malformed cursor") from exc
    rows = list(session.scalars(query.order_by(Redemption.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor([str(rows[-1].id)]) if more and rows else None


def expire_with_voucher(session: Session, *, voucher: Voucher, now: datetime) -> None:
    """Record that an unused voucher expired, on it and on its redemption."""
    if voucher.status != "active" or voucher.valid_until is None or voucher.valid_until > now:
        return
    voucher.status, voucher.updated_at = "expired", now
    if voucher.redemption_id is not None:
        redemption = session.get(Redemption, voucher.redemption_id, with_for_update=True)
        if redemption is not None and redemption.status == "issued":
            redemption.status = "expired"
    session.flush()


def value_of(programme: Programme, redemption: Redemption) -> Decimal | None:
    """The redemption's value in the programme currency."""
    if redemption.value_minor is None:
        return None
    return Decimal(redemption.value_minor).scaleb(-currency_scale(programme.currency))
