"""Redemptions: requested -> issued -> used / expired / cancelled.

Redeeming (:func:`redeem`, in ``redeeming``) locks the member, then takes the reward's stock
with a conditional update (or locks it for first-N scarcity), so of two redemptions of the
last unit exactly one wins. The points are spent through the ledger in the same transaction
(which locks the member's account), then the voucher or the fulfilment record is created; any
failure rolls all of it back. Lock order everywhere: voucher, redemption, reward, ledger
accounts.

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
from sqlalchemy.orm import Session

from fidelia.errors import NotFound, ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.kit.pagination import decode_cursor, encode_cursor
from fidelia.ledger import returns
from fidelia.ledger.wallets import currency_scale
from fidelia.members import service as members
from fidelia.models import Programme, Redemption, Voucher
from fidelia.rewards import service as catalogue
from fidelia.rewards.errors import InvalidState
from fidelia.rewards.redeeming import redeem
from fidelia.rewards.schemas import FULFILLED_KINDS

__all__ = ["by_key", "cancel", "expire_with_voucher", "fulfil", "get", "redeem", "value_of"]


def by_key(session: Session, programme: Programme, key: str) -> Redemption | None:
    return session.scalar(
        select(Redemption).where(
            Redemption.programme_id == programme.id, Redemption.idempotency_key == key
        )
    )


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
