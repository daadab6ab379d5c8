"""One spend written by one statement on PostgreSQL (``spends._post_one_postgres``; on SQLite
the same calls write it in four): what it writes is what ``spend`` writes, and a spend that
fails in the database writes nothing of it, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from fidelia.db import Database
from fidelia.ledger import operations
from fidelia.ledger.errors import AlreadyPosted
from fidelia.ledger.spends import SpendRequest, spend_many
from fidelia.models import Entry, LedgerTransaction, Lot, Programme
from tests.ledger.conftest import T0, assert_verified, balance


def earn_three_lots(database: Database, programme: Programme, member_id: uuid.UUID) -> None:
    """100, 50 and 80 points, expiring in 30 days, 10 days and never."""
    with database.transaction() as session:
        for n, (amount, days) in enumerate([(100, 30), (50, 10), (80, None)]):
            operations.award(
                session, programme=programme, member_id=member_id, wallet="points",
                amount=amount, idempotency_key=f"earn-{member_id}-{n}", now=T0,
                expires_at=None if days is None else T0 + timedelta(days=days),
            )  # fmt: skip


def remaining(database: Database, member_id: uuid.UUID) -> list[int]:
    with database.transaction(readonly=True) as session:
        lots = session.scalars(
            select(Lot.remaining).join(LedgerTransaction).where(
                LedgerTransaction.member_id == member_id
            ).order_by(Lot.expires_at.is_(None), Lot.expires_at)
        )  # fmt: skip
        return list(lots)


@pytest.mark.parametrize(("amount", "left"), [(30, [50 - 30, 100, 80]), (200, [0, 0, 30])])
def test_one_spend_takes_the_soonest_expiring_lots_first(
    database: Database,
    ledger_programme: Programme,
    new_member: Callable[[], uuid.UUID],
    amount: int,
    left: list[int],
) -> None:
    p, member_id = ledger_programme, new_member()
    earn_three_lots(database, p, member_id)
    request = SpendRequest(member_id, amount, f"spend-{member_id}", fresh_key=True)
    with database.transaction() as session:
        (txn_id,) = spend_many(session, programme=p, spends=[request], now=T0)
    assert remaining(database, member_id) == left
    assert balance(database, p, member_id) == (230 - amount, 0)
    with database.transaction(readonly=True) as session:
        amounts = session.scalars(select(Entry.amount).where(Entry.transaction_id == txn_id))
        assert sum(amounts) == 0
    assert_verified(database, p)


def test_a_fresh_key_taken_meanwhile_is_already_posted_and_writes_nothing(
    database: Database, ledger_programme: Programme, new_member: Callable[[], uuid.UUID]
) -> None:
    """A key said fresh is not looked up: the unique constraint refuses it in the database,
    and nothing of the spend stays (its lots and balance are as they were)."""
    p, member_id = ledger_programme, new_member()
    earn_three_lots(database, p, member_id)
    first = SpendRequest(member_id, 20, f"taken-{member_id}", fresh_key=True)
    with database.transaction() as session:
        spend_many(session, programme=p, spends=[first], now=T0)
    before = (remaining(database, member_id), balance(database, p, member_id))
    again = SpendRequest(member_id, 120, f"taken-{member_id}", fresh_key=True)
    with pytest.raises(AlreadyPosted), database.transaction() as session:
        spend_many(session, programme=p, spends=[again], now=T0)
    assert (remaining(database, member_id), balance(database, p, member_id)) == before
    assert_verified(database, p)
