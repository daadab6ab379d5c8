"""Paying an order at the till with the cashback wallet (or points, where the programme
allows it), and giving it back when the order is returned.

Design note
-----------
The document's ``till.pay_with`` names the wallets a member may pay with (default: cashback).
An amount is asked in the programme currency and converted with the wallet's unit value
(1 point = 0.01 € pays 5 € with 500 points); an amount that is not a whole number of the
wallet's minor unit is refused, never rounded. :func:`quote` says what can be paid without
writing; :func:`pay` spends it through the ledger (lots soonest-expiring first) with the
idempotency key ``till:<order>:<wallet>``: a retry for the same order answers the first
payment, a different amount for a paid order is a 409. A return of the order gives back the
returned share (the returned lines' value over the order's, cumulative, so returns that add
up to the whole order give back exactly the payment) as a credit; cancelling the order
before it completes reverses the payment (the value goes back to its original lots).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.errors import Conflict, NotFound, ValidationFailed
from fidelia.events.schemas import Purchase, Return
from fidelia.examples import examples
from fidelia.kit.clock import utcnow
from fidelia.ledger import operations as ledger
from fidelia.ledger import returns as ledger_returns
from fidelia.ledger.repository import find_member_account
from fidelia.ledger.spends import SpendRequest, spend_many
from fidelia.ledger.wallets import find_wallet, from_minor, to_minor
from fidelia.members import service as members
from fidelia.models import Event, Programme, Wallet
from fidelia.models.plans import TillPayment
from fidelia.plans import examples as ex
from fidelia.plans.definitions import sections_for
from fidelia.plans.schemas import Slug, TillSection

Money = Field(gt=0, max_digits=12, decimal_places=4)


class TillPayIn(BaseModel):
    """Pay ``amount`` (programme currency) of order ``order_id`` from the member's ``wallet``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.TILL_PAY))

    member_id: uuid.UUID
    order_id: str = Field(min_length=1, max_length=100)
    wallet: Slug = "cashback"
    amount: Decimal = Money
    order_total: Decimal = Money


class TillQuoteOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.TILL_QUOTE))

    member_id: uuid.UUID
    order_id: str
    wallet: str
    valid: bool
    reason: str | None = Field(None, description="Why not: the first reason a cashier needs")
    detail: str
    requested: Decimal
    available: Decimal = Field(description="What the wallet can pay now, in the currency")
    payable: Decimal = Field(description="The most this order can take from the wallet")
    units: str = Field(description="The requested amount in the wallet's unit (points, €)")


class TillPaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ex.TILL_PAYMENT))

    id: uuid.UUID
    member_id: uuid.UUID
    order_id: str
    wallet: str
    value: Decimal
    units: str
    order_total: Decimal
    refunded_units: str
    status: str
    transaction_id: uuid.UUID
    created_at: datetime
    replay: bool = False


@dataclass(frozen=True)
class _Ask:
    wallet: Wallet
    minor: int
    available_minor: int


def _section(session: Session, programme: Programme) -> TillSection:
    return sections_for(session, programme).till or TillSection()


def _units(wallet: Wallet, value: Decimal) -> Decimal:
    return value / wallet.unit_value if wallet.unit_value else value


def _value(wallet: Wallet, minor: int) -> Decimal:
    return Decimal(str(from_minor(wallet, minor))) * (wallet.unit_value or Decimal(1))


def _ask(session: Session, programme: Programme, data: TillPayIn, now: datetime) -> _Ask:
    """The wallet and the minor units asked; 422 naming the field for what is not allowed."""
    section = _section(session, programme)
    if data.wallet not in section.pay_with:
        allowed = ", ".join(section.pay_with)
        raise ValidationFailed.on(("body", "wallet"), f"the till takes {allowed} only")
    wallet = find_wallet(session, programme=programme, code=data.wallet)
    if wallet is None or not wallet.spendable:
        raise ValidationFailed.on(("body", "wallet"), f"no spendable wallet {data.wallet!r}")
    if data.amount > data.order_total:
        raise ValidationFailed.on(("body", "amount"), "more than the order total")
    if data.order_total < section.min_order:
        raise ValidationFailed.on(
            ("body", "order_total"), f"the till takes orders from {section.min_order}"
        )
    members.get(session, programme=programme, member_id=data.member_id)
    units = _units(wallet, data.amount)
    minor = to_minor(wallet, units.normalize(), loc=("body", "amount"))
    account = find_member_account(session, wallet=wallet, member_id=data.member_id)
    return _Ask(wallet, minor, max(account.available, 0) if account is not None else 0)


def quote(
    session: Session, *, programme: Programme, data: TillPayIn, now: datetime | None = None
) -> TillQuoteOut:
    """Whether ``data`` can be paid now, and the most the order can take; writes nothing."""
    ask = _ask(session, programme, data, now or utcnow())
    available = _value(ask.wallet, ask.available_minor)
    payable = min(available, data.order_total)
    enough = ask.minor <= ask.available_minor
    return TillQuoteOut(
        member_id=data.member_id,
        order_id=data.order_id,
        wallet=data.wallet,
        valid=enough,
        reason=None if enough else "insufficient_balance",
        detail="valid" if enough else f"the wallet holds {available} only",
        requested=data.amount,
        available=available,
        payable=payable,
        units=str(from_minor(ask.wallet, ask.minor)),
    )


def _existing(
    session: Session, programme: Programme, order_id: str, wallet: str
) -> TillPayment | None:
    return session.scalar(
        select(TillPayment).where(
            TillPayment.programme_id == programme.id,
            TillPayment.order_id == order_id,
            TillPayment.wallet == wallet,
        )
    )


def pay(
    session: Session, *, programme: Programme, data: TillPayIn, now: datetime | None = None
) -> tuple[TillPayment, bool]:
    """Spend ``data.amount`` from the wallet for the order: (the payment, whether a replay).
    409 ``insufficient_balance`` and changes nothing if the wallet does not cover it."""
    now = now or utcnow()
    done = _existing(session, programme, data.order_id, data.wallet)
    if done is not None:
        if done.member_id != data.member_id or done.value != data.amount:
            raise Conflict(
                f"order {data.order_id!r} was paid with {done.value} of {data.wallet} already"
            )
        return done, True
    ask = _ask(session, programme, data, now)
    txn_id = spend_many(
        session,
        programme=programme,
        spends=[
            SpendRequest(
                member_id=data.member_id,
                amount=from_minor(ask.wallet, ask.minor),
                idempotency_key=f"till:{data.order_id}:{data.wallet}",
                wallet=data.wallet,
                source_type="till",
                source_id=data.order_id,
                occurred_at=now,
            )
        ],
        now=now,
    )[0]
    payment = TillPayment(
        programme_id=programme.id,
        member_id=data.member_id,
        order_id=data.order_id,
        wallet=data.wallet,
        amount=ask.minor,
        value=data.amount,
        order_total=data.order_total,
        transaction_id=txn_id,
        refunded=0,
        status="used",
    )
    session.add(payment)
    session.flush()
    return payment, False


def payments_of(session: Session, *, programme: Programme, order_id: str) -> list[TillPayment]:
    return list(
        session.scalars(
            select(TillPayment)
            .where(TillPayment.programme_id == programme.id, TillPayment.order_id == order_id)
            .order_by(TillPayment.wallet)
        )
    )


def cancel(
    session: Session,
    *,
    programme: Programme,
    order_id: str,
    actor: str,
    now: datetime | None = None,
) -> list[TillPayment]:
    """The order did not go through: reverse its payments (value back to its lots)."""
    now = now or utcnow()
    found = [p for p in payments_of(session, programme=programme, order_id=order_id)]
    if not found:
        raise NotFound(f"order {order_id!r} has no till payment")
    for payment in found:
        if payment.status == "reversed":
            continue
        if payment.refunded:
            raise Conflict(f"order {order_id!r} was partly refunded by a return already")
        ledger_returns.reverse(
            session,
            programme=programme,
            transaction_id=payment.transaction_id,
            idempotency_key=f"till-cancel:{order_id}:{payment.wallet}",
            reason=f"order {order_id} cancelled",
            actor=actor,
            now=now,
        )
        payment.status, payment.refunded = "reversed", payment.amount
    session.flush()
    return found


def out(
    session: Session, programme: Programme, payment: TillPayment, replay: bool = False
) -> TillPaymentOut:
    wallet = find_wallet(session, programme=programme, code=payment.wallet)
    assert wallet is not None
    return TillPaymentOut(
        id=payment.id,
        member_id=payment.member_id,
        order_id=payment.order_id,
        wallet=payment.wallet,
        value=payment.value,
        units=str(from_minor(wallet, payment.amount)),
        order_total=payment.order_total,
        refunded_units=str(from_minor(wallet, payment.refunded)),
        status=payment.status,
        transaction_id=payment.transaction_id,
        created_at=payment.created_at,
        replay=replay,
    )


def refund_for_return(
    session: Session,
    *,
    programme: Programme,
    ret: Return,
    return_event_id: uuid.UUID,
    purchase_event_id: uuid.UUID,
    bought: dict[str, Decimal],
    returned_before: dict[str, Decimal],
    now: datetime,
) -> list[dict[str, Any]]:
    """Give back the returned share of what the order was paid with at the till (one query
    when it was not: the common case)."""
    payments = [
        p
        for p in payments_of(session, programme=programme, order_id=ret.order_id)
        if p.status != "reversed"
    ]
    if not payments:
        return []
    fraction = _returned_fraction(session, purchase_event_id, ret, bought, returned_before)
    effects = []
    for payment in payments:
        due = (
            payment.amount
            if fraction >= 1
            else int((Decimal(payment.amount) * fraction).to_integral_value(ROUND_DOWN))
        )
        give = due - payment.refunded
        if give <= 0:
            continue
        wallet = find_wallet(session, programme=programme, code=payment.wallet)
        assert wallet is not None
        ledger.adjust(
            session,
            programme=programme,
            member_id=payment.member_id,
            wallet=payment.wallet,
            amount=from_minor(wallet, give),
            reason=f"refund: return of order {ret.order_id}",
            actor="till",
            idempotency_key=f"till-refund:{return_event_id}:{payment.wallet}",
            now=now,
        )
        payment.refunded += give
        payment.status = "refunded" if payment.refunded == payment.amount else "partly_refunded"
        effects.append(
            {
                "kind": "till_refund",
                "wallet": payment.wallet,
                "order_id": ret.order_id,
                "amount": str(from_minor(wallet, give)),
            }
        )
    session.flush()
    return effects


def _returned_fraction(
    session: Session,
    purchase_event_id: uuid.UUID,
    ret: Return,
    bought: dict[str, Decimal],
    before: dict[str, Decimal],
) -> Decimal:
    """The share of the order's value returned so far, this return included."""
    props = session.scalar(select(Event.properties).where(Event.id == purchase_event_id))
    amounts: dict[str, Decimal] = {}
    if props:
        purchase = Purchase.model_validate(props)
        amounts = {line.sku: line.amount for line in purchase.lines}
    returning: dict[str, Decimal] = {}
    for line in ret.lines:
        returning[line.sku] = returning.get(line.sku, Decimal(0)) + line.quantity
    total = sum((amounts.get(sku, Decimal(1)) for sku in bought), Decimal(0))
    if total <= 0:
        return Decimal(0)
    back = sum(
        (
            amounts.get(sku, Decimal(1))
            * min(Decimal(1), (before.get(sku, Decimal(0)) + returning.get(sku, Decimal(0))) / q)
            for sku, q in bought.items()
            if q > 0
        ),
        Decimal(0),
    )
    return back / total
