"""Live segments: their cost on the intake path, and whole-population evaluation.

1. *Intake with 20 live segments* (SQLite and PostgreSQL): the rules-path benchmark's purchases
   (``bench_rules_path``: batches of 16 members, and single events) under the demo programme
   with 20 segments that purchases move (windows, categories, wallets, tier, RFM traits), as a
   ratio to the same programme without a ``segments`` section. CPU of this process plus, on
   PostgreSQL, the CPU of its server backends, per purchase; and statements per purchase.
2. *Population* (PostgreSQL): ``--population`` generated members (default 200,000; 20,000 with
   ``--quick``) with about 10 purchases each over a year, written by ``generate_series``; then
   the summaries rebuilt from those events, the first sweep of the 20 segments (every
   membership written; history and notices are not, a first evaluation), a second sweep (nothing
   changes: the daily cost) and the preview of a new condition (count and a sample of 10),
   each as a ratio to a bare ``SELECT count(*)`` over members JOIN events measured in the
   same run (after ``VACUUM ANALYZE``, as autovacuum would leave the tables).

With ``--keep-pg NAME`` the population is the one ``bench_traits.py --keep-pg NAME`` generated
and kept (1-19 purchases of 1 or 2 demo lines each; run its traits rebuild first: the segments
on traits read ``member_traits``), at that bench's ``NOW``; ``--skip-summaries`` keeps the
summaries a previous run rebuilt there; ``--fast-summaries`` rebuilds them with the foreign-key
triggers off (``session_replication_role = replica``) and their indexes dropped during the
insert and built after it (set-up of a large population, its time is then no figure of the
intake's or of a migration's).

    python bench/bench_segments.py [--runs 3] [--population 200000] [--quick]
        [--keep-pg NAME [--skip-summaries | --fast-summaries]] [--preview-only]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``bench`` and ``fidelia`` importable
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent / p) for p in ("", "src")]

from sqlalchemy import text

from bench.bench_intake_http import prepare_database
from bench.bench_rules_path import Backends, Run, batches, ingest_all, measure, the_programme
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
from fidelia.api.runtime import settle_heap
from fidelia.db import Database
from fidelia.kit.conditions import parse_condition
from fidelia.models import Programme
from fidelia.programmes import documents
from fidelia.rules.demo import programme_document
from fidelia.segments import live, service, summaries

NAME = "segments"
EXTRA = [
    ("two-in-30", {"field": "events.purchase.count_30d", "op": "gte", "value": 2}),
    ("one-in-7", {"field": "events.purchase.count_7d", "op": "gte", "value": 1}),
    ("no-purchase-90", {"field": "events.purchase.days_since_last", "op": "gte", "value": 90}),
    ("home-buyers", {"field": "categories.home.count_90d", "op": "gte", "value": 1}),
    ("tech-buyers", {"field": "categories.tech.count", "op": "gte", "value": 1}),
    ("points-500", {"field": "wallets.points", "op": "gte", "value": 500}),
    ("silver-plus", {"field": "tier", "op": "in", "value": ["silver", "gold"]}),
    ("big-spenders", {"field": "traits.monetary_365d", "op": "gte", "value": 1000}),
]
PREVIEW = {
    "all": [
        {"field": "events.purchase.count_90d", "op": "gte", "value": 3},
        {"field": "categories.books.count_180d", "op": "gte", "value": 1},
    ]
}


def document(segments: bool) -> dict[str, Any]:
    doc = copy.deepcopy(programme_document())
    if not segments:
        doc.pop("segments", None)
        return doc
    section = doc["segments"]
    section["categories"] = sorted({*section["categories"], "apparel"})
    for code, condition in EXTRA:
        section["definitions"].append(
            {"code": code, "labels": {"en": code}, "condition": condition}
        )
    assert len(section["definitions"]) == 20
    return doc


def prepare(url: str, members: int, segments: bool) -> None:
    prepare_database(url, members, rules=True)
    database = Database.from_url(url)
    try:
        with database.transaction() as session:
            programme = the_programme(database)
            documents.apply(session, programme=programme, raw=document(segments), actor="bench")
    finally:
        database.dispose()


def intake(backend: str, tmp: Path, members: int, runs: int, count: int) -> dict[Any, list[Run]]:
    found: dict[Any, list[Run]] = {}
    keep = summaries.add_events
    try:
        _intake_both(backend, tmp, members, runs, count, found, keep)
    finally:
        summaries.add_events = keep
    return found


def _no_summaries(*args: Any, **kwargs: Any) -> None:
    return None


def _intake_both(backend: str, tmp: Path, members: int, runs: int, count: int,
                 found: dict[Any, list[Run]], keep: Any) -> None:  # fmt: skip
    """Both programmes prepared side by side, then their runs alternated (without, with,
    without, ...), so that the machine's drift falls on both alike: run one after the other,
    the two series differed by a few tenths between runs of the same code."""
    with database_url(backend, tmp) as plain_url, database_url(backend, tmp) as segmented_url:
        opened: dict[bool, tuple[Database, Programme, Backends | None]] = {}
        try:
            for segments, url in ((False, plain_url), (True, segmented_url)):
                prepare(url, members, segments)
                database = Database.from_url(url)
                backends = Backends(database) if backend == "postgresql" else None
                programme = the_programme(database)
                opened[segments] = (database, programme, backends)
                # the reference is the intake as it was before segments: no segments section
                # and no summaries kept (the intake keeps them for every programme)
                summaries.add_events = keep if segments else _no_summaries
                ingest_all(database, programme, batches(members, 16, members // 16, 0))
                _analyse(database)
            settle_heap()  # the API process's collector settings (see bench_rules_path)
            start = members
            for size, n in ((16, count), (1, count * 16)):
                for _ in range(runs):
                    for segments in (False, True):
                        database, programme, backends = opened[segments]
                        summaries.add_events = keep if segments else _no_summaries
                        found.setdefault((segments, size), []).append(
                            measure(database, programme, backends, members, size, n, start)
                        )
                    start += size * n
                for segments in (False, True):
                    log(f"{backend} segments={segments} batch={size}: {found[(segments, size)]}")
        finally:
            for database, _, _ in opened.values():
                database.dispose()


def _analyse(database: Database) -> None:
    """PostgreSQL's statistics as autovacuum leaves them in service: the tables were empty a
    moment ago, and a planner that believes the programme has a handful of events scans them
    all to find a group's event ids (bench_intake_http.analyse)."""
    if database.engine.dialect.name == "postgresql":
        with database.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


def cost(run: Run) -> float:
    return run.cpu_ms + (run.server_ms or 0.0)


def intake_figures(label: str, found: dict[Any, list[Run]]) -> list[Figure]:
    out = []
    for size in (16, 1):
        how = "batches of 16" if size > 1 else "single events"
        with_, without = found[(True, size)], found[(False, size)]
        out.append(
            figure(
                f"CPU per purchase with 20 live segments, {how}, {label}",
                stats([cost(r) for r in with_]),
                unit="ms",
                higher_is_better=False,
                base=baseline(
                    "the same intake without segments",
                    stats([cost(r) for r in without]),
                    unit="ms",
                    kind="reference",
                ),
                note=f"process CPU{' + PostgreSQL backends' if label == 'PostgreSQL' else ''}; "
                f"statements per purchase {stats([r.statements for r in with_]).median:.1f} vs "
                f"{stats([r.statements for r in without]).median:.1f}",
            )
        )
    return out


GENERATE = [
    """INSERT INTO members (id, programme_id, status, enrolment_channel, enrolled_at, attributes,
           first_name, created_at, updated_at)
       SELECT gen_random_uuid(), :p, 'active', 'store', :now - (g % 700) * interval '1 day',
              jsonb_build_object('home_store', CASE WHEN g % 5 = 0 THEN 'lyon-part-dieu'
                                                    ELSE 'paris-rivoli' END),
              'M' || g, :now, :now
       FROM generate_series(1, :n) AS g""",
    """INSERT INTO events (id, programme_id, idempotency_key, fingerprint, type, occurred_at,
           received_at, member_id, channel, properties, outcome)
       SELECT gen_random_uuid(), :p, 'k-' || m.id || '-' || e, 'x', 'purchase',
              :now - ((hashtext(m.id::text || e) & 1023) % 365) * interval '1 day',
              :now, m.id, 'store',
              jsonb_build_object('lines', jsonb_build_array(jsonb_build_object(
                  'sku', 's', 'category', (ARRAY['music', 'books', 'home', 'beauty', 'grocery',
                  'outdoor', 'kids', 'tech'])[1 + (hashtext(m.id::text || e || 'c') & 7)]))),
              '{}'::jsonb
       FROM members m CROSS JOIN generate_series(1, 1 + (hashtext(m.id::text) & 15)) AS e
       WHERE m.programme_id = :p""",
]
REFERENCE = """SELECT count(*) FROM members m JOIN events e ON e.member_id = m.id
               WHERE m.programme_id = :p"""


def reference(database: Database, programme_id: Any) -> float:
    """Seconds of a bare count over the members' events: what any whole-population pass
    costs on this machine at this moment (the ratio's base)."""
    started = time.perf_counter()
    with database.transaction(readonly=True) as session:
        session.scalar(text(REFERENCE), {"p": programme_id})
    return time.perf_counter() - started


def generate(url: str, n: int) -> tuple[Programme, datetime, int, int]:
    """A new population of ``n`` members (the demo programme, 20 segments)."""
    prepare(url, 0, True)
    database = Database.from_url(url)
    try:
        programme = the_programme(database)
        now = datetime.now(UTC)
        started = time.perf_counter()
        with database.transaction() as session:
            for statement in GENERATE:
                session.execute(text(statement), {"p": programme.id, "now": now, "n": n})
            events = int(session.scalar(text("SELECT count(*) FROM events")) or 0)
        with database.engine.connect() as conn:  # as autovacuum would: stats, visibility
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM ANALYZE members, events"))
        log(f"generated {n} members, {events} events in {time.perf_counter() - started:.0f}s")
        return programme, now, n, events
    finally:
        database.dispose()


def reuse(url: str) -> tuple[Programme, datetime, int, int]:
    """The population kept by ``bench_traits.py --keep-pg`` (its ``bench`` programme, its
    ``NOW``), given the 20 segments; the memberships of earlier runs are deleted, so the first
    sweep is a first evaluation again. Its traits are those of the last traits rebuild."""
    from bench.bench_traits import NOW
    from fidelia.migrations import upgrade

    database = Database.from_url(url)
    try:
        upgrade(database.engine)  # the kept database follows later migrations
        programme = the_programme(database)
        with database.transaction() as session:
            documents.apply(session, programme=programme, raw=document(True), actor="bench")
            for table in ("segment_changes", "segment_members", "segment_baselines"):
                session.execute(text(f"DELETE FROM {table} WHERE programme_id = :p"),
                                {"p": programme.id})  # fmt: skip
            members, events, traits = session.execute(text(
                "SELECT (SELECT count(*) FROM members WHERE programme_id = :p), "
                "(SELECT count(*) FROM events WHERE programme_id = :p), "
                "(SELECT count(*) FROM member_traits WHERE programme_id = :p)"
            ), {"p": programme.id}).one()  # fmt: skip
        log(f"reusing the kept population: {members} members, {events} events, "
            f"{traits} with traits")  # fmt: skip
        return the_programme(database), NOW, int(members), int(events)
    finally:
        database.dispose()


def _drop_indexes(session: Any) -> list[str]:
    """Bench set-up of a large population: the summaries' indexes (and primary key) dropped
    before the rebuild's insert, their definitions returned for :func:`_build_indexes` (one
    sorted build each instead of 24 M insertions into two B-trees)."""
    session.execute(text("SET LOCAL work_mem = '512MB'"))
    session.execute(text("SET LOCAL maintenance_work_mem = '2GB'"))
    found = session.execute(text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'event_summaries'::regclass AND contype = 'p'"
    )).all()  # fmt: skip
    plain = session.execute(text(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'event_summaries' "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
    )).all()  # fmt: skip
    out = [f'ALTER TABLE event_summaries ADD CONSTRAINT "{n}" {d}' for n, d in found]
    out += [d for _, d in plain]
    for name, _ in plain:
        session.execute(text(f'DROP INDEX "{name}"'))
    for name, _ in found:
        session.execute(text(f'ALTER TABLE event_summaries DROP CONSTRAINT "{name}"'))
    return out


def _build_indexes(session: Any, definitions: list[str]) -> None:
    for definition in definitions:
        session.execute(text(definition))


@contextmanager
def kept(name: str) -> Iterator[str]:
    from sqlalchemy import make_url

    yield make_url(pg_admin_url()).set(database=name).render_as_string(hide_password=False)


def population(
    tmp: Path,
    n: int,
    runs: int,
    keep: str | None = None,
    summarise: bool = True,
    fast: bool = False,
    preview_only: bool = False,
) -> list[Figure]:
    out: list[Figure] = []
    with kept(keep) if keep else database_url("postgresql", tmp) as url:
        programme, now, n, events = reuse(url) if keep else generate(url, n)
        database = Database.from_url(url)
        try:
            refs = [reference(database, programme.id)]
            rebuilt = None
            if summarise:
                with database.transaction() as session:  # events written around the intake
                    if fast:  # bench set-up only: no foreign-key triggers (superuser)
                        session.execute(text("SET LOCAL session_replication_role = replica"))
                        indexes = _drop_indexes(session)
                    rebuilt = summaries.rebuild(session, programme_id=programme.id)
                    if fast:
                        _build_indexes(session, indexes)
                log(f"summaries rebuilt: {rebuilt}")
                with database.engine.connect() as conn:  # as autovacuum would after the insert:
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")  # all-visible,
                    conn.execute(text("VACUUM ANALYZE event_summaries"))  # index-only scans
            first = None
            seconds: list[float] = []
            if not preview_only:
                with database.transaction() as session:
                    first = live.sweep(session, programme=programme, now=now)
                log(f"first sweep: {first}")
                for _ in range(runs):
                    with database.transaction() as session:
                        again = live.sweep(session, programme=programme, now=now)
                    seconds.append(again.seconds)
                    refs.append(reference(database, programme.id))
                    log(f"daily sweep {again.seconds:.1f}s, reference {refs[-1]:.1f}s")
            label = f"{n:,} members, {events:,} events, PostgreSQL"
            cond = parse_condition(PREVIEW)
            times, count = [], 0
            for _ in range(runs):  # the preview and the reference alternated
                with database.transaction(readonly=True) as session:
                    found = service.preview(
                        session, programme=programme, condition=cond, sample=10, now=now
                    )
                times.append(found.seconds)
                count = found.count
                refs.append(reference(database, programme.id))
                log(f"preview {found.seconds:.2f}s: {count}, reference {refs[-1]:.2f}s")
            base = baseline("SELECT count(*) over members JOIN events (same run)", stats(refs),
                            unit="s", kind="reference")  # fmt: skip
            if first is not None:
                out.append(figure(f"first sweep of 20 segments (memberships, baselines), {label}",
                                  first.seconds, unit="s", higher_is_better=False, base=base,
                                  note=f"{first.entered:,} entries written"))  # fmt: skip
            if rebuilt is not None:
                out.append(figure(f"summaries rebuilt from the events, {label}", rebuilt.seconds,
                                  unit="s", higher_is_better=False, base=base,
                                  note=f"{rebuilt.rows:,} rows"))  # fmt: skip
            if seconds:
                daily = f"daily sweep of 20 segments (nothing changes), {label}"
                out.append(figure(daily, stats(seconds), unit="s", higher_is_better=False,
                                  base=base))  # fmt: skip
            note = f"3 purchases in 90 days and books in 180 days: {count:,} members"
            out.append(figure(f"preview of a new condition (count), {label}", stats(times),
                              unit="s", higher_is_better=False, note=note, base=base))  # fmt: skip
        finally:
            database.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--members", type=int, default=256)
    parser.add_argument("--population", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["intake", "population", "both"], default="both")
    parser.add_argument(
        "--keep-pg",
        default=None,
        help="population: reuse this PostgreSQL database kept by bench_traits.py --keep-pg",
    )
    parser.add_argument(
        "--skip-summaries",
        action="store_true",
        help="with --keep-pg: keep the summaries as they are",
    )
    parser.add_argument(
        "--fast-summaries",
        action="store_true",
        help="rebuild the summaries without foreign-key checks (set-up of a large population)",
    )
    parser.add_argument(
        "--preview-only",
        action="store_true",
        help="population: no sweeps, only the preview (alternated with the reference)",
    )
    args = parser.parse_args(argv)
    if quick_mode(args.quick):
        args.runs, args.batches, args.members, args.population = 2, 4, 64, 20_000
    out: list[Figure] = []
    skipped = []
    pg = postgres_available()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in ("intake", "both"):
            for backend, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
                if backend == "postgresql" and not pg:
                    skipped.append({"figure": f"{label} intake", "reason": "no PostgreSQL"})
                    continue
                found = intake(backend, Path(tmp), args.members, args.runs, args.batches)
                out += intake_figures(label, found)
        if args.only in ("population", "both"):
            if pg:
                out += population(
                    Path(tmp), args.population, args.runs, args.keep_pg,
                    not args.skip_summaries, args.fast_summaries, args.preview_only,
                )  # fmt: skip
            else:
                skipped.append({"figure": "population", "reason": "no PostgreSQL server"})
    notes = [
        f"intake: {args.runs} runs of {args.batches} batches of 16 (single events: "
        f"{args.batches * 16} per run), {args.members} members; the 20 segments are the demo's "
        "12 and 8 more on purchase windows, categories, points, tier and spend"
    ]
    emit(NAME, out, notes=notes, skipped=skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
