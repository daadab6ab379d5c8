"""What offers and plans cost on the earning path: statements and CPU per purchase.

Batches of purchases (one line each, one member per purchase, ``--batch-size`` per batch)
through :func:`fidelia.intake.service.ingest_payloads`, one transaction per batch, on two
programmes with the same earning rule (1 € = 1 point):

- *reference*: no offers, no plans (the intake reads nothing for them);
- *with offers*: a booster offer given to every member, a first-N offer and a plan with an
  earning multiplier every member subscribes to: each purchase earns two extra awards.

Figures: SQL statements per purchase (an executemany counts one per row; SAVEPOINT and
RELEASE count, BEGIN and COMMIT do not) and CPU per purchase (this process; on SQLite that
includes the database engine). Median (min-max) over ``--runs`` runs of ``--batches`` batches.

    python bench/bench_offers_path.py [--runs 5] [--batches 8] [--batch-size 16] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``bench`` and ``fidelia`` importable
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent / p) for p in ("", "src")]

from sqlalchemy import event

from bench.common import baseline, database_url, emit, figure, log, quick_mode, stats
from fidelia.db import Database, make_engine
from fidelia.intake import service as intake
from fidelia.kit.clock import utcnow
from fidelia.members import service as members
from fidelia.members.schemas import MemberCreate
from fidelia.migrations import upgrade
from fidelia.models import Programme
from fidelia.offers import service as offers
from fidelia.offers.schemas import GiveIn
from fidelia.plans import service as plans
from fidelia.programmes import documents
from fidelia.programmes import service as programmes
from fidelia.programmes.schemas import ProgrammeCreate

RULES = [{"id": "base", "name": "1 € = 1 point", "award": {"kind": "spend", "rate": 1}}]
WITH_OFFERS: dict[str, Any] = {
    "rules": RULES,
    "offers": [
        {"code": "double", "name": "Double points", "kind": "booster", "multiplier": 2},
        {
            "code": "launch",
            "name": "First 10",
            "kind": "points",
            "amount": 10,
            "first_n": {"count": 10},
        },
    ],
    "plans": [
        {
            "code": "club",
            "name": "Club",
            "period": "year",
            "price": "49",
            "currency": "EUR",
            "benefits": {"earning_multiplier": "1.5"},
        }
    ],
}


def prepare(database: Database, doc: dict[str, Any], members_n: int) -> tuple[Programme, list[str]]:
    with database.transaction() as session:
        programme = programmes.create(
            session,
            data=ProgrammeCreate(
                slug=f"b-{uuid.uuid4().hex[:8]}",
                name="Bench",
                currency="EUR",
                timezone="Europe/Paris",
                locale="fr-FR",
                country="FR",
            ),
        )
        documents.apply(session, programme=programme, raw=doc, actor="bench")
        ids = []
        for i in range(members_n):
            data = MemberCreate(card=f"BENCH{i:07d}")
            ids.append(members.insert_member(session, programme=programme, data=data).id)
        if doc.get("offers"):
            offers.give(session, programme=programme, code="double", data=GiveIn(member_ids=ids))
            for member_id in ids:
                plans.subscribe(
                    session,
                    programme=programme,
                    member_id=member_id,
                    plan_code="club",
                    paid=True,
                    now=utcnow() - timedelta(days=1),
                )
    return programme, [f"BENCH{i:07d}" for i in range(members_n)]


def run_once(
    database: Database, programme: Programme, cards: list[str], size: int, batches: int
) -> tuple[float, float]:
    """(statements per purchase, CPU ms per purchase) over ``batches`` batches."""
    count = [0]

    def on_execute(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        count[0] += len(params) if many and isinstance(params, list | tuple) else 1

    event.listen(database.engine, "before_cursor_execute", on_execute)
    start, events = time.process_time(), 0
    try:
        for b in range(batches):
            payloads = []
            for i in range(size):
                card = cards[(b * size + i) % len(cards)]
                payloads.append(
                    {
                        "id": f"p-{uuid.uuid4().hex}",
                        "type": "purchase",
                        "occurred_at": utcnow().isoformat(),
                        "member": {"card": card},
                        "properties": {
                            "order_id": f"o-{uuid.uuid4().hex[:12]}",
                            "total": "20.00",
                            "lines": [{"sku": "a", "quantity": 1, "unit_price": "20.00"}],
                        },
                    }
                )
            with database.transaction() as session:
                found = session.get(Programme, programme.id)
                assert found is not None
                done = intake.ingest_payloads(session, programme=found, payloads=payloads)
                assert all(o.status == "accepted" for o in done), done[0]
            events += size
    finally:
        event.remove(database.engine, "before_cursor_execute", on_execute)
    return count[0] / events, (time.process_time() - start) * 1000 / events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if quick_mode(args.quick):
        args.runs, args.batches = 3, 3
    figures = []
    with tempfile.TemporaryDirectory() as tmp, database_url("sqlite", Path(tmp)) as url:
        engine = make_engine(url)
        upgrade(engine)
        database = Database(engine)
        plain = prepare(database, {"rules": RULES}, args.batch_size * 2)
        offered = prepare(database, WITH_OFFERS, args.batch_size * 2)
        for setup in (plain, offered):  # warm: compiled programmes, first purchases
            run_once(database, *setup, args.batch_size, 1)
        results: dict[str, list[tuple[float, float]]] = {"plain": [], "offers": []}
        for r in range(args.runs):
            log(f"run {r + 1}/{args.runs}")
            results["plain"].append(run_once(database, *plain, args.batch_size, args.batches))
            results["offers"].append(run_once(database, *offered, args.batch_size, args.batches))
        database.dispose()
    for i, (what, unit) in enumerate(
        (("statements per purchase", "statements"), ("CPU per purchase", "ms"))
    ):
        ref = stats([x[i] for x in results["plain"]])
        base = baseline("no offers, no plans", ref, unit=unit, kind="reference")
        figures.append(
            figure(
                f"{what}, booster + plan multiplier, SQLite, batches of {args.batch_size}",
                stats([x[i] for x in results["offers"]]),
                unit=unit,
                base=base,
                higher_is_better=False,
                note="every member holds a booster and a live plan",
            )
        )
    emit("offers_path", figures, notes=["2 cores shared with other engineers' test runs"])


if __name__ == "__main__":
    main()
