"""The KPI aggregates: daily sales and member months, refreshed incrementally.

Design note
-----------
Headline KPIs over a year of a large programme cannot re-read ten million purchase events (and
their JSON totals) on every request. Two tables summarise them (:mod:`fidelia.models.analytics`):
``analytics_daily_sales`` (orders and sales in cents per UTC day, store, channel, member or
not; members' purchases from ``events``, non-members' from ``anonymous_purchases``) and
``analytics_member_months`` (orders and sales per member and UTC month). A refresh recomputes,
from the source rows, exactly the days (and member months) touched by what arrived since the
watermark, minus an overlap of ``OVERLAP`` for transactions that were still open when the last
refresh ran; recomputing a day is idempotent, so the overlap costs a little work and never
counts twice. The watermark row is locked (``FOR UPDATE``) so refreshes of a programme run one
at a time. The first refresh of a programme builds everything. Everything is set-based SQL
(``INSERT ... SELECT``), on SQLite and PostgreSQL alike.

Return events are counted in the daily sales too (``returns``, ``refund_cents``: their
``refund_total``, or when they gave none the returned units valued from their purchase's lines,
on the day of the return) for the sales net of returns. The ledger has its own daily aggregate
(:mod:`fidelia.analytics.ledger_daily`), refreshed by the same call. A third table,
``analytics_member_activity`` (migration 0024), holds one row per buying member: bitmaps of the
months with a purchase and with two or more (bit ``i`` = ``mask_base`` + ``i`` months, 62
months) and the first purchase at or after enrolment, rebuilt for the members touched by a
refresh from their member months; when the clock passes the last bits, the bitmaps are shifted
(one ``UPDATE``). Buying members, repeat members and activation then cost one scan of one row
per member instead of grouping ten million events or member months.

:func:`fresh` is what a reader calls: when nothing was received since the watermark it costs
two index probes and no write (a transaction still open at the last refresh that commits events
received before it is picked up by the next refresh that has work, at the latest the hourly
job, which always refreshes with the overlap).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, Date, Uuid, bindparam, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fidelia.analytics import ledger_daily
from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.models import AnalyticsState, AnonymousPurchase, Event, LedgerTransaction, Programme
from fidelia.models.base import BigInt, UTCDateTime

OVERLAP = timedelta(minutes=10)
MASK_BITS = 62  # months per bitmap (bits 0..61 of a signed 64-bit integer)
MASK_BACK = 48  # a new base: this many months before the current month


@dataclass(frozen=True, slots=True)
class Sql:
    day: str  # the UTC day of ``occurred_at``
    month: str  # the first day of its UTC month
    cents: str  # a purchase event's total in cents
    true: str
    false: str
    refund: str  # a return event's refund_total in cents (valued from its purchase if none)
    month_index: str  # year * 12 + month of the ``month`` column
    one: str  # 1 as a 64-bit integer, to shift


# A return event without ``refund_total`` (in the ``FROM events`` of a return) is valued from
# its purchase (same programme and order reference): each returned unit at what its line cost
# per unit after the line's discount, at most the quantity bought; shipping is not refunded.
# The same valuation as the tier policy for returns (``intake.effects``).
VALUED_PG = """(SELECT CAST(round(100 * SUM(
    LEAST(CAST(rl->>'quantity' AS numeric), CAST(pl->>'quantity' AS numeric))
    * (CAST(pl->>'quantity' AS numeric) * CAST(pl->>'unit_price' AS numeric)
       - COALESCE(CAST(pl->>'discount' AS numeric), 0)) / CAST(pl->>'quantity' AS numeric)))
    AS bigint)
  FROM events AS p
  CROSS JOIN jsonb_array_elements(p.properties->'lines') AS pl
  JOIN jsonb_array_elements(events.properties->'lines') AS rl ON rl->>'sku' = pl->>'sku'
  WHERE p.programme_id = events.programme_id AND p.type = 'purchase'
    AND p.reference = events.reference)"""
VALUED_SQLITE = """(SELECT CAST(round(100 * SUM(
    MIN(CAST(json_extract(rl.value, '$.quantity') AS REAL),
        CAST(json_extract(pl.value, '$.quantity') AS REAL))
    * (CAST(json_extract(pl.value, '$.quantity') AS REAL)
       * CAST(json_extract(pl.value, '$.unit_price') AS REAL)
       - COALESCE(CAST(json_extract(pl.value, '$.discount') AS REAL), 0))
    / CAST(json_extract(pl.value, '$.quantity') AS REAL))) AS INTEGER)
  FROM events AS p
  CROSS JOIN json_each(p.properties, '$.lines') AS pl
  JOIN json_each(events.properties, '$.lines') AS rl
    ON json_extract(rl.value, '$.sku') = json_extract(pl.value, '$.sku')
  WHERE p.programme_id = events.programme_id AND p.type = 'purchase'
    AND p.reference = events.reference)"""
PG = Sql(
    day="CAST(timezone('UTC', occurred_at) AS date)",
    month="CAST(date_trunc('month', timezone('UTC', occurred_at)) AS date)",
    cents="CAST(round(CAST(properties->>'total' AS numeric) * 100) AS bigint)",
    true="true",
    false="false",
    refund="COALESCE(CAST(round(CAST(properties->>'refund_total' AS numeric) * 100) AS bigint), "
    f"{VALUED_PG}, 0)",
    month_index="(CAST(EXTRACT(YEAR FROM month) AS integer) * 12"
    " + CAST(EXTRACT(MONTH FROM month) AS integer))",
    one="CAST(1 AS bigint)",
)
SQLITE = Sql(
    day="substr(occurred_at, 1, 10)",
    month="substr(occurred_at, 1, 7) || '-01'",
    cents="CAST(round(CAST(json_extract(properties, '$.total') AS REAL) * 100) AS INTEGER)",
    true="1",
    false="0",
    refund="COALESCE(CAST(round(CAST(json_extract(properties, '$.refund_total') AS REAL) * 100)"
    f" AS INTEGER), {VALUED_SQLITE}, 0)",
    month_index="(CAST(substr(month, 1, 4) AS INTEGER) * 12"
    " + CAST(substr(month, 6, 2) AS INTEGER))",
    one="1",
)


def sql_for(session: Session) -> Sql:
    return PG if session.get_bind().dialect.name == "postgresql" else SQLITE


PID = bindparam("pid", type_=Uuid())
SINCE = bindparam("since", type_=UTCDateTime())
LO = bindparam("lo", type_=UTCDateTime())
HI = bindparam("hi", type_=UTCDateTime())


@dataclass(frozen=True, slots=True)
class Refreshed:
    full: bool
    days: int
    refreshed_to: datetime


def _state(session: Session, programme_id: uuid.UUID) -> AnalyticsState:
    query = select(AnalyticsState).where(AnalyticsState.programme_id == programme_id)
    state = session.scalar(query.with_for_update())
    if state is None:
        try:
            with session.begin_nested():
                session.add(AnalyticsState(programme_id=programme_id))
        except IntegrityError:
            pass  # another refresh created it: lock theirs
        state = session.scalar(query.with_for_update())
        assert state is not None
    return state


def refresh(session: Session, *, programme: Programme, now: datetime | None = None) -> Refreshed:
    """Bring the programme's aggregates up to date with what arrived until ``now``."""
    now = now or utcnow()
    state = _state(session, programme.id)
    d = sql_for(session)
    if state.refreshed_to is None:
        state.ledger_to = None  # everything from scratch, the ledger too
        state.mask_base = shift_month(now.date().replace(day=1), -MASK_BACK)
        _rebuild(session, d, programme.id)
        _activity(session, d, programme.id, state.mask_base, None)
        result = Refreshed(full=True, days=-1, refreshed_to=now)
        from fidelia.analytics.jobs import schedule  # the job module imports this one

        schedule(session, programme=programme, after=now)  # from now on, hourly by the worker
    else:
        since = state.refreshed_to - OVERLAP
        _shift_masks(session, state, now)
        days = _touched_days(session, d, programme.id, since)
        if days:
            _refresh_days(session, d, programme.id, days)
            _refresh_member_months(session, d, programme.id, since)
            _activity(session, d, programme.id, state.mask_base, since)
        result = Refreshed(full=False, days=len(days), refreshed_to=now)
    ledger_daily.refresh(session, state=state, day_sql=d.day, overlap=OVERLAP, now=now)
    state.refreshed_to = now
    state.refreshed_at = utcnow()
    session.flush()
    return result


def watermark(session: Session, *, programme: Programme) -> datetime | None:
    """Until when the programme's aggregates include what arrived (None: never refreshed)."""
    return session.scalar(
        select(AnalyticsState.refreshed_to).where(AnalyticsState.programme_id == programme.id)
    )


def up_to_date(session: Session, *, programme: Programme) -> bool:
    """Nothing (no event, no anonymous purchase, no ledger posting) arrived since the
    watermarks: three probes of the ``(programme_id, received_at)`` and ``(programme_id,
    posted_at)`` indexes, no lock, no write."""
    pid = programme.id
    row = session.execute(
        select(
            AnalyticsState.refreshed_to,
            AnalyticsState.ledger_to,
            select(func.max(Event.received_at)).where(Event.programme_id == pid).scalar_subquery(),
            select(func.max(AnonymousPurchase.received_at))
            .where(AnonymousPurchase.programme_id == pid)
            .scalar_subquery(),
            select(func.max(LedgerTransaction.posted_at))
            .where(LedgerTransaction.programme_id == pid)
            .scalar_subquery(),
        ).where(AnalyticsState.programme_id == pid)
    ).one_or_none()
    if row is None:
        return False
    refreshed_to, ledger_to, received, anonymous, posted = row
    if refreshed_to is None or ledger_to is None:
        return False
    return all(v is None or v <= refreshed_to for v in (received, anonymous)) and (
        posted is None or posted <= ledger_to
    )


def fresh(database: Database, *, programme: Programme) -> bool:
    """What a reader calls before reading the aggregates: a read-only check (a few ms), and
    only when something arrived since the watermark a refresh in a short transaction of its
    own. True when it refreshed."""
    with database.transaction(readonly=True) as session:
        if up_to_date(session, programme=programme):
            return False
    with database.transaction() as session:
        refresh(session, programme=programme)
    return True


def shift_month(month: date, by: int) -> date:
    index = month.year * 12 + month.month - 1 + by
    return date(index // 12, index % 12 + 1, 1)


def month_index(month: date) -> int:
    return month.year * 12 + month.month


def _shift_masks(session: Session, state: AnalyticsState, now: datetime) -> None:
    """Keep the current month well inside the bitmaps: past bit ``MASK_BITS - 3``, shift every
    member's bitmaps right (the oldest months fall off) and move the base."""
    base = state.mask_base
    current = now.date().replace(day=1)
    if base is None or month_index(current) - month_index(base) < MASK_BITS - 3:
        return
    new_base = shift_month(current, -MASK_BACK)
    by = month_index(new_base) - month_index(base)
    statement = text("""UPDATE analytics_member_activity
      SET months = months / :div, multi = multi / :div WHERE programme_id = :pid""")
    session.execute(
        statement.bindparams(PID, bindparam("div", type_=BigInt)),
        {"pid": state.programme_id, "div": 2**by if by < MASK_BITS else 2**MASK_BITS},
    )
    state.mask_base = new_base


def _activity(
    session: Session, d: Sql, pid: uuid.UUID, base: date | None, since: datetime | None
) -> None:
    """Rebuild the activity rows of the members with purchases received since ``since`` (all
    the programme's members when None) from their member months and purchase events."""
    assert base is not None
    touched = """SELECT member_id FROM events
      WHERE programme_id = :pid AND type = 'purchase' AND received_at > :since"""
    only = f"AND member_id IN ({touched})" if since is not None else ""
    only_e = f"AND e.member_id IN ({touched})" if since is not None else ""
    delete = "DELETE FROM analytics_member_activity WHERE programme_id = :pid " + only
    bit = f"({d.one} << i)"
    insert = f"""
WITH mm AS (
  SELECT member_id,
    SUM(CASE WHEN i >= 0 AND i < {MASK_BITS} THEN {bit} ELSE 0 END) AS months,
    SUM(CASE WHEN i >= 0 AND i < {MASK_BITS} AND orders >= 2 THEN {bit} ELSE 0 END) AS multi
  FROM (SELECT member_id, orders, CAST({d.month_index} - :b AS integer) AS i
        FROM analytics_member_months WHERE programme_id = :pid {only}) AS x
  GROUP BY member_id
), f AS (
  SELECT e.member_id, MIN(e.occurred_at) AS at
  FROM events AS e JOIN members AS m ON m.id = e.member_id
  WHERE e.programme_id = :pid AND e.type = 'purchase' AND e.occurred_at >= m.enrolled_at {only_e}
  GROUP BY e.member_id
)
INSERT INTO analytics_member_activity
  (member_id, programme_id, enrolled_at, activated_at, months, multi)
SELECT mm.member_id, :pid, m.enrolled_at, f.at, CAST(mm.months AS {BIG_SQL[d is PG]}),
  CAST(mm.multi AS {BIG_SQL[d is PG]})
FROM mm JOIN members AS m ON m.id = mm.member_id LEFT JOIN f ON f.member_id = mm.member_id"""
    params: dict[str, object] = {"pid": pid, "b": month_index(base)}
    binds: list[BindParameter[Any]] = [PID, bindparam("b", type_=BigInt)]
    if since is not None:
        params["since"] = since
        binds.append(SINCE)
    session.execute(text(delete).bindparams(*binds[:1], *binds[2:]), params)
    session.execute(text(insert).bindparams(*binds), params)


BIG_SQL = {True: "bigint", False: "INTEGER"}


def _daily_insert(d: Sql, where: str) -> str:
    return f"""
INSERT INTO analytics_daily_sales
  (programme_id, day, store, channel, member, orders, sales_cents, returns, refund_cents)
SELECT :pid, day, store, channel, member, SUM(n), SUM(cents), SUM(r), SUM(refund) FROM (
  SELECT {d.day} AS day, COALESCE(store, '') AS store, COALESCE(channel, '') AS channel,
    {d.true} AS member, 1 AS n, {d.cents} AS cents, 0 AS r, 0 AS refund
  FROM events WHERE programme_id = :pid AND type = 'purchase' {where}
  UNION ALL
  SELECT {d.day}, COALESCE(store, ''), COALESCE(channel, ''), {d.true}, 0, 0, 1, {d.refund}
  FROM events WHERE programme_id = :pid AND type = 'return' {where}
  UNION ALL
  SELECT {d.day}, COALESCE(store, ''), COALESCE(channel, ''), {d.false}, 1, total_cents, 0, 0
  FROM anonymous_purchases WHERE programme_id = :pid {where}
) AS s GROUP BY day, store, channel, member"""


def _months_insert(d: Sql, where: str) -> str:
    return f"""
INSERT INTO analytics_member_months (programme_id, member_id, month, orders, sales_cents)
SELECT :pid, member_id, {d.month}, COUNT(*), SUM({d.cents})
FROM events WHERE programme_id = :pid AND type = 'purchase' {where}
GROUP BY member_id, {d.month}"""


def _rebuild(session: Session, d: Sql, pid: uuid.UUID) -> None:
    for table in ("analytics_daily_sales", "analytics_member_months", "analytics_member_activity"):
        delete = text(f"DELETE FROM {table} WHERE programme_id = :pid").bindparams(PID)
        session.execute(delete, {"pid": pid})
    session.execute(text(_daily_insert(d, "")).bindparams(PID), {"pid": pid})
    session.execute(text(_months_insert(d, "")).bindparams(PID), {"pid": pid})


def _touched_days(session: Session, d: Sql, pid: uuid.UUID, since: datetime) -> list[date]:
    query = text(f"""
SELECT DISTINCT {d.day} FROM events
WHERE programme_id = :pid AND type IN ('purchase', 'return') AND received_at > :since
UNION
SELECT DISTINCT {d.day} FROM anonymous_purchases WHERE programme_id = :pid AND received_at > :since
""").bindparams(PID, SINCE)
    days = session.scalars(query, {"pid": pid, "since": since})
    return sorted(v if isinstance(v, date) else date.fromisoformat(v) for v in days)


def _bounds(days: list[date]) -> dict[str, datetime]:
    lo = datetime.combine(days[0], datetime.min.time()).replace(tzinfo=UTC)
    hi = datetime.combine(days[-1] + timedelta(days=1), datetime.min.time()).replace(tzinfo=UTC)
    return {"lo": lo, "hi": hi}


def _refresh_days(session: Session, d: Sql, pid: uuid.UUID, days: list[date]) -> None:
    """Recompute the touched days (read within their overall range, filtered to the set)."""
    day_list = bindparam("days", type_=Date(), expanding=True)
    session.execute(
        text("DELETE FROM analytics_daily_sales WHERE programme_id = :pid AND day IN :days")
        .bindparams(PID, day_list),
        {"pid": pid, "days": days},
    )  # fmt: skip
    where = f"AND occurred_at >= :lo AND occurred_at < :hi AND {d.day} IN :days"
    statement = text(_daily_insert(d, where)).bindparams(PID, LO, HI, day_list)
    session.execute(statement, {"pid": pid, "days": days, **_bounds(days)})


def _refresh_member_months(session: Session, d: Sql, pid: uuid.UUID, since: datetime) -> None:
    """Recompute the months touched, for the members with new purchases in them."""
    touched = """SELECT member_id FROM events
      WHERE programme_id = :pid AND type = 'purchase' AND received_at > :since"""
    months = text(f"""SELECT DISTINCT {d.month} FROM events
      WHERE programme_id = :pid AND type = 'purchase' AND received_at > :since""")
    found = session.scalars(months.bindparams(PID, SINCE), {"pid": pid, "since": since})
    month_list = sorted(v if isinstance(v, date) else date.fromisoformat(v) for v in found)
    if not month_list:
        return
    params = {"pid": pid, "since": since, "months": month_list}
    expanding = bindparam("months", type_=Date(), expanding=True)
    session.execute(
        text(f"""DELETE FROM analytics_member_months WHERE programme_id = :pid
          AND month IN :months AND member_id IN ({touched})""")
        .bindparams(PID, SINCE, expanding),
        params,
    )  # fmt: skip
    where = f"AND {d.month} IN :months AND member_id IN ({touched})"
    session.execute(text(_months_insert(d, where)).bindparams(PID, SINCE, expanding), params)
