"""Scenario journeys advanced per second by the engine's tick, on SQLite and PostgreSQL.

A programme with N members each in a journey due now. Two kinds of step are timed:

- **wait**: the journey is at a duration wait (the commonest due step: a wait ending and the
  next wait starting): claim, walk, step run, new due time;
- **message**: the journey's step sends an inbox message (rendered from a template with the
  member's name): the same plus ``messaging.service.queue_many`` for the batch.

Baselines in the same run: for waits, one plain ``UPDATE`` moving the same N rows' due time
(the floor of touching the rows; the ratio says what the engine costs on top); for messages,
``queue_many`` of the same N requests alone (messaging's own cost). On PostgreSQL the wait
figure is also taken with 2 workers claiming with ``SKIP LOCKED`` at once.

    python bench/bench_scenarios.py [--members 5000] [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    baseline,
    database_url,
    emit,
    figure,
    log,
    postgres_available,
    quick_mode,
    stats,
)

NAME = "scenarios"
TEMPLATE = {"code": "hello", "locales": {"fr": {"text": "Bonjour {{ member.first_name }} !"}}}
SCENARIO = {
    "code": "bench",
    "name": "Bench",
    "entry": {"kind": "event", "event": "bench_never"},
    "holdout_percent": 0,
    "steps": [
        {"id": "first", "kind": "wait", "duration": {"days": 1}},
        {"id": "second", "kind": "wait", "duration": {"days": 1}},
        {"id": "send", "kind": "action",
         "do": {"type": "message", "template": "hello", "channels": ["inbox"]}},
        {"id": "third", "kind": "wait", "duration": {"days": 1}},
    ],
}  # fmt: skip


def build(url: str, members: int) -> tuple[Any, uuid.UUID, list[uuid.UUID]]:
    from sqlalchemy import insert

    from fidelia.db import Database
    from fidelia.kit.clock import utcnow
    from fidelia.kit.ids import uuid7
    from fidelia.migrations import upgrade
    from fidelia.models import Member
    from fidelia.programmes import documents
    from fidelia.programmes import service as programmes
    from fidelia.programmes.schemas import ProgrammeCreate

    database = Database.from_url(url)
    upgrade(database.engine)
    doc = {
        "messaging": {"channels": {"inbox": {}}, "fallback": ["inbox"],
                      "public_url": "https://loyalty.example.org", "templates": [TEMPLATE]},
        "scenarios": {"definitions": [SCENARIO]},
    }  # fmt: skip
    now = utcnow()
    with database.transaction() as session:
        programme = programmes.create(
            session,
            data=ProgrammeCreate(slug="bench", name="Bench", currency="EUR",
                                 timezone="Europe/Paris", country="FR"),
        )  # fmt: skip
        documents.apply(session, programme=programme, raw=doc, actor="bench")
        ids = [uuid7() for _ in range(members)]
        rows = [
            {"id": i, "programme_id": programme.id, "status": "active", "enrolment_channel": "web",
             "enrolled_at": now, "first_name": f"Membre{n}", "locale": "fr", "attributes": {}}
            for n, i in enumerate(ids)
        ]  # fmt: skip
        session.execute(insert(Member), rows)
        programme_id = programme.id
    return database, programme_id, ids


def place(database: Any, programme_id: uuid.UUID, ids: list[uuid.UUID], step: str) -> None:
    """Every member's journey, due now at ``step`` (journeys of a previous run removed)."""
    from sqlalchemy import delete, text

    from fidelia.kit.bulk import insert_rows
    from fidelia.kit.clock import utcnow
    from fidelia.kit.ids import uuid7
    from fidelia.models import Base
    from fidelia.models.scenarios import ScenarioJourney

    now = utcnow() - timedelta(seconds=1)
    with database.transaction() as session:
        session.execute(delete(ScenarioJourney).where(ScenarioJourney.programme_id == programme_id))
        rows: list[dict[str, Any]] = [
            {"id": uuid7(), "programme_id": programme_id, "scenario": "bench", "member_id": m,
             "entry_key": f"bench:{m}", "version": 1, "holdout": False, "status": "active",
             "step": step, "due_at": now, "waiting": None, "visits": 0, "event": {},
             "entered_at": now, "converted_at": None, "ended_at": None, "end_reason": None}
            for m in ids
        ]  # fmt: skip
        insert_rows(session, Base.metadata.tables["scenario_journeys"], rows)
        if session.get_bind().dialect.name == "postgresql":
            # statistics of the filled table, as autovacuum takes them after such an insert:
            # without them the planner takes the just-filled table for empty
            session.execute(text("ANALYZE scenario_journeys"))


def advance_all(database: Any, programme_id: uuid.UUID, workers: int = 1) -> float:
    """Advance every due journey in batches of 1,000 (one transaction each); journeys/s."""
    from fidelia.kit.clock import utcnow
    from fidelia.models import Programme
    from fidelia.scenarios import engine, service

    total = [0]
    lock = threading.Lock()

    def work() -> None:
        while True:
            with database.transaction() as session:
                programme = session.get(Programme, programme_id)
                section = service.section_for(session, programme)
                done, _ = engine.advance(session, programme=programme, section=section,
                                         now=utcnow(), limit=1000)  # fmt: skip
            with lock:
                total[0] += done
            if done == 0:
                return

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return total[0] / (time.perf_counter() - started)


def plain_update(database: Any, programme_id: uuid.UUID, count: int) -> float:
    from sqlalchemy import update

    from fidelia.kit.clock import utcnow
    from fidelia.models.scenarios import ScenarioJourney

    started = time.perf_counter()
    with database.transaction() as session:
        session.execute(
            update(ScenarioJourney)
            .where(ScenarioJourney.programme_id == programme_id)
            .values(due_at=utcnow() + timedelta(days=1), visits=ScenarioJourney.visits + 1)
        )
    return count / (time.perf_counter() - started)


def queue_only(database: Any, programme_id: uuid.UUID, ids: list[uuid.UUID], run: int) -> float:
    from sqlalchemy import select

    from fidelia.kit.clock import utcnow
    from fidelia.messaging import service
    from fidelia.models import Member, Programme

    started = time.perf_counter()
    with database.transaction() as session:
        programme = session.get(Programme, programme_id)
        found = session.scalars(select(Member).where(Member.programme_id == programme_id)).all()
        for start in range(0, len(found), 1000):
            requests = [
                service.Request(member=m, template="hello", content=None, channels=["inbox"],
                                kind=None, content_key=None, event={}, expires_at=None,
                                idempotency_key=f"q{run}:{m.id}", source="bench")
                for m in found[start : start + 1000]
            ]  # fmt: skip
            service.queue_many(session, programme=programme, requests=requests, now=utcnow())
    return len(ids) / (time.perf_counter() - started)


def measure(
    backend: str, url: str, members: int, runs: int, waits_only: bool = False
) -> list[dict[str, Any]]:
    database, programme_id, ids = build(url, members)
    waits, floors, sends, queues, pairs = [], [], [], [], []
    try:
        for run in range(runs):
            place(database, programme_id, ids, "second")
            waits.append(advance_all(database, programme_id))
            floors.append(plain_update(database, programme_id, members))
            if not waits_only:
                place(database, programme_id, ids, "send")
                sends.append(advance_all(database, programme_id))
                queues.append(queue_only(database, programme_id, ids, run))
            if backend == "postgresql":
                place(database, programme_id, ids, "second")
                pairs.append(advance_all(database, programme_id, workers=2))
            log(f"{backend} run {run}: waits {waits[-1]:.0f}/s (update {floors[-1]:.0f}/s)"
                + (f", messages {sends[-1]:.0f}/s (queue_many {queues[-1]:.0f}/s)" if sends else "")
                + (f", 2 workers {pairs[-1]:.0f}/s" if pairs else ""))  # fmt: skip
    finally:
        database.dispose()
    label = "SQLite" if backend == "sqlite" else "PostgreSQL"
    floor = baseline("one UPDATE moving the same rows' due time", stats(floors), unit="journeys/s")
    queue = (
        baseline("queue_many of the same messages alone", stats(queues), unit="msg/s")
        if queues
        else None
    )
    out = [
        figure(f"due waits advanced, {label} ({members} journeys, 1 worker)", stats(waits),
               unit="journeys/s", base=floor, note="batches of 1,000, one transaction each"),
    ]  # fmt: skip
    if sends:
        out.append(figure(f"due message steps advanced, {label} ({members} journeys)",
                          stats(sends), unit="journeys/s", base=queue,
                          note="inbox message rendered and queued"))  # fmt: skip
    if pairs:
        one = baseline("the same with 1 worker", stats(waits), unit="journeys/s")
        name = f"due waits advanced, {label}, 2 workers (SKIP LOCKED)"
        note = "2 threads, 2 cores shared"
        out.append(figure(name, stats(pairs), unit="journeys/s", base=one, note=note))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--waits-only", action="store_true", help="skip the message steps")
    args = parser.parse_args()
    quick = quick_mode(args.quick)
    members, runs = (1000, 1) if quick else (args.members, args.runs)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    figures: list[dict[str, Any]] = []
    skipped = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            if backend == "postgresql" and not postgres_available():
                skipped.append({"figure": "PostgreSQL", "reason": "no server"})
                continue
            with database_url(backend, Path(tmp)) as url:
                figures += measure(backend, url, members, runs, args.waits_only)
    emit(NAME, figures, skipped=skipped)


if __name__ == "__main__":
    main()
