"""Trait arithmetic, pure: fold purchases into a member's figures, derive the stored traits.

Design note
-----------
The incremental path (``service.apply_events``) folds each purchase into :class:`Figures`
read from the member's row; the bulk rebuild (``rebuild``) builds the same :class:`Figures`
from SQL aggregates. Both then call :func:`derive`, so every derived trait (averages,
intervals, shares, favourites, windows, expected next purchase) has one definition.

Definitions (written down in docs/profiles.md):

- spend of a purchase: its lines after their discounts, shipping excluded, rounded to the cent
  (the rules' ``basket_amount``); affinity spend is the same per dimension value;
- a purchase is promotional when a line has a discount or ``payment_means`` names a voucher;
- intervals are between consecutive purchases, in days, from instants truncated to the second,
  rounded half up to 6 decimals in integers (so the rebuild's SQL gives the same bits); the
  expected next purchase is the last one plus the median interval in whole seconds (half up);
- shares (promotions) are rounded the same way, money shares from whole cents;
- windows are UTC days: window N counts the purchases of today and the N-1 days before; day
  buckets older than the longest window are dropped.
Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import Any

from fidelia.events.schemas import Purchase
from fidelia.traits.schemas import TraitsSection

CENT = Decimal("0.01")
ZERO = Decimal(0)
DAY = 86400


def money(value: Decimal) -> Decimal:
    """Rounded to the cent, half away from zero (as SQL's ROUND)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def epoch(at: datetime) -> int:
    """Whole seconds since 1970 (truncated, as the rebuild's SQL)."""
    return int(at.timestamp() // 1)


@dataclass(slots=True)
class Figures:
    """What a member's purchases add up to; the JSON columns keep it between events."""

    purchases: int = 0
    spend: Decimal = ZERO
    promo_purchases: int = 0
    promo_spend: Decimal = ZERO
    first_at: datetime | None = None
    last_at: datetime | None = None
    times: list[int] = field(default_factory=list)
    days: dict[str, list[Any]] = field(default_factory=dict)
    affinities: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=dict)
    stores: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Figures:
        """From a ``member_traits`` row (a mapping of its columns)."""
        return cls(
            purchases=row["purchases_count"],
            spend=Decimal(row["spend_total"]),
            promo_purchases=row["promo_purchases"],
            promo_spend=Decimal(row["promo_spend"]),
            first_at=row["first_purchase_at"],
            last_at=row["last_purchase_at"],
            times=list(row["purchase_times"]),
            days={k: list(v) for k, v in row["days"].items()},
            affinities={
                d: {k: list(v) for k, v in m.items()} for d, m in row["affinities"].items()
            },
            channels=dict(row["channels"]),
            stores=dict(row["stores"]),
        )


class Matcher:
    """The affinity values of a purchase line: category, brand and each declared attribute."""

    def __init__(self, section: TraitsSection) -> None:
        aff = section.affinities
        self.by = tuple(aff.by)
        self.exact: dict[str, dict[str, str]] = {}
        self.prefixes: dict[str, list[tuple[str, str]]] = {}
        for attr in aff.attributes:
            exact, prefixes = self.exact.setdefault(attr.id, {}), []
            for value, skus in attr.values.items():
                for sku in skus:
                    if sku.endswith("*"):
                        prefixes.append((sku[:-1], value))
                    else:
                        exact.setdefault(sku, value)
            # The longest prefix wins, then the first declared.
            self.prefixes[attr.id] = sorted(prefixes, key=lambda p: -len(p[0]))

    def attribute(self, attr: str, sku: str) -> str | None:
        """The value of a declared attribute for ``sku`` (exact SKUs first, then prefixes)."""
        value = self.exact[attr].get(sku)
        if value is not None:
            return value
        return next((v for prefix, v in self.prefixes[attr] if sku.startswith(prefix)), None)

    def values(self, line: Any) -> Iterable[tuple[str, str]]:
        for dim in self.by:
            value = line.category if dim == "category" else line.brand
            if value is not None:
                yield dim, value
        for attr in self.exact:
            value = self.attribute(attr, line.sku)
            if value is not None:
                yield attr, value


def is_promotional(purchase: Purchase) -> bool:
    """A line discount, or a voucher among the means of payment."""
    if any(line.discount > 0 for line in purchase.lines):
        return True
    return any("voucher" in means.lower() for means in purchase.payment_means)


def add_purchase(
    fig: Figures,
    *,
    at: datetime,
    purchase: Purchase,
    channel: str | None,
    store: str | None,
    matcher: Matcher,
) -> None:
    """Fold one purchase into ``fig`` (in any order: late events land where they belong)."""
    parts: dict[tuple[str, str], Decimal] = {}
    total = ZERO
    for line in purchase.lines:
        amount = line.amount
        total += amount
        for key in matcher.values(line):
            parts[key] = parts.get(key, ZERO) + amount
    basket = money(total)
    fig.purchases += 1
    fig.spend += basket
    if is_promotional(purchase):
        fig.promo_purchases += 1
        fig.promo_spend += basket
    fig.first_at = at if fig.first_at is None or at < fig.first_at else fig.first_at
    fig.last_at = at if fig.last_at is None or at > fig.last_at else fig.last_at
    _insort(fig.times, epoch(at))
    day = at.astimezone(UTC).date().isoformat()
    bucket = fig.days.setdefault(day, [0, "0.00"])
    bucket[0] += 1
    bucket[1] = str(Decimal(bucket[1]) + basket)
    for (dim, value), amount in parts.items():
        cell = fig.affinities.setdefault(dim, {}).setdefault(value, [0, "0.00"])
        cell[0] += 1
        cell[1] = str(Decimal(cell[1]) + money(amount))
    if channel is not None:
        fig.channels[channel] = fig.channels.get(channel, 0) + 1
    if store is not None:
        fig.stores[store] = fig.stores.get(store, 0) + 1


def _insort(times: list[int], t: int) -> None:
    if not times or t >= times[-1]:
        times.append(t)
        return
    lo, hi = 0, len(times)
    while lo < hi:
        mid = (lo + hi) // 2
        if times[mid] <= t:
            lo = mid + 1
        else:
            hi = mid
    times.insert(lo, t)


def window_start(today: date, days: int) -> date:
    """The first day of an N-day window ending today (today included)."""
    return today - timedelta(days=days - 1)


def windows(days: Mapping[str, list[Any]], section: TraitsSection, today: date) -> dict[str, Any]:
    """Purchases and spend per declared window, from the day buckets, as of ``today``."""
    out: dict[str, Any] = {}
    for n in section.windows:
        start = window_start(today, n).isoformat()
        purchases, spend = 0, ZERO
        for day, (count, amount) in days.items():
            if day >= start:
                purchases += count
                spend += Decimal(amount)
        out[str(n)] = {"purchases": purchases, "spend": str(money(spend))}
    return out


def prune(days: Mapping[str, list[Any]], section: TraitsSection, today: date) -> dict[str, Any]:
    """The buckets still inside the longest window."""
    start = window_start(today, section.longest).isoformat()
    return {day: list(v) for day, v in sorted(days.items()) if day >= start}


def favourite(counts: Mapping[str, int]) -> str | None:
    """The key with the highest count; ties go to the smallest key."""
    if not counts:
        return None
    return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def micro(num: int, den: int) -> float:
    """num / den (non-negative integers) rounded half up to 6 decimals, in integers, then a
    float: the rebuild's SQL computes the same, so both agree to the bit."""
    return ((2 * num * 1_000_000 + den) // (2 * den)) / 1e6


def _share(part: Decimal | int, whole: Decimal | int) -> float | None:
    if not whole:
        return None
    if isinstance(whole, Decimal) or isinstance(part, Decimal):  # money: in cents
        return micro(int(Decimal(part) * 100), int(Decimal(whole) * 100))
    return micro(part, whole)


def intervals(
    times: list[int],
) -> tuple[float | None, float | None, float | None, int | None]:
    """Mean, median and last interval between consecutive purchases, in days, and the median
    in whole seconds (rounded half up: the expected next purchase)."""
    if len(times) < 2:
        return None, None, None, None
    last = times[-1] - times[-2]
    gaps = sorted(b - a for a, b in pairwise(times))
    n = len(gaps)
    middle = gaps[(n - 1) // 2 : n // 2 + 1]  # one or two
    mid, k = sum(middle), len(middle)
    mean = micro(times[-1] - times[0], (len(times) - 1) * DAY)
    return mean, micro(mid, k * DAY), micro(last, DAY), (2 * mid + k) // (2 * k)


def derive(fig: Figures, *, section: TraitsSection, now: datetime) -> dict[str, Any]:
    """The stored columns of a member's traits, except the RFM scores and the lifecycle stage."""
    today = now.astimezone(UTC).date()
    days = prune(fig.days, section, today)
    mean, median, last_gap, median_s = intervals(fig.times)
    expected = None
    if median_s is not None and fig.last_at is not None:
        expected = fig.last_at + timedelta(seconds=median_s)
    spend = money(fig.spend)
    return {
        "first_purchase_at": fig.first_at,
        "last_purchase_at": fig.last_at,
        "purchases_count": fig.purchases,
        "spend_total": spend,
        "average_basket": money(spend / fig.purchases) if fig.purchases else None,
        "interval_mean_days": mean,
        "interval_median_days": median,
        "last_interval_days": last_gap,
        "expected_next_purchase_at": expected,
        "promo_purchases": fig.promo_purchases,
        "promo_spend": money(fig.promo_spend),
        "promo_purchases_share": _share(fig.promo_purchases, fig.purchases),
        "promo_spend_share": _share(fig.promo_spend, spend),
        "favourite_store": favourite(fig.stores),
        "favourite_channel": favourite(fig.channels),
        "windows": windows(days, section, today),
        "windows_on": today,
        "days": days,
        "purchase_times": fig.times,
        "affinities": {
            d: {k: [n, s] for k, (n, s) in sorted(m.items())}  # already to the cent
            for d, m in sorted(fig.affinities.items())
        },
        "channels": dict(sorted(fig.channels.items())),
        "stores": dict(sorted(fig.stores.items())),
        "computed_at": now,
    }
