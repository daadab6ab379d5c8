"""Set-based spends and voucher issue, on SQLite and PostgreSQL: ``spend_many`` writes what
``spend`` writes one spend after the other, and ``issue_many`` what ``issue_voucher`` issues
one request after the other, with errors in place of the requests that cannot be issued."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from fidelia.db import Database
from fidelia.errors import FideliaError, NotFound
from fidelia.ledger import operations
from fidelia.ledger.errors import AlreadyPosted, InsufficientPoints
from fidelia.ledger.spends import SpendRequest, spend_many
from fidelia.models import Account, Entry, Job, LedgerTransaction, Lot, Programme, Voucher
from fidelia.rewards import codes, pools
from fidelia.rewards.errors import PoolExhausted
from fidelia.rewards.issuing import EXPIRE_JOB, VoucherRequest, issue_many
from tests.fixtures.factories import count_rows, make_member
from tests.rewards.conftest import T0, assert_verified, make_pool, vouchers_of

# (amount, expires in days from T0 or None for never, pending, overdue)
LOTS = [(100, 30, False, False), (50, 10, False, False), (80, None, False, False)]
LOTS += [(70, -1, False, True), (40, 60, True, False)]
SPENDABLE = 230  # 100 + 50 + 80: the overdue and the pending lots are left out


def member_with_lots(database: Database, programme: Programme) -> uuid.UUID:
    """A member holding :data:`LOTS`, the same ids order for every member."""
    member_id = make_member(database, programme).id
    with database.transaction() as session:
        for n, (amount, days, pending, overdue) in enumerate(LOTS):
            earned = T0 - timedelta(days=40 if overdue else 1)
            operations.award(
                session,
                programme=programme,
                member_id=member_id,
                wallet="points",
                amount=amount,
                idempotency_key=f"earn-{member_id}-{n}",
                expires_at=None if days is None else T0 + timedelta(days=days),
                available_at=T0 + timedelta(days=5) if pending else None,
                occurred_at=earned,
                now=earned,
            )
    return member_id


def written(database: Database, member_id: uuid.UUID) -> dict[str, Any]:
    """The member's spends, lots and balance, with ids replaced by positions."""
    with database.transaction(readonly=True) as s:
        account = s.scalars(select(Account).where(Account.member_id == member_id)).one()
        lots = list(s.scalars(select(Lot).where(Lot.account_id == account.id).order_by(Lot.id)))
        place = {lot.id: n for n, lot in enumerate(lots)}
        txns = list(
            s.scalars(
                select(LedgerTransaction)
                .where(LedgerTransaction.member_id == member_id, LedgerTransaction.kind == "spend")
                .order_by(LedgerTransaction.id)
            )
        )
        spends = []
        for txn in txns:
            entries = s.scalars(
                select(Entry).where(Entry.transaction_id == txn.id).order_by(Entry.id)
            )
            spends.append(
                {
                    "fields": (txn.kind, txn.source_type, txn.occurred_at, txn.posted_at),
                    "details": txn.details,
                    "entries": [
                        (
                            e.account_id == account.id,
                            place.get(e.lot_id or account.id),
                            e.amount,
                            e.pending,
                        )
                        for e in entries
                    ],
                }
            )
        return {
            "spends": spends,
            "lots": [(lot.remaining, lot.pending) for lot in lots],
            "balance": (account.available, account.pending, account.lifetime_spent),
        }


@pytest.mark.parametrize("amounts", [[1], [50], [150], [SPENDABLE], [60, 60, 110]])
def test_spend_many_writes_what_spend_writes_one_after_the_other(
    database: Database, rewards_programme: Programme, amounts: list[int]
) -> None:
    p = rewards_programme
    one, many = member_with_lots(database, p), member_with_lots(database, p)
    for n, amount in enumerate(amounts):
        with database.transaction() as s:
            operations.spend(
                s, programme=p, member_id=one, wallet="points", amount=amount,
                idempotency_key=f"one-{one}-{n}", now=T0,
            )  # fmt: skip
    requests = [SpendRequest(many, a, f"many-{many}-{n}") for n, a in enumerate(amounts)]
    with database.transaction() as s:
        ids = spend_many(s, programme=p, spends=requests, now=T0)
    assert ids == [r.transaction_id for r in requests]
    assert written(database, many) == written(database, one)
    assert written(database, many)["balance"][0] == SPENDABLE + 70 - sum(amounts)
    assert_verified(database, p)


def test_spend_many_is_all_or_nothing(database: Database, rewards_programme: Programme) -> None:
    p = rewards_programme
    rich, poor = member_with_lots(database, p), member_with_lots(database, p)
    before = written(database, rich), written(database, poor)
    too_much = [SpendRequest(rich, 10, "a"), SpendRequest(poor, SPENDABLE + 1, "b")]
    with pytest.raises(InsufficientPoints), database.transaction() as s:
        spend_many(s, programme=p, spends=too_much, now=T0)
    twice = [SpendRequest(rich, 10, "c"), SpendRequest(poor, 10, "c")]
    with pytest.raises(AlreadyPosted), database.transaction() as s:
        spend_many(s, programme=p, spends=twice, now=T0)
    assert (written(database, rich), written(database, poor)) == before


def test_a_members_spends_in_one_call_share_the_lots(
    database: Database, rewards_programme: Programme
) -> None:
    p = rewards_programme
    m = member_with_lots(database, p)
    with pytest.raises(InsufficientPoints), database.transaction() as s:
        spend_many(
            s, programme=p, spends=[SpendRequest(m, 200, "a"), SpendRequest(m, 31, "b")], now=T0
        )
    with database.transaction() as s:
        spend_many(
            s, programme=p, spends=[SpendRequest(m, 200, "a"), SpendRequest(m, 30, "b")], now=T0
        )
    assert written(database, m)["balance"] == (70, 40, SPENDABLE)


@pytest.fixture
def pool_of_two(database: Database, rewards_programme: Programme) -> list[str]:
    """The pattern pool ``ten-euros`` with two codes in stock."""
    make_pool(database, rewards_programme)
    with database.transaction() as s:
        return pools.generate_codes(s, programme=rewards_programme, code="ten-euros", count=2)


def issue(
    database: Database, p: Programme, requests: list[VoucherRequest], **kw: Any
) -> list[Voucher | FideliaError]:
    with database.transaction() as s:
        return issue_many(s, programme=p, requests=requests, now=T0, **kw)


def test_stocked_codes_go_first_then_fresh_ones_and_keys_are_kept(
    database: Database, rewards_programme: Programme, pool_of_two: list[str]
) -> None:
    p = rewards_programme
    members = [make_member(database, p).id for _ in range(3)]
    requests = [VoucherRequest(m, "ten-euros", "rule", f"k{n}") for n, m in enumerate(members)]
    requests.append(VoucherRequest(members[0], "ten-euros", "rule", "k0"))  # the same key
    issued = issue(database, p, requests)
    assert all(isinstance(v, Voucher) for v in issued)
    vouchers = [v for v in issued if isinstance(v, Voucher)]
    assert [v.code for v in vouchers[:2]] == sorted(pool_of_two)
    assert vouchers[2].code.startswith("FID-")
    assert vouchers[2].code not in pool_of_two
    assert vouchers[3].id == vouchers[0].id
    assert [v.member_id for v in vouchers[:3]] == members
    again = issue(database, p, [VoucherRequest(members[1], "ten-euros", "rule", "k1")])
    assert [v.id for v in again if isinstance(v, Voucher)] == [vouchers[1].id]
    stored = {v.code: v for v in vouchers_of(database, p)}
    assert len(stored) == 3
    assert all(v.status == "active" for v in stored.values())
    assert stored[vouchers[0].code].valid_until == T0 + timedelta(days=90)
    assert count_rows(database, Job, Job.kind == EXPIRE_JOB, Job.programme_id == p.id) == 3


def test_with_partial_each_failure_stands_alone(
    database: Database, rewards_programme: Programme, pool_of_two: list[str]
) -> None:
    p = rewards_programme
    make_pool(database, p, code="imported", pattern=None)
    m = make_member(database, p).id
    requests = [
        VoucherRequest(m, "ten-euros", "rule", "ok"),
        VoucherRequest(m, "nope", "rule", "no-pool"),
        VoucherRequest(uuid.uuid4(), "ten-euros", "rule", "no-member"),
        VoucherRequest(m, "imported", "rule", "exhausted"),
    ]
    with pytest.raises(NotFound, match="nope"):
        issue(database, p, requests)
    assert [v.status for v in vouchers_of(database, p)] == ["available", "available"]
    with pytest.raises(PoolExhausted):
        issue(database, p, [requests[0], requests[3]])
    assert count_rows(database, Voucher, Voucher.member_id == m) == 0
    issued = issue(database, p, requests, partial=True)
    assert isinstance(issued[0], Voucher)
    assert issued[0].code in pool_of_two
    assert [type(e) for e in issued[1:]] == [NotFound, NotFound, PoolExhausted]
    assert count_rows(database, Voucher, Voucher.member_id == m) == 1
    assert count_rows(database, Job, Job.kind == EXPIRE_JOB, Job.programme_id == p.id) == 1


def test_a_fresh_code_that_exists_already_is_drawn_again(
    database: Database,
    rewards_programme: Programme,
    pool_of_two: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = rewards_programme
    with database.transaction() as s:  # the stock is handed out: the next codes are fresh
        s.execute(update(Voucher).where(Voucher.programme_id == p.id).values(status="active"))
    draws: Iterator[str] = iter([pool_of_two[0], pool_of_two[1], "FID-NEW2-CODE"])
    real: Callable[[str], str] = codes.generate
    monkeypatch.setattr(codes, "generate", lambda pattern: next(draws, None) or real(pattern))
    (voucher,) = issue(database, p, [VoucherRequest(None, "ten-euros", "operator", "bearer")])
    assert isinstance(voucher, Voucher)
    assert voucher.code == "FID-NEW2-CODE"
    assert {v.code for v in vouchers_of(database, p)} == {*pool_of_two, "FID-NEW2-CODE"}
