"""Bulk import of the CDNOW purchase log (69,659 purchases of 23,570 customers) through
``run_import`` (the path ``fidelia events import`` takes), on SQLite and on PostgreSQL.

The ceiling, measured in the same run on the same backend: inserting the same number of rows,
with the same columns (JSON properties and outcome included), into a bare table (primary key
only) with SQLAlchemy Core ``executemany``, 1,000 rows per transaction like the importer's
chunks. The rows are built before the clock starts, so the ceiling is the database's raw
insert rate through SQLAlchemy, nothing else.

Every run gets a fresh database (a file in a temporary directory; a database created from
``FIDELIA_BENCH_DATABASE_URL`` and dropped afterwards). Median of ``--runs`` runs (default 3).

The large-database case (PostgreSQL, where the import refreshes the planner's statistics): a
database that already holds ``--history`` events (1,000,000: copies of the CDNOW rows under new
ids and customers, with their members and identities, written with Core and analysed as
autovacuum would), into which a new programme imports the first 5,000 lines of CDNOW; one
programme per run, the same database. The reference is the same import into an empty database.

    python bench/bench_import.py [--runs 3] [--quick] [--profile FILE] [--history 1000000]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
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

NAME = "import"
CDNOW = Path(os.environ.get("FIDELIA_BENCH_CDNOW", ROOT.parent / "shared/data/cdnow_master.txt"))
CHUNK = 1000
TIMEZONE = "America/New_York"


def new_programme(url: str, slug: str = "cdnow") -> uuid.UUID:
    """A fresh schema (built by the migrations) with one programme in dollars."""
    from fidelia.db import Database
    from fidelia.migrations import upgrade
    from fidelia.programmes import service as programmes
    from fidelia.programmes.schemas import ProgrammeCreate

    database = Database.from_url(url)
    try:
        upgrade(database.engine)
        with database.transaction() as session:
            programme = programmes.create(
                session,
                data=ProgrammeCreate(
                    slug=slug, name="CDNOW", currency="USD", timezone=TIMEZONE, country="US"
                ),
            )
            return programme.id
    finally:
        database.dispose()


def import_once(
    url: str, path: Path, tmp: Path, profile: Path | None = None, slug: str = "cdnow"
) -> tuple[float, int]:
    """Seconds and accepted events of one import into a new programme (of a fresh database)."""
    from fidelia.db import Database
    from fidelia.intake.imports import run_import

    programme_id = new_programme(url, slug)
    database = Database.from_url(url, background_checkpoints=True)  # as `fidelia events import`
    database.start_checkpointer()
    profiler = cProfile.Profile() if profile else None
    try:
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        report = run_import(
            database,
            programme_id=programme_id,
            path=path,
            kind="events",
            fmt="cdnow",
            enrol_unknown="active",
            rejects_path=tmp / f"rejects-{uuid.uuid4().hex[:8]}.csv",
        )
        seconds = time.perf_counter() - started
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(str(profile))
    finally:
        database.dispose()
    if report.rejected:
        raise RuntimeError(f"{report.rejected} lines rejected: {report.rejects[:3]}")
    return seconds, report.accepted


def raw_rows(path: Path) -> list[dict[str, Any]]:
    """The rows the importer writes to ``events``, built once, outside the clock."""
    from fidelia.intake.imports import Vouched, read_cdnow
    from fidelia.kit.ids import uuid7

    programme_id = uuid7()
    received = time_now()
    members: dict[str, uuid.UUID] = {}
    rows: list[dict[str, Any]] = []
    for _number, read in read_cdnow(path, TIMEZONE):
        if isinstance(read, str):
            continue
        event = read.event if isinstance(read, Vouched) else read
        record = event if isinstance(event, dict) else event.model_dump(mode="json")
        customer = record["member"]["external"]["value"]
        member_id = members.setdefault(customer, uuid7())
        event_id = uuid7()
        body = json.dumps(record, sort_keys=True)
        rows.append(
            {
                "id": event_id,
                "programme_id": programme_id,
                "idempotency_key": record["id"],
                "fingerprint": hashlib.sha256(body.encode()).hexdigest(),
                "type": record["type"],
                "occurred_at": parse_time(record["occurred_at"]),
                "received_at": received,
                "member_id": member_id,
                "channel": record["channel"],
                "store": None,
                "reference": record["properties"]["order_id"],
                "properties": record["properties"],
                "outcome": {
                    "id": record["id"],
                    "status": "accepted",
                    "event_id": str(event_id),
                    "member_id": str(member_id),
                    "member_created": False,
                    "error": None,
                    "detail": None,
                    "fields": [],
                    "effects": [],
                },
            }
        )
    return rows


def time_now() -> Any:
    from fidelia.kit.clock import utcnow

    return utcnow()


def parse_time(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)


def raw_once(url: str, rows: list[dict[str, Any]]) -> float:
    """Seconds to insert ``rows`` into a bare table, one transaction per 1,000 rows."""
    from sqlalchemy import Column, MetaData, String, Table, insert
    from sqlalchemy.types import Uuid

    from fidelia.db import make_engine
    from fidelia.models.base import JSONType, UTCDateTime

    metadata = MetaData()
    table = Table(
        "bench_raw_events",
        metadata,
        Column("id", Uuid(), primary_key=True),
        Column("programme_id", Uuid(), nullable=False),
        Column("idempotency_key", String(200), nullable=False),
        Column("fingerprint", String(64), nullable=False),
        Column("type", String(64), nullable=False),
        Column("occurred_at", UTCDateTime(), nullable=False),
        Column("received_at", UTCDateTime(), nullable=False),
        Column("member_id", Uuid(), nullable=False),
        Column("channel", String(16)),
        Column("store", String(64)),
        Column("reference", String(100)),
        Column("properties", JSONType, nullable=False),
        Column("outcome", JSONType, nullable=False),
    )
    engine = make_engine(url)
    try:
        metadata.create_all(engine)
        statement = insert(table)
        started = time.perf_counter()
        for start in range(0, len(rows), CHUNK):
            with engine.begin() as conn:
                conn.execute(statement, rows[start : start + CHUNK])
        return time.perf_counter() - started
    finally:
        engine.dispose()


def limited_copy(path: Path, lines: int, tmp: Path) -> Path:
    target = tmp / f"cdnow-first-{lines}.txt"
    with path.open(encoding="ascii") as source, target.open("w", encoding="ascii") as out:
        for n, line in enumerate(source):
            if n >= lines:
                break
            out.write(line)
    return target


def measure_backend(
    backend: str, path: Path, rows: list[dict[str, Any]], runs: int, tmp: Path
) -> tuple[list[float], list[float]]:
    """Events/s of ``runs`` imports and rows/s of ``runs`` raw inserts, interleaved."""
    imports: list[float] = []
    raws: list[float] = []
    for run in range(1, runs + 1):
        with database_url(backend, tmp) as url:
            seconds = raw_once(url, rows)
        raws.append(len(rows) / seconds)
        log(f"{backend} raw insert {run}/{runs}: {len(rows)} rows in {seconds:.1f} s")
        with database_url(backend, tmp) as url:
            seconds, accepted = import_once(url, path, tmp)
        imports.append(accepted / seconds)
        log(f"{backend} import {run}/{runs}: {accepted} events in {seconds:.1f} s")
    return imports, raws


def build_history(url: str, rows: list[dict[str, Any]], events: int) -> int:
    """A programme with ``events`` past events: copies of ``rows`` under new ids, keys, orders
    and customers, with their members and identities, written with Core; then ANALYZE, as
    autovacuum would have done. Returns the number of events written."""
    from sqlalchemy import create_engine, insert

    from fidelia.db import normalise_url
    from fidelia.kit.ids import uuid7
    from fidelia.models import Event, Member, MemberIdentity

    programme_id = new_programme(url, "history")
    engine = create_engine(normalise_url(url))
    written, copy = 0, 0
    try:
        while written < events:
            members: dict[uuid.UUID, uuid.UUID] = {}
            batch: dict[str, list[dict[str, Any]]] = {"m": [], "i": [], "e": []}
            for row in rows[: events - written]:
                member_id = members.get(row["member_id"])
                if member_id is None:
                    member_id = members[row["member_id"]] = uuid7()
                    at = row["occurred_at"]
                    batch["m"].append({"id": member_id, "programme_id": programme_id,
                                       "status": "active", "enrolment_channel": "import",
                                       "enrolled_at": at, "attributes": {}, "created_at": at,
                                       "updated_at": at})  # fmt: skip
                    batch["i"].append({"id": uuid7(), "programme_id": programme_id,
                                       "member_id": member_id, "kind": "external",
                                       "namespace": "cdnow", "value": f"{copy}-{len(members)}",
                                       "created_at": at})  # fmt: skip
                batch["e"].append({**row, "id": uuid7(), "programme_id": programme_id,
                                   "idempotency_key": f"{copy}-{row['idempotency_key']}",
                                   "reference": f"{copy}-{row['reference']}",
                                   "member_id": member_id})  # fmt: skip
            for key, model in (("m", Member), ("i", MemberIdentity), ("e", Event)):
                for start in range(0, len(batch[key]), 10_000):
                    with engine.begin() as conn:
                        conn.execute(insert(model), batch[key][start : start + 10_000])
            written += len(batch["e"])
            copy += 1
            log(f"history: {written:,} events")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    return written


def measure_large(
    path: Path, rows: list[dict[str, Any]], history: int, runs: int, tmp: Path
) -> Figure:
    """Seconds to import ``path`` into a new programme of a database of ``history`` events,
    against the same import into an empty database."""
    large, empty = [], []
    accepted = 0
    with database_url("postgresql", tmp) as url:
        written = build_history(url, rows, history)
        for run in range(1, runs + 1):
            seconds, accepted = import_once(url, path, tmp, slug=f"run-{run}")
            large.append(seconds)
            with database_url("postgresql", tmp) as fresh:
                empty.append(import_once(fresh, path, tmp)[0])
            log(f"postgresql import {run}/{runs} next to {written:,} events: {accepted} events "
                f"in {seconds:.2f} s; into an empty database {empty[-1]:.2f} s")  # fmt: skip
    return figure(
        f"import of {accepted:,} events next to {written:,}, PostgreSQL",
        stats(large),
        unit="s",
        higher_is_better=False,
        base=baseline("the same import into an empty database", stats(empty), unit="s",
                      kind="reference"),
        note="a new programme's CDNOW lines, chunks of 1000, in a database of another "
        "programme's events, members and identities",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=None, help="runs per backend (default 3)")
    parser.add_argument("--quick", action="store_true", help="1 run of the first 10,000 lines")
    parser.add_argument("--lines", type=int, default=None, help="import only the first N lines")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--history",
        type=int,
        default=None,
        help="events already in the database of the "
        "large-database case (default 1,000,000; 0: skip it)",
    )
    parser.add_argument("--only-large", action="store_true", help="only the large-database case")
    parser.add_argument(
        "--profile", type=Path, help="profile one SQLite import with cProfile into FILE, and stop"
    )
    args = parser.parse_args(argv)
    from fidelia.api.runtime import collect_less, settle_heap

    collect_less()  # as `fidelia events import` runs (the CLI's callback): see fidelia.api.runtime
    quick = quick_mode(args.quick)
    runs = args.runs or (1 if quick else 3)
    lines = args.lines or (10_000 if quick else None)
    if not CDNOW.exists():
        emit(NAME, [], skipped=[{"figure": "CDNOW import", "reason": f"{CDNOW} not found"}])
        return 0
    figures: list[Figure] = []
    skipped: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="fidelia-bench-import-") as tmp_name:
        tmp = Path(tmp_name)
        path = limited_copy(CDNOW, lines, tmp) if lines else CDNOW
        if args.profile:
            with database_url("sqlite", tmp) as url:
                seconds, accepted = import_once(url, path, tmp, profile=args.profile)
            log(f"profiled: {accepted} events in {seconds:.1f} s -> {args.profile}")
            return 0
        rows = raw_rows(path)
        # the reference's rows (some 70,000 dicts of uuids: a million objects a CLI import never
        # holds) out of the collector's sight: every full collection of the imports scanned them
        # (8.6 s of collections in one 35 s import, 3 full ones)
        settle_heap()
        backends = ["sqlite"]
        if args.no_postgres or not postgres_available():
            skipped.append({"figure": "CDNOW import, PostgreSQL", "reason": "PostgreSQL off"})
        else:
            backends.append("postgresql")
        labels = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
        for backend in [] if args.only_large else backends:
            imports, raws = measure_backend(backend, path, rows, runs, tmp)
            raw = stats(raws)
            figures.append(
                figure(
                    f"CDNOW import ({len(rows):,} purchases), {labels[backend]}",
                    stats(imports),
                    unit="events/s",
                    base=baseline("bare-table executemany", raw, unit="rows/s"),
                    note=f"run_import, chunks of {CHUNK}, enrols "
                    f"{len({r['member_id'] for r in rows}):,} members; the aim is 1/3 of the "
                    "ceiling",
                )
            )
        history = args.history if args.history is not None else 100_000 if quick else 1_000_000
        if history and "postgresql" in backends:
            small = limited_copy(CDNOW, 5_000, tmp)
            figures.append(measure_large(small, raw_rows(CDNOW), history, runs, tmp))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    emit(NAME, figures, notes=[f"load average at the end: {load}"], skipped=skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
