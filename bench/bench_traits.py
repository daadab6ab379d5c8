"""Computed traits: their cost on the intake path, and the bulk rebuild, on SQLite and PostgreSQL.

*Incremental*: purchases through :func:`fidelia.intake.service.ingest_payloads` (the demo
programme live: 16 earning rules, tiers, badges, challenges, and its ``traits`` section), in
batches of 16 members and as single events, with the traits update on and off (off: the
intake's call to ``traits.service.apply_events`` replaced by a no-op in this process, the
reference "intake with rules and no traits"). Runs alternate on and off on the same database,
so the load of the machine hits both alike. Figures: wall time per purchase (the transaction,
commit included) and CPU per purchase (this process; on PostgreSQL the server's backends too).

*Rebuild*: ``traits.rebuild.rebuild`` over N generated members (``--members``; SQLite:
``--sqlite-members``) with 1-19 purchases each over the year before ``NOW`` (10 on average;
lines from the demo catalogue, one in ten discounted; store, web or app), written straight into
the event log outside the clock: on PostgreSQL by ``generate_series`` in the server (1 or 2
lines; the events' indexes dropped during the load and built again after it, then ``VACUUM
ANALYZE``), on SQLite by SQL in the database too (``random()``, 1 or 2 lines, the events'
indexes built after the load). Timed: one transaction
(delete the rows, per chunk the staged lines and the ``INSERT ... SELECT`` of the rows, RFM and
cells) and its commit. The reference: one ``GROUP BY member_id`` over
the same purchases (the least a recomputation has to read). The note extrapolates linearly to
1,000,000 members.

    python bench/bench_traits.py [--members 100000] [--sqlite-members N] [--chunk N] [--runs 3]
        [--quick] [--skip-incremental] [--skip-rebuild] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``bench`` and ``fidelia`` importable
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent / p) for p in ("", "src")]

from sqlalchemy import text

from bench.bench_intake_http import prepare_database
from bench.bench_rules_path import Backends, batches, ingest_all, the_programme
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
from fidelia.db import Database
from fidelia.models import Programme

NAME = "traits"
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


# -- incremental --------------------------------------------------------------------------------


def _switch(on: bool) -> None:
    """Traits on the intake path on or off, in this process."""
    from fidelia.traits import service

    if not hasattr(service, "_real_apply_events"):
        service._real_apply_events = service.apply_events  # type: ignore[attr-defined]
    service.apply_events = (  # type: ignore[assignment]
        service._real_apply_events if on else (lambda *a, **k: None)  # type: ignore[attr-defined]
    )


def _timed(
    database: Database, programme: Programme, backends: Backends | None, work: list[Any]
) -> tuple[float, float, float | None]:
    events = sum(len(b) for b in work)
    server = backends.cpu_seconds() if backends else None
    cpu, wall = time.process_time(), time.perf_counter()
    ingest_all(database, programme, work)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = backends.cpu_seconds() if backends else None
    server_ms = (after - server) * 1000 / events if server is not None and after else None
    return wall * 1000 / events, cpu * 1000 / events, server_ms


def incremental(backend: str, tmp: Path, members: int, runs: int, count: int) -> list[Figure]:
    out: list[Figure] = []
    with database_url(backend, tmp) as url:
        log(f"{backend}: preparing {members} members, demo programme")
        prepare_database(url, members, rules=True)
        database = Database.from_url(url)
        backends = Backends(database) if backend == "postgresql" else None
        try:
            programme = the_programme(database)
            _switch(True)
            ingest_all(database, programme, batches(members, 16, members // 16, 0))
            start = members
            for size, n in ((16, count), (1, count * 4)):
                got: dict[bool, list[tuple[float, float, float | None]]] = {True: [], False: []}
                for _ in range(runs):
                    for on in (False, True):
                        _switch(on)
                        got[on].append(
                            _timed(database, programme, backends, batches(members, size, n, start))
                        )
                        start += size * n
                _switch(True)
                how = "batches of 16" if size > 1 else "single events"
                for i, (what, unit) in enumerate((("wall time", "ms"), ("CPU", "ms"))):
                    off = stats([r[i] for r in got[False]])
                    on_ = stats([r[i] for r in got[True]])
                    out.append(figure(
                        f"{what} per purchase with traits, {how}, {LABELS[backend]}", on_,
                        unit=unit, higher_is_better=False,
                        base=baseline("the same intake without traits", off, unit=unit,
                                      kind="reference"),
                        note="this process" if what == "CPU" else "transaction and commit",
                    ))  # fmt: skip
                if backend == "postgresql" and all(r[2] for r in got[True] + got[False]):
                    off = stats([r[2] or 0.0 for r in got[False]])
                    on_ = stats([r[2] or 0.0 for r in got[True]])
                    out.append(figure(
                        f"server CPU per purchase with traits, {how}, PostgreSQL", on_,
                        unit="ms", higher_is_better=False,
                        base=baseline("the same intake without traits", off, unit="ms",
                                      kind="reference"),
                    ))  # fmt: skip
                log(f"{backend} {how}: " + ", ".join(f"{f['median']:.3f}" for f in out[-3:]))
        finally:
            database.dispose()
    return out


# -- rebuild ------------------------------------------------------------------------------------


def _catalogue() -> list[tuple[str, str, str, str]]:
    from fidelia.demo.catalogue import PRODUCTS

    return [(p.sku, p.category, p.brand, str(p.price)) for p in PRODUCTS]


GENERATE = [
    """CREATE TEMPORARY TABLE catalogue AS SELECT CAST(:skus AS text[]) AS skus,
           CAST(:cats AS text[]) AS cats, CAST(:brands AS text[]) AS brands,
           CAST(:prices AS text[]) AS prices, CAST(:stores AS text[]) AS stores""",
    """INSERT INTO members (id, programme_id, status, enrolment_channel, enrolled_at, attributes,
           created_at, updated_at)
       SELECT gen_random_uuid(), :p, 'active', 'import', :now - interval '400 days', '{}'::jsonb,
              :now - interval '400 days', :now - interval '400 days'
       FROM generate_series(1, :n) AS g""",
    # 1-19 purchases per member (10 on average) over the year before NOW, 1 or 2 lines of the
    # demo catalogue (one in ten discounted), store (half, in one of 4 stores), web or app.
    """INSERT INTO events (id, programme_id, idempotency_key, fingerprint, type, occurred_at,
           received_at, member_id, channel, store, reference, outcome, properties)
       SELECT gen_random_uuid(), :p, k, repeat('0', 64), 'purchase', at, at, member_id,
              channel, CASE WHEN channel = 'store' THEN c.stores[1 + (h >> 3) % 4] END, k,
              '{}'::jsonb,
              jsonb_build_object('order_id', k, 'total', '0', 'lines',
                CASE WHEN h % 2 = 0 THEN jsonb_build_array(line1)
                     ELSE jsonb_build_array(line1, line2) END)
       FROM catalogue AS c CROSS JOIN LATERAL (
         SELECT m.id AS member_id, 'o-' || m.id || '-' || e AS k, h,
                :now - (h % 31536000) * interval '1 second' AS at,
                (ARRAY['store', 'store', 'web', 'app'])[1 + (h >> 5) % 4] AS channel,
                jsonb_build_object('sku', c.skus[i], 'category', c.cats[i], 'brand', c.brands[i],
                  'quantity', 1, 'unit_price', c.prices[i],
                  'discount', CASE WHEN (h >> 13) % 10 = 0 THEN '1.00' ELSE '0' END) AS line1,
                jsonb_build_object('sku', c.skus[j], 'category', c.cats[j], 'brand', c.brands[j],
                  'quantity', 1, 'unit_price', c.prices[j]) AS line2
         FROM members AS m
           CROSS JOIN LATERAL generate_series(1, 1 + (hashtext(m.id::text) & 2147483647) % 19) AS e
           CROSS JOIN LATERAL (SELECT CAST(hashtext(m.id::text || '-' || e) AS bigint)
                                      & 2147483647 AS h) AS hh
           CROSS JOIN LATERAL (SELECT 1 + (h >> 7) % :np AS i, 1 + (h >> 17) % :np AS j) AS ij
         WHERE m.programme_id = :p
       ) AS src""",
    "DROP TABLE catalogue",
]


def _bench_programme(database: Database) -> uuid.UUID:
    """The migrated database's "bench" programme with the demo programme's traits section."""
    from fidelia.migrations import upgrade
    from fidelia.programmes import documents
    from fidelia.programmes import service as programmes
    from fidelia.programmes.schemas import ProgrammeCreate
    from fidelia.rules.demo import programme_document

    upgrade(database.engine)
    with database.transaction() as session:
        programme = programmes.create(
            session, data=ProgrammeCreate(slug="bench", name="Bench", currency="EUR")
        )
        documents.apply(
            session,
            programme=programme,
            raw={"traits": programme_document()["traits"]},
            actor="bench",
        )
        return programme.id


def fill_pg(url: str, members: int) -> uuid.UUID:
    """The demo programme's traits section and ``members`` members with their purchases,
    written by ``generate_series`` in the server; the events' indexes are dropped during the
    load and built again after it (faster than maintaining them row by row), then ANALYZE."""
    database = Database.from_url(url)
    products = _catalogue()
    try:
        pid = _bench_programme(database)
        clock = time.perf_counter()
        params = {
            "p": pid, "now": NOW, "n": members, "np": len(products),
            "skus": [p[0] for p in products], "cats": [p[1] for p in products],
            "brands": [p[2] for p in products], "prices": [p[3] for p in products],
            "stores": ["paris-rivoli", "lyon-part-dieu", "lille-grand-place", "nantes-commerce"],
        }  # fmt: skip
        with database.transaction() as session:
            indexes = session.execute(text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events' "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
            )).all()  # fmt: skip
            for name, _ in indexes:
                session.execute(text(f'DROP INDEX "{name}"'))
            for statement in GENERATE:
                session.execute(text(statement), params)
            for _, definition in indexes:
                session.execute(text(definition))
            events = session.scalar(text("SELECT count(*) FROM events"))
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE members")
            c.exec_driver_sql("VACUUM ANALYZE events")
        log(f"generated {members} members, {events} purchases in "
            f"{time.perf_counter() - clock:.0f} s")  # fmt: skip
        return pid
    finally:
        database.dispose()


# SQLite, in the database (1,000,000 members in minutes, not hours of Python): the same shape as
# GENERATE (1-19 purchases of 1 or 2 demo lines, one first line in ten discounted, store half
# the time) from random() drawn once per purchase; ids are random 32-hex UUIDs.
GENERATE_SQLITE = [
    "DROP TABLE IF EXISTS temp.gen_m",
    "DROP TABLE IF EXISTS temp.gen_cat",
    "CREATE TEMPORARY TABLE gen_cat (i INTEGER PRIMARY KEY, sku, cat, brand, price)",
    """CREATE TEMPORARY TABLE gen_m AS
       WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n)
       SELECT lower(hex(randomblob(16))) AS id, 1 + abs(random()) % 19 AS k FROM g""",
    """INSERT INTO members (id, programme_id, status, enrolment_channel, enrolled_at, attributes,
           created_at, updated_at)
       SELECT id, :p, 'active', 'import', :enrolled, '{}', :enrolled, :enrolled FROM gen_m""",
    """INSERT INTO events (id, programme_id, idempotency_key, fingerprint, type, occurred_at,
           received_at, member_id, channel, store, reference, outcome, properties)
       WITH RECURSIVE s(e) AS (SELECT 1 UNION ALL SELECT e + 1 FROM s WHERE e < 19),
       src AS MATERIALIZED (
         SELECT m.id AS member_id, 'o-' || m.id || '-' || s.e AS k, abs(random()) AS h
         FROM gen_m AS m JOIN s ON s.e <= m.k),
       x AS MATERIALIZED (
         SELECT member_id, k, h,
           strftime('%Y-%m-%d %H:%M:%S.000000', :epoch - h % 31536000, 'unixepoch') AS at,
           (CASE (h >> 5) % 4 WHEN 2 THEN 'web' WHEN 3 THEN 'app' ELSE 'store' END) AS channel,
           1 + (h >> 7) % :np AS i, 1 + (h >> 17) % :np AS j
         FROM src)
       SELECT lower(hex(randomblob(16))), :p, x.k, :zeros, 'purchase', x.at, x.at, x.member_id,
         x.channel,
         CASE WHEN x.channel = 'store' THEN (CASE (x.h >> 3) % 4 WHEN 0 THEN 'paris-rivoli'
           WHEN 1 THEN 'lyon-part-dieu' WHEN 2 THEN 'lille-grand-place'
           ELSE 'nantes-commerce' END) END,
         x.k, '{}',
         json_object('order_id', x.k, 'total', '0', 'lines', CASE WHEN x.h % 2 = 0
           THEN json_array(json_object('sku', a.sku, 'category', a.cat, 'brand', a.brand,
             'quantity', 1, 'unit_price', a.price,
             'discount', CASE WHEN (x.h >> 13) % 10 = 0 THEN '1.00' ELSE '0' END))
           ELSE json_array(json_object('sku', a.sku, 'category', a.cat, 'brand', a.brand,
             'quantity', 1, 'unit_price', a.price,
             'discount', CASE WHEN (x.h >> 13) % 10 = 0 THEN '1.00' ELSE '0' END),
             json_object('sku', b.sku, 'category', b.cat, 'brand', b.brand,
             'quantity', 1, 'unit_price', b.price)) END)
       FROM x JOIN gen_cat AS a ON a.i = x.i JOIN gen_cat AS b ON b.i = x.j""",
    "DROP TABLE temp.gen_m",
    "DROP TABLE temp.gen_cat",
]


def fill_sqlite(url: str, members: int) -> uuid.UUID:
    """The demo programme's traits section and ``members`` members with their purchases,
    written by SQL in SQLite (GENERATE_SQLITE); the events' indexes dropped during the load and
    built again after it, then ANALYZE."""
    database = Database.from_url(url)
    products = _catalogue()
    try:
        pid = _bench_programme(database)
        clock = time.perf_counter()
        enrolled = (NOW - timedelta(days=400)).strftime("%Y-%m-%d %H:%M:%S.000000")
        params = {"p": pid.hex, "n": members, "np": len(products), "enrolled": enrolled,
                  "epoch": int(NOW.timestamp()), "zeros": "0" * 64}  # fmt: skip
        with database.transaction() as session:
            conn = session.connection()
            # a page cache of 1 GB: the default 2 MB made the index builds of 10 M rows write
            # the same pages to the WAL again and again (70 GB written for a 4 GB WAL)
            conn.exec_driver_sql("PRAGMA cache_size = -1000000")
            indexes = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'events' AND sql IS NOT NULL"
            ).all()
            for name, _ in indexes:
                conn.exec_driver_sql(f'DROP INDEX "{name}"')
            for statement in GENERATE_SQLITE:
                if statement.startswith("INSERT INTO members"):
                    conn.exec_driver_sql(
                        "INSERT INTO gen_cat (i, sku, cat, brand, price) VALUES (?, ?, ?, ?, ?)",
                        [(i + 1, *p) for i, p in enumerate(products)],
                    )
                conn.execute(text(statement), params)
            for _, definition in indexes:
                conn.exec_driver_sql(definition)
            events = conn.exec_driver_sql("SELECT count(*) FROM events").scalar()
        with database.engine.connect() as c:
            c.exec_driver_sql("ANALYZE")
        log(f"generated {members} members, {events} purchases in "
            f"{time.perf_counter() - clock:.0f} s")  # fmt: skip
        return pid
    finally:
        database.dispose()


@contextmanager
def kept_or_fresh(backend: str, tmp: Path, keep: str | None) -> Iterator[str]:
    """The database named by ``keep`` (a PostgreSQL database name or an SQLite file path),
    created if absent and kept afterwards, or a fresh one dropped afterwards."""
    if keep is None:
        with database_url(backend, tmp) as url:
            yield url
        return
    if backend == "sqlite":
        yield f"sqlite:///{Path(keep).resolve()}"
        return
    from sqlalchemy import create_engine, make_url

    admin = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": keep}):
                conn.execute(text(f'CREATE DATABASE "{keep}"'))
    finally:
        admin.dispose()
    yield make_url(pg_admin_url()).set(database=keep).render_as_string(hide_password=False)


def filled(url: str, backend: str, members: int) -> uuid.UUID:
    """The bench programme of a kept database holding ``members`` members, or a new fill."""
    from sqlalchemy import create_engine

    from fidelia.migrations import upgrade

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            has = conn.scalar(text(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'programmes'"
                if backend == "postgresql" else
                "SELECT count(*) FROM sqlite_master WHERE name = 'programmes'"
            ))  # fmt: skip
            found = conn.execute(text(
                "SELECT p.id, (SELECT count(*) FROM members AS m WHERE m.programme_id = p.id) "
                "FROM programmes AS p WHERE slug = 'bench'"
            )).first() if has else None  # fmt: skip
    finally:
        engine.dispose()
    if found is not None and found[1] == members:
        database = Database.from_url(url)
        try:
            upgrade(database.engine)  # the kept database follows later migrations
        finally:
            database.dispose()
        log(f"reusing the kept database: {members} members")
        return uuid.UUID(str(found[0]))
    if found is not None:
        raise SystemExit(f"the kept database holds {found[1]} members, not {members}")
    return fill_pg(url, members) if backend == "postgresql" else fill_sqlite(url, members)


def rebuild_figure(
    backend: str,
    tmp: Path,
    members: int,
    runs: int,
    chunk: int | None = None,
    keep: str | None = None,
    workers: int | None = None,
) -> Figure:
    from fidelia.traits.rebuild import CHUNK, WORKERS, rebuild

    with kept_or_fresh(backend, tmp, keep) as url:
        pid = filled(url, backend, members)
        database = Database.from_url(url)
        try:
            seconds, reference = [], []
            for _ in range(runs):
                clock = time.perf_counter()
                with database.transaction() as session:
                    found = session.get(Programme, pid)
                    assert found is not None
                    rebuild(session, programme=found, now=NOW, chunk=chunk or CHUNK,
                            workers=workers or WORKERS)  # fmt: skip
                seconds.append(time.perf_counter() - clock)
                clock = time.perf_counter()
                with database.transaction(readonly=True) as session:
                    session.execute(text(
                        "SELECT member_id, COUNT(*) FROM events WHERE type = 'purchase' "
                        "GROUP BY member_id"
                    )).all()  # fmt: skip
                reference.append(time.perf_counter() - clock)
                log(
                    f"{backend} rebuild of {members}: {seconds[-1]:.1f} s (ref {reference[-1]:.2f})"
                )
        finally:
            database.dispose()
    s = stats(seconds)
    return figure(
        f"traits rebuild of {members:,} members (~10 purchases each), {LABELS[backend]}", s,
        unit="s", higher_is_better=False,
        base=baseline("one GROUP BY member_id over the purchases", stats(reference), unit="s",
                      kind="reference"),
        note=f"{workers or WORKERS} connection(s) on PostgreSQL; "
        f"{members / s.median:,.0f} members/s; 1,000,000 members: about "
        f"{1_000_000 / members * s.median:,.0f} s by linear extrapolation",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--sqlite-members", type=int, default=None, help="default: --members")
    parser.add_argument("--chunk", type=int, default=None, help="members per SQL pass")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-incremental", action="store_true")
    parser.add_argument("--skip-rebuild", action="store_true")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--keep-pg", default=None, help="PostgreSQL database name to fill once and keep for re-runs"
    )
    parser.add_argument(
        "--keep-sqlite", default=None, help="SQLite file to fill once and keep for re-runs"
    )
    parser.add_argument("--workers", type=int, default=None, help="PostgreSQL connections")
    parser.add_argument("--fill-only", action="store_true", help="fill the kept database, stop")
    args = parser.parse_args(argv)
    quick = quick_mode(args.quick)
    members, runs = (2000, 1) if quick else (args.members, args.runs)
    figures: list[Figure] = []
    skipped = []
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends and not postgres_available():
        backends.remove("postgresql")
        skipped.append({"figure": "PostgreSQL", "reason": "no PostgreSQL server"})
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            if not args.skip_incremental:
                figures += incremental(backend, Path(tmp), 320, runs, 2 if quick else 8)
            if not args.skip_rebuild:
                size = members
                if backend == "sqlite" and args.sqlite_members and not quick:
                    size = args.sqlite_members
                keep = args.keep_pg if backend == "postgresql" else args.keep_sqlite
                if args.fill_only:
                    with kept_or_fresh(backend, Path(tmp), keep) as url:
                        filled(url, backend, size)
                    continue
                figures.append(
                    rebuild_figure(backend, Path(tmp), size, runs, args.chunk, keep, args.workers)
                )
    notes = ["2 cores shared with other work: see the load average in docs/benchmarks.md"]
    emit(NAME, figures, skipped=skipped, notes=notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
