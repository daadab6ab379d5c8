"""Tiers over time: members per tier at the end of each day, week or month, and the flows.

The tiers domain appends every change of a member's tier to ``tier_changes`` (``from_tier`` is
the tier held before, None when the member joined the tiers). The members holding tier ``T`` at
an instant ``E`` are therefore the changes into ``T`` before ``E`` less the changes out of
``T`` before ``E``: one grouped statement counts the changes before the period by tier (the
opening stock) and one counts the period's changes by bucket, from and to; the running sum over
the buckets (a few hundred rows at most) gives each bucket's closing stock. Upgrades and
downgrades compare the ranks of the two tiers in the live document's ``tiers`` section (lowest
first); a tier the document no longer declares ranks nowhere: its changes are ``lateral``.
Buckets and their ends are UTC days; a bucket's end is the next bucket's start or the end of
the period.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from fidelia.analytics import kpis
from fidelia.analytics.aggregates import HI, LO, PID, sql_for
from fidelia.analytics.schemas import Grain, TierFlow, TierPeriod, TiersOverTimeOut, TierStock
from fidelia.models import Programme
from fidelia.tiers.service import section_for


def _next_bucket(start: date, grain: Grain) -> date:
    if grain == "day":
        return start + timedelta(days=1)
    if grain == "week":
        return start + timedelta(days=7)
    return kpis.first_of_next_month(start)


def _bucket_start(day: date, grain: Grain) -> date:
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def direction(ranks: dict[str, int], before: str | None, after: str) -> str:
    """joined (no tier before), upgrade, downgrade or lateral (same rank or an unknown tier)."""
    if before is None:
        return "joined"
    a, b = ranks.get(before), ranks.get(after)
    if a is None or b is None or a == b:
        return "lateral"
    return "upgrade" if b > a else "downgrade"


def compute(
    session: Session, *, programme: Programme, start: date, end: date, grain: Grain = "month"
) -> TiersOverTimeOut:
    """Members per tier at the end of each bucket of ``start``..``end`` (UTC days, both
    included) and the changes in each bucket, by direction and by from -> to."""
    span = kpis.period(start, end)
    d = sql_for(session)
    section = section_for(session, programme)
    ranks = {level.code: i for i, level in enumerate(section.levels)} if section else {}
    pid = programme.id
    opening = _opening(session, pid, span)
    at_day = d.day.replace("occurred_at", "at")
    b = kpis.bucket(d, grain, at_day)
    moves = text(f"""SELECT {b} AS b, from_tier, to_tier, COUNT(*) FROM tier_changes
      WHERE programme_id = :pid AND at >= :lo AND at < :hi
      GROUP BY {b}, from_tier, to_tier""").bindparams(PID, LO, HI)
    by_bucket: dict[date, list[tuple[str | None, str, int]]] = {}
    for key, before, after, count in session.execute(
        moves, {"pid": pid, "lo": span.since, "hi": span.until}
    ):
        by_bucket.setdefault(kpis._as_date(key), []).append((before, after, int(count)))
    stock = dict(opening)
    periods: list[TierPeriod] = []
    first = _bucket_start(span.start, grain)
    while first <= span.end:
        following = _next_bucket(first, grain)
        counts = {"joined": 0, "upgrade": 0, "downgrade": 0, "lateral": 0}
        flows = []
        for before, after, count in sorted(
            by_bucket.get(first, []), key=lambda f: (f[0] or "", f[1])
        ):
            if before is not None:
                stock[before] = stock.get(before, 0) - count
            stock[after] = stock.get(after, 0) + count
            counts[direction(ranks, before, after)] += count
            flows.append(TierFlow(from_tier=before, to_tier=after, changes=count))
        periods.append(
            TierPeriod(
                bucket=first,
                end=min(following, span.end + timedelta(days=1)),
                members=_stocks(stock, ranks),
                joined=counts["joined"],
                upgrades=counts["upgrade"],
                downgrades=counts["downgrade"],
                lateral=counts["lateral"],
                flows=flows,
            )
        )
        first = following
    return TiersOverTimeOut(
        start=span.start,
        end=span.end,
        grain=grain,
        tiers=[level.code for level in section.levels] if section else [],
        periods=periods,
    )


def _opening(session: Session, pid: uuid.UUID, span: kpis.Period) -> dict[str, int]:
    """Members per tier at the start of the period: changes into each tier before it, less the
    changes out of it."""
    query = text("""SELECT tier, SUM(n) FROM (
  SELECT to_tier AS tier, COUNT(*) AS n FROM tier_changes
  WHERE programme_id = :pid AND at < :lo GROUP BY to_tier
  UNION ALL
  SELECT from_tier, -COUNT(*) FROM tier_changes
  WHERE programme_id = :pid AND at < :lo AND from_tier IS NOT NULL GROUP BY from_tier
) AS s GROUP BY tier""").bindparams(PID, bindparam("lo", type_=LO.type))
    return {t: int(n) for t, n in session.execute(query, {"pid": pid, "lo": span.since})}


def _stocks(stock: dict[str, int], ranks: dict[str, int]) -> list[TierStock]:
    """The tiers held by someone (or declared), highest rank first, then unknown tiers."""
    codes = set(ranks) | {t for t, n in stock.items() if n}
    ordered = sorted(codes, key=lambda t: (-ranks.get(t, -1), t))
    return [TierStock(tier=t, members=stock.get(t, 0)) for t in ordered]


def rows(answer: TiersOverTimeOut) -> list[tuple[Any, ...]]:
    """Long form for CSV: bucket, kind (members, joined, upgrades, ...), tier or flow, value."""
    out: list[tuple[Any, ...]] = []
    for p in answer.periods:
        key = p.bucket.isoformat()
        out.extend((key, "members", s.tier, s.members) for s in p.members)
        for name in ("joined", "upgrades", "downgrades", "lateral"):
            out.append((key, name, "", getattr(p, name)))
        out.extend((key, "flow", f"{f.from_tier or ''}>{f.to_tier}", f.changes) for f in p.flows)
    return out
