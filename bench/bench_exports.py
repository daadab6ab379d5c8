"""Exports in constant memory, and the cost of a rate-limit check.

1. *Members export* (PostgreSQL): ``--sizes`` generated members (default 100,000 and
   1,000,000; 20,000 and 100,000 with ``--quick``), each with an email identity, written by
   ``generate_series``; then ``fidelia.exports`` writes the members CSV to /dev/null in a child
   process of its own, which reports rows/s and its peak RSS (``ru_maxrss``). Ceiling: the
   same rows through PostgreSQL's ``COPY ... TO STDOUT`` (no identities, no Python formatting)
   in the same run. Flat peak RSS across sizes is the constant-memory claim.
2. *Rate-limit check* (PostgreSQL and memory stores): microseconds per ``Limiter.check``
   against a floor of one ``SELECT 1`` round trip on the same engine.

    python bench/bench_exports.py [--sizes 100000,1000000] [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
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
    quick_mode,
    stats,
)
from fidelia.auth import service as apikeys
from fidelia.auth.limits import DatabaseStore, Limiter, MemoryStore
from fidelia.auth.schemas import Scope
from fidelia.db import Database
from fidelia.migrations import upgrade
from fidelia.programmes import service as programmes
from fidelia.programmes.schemas import ProgrammeCreate

GENERATE = [
    """INSERT INTO members (id, programme_id, status, enrolment_channel, enrolled_at, attributes,
           first_name, last_name, postal_code, created_at, updated_at)
       SELECT gen_random_uuid(), :p, 'active', 'store', now() - (g % 700) * interval '1 day',
              jsonb_build_object('home_store', 'paris-rivoli'), 'First' || g, 'Last' || g,
              lpad((g % 99999)::text, 5, '0'), now(), now()
       FROM generate_series(1, :n) AS g""",
    """INSERT INTO member_identities (id, programme_id, member_id, kind, namespace, value,
           created_at)
       SELECT gen_random_uuid(), :p, m.id, 'email', '', 'm' || m.id || '@example.com', now()
       FROM members m WHERE m.programme_id = :p""",
    "ANALYZE members",
    "ANALYZE member_identities",
]


def child_export(url: str, programme_id: str) -> None:
    """In a process of its own: the members CSV to /dev/null; rows/s and peak RSS."""
    from fidelia.exports.service import export
    from fidelia.models import Programme

    database = Database.from_url(url)
    with database.transaction(readonly=True) as session:
        programme = session.get(Programme, uuid.UUID(programme_id))
        assert programme is not None
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        size = lines = 0
        with open("/dev/null", "wb") as sink:
            for chunk in export(session, programme=programme, table="members", fmt="csv"):
                sink.write(chunk)
                size += len(chunk)
                lines += chunk.count(b"\n")
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": lines - 1, "seconds": seconds, "bytes": size,
                      "rss_before_kib": rss_before, "peak_rss_kib": peak}))  # fmt: skip


def child_copy(url: str, programme_id: str) -> None:
    """The ceiling: COPY of the same member columns to /dev/null."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    rows = 0
    with psycopg.connect(plain) as conn, conn.cursor() as cur, open("/dev/null", "wb") as sink:
        query = (
            "COPY (SELECT * FROM members WHERE programme_id = %s ORDER BY id) TO STDOUT WITH CSV"
        )
        with cur.copy(query, (programme_id,)) as copy:
            for data in copy:
                sink.write(data)
                rows += bytes(data).count(b"\n")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_kib": peak}))


def _child(kind: str, url: str, programme_id: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, url, programme_id],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _programme(database: Database) -> str:
    with database.transaction() as session:
        slug = f"bench-{uuid.uuid4().hex[:8]}"
        return str(programmes.create(session, data=ProgrammeCreate(slug=slug, name="Bench")).id)


def exports_figures(tmp: Path, sizes: list[int], runs: int) -> list[Figure]:
    out: list[Figure] = []
    with database_url("postgresql", tmp) as url:
        database = Database.from_url(url)
        upgrade(database.engine)
        for n in sizes:
            programme_id = _programme(database)
            started = time.perf_counter()
            with database.transaction() as session:
                for statement in GENERATE:
                    session.execute(text(statement), {"p": uuid.UUID(programme_id), "n": n})
            log(f"{n:,} members generated in {time.perf_counter() - started:.1f} s")
            exports = [_child("export", url, programme_id) for _ in range(runs)]
            copies = [_child("copy", url, programme_id) for _ in range(runs)]
            assert all(e["rows"] == n for e in exports), exports
            rate = stats([e["rows"] / e["seconds"] for e in exports])
            ceiling = stats([c["rows"] / c["seconds"] for c in copies])
            peak = stats([e["peak_rss_kib"] / 1024 for e in exports])
            start_rss = stats([e["rss_before_kib"] / 1024 for e in exports])
            log(f"{n:,}: {rate.median:,.0f} rows/s, peak RSS {peak.median:.0f} MiB")
            out.append(
                figure(
                    f"members export, CSV, {n:,} members, PostgreSQL",
                    rate,
                    unit="rows/s",
                    base=baseline("COPY of the members table to STDOUT", ceiling, unit="rows/s"),
                    note=f"peak RSS {peak.median:.0f} MiB (min {peak.min:.0f}, max "
                    f"{peak.max:.0f}; {start_rss.median:.0f} MiB before the first page); "
                    f"{exports[0]['bytes'] / 1e6:.0f} MB written",
                )
            )
        database.dispose()
    return out


def limit_figures(tmp: Path, calls: int, runs: int) -> list[Figure]:
    out: list[Figure] = []
    with database_url("postgresql", tmp) as url:
        database = Database.from_url(url)
        upgrade(database.engine)
        programme_id = _programme(database)
        with database.transaction() as session:
            from fidelia.models import Programme

            programme = session.get(Programme, uuid.UUID(programme_id))
            assert programme is not None
            key, _ = apikeys.create(session, programme=programme, name="b", scope=Scope.read)
        settings = {"api": {"rate_limits": {"read": {"per_second": 1e6, "burst": 10**9}}}}

        def per_call(fn: object) -> list[float]:
            values = []
            for _ in range(runs):
                started = time.perf_counter()
                for _ in range(calls):
                    fn()  # type: ignore[operator]
                values.append((time.perf_counter() - started) / calls * 1e6)
            return values

        def select_one() -> None:
            with database.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        floor = stats(per_call(select_one))
        for label, limiter in (
            ("database store, PostgreSQL", Limiter(DatabaseStore(database.engine))),
            ("memory store", Limiter(MemoryStore())),
        ):
            cost = stats(
                per_call(
                    lambda lim=limiter: lim.check(
                        key_id=key.id, settings=settings, method="GET", path="/api/v1/x"
                    )
                )
            )
            out.append(
                figure(
                    f"rate-limit check per request, {label}",
                    cost,
                    unit="µs",
                    higher_is_better=False,
                    base=baseline("SELECT 1 round trip", floor, unit="µs", kind="floor"),
                    note=f"{calls:,} checks of one key per run",
                )
            )
        database.dispose()
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        {"export": child_export, "copy": child_copy}[sys.argv[2]](sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--limits-only", action="store_true", help="skip the exports")
    args = parser.parse_args()
    quick = quick_mode(args.quick)
    sizes = [
        int(s) for s in (args.sizes or ("20000,100000" if quick else "100000,1000000")).split(",")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        figures = [] if args.limits_only else exports_figures(Path(tmp), sizes, args.runs)
        figures += limit_figures(Path(tmp), 500 if quick else 2000, args.runs)
    emit("exports", figures, notes=["2 cores shared with other engineers' test runs (load ~10)"])


if __name__ == "__main__":
    main()
