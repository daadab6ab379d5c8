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
from fidelia.kit.built import built

_PRICE_STEP, _ZERO = Decimal("0.0001"), Decimal(0)


@dataclass(frozen=True, slots=True)
class Order:
    """``valid``: validating the purchase's JSON gives it back as it is (see :func:`_valid`)."""

    line: int
    customer: str
    occurred_at: datetime
    purchase: Purchase
    valid: bool = False


def read(path: str | Path, tz: ZoneInfo) -> Iterator[Order | tuple[int, str]]:
    """Every order of the file, or ``(line number, reason)`` for a line that is not one."""
    noon: dict[str, datetime] = {}
    lines: dict[tuple[Decimal, Decimal], tuple[PurchaseLine, bool]] = {}
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
                purchase, valid = _purchase(f"cdnow-{number}", quantity, amount, lines)
            except (ValueError, InvalidOperation) as exc:
                yield number, f"unreadable line: {exc}"
                continue
            yield Order(number, customer, at, purchase, valid)


def _noon(day: str, tz: ZoneInfo) -> datetime:
    return datetime(int(day[:4]), int(day[4:6]), int(day[6:]), 12, tzinfo=tz).astimezone(UTC)


def _line(quantity: Decimal, value: Decimal) -> PurchaseLine:
    quantity = quantity if quantity > 0 else Decimal(1)
    unit = value / quantity
    if unit * quantity != value or unit.as_tuple().exponent < -4:  # type: ignore[operator]
        unit = unit.quantize(_PRICE_STEP, ROUND_CEILING)
    return built(
        PurchaseLine,
        {
            "sku": "cd",
            "name": None,
            "category": "music",
            "brand": None,
            "quantity": quantity,
            "unit_price": unit,
            "discount": unit * quantity - value,
        },
    )


def _purchase(
    order_id: str,
    quantity: Decimal,
    value: Decimal,
    lines: dict[tuple[Decimal, Decimal], tuple[PurchaseLine, bool]],
) -> tuple[Purchase, bool]:
    """The order's purchase, and whether it is valid (:func:`_valid`)."""
    found = lines.get((quantity, value))
    if found is None:  # lines are values: equal (quantity, value) pairs share one object
        line = _line(quantity, value)
        found = lines[(quantity, value)] = (line, _valid(line, value))
    purchase = built(
        Purchase,
        {
            "order_id": order_id,
            "lines": [found[0]],
            "shipping": _ZERO,
            "total": value,
            "currency": "USD",
            "payment_means": [],
        },
    )
    return purchase, found[1]


def _valid(line: PurchaseLine, total: Decimal) -> bool:
    """Whether validating the purchase of ``line`` for ``total`` from its JSON gives it back as
    it is: every amount a finite decimal within its field's digits and places as written
    (pydantic counts them on the normalised value: never more), the discount within the line,
    the total the line's amount. The order id (``cdnow-<line>``), sku, category and currency
    are constants that pass. A purchase this cannot vouch for is validated in full by the
    intake, which refuses it with the usual error."""
    return (
        _fits(line.quantity, places=3, digits=12)
        and line.quantity > 0
        and _fits(line.unit_price, places=4, digits=14)
        and _fits(line.discount, places=4, digits=14)
        and _fits(total, places=4, digits=14)
        and line.discount <= line.quantity * line.unit_price
        and line.amount == total
    )


def _fits(value: Decimal, *, places: int, digits: int) -> bool:
    """A finite, non-negative decimal written with at most ``places`` decimals and ``digits``
    digits, and no exponent."""
    sign, figures, exponent = value.as_tuple()
    return (
        not sign
        and isinstance(exponent, int)
        and -places <= exponent <= 0
        and len(figures) <= digits
    )
