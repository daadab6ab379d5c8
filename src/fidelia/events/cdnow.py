"""The CDNOW purchase log (Fader, Hardie & Lee) as purchases: one mapping for imports and
back-tests.

Each line ``customer_id date number_of_cds dollar_value`` is one order of the customer: one
line, sku ``cd``, category ``music``, quantity = number of CDs, unit price = value / quantity
(rounded up to 0.0001 when inexact, the rounding given back as a line discount), so that the
line amount equals the dollar value exactly, zero-value orders included. It happened at noon in
the given time zone. A header line is skipped; an unreadable line is reported, not guessed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

from fidelia.events.schemas import Purchase, PurchaseLine

_PRICE_STEP, _ZERO = Decimal("0.0001"), Decimal(0)


@dataclass(frozen=True, slots=True)
class Order:
    line: int
    customer: str
    occurred_at: datetime
    purchase: Purchase


def read(path: str | Path, tz: ZoneInfo) -> Iterator[Order | tuple[int, str]]:
    """Every order of the file, or ``(line number, reason)`` for a line that is not one."""
    noon: dict[str, datetime] = {}
    lines: dict[tuple[Decimal, Decimal], PurchaseLine] = {}
    with open(path, encoding="ascii") as handle:
        for number, text in enumerate(handle, start=1):
            parts = text.split()
            if not parts or parts[0] == "customer_id":
                continue
            if len(parts) != 4 or not (
                parts[0].isdigit() and len(parts[1]) == 8 and parts[1].isdigit()
            ):
                yield number, "expected: customer_id YYYYMMDD number_of_cds dollar_value"
                continue
            customer, day, cds, value = parts
            try:
                at = noon.get(day) or noon.setdefault(day, _noon(day, tz))
                quantity, amount = Decimal(cds), Decimal(value)
                # an amount beyond the decimal context cannot be priced: refused, not a crash
                purchase = _purchase(f"cdnow-{number}", quantity, amount, lines)
            except (ValueError, InvalidOperation) as exc:
                yield number, f"unreadable line: {exc}"
                continue
            yield Order(number, customer, at, purchase)


def _noon(day: str, tz: ZoneInfo) -> datetime:
    return datetime(int(day[:4]), int(day[4:6]), int(day[6:]), 12, tzinfo=tz).astimezone(UTC)


def _line(quantity: Decimal, value: Decimal) -> PurchaseLine:
    quantity = quantity if quantity > 0 else Decimal(1)
    unit = value / quantity
    if unit * quantity != value or unit.as_tuple().exponent < -4:  # type: ignore[operator]
        unit = unit.quantize(_PRICE_STEP, ROUND_CEILING)
    return PurchaseLine.model_construct(
        sku="cd",
        name=None,
        category="music",
        brand=None,
        quantity=quantity,
        unit_price=unit,
        discount=unit * quantity - value,
    )


def _purchase(
    order_id: str,
    quantity: Decimal,
    value: Decimal,
    lines: dict[tuple[Decimal, Decimal], PurchaseLine],
) -> Purchase:
    line = lines.get((quantity, value))
    if line is None:  # lines are values: equal (quantity, value) pairs share one object
        line = lines[(quantity, value)] = _line(quantity, value)
    return Purchase.model_construct(
        order_id=order_id,
        lines=[line],
        shipping=_ZERO,
        total=value,
        currency="USD",
        payment_means=[],
    )
