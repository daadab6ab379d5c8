"""Concurrency proofs on PostgreSQL: threads, each with its own session and transaction."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from fidelia.db import Database
from fidelia.errors import FideliaError
from fidelia.ledger import operations as ops
from fidelia.models import Entry, Lot, Programme
from tests.fixtures.factories import count_rows
from tests.ledger.conftest import T0, assert_verified, balance

pytestmark = pytest.mark.postgres_only


def _in_threads(n: int, work: Callable[[int], None]) -> list[BaseException | None]:
    barrier = threading.Barrier(n)
    outcomes: list[BaseException | None] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_twenty_concurrent_spends_for_one_balance(
    database: Database,
    ledger_programme: Programme,
    new_member: Callable[[], uuid.UUID],
    backend: str,
) -> None:
    if backend != "postgresql":
        pytest.skip("races are proven on PostgreSQL")
    p, m = ledger_programme, new_member()
    with database.transaction() as s:
        ops.award(s, programme=p, member_id=m, wallet="points", amount=100, idempotency_key="e")
    entries_before = count_rows(database, Entry, Entry.programme_id == p.id)

    def spend(i: int) -> None:
        with database.transaction() as s:
            ops.spend(
                s, programme=p, member_id=m, wallet="points", amount=100, idempotency_key=f"s{i}"
            )

    outcomes = _in_threads(20, spend)
    assert outcomes.count(None) == 1
    assert all(
        isinstance(o, FideliaError) and o.status_code == 409 for o in outcomes if o is not None
    )
    assert balance(database, p, m) == (0, 0)
    assert count_rows(database, Entry, Entry.programme_id == p.id) == entries_before + 2
    assert_verified(database, p)


def test_concurrent_earn_spend_and_expire_on_the_same_lot(
    database: Database,
    ledger_programme: Programme,
    new_member: Callable[[], uuid.UUID],
    backend: str,
) -> None:
    if backend != "postgresql":
        pytest.skip("races are proven on PostgreSQL")
    p, m = ledger_programme, new_member()
    with database.transaction() as s:
        txn = ops.award(
            s,
            programme=p,
            member_id=m,
            wallet="points",
            amount=100,
            idempotency_key="e",
            now=T0,
            expires_at=T0 + timedelta(days=1),
        )
        lot_id = s.scalar(select(Lot.id).where(Lot.transaction_id == txn.id))
    assert lot_id is not None
    later = T0 + timedelta(days=2)

    def work(i: int) -> None:
        with database.transaction() as s:
            if i % 3 == 0:
                ops.expire_lot(s, programme=p, lot_id=lot_id, now=later)
            elif i % 3 == 1:
                ops.award(
                    s,
                    programme=p,
                    member_id=m,
                    wallet="points",
                    amount=10,
                    idempotency_key=f"e{i}",
                    now=later,
                )
            else:
                ops.spend(
                    s,
                    programme=p,
                    member_id=m,
                    wallet="points",
                    amount=5,
                    idempotency_key=f"s{i}",
                    now=later,
                )

    outcomes = _in_threads(12, work)
    assert all(o is None or isinstance(o, FideliaError) for o in outcomes), outcomes
    with database.transaction(readonly=True) as s:
        lot = s.get(Lot, lot_id)
        assert lot is not None
        assert lot.remaining == 0
    earned, spent = 10 * 4, 5 * sum(1 for i, o in enumerate(outcomes) if i % 3 == 2 and o is None)
    assert balance(database, p, m) == (earned - spent, 0)
    assert_verified(database, p)
