"""Returns: take back, award by award, what the returned lines of a purchase earned.

The purchase's awards recorded how much each line earned (never recomputed with today's rules).
Each award's share is computed cumulatively — everything returned so far, minus what earlier
returns took — so partial returns add up exactly to the whole award. The ledger applies the
wallet's policy for value already spent (debt or clamp).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.events.schemas import Return
from fidelia.ledger import returns as ledger_returns
from fidelia.models import LedgerTransaction, Programme, Wallet
from fidelia.plans import till


def reversals(
    session: Session,
    *,
    programme: Programme,
    ret: Return,
    return_event_id: uuid.UUID,
    purchase_event_id: uuid.UUID,
    bought: dict[str, Decimal],
    awards: list[dict[str, Any]],
    returned_before: dict[str, Decimal],
    now: datetime,
) -> list[dict[str, Any]]:
    """Reverse, award by award, what the returned lines earned; returns the reversal effects.

    Each award's share is computed cumulatively (everything returned so far, minus what
    earlier returns took), so partial returns add up exactly to the whole award.
    """
    txns = {(t.rule_id, t.wallet_code): t for t in _earns_of(session, programme, purchase_event_id)}
    returning: dict[str, Decimal] = {}
    for line in ret.lines:
        returning[line.sku] = returning.get(line.sku, Decimal(0)) + line.quantity
    effects = []
    for award in awards:
        txn = txns.get((award["rule"]["id"], award["wallet"]))
        if txn is None:
            continue
        amount = _share(award, bought, returned_before, returning)
        if amount <= 0:
            continue
        posted = ledger_returns.return_award(
            session,
            programme=programme,
            transaction_id=txn.id,
            idempotency_key=f"return:{return_event_id}:{txn.id}",
            amount=_in_unit(award, amount),
            source_type="event",
            source_id=str(return_event_id),
            reason=f"return of order {ret.order_id}",
            now=now,
        )
        if posted is not None:
            effects.append(
                {
                    "kind": "reversal",
                    "rule": award["rule"],
                    "wallet": award["wallet"],
                    "amount": str(_in_unit(award, amount)),
                    "transaction_id": str(txn.id),
                }
            )
    return effects + till.refund_for_return(  # what the order was paid with at the till
        session, programme=programme, ret=ret, return_event_id=return_event_id,
        purchase_event_id=purchase_event_id, bought=bought, returned_before=returned_before,
        now=now,
    )  # fmt: skip


def _earns_of(session: Session, programme: Programme, event_id: uuid.UUID) -> list[Any]:
    return list(
        session.execute(
            select(
                LedgerTransaction.id, LedgerTransaction.rule_id, Wallet.code.label("wallet_code")
            )
            .join(Wallet, Wallet.id == LedgerTransaction.wallet_id)
            .where(
                LedgerTransaction.programme_id == programme.id,
                LedgerTransaction.source_type == "event",
                LedgerTransaction.source_id == str(event_id),
                LedgerTransaction.kind == "earn",
            )
        )
    )


def _share(
    award: dict[str, Any],
    bought: dict[str, Decimal],
    before: dict[str, Decimal],
    returning: dict[str, Decimal],
) -> Decimal:
    """What the returned quantities earned of ``award``, cumulatively exact."""
    lines = award["explanation"]["lines"]
    total = Decimal(str(award["amount"]))
    if not lines:  # an award not allocated to lines: in proportion of the quantities returned
        lines = [
            {"sku": sku, "amount": total * q / sum(bought.values())} for sku, q in bought.items()
        ]
    done = sum(
        (
            Decimal(str(x["amount"])) * before.get(x["sku"], Decimal(0)) / bought[x["sku"]]
            for x in lines
        ),
        Decimal(0),
    )
    after = sum(
        (
            Decimal(str(x["amount"]))
            * (before.get(x["sku"], Decimal(0)) + returning.get(x["sku"], Decimal(0)))
            / bought[x["sku"]]
            for x in lines
        ),
        Decimal(0),
    )
    return _round(award, after) - _round(award, done)


def _round(award: dict[str, Any], value: Decimal) -> Decimal:
    quantum = Decimal(1) if isinstance(award["amount"], int) else Decimal("0.01")
    return value.quantize(quantum, rounding=ROUND_HALF_UP)


def _in_unit(award: dict[str, Any], amount: Decimal) -> int | Decimal:
    return int(amount) if isinstance(award["amount"], int) else amount
