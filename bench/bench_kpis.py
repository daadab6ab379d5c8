"""KPI dashboard over a large programme (PostgreSQL): the aggregates vs reading the events.

A programme of ``--members`` members (default 100,000; 10,000 with ``--quick``) enrolled over
two years, about 10 purchases each over the last year (``events``, written set-based by
``generate_series``, not through the intake) and one anonymous purchase per four member ones;
then:

1. the first refresh of the aggregates (daily sales, member months): a full build;
2. an incremental refresh after 1,000 new purchases (what a job or a request pays);
3. all headline KPIs for the last whole 12 months (``kpis.compute``: headline, series by
   month, points, rewards, vouchers, tiers), aggregates already fresh; median of ``--runs``;
4. the baseline, in the same run: the same headline sales and buying-member figures computed
   straight from ``events`` and ``anonymous_purchases`` (no aggregate).

    python bench/bench_kpis.py [--members 100000] [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make ``bench`` and ``fidelia`` importable
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent / p) for p in ("", "src")]

from sqlalchemy import text

from bench.common import (
    Figure,
    baseline,
    database_url,
    emit,
    figure,
    log,
    postgres_available,
    quick_mode,
    stats,
)
from fidelia.analytics import aggregates, kpis
from fidelia.db import Database, make_engine
from fidelia.migrations import upgrade
from fidelia.models import Programme
from fidelia.programmes import service as programmes
from fidelia.programmes.schemas import ProgrammeCreate

NAME = "kpis"
MEMBERS = """INSERT INTO members (id, programme_id, status, enrolment_channel, enrolment_store,
    enrolled_at, attributes, created_at, updated_at)
  SELECT gen_random_uuid(), :p, 'active', (ARRAY['store', 'web', 'app'])[1 + g % 3],
    's' || (g % 40), :now - (g % 730) * interval '1 day' - (g % 86400) * interval '1 second',
    '{}'::jsonb, :now, :now
  FROM generate_series(1, :n) AS g"""
EVENTS = """INSERT INTO events (id, programme_id, idempotency_key, fingerprint, type, occurred_at,
    received_at, member_id, channel, store, properties, outcome)
  SELECT gen_random_uuid(), :p, 'k-' || m.id || '-' || e, 'x', 'purchase',
    :now - ((hashtext(m.id::text || e) & 2147483647) % 31536000) * interval '1 second',
    :now - interval '1 hour', m.id, 'store', 's' || (hashtext(m.id::text) & 31),
    jsonb_build_object('total', to_char(5 + (hashtext(m.id::text || e || 't') & 8191) / 100.0,
      'FM99990.00')),
    '{}'::jsonb
  FROM members m CROSS JOIN generate_series(1, 1 + (hashtext(m.id::text) & 15) + :extra) AS e
  WHERE m.programme_id = :p"""
ANONYMOUS = """INSERT INTO anonymous_purchases (id, programme_id, idempotency_key, fingerprint,
    occurred_at, received_at, channel, store, order_id, total_cents, properties)
  SELECT gen_random_uuid(), :p, 'a-' || g, 'x',
    :now - ((hashtext(g::text) & 2147483647) % 31536000) * interval '1 second',
    :now - interval '1 hour', 'store', 's' || (g % 32), 'a-' || g,
    500 + (hashtext(g::text || 't') & 8191), '{}'::jsonb
  FROM generate_series(1, :anon) AS g"""
MORE = """INSERT INTO events (id, programme_id, idempotency_key, fingerprint, type, occurred_at,
    received_at, member_id, channel, store, properties, outcome)
  SELECT gen_random_uuid(), :p, 'more-' || m.id, 'x', 'purchase', :now - interval '1 hour',
    :now, m.id, 'store', 's1', jsonb_build_object('total', '12.50'), '{}'::jsonb
  FROM (SELECT id FROM members WHERE programme_id = :p LIMIT 1000) AS m"""
BASELINE = """SELECT
  (SELECT COUNT(*) FROM events WHERE programme_id = :p AND type = 'purchase'
     AND occurred_at >= :lo AND occurred_at < :hi),
  (SELECT SUM(CAST(properties->>'total' AS numeric)) FROM events WHERE programme_id = :p
     AND type = 'purchase' AND occurred_at >= :lo AND occurred_at < :hi),
  (SELECT COUNT(DISTINCT member_id) FROM events WHERE programme_id = :p AND type = 'purchase'
     AND occurred_at >= :lo AND occurred_at < :hi),
  (SELECT COUNT(*) FROM (SELECT member_id FROM events WHERE programme_id = :p
     AND type = 'purchase' AND occurred_at >= :lo AND occurred_at < :hi
     GROUP BY member_id HAVING COUNT(*) >= 2) AS r),
  (SELECT COUNT(*) FROM anonymous_purchases WHERE programme_id = :p
     AND occurred_at >= :lo AND occurred_at < :hi),
  (SELECT SUM(total_cents) FROM anonymous_purchases WHERE programme_id = :p
     AND occurred_at >= :lo AND occurred_at < :hi)"""


def timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


def run(tmp: Path, members: int, runs: int) -> list[Figure]:
    with database_url("postgresql", tmp) as url:
        engine = make_engine(url)
        upgrade(engine)
        database = Database(engine)
        try:
            with database.transaction() as session:
                programme = programmes.create(
                    session,
                    data=ProgrammeCreate(slug="bench", name="Bench", currency="EUR",
                                         timezone="UTC", locale="fr-FR", country="FR"),
                )  # fmt: skip
            now = datetime.now(UTC)
            params = {"p": programme.id, "now": now, "n": members, "extra": 2}
            started = time.perf_counter()
            with database.transaction() as session:
                session.execute(text(MEMBERS), params)
                session.execute(text(EVENTS), params)
                purchases = session.scalar(
                    text("SELECT COUNT(*) FROM events WHERE programme_id = :p"), params
                )
                session.execute(text(ANONYMOUS), params | {"anon": (purchases or 0) // 4})
            with database.transaction() as session:
                session.execute(text("ANALYZE members"))
                session.execute(text("ANALYZE events"))
                session.execute(text("ANALYZE anonymous_purchases"))
            took = time.perf_counter() - started
            log(f"{members:,} members, {purchases:,} purchases in {took:.0f}s")
            return measure(database, programme, members, int(purchases or 0), runs)
        finally:
            database.dispose()


def measure(
    database: Database, programme: Programme, members: int, purchases: int, runs: int
) -> list[Figure]:
    def full() -> None:
        with database.transaction() as session:
            aggregates.refresh(session, programme=programme)

    build = timed(full)
    log(f"full build of the aggregates: {build:.1f}s")
    with database.transaction() as session:
        session.execute(text("ANALYZE analytics_member_months"))
        session.execute(text("ANALYZE analytics_daily_sales"))
        session.execute(text(MORE), {"p": programme.id, "now": datetime.now(UTC)})
    incremental = timed(full)
    log(f"incremental refresh after 1,000 purchases: {incremental:.2f}s")
    today = datetime.now(UTC).date()
    end = today.replace(day=1)
    start = date(end.year - 1, end.month, 1)
    last = date.fromordinal(end.toordinal() - 1)
    lo = datetime(start.year, start.month, 1, tzinfo=UTC)
    hi = datetime(end.year, end.month, 1, tzinfo=UTC)
    dashboard, direct = [], []
    for i in range(runs):
        with database.transaction(readonly=True) as session:
            t0 = time.perf_counter()
            answer = kpis.compute(
                session, programme=programme, start=start, end=last, refresh=False
            )
            dashboard.append(time.perf_counter() - t0)
        with database.transaction(readonly=True) as session:
            t0 = time.perf_counter()
            row = session.execute(text(BASELINE), {"p": programme.id, "lo": lo, "hi": hi}).one()
            direct.append(time.perf_counter() - t0)
        log(f"run {i + 1}: KPIs {dashboard[-1]:.2f}s, straight from the events {direct[-1]:.2f}s")
    h = answer.headline
    assert (h.member_orders, h.active_members, h.repeat_members) == (row[0], row[2], row[3])
    assert h.non_member_orders == row[4]
    label = (
        f"{members:,} members, {purchases:,} member purchases + {row[4]:,} anonymous, PostgreSQL"
    )
    base = baseline("the headline sales and buyer figures straight from the events",
                    stats(direct), unit="s", kind="reference")  # fmt: skip
    return [
        figure(
            f"all headline KPIs for 12 whole months, aggregates fresh, {label}",
            stats(dashboard),
            unit="s",
            base=base,
            higher_is_better=False,
            note="headline, series by month, points, rewards, vouchers, tiers",
        ),
        figure(f"first build of the aggregates, {label}", build, unit="s", higher_is_better=False),
        figure(
            f"incremental refresh after 1,000 new purchases, {label}",
            incremental,
            unit="s",
            higher_is_better=False,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    quick = quick_mode(args.quick)
    members = args.members or (10_000 if quick else 100_000)
    if not postgres_available():
        emit(NAME, [], skipped=[{"figure": "KPIs", "reason": "PostgreSQL not available"}])
        return
    with tempfile.TemporaryDirectory() as tmp:
        figures = run(Path(tmp), members, 3 if quick else args.runs)
    emit(NAME, figures, notes=["Generated set-based (generate_series), not through the intake."])


if __name__ == "__main__":
    main()
