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
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Date, Uuid, bindparam, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.models import AnalyticsState, Programme
from fidelia.models.base import UTCDateTime

OVERLAP = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Sql:
    day: str  # the UTC day of ``occurred_at``
    month: str  # the first day of its UTC month
    cents: str  # a purchase event's total in cents
    true: str
    false: str


PG = Sql(
    day="CAST(timezone('UTC', occurred_at) AS date)",
    month="CAST(date_trunc('month', timezone('UTC', occurred_at)) AS date)",
    cents="CAST(round(CAST(properties->>'total' AS numeric) * 100) AS bigint)",
    true="true",
    false="false",
)
SQLITE = Sql(
    day="substr(occurred_at, 1, 10)",
    month="substr(occurred_at, 1, 7) || '-01'",
    cents="CAST(round(CAST(json_extract(properties, '$.total') AS REAL) * 100) AS INTEGER)",
    true="1",
    false="0",
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
        _rebuild(session, d, programme.id)
        result = Refreshed(full=True, days=-1, refreshed_to=now)
        from fidelia.analytics.jobs import schedule  # the job module imports this one

        schedule(session, programme=programme, after=now)  # from now on, hourly by the worker
    else:
        days = _touched_days(session, d, programme.id, state.refreshed_to - OVERLAP)
        if days:
            _refresh_days(session, d, programme.id, days)
            _refresh_member_months(session, d, programme.id, state.refreshed_to - OVERLAP)
        result = Refreshed(full=False, days=len(days), refreshed_to=now)
    state.refreshed_to = now
    state.refreshed_at = utcnow()
    session.flush()
    return result


def watermark(session: Session, *, programme: Programme) -> datetime | None:
    """Until when the programme's aggregates include what arrived (None: never refreshed)."""
    return session.scalar(
        select(AnalyticsState.refreshed_to).where(AnalyticsState.programme_id == programme.id)
    )


def fresh(database: Database, *, programme: Programme) -> None:
    """Refresh in a short transaction of its own, so that a read-only one can then read."""
    with database.transaction() as session:
        refresh(session, programme=programme)


def _daily_insert(d: Sql, where: str) -> str:
    return f"""
INSERT INTO analytics_daily_sales (programme_id, day, store, channel, member, orders, sales_cents)
SELECT :pid, day, store, channel, member, COUNT(*), SUM(cents) FROM (
  SELECT {d.day} AS day, COALESCE(store, '') AS store, COALESCE(channel, '') AS channel,
    {d.true} AS member, {d.cents} AS cents
  FROM events WHERE programme_id = :pid AND type = 'purchase' {where}
  UNION ALL
  SELECT {d.day}, COALESCE(store, ''), COALESCE(channel, ''), {d.false}, total_cents
  FROM anonymous_purchases WHERE programme_id = :pid {where}
) AS s GROUP BY day, store, channel, member"""


def _months_insert(d: Sql, where: str) -> str:
    return f"""
INSERT INTO analytics_member_months (programme_id, member_id, month, orders, sales_cents)
SELECT :pid, member_id, {d.month}, COUNT(*), SUM({d.cents})
FROM events WHERE programme_id = :pid AND type = 'purchase' {where}
GROUP BY member_id, {d.month}"""


def _rebuild(session: Session, d: Sql, pid: uuid.UUID) -> None:
    for table in ("analytics_daily_sales", "analytics_member_months"):
        delete = text(f"DELETE FROM {table} WHERE programme_id = :pid").bindparams(PID)
        session.execute(delete, {"pid": pid})
    session.execute(text(_daily_insert(d, "")).bindparams(PID), {"pid": pid})
    session.execute(text(_months_insert(d, "")).bindparams(PID), {"pid": pid})


def _touched_days(session: Session, d: Sql, pid: uuid.UUID, since: datetime) -> list[date]:
    query = text(f"""
SELECT DISTINCT {d.day} FROM events
WHERE programme_id = :pid AND type = 'purchase' AND received_at > :since
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
