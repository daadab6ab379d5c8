"""Property: any sequence of earn / spend / return / release-expire sweeps / merge / unmerge
keeps the ledger verifiable, creates and loses no points, changes nothing when refused, and an
unmerge right after its merge gives every balance back exactly."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.errors import FideliaError
from fidelia.ledger import operations as ops
from fidelia.ledger import returns, wallets
from fidelia.merges import service as merges
from fidelia.models import Account, Entry, LedgerTransaction, MemberMerge, Programme
from tests.fixtures.factories import make_member, make_programme
from tests.merges.conftest import T0, assert_verified

MEMBERS = 4
member = st.integers(0, MEMBERS - 1)
operation = st.one_of(
    st.tuples(st.just("earn"), member, st.integers(1, 300), st.integers(1, 8), st.booleans()),
    st.tuples(st.just("spend"), member, st.integers(1, 300)),
    st.tuples(st.just("return"), st.integers(0, 40)),
    st.tuples(st.just("merge"), member, member),
    st.tuples(st.just("unmerge"), st.integers(0, 10)),
)


def _apply(s: Any, p: Programme, op: tuple[Any, ...], ids: list[uuid.UUID], now: datetime) -> None:
    kind, key = op[0], f"{op[0]}-{uuid.uuid4()}"
    if kind == "earn":
        _, m, amount, days, pending = op
        extra = {"available_at": now + timedelta(days=days)} if pending else {}
        ops.award(
            s,
            programme=p,
            member_id=ids[m],
            wallet="points",
            amount=amount,
            idempotency_key=key,
            expires_at=now + timedelta(days=days + 2),
            now=now,
            **extra,
        )
    elif kind == "spend":
        ops.spend(
            s, programme=p, member_id=ids[op[1]], wallet="points", amount=op[2],
            idempotency_key=key, now=now,
        )  # fmt: skip
    elif kind == "return":
        earns = list(
            s.scalars(
                select(LedgerTransaction.id)
                .where(LedgerTransaction.programme_id == p.id, LedgerTransaction.kind == "earn")
                .order_by(LedgerTransaction.id)
            )
        )
        if earns:
            returns.return_award(
                s, programme=p, transaction_id=earns[op[1] % len(earns)], fraction=Decimal("0.5"),
                idempotency_key=key, now=now,
            )  # fmt: skip
    elif kind == "merge":
        merges.merge(
            s, programme=p, survivor_id=ids[op[1]], duplicate_id=ids[op[2]], actor="t", now=now
        )
    else:
        found = list(
            s.execute(
                select(MemberMerge.id, MemberMerge.survivor_id)
                .where(MemberMerge.programme_id == p.id)
                .order_by(MemberMerge.id)
            )
        )
        if found:
            merge_id, survivor = found[op[1] % len(found)]
            merges.unmerge(
                s, programme=p, survivor_id=survivor, merge_id=merge_id, actor="t", now=now
            )


def _sweep(db: Database, p: Programme, now: datetime) -> None:
    with db.transaction() as s:
        to_release, to_expire = ops.due_lots(s, programme=p, now=now)
        for lot_id in to_release:
            ops.release_lot(s, programme=p, lot_id=lot_id, now=now)
        for lot_id in to_expire:
            ops.expire_lot(s, programme=p, lot_id=lot_id, now=now)


def _balances(db: Database, p: Programme, ids: list[uuid.UUID]) -> list[tuple[int, int]]:
    """(available, pending) of each member's points account."""
    with db.transaction(readonly=True) as s:
        rows = {
            m: (a, pend)
            for m, a, pend in s.execute(
                select(Account.member_id, Account.available, Account.pending).where(
                    Account.programme_id == p.id, Account.member_id.is_not(None)
                )
            )
        }
    return [rows.get(m, (0, 0)) for m in ids]


def _system_total(db: Database, p: Programme) -> int:
    """What the system accounts hold: minus everything the members hold, if nothing is lost."""
    with db.transaction(readonly=True) as s:
        members = s.scalar(
            select(func.coalesce(func.sum(Account.available + Account.pending), 0)).where(
                Account.programme_id == p.id, Account.member_id.is_not(None)
            )
        )
        system = s.scalar(
            select(func.coalesce(func.sum(Entry.amount), 0))
            .join(Account, Account.id == Entry.account_id)
            .where(Account.programme_id == p.id, Account.member_id.is_(None))
        )
    return int(members or 0) + int(system or 0)


def _newest_merge(db: Database, p: Programme) -> uuid.UUID:
    with db.transaction(readonly=True) as s:
        found = s.scalar(
            select(MemberMerge.id)
            .where(MemberMerge.programme_id == p.id)
            .order_by(MemberMerge.id.desc())
            .limit(1)
        )
    assert found is not None
    return found


def _status(db: Database, merge_id: uuid.UUID) -> str:
    with db.transaction(readonly=True) as s:
        record = s.get(MemberMerge, merge_id)
        assert record is not None
        return record.status


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(operation, min_size=1, max_size=25))
def test_any_sequence_with_merges_keeps_the_ledger_whole(
    database: Database, steps: list[tuple[Any, ...]]
) -> None:
    p = make_programme(database)
    with database.transaction() as s:
        wallets.ensure_default_wallets(s, programme=p)
    ids = [make_member(database, p).id for _ in range(MEMBERS)]
    last_merge: tuple[uuid.UUID, list[tuple[int, int]], list[tuple[int, int]]] | None = None
    for k, op in enumerate(steps):
        now = T0 + timedelta(days=k + 1)
        _sweep(database, p, now)
        before = _balances(database, p, ids)
        try:
            with database.transaction() as s:
                _apply(s, p, op, ids, now)
        except FideliaError:
            assert _balances(database, p, ids) == before, op
            continue
        after = _balances(database, p, ids)
        assert _system_total(database, p) == 0
        if op[0] == "merge":
            last_merge = (_newest_merge(database, p), before, after)
        elif op[0] == "unmerge" and last_merge is not None:
            merge_id, before_merge, after_merge = last_merge
            if before == after_merge and _status(database, merge_id) == "unmerged":
                assert after == before_merge, "an unmerge right after its merge gives all back"
            last_merge = None
        else:
            last_merge = None
    assert_verified(database, p)
