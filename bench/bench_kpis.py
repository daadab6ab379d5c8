"""KPI dashboard over a large programme (PostgreSQL): the aggregates vs reading the events.

A programme of ``--members`` members (default 100,000; 10,000 with ``--quick``) enrolled over
two years, about 10 purchases each over the last year (``events``, written set-based by
``generate_series``, not through the intake), one anonymous purchase per four member ones, a
return per twenty purchases, and ledger postings in the ``points`` wallet (1 to 4 earns per
member under three rules, a spend for one member in three: a member account, a transaction and
two entries each, against the wallet's system accounts); then:

1. the first refresh of the aggregates (daily sales, member months): a full build;
2. the first build of the daily ledger aggregate alone, then an incremental refresh after 1,000
   new purchases and 1,000 ledger postings committed late (posted 5 minutes before the
   watermark: what a job or a request pays);
3. all headline KPIs for the last whole 12 months (``kpis.compute``: headline, series by
   month, points, rewards, vouchers, tiers), aggregates already fresh; median of ``--runs``;
4. the baseline, in the same run: the same headline sales and buying-member figures computed
   straight from ``events`` and ``anonymous_purchases`` (no aggregate);
5. the points economy alone from the daily ledger aggregate (``kpis.points``) against the same
   sums straight from the ledger's entries, transactions and accounts (how it was read before
   migration 0029), checked equal;
6. ``aggregates.fresh`` when nothing arrived since the refresh (what the dashboard pays).

    python bench/bench_kpis.py [--members 100000] [--runs 5] [--quick] [--keep NAME]

``--keep NAME`` uses the PostgreSQL database ``NAME`` and keeps it: the first run creates and
fills it, later runs find its ``bench`` programme, migrate it and only measure (the aggregates
are rebuilt from scratch each run, so the first build is measured again).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make ``bench`` and ``fidelia`` importable
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent / p) for p in ("", "src")]

from sqlalchemy import create_engine, make_url, select, text
from sqlalchemy.orm import Session

from bench.common import (
    Figure,
    baseline,
    database_url,
    emit,
    figure,
    log,
    pg_admin_url,
    postgres_available,
    quick_mode,
    stats,
)
from fidelia.analytics import aggregates, kpis
from fidelia.db import Database, make_engine
from fidelia.ledger.wallets import ensure_default_wallets
from fidelia.migrations import upgrade
from fidelia.models import Programme, Wallet
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
  SELECT gen_random_uuid(), :p, 'more-' || :run || m.id, 'x', 'purchase', :now - interval '1 hour',
    :now, m.id, 'store', 's1', jsonb_build_object('total', '12.50'), '{}'::jsonb
  FROM (SELECT id FROM members WHERE programme_id = :p LIMIT 1000) AS m"""
RETURNS = """INSERT INTO events (id, programme_id, idempotency_key, fingerprint, type, occurred_at,
    received_at, member_id, channel, store, properties, outcome)
  SELECT gen_random_uuid(), :p, 'r-' || e.id, 'x', 'return', e.occurred_at + interval '3 days',
    :now - interval '1 hour', e.member_id, 'store', e.store,
    jsonb_build_object('order_id', 'o', 'lines', '[]'::jsonb, 'refund_total', '5.00'), '{}'::jsonb
  FROM events e WHERE e.programme_id = :p AND e.type = 'purchase'
    AND (hashtext(e.id::text) & 31) = 0 AND e.occurred_at < :now - interval '3 days'"""
ACCOUNTS = """INSERT INTO ledger_accounts (id, programme_id, wallet_id, member_id, kind,
    allows_debt, available, pending, lifetime_earned, lifetime_spent, lifetime_expired, created_at)
  SELECT gen_random_uuid(), :p, :w, m.id, 'member', false, 0, 0, 0, 0, 0, :now
  FROM members m WHERE m.programme_id = :p"""
POSTINGS = """CREATE TEMP TABLE bench_postings ON COMMIT DROP AS
  SELECT gen_random_uuid() AS id, a.id AS account, a.member_id,
    CASE WHEN k <= 1 + (hashtext(a.id::text) & 3) THEN 'earn' ELSE 'spend' END AS kind,
    CASE WHEN k <= 1 + (hashtext(a.id::text) & 3) THEN 'rule-' || (k % 3) END AS rule,
    CASE WHEN k <= 1 + (hashtext(a.id::text) & 3) THEN 100 + (hashtext(a.id::text || k) & 255)
      ELSE -50 END AS amount,
    :now - ((hashtext(a.id::text || k || 'd') & 2147483647) % 31536000) * interval '1 second'
      AS at, k
  FROM ledger_accounts a CROSS JOIN generate_series(1, 5) AS k
  WHERE a.wallet_id = :w AND a.member_id IS NOT NULL
    AND (k <= 1 + (hashtext(a.id::text) & 3) OR (k = 5 AND hashtext(a.id::text || 's') % 3 = 0))"""
TRANSACTIONS = """INSERT INTO ledger_transactions (id, programme_id, wallet_id, member_id, kind,
    idempotency_key, source_type, rule_id, occurred_at, posted_at, details)
  SELECT id, :p, :w, member_id, kind, 'b-' || id, 'event', rule, at, at, '{}'::jsonb
  FROM bench_postings"""
ENTRIES = """INSERT INTO ledger_entries (id, programme_id, transaction_id, account_id, pending,
    amount, effective_at)
  SELECT gen_random_uuid(), :p, id, account, false, amount, at FROM bench_postings
  UNION ALL
  SELECT gen_random_uuid(), :p, b.id, s.id, false, -b.amount, b.at FROM bench_postings b
  JOIN ledger_accounts s ON s.wallet_id = :w AND s.member_id IS NULL
    AND s.kind = CASE WHEN b.kind = 'earn' THEN 'issued' ELSE 'redeemed' END"""
LATE = """CREATE TEMP TABLE bench_late ON COMMIT DROP AS
  SELECT gen_random_uuid() AS id, a.id AS account, a.member_id
  FROM ledger_accounts a WHERE a.wallet_id = :w AND a.member_id IS NOT NULL LIMIT 1000"""
LATE_TRANSACTIONS = """INSERT INTO ledger_transactions (id, programme_id, wallet_id, member_id,
    kind, idempotency_key, source_type, rule_id, occurred_at, posted_at, details)
  SELECT id, :p, :w, member_id, 'earn', 'late-' || id, 'event', 'rule-late', :at, :posted,
    '{}'::jsonb
  FROM bench_late"""
LATE_ENTRIES = """INSERT INTO ledger_entries (id, programme_id, transaction_id, account_id, pending,
    amount, effective_at)
  SELECT gen_random_uuid(), :p, id, account, false, 10, :at FROM bench_late
  UNION ALL
  SELECT gen_random_uuid(), :p, b.id, s.id, false, -10, :at FROM bench_late b
  JOIN ledger_accounts s ON s.wallet_id = :w AND s.member_id IS NULL AND s.kind = 'issued'"""
POINTS_FLOWS = """SELECT t.wallet_id, t.kind, COALESCE(t.rule_id, ''), SUM(e.amount)
  FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id
  JOIN ledger_accounts a ON a.id = e.account_id
  WHERE t.programme_id = :p AND a.member_id IS NOT NULL AND t.occurred_at >= :lo
    AND t.occurred_at < :hi AND t.kind <> 'release'
  GROUP BY t.wallet_id, t.kind, COALESCE(t.rule_id, '')"""
POINTS_HELD = """SELECT a.wallet_id, SUM(e.amount) FROM ledger_entries e
  JOIN ledger_accounts a ON a.id = e.account_id
  WHERE a.programme_id = :p AND a.member_id IS NOT NULL AND e.effective_at < :hi
  GROUP BY a.wallet_id"""
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


@contextmanager
def kept_database(name: str) -> Iterator[str]:
    """The PostgreSQL database ``name`` (created when missing), not dropped afterwards."""
    admin = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not found:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    yield make_url(pg_admin_url()).set(database=name).render_as_string(hide_password=False)


def run(tmp: Path, members: int, runs: int, keep: str | None) -> list[Figure]:
    place = kept_database(keep) if keep else database_url("postgresql", tmp)
    with place as url:
        engine = make_engine(url)
        upgrade(engine)
        database = Database(engine)
        try:
            with database.transaction() as session:
                kept = session.scalar(select(Programme).where(Programme.slug == "bench"))
            if kept is not None:
                with database.transaction() as session:
                    purchases = session.scalar(
                        text("SELECT COUNT(*) FROM events WHERE programme_id = :p"
                             " AND type = 'purchase'"), {"p": kept.id}
                    )  # fmt: skip
                    session.execute(
                        text("DELETE FROM analytics_state WHERE programme_id = :p"), {"p": kept.id}
                    )
                    found = int(session.scalar(text("SELECT COUNT(*) FROM members")) or 0)
                log(f"kept database {keep}: {found:,} members, {purchases:,} purchases")
                return measure(database, kept, found, int(purchases or 0), runs)
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
            log(f"events written in {time.perf_counter() - started:.0f}s")
            with database.transaction() as session:
                session.execute(text(RETURNS), params)
            postings = ledger(database, programme, params)
            log(f"{postings:,} ledger transactions written")
            with database.transaction() as session:
                session.execute(text("ANALYZE members"))
                session.execute(text("ANALYZE events"))
                session.execute(text("ANALYZE anonymous_purchases"))
                for table in ("ledger_accounts", "ledger_transactions", "ledger_entries"):
                    session.execute(text(f"ANALYZE {table}"))
            took = time.perf_counter() - started
            log(f"{members:,} members, {purchases:,} purchases in {took:.0f}s")
            return measure(database, programme, members, int(purchases or 0), runs)
        finally:
            database.dispose()


def ledger(database: Database, programme: Programme, params: dict[str, object]) -> int:
    """Member accounts and earn/spend postings in the ``points`` wallet, set-based."""
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        wallet = next(w for w in ensure_default_wallets(session, programme=found)
                      if w.code == "points")  # fmt: skip
        wallet.unit_value = Decimal("0.01")
        values = params | {"w": wallet.id}
        session.execute(text(ACCOUNTS), values)
        session.execute(text(POSTINGS), values)
        session.execute(text(TRANSACTIONS), values)
        session.execute(text(ENTRIES), values)
        return int(session.scalar(text("SELECT COUNT(*) FROM bench_postings")) or 0)


def late(session: Session, programme: Programme) -> None:
    """1,000 earns of today posted 5 minutes before the watermark (committed late)."""
    wallet = session.scalar(
        select(Wallet.id).where(Wallet.programme_id == programme.id, Wallet.code == "points")
    )
    now = datetime.now(UTC)
    values = {"p": programme.id, "w": wallet, "at": now - timedelta(hours=1),
              "posted": now - timedelta(minutes=5)}  # fmt: skip
    for statement in (LATE, LATE_TRANSACTIONS, LATE_ENTRIES):
        session.execute(text(statement), values)


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
        session.execute(text("ANALYZE analytics_ledger_daily"))
        session.execute(
            text("UPDATE analytics_state SET ledger_to = NULL WHERE programme_id = :p"),
            {"p": programme.id},
        )
    ledger_build = timed(full)  # the ledger aggregate alone (nothing new for the others)
    log(f"first build of the daily ledger aggregate: {ledger_build:.1f}s")
    with database.transaction() as session:
        session.execute(
            text(MORE), {"p": programme.id, "now": datetime.now(UTC), "run": uuid.uuid4().hex}
        )
        late(session, programme)
    incremental = timed(full)
    log(f"incremental refresh after 1,000 purchases and 1,000 late postings: {incremental:.2f}s")
    today = datetime.now(UTC).date()
    end = today.replace(day=1)
    start = date(end.year - 1, end.month, 1)
    last = date.fromordinal(end.toordinal() - 1)
    lo = datetime(start.year, start.month, 1, tzinfo=UTC)
    hi = datetime(end.year, end.month, 1, tzinfo=UTC)
    dashboard, direct, ledger_direct = [], [], []
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
        with database.transaction(readonly=True) as session:
            t0 = time.perf_counter()
            flows = session.execute(text(POINTS_FLOWS), {"p": programme.id, "lo": lo, "hi": hi})
            held = session.execute(text(POINTS_HELD), {"p": programme.id, "hi": hi}).all()
            issued = sum(int(n) for _w, kind, _r, n in flows if kind == "earn")
            ledger_direct.append(time.perf_counter() - t0)
        log(f"run {i + 1}: KPIs {dashboard[-1]:.2f}s, straight from the events {direct[-1]:.2f}s,"
            f" points straight from the ledger {ledger_direct[-1]:.2f}s")  # fmt: skip
    mine = answer.points
    assert sum(w.issued for w in mine) == issued, "the aggregate's points differ from the ledger"
    assert sum(w.outstanding_at_end for w in mine) == sum(int(n) for _w, n in held)
    with database.transaction(readonly=True) as session:  # where the time goes, once
        d, pid = aggregates.sql_for(session), programme.id
        span = kpis.period(start, last)
        parts = {
            "headline": lambda: kpis.headline(session, d, pid, span, 30),
            "series": lambda: kpis.series(session, d, pid, span, "month"),
            "points": lambda: kpis.points(session, pid, span),
            "rewards": lambda: kpis.rewards(session, pid, span),
            "vouchers": lambda: kpis.vouchers(session, pid, span),
            "tiers": lambda: kpis.tiers(session, pid, span),
        }
        log(", ".join(f"{name} {timed(part):.2f}s" for name, part in parts.items()))
    probes = []
    for _ in range(max(runs, 5)):
        t0 = time.perf_counter()
        assert not aggregates.fresh(database, programme=programme)
        probes.append(time.perf_counter() - t0)
    log(f"fresh() with nothing new: {stats(probes)}")
    h = answer.headline
    assert (h.member_orders, h.active_members, h.repeat_members) == (row[0], row[2], row[3])
    assert h.non_member_orders == row[4]
    label = (
        f"{members:,} members, {purchases:,} member purchases + {row[4]:,} anonymous, PostgreSQL"
    )
    base = baseline("the headline sales and buyer figures straight from the events",
                    stats(direct), unit="s", kind="reference")  # fmt: skip
    points_base = baseline("the points economy straight from the ledger entries (as before 0029)",
                           stats(ledger_direct), unit="s", kind="reference")  # fmt: skip
    with database.transaction(readonly=True) as session:
        span = kpis.period(start, last)
        points_runs = [timed(lambda: kpis.points(session, programme.id, span)) for _ in range(runs)]
    return [
        figure(
            f"all headline KPIs for 12 whole months, aggregates fresh, {label}",
            stats(dashboard),
            unit="s",
            base=base,
            higher_is_better=False,
            note="headline (with net of returns), series by month, points, rewards, vouchers, "
            "tiers",
        ),
        figure(
            f"aggregates.fresh when nothing arrived (the dashboard's check), {label}",
            stats([p * 1000 for p in probes]),
            unit="ms",
            higher_is_better=False,
        ),
        figure(
            f"points economy of 12 months from the daily ledger aggregate, {label}",
            stats(points_runs),
            unit="s",
            base=points_base,
            higher_is_better=False,
        ),
        figure(f"first build of the aggregates, {label}", build, unit="s", higher_is_better=False),
        figure(
            f"first build of the daily ledger aggregate alone, {label}",
            ledger_build,
            unit="s",
            higher_is_better=False,
        ),
        figure(
            f"incremental refresh after 1,000 new purchases and 1,000 ledger postings committed"
            f" late (posted 5 minutes before the watermark), {label}",
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
    parser.add_argument("--keep", default=None, help="PostgreSQL database to fill once and keep")
    args = parser.parse_args()
    quick = quick_mode(args.quick)
    members = args.members or (10_000 if quick else 100_000)
    if not postgres_available():
        emit(NAME, [], skipped=[{"figure": "KPIs", "reason": "PostgreSQL not available"}])
        return
    with tempfile.TemporaryDirectory() as tmp:
        figures = run(Path(tmp), members, 3 if quick else args.runs, args.keep)
    emit(NAME, figures, notes=["Generated set-based (generate_series), not through the intake."])


if __name__ == "__main__":
    main()
