"""Retention cohorts: members by enrolment month, the share still buying 1..12 months later.

One statement joins the cohort's members to their member months (the aggregate), grouped by
cohort and month; the offsets are counted in Python over those few hundred rows. A member is
"active in month k" when they bought in the k-th calendar month after their enrolment month.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from fidelia.analytics.aggregates import HI, LO, PID, sql_for
from fidelia.analytics.kpis import as_of, period, ratio
from fidelia.analytics.schemas import CohortRow, CohortsOut
from fidelia.models import Programme

MONTHS = 12


def _month(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _offset(cohort: date, month: date) -> int:
    return (month.year - cohort.year) * 12 + month.month - cohort.month


def compute(
    session: Session, *, programme: Programme, start: date, end: date, refresh: bool = True
) -> CohortsOut:
    """Cohorts of the members enrolled from ``start`` to ``end`` (UTC days, included)."""
    span = period(start, end)
    refreshed_to = as_of(session, programme, refresh)
    d = sql_for(session)
    cohort = d.month.replace("occurred_at", "m.enrolled_at")
    params = {"pid": programme.id, "lo": span.since, "hi": span.until}
    sizes = text(f"""SELECT {cohort} AS c, COUNT(*) FROM members AS m
      WHERE m.programme_id = :pid AND m.enrolled_at >= :lo AND m.enrolled_at < :hi
      GROUP BY {cohort}""").bindparams(PID, LO, HI)
    members = {_month(c): int(n) for c, n in session.execute(sizes, params)}
    active = text(f"""SELECT {cohort} AS c, mm.month, COUNT(*) FROM members AS m
      JOIN analytics_member_months AS mm
        ON mm.programme_id = m.programme_id AND mm.member_id = m.id
      WHERE m.programme_id = :pid AND m.enrolled_at >= :lo AND m.enrolled_at < :hi
      GROUP BY {cohort}, mm.month""").bindparams(PID, LO, HI)
    counts: dict[date, list[int]] = {c: [0] * MONTHS for c in members}
    for c, month, n in session.execute(active, params):
        k = _offset(_month(c), _month(month))
        if 1 <= k <= MONTHS:
            counts[_month(c)][k - 1] += int(n)
    repeat = text(f"""SELECT c, COUNT(*) FROM (
        SELECT {cohort} AS c, m.id FROM members AS m
        JOIN analytics_member_months AS mm
          ON mm.programme_id = m.programme_id AND mm.member_id = m.id
        WHERE m.programme_id = :pid AND m.enrolled_at >= :lo AND m.enrolled_at < :hi
        GROUP BY {cohort}, m.id HAVING SUM(mm.orders) >= :two) AS r
      GROUP BY c""").bindparams(PID, LO, HI, bindparam("two"))
    repeats = {_month(c): int(n) for c, n in session.execute(repeat, params | {"two": 2})}
    return CohortsOut(
        start=span.start,
        end=span.end,
        refreshed_to=refreshed_to,
        cohorts=[
            CohortRow(
                cohort=c,
                members=size,
                active=counts[c],
                retention=[ratio(n, size) for n in counts[c]],
                repeat_members=repeats.get(c, 0),
            )
            for c, size in sorted(members.items())
        ],
    )
