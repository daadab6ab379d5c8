"""Member merges: how long a merge and its unmerge take for a duplicate with many events and
lots, next to one ledger transfer of the same balance; and the duplicate suggestions of a
programme of many members.

    python bench/bench_merges.py [--events 2000] [--lots 200] [--runs 5] [--members 100000]

SQLite (a temporary file) and PostgreSQL (``FIDELIA_BENCH_DATABASE_URL``). Each run merges a
fresh pair in one transaction, then unmerges it in another. Prints a JSON dict.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

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
from fidelia.db import Database
from fidelia.kit.bulk import insert_rows
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.ledger import operations as ops
from fidelia.ledger import wallets
from fidelia.members import service as members
from fidelia.members.schemas import MemberCreate
from fidelia.merges import duplicates
from fidelia.merges import service as merges
from fidelia.migrations import upgrade
from fidelia.models import Base, Programme
from fidelia.programmes import service as programmes
from fidelia.programmes.schemas import ProgrammeCreate

EVENTS = Base.metadata.tables["events"]


def _programme(db: Database) -> Programme:
    with db.transaction() as s:
        p = programmes.create(s, data=ProgrammeCreate(slug=f"b-{uuid.uuid4().hex[:8]}", name="b"))
        wallets.ensure_default_wallets(s, programme=p)
    return p


def _person(db: Database, p: Programme, n_events: int, n_lots: int) -> uuid.UUID:
    now = utcnow()
    with db.transaction() as s:
        member = members.insert_member(
            s, programme=p, data=MemberCreate(email=f"{uuid.uuid4().hex[:12]}@x.io")
        )
        rows: list[dict[str, Any]] = [
            {
                "id": uuid7(),
                "programme_id": p.id,
                "idempotency_key": f"e-{uuid.uuid4().hex}",
                "fingerprint": "0" * 64,
                "type": "store_visit",
                "occurred_at": now - timedelta(minutes=i),
                "received_at": now,
                "member_id": member.id,
                "channel": None,
                "store": None,
                "reference": None,
                "properties": {},
                "outcome": {},
            }
            for i in range(n_events)
        ]
        insert_rows(s, EVENTS, rows)
        awards = [
            ops.AwardRequest(
                member_id=member.id,
                wallet="points",
                amount=10,
                idempotency_key=f"a-{uuid.uuid4().hex}",
                expires_at=now + timedelta(days=30 + i),
            )
            for i in range(n_lots)
        ]
        ops.award_many(s, programme=p, awards=awards, now=now)
    return member.id


def _merge_runs(db: Database, n_events: int, n_lots: int, runs: int) -> dict[str, Any]:
    p = _programme(db)
    merge_s, unmerge_s, transfer_s = [], [], []
    for _ in range(runs):
        survivor, duplicate = _person(db, p, 10, 5), _person(db, p, n_events, n_lots)
        started = time.perf_counter()
        with db.transaction() as s:
            record = merges.merge(
                s, programme=p, survivor_id=survivor, duplicate_id=duplicate, actor="bench"
            )
        merge_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        with db.transaction() as s:
            merges.unmerge(s, programme=p, survivor_id=survivor, merge_id=record.id, actor="bench")
        unmerge_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        with db.transaction() as s:
            ops.transfer(
                s,
                programme=p,
                from_member_id=duplicate,
                to_member_id=survivor,
                wallet="points",
                amount=10 * n_lots,
                idempotency_key=f"t-{uuid.uuid4().hex}",
            )
        transfer_s.append(time.perf_counter() - started)
    return {"merge": merge_s, "unmerge": unmerge_s, "transfer": transfer_s}


def _suggestion_run(db: Database, n_members: int) -> float:
    p = _programme(db)
    # Member i copies the profile of member i - 1 when i % 100 == 1: 1 % of them are pairs.
    k = [i - 1 if i % 100 == 1 else i for i in range(n_members)]
    born = [date(1950, 1, 1) + timedelta(days=j % 20000) for j in k]
    now = utcnow()
    with db.transaction() as s:
        rows = [
            {
                "id": uuid7(),
                "programme_id": p.id,
                "status": "active",
                "enrolment_channel": "store",
                "enrolment_store": None,
                "enrolled_at": now,
                "first_name": f"F{k[i] % 500}",
                "last_name": f"L{k[i] % 997}",
                "birth_date": born[i],
                "locale": None,
                "postal_code": f"{k[i] % 90:05d}",
                "attributes": {"email": f"p{i}@x.io"} if i % 50 == 0 else {},
                "created_at": now,
                "updated_at": now,
            }
            for i in range(n_members)
        ]
        for start in range(0, len(rows), 5000):
            insert_rows(s, Base.metadata.tables["members"], rows[start : start + 5000])
    started = time.perf_counter()
    with db.transaction(readonly=True) as s:
        found = duplicates.find_pairs(s, programme=p)
    elapsed = time.perf_counter() - started
    log(f"{len(found)} pairs among {n_members} members in {elapsed:.2f} s")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    quick = quick_mode()
    parser.add_argument("--events", type=int, default=200 if quick else 2000)
    parser.add_argument("--lots", type=int, default=20 if quick else 200)
    parser.add_argument("--runs", type=int, default=2 if quick else 5)
    parser.add_argument("--members", type=int, default=10_000 if quick else 100_000)
    args = parser.parse_args()
    backends = ["sqlite"] + (["postgresql"] if postgres_available() else [])
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            with database_url(backend, Path(tmp)) as url:
                db = Database.from_url(url)
                upgrade(db.engine)
                log(f"{backend}: merges of {args.events} events, {args.lots} lots")
                times = _merge_runs(db, args.events, args.lots, args.runs)
                base = baseline(
                    f"one transfer of the same {args.lots} lots", stats(times["transfer"]), unit="s"
                )
                size = f"{args.events} events, {args.lots} lots"
                for step in ("merge", "unmerge"):
                    figures.append(
                        figure(
                            f"{step} of a duplicate with {size}, {backend}",
                            stats(times[step]),
                            unit="s",
                            base={**base, "kind": "reference"},
                            higher_is_better=False,
                        )
                    )
                log(f"{backend}: suggestions among {args.members} members")
                figures.append(
                    figure(
                        f"duplicate suggestions among {args.members} members, {backend}",
                        _suggestion_run(db, args.members),
                        unit="s",
                        higher_is_better=False,
                        note="one run; 1 % of members are pairs, 1 in 50 has an email attribute",
                    )
                )
                db.dispose()
    emit("merges", figures, notes=["the machine is shared with other engineers' work"])


if __name__ == "__main__":
    main()
