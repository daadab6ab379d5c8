"""Tier recomputation at a period end: 100,000 members reviewed by ``requalify`` (the function
the daily job and ``fidelia tiers requalify`` call), on SQLite and on PostgreSQL.

The programme has Bronze / Silver (300 €) / Gold (1,000 € or 100 status points) on the
calendar year, one level down at most. Every member is due for review on 1 January 2026 and
holds the tier 2024 gave them (or the one they were upgraded to in 2025) and a year of
purchases spread over 1 to 8 days, so some keep their tier and some go one level down. The
timed part is one transaction: read the members due, judge them, write the review dates, the
changed tiers, the engine states and the history rows, commit.

The floor, measured in the same run on the same data: one ``UPDATE member_tiers SET review_at``
over the same rows (touching each row once, nothing read, nothing decided).

Each run starts from the same snapshot (a copy of the SQLite file; a PostgreSQL database
created from a template), built once per backend outside the clock.

The catch-up case: the same members on a ``rolling_12_months`` window (reviewed on the first of
every month), every review date a year behind (1 February 2025, requalified on 1 January 2026:
twelve reviews each, as after a worker was down or an import of old history), with purchases
over 2024 and 2025 so that members go up and down from month to month. It reports the catch-up
against one review of the same members (the reference), and the cost per chunk of members at
the end of the run against the start (flat: nothing piles up as the run goes).

    python bench/bench_tiers.py [--members 100000] [--runs 3] [--quick] [--case both]
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Figure,
    baseline,
    create_pg_database,
    drop_pg_database,
    emit,
    figure,
    log,
    pg_admin_url,
    postgres_available,
    quick_mode,
    stats,
)

NAME = "tiers"
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
REVIEW = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)  # 1 January 2026 in Paris
TIERS = {
    "window": "calendar_year",
    "combine": "any",
    "downgrade": "one_level",
    "levels": [
        {"code": "bronze", "name": "Bronze"},
        {"code": "silver", "name": "Silver", "requires": {"spend": "300"}},
        {"code": "gold", "name": "Gold", "requires": {"spend": "1000", "status_points": 100}},
    ],
}
CATCH_UP_TIERS = {**TIERS, "window": "rolling_12_months"}
CATCH_UP_FROM = datetime(2025, 1, 31, 23, 0, tzinfo=UTC)  # 1 February 2025 in Paris
CATCH_UP_REVIEWS = 12  # the first of every month, February 2025 to January 2026


def build(url: str, members: int, *, catch_up: bool = False) -> uuid.UUID:
    """Schema, programme, tiers document and ``members`` members due for review."""
    from fidelia.db import Database
    from fidelia.migrations import upgrade
    from fidelia.programmes import documents
    from fidelia.programmes import service as programmes
    from fidelia.programmes.schemas import ProgrammeCreate

    database = Database.from_url(url)
    try:
        upgrade(database.engine)
        with database.transaction() as session:
            programme = programmes.create(
                session,
                data=ProgrammeCreate(slug="bench", name="Bench", currency="EUR",
                                     timezone="Europe/Paris", country="FR"),
            )  # fmt: skip
            tiers = CATCH_UP_TIERS if catch_up else TIERS
            documents.apply(session, programme=programme, raw={"tiers": tiers}, actor="bench")
            programme_id = programme.id
        _members(database, programme_id, members, catch_up=catch_up)
        return programme_id
    finally:
        database.dispose()


def _member_rows(
    programme_id: uuid.UUID, rng: random.Random, catch_up: bool = False
) -> dict[str, dict[str, Any]]:
    from fidelia.kit.ids import uuid7
    from fidelia.rules.state import MemberState

    member_id = uuid7()
    days: dict[str, list[Any]] = {}
    first, span = (date(2024, 2, 1), 700) if catch_up else (date(2025, 1, 1), 365)
    for _ in range(rng.randint(2, 16) if catch_up else rng.randint(1, 8)):
        day = first + timedelta(days=rng.randrange(span))
        spend = round(rng.uniform(10, 250), 2)
        days[day.isoformat()] = [1, str(spend), int(spend // 10)]
    life = [len(days), str(sum(float(v[1]) for v in days.values())),
            sum(v[2] for v in days.values())]  # fmt: skip
    spent, status = float(life[1]), int(life[2])
    earned = 2 if spent >= 1000 or status >= 100 else 1 if spent >= 300 else 0
    held = rng.choices([0, 1, 2], weights=[5, 3, 2])[0]  # what 2024 gave them
    tier = ["bronze", "silver", "gold"][max(held, earned)]  # upgrades happened during 2025
    enrolled = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(365))
    return {
        "members": {"id": member_id, "programme_id": programme_id, "status": "active",
                    "enrolment_channel": "import", "enrolled_at": enrolled, "attributes": {},
                    "created_at": enrolled, "updated_at": enrolled},
        "member_tiers": {"member_id": member_id, "programme_id": programme_id, "tier": tier,
                         "source": "metric", "since": enrolled,
                         "review_at": CATCH_UP_FROM if catch_up else REVIEW,
                         "manual_until": None, "grace_until": None,
                         "metrics": {"days": days, "life": life}, "updated_at": enrolled},
        "member_states": {"member_id": member_id, "programme_id": programme_id,
                          "state": MemberState(tier=tier).to_json(), "updated_at": enrolled},
    }  # fmt: skip


def _members(database: Any, programme_id: uuid.UUID, count: int, *, catch_up: bool) -> None:
    from fidelia.models import Base

    rng = random.Random(42)
    tables = {n: Base.metadata.tables[n] for n in ("members", "member_tiers", "member_states")}
    for start in range(0, count, 10_000):
        rows = [
            _member_rows(programme_id, rng, catch_up) for _ in range(min(10_000, count - start))
        ]
        with database.engine.begin() as conn:
            for name, table in tables.items():
                conn.execute(table.insert(), [r[name] for r in rows])
    if database.engine.dialect.name == "postgresql":
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")


def requalify_once(
    url: str,
    programme_id: uuid.UUID,
    *,
    at: datetime = REVIEW + timedelta(seconds=1),
    chunks: list[float] | None = None,
) -> tuple[float, dict[str, int]]:
    """Seconds of one requalification (commit included) and its counts; the seconds of each
    chunk of members appended to ``chunks``."""
    from fidelia.db import Database
    from fidelia.models import Programme
    from fidelia.tiers.requalify import Report, requalify

    marks: list[float] = []

    def chunk_done(_: Report) -> None:
        marks.append(time.perf_counter())

    database = Database.from_url(url)
    try:
        started = time.perf_counter()
        with database.transaction() as session:
            programme = session.get(Programme, programme_id)
            assert programme is not None
            marks.append(time.perf_counter())
            report = requalify(session, programme=programme, at=at, progress=chunk_done)
        seconds = time.perf_counter() - started
        if chunks is not None:
            chunks.extend(b - a for a, b in itertools.pairwise(marks))
    finally:
        database.dispose()
    counts = {"reviewed": report.reviewed, "up": report.upgraded, "down": report.downgraded}
    return seconds, counts


def floor_once(url: str, programme_id: uuid.UUID) -> float:
    """Seconds of one bare UPDATE of every member's review date."""
    from sqlalchemy import update

    from fidelia.db import Database
    from fidelia.models import MemberTier

    database = Database.from_url(url)
    try:
        started = time.perf_counter()
        with database.transaction() as session:
            session.execute(
                update(MemberTier)
                .where(MemberTier.programme_id == programme_id)
                .values(review_at=REVIEW + timedelta(days=366))
            )
        return time.perf_counter() - started
    finally:
        database.dispose()


class Snapshot:
    """The built database, and fresh copies of it for each run."""

    def __init__(self, backend: str, tmp: Path) -> None:
        self.backend, self.tmp, self.copies = backend, tmp, []
        self.url = (
            f"sqlite:///{tmp / 'template.db'}" if backend == "sqlite" else create_pg_database()
        )

    def copy(self) -> str:
        if self.backend == "sqlite":
            path = self.tmp / f"run-{uuid.uuid4().hex[:8]}.db"
            shutil.copy(self.tmp / "template.db", path)
            return f"sqlite:///{path}"
        from sqlalchemy import create_engine, make_url, text

        name = f"fidelia_bench_run_{uuid.uuid4().hex[:10]}"
        template = make_url(self.url).database
        admin = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        finally:
            admin.dispose()
        url = make_url(self.url).set(database=name).render_as_string(hide_password=False)
        self.copies.append(url)
        return url

    def drop(self) -> None:
        if self.backend == "postgresql":
            for url in [*self.copies, self.url]:
                drop_pg_database(url)


def measure(backend: str, members: int, runs: int) -> Figure:
    with tempfile.TemporaryDirectory() as tmp:
        snap = Snapshot(backend, Path(tmp))
        try:
            log(f"{backend}: building {members:,} members")
            programme_id = build(snap.url, members)
            times, floors, counts = [], [], {}
            for run in range(runs):
                seconds, counts = requalify_once(snap.copy(), programme_id)
                floors.append(floor_once(snap.copy(), programme_id))
                times.append(seconds)
                log(f"{backend} run {run + 1}: {seconds:.2f} s {counts}, floor {floors[-1]:.2f} s")
        finally:
            snap.drop()
    note = (f"{counts['reviewed']:,} reviewed: {counts['down']:,} down, {counts['up']:,} up; "
            "one transaction, commit included")  # fmt: skip
    return figure(
        f"tier requalification, {members:,} members, {LABELS[backend]}",
        stats(times),
        unit="s",
        higher_is_better=False,
        base=baseline("one UPDATE of every member's review date", stats(floors), unit="s",
                      kind="floor"),
        note=note,
    )  # fmt: skip


def measure_catch_up(backend: str, members: int, runs: int) -> list[Figure]:
    """Members a year of monthly reviews behind: the catch-up against one review, and the
    chunks of members at the end of the run against those at the start."""
    with tempfile.TemporaryDirectory() as tmp:
        snap = Snapshot(backend, Path(tmp))
        try:
            log(f"{backend}: building {members:,} members a year behind")
            programme_id = build(snap.url, members, catch_up=True)
            times, ones, firsts, lasts, counts = [], [], [], [], {}
            for run in range(runs):
                chunks: list[float] = []
                seconds, counts = requalify_once(snap.copy(), programme_id, chunks=chunks)
                one, _ = requalify_once(
                    snap.copy(), programme_id, at=CATCH_UP_FROM + timedelta(seconds=1)
                )
                quarter = max(1, len(chunks) // 4)
                firsts.append(sum(chunks[:quarter]) / quarter)
                lasts.append(sum(chunks[-quarter:]) / quarter)
                times.append(seconds)
                ones.append(one)
                log(f"{backend} catch-up run {run + 1}: {seconds:.2f} s {counts}, one review "
                    f"{one:.2f} s, chunks {' '.join(f'{c:.2f}' for c in chunks)}")  # fmt: skip
        finally:
            snap.drop()
    label = LABELS[backend]
    per_chunk = f"{len(chunks)} chunks of up to 5,000 members; the first and the last quarter"
    return [
        figure(
            f"tier catch-up, {CATCH_UP_REVIEWS} monthly reviews behind, {members:,} members, "
            f"{label}",
            stats(times),
            unit="s",
            higher_is_better=False,
            base=baseline("one review of the same members", stats(ones), unit="s",
                          kind="reference"),
            note=f"{counts['reviewed']:,} reviews: {counts['down']:,} down, {counts['up']:,} up; "
            "one transaction, commit included; a ratio under 12 is cheaper per review than one",
        ),
        figure(
            f"tier catch-up, seconds per chunk at the end of the run, {label}",
            stats(lasts),
            unit="s",
            higher_is_better=False,
            base=baseline("at the start of the run", stats(firsts), unit="s", kind="reference"),
            note=f"{per_chunk}; 1.0 is flat",
        ),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tier recomputation at a period end")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--case", choices=["year-end", "catch-up", "both"], default="both")
    args = parser.parse_args(argv)
    quick = quick_mode(args.quick)
    members = 20_000 if quick else args.members
    runs = 1 if quick else args.runs
    backends = ["sqlite"]
    skipped = []
    if postgres_available():
        backends.append("postgresql")
    else:
        skipped.append({"figure": "PostgreSQL", "reason": "PostgreSQL not reachable"})
    figures = []
    for backend in backends:
        if args.case in ("year-end", "both"):
            figures.append(measure(backend, members, runs))
        if args.case in ("catch-up", "both"):
            figures.extend(measure_catch_up(backend, members, runs))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    emit(NAME, figures, notes=[f"load average at the end: {load}"], skipped=skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
