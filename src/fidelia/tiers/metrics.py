"""The tier metric, pure: daily buckets, windows, qualification and review dates.

Design note
-----------
A member's metric is kept as buckets per local day (programme time zone) of purchases, spend
and status points, plus lifetime totals, in ``member_tiers.metrics``. Every window the tiers
support is a range of local days, so one representation answers them all exactly; days older
than :data:`KEEP_DAYS` are pruned (a window is at most a year, a review may run late).
Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fidelia.tiers.schemas import TierLevel, TiersSection

KEEP_DAYS = 800
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Totals:
    purchases: int = 0
    spend: Decimal = _ZERO
    status_points: int = 0

    def as_dict(self) -> dict[str, str | int]:
        """JSON shape (spend as a decimal string)."""
        return {
            "purchases": self.purchases,
            "spend": str(self.spend),
            "status_points": self.status_points,
        }


NOTHING = Totals()  # a window without activity


def add(
    metrics: dict[str, Any],
    day: date,
    *,
    purchases: int = 0,
    spend: Decimal = _ZERO,
    status: int = 0,
) -> dict[str, Any]:
    """New metrics with ``day``'s bucket and the lifetime totals moved by these amounts."""
    days = dict(metrics.get("days", {}))
    key = day.isoformat()
    p, s, sp = days.get(key, (0, "0", 0))
    days[key] = [p + purchases, str(Decimal(s) + spend), sp + status]
    lp, ls, lsp = metrics.get("life", (0, "0", 0))
    horizon = (day - timedelta(days=KEEP_DAYS)).isoformat()
    if min(days) < horizon:
        days = {k: v for k, v in days.items() if k >= horizon}
    return {"days": days, "life": [lp + purchases, str(Decimal(ls) + spend), lsp + status]}


def totals(metrics: dict[str, Any], start: date | None, end: date | None) -> Totals:
    """Sum of the buckets in local days ``[start, end)`` (None: unbounded)."""
    if start is None and end is None:
        p, s, sp = metrics.get("life", (0, "0", 0))
        return Totals(int(p), Decimal(s), int(sp))
    lo = start.isoformat() if start else ""
    hi = end.isoformat() if end else "9999"
    purchases, spend, status = 0, _ZERO, 0
    for key, (p, s, sp) in metrics.get("days", {}).items():
        if lo <= key < hi:
            purchases += p
            spend += Decimal(s)
            status += sp
    return Totals(purchases, spend, status)


@dataclass(slots=True)
class Daily:
    """One member's metric parsed once, to sum many windows of it (a catch-up judges one window
    per review): :meth:`totals` gives what :func:`totals` gives."""

    metrics: dict[str, Any]
    keys: list[str]
    values: list[tuple[int, Decimal, int]]

    @classmethod
    def of(cls, metrics: dict[str, Any]) -> Daily:
        days = sorted(metrics.get("days", {}).items())
        return cls(metrics, [k for k, _ in days], [(p, Decimal(s), sp) for _, (p, s, sp) in days])

    def totals(self, start: date | None, end: date | None) -> Totals:
        if start is None and end is None:
            return totals(self.metrics, None, None)
        lo = bisect_left(self.keys, start.isoformat()) if start else 0
        hi = bisect_left(self.keys, end.isoformat()) if end else len(self.keys)
        if lo >= hi:
            return NOTHING
        purchases, spend, status = 0, _ZERO, 0
        for p, s, sp in self.values[lo:hi]:
            purchases += p
            spend += s
            status += sp
        return Totals(purchases, spend, status)

    def quiet_from(self, day: date) -> bool:
        """Whether there is no activity on local ``day`` or after."""
        return not self.keys or self.keys[-1] < day.isoformat()


def _anniversary(enrolled: date, year: int) -> date:
    try:
        return enrolled.replace(year=year)
    except ValueError:  # 29 February
        return date(year, 3, 1)


def _minus_year(day: date) -> date:
    return _anniversary(day, day.year - 1)


def window(section: TiersSection, *, day: date, enrolled: date) -> tuple[date | None, date | None]:
    """The local days ``[start, end)`` of the window that contains ``day``."""
    kind = section.window
    if kind == "since_joining":
        return None, None
    if kind == "calendar_year":
        return date(day.year, 1, 1), date(day.year + 1, 1, 1)
    if kind == "anniversary":
        last = _anniversary(enrolled, day.year)
        if last > day:
            last = _anniversary(enrolled, day.year - 1)
        return last, _anniversary(enrolled, last.year + 1)
    start = _minus_year(day) + timedelta(days=1)
    return start, day + timedelta(days=1)


def next_review(section: TiersSection, *, day: date, enrolled: date) -> date | None:
    """The first review date after local ``day`` (None: the window is never reviewed)."""
    kind = section.window
    if kind == "since_joining":
        return None
    if kind == "rolling_12_months":
        return date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return window(section, day=day, enrolled=enrolled)[1]


def reviewed_window(
    section: TiersSection, *, review: date, enrolled: date
) -> tuple[date | None, date | None]:
    """The window a review on ``review`` judges: the one that ended the day before."""
    if section.window == "rolling_12_months":
        return _minus_year(review), review
    return window(section, day=review - timedelta(days=1), enrolled=enrolled)


def meets(level: TierLevel, got: Totals, combine: str) -> bool:
    """Whether ``got`` reaches the level's thresholds."""
    if level.requires is None:
        return True
    req = level.requires
    checks = [
        got.status_points >= req.status_points if req.status_points is not None else None,
        got.spend >= req.spend if req.spend is not None else None,
        got.purchases >= req.purchases if req.purchases is not None else None,
    ]
    given = [c for c in checks if c is not None]
    return all(given) if combine == "all" else any(given)


def qualified(section: TiersSection, got: Totals) -> int:
    """The rank of the highest level the metric qualifies for (invitation-only levels aside)."""
    best = 0
    for i, level in enumerate(section.levels):
        if not level.invitation_only and meets(level, got, section.combine):
            best = i
    return best


def missing(level: TierLevel, got: Totals) -> dict[str, int | Decimal]:
    """What is left per threshold of ``level`` (0 where it is met)."""
    req = level.requires
    if req is None:
        return {}
    out: dict[str, int | Decimal] = {}
    if req.status_points is not None:
        out["status_points"] = max(req.status_points - got.status_points, 0)
    if req.spend is not None:
        out["spend"] = max(req.spend - got.spend, _ZERO)
    if req.purchases is not None:
        out["purchases"] = max(req.purchases - got.purchases, 0)
    return out


def target_at_review(section: TiersSection, current: int, earned: int) -> int:
    """The level a review leaves: up to what was earned, down by the downgrade policy."""
    if earned >= current:
        return earned
    if section.downgrade == "one_level":
        return max(earned, current - 1)
    return earned


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The aware instant local ``day`` starts."""
    return datetime.combine(day, time(), tzinfo=tz)
