"""Postings given/when/then, on SQLite and PostgreSQL: every test ends with a clean verify."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from fidelia.db import Database
from fidelia.errors import ValidationFailed
from fidelia.jobs import service as jobs
from fidelia.ledger import operations as ops
from fidelia.ledger import returns
from fidelia.ledger.errors import (
    AlreadyPosted,
    ExceedsAward,
    InsufficientPoints,
    NotReversible,
    NotSpendable,
)
from fidelia.models import Entry, LedgerTransaction, Lot, LotReversal, Programme
from tests.fixtures.factories import count_rows
from tests.ledger.conftest import T0, assert_verified, balance

Member = Callable[[], uuid.UUID]


def earn(
    db: Database, p: Programme, m: uuid.UUID, amount: int, key: str, **kw: object
) -> LedgerTransaction:
    with db.transaction() as s:
        return ops.award(
            s,
            programme=p,
            member_id=m,
            wallet="points",
            amount=amount,
            idempotency_key=key,
            now=T0,
            **kw,
        )  # type: ignore[arg-type]


def test_spend_consumes_soonest_expiring_lots_first(
    database: Database, ledger_programme: Programme, new_member: Member
) -> None:
    p, m = ledger_programme, new_member()
    late = earn(database, p, m, 100, "late", expires_at=T0 + timedelta(days=300))
    never = earn(database, p, m, 100, "never", expires_at=None)
    soon = earn(database, p, m, 100, "soon", expires_at=T0 + timedelta(days=10))
    with database.transaction() as s:
        spend = ops.spend(
            s, programme=p, member_id=m, wallet="points", amount=150, idempotency_key="s", now=T0
        )
    with database.transaction(readonly=True) as s:
        taken = {
            e.lot_id: -e.amount
            for e in s.scalars(select(Entry).where(Entry.transaction_id == spend.id))
            if e.lot_id
        }
        lots = {
            lot.transaction_id: lot.id
            for lot in s.scalars(
                select(Lot).where(
                    Lot.account_id.in_(
                        select(Entry.account_id).where(Entry.transaction_id == spend.id)
                    )
                )
            )
        }
    assert taken == {lots[soon.id]: 100, lots[late.id]: 50}
    assert lots[never.id] not in taken
    assert balance(database, p, m) == (150, 0)
    assert_verified(database, p)


def test_insufficient_balance_is_409_and_changes_nothing(
    database: Database, ledger_programme: Programme, new_member: Member
) -> None:
    p, m = ledger_programme, new_member()
    earn(database, p, m, 100, "e")
    before = count_rows(database, Entry, Entry.programme_id == p.id)
    with pytest.raises(InsufficientPoints), database.transaction() as s:
        ops.spend(
            s, programme=p, member_id=m, wallet="points", amount=101, idempotency_key="s", now=T0
        )
    assert balance(database, p, m) == (100, 0)
    assert count_rows(database, Entry, Entry.programme_id == p.id) == before


def test_same_idempotency_key_is_rejected(
    database: Database, ledger_programme: Programme, new_member: Member
) -> None:
    p, m = ledger_programme, new_member()
    earn(database, p, m, 100, "e")
    with pytest.raises(AlreadyPosted):
        earn(database, p, m, 100, "e")
    assert balance(database, p, m) == (100, 0)


def test_bad_amounts_and_wallets(
    database: Database, ledger_programme: Programme, new_member: Member
) -> None:
    p, m = ledger_programme, new_member()
    with pytest.raises(ValidationFailed), database.transaction() as s:
        ops.award(
            s, programme=p, member_id=m, wallet="points", amount=Decimal("1.5"), idempotency_key="x"
        )
    with pytest.raises(ValidationFailed), database.transaction() as s:
        ops.award(
            s,
            programme=p,
            member_id=m,
            wallet="cashback",
            amount=Decimal("1.005"),
            idempotency_key="x",
        )
    with pytest.raises(ValidationFailed), database.transaction() as s:
        ops.award(s, programme=p, member_id=m, wallet="points", amount=0, idempotency_key="x")
    with database.transaction() as s:
        ops.award(s, programme=p, member_id=m, wallet="status", amount=10, idempotency_key="st")
    with pytest.raises(NotSpendable), database.transaction() as s:
        ops.spend(s, programme=p, member_id=m, wallet="status", amount=1, idempotency_key="x")
    assert balance(database, p, m, "status") == (10, 0)


def test_cashback_is_exact_money(
    database: Database, ledger_programme: Programme, new_member: Member
) -> None:
    p, m = ledger_programme, new_member()
    with database.transaction() as s:
        for i in range(10):
            ops.award(
                s,
                programme=p,
                member_id=m,
                wallet="cashback",
                amount=Decimal("0.10"),
                idempotency_key=f"c{i}",
            )
    assert balance(database, p, m, "cashback") == (100, 0)  # exactly 1.00 EUR


def test_journal_is_immutable(
    database: Database, ledger_programme: Programme, new_member: Member
) -> None:
    p, m = ledger_programme, new_member()
    txn = earn(database, p, m, 100, "e")
    for statement in (
        "UPDATE ledger_entries SET amount = 1 WHERE transaction_id = :t",
        "DELETE FROM ledger_entries WHERE transaction_id = :t",
        "UPDATE ledger_transactions SET kind = 'spend' WHERE id = :t",
    ):
        with pytest.raises(DBAPIError), database.transaction() as s:
            s.execute(
                text(statement),
                {"t": txn.id.hex if database.engine.dialect.name == "sqlite" else txn.id},
            )
    assert_verified(database, p)


def test_failure_mid_posting_leaves_no_rows(
    database: Database,
    ledger_programme: Programme,
    new_member: Member,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p, m = ledger_programme, new_member()
    from fidelia.ledger import service

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(service, "_schedule", broken)  # after every row is inserted
    with pytest.raises(RuntimeError), database.transaction() as s:
        ops.award(s, programme=p, member_id=m, wallet="points", amount=100, idempotency_key="e")
    for model in (LedgerTransaction, Entry, Lot):
        assert count_rows(database, model, model.programme_id == p.id) == 0
    assert balance(database, p, m) == (0, 0)


def test_pending_points_are_released_by_the_job(
    database: Database, ledger_programme: Programme, new_member: Member
) -> None:
    p, m = ledger_programme, new_member()
    earn(database, p, m, 100, "e", available_at=T0 + timedelta(days=30))
    assert balance(database, p, m) == (0, 100)
    with pytest.raises(InsufficientPoints), database.transaction() as s:
        ops.spend(
            s, programme=p, member_id=m, wallet="points", amount=1, idempotency_key="s", now=T0
        )
    ran = jobs.run_due(database, now=T0 + timedelta(days=31), programme_id=p.id)
    assert ran >= 1
    assert balance(database, p, m) == (100, 0)
    jobs.run_due(database, now=T0 + timedelta(days=32), programme_id=p.id)
    assert (
        count_rows(
            database,
            LedgerTransaction,
            LedgerTransaction.programme_id == p.id,
            LedgerTransaction.kind == "release",
        )
        == 1
    )
    assert_verified(database, p)


def test_expiry_job_expires_once_and_counts(
    database: Database, ledger_programme: Programme, new_member: Member
) -> None:
    p, m = ledger_programme, new_member()
    txn = earn(database, p, m, 100, "e", expires_at=T0 + timedelta(days=5))
    with database.transaction() as s:
        ops.spend(
            s, programme=p, member_id=m, wallet="points", amount=30, idempotency_key="s", now=T0
        )
        lot_id = s.scalar(select(Lot.id).where(Lot.transaction_id == txn.id))
    jobs.run_due(database, now=T0 + timedelta(days=6), programme_id=p.id)
    with database.transaction() as s:
        assert lot_id is not None
        assert ops.expire_lot(s, programme=p, lot_id=lot_id, now=T0 + timedelta(days=7)) is None
    assert balance(database, p, m) == (0, 0)
    assert (
        count_rows(
            database,
            LedgerTransaction,
            LedgerTransaction.programme_id == p.id,
            LedgerTransaction.kind == "expire",
        )
        == 1
    )
    assert_verified(database, p)


def test_return_cancels_pending_points_before_release(
    database: Database, ledger_programme: Programme, new_member: Member
) -> None:
    p, m = ledger_programme, new_member()
    txn = earn(database, p, m, 100, "e", hold=True)
    with database.transaction() as s:
        returns.return_award(
            s,
            programme=p,
            transaction_id=txn.id,
            fraction=Decimal("0.4"),
            idempotency_key="r1",
            now=T0,
        )
    assert balance(database, p, m) == (0, 60)
    with database.transaction() as s:
        lot_id = s.scalar(select(Lot.id).where(Lot.transaction_id == txn.id))
        assert lot_id is not None
        ops.release_lot(s, programme=p, lot_id=lot_id, now=T0)
    assert balance(database, p, m) == (60, 0)
    assert_verified(database, p)


def test_return_of_spent_points_with_debt_then_repaid(
    database: Database, ledger_programme: Programme, new_member: Member
) -> None:
    p, m = ledger_programme, new_member()  # points: allow_debt
    txn = earn(database, p, m, 100, "e")
    with database.transaction() as s:
        ops.spend(
            s, programme=p, member_id=m, wallet="points", amount=80, idempotency_key="s", now=T0
        )
        returns.return_award(
            s, programme=p, transaction_id=txn.id, fraction=Decimal(1), idempotency_key="r", now=T0
        )
    assert balance(database, p, m) == (-80, 0)
    earn(database, p, m, 50, "e2")
    assert balance(database, p, m) == (-30, 0)
    earn(database, p, m, 50, "e3")
    assert balance(database, p, m) == (20, 0)
    assert_verified(database, p)


def test_return_clamps_and_records_unrecovered(
    database: Database, ledger_programme: Programme, new_member: Member
) -> None:
    p, m = ledger_programme, new_member()  # cashback: clamp
    with database.transaction() as s:
        txn = ops.award(
            s, programme=p, member_id=m, wallet="cashback", amount=Decimal(10), idempotency_key="e"
        )
        ops.spend(
            s, programme=p, member_id=m, wallet="cashback", amount=Decimal(8), idempotency_key="s"
        )
        returns.return_award(
            s, programme=p, transaction_id=txn.id, fraction=Decimal("0.5"), idempotency_key="r"
        )
    assert balance(database, p, m, "cashback") == (0, 0)
    with database.transaction(readonly=True) as s:
        (reversal,) = s.scalars(select(LotReversal).where(LotReversal.programme_id == p.id))
    assert (reversal.amount, reversal.unrecovered) == (500, 300)
    assert_verified(database, p)


def test_returns_cannot_exceed_the_award_nor_repeat(
    database: Database, ledger_programme: Programme, new_member: Member
) -> None:
    p, m = ledger_programme, new_member()
    txn = earn(database, p, m, 10, "e")
    with database.transaction() as s:
        for i in range(3):
            returns.return_award(
                s,
                programme=p,
                transaction_id=txn.id,
                fraction=Decimal(1) / 3,
                idempotency_key=f"r{i}",
            )
    assert balance(database, p, m) == (0, 0)  # thirds add up to exactly the award
    with pytest.raises(ExceedsAward), database.transaction() as s:
        returns.return_award(s, programme=p, transaction_id=txn.id, amount=1, idempotency_key="r9")
    with pytest.raises(AlreadyPosted), database.transaction() as s:
        returns.return_award(s, programme=p, transaction_id=txn.id, amount=1, idempotency_key="r0")
    assert_verified(database, p)


def test_transfer_and_reversals(
    database: Database, ledger_programme: Programme, new_member: Member
) -> None:
    p, a, b = ledger_programme, new_member(), new_member()
    earn(database, p, a, 100, "e", expires_at=T0 + timedelta(days=50))
    with database.transaction() as s:
        t = ops.transfer(
            s,
            programme=p,
            from_member_id=a,
            to_member_id=b,
            wallet="points",
            amount=40,
            idempotency_key="t",
            now=T0,
        )
        lot = s.scalar(select(Lot).where(Lot.transaction_id == t.id))
    assert lot is not None
    assert lot.expires_at == T0 + timedelta(days=50)
    assert (balance(database, p, a), balance(database, p, b)) == ((60, 0), (40, 0))
    with database.transaction() as s:
        returns.reverse(
            s,
            programme=p,
            transaction_id=t.id,
            idempotency_key="rv",
            reason="fraud",
            actor="ops",
            now=T0,
        )
    assert (balance(database, p, a), balance(database, p, b)) == ((100, 0), (0, 0))
    with pytest.raises(NotReversible), database.transaction() as s:
        returns.reverse(
            s,
            programme=p,
            transaction_id=t.id,
            idempotency_key="rv2",
            reason="again",
            actor="ops",
            now=T0,
        )
    assert_verified(database, p)


def test_balance_as_of_replays_entries(
    database: Database, ledger_programme: Programme, new_member: Member
) -> None:
    from fidelia.ledger.balances import balance_as_of, history
    from fidelia.ledger.repository import find_member_account
    from fidelia.ledger.wallets import get_wallet

    p, m = ledger_programme, new_member()
    earn(database, p, m, 100, "e1", occurred_at=T0)
    earn(database, p, m, 50, "e2", occurred_at=T0 + timedelta(days=2))
    with database.transaction(readonly=True) as s:
        account = find_member_account(
            s, wallet=get_wallet(s, programme=p, code="points"), member_id=m
        )
        assert account is not None
        assert balance_as_of(s, account=account, as_of=T0 - timedelta(seconds=1)) == (0, 0)
        assert balance_as_of(s, account=account, as_of=T0 + timedelta(days=1)) == (100, 0)
        assert balance_as_of(s, account=account, as_of=T0 + timedelta(days=3)) == (150, 0)
        page, cursor = history(s, account=account, limit=1)
        assert [r.available for r in page] == [50]
        page, cursor = history(s, account=account, cursor=cursor, limit=1)
        assert ([r.available for r in page], cursor) == ([100], None)


def test_a_fresh_key_that_was_used_is_still_refused_by_the_database(
    database: Database, ledger_programme: Programme, new_member: Member
) -> None:
    p, m = ledger_programme, new_member()
    earn(database, p, m, 100, "same-key")

    with pytest.raises(AlreadyPosted), database.transaction() as s:
        ops.award(
            s, programme=p, member_id=m, wallet="points", amount=5, idempotency_key="same-key",
            fresh_key=True,
        )  # fmt: skip

    assert balance(database, p, m) == (100, 0)
    assert count_rows(database, LedgerTransaction, LedgerTransaction.member_id == m) == 1
