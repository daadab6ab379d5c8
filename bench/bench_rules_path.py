"""The rules path in process: SQL statements and CPU per purchase under the demo programme.

What intake costs around the engine, without HTTP: batches of purchases (two lines each, one
per member, 16 members per batch) through :func:`fidelia.intake.service.ingest_payloads`, one
transaction per batch, on a database prepared like the HTTP benchmark's (the demo programme
live, members enrolled with a card). Every member makes a first purchase before the clock
starts, so the figures are for the usual purchase, not the first one. Each purchase is made on
the web with a line in a category new to the member, so it earns four awards, as the demo's
purchases often do: points, status points, 2 % cashback and the first-in-category bonus.

- *statements per purchase*: SQL statements the database runs per event, counted with an
  engine event: an ``executemany`` counts one statement per row (the server runs each), a
  multi-row INSERT counts one, SAVEPOINT and RELEASE count, BEGIN and COMMIT do not; the note
  gives how many of them touch the ledger (``ledger_*`` tables and the ``jobs`` outbox) and
  how many DBAPI calls they took (an executemany is one). The reference is the same batches
  without rules (a programme with no document applied).
- *CPU per purchase*: CPU time of this process (``time.process_time``) per event, commit
  included. On SQLite that includes the database engine; on PostgreSQL the server's CPU is not
  counted.
- the same for single events (batches of one, as ``POST /events`` sends them).

Each figure is the median (min-max) over ``--runs`` runs of ``--batches`` batches.

    python bench/bench_rules_path.py [--runs 5] [--batches 16] [--batch-size 16] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``bench`` and ``fidelia`` importable
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent / p) for p in ("", "src")]

from sqlalchemy import event, select

from bench.bench_intake_http import CARD, analyse, event_body, prepare_database
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
from fidelia.api.runtime import settle_heap
from fidelia.db import Database
from fidelia.intake import service as intake
from fidelia.models import Programme

NAME = "rules_path"
LEDGER_TABLES = ("ledger_", "jobs")


@dataclass
class Counter:
    """Statements (and DBAPI calls) seen by the engine since the last reset."""

    calls: int = 0  # statements run by the database
    ledger: int = 0
    dbapi: int = 0  # cursor.execute / executemany calls
    by_kind: dict[str, int] = field(default_factory=dict)

    def see(self, statement: str, count: int) -> None:
        head = statement.lstrip()[:16].upper()
        if head.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            return
        self.calls += count
        self.dbapi += 1
        if any(t in statement for t in LEDGER_TABLES):
            self.ledger += count
        kind = head.split(" ", 1)[0]
        self.by_kind[kind] = self.by_kind.get(kind, 0) + count

    def reset(self) -> None:
        self.calls, self.ledger, self.dbapi, self.by_kind = 0, 0, 0, {}


@contextmanager
def counting(database: Database) -> Iterator[Counter]:
    counter = Counter()

    def before(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        # an executemany runs the statement once per row on the server (psycopg pipelines
        # them, SQLite loops in C); a multi-row INSERT ("insertmanyvalues") is one statement
        style = getattr(getattr(context, "execute_style", None), "name", "")
        counter.see(statement, len(parameters) if many and style == "EXECUTEMANY" else 1)

    event.listen(database.engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        event.remove(database.engine, "before_cursor_execute", before)


@dataclass
class Run:
    statements: float  # per event
    ledger: float  # per event
    cpu_ms: float  # per event, this process
    server_ms: float | None = None  # per event, the PostgreSQL backends of this process
    dbapi: float = 0.0  # DBAPI calls per event


class Backends:
    """CPU time of the PostgreSQL server processes serving our connections (from /proc)."""

    def __init__(self, database: Database) -> None:
        self.pids: set[int] = set()

        def connected(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pids.add(int(cursor.fetchone()[0]))

        event.listen(database.engine, "connect", connected)

    def cpu_seconds(self) -> float | None:
        total, tick = 0.0, os.sysconf("SC_CLK_TCK")
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return None
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        return total


def purchase(n: int, members: int) -> dict[str, Any]:
    """The HTTP benchmark's purchase, made on the web, with its second line in a category the
    member never bought: four awards (points, status points, cashback, first in a category)."""
    body = event_body(f"b-{uuid.uuid4().hex}", CARD.format(n % members))
    body["channel"] = "web"
    body["properties"]["lines"][1]["category"] = f"category-{n // members}"
    return body


def batches(members: int, size: int, count: int, start: int) -> list[list[dict[str, Any]]]:
    """``count`` batches of ``size`` purchases, each batch for ``size`` different members."""
    out, n = [], start
    for _ in range(count):
        out.append([purchase(n + i, members) for i in range(size)])
        n += size
    return out


def ingest_all(database: Database, programme: Programme, work: list[list[dict[str, Any]]]) -> None:
    for payloads in work:
        with database.transaction() as session:
            outcomes = intake.ingest_payloads(session, programme=programme, payloads=payloads)
            bad = [o for o in outcomes if o.status != "accepted"]
            if bad:
                raise RuntimeError(f"rejected: {bad[0].error} {bad[0].detail}")


def measure(
    database: Database,
    programme: Programme,
    backends: Backends | None,
    members: int,
    size: int,
    count: int,
    start: int,
) -> Run:
    work = batches(members, size, count, start)
    events = size * count
    with counting(database) as counter:
        server = backends.cpu_seconds() if backends else None
        cpu = time.process_time()
        ingest_all(database, programme, work)
        cpu = time.process_time() - cpu
        after = backends.cpu_seconds() if backends else None
    server_ms = (after - server) * 1000 / events if server is not None and after else None
    return Run(
        counter.calls / events,
        counter.ledger / events,
        cpu * 1000 / events,
        server_ms,
        counter.dbapi / events,
    )


def the_programme(database: Database) -> Programme:
    with database.transaction(readonly=True) as session:
        found = session.scalar(select(Programme).where(Programme.slug == "bench"))
        assert found is not None
        return found


@dataclass
class Result:
    runs: dict[tuple[bool, int], list[Run]] = field(default_factory=dict)


def bench_backend(
    backend: str, tmp: Path, members: int, runs: int, count: int, size: int
) -> Result:
    result = Result()
    for rules in (True, False):
        with database_url(backend, tmp) as url:
            log(f"{backend}: preparing {members} members (rules={rules})")
            prepare_database(url, members, rules=rules)
            database = Database.from_url(url)
            backends = Backends(database) if backend == "postgresql" else None
            try:
                programme = the_programme(database)
                ingest_all(database, programme, batches(members, size, members // size, 0))
                analyse(url)  # PostgreSQL: statistics as in service (bench_intake_http.analyse)
                # as an API process runs (fidelia.api.runtime): the start-up heap frozen, so
                # that no full collection of it (80 ms each, every few hundred purchases)
                # lands in one run's figure and not in another's
                settle_heap()
                start = members
                for batch_size, batch_count in ((size, count), (1, count * size)):
                    found = result.runs.setdefault((rules, batch_size), [])
                    for _ in range(runs):
                        found.append(
                            measure(
                                database,
                                programme,
                                backends,
                                members,
                                batch_size,
                                batch_count,
                                start,
                            )
                        )
                        start += batch_size * batch_count
                    log(
                        f"{backend} rules={rules} batch={batch_size}: "
                        + ", ".join(
                            f"{r.statements:.1f}/{r.ledger:.1f}/{r.dbapi:.1f}" for r in found
                        )
                    )
            finally:
                database.dispose()
    return result


def figures(label: str, result: Result, size: int) -> list[Figure]:
    out = []
    for batch_size in (size, 1):
        with_rules = result.runs[(True, batch_size)]
        without = result.runs[(False, batch_size)]
        how = f"batches of {batch_size}" if batch_size > 1 else "single events"
        ledger = stats([r.ledger for r in with_rules])
        out.append(
            figure(
                f"statements per purchase with the demo programme's rules, {how}, {label}",
                stats([r.statements for r in with_rules]),
                unit="statements",
                higher_is_better=False,
                base=baseline(
                    "intake without rules",
                    stats([r.statements for r in without]),
                    unit="statements",
                    kind="reference",
                ),
                note=f"of which ledger and jobs: {ledger.median:.1f}; DBAPI calls: "
                f"{stats([r.dbapi for r in with_rules]).median:.1f}",
            )
        )
        out.append(
            figure(
                f"CPU per purchase with the demo programme's rules, {how}, {label}",
                stats([r.cpu_ms for r in with_rules]),
                unit="ms",
                higher_is_better=False,
                base=baseline(
                    "intake without rules",
                    stats([r.cpu_ms for r in without]),
                    unit="ms",
                    kind="reference",
                ),
                note=cpu_note(label, with_rules, without),
            )
        )
    return out


def cpu_note(label: str, with_rules: list[Run], without: list[Run]) -> str:
    note = "CPU of this process, commit included"
    if label == "SQLite":
        return note + " (SQLite runs inside it)"
    server = [r.server_ms for r in with_rules if r.server_ms is not None]
    alone = [r.server_ms for r in without if r.server_ms is not None]
    if not server or not alone:
        return note + "; the server's CPU is not counted"
    return note + (
        f"; the PostgreSQL backends used {stats(server).median:.2f} ms per event"
        f" ({stats(alone).median:.2f} ms without rules)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--members", type=int, default=256)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args(argv)
    if quick_mode(args.quick):
        args.runs, args.batches, args.members = 2, 4, 64
    out: list[Figure] = []
    skipped = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
            if args.backend not in (backend, "both"):
                continue
            if backend == "postgresql" and not postgres_available():
                skipped.append({"figure": f"{label} figures", "reason": "no PostgreSQL server"})
                continue
            result = bench_backend(
                backend, Path(tmp), args.members, args.runs, args.batches, args.batch_size
            )
            out += figures(label, result, args.batch_size)
    notes = [
        f"{args.runs} runs of {args.batches} batches of {args.batch_size} (single events: "
        f"{args.runs} runs of {args.batches * args.batch_size}); {args.members} members"
    ]
    emit(NAME, out, notes=notes, skipped=skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
