"""Set-based awards (``award_many``, ``DeferredAwards``): the same journal, lots, balances,
jobs and verification as posting each award alone, compared on two programmes; debt repaid
first; all or nothing; deferred awards flushed before anything reads the ledger."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.db import Database
from fidelia.kit.bounds import MAX_BALANCE, MAX_POSTING
from fidelia.ledger import operations as ops
from fidelia.ledger import repository, returns, wallets
from fidelia.ledger.errors import AlreadyPosted, BalanceLimit
from fidelia.ledger.schemas import ExpiryPolicy, PendingPolicy, WalletIn
from fidelia.ledger.service import EXPIRE_JOB, RELEASE_JOB
from fidelia.ledger.verify import verify
from fidelia.models import Account, Entry, Job, LedgerTransaction, Lot, Programme, Wallet
from tests.fixtures.factories import make_member, make_programme
from tests.ledger.conftest import T0, balance

WALLETS = ("points", "cashback", "status", "gift")  # allow_debt, clamp, no expiry, pending
NOW = T0 + timedelta(days=3)


def ledger_programme(database: Database) -> tuple[Programme, list[uuid.UUID]]:
    """A programme with the default wallets, a 'gift' wallet (14 days pending, expiry at the
    end of the quarter) and four members."""
    programme = make_programme(database)
    with database.transaction() as session:
        wallets.ensure_default_wallets(session, programme=programme)
        wallets.declare_wallet(
            session,
            programme=programme,
            data=WalletIn(
                code="gift",
                name="Gift points",
                pending=PendingPolicy(kind="days", days=14),
                expiry=ExpiryPolicy(kind="end_of_period", period="quarter"),
            ),
        )
    return programme, [make_member(database, programme).id for _ in range(4)]


def into_debt(
    session: Session, programme: Programme, member_id: uuid.UUID, debt: int, name: str = "m"
) -> None:
    """Earn, spend everything, then return the earn: the points balance is ``-debt``."""
    earned = ops.award(
        session,
        programme=programme,
        member_id=member_id,
        wallet="points",
        amount=debt,
        idempotency_key=f"debt-earn-{name}",
        occurred_at=T0,
        now=T0,
    )
    ops.spend(
        session,
        programme=programme,
        member_id=member_id,
        wallet="points",
        amount=debt,
        idempotency_key=f"debt-spend-{name}",
        now=T0,
    )
    returns.return_award(
        session,
        programme=programme,
        transaction_id=earned.id,
        fraction=Decimal(1),
        idempotency_key=f"debt-return-{name}",
        now=T0,
    )


def request(spec: tuple[Any, ...], members: list[uuid.UUID], key: str) -> ops.AwardRequest:
    member, wallet, amount, pending, expiry = spec
    extra: dict[str, Any] = {}
    if pending == "days":
        extra["available_at"] = NOW + timedelta(days=7)
    elif pending == "past":
        extra["available_at"] = NOW - timedelta(days=1)
    elif pending == "hold":
        extra["hold"] = True
    if expiry == "never":
        extra["expires_at"] = None
    elif expiry == "days":
        extra["expires_at"] = NOW + timedelta(days=30)
    return ops.AwardRequest(
        member_id=members[member],
        wallet=wallet,
        amount=Decimal(amount) / 100 if wallet == "cashback" else amount,
        idempotency_key=key,
        occurred_at=NOW - timedelta(hours=member),
        source_type="event",
        source_id=f"evt-{key}",
        rule_id=f"rule-{wallet}",
        rule_version=2,
        **extra,
    )


def one_by_one(session: Session, programme: Programme, requests: list[ops.AwardRequest]) -> None:
    """The single path: ``award`` (one posting each), as the engine posted before."""
    for r in requests:
        ops.award(
            session,
            programme=programme,
            member_id=r.member_id,
            wallet=r.wallet,
            amount=r.amount,
            idempotency_key=r.idempotency_key,
            occurred_at=r.occurred_at,
            source_type=r.source_type,
            source_id=r.source_id,
            rule_id=r.rule_id,
            rule_version=r.rule_version,
            expires_at=r.expires_at,
            available_at=r.available_at,
            hold=r.hold,
            fresh_key=r.fresh_key,
            now=NOW,
        )


def snapshot(database: Database, programme: Programme, members: list[uuid.UUID]) -> Any:
    """Everything the ledger holds for ``programme``, with ids replaced by positions."""
    with database.transaction(readonly=True) as s:
        pid = programme.id
        codes = {w.id: w.code for w in s.scalars(select(Wallet).where(Wallet.programme_id == pid))}
        accounts = {a.id: a for a in s.scalars(select(Account).where(Account.programme_id == pid))}

        def role(account_id: uuid.UUID) -> tuple[Any, ...]:
            a = accounts[account_id]
            who = members.index(a.member_id) if a.member_id else None
            return (codes[a.wallet_id], a.kind, who)

        txns = s.scalars(
            select(LedgerTransaction)
            .where(LedgerTransaction.programme_id == pid)
            .order_by(LedgerTransaction.id)
        ).all()
        t_at = {t.id: i for i, t in enumerate(txns)}
        lots = s.scalars(select(Lot).where(Lot.programme_id == pid).order_by(Lot.id)).all()
        l_at = {lot.id: i for i, lot in enumerate(lots)}
        entries = s.scalars(select(Entry).where(Entry.programme_id == pid).order_by(Entry.id))
        jobs = s.scalars(
            select(Job)
            .where(Job.programme_id == pid, Job.kind.in_([RELEASE_JOB, EXPIRE_JOB]))
            .order_by(Job.id)
        )
        report = verify(s, programme_id=pid)
        return {
            "transactions": [
                (
                    codes[t.wallet_id],
                    members.index(t.member_id) if t.member_id else None,
                    t.kind,
                    t.idempotency_key,
                    t.source_type,
                    t.source_id,
                    t.rule_id,
                    t.rule_version,
                    t.reason,
                    t_at.get(t.reverses_id) if t.reverses_id else None,
                    t.occurred_at,
                    t.posted_at,
                    t.details,
                )
                for t in txns
            ],
            "lots": [
                (
                    role(lot.account_id),
                    t_at[lot.transaction_id],
                    lot.amount,
                    lot.remaining,
                    lot.pending,
                    lot.available_at,
                    lot.expires_at,
                    lot.created_at,
                )
                for lot in lots
            ],
            "entries": [
                (
                    t_at[e.transaction_id],
                    role(e.account_id),
                    l_at[e.lot_id] if e.lot_id else None,
                    e.pending,
                    e.amount,
                    e.effective_at,
                )
                for e in entries
            ],
            "accounts": sorted(
                (
                    role(a.id),
                    a.allows_debt,
                    a.available,
                    a.pending,
                    a.lifetime_earned,
                    a.lifetime_spent,
                    a.lifetime_expired,
                )
                for a in accounts.values()
                if a.member_id is not None
            ),
            "jobs": [
                (
                    j.kind,
                    l_at[uuid.UUID(j.payload["lot_id"])],
                    j.due_at,
                    j.status,
                    j.attempts,
                    j.max_attempts,
                    j.idempotency_key,
                )
                for j in jobs
            ],
            "verify": (report.ok, report.transactions, report.accounts, report.lots),
        }


award_spec = st.tuples(
    st.integers(0, 3),
    st.sampled_from(WALLETS),
    st.integers(1, 400),
    st.sampled_from(["policy", "days", "past", "hold"]),
    st.sampled_from(["policy", "never", "days"]),
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(award_spec, min_size=1, max_size=24),
    st.lists(st.integers(0, 500), min_size=4, max_size=4),
)
def test_award_many_writes_what_the_awards_one_by_one_write(
    database: Database, specs: list[tuple[Any, ...]], debts: list[int]
) -> None:
    results = []
    for set_based in (True, False):
        programme, members = ledger_programme(database)
        with database.transaction() as session:
            for i, (member_id, debt) in enumerate(zip(members, debts, strict=True)):
                if debt:
                    into_debt(session, programme, member_id, debt, f"m{i}")
        requests = [request(spec, members, f"k{i}") for i, spec in enumerate(specs)]
        with database.transaction() as session:
            if set_based:
                ids = ops.award_many(session, programme=programme, awards=requests, now=NOW)
                assert len(ids) == len(requests)
            else:
                one_by_one(session, programme, requests)
        results.append(snapshot(database, programme, members))
    many, single = results
    assert many["verify"][0], "ledger verify found problems"
    for part in single:
        assert many[part] == single[part], part


def test_an_account_in_debt_repays_it_first(database: Database) -> None:
    programme, members = ledger_programme(database)
    debtor, other = members[0], members[1]
    with database.transaction() as session:
        into_debt(session, programme, debtor, 150)
    assert balance(database, programme, debtor) == (-150, 0)
    awards = [
        ops.AwardRequest(member_id=debtor, wallet="points", amount=100, idempotency_key="a"),
        ops.AwardRequest(member_id=other, wallet="points", amount=70, idempotency_key="b"),
        ops.AwardRequest(member_id=debtor, wallet="points", amount=80, idempotency_key="c"),
    ]
    with database.transaction() as session:
        ids = ops.award_many(session, programme=programme, awards=awards, now=NOW)
    assert balance(database, programme, debtor) == (30, 0)
    assert balance(database, programme, other) == (70, 0)
    with database.transaction(readonly=True) as session:
        lots = {
            lot.transaction_id: lot.remaining
            for lot in session.scalars(select(Lot).where(Lot.transaction_id.in_(ids)))
        }
        assert verify(session, programme_id=programme.id).ok
    # the first award repays 100 of the 150, the second 50 of its 80; the other member owes none
    assert [lots[i] for i in ids] == [0, 70, 30]


def test_all_or_nothing(database: Database) -> None:
    programme, members = ledger_programme(database)
    with database.transaction() as session:
        ops.award(
            session,
            programme=programme,
            member_id=members[0],
            wallet="points",
            amount=10,
            idempotency_key="used",
            now=NOW,
        )
    before = snapshot(database, programme, members)

    def attempt(*awards: ops.AwardRequest) -> None:
        with database.transaction() as session:
            ops.award_many(session, programme=programme, awards=awards, now=NOW)

    fine = ops.AwardRequest(member_id=members[1], wallet="points", amount=5, idempotency_key="x")
    with pytest.raises(AlreadyPosted):
        attempt(fine, ops.AwardRequest(members[2], "points", 5, idempotency_key="used"))
    with pytest.raises(AlreadyPosted):
        attempt(fine, ops.AwardRequest(members[2], "points", 5, idempotency_key="x"))
    big = [
        ops.AwardRequest(members[3], "status", MAX_POSTING, idempotency_key=f"big{i}")
        for i in range(MAX_BALANCE // MAX_POSTING + 1)
    ]
    with pytest.raises(BalanceLimit):
        attempt(fine, *big)
    assert snapshot(database, programme, members) == before


def test_deferred_awards_are_flushed_before_the_ledger_is_read(database: Database) -> None:
    programme, members = ledger_programme(database)
    with database.transaction() as session:
        deferred = ops.DeferredAwards(session, programme=programme, now=NOW)
        deferred.add(ops.AwardRequest(members[0], "points", 40, idempotency_key="d1"))
        deferred.add(ops.AwardRequest(members[0], "points", 60, idempotency_key="d2"))
        with pytest.raises(AlreadyPosted):
            deferred.add(ops.AwardRequest(members[1], "points", 1, idempotency_key="d2"))
        assert len(deferred) == 2
        # a spend locks the account: both awards are posted first, in their order
        ops.spend(
            session,
            programme=programme,
            member_id=members[0],
            wallet="points",
            amount=90,
            idempotency_key="s",
            now=NOW,
        )
        assert len(deferred) == 0
        deferred.add(ops.AwardRequest(members[1], "points", 5, idempotency_key="d3"))
        deferred.flush()
        deferred.close()
    assert balance(database, programme, members[0]) == (10, 0)
    assert balance(database, programme, members[1]) == (5, 0)
    with database.transaction(readonly=True) as session:
        keys = session.scalars(
            select(LedgerTransaction.idempotency_key)
            .where(LedgerTransaction.programme_id == programme.id)
            .order_by(LedgerTransaction.id)
        ).all()
        assert verify(session, programme_id=programme.id).ok
    assert keys == ["d1", "d2", "s", "d3"]


def test_deferred_awards_of_a_rolled_back_savepoint_are_dropped(database: Database) -> None:
    programme, members = ledger_programme(database)
    with database.transaction() as session:
        savepoint = session.begin_nested()
        deferred = ops.DeferredAwards(session, programme=programme, now=NOW)
        deferred.add(ops.AwardRequest(members[0], "points", 40, idempotency_key="gone"))
        savepoint.rollback()
        assert deferred.flush() == []
        # nothing is registered any more: the next read does not post them
        ops.award(
            session,
            programme=programme,
            member_id=members[1],
            wallet="points",
            amount=3,
            idempotency_key="kept",
            now=NOW,
        )
    assert balance(database, programme, members[0]) == (0, 0)
    assert balance(database, programme, members[1]) == (3, 0)


def test_deferred_awards_are_not_flushed_inside_a_newer_savepoint(database: Database) -> None:
    programme, members = ledger_programme(database)
    with database.transaction() as session:
        deferred = ops.DeferredAwards(session, programme=programme, now=NOW)
        deferred.add(ops.AwardRequest(members[0], "points", 40, idempotency_key="p"))
        with pytest.raises(RuntimeError), session.begin_nested():
            deferred.flush()
        assert len(deferred) == 1
        deferred.flush()
        deferred.close()
    assert balance(database, programme, members[0]) == (40, 0)


def test_accounts_held_by_the_session_see_the_new_balances(database: Database) -> None:
    programme, members = ledger_programme(database)
    with database.transaction() as session:
        ops.award(
            session,
            programme=programme,
            member_id=members[0],
            wallet="points",
            amount=5,
            idempotency_key="first",
            now=NOW,
        )
        wallet = wallets.get_wallet(session, programme=programme, code="points")
        held = session.scalar(
            select(Account).where(Account.wallet_id == wallet.id, Account.member_id == members[0])
        )
        assert held is not None
        assert held.available == 5
        ops.award_many(
            session,
            programme=programme,
            awards=[ops.AwardRequest(members[0], "points", 7, idempotency_key="second")],
            now=NOW,
        )
        assert (held.available, held.lifetime_earned) == (12, 12)
        assert held not in session.dirty


def test_a_failed_flush_keeps_the_deferred_awards(database: Database) -> None:
    """A flush refused (a balance beyond the bound) posts nothing and keeps every award, so
    the next flush fails too: no event stands without its awards."""
    programme, members = ledger_programme(database)
    big = MAX_BALANCE // MAX_POSTING + 1
    with database.transaction() as session:
        deferred = ops.DeferredAwards(session, programme=programme, now=NOW)
        deferred.add(ops.AwardRequest(members[0], "points", 5, idempotency_key="small"))
        for i in range(big):
            deferred.add(ops.AwardRequest(members[1], "status", MAX_POSTING, f"big{i}"))
        for _ in range(2):
            with pytest.raises(BalanceLimit):
                deferred.flush()
            assert len(deferred) == 1 + big
        deferred.truncate(1)  # the event that planned the big ones is refused
        assert len(deferred.flush()) == 1
        deferred.close()
    assert balance(database, programme, members[0]) == (5, 0)
    assert balance(database, programme, members[1], "status") == (0, 0)


def test_many_accounts_are_locked_chunk_after_chunk(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond one query's worth of accounts (2,000; 3 here), the accounts are looked up, then
    locked by id in order, chunk after chunk; new and existing accounts alike."""
    programme, members = ledger_programme(database)
    with database.transaction() as session:
        ops.award(
            session,
            programme=programme,
            member_id=members[2],
            wallet="cashback",
            amount=1,
            idempotency_key="existing",
            now=NOW,
        )
    monkeypatch.setattr(repository, "_PAIRS_PER_QUERY", 3)
    awards = [
        ops.AwardRequest(member_id, wallet, 2, idempotency_key=f"{wallet}-{i}")
        for i, member_id in enumerate(members)
        for wallet in ("points", "cashback")
    ]
    for round_ in range(2):  # the accounts are created, then found
        with database.transaction() as session:
            again = [replace(a, idempotency_key=f"{a.idempotency_key}-{round_}") for a in awards]
            ops.award_many(session, programme=programme, awards=again, now=NOW)
    cents = [balance(database, programme, m, "cashback")[0] for m in members]
    assert cents == [400, 400, 500, 400]
    assert [balance(database, programme, m)[0] for m in members] == [4] * 4
    with database.transaction(readonly=True) as session:
        assert verify(session, programme_id=programme.id).ok
