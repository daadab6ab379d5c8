"""Ledger benchmark: postings per second through the posting function, against the raw rate
of inserting the same rows without any of the ledger's checks (the ceiling).

    python bench/bench_ledger.py [--postings 200] [--runs 3]

SQLite (a temporary file) and PostgreSQL (``FIDELIA_BENCH_DATABASE_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``; a database of its own is created and
dropped). One posting per database transaction, as in production. Prints a JSON dict.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import create_engine, insert, make_url, text, update

from bench.common import Figure, Stats, baseline, emit, figure, stats
from fidelia.db import Database, make_engine, normalise_url
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.ledger import operations as ops
from fidelia.ledger import wallets
from fidelia.members import service as members
from fidelia.members.schemas import MemberCreate
from fidelia.migrations import upgrade
from fidelia.models import Account, Entry, Job, LedgerTransaction, Lot, Programme
from fidelia.programmes import service as programmes
from fidelia.programmes.schemas import ProgrammeCreate

PG_URL = os.environ.get(
    "FIDELIA_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def setup(db: Database, n_members: int) -> tuple[Programme, list[uuid.UUID]]:
    with db.transaction() as s:
        p = programmes.create(
            s, data=ProgrammeCreate(slug=f"b-{uuid.uuid4().hex[:8]}", name="bench")
        )
        wallets.ensure_default_wallets(s, programme=p)
        ids = [
            members.insert_member(
                s, programme=p, data=MemberCreate(email=f"{uuid.uuid4().hex[:10]}@x.io")
            ).id
            for _ in range(n_members)
        ]
    return p, ids


def rate(n: int, fn: Callable[[int], None], threads: int = 1) -> float:
    def worker(t: int) -> None:
        for i in range(t, n, threads):
            fn(i)

    start = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return n / (time.perf_counter() - start)


def earn_fn(db: Database, p: Programme, ids: list[uuid.UUID], tag: str) -> Callable[[int], None]:
    def fn(i: int) -> None:
        with db.transaction() as s:
            ops.award(
                s,
                programme=p,
                member_id=ids[i % len(ids)],
                wallet="points",
                amount=10,
                idempotency_key=f"{tag}{i}",
            )

    return fn


def spend_fn(db: Database, p: Programme, ids: list[uuid.UUID], tag: str) -> Callable[[int], None]:
    def fn(i: int) -> None:  # each member holds 4 lots of 10 per spend: a spend of 35 takes 4
        with db.transaction() as s:
            ops.spend(
                s,
                programme=p,
                member_id=ids[i % len(ids)],
                wallet="points",
                amount=35,
                idempotency_key=f"{tag}{i}",
            )

    return fn


def raw_earn_fn(
    db: Database,
    p: Programme,
    ids: list[uuid.UUID],
    accounts: dict[uuid.UUID, uuid.UUID],
    issued: uuid.UUID,
    lots: int = 1,
) -> Callable[[int], None]:
    """The rows an earn (lots=1) or a 4-lot spend writes, inserted blindly: a transaction,
    its lots or entries, the account update and the job -- no lock, no read, no check."""

    def fn(i: int) -> None:
        now = utcnow()
        txn = uuid7()
        account = accounts[ids[i % len(ids)]]
        with db.transaction() as s:
            s.execute(
                insert(LedgerTransaction),
                [
                    {
                        "id": txn,
                        "programme_id": p.id,
                        "wallet_id": wallet_id,
                        "member_id": ids[i % len(ids)],
                        "kind": "earn",
                        "idempotency_key": f"raw{uuid.uuid4().hex}",
                        "source_type": "event",
                        "occurred_at": now,
                        "posted_at": now,
                        "details": {},
                    }
                ],
            )
            lot_rows = (
                [
                    {
                        "id": uuid7(),
                        "programme_id": p.id,
                        "wallet_id": wallet_id,
                        "account_id": account,
                        "transaction_id": txn,
                        "amount": 10,
                        "remaining": 10,
                        "pending": 0,
                        "expires_at": now + timedelta(days=365),
                        "created_at": now,
                    }
                    for _ in range(lots)
                ]
                if lots == 1
                else []
            )
            if lot_rows:
                s.execute(insert(Lot), lot_rows)
            legs = [(account, 10)] * (1 if lots == 1 else 4) + [
                (issued, -10 * (1 if lots == 1 else 4))
            ]
            s.execute(
                insert(Entry),
                [
                    {
                        "id": uuid7(),
                        "programme_id": p.id,
                        "transaction_id": txn,
                        "account_id": a,
                        "lot_id": None,
                        "pending": False,
                        "amount": amt,
                        "effective_at": now,
                    }
                    for a, amt in legs
                ],
            )
            s.execute(
                update(Account)
                .where(Account.id == account)
                .values(available=Account.available + 10)
            )
            if lots == 1:
                s.execute(
                    insert(Job),
                    [
                        {
                            "id": uuid7(),
                            "kind": "ledger.expire",
                            "payload": {},
                            "due_at": now + timedelta(days=365),
                            "programme_id": p.id,
                        }
                    ],
                )

    wallet_id = None
    with db.transaction(readonly=True) as s:
        wallet_id = wallets.get_wallet(s, programme=p, code="points").id
    return fn


def median_of(
    runs: int,
    make: Callable[[int], Callable[[int], None]],
    n: int,
    threads: int = 1,
    before: Callable[[int], None] | None = None,
) -> Stats:
    results = []
    for r in range(runs):
        if before:
            before(r)
        results.append(rate(n, make(r), threads))
    return stats(results)


def bench_backend(db: Database, n: int, runs: int, concurrent: bool) -> dict[str, Stats]:
    p, ids = setup(db, 50)
    with db.transaction() as s:  # accounts exist before the raw inserts
        for m in ids:
            ops.award(
                s,
                programme=p,
                member_id=m,
                wallet="points",
                amount=1,
                idempotency_key=f"seed{m}",
                expires_at=None,
            )
    from fidelia.ledger.repository import find_member_account, system_account_id

    with db.transaction() as s:
        w = wallets.get_wallet(s, programme=p, code="points")
        accounts = {m: find_member_account(s, wallet=w, member_id=m).id for m in ids}  # type: ignore[union-attr]
        issued = system_account_id(s, wallet=w, kind="issued")
    out: dict[str, Stats] = {}
    out["earn_per_s"] = median_of(runs, lambda r: earn_fn(db, p, ids, f"e{r}-"), n)
    out["earn_raw_per_s"] = median_of(runs, lambda r: raw_earn_fn(db, p, ids, accounts, issued), n)

    def refill(r: int) -> None:  # 4 lots per spend to come, not timed
        with db.transaction() as s:
            for k in range(4 * n // len(ids) + 4):
                for m in ids:
                    ops.award(
                        s,
                        programme=p,
                        member_id=m,
                        wallet="points",
                        amount=10,
                        idempotency_key=f"f{r}-{k}-{m}",
                        expires_at=utcnow() + timedelta(days=30 + k),
                    )

    out["spend_4_lots_per_s"] = median_of(
        runs, lambda r: spend_fn(db, p, ids, f"s{r}-"), n, before=refill
    )
    out["spend_raw_per_s"] = median_of(
        runs, lambda r: raw_earn_fn(db, p, ids, accounts, issued, lots=4), n
    )
    if concurrent:
        out["earn_4_writers_per_s"] = median_of(
            runs, lambda r: earn_fn(db, p, ids, f"c{r}-"), n, threads=4
        )
        out["earn_raw_4_writers_per_s"] = median_of(
            runs, lambda r: raw_earn_fn(db, p, ids, accounts, issued), n, threads=4
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postings", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, dict[str, Stats]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(make_engine(f"sqlite:///{tmp}/bench.db"))
        upgrade(db.engine)
        results["sqlite"] = bench_backend(db, args.postings, args.runs, concurrent=False)
        db.dispose()
    admin_url = normalise_url(PG_URL)
    name = f"fidelia_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        db = Database(
            make_engine(
                make_url(admin_url).set(database=name).render_as_string(hide_password=False)
            )
        )
        upgrade(db.engine)
        results["postgresql"] = bench_backend(db, args.postings, args.runs, concurrent=True)
        db.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    emit(
        "ledger",
        [f for backend, found in results.items() for f in figures(backend, found, args.postings)],
    )


def figures(backend: str, found: dict[str, Stats], n: int) -> list[Figure]:
    """Postings/s against the raw insert of the same rows (the ceiling), same run."""
    label = "SQLite" if backend == "sqlite" else "PostgreSQL"
    note = f"{n} postings per run, one posting per transaction"
    pairs = [
        ("earn (one lot)", "earn_per_s", "earn_raw_per_s"),
        ("spend (4 lots)", "spend_4_lots_per_s", "spend_raw_per_s"),
        ("earn, 4 concurrent writers", "earn_4_writers_per_s", "earn_raw_4_writers_per_s"),
    ]
    return [
        figure(
            f"ledger postings/s, {what}, {label}",
            found[key],
            unit="postings/s",
            base=baseline("raw insert of the same rows", found[raw], unit="rows/s"),
            note=note,
        )
        for what, key, raw in pairs
        if key in found
    ]


if __name__ == "__main__":
    main()
