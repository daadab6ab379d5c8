"""Small builders for engine tests: programmes, purchases and events in a few words."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fidelia.events.schemas import Purchase, PurchaseLine
from fidelia.rules.engine import CompiledProgramme, compile_programme, evaluate
from fidelia.rules.outcome import Evaluation
from fidelia.rules.state import EngineEvent, MemberState, ProgrammeCounters

NOON = datetime(2024, 3, 5, 11, 0, tzinfo=UTC)  # a Tuesday, 12:00 in Paris
WALLETS = [
    {"name": "points", "unit": "points"},
    {"name": "cashback", "unit": "money"},
    {"name": "status", "unit": "points", "redeemable": False},
]


def programme(*rules: dict[str, Any], groups: dict[str, str] | None = None) -> CompiledProgramme:
    """A Paris programme with points, cashback and status wallets and the given rules."""
    doc = {
        "currency": "EUR",
        "time_zone": "Europe/Paris",
        "wallets": WALLETS,
        "exclusive_groups": groups or {},
        "rules": [{"name": r["id"], **r} for r in rules],
    }
    return compile_programme(doc)


def line(
    sku: str,
    price: str,
    *,
    qty: str = "1",
    category: str | None = None,
    brand: str | None = None,
    discount: str = "0",
) -> PurchaseLine:
    return PurchaseLine(
        sku=sku,
        category=category,
        brand=brand,
        quantity=Decimal(qty),
        unit_price=Decimal(price),
        discount=Decimal(discount),
    )


def purchase(
    *lines: PurchaseLine,
    at: datetime = NOON,
    channel: str | None = "store",
    store: str | None = None,
    shipping: str = "0",
) -> EngineEvent:
    amount = sum((ln.amount for ln in lines), Decimal(0)) + Decimal(shipping)
    doc = Purchase(order_id="o-1", lines=list(lines), shipping=Decimal(shipping), total=amount)
    return EngineEvent("purchase", at, channel, store, {}, doc, "e-1")


def event(type: str, at: datetime = NOON, **properties: Any) -> EngineEvent:
    return EngineEvent(type, at, "app", None, properties)


def run(
    prog: CompiledProgramme,
    ev: EngineEvent,
    state: MemberState | None = None,
    counters: ProgrammeCounters | None = None,
) -> Evaluation:
    """Evaluate with a fresh state and counters unless given; ``now`` is the event time."""
    return evaluate(
        ev, state or MemberState(), prog, counters or ProgrammeCounters(), ev.occurred_at
    )


def points(result: Evaluation, rule_id: str | None = None) -> int:
    """Points awarded in the points wallet (by one rule if given)."""
    return sum(
        int(a.amount)
        for a in result.awards
        if a.wallet == "points" and (rule_id is None or a.rule_id == rule_id)
    )
