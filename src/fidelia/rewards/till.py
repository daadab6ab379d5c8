"""At the till: is this code valid for this member and basket, what does it take off, and
using it for an order.

:func:`verdict` is pure: the reasons, in the order a cashier needs them, and the discount.
Redeeming locks the voucher row, so two tills cannot both take the last use of a code; it is
idempotent by order id (a retry returns the first use).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.kit.clock import utcnow
from fidelia.ledger.wallets import currency_scale
from fidelia.models import Programme, Redemption, Voucher, VoucherPool, VoucherUse
from fidelia.notices import Notice, record_many
from fidelia.rewards.codes import normalise
from fidelia.rewards.errors import VoucherRejected
from fidelia.rewards.schemas import BasketIn, RedeemVoucherIn, ValidateIn

ZERO = Decimal(0)


@dataclass(frozen=True)
class Verdict:
    code: str
    reason: str | None
    detail: str
    discount: Decimal = ZERO
    voucher: Voucher | None = None

    @property
    def valid(self) -> bool:
        return self.reason is None


def _state(voucher: Voucher, member_id: uuid.UUID | None, now: datetime) -> tuple[str, str] | None:
    if voucher.status == "available":
        return "not_issued", "this code has not been issued yet"
    if voucher.status == "cancelled":
        return "cancelled", "this code was cancelled"
    if voucher.status == "used" or voucher.uses >= voucher.max_uses:
        return "used", "this code has been used already"
    if voucher.status == "expired" or (voucher.valid_until and voucher.valid_until <= now):
        return "expired", f"this code expired at {voucher.valid_until}"
    if voucher.valid_from and now < voucher.valid_from:
        return "not_yet_valid", f"this code is valid from {voucher.valid_from}"
    if voucher.member_id is not None and member_id is None:
        return "member_required", "this code is personal: identify the member"
    if voucher.member_id is not None and voucher.member_id != member_id:
        return "foreign", "this code belongs to another member"
    return None


def basket_total(basket: BasketIn) -> Decimal:
    """The basket's total as given, else the sum of its lines."""
    if basket.total is not None:
        return basket.total
    return sum((line.quantity * line.unit_price for line in basket.lines), ZERO)


def _discount(pool: VoucherPool, basket: BasketIn, scale: int) -> tuple[Decimal, str | None]:
    lines = basket.lines
    total = basket_total(basket)
    if pool.min_basket is not None and total < pool.min_basket:
        return ZERO, "min_basket"
    base = total
    if pool.categories:
        wanted = set(pool.categories)
        base = sum((ln.quantity * ln.unit_price for ln in lines if ln.category in wanted), ZERO)
        if base <= 0:
            return ZERO, "no_applicable_items"
    if pool.discount_type == "amount":
        off = min(pool.discount_value, base)
    else:
        off = base * pool.discount_value / 100
    return off.quantize(Decimal(1).scaleb(-scale), ROUND_HALF_UP), None


def verdict(
    voucher: Voucher | None,
    pool: VoucherPool | None,
    *,
    code: str,
    member_id: uuid.UUID | None,
    basket: BasketIn,
    now: datetime,
    scale: int,
) -> Verdict:
    """Whether ``voucher`` is valid for ``member_id`` and ``basket`` at ``now``, and what it
    takes off (rounded to the currency's minor unit)."""
    if voucher is None or pool is None:
        return Verdict(code, "unknown", "no such code")
    state = _state(voucher, member_id, now)
    if state is not None:
        return Verdict(code, state[0], state[1], voucher=voucher)
    off, reason = _discount(pool, basket, scale)
    if reason == "min_basket":
        return Verdict(code, reason, f"the basket must reach {pool.min_basket}", voucher=voucher)
    if reason is not None:
        cats = ", ".join(pool.categories)
        return Verdict(code, reason, f"no item of {cats} in the basket", voucher=voucher)
    return Verdict(code, None, "valid", off, voucher)


def _find(
    session: Session, programme: Programme, code: str, *, lock: bool
) -> tuple[Voucher | None, VoucherPool | None]:
    query = select(Voucher).where(Voucher.programme_id == programme.id, Voucher.code == code)
    voucher = session.scalar(query.with_for_update() if lock else query)
    pool = session.get(VoucherPool, voucher.pool_id) if voucher is not None else None
    return voucher, pool


def validate(
    session: Session, *, programme: Programme, data: ValidateIn, now: datetime | None = None
) -> Verdict:
    """Check a code for a member and basket without using it."""
    code = normalise(data.code)
    voucher, pool = _find(session, programme, code, lock=False)
    scale = currency_scale(programme.currency)
    return verdict(
        voucher, pool, code=code, member_id=data.member_id, basket=data.basket,
        now=now or utcnow(), scale=scale,
    )  # fmt: skip


def redeem(
    session: Session, *, programme: Programme, data: RedeemVoucherIn, now: datetime | None = None
) -> tuple[VoucherUse, Voucher, bool]:
    """Use the code for ``data.order_id``: (the use, the voucher, whether it is a replay).

    A code already used for this order returns that use; an invalid one raises
    :class:`VoucherRejected` (409, ``voucher_<reason>``) and changes nothing."""
    now = now or utcnow()
    code = normalise(data.code)
    voucher, pool = _find(session, programme, code, lock=True)
    if voucher is not None:
        done = session.scalar(
            select(VoucherUse).where(
                VoucherUse.voucher_id == voucher.id, VoucherUse.order_id == data.order_id
            )
        )
        if done is not None:
            return done, voucher, True
    scale = currency_scale(programme.currency)
    found = verdict(
        voucher, pool, code=code, member_id=data.member_id, basket=data.basket, now=now,
        scale=scale,
    )  # fmt: skip
    if found.reason is not None or voucher is None:
        raise VoucherRejected(f"{code}: {found.detail}", reason=found.reason or "unknown")
    return _use(session, programme, voucher, data, found.discount, now), voucher, False


def _use(
    session: Session,
    programme: Programme,
    voucher: Voucher,
    data: RedeemVoucherIn,
    discount: Decimal,
    now: datetime,
) -> VoucherUse:
    use = VoucherUse(
        programme_id=programme.id,
        voucher_id=voucher.id,
        order_id=data.order_id,
        member_id=data.member_id,
        discount=discount,
        basket_total=basket_total(data.basket),
        used_at=now,
    )
    session.add(use)
    record_many(
        session,
        programme.id,
        [
            Notice(
                "voucher.used",
                voucher.member_id or data.member_id,
                now,
                {"voucher_id": voucher.id, "order_id": data.order_id, "discount": discount},
            )
        ],
    )
    voucher.uses += 1
    voucher.updated_at = now
    if voucher.uses >= voucher.max_uses:
        voucher.status = "used"
    if voucher.redemption_id is not None:
        redemption = session.get(Redemption, voucher.redemption_id, with_for_update=True)
        if redemption is not None and redemption.status == "issued":
            redemption.status, redemption.used_at = "used", now
    session.flush()
    return use
