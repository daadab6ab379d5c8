"""Combining and splitting the per-member JSON states a merge touches, pure (no I/O).

Design note
-----------
Three JSON documents follow a member: the engine's state (``member_states``), the badge and
challenge counters (``engagement_states``) and the tier metric (``member_tiers.metrics``).
A merge adds the duplicate's to the survivor's: counters and daily buckets are summed, sets
are joined, the survivor's values win where only one can stand (attributes, a challenge's
round). An unmerge subtracts the duplicate's snapshot taken at the merge from the survivor's
current document, so whatever the survivor did since the merge stays with the survivor.
What a sum cannot give back (categories seen, a challenge moved on since) is settled from the
survivor's own snapshot: values unchanged since the merge go back to it, changed ones stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fidelia.rules.state import MemberState

Json = dict[str, Any]
_PERIOD_KINDS = ("day", "week", "month", "year")


def _sum_amount(a: int | Decimal, b: int | Decimal) -> int | Decimal:
    return a + b


def combine_engine(survivor: Mapping[str, Any] | None, duplicate: Mapping[str, Any]) -> Json:
    """The engine state of the joined member: the survivor's plus the duplicate's."""
    s = MemberState.from_json(survivor or {})
    d = MemberState.from_json(duplicate)
    days = dict(s.days)
    for key, (n, spend) in d.days.items():
        m, t = days.get(key, (0, Decimal(0)))
        days[key] = (m + n, t + spend)
    usage: dict[str, dict[str, tuple[int, Any]]] = {k: dict(v) for k, v in s.usage.items()}
    for rule, periods in d.usage.items():
        mine = usage.setdefault(rule, {})
        for key, (n, amount) in periods.items():
            m, a = mine.get(key, (0, 0))
            mine[key] = (m + n, _sum_amount(a, amount))
        usage[rule] = _newest_periods(mine)
    balances = dict(s.balances)
    for wallet, amount in d.balances.items():
        balances[wallet] = _sum_amount(balances.get(wallet, 0), amount)
    counts = dict(s.event_counts)
    for kind, n in d.event_counts.items():
        counts[kind] = counts.get(kind, 0) + n
    lasts = [t for t in (s.last_event_at, d.last_event_at) if t is not None]
    joined = MemberState(
        tier=s.tier if survivor else d.tier,
        attributes={**dict(d.attributes), **dict(s.attributes)},
        balances=balances,
        purchases=s.purchases + d.purchases,
        spend=s.spend + d.spend,
        days=dict(sorted(days.items())),
        categories=s.categories | d.categories,
        event_counts=counts,
        usage=usage,
        last_event_at=max(lasts) if lasts else None,
    )
    return joined.to_json()


def _newest_periods(periods: dict[str, tuple[int, Any]]) -> dict[str, tuple[int, Any]]:
    """Only the newest key of each period kind is kept (as the engine does)."""
    newest: dict[str, str] = {}
    for key in periods:
        kind = key.split(":", 1)[0]
        if kind in _PERIOD_KINDS and key > newest.get(kind, ""):
            newest[kind] = key
    return {
        k: v
        for k, v in periods.items()
        if k.split(":", 1)[0] not in _PERIOD_KINDS or newest[k.split(":", 1)[0]] == k
    }


def split_engine(
    current: Mapping[str, Any],
    duplicate: Mapping[str, Any],
    before: Json | None,
    joined: Mapping[str, Any],
) -> Json:
    """The survivor's engine state once the duplicate's (as merged) is taken out again.

    ``before`` is the survivor's state before the merge (None: it had none), ``joined`` the
    state the merge wrote."""
    c = MemberState.from_json(current)
    d = MemberState.from_json(duplicate)
    j = MemberState.from_json(joined)
    b = MemberState.from_json(before or {})
    days = dict(c.days)
    for key, (n, spend) in d.days.items():
        if key in days:
            m, t = days[key]
            days[key] = (m - n, t - spend)
    days = {k: v for k, v in days.items() if v[0] > 0}
    usage: dict[str, dict[str, tuple[int, Any]]] = {k: dict(v) for k, v in c.usage.items()}
    for rule, periods in d.usage.items():
        mine = usage.get(rule, {})
        for key, (n, amount) in periods.items():
            if key in mine:
                m, a = mine[key]
                mine[key] = (m - n, a - amount)
        usage[rule] = {k: v for k, v in mine.items() if v[0] > 0}
    usage = {rule: periods for rule, periods in usage.items() if periods}
    balances = {w: a - d.balances.get(w, 0) for w, a in c.balances.items()}
    counts = {k: n - d.event_counts.get(k, 0) for k, n in c.event_counts.items()}
    filled = set(d.attributes) - set(b.attributes)
    attributes = {
        k: v for k, v in c.attributes.items() if not (k in filled and j.attributes.get(k) == v)
    }
    last = c.last_event_at
    if last is not None and last == j.last_event_at and last != b.last_event_at:
        last = b.last_event_at  # the newest event was the duplicate's
    split = MemberState(
        tier=c.tier,
        attributes=attributes,
        balances={w: a for w, a in balances.items() if a},
        purchases=max(c.purchases - d.purchases, 0),
        spend=max(c.spend - d.spend, Decimal(0)),
        days=days,
        categories=b.categories | (c.categories - j.categories),
        event_counts={k: n for k, n in counts.items() if n > 0},
        usage=usage,
        last_event_at=last,
    )
    return split.to_json()


def combine_engagement(survivor: Mapping[str, Any], duplicate: Mapping[str, Any]) -> Json:
    """Badge counters summed; per challenge, the one further on (more rounds done), or the
    progress of both summed when they are at the same open round. A summed progress that
    reaches the goal completes at the member's next matching event."""
    badges = dict(survivor.get("badges", {}))
    for code, n in duplicate.get("badges", {}).items():
        badges[code] = badges.get(code, 0) + n
    challenges = dict(survivor.get("challenges", {}))
    for code, theirs in duplicate.get("challenges", {}).items():
        mine = challenges.get(code)
        challenges[code] = theirs if mine is None else _further(mine, theirs)
    return {"badges": badges, "challenges": challenges}


def _further(mine: Json, theirs: Json) -> Json:
    if mine.get("closed") or theirs.get("closed") or mine["round"] != theirs["round"]:
        key = (bool(mine.get("closed")), mine["round"])
        return mine if key >= (bool(theirs.get("closed")), theirs["round"]) else theirs
    a = [Decimal(p) for p in mine.get("progress", [])]
    b = [Decimal(p) for p in theirs.get("progress", [])]
    size = max(len(a), len(b))
    a += [Decimal(0)] * (size - len(a))
    b += [Decimal(0)] * (size - len(b))
    return {**mine, "progress": [str(x + y) for x, y in zip(a, b, strict=True)]}


def split_engagement(
    current: Mapping[str, Any],
    duplicate: Mapping[str, Any],
    before: Mapping[str, Any],
    joined: Mapping[str, Any],
) -> Json:
    """Badge counters minus the duplicate's; a challenge unchanged since the merge goes back
    to the survivor's own (or goes, if the survivor had none); one that moved on stays."""
    badges = {
        code: n - duplicate.get("badges", {}).get(code, 0)
        for code, n in current.get("badges", {}).items()
    }
    challenges = dict(current.get("challenges", {}))
    for code in duplicate.get("challenges", {}):
        if challenges.get(code) != joined.get("challenges", {}).get(code):
            continue
        own = before.get("challenges", {}).get(code)
        if own is None:
            challenges.pop(code, None)
        else:
            challenges[code] = own
    return {"badges": {k: n for k, n in badges.items() if n > 0}, "challenges": challenges}


def combine_metrics(survivor: Mapping[str, Any], duplicate: Mapping[str, Any]) -> Json:
    """Tier metrics: daily buckets and lifetime totals summed."""
    return _metrics(survivor, duplicate, 1)


def split_metrics(current: Mapping[str, Any], duplicate: Mapping[str, Any]) -> Json:
    """Tier metrics minus the duplicate's (buckets that come to nothing are dropped)."""
    return _metrics(current, duplicate, -1)


def _metrics(a: Mapping[str, Any], b: Mapping[str, Any], sign: int) -> Json:
    days = {k: list(v) for k, v in a.get("days", {}).items()}
    for key, (p, s, sp) in b.get("days", {}).items():
        if sign < 0 and key not in days:
            continue  # pruned since the merge
        q, t, tp = days.get(key, [0, "0", 0])
        days[key] = [q + sign * p, str(Decimal(t) + sign * Decimal(s)), tp + sign * sp]
    days = {k: v for k, v in days.items() if v[0] or Decimal(v[1]) or v[2]}
    lp, ls, lsp = a.get("life", (0, "0", 0))
    bp, bs, bsp = b.get("life", (0, "0", 0))
    life = [lp + sign * bp, str(Decimal(ls) + sign * Decimal(bs)), lsp + sign * bsp]
    return {"days": dict(sorted(days.items())), "life": life}
