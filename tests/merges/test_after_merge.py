"""Returns and reversals of what a duplicate did before its merge follow its points to the lots
they went to: the survivor (or, after an unmerge, the duplicate again) loses or gets back
exactly those points, the merged duplicate gets no debt, and the ledger verifies."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from fidelia.db import Database
from fidelia.ledger import returns
from fidelia.models import LedgerTransaction, Lot, LotReversal, Member, Programme
from tests.fixtures.events import line, purchase, return_of, returned
from tests.fixtures.factories import Api
from tests.merges.conftest import (
    T0,
    assert_verified,
    balance,
    do_merge,
    do_unmerge,
    earn,
    lots,
    spend,
)
from tests.segments.conftest import apply, buy, document, enrol

LATER = T0 + timedelta(days=5)


def _txn_of(database: Database, member_id: uuid.UUID, kind: str) -> uuid.UUID:
    with database.transaction(readonly=True) as session:
        found = session.scalars(
            select(LedgerTransaction.id).where(
                LedgerTransaction.member_id == member_id, LedgerTransaction.kind == kind
            )
        ).all()
    assert len(found) == 1, found
    return found[0]


def _return_all(database: Database, programme: Programme, txn_id: uuid.UUID) -> None:
    with database.transaction() as session:
        returns.return_award(
            session,
            programme=programme,
            transaction_id=txn_id,
            fraction=Decimal(1),
            idempotency_key=f"return:{uuid.uuid4()}",
            now=LATER,
        )


def _unrecovered(database: Database, programme: Programme) -> int:
    """What the programme's reversals could not take back (the database may hold other
    tests' programmes)."""
    query = select(LotReversal.unrecovered).where(LotReversal.programme_id == programme.id)
    with database.transaction(readonly=True) as session:
        return sum(session.scalars(query).all())


def _pair(person: Callable[..., Member]) -> tuple[Member, Member]:
    return person(card="EC4000001"), person(email="ines@example.org")


def test_a_return_after_a_merge_takes_back_the_survivors_lots_that_came_from_it(
    database: Database, merge_programme: Programme, person: Callable[..., Member]
) -> None:
    survivor, duplicate = _pair(person)
    earn(database, merge_programme, survivor.id, 100, days=200)
    earn(database, merge_programme, duplicate.id, 300, days=30)
    earn(database, merge_programme, duplicate.id, 40, days=None)
    purchase = next(
        t
        for t in _earns(database, duplicate.id)
        if _lot_amount(database, t) == 300  # the purchase's award
    )
    do_merge(database, merge_programme, survivor.id, duplicate.id)

    _return_all(database, merge_programme, purchase)

    assert balance(database, survivor.id) == (100 + 40, 0)
    assert balance(database, duplicate.id) == (0, 0)
    expiring = T0 + timedelta(days=30)
    assert all(expires != expiring for _, _, expires, _ in lots(database, survivor.id))
    assert _unrecovered(database, merge_programme) == 0
    assert_verified(database, merge_programme)


def test_points_spent_after_the_merge_follow_the_policy_of_a_normal_return(
    database: Database, merge_programme: Programme, person: Callable[..., Member]
) -> None:
    survivor, duplicate = _pair(person)
    earn(database, merge_programme, survivor.id, 100, days=200)
    earn(database, merge_programme, duplicate.id, 300, days=30)
    purchase = _txn_of(database, duplicate.id, "earn")
    do_merge(database, merge_programme, survivor.id, duplicate.id)
    spend(database, merge_programme, survivor.id, 250, now=T0 + timedelta(days=2))

    _return_all(database, merge_programme, purchase)

    # 50 left of the lot that came from the purchase, then 100 of the survivor's own points;
    # the other 150 were spent: the wallet's policy (clamp or debt) applies as usual.
    available, _ = balance(database, survivor.id)
    assert available + _unrecovered(database, merge_programme) == -150
    assert balance(database, duplicate.id) == (0, 0)
    assert_verified(database, merge_programme)


def test_a_return_after_merge_and_unmerge_takes_back_from_the_duplicate_again(
    database: Database, merge_programme: Programme, person: Callable[..., Member]
) -> None:
    survivor, duplicate = _pair(person)
    earn(database, merge_programme, survivor.id, 100, days=200)
    earn(database, merge_programme, duplicate.id, 300, days=30)
    purchase = _txn_of(database, duplicate.id, "earn")
    record = do_merge(database, merge_programme, survivor.id, duplicate.id)
    do_unmerge(database, merge_programme, survivor.id, record.id)

    _return_all(database, merge_programme, purchase)

    assert balance(database, survivor.id) == (100, 0)
    assert balance(database, duplicate.id) == (0, 0)
    assert _unrecovered(database, merge_programme) == 0
    assert_verified(database, merge_programme)


def test_reversing_a_spend_of_the_duplicate_refunds_the_survivor_with_the_lots_expiry(
    database: Database, merge_programme: Programme, person: Callable[..., Member]
) -> None:
    survivor, duplicate = _pair(person)
    earn(database, merge_programme, duplicate.id, 300, days=30)
    spend(database, merge_programme, duplicate.id, 120)
    redemption = _txn_of(database, duplicate.id, "spend")
    do_merge(database, merge_programme, survivor.id, duplicate.id)

    with database.transaction() as session:
        returns.reverse(
            session,
            programme=merge_programme,
            transaction_id=redemption,
            idempotency_key="cancel:1",
            reason="redemption cancelled",
            actor="test",
            now=LATER,
        )

    assert balance(database, survivor.id) == (300, 0)
    assert balance(database, duplicate.id) == (0, 0)
    assert {expires for _, _, expires, _ in lots(database, survivor.id)} == {
        T0 + timedelta(days=30)
    }
    assert_verified(database, merge_programme)


def test_reversing_an_earn_of_the_duplicate_takes_it_back_from_the_survivor(
    database: Database, merge_programme: Programme, person: Callable[..., Member]
) -> None:
    survivor, duplicate = _pair(person)
    earn(database, merge_programme, survivor.id, 100, days=200)
    earn(database, merge_programme, duplicate.id, 300, days=30)
    award = _txn_of(database, duplicate.id, "earn")
    do_merge(database, merge_programme, survivor.id, duplicate.id)

    with database.transaction() as session:
        returns.reverse(
            session,
            programme=merge_programme,
            transaction_id=award,
            idempotency_key="reverse:1",
            reason="wrong award",
            actor="test",
            now=LATER,
        )

    assert balance(database, survivor.id) == (100, 0)
    assert balance(database, duplicate.id) == (0, 0)
    assert _unrecovered(database, merge_programme) == 0
    assert_verified(database, merge_programme)


def _earns(database: Database, member_id: uuid.UUID) -> list[uuid.UUID]:
    with database.transaction(readonly=True) as session:
        return list(
            session.scalars(
                select(LedgerTransaction.id).where(
                    LedgerTransaction.member_id == member_id, LedgerTransaction.kind == "earn"
                )
            )
        )


def _lot_amount(database: Database, txn_id: uuid.UUID) -> int:
    with database.transaction(readonly=True) as session:
        return sum(session.scalars(select(Lot.amount).where(Lot.transaction_id == txn_id)))


def test_a_return_event_after_a_merge_takes_back_the_purchases_points_from_the_survivor(
    api: Api, database: Database
) -> None:
    apply(api, document())
    survivor, duplicate = enrol(api, "eva@example.org"), enrol(api, "eva.b@example.org")
    buy(api, survivor, days_ago=3)
    bought = purchase({"id": duplicate}, order_id="order-merged-1", lines=[line("sku-1", 2)])
    assert api.post("/events", json=bought, scope="integration").status_code == 201
    merged = api.post(f"/members/{survivor}/merge", json={"duplicate_id": duplicate})
    assert merged.status_code == 201, merged.text
    before = balance(database, uuid.UUID(survivor))

    returned_event = return_of({"id": duplicate}, "order-merged-1", [returned("sku-1", 2)])
    response = api.post("/events", json=returned_event, scope="integration")

    assert response.status_code == 201, response.text
    assert balance(database, uuid.UUID(survivor)) == (before[0] - 20, before[1])
    assert balance(database, uuid.UUID(duplicate)) == (0, 0)
    assert _unrecovered(database, api.programme) == 0
    assert_verified(database, api.programme)
