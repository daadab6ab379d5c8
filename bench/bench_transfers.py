"""Transfers per second: a member gives 150 points (spread over two of their three lots of 100)
to another member, one transaction per transfer, through ``fidelia.transfers.service.give``
(what ``POST /members/{id}/transfers`` and the portal call) under a policy with every limit
set (so the monthly sums are read each time), on SQLite and on PostgreSQL.

The baseline, measured in the same run on the same backend with the same members' twins: the
ledger's own ``operations.transfer`` of the same amount between the same kind of members, one
transaction each (no policy, no transfer row, no audit entry). The ratio is what the product
layer costs over the bare ledger move. Members and their points are set up before the clock
starts; every run uses fresh members. Median of ``--runs`` runs (default 3).

    python bench/bench_transfers.py [--runs 3] [--count 200] [--quick]
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Figure,
    baseline,
    database_url,
    figure,
    log,
    run_on_both,
    stats,
)

NAME = "transfers"
POLICY = {
    "enabled": True,
    "min_amount": 10,
    "max_per_transfer": 1000,
    "max_sent_per_month": 100_000,
    "max_received_per_month": 100_000,
    "max_transfers_per_month": 100,
}


def setup(url: str, pairs: int) -> tuple[Any, Any, list[tuple[uuid.UUID, uuid.UUID]]]:
    """A migrated database, a programme whose document enables transfers, and ``pairs``
    (giver, receiver) members, each giver holding three lots of 100 points."""
    from fidelia.db import Database
    from fidelia.ledger import operations, wallets
    from fidelia.members import service as member_service
    from fidelia.members.schemas import MemberCreate
    from fidelia.migrations import upgrade
    from fidelia.models import Programme
    from fidelia.programmes import documents
    from fidelia.programmes import service as programmes
    from fidelia.programmes.schemas import ProgrammeCreate

    database = Database.from_url(url)
    upgrade(database.engine)
    with database.transaction() as session:
        programme = programmes.create(
            session, data=ProgrammeCreate(slug=f"b-{uuid.uuid4().hex[:8]}", name="Bench")
        )
        wallets.ensure_default_wallets(session, programme=programme)
        documents.apply(session, programme=programme, raw={"transfers": POLICY}, actor="bench")
        programme_id = programme.id
    found: list[tuple[uuid.UUID, uuid.UUID]] = []
    with database.transaction() as session:
        live = session.get(Programme, programme_id)
        assert live is not None
        for i in range(pairs):
            ids = []
            for side in ("g", "r"):
                data = MemberCreate(email=f"{side}{i}-{uuid.uuid4().hex[:6]}@bench.example")
                ids.append(member_service.insert_member(session, programme=live, data=data).id)
            for lot in range(3):
                operations.award(
                    session, programme=live, member_id=ids[0], wallet="points", amount=100,
                    idempotency_key=f"seed:{ids[0]}:{lot}",
                )  # fmt: skip
            found.append((ids[0], ids[1]))
    with database.transaction(readonly=True) as session:
        live = session.get(Programme, programme_id)
        assert live is not None
        session.expunge(live)
    return database, live, found


def give_all(database: Any, programme: Any, pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> float:
    from fidelia.events.schemas import MemberRef
    from fidelia.transfers import service

    started = time.perf_counter()
    for giver, receiver in pairs:
        with database.transaction() as session:
            service.give(
                session, programme=programme, sender_id=giver, to=MemberRef(id=receiver),
                wallet="points", amount=150, reference=f"b-{giver}", channel="api",
                actor="bench",
            )  # fmt: skip
    return time.perf_counter() - started


def ledger_all(database: Any, programme: Any, pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> float:
    from fidelia.ledger import operations

    started = time.perf_counter()
    for giver, receiver in pairs:
        with database.transaction() as session:
            operations.transfer(
                session, programme=programme, from_member_id=giver, to_member_id=receiver,
                wallet="points", amount=150, idempotency_key=f"l-{giver}",
            )  # fmt: skip
    return time.perf_counter() - started


def measure(backend: str, tmp: Path, runs: int, count: int) -> list[Figure]:
    with database_url(backend, tmp) as url:
        database, programme, pairs = setup(url, 2 * count * runs)
        try:
            rates, bases = [], []
            for run in range(runs):
                mine = pairs[2 * run * count : (2 * run + 1) * count]
                twins = pairs[(2 * run + 1) * count : (2 * run + 2) * count]
                rates.append(count / give_all(database, programme, mine))
                bases.append(count / ledger_all(database, programme, twins))
                log(f"{backend} run {run + 1}: {rates[-1]:.0f}/s, ledger {bases[-1]:.0f}/s")
        finally:
            database.dispose()
    base = baseline(
        "the ledger's bare transfer, one transaction each", stats(bases), unit="transfers/s",
        kind="reference",
    )  # fmt: skip
    label = "SQLite" if backend == "sqlite" else "PostgreSQL"
    return [
        figure(
            f"member transfers, {label}",
            stats(rates),
            unit="transfers/s",
            base=base,
            note=f"{count} per run; 150 points over 2 lots; every limit checked; audit, notices",
        )
    ]


def main() -> None:
    run_on_both(NAME, __doc__, measure, what="member transfers", quick_count=30)


if __name__ == "__main__":
    main()
