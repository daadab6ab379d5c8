"""Points liability at a date, the breakage forecast and its back-test.

Design note
-----------
The liability at a date ``D`` is the sum of the member balances as of ``D`` (the ledger's
entries effective at or before it). The forecast runs off the points outstanding at ``D``, lot
by lot, grouped in SQL by the lot's age at ``D`` and the month it expires in (months here are
30 days):

* the **redemption curve** ``r(a)`` is, over the lots of the wallet born before ``D``, the
  points redeemed at age ``a`` divided by the points still on the lots when they reached age
  ``a`` (only lots observed over the whole of age ``a``); past the ages seen, the last rate;
* each month, a group redeems ``r(age)`` of what it holds; what is left when the group reaches
  its expiry month expires: that is the **breakage**;
* the forecast liability of month ``m`` is what is left of ``D``'s points after month ``m``,
  valued at the wallet's unit value. New points earned after ``D`` are not forecast.

With ``D`` in the past the same forecast is set against what happened to those points
(redeemed, expired and left, month by month): the **back-test**. Everything is a handful of
aggregate statements; Python only walks the few dozen (age, expiry) groups.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Uuid, bindparam, text
from sqlalchemy.orm import Session

from fidelia.analytics.kpis import in_money, outstanding, ratio
from fidelia.analytics.schemas import ForecastMonth, LiabilityOut
from fidelia.kit.clock import utcnow
from fidelia.ledger.wallets import get_wallet
from fidelia.models import Programme, Wallet
from fidelia.models.base import UTCDateTime

MONTH = timedelta(days=30)
HORIZON = 12
RUN_OFF = 120  # months followed to the expiry of long-lived lots (breakage beyond the horizon)

AT = bindparam("at", type_=UTCDateTime())
WALLET = bindparam("w", type_=Uuid())


class _Sql:
    def age(self, later: str, earlier: str) -> str:
        raise NotImplementedError


class _Pg(_Sql):
    def age(self, later: str, earlier: str) -> str:
        return f"CAST(floor(extract(epoch FROM ({later} - {earlier})) / 2592000) AS integer)"


class _Lite(_Sql):
    def age(self, later: str, earlier: str) -> str:
        return f"CAST(floor((julianday({later}) - julianday({earlier})) / 30) AS INTEGER)"


LOTS = """FROM ledger_lots AS l
  JOIN ledger_transactions AS t ON t.id = l.transaction_id
  JOIN ledger_accounts AS a ON a.id = l.account_id
  WHERE l.wallet_id = :w AND a.member_id IS NOT NULL AND t.occurred_at <= :at"""


def _curve(session: Session, q: _Sql, params: dict[str, object]) -> list[float | None]:
    """``r(a)``: redeemed at age ``a`` / held at the start of age ``a``."""
    g = q.age(":at", "t.occurred_at")
    rows = session.execute(
        text(f"SELECT {g} AS g, SUM(l.amount) {LOTS} GROUP BY {g}").bindparams(AT, WALLET),
        params,
    )
    born: dict[int, int] = {int(age): int(amount or 0) for age, amount in rows}
    b = q.age("e.effective_at", "t.occurred_at")
    used: dict[tuple[int, int], int] = defaultdict(int)
    spent: dict[tuple[int, int], int] = defaultdict(int)
    query = text(f"""SELECT {g} AS g, {b} AS b, et.kind, -SUM(e.amount)
      FROM ledger_entries AS e JOIN ledger_transactions AS et ON et.id = e.transaction_id
      JOIN ledger_lots AS l ON l.id = e.lot_id
      JOIN ledger_transactions AS t ON t.id = l.transaction_id
      JOIN ledger_accounts AS a ON a.id = l.account_id
      WHERE l.wallet_id = :w AND a.member_id IS NOT NULL AND t.occurred_at <= :at
        AND e.effective_at <= :at AND e.transaction_id <> l.transaction_id
        AND et.kind <> 'release'
      GROUP BY {g}, {b}, et.kind""").bindparams(AT, WALLET)
    for gg, bb, kind, amount in session.execute(query, params):
        used[(int(gg), int(bb))] += int(amount or 0)
        if kind == "spend":
            spent[(int(gg), int(bb))] += int(amount or 0)
    oldest = max(born, default=-1)
    curve: list[float | None] = []
    for age in range(oldest):
        held = sum(
            amount - sum(used[(gg, x)] for x in range(age))
            for gg, amount in born.items()
            if gg > age
        )
        redeemed = sum(spent[(gg, age)] for gg in born if gg > age)
        curve.append(ratio(redeemed, held) if held > 0 else None)
    return curve


def _rate(curve: list[float | None], age: int) -> float:
    known = [r for r in curve if r is not None]
    if not known:
        return 0.0
    if age < len(curve) and curve[age] is not None:
        return float(curve[age] or 0.0)
    return known[-1]


def _groups(session: Session, q: _Sql, params: dict[str, object]) -> list[tuple[int, int, int]]:
    """``(age at D, expiry month after D or -1 for never, points left)`` of D's lots."""
    g = q.age(":at", "t.occurred_at")
    x = f"CASE WHEN l.expires_at IS NULL THEN -1 ELSE {q.age('l.expires_at', ':at')} END"
    query = text(f"""SELECT g, x, SUM(rem) FROM (
        SELECT l.id, {g} AS g, {x} AS x, SUM(e.amount) AS rem
        FROM ledger_entries AS e JOIN ledger_lots AS l ON l.id = e.lot_id
        JOIN ledger_transactions AS t ON t.id = l.transaction_id
        JOIN ledger_accounts AS a ON a.id = l.account_id
        WHERE l.wallet_id = :w AND a.member_id IS NOT NULL AND t.occurred_at <= :at
          AND e.effective_at <= :at
        GROUP BY l.id, {g}, {x}) AS s
      WHERE rem > 0 GROUP BY g, x""").bindparams(AT, WALLET)
    return [(int(a), int(b), int(c)) for a, b, c in session.execute(query, params)]


def _actuals(session: Session, q: _Sql, params: dict[str, object]) -> dict[int, dict[str, int]]:
    """What happened to D's lots after D, per month after D: redeemed, expired, all moves."""
    m = q.age("e.effective_at", ":at")
    query = text(f"""SELECT {m} AS m, et.kind, -SUM(e.amount)
      FROM ledger_entries AS e JOIN ledger_transactions AS et ON et.id = e.transaction_id
      JOIN ledger_lots AS l ON l.id = e.lot_id
      JOIN ledger_transactions AS t ON t.id = l.transaction_id
      JOIN ledger_accounts AS a ON a.id = l.account_id
      WHERE l.wallet_id = :w AND a.member_id IS NOT NULL AND t.occurred_at <= :at
        AND e.effective_at > :at AND et.kind <> 'release'
      GROUP BY {m}, et.kind""").bindparams(AT, WALLET)
    found: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for month, kind, amount in session.execute(query, params):
        found[int(month)][kind] += int(amount or 0)
        found[int(month)]["all"] += int(amount or 0)
    return found


def forecast(
    session: Session,
    *,
    programme: Programme,
    wallet: str = "points",
    at: datetime | None = None,
    now: datetime | None = None,
) -> LiabilityOut:
    """The liability of ``wallet`` at ``at`` (default now), its 12-month run-off forecast and,
    when ``at`` is in the past, the back-test against what happened."""
    now = now or utcnow()
    at = at or now
    found: Wallet = get_wallet(session, programme=programme, code=wallet)
    q: _Sql = _Pg() if session.get_bind().dialect.name == "postgresql" else _Lite()
    params: dict[str, object] = {"w": found.id, "at": at}
    available, pending = outstanding(session, found, at)
    curve = _curve(session, q, params)
    groups = _groups(session, q, params)
    actual = _actuals(session, q, params) if at < now else {}
    months, breakage = _run_off(curve, groups)
    answer: list[ForecastMonth] = []
    left_actual = available + pending
    for m in range(1, HORIZON + 1):
        until = at + MONTH * m
        seen = until <= now and at < now
        moved = actual.get(m - 1, {})
        left_actual -= moved.get("all", 0)
        redeemed, expired, left = months[m - 1]
        answer.append(
            ForecastMonth(
                month=m,
                until=until,
                expected_redeemed=round(redeemed),
                expected_expired=round(expired),
                expected_outstanding=round(left),
                expected_liability_money=in_money(found, round(left)),
                actual_redeemed=moved.get("spend", 0) if seen else None,
                actual_expired=moved.get("expire", 0) if seen else None,
                actual_outstanding=left_actual if seen else None,
            )
        )
    total = sum(r for *_, r in groups)
    return LiabilityOut(
        wallet=found.code,
        at=at,
        outstanding=available + pending,
        available=available,
        pending=pending,
        liability_money=in_money(found, available + pending),
        unit_value=Decimal(found.unit_value),
        redemption_curve=curve,
        expected_breakage=round(breakage),
        breakage_rate=ratio(breakage, total),
        forecast=answer,
        backtest=bool(actual) or at < now - MONTH,
    )


def _run_off(
    curve: list[float | None], groups: list[tuple[int, int, int]]
) -> tuple[list[tuple[float, float, float]], float]:
    """Month by month: (redeemed, expired, left) over the horizon, and the whole breakage."""
    months = [[0.0, 0.0, 0.0] for _ in range(HORIZON)]
    breakage = 0.0
    for age, expiry, points in groups:
        left = float(points)
        for m in range(RUN_OFF):
            redeemed = left * _rate(curve, age + m)
            left -= redeemed
            expired = 0.0
            if expiry != -1 and m >= max(expiry, 0):
                expired, left = left, 0.0
            breakage += expired
            if m < HORIZON:
                months[m][0] += redeemed
                months[m][1] += expired
            if left <= 0:
                break
    # what is left after month m: the outstanding minus everything redeemed or expired so far
    total = float(sum(p for *_, p in groups))
    rows: list[tuple[float, float, float]] = []
    for redeemed, expired, _ in months:
        total -= redeemed + expired
        rows.append((redeemed, expired, max(total, 0.0)))
    return rows, breakage
