"""Redemptions per second: a member redeems the 10 € voucher for 200 points, which spends two
of their three lots (100 + 100 of 3 x 100) and issues a generated code, one transaction per
redemption, through ``fidelia.rewards.redemptions.redeem`` (the service the API calls), on
SQLite and on PostgreSQL.

The ceiling, measured in the same run on the same backend: inserting the very rows the
redemptions wrote (read back after each run: the redemption, its ledger transaction and
entries, the voucher and its expiry job) into bare copies of those tables (primary key only),
with SQLAlchemy Core, one transaction per redemption. Locks, reads, balance and lot updates and
checks are what the ceiling leaves out. Members and their points are set up before the clock
starts, then 20 untimed redemptions are made and, on PostgreSQL, the tables analysed, as a
database in service has them (:func:`analyse`). Median of ``--runs`` runs (default 3); every
run uses fresh members.

Also counted, on a few more redemptions after the runs: the SQL statements each one sends
(``before_cursor_execute``; an executemany counts one per row, as the server runs one
statement per row; BEGIN and COMMIT are left out), and the DBAPI calls. And the CPU of this
process per redemption (``time.process_time()``, the database server's own left out on
PostgreSQL), against the CPU of the ceiling's inserts of the same rows: on a loaded machine
their ratio moves less than the wall-clock one.

The notices a redemption writes (``points.spent``, ``voucher.issued``, ``reward.redeemed``)
are not in the ceiling: they came after it was defined, and it is kept as it was so that the
figures stay comparable from one day to the next.

    python bench/bench_redemptions.py [--runs 3] [--count 200] [--quick]
"""

from __future__ import annotations

import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Column, MetaData, Table, event, insert, select
from sqlalchemy.orm import Session

from bench.common import (
    Figure,
    baseline,
    database_url,
    figure,
    log,
    run_on_both,
    stats,
)

NAME = "redemptions"
LOTS = (100, 100, 100)


def setup(url: str, members: int) -> tuple[Any, list[uuid.UUID]]:
    """A migrated database with a programme, its wallets, a voucher pool and reward, and
    ``members`` members holding three lots of 100 points each."""
    from fidelia.db import Database
    from fidelia.ledger import operations, wallets
    from fidelia.members import service as member_service
    from fidelia.members.schemas import MemberCreate
    from fidelia.migrations import upgrade
    from fidelia.programmes import service as programmes
    from fidelia.programmes.schemas import ProgrammeCreate
    from fidelia.rewards import pools
    from fidelia.rewards import service as catalogue
    from fidelia.rewards.schemas import PoolIn, RewardIn

    database = Database.from_url(url)
    upgrade(database.engine)
    with database.transaction() as session:
        programme = programmes.create(
            session, data=ProgrammeCreate(slug=f"b-{uuid.uuid4().hex[:8]}", name="Bench")
        )
        wallets.ensure_default_wallets(session, programme=programme)
        pool = PoolIn(
            code="ten", name="10 €", pattern="FID-XXXX-XXXX", discount_type="amount",
            discount_value=Decimal(10), validity_days=90,
        )  # fmt: skip
        pools.create_pool(session, programme=programme, data=pool)
        reward = RewardIn(
            code="voucher-10", kind="voucher", name="10 €", cost_points=200, pool="ten"
        )
        catalogue.create(session, programme=programme, data=reward)
    ids: list[uuid.UUID] = []
    for start in range(0, members, 100):
        with database.transaction() as session:
            for i in range(start, min(start + 100, members)):
                member = member_service.insert_member(
                    session, programme=programme, data=MemberCreate(email=f"m{i}@example.com")
                )
                for n, amount in enumerate(LOTS):
                    operations.award(
                        session, programme=programme, member_id=member.id, wallet="points",
                        amount=amount, idempotency_key=f"earn-{member.id}-{n}",
                    )  # fmt: skip
                ids.append(member.id)
    return (database, programme), ids


def redeem_all(database: Any, programme: Any, member_ids: list[uuid.UUID]) -> float:
    """Seconds to redeem once for each member, one transaction each (the CPU this process
    spent doing it is added to ``CPU["redemptions"]``)."""
    from fidelia.rewards import redemptions

    started, cpu = time.perf_counter(), time.process_time()
    for member_id in member_ids:
        with database.transaction() as session:
            redemptions.redeem(
                session, programme=programme, member_id=member_id, reward="voucher-10",
                idempotency_key=f"r-{member_id}",
            )  # fmt: skip
    CPU["redemptions"] += time.process_time() - cpu
    return time.perf_counter() - started


CPU = {"redemptions": 0.0, "ceiling": 0.0}  # seconds of this process's CPU, timed runs only


COUNTED = 5  # redemptions whose statements are counted, after the timed runs
WARM = 20  # untimed redemptions before the runs, so that the tables have rows to analyse


def analyse(database: Any) -> None:
    """PostgreSQL's statistics as a database in service has them, after the set-up and a few
    redemptions. Freshly filled tables that autovacuum has not analysed yet (it looks once a
    minute; a run lasts seconds) made the planner look a member up by scanning the
    programme's members through another index (``ix_members_programme_id_birth_date``, every
    member of the programme read) and an idempotency key by scanning the programme's
    redemptions: costs growing with the run that a database in service does not have."""
    if database.engine.dialect.name != "postgresql":
        return
    with database.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")


def statements_per_redemption(
    database: Any, programme: Any, member_ids: list[uuid.UUID]
) -> tuple[float, float]:
    """(statements, DBAPI calls) per redemption, over ``member_ids`` (one each)."""
    counts = [0, 0]

    def before(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if statement.lstrip()[:8].upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            return
        style = getattr(getattr(context, "execute_style", None), "name", "")
        counts[0] += len(parameters) if many and style == "EXECUTEMANY" else 1
        counts[1] += 1

    event.listen(database.engine, "before_cursor_execute", before)
    try:
        redeem_all(database, programme, member_ids)
    finally:
        event.remove(database.engine, "before_cursor_execute", before)
    return counts[0] / len(member_ids), counts[1] / len(member_ids)


def written_rows(
    session: Session, member_ids: list[uuid.UUID]
) -> list[dict[str, list[dict[str, Any]]]]:
    """The rows each redemption inserted, grouped by redemption, by table."""
    from fidelia.models import Entry, Job, LedgerTransaction, Redemption, Voucher

    def rows(model: Any, *where: Any) -> list[dict[str, Any]]:
        found = session.execute(select(model.__table__).where(*where)).mappings()
        return [dict(r) for r in found]

    out = []
    done = rows(Redemption, Redemption.member_id.in_(member_ids))
    for redemption in done:
        txn_id = redemption["spend_transaction_id"]
        vouchers = rows(Voucher, Voucher.redemption_id == redemption["id"])
        job_payload = Job.payload["voucher_id"].as_string() == str(vouchers[0]["id"])
        out.append({
            "redemptions": [redemption],
            "ledger_transactions": rows(LedgerTransaction, LedgerTransaction.id == txn_id),
            "ledger_entries": rows(Entry, Entry.transaction_id == txn_id),
            "vouchers": vouchers,
            "jobs": rows(Job, Job.kind == "rewards.voucher_expire", job_payload),
        })  # fmt: skip
    return out


def bare_copies(engine: Any) -> dict[str, Table]:
    """Tables with the same columns as the real ones, primary key only."""
    from fidelia.models import Base

    metadata = MetaData()
    copies = {}
    for name in ("redemptions", "ledger_transactions", "ledger_entries", "vouchers", "jobs"):
        real = Base.metadata.tables[name]
        columns = [Column(c.name, c.type, primary_key=c.name == "id") for c in real.columns]
        copies[name] = Table(f"ceiling_{name}_{uuid.uuid4().hex[:6]}", metadata, *columns)
    metadata.create_all(engine)
    return copies


def ceiling(engine: Any, groups: list[dict[str, list[dict[str, Any]]]]) -> float:
    """Seconds to insert the same rows into bare tables, one transaction per redemption."""
    copies = bare_copies(engine)
    started, cpu = time.perf_counter(), time.process_time()
    for group in groups:
        with engine.begin() as conn:
            for name, rows in group.items():
                conn.execute(insert(copies[name]), rows)
    CPU["ceiling"] += time.process_time() - cpu
    return time.perf_counter() - started


def measure(backend: str, tmp: Path, runs: int, count: int) -> list[Figure]:
    with database_url(backend, tmp) as url:
        (database, programme), members = setup(url, WARM + count * runs + COUNTED)
        try:
            redeem_all(database, programme, members[:WARM])
            analyse(database)
            members = members[WARM:]
            CPU.update(redemptions=0.0, ceiling=0.0)
            rates, ceilings = [], []
            for run in range(runs):
                chunk = members[run * count : (run + 1) * count]
                seconds = redeem_all(database, programme, chunk)
                rates.append(count / seconds)
                with database.transaction(readonly=True) as session:
                    groups = written_rows(session, chunk)
                ceilings.append(count / ceiling(database.engine, groups))
                log(f"{backend} run {run + 1}: {rates[-1]:.0f}/s, ceiling {ceilings[-1]:.0f}/s")
            cpu = {k: v / (count * runs) * 1000 for k, v in CPU.items()}  # ms per redemption
            statements, calls = statements_per_redemption(
                database, programme, members[count * runs :]
            )
            log(f"{backend}: {statements:.1f} statements, {calls:.1f} DBAPI calls per redemption")
            mine, bare = cpu["redemptions"], cpu["ceiling"]
            log(f"{backend}: CPU per redemption {mine:.2f} ms, its rows' raw insert {bare:.2f} ms")
        finally:
            database.dispose()
    base = baseline(
        "raw insert of the same rows, one transaction each", stats(ceilings), unit="redemptions/s"
    )
    label = "SQLite" if backend == "sqlite" else "PostgreSQL"
    return [
        figure(
            f"redemptions, {label}",
            stats(rates),
            unit="redemptions/s",
            base=base,
            note=f"{count} per run, one per transaction; 200 points over 2 lots, a voucher issued",
        ),
        figure(
            f"CPU per redemption, {label}",
            cpu["redemptions"],
            unit="ms",
            higher_is_better=False,
            note=f"this process; the ceiling's inserts of the same rows: {cpu['ceiling']:.2f} ms",
        ),
        figure(
            f"SQL statements per redemption, {label}",
            statements,
            unit="statements",
            higher_is_better=False,
            note=f"{calls:.0f} DBAPI calls (an executemany is one call, one statement per row)",
        ),
    ]


def main() -> None:
    run_on_both(NAME, __doc__, measure, what="redemptions", quick_count=50)


if __name__ == "__main__":
    main()
