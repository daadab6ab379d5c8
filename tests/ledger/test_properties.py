"""Property: any sequence of earn / spend / release / expire / return / transfer / adjust /
reverse keeps every invariant -- zero-sum transactions, caches equal to the journal, lots
consistent with balances, no negative balance without a debt policy, failed operations change
nothing, and the balance as of each past instant equals the replay of the entries up to it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from fidelia.db import Database
from fidelia.errors import FideliaError
from fidelia.ledger import operations as ops
from fidelia.ledger import returns, wallets
from fidelia.ledger.balances import balance_as_of
from fidelia.ledger.repository import find_member_account
from fidelia.models import LedgerTransaction, Lot, Programme
from tests.fixtures.factories import make_member, make_programme
from tests.ledger.conftest import T0, assert_verified

WALLETS = ("points", "cashback")  # allow_debt and clamp
member = st.integers(0, 2)
wallet = st.sampled_from(WALLETS)
amount = st.integers(1, 300)
operation = st.one_of(
    st.tuples(
        st.just("earn"),
        member,
        wallet,
        amount,
        st.sampled_from(["now", "days", "hold"]),
        st.integers(1, 6),
    ),
    st.tuples(st.just("spend"), member, wallet, amount),
    st.tuples(st.just("adjust"), member, wallet, st.integers(-200, 200).filter(bool)),
    st.tuples(st.just("transfer"), member, member, wallet, amount),
    st.tuples(
        st.just("return"), st.integers(0, 50), st.sampled_from(["0.25", "0.5", "1", "0.333"])
    ),
    st.tuples(st.just("reverse"), st.integers(0, 50)),
    st.tuples(st.just("release"), st.integers(0, 50)),
)


def _apply(
    s: Any, p: Programme, op: tuple[Any, ...], members: list[uuid.UUID], now: datetime, key: str
) -> None:
    kind = op[0]
    if kind == "earn":
        _, m, w, a, pend, days = op
        extra: dict[str, Any] = {"expires_at": now + timedelta(days=days, hours=1)}
        if pend == "days":
            extra["available_at"] = now + timedelta(days=days)
        extra["hold"] = pend == "hold"
        ops.award(
            s,
            programme=p,
            member_id=members[m],
            wallet=w,
            amount=a,
            idempotency_key=key,
            now=now,
            **extra,
        )
    elif kind == "spend":
        ops.spend(
            s,
            programme=p,
            member_id=members[op[1]],
            wallet=op[2],
            amount=op[3],
            idempotency_key=key,
            now=now,
        )
    elif kind == "adjust":
        ops.adjust(
            s,
            programme=p,
            member_id=members[op[1]],
            wallet=op[2],
            amount=op[3],
            reason="r",
            actor="a",
            idempotency_key=key,
            now=now,
        )
    elif kind == "transfer":
        ops.transfer(
            s,
            programme=p,
            from_member_id=members[op[1]],
            to_member_id=members[op[2]],
            wallet=op[3],
            amount=op[4],
            idempotency_key=key,
            now=now,
        )
    else:
        _apply_to_existing(s, p, op, now, key)


def _apply_to_existing(s: Any, p: Programme, op: tuple[Any, ...], now: datetime, key: str) -> None:
    kind = op[0]
    if kind == "release":
        lots = list(
            s.scalars(
                select(Lot.id).where(Lot.programme_id == p.id, Lot.pending > 0).order_by(Lot.id)
            )
        )
        if lots:
            ops.release_lot(s, programme=p, lot_id=lots[op[1] % len(lots)], now=now)
        return
    wanted = ["earn"] if kind == "return" else ["earn", "spend", "adjust", "transfer", "expire"]
    txns = list(
        s.scalars(
            select(LedgerTransaction.id)
            .where(LedgerTransaction.programme_id == p.id, LedgerTransaction.kind.in_(wanted))
            .order_by(LedgerTransaction.id)
        )
    )
    if not txns:
        return
    target = txns[op[1] % len(txns)]
    if kind == "return":
        returns.return_award(
            s,
            programme=p,
            transaction_id=target,
            fraction=Decimal(op[2]),
            idempotency_key=key,
            now=now,
        )
    else:
        returns.reverse(
            s,
            programme=p,
            transaction_id=target,
            idempotency_key=key,
            reason="r",
            actor="a",
            now=now,
        )


def _balances(
    db: Database, p: Programme, members: list[uuid.UUID]
) -> dict[tuple[int, str], tuple[int, int]]:
    out = {}
    with db.transaction(readonly=True) as s:
        for code in WALLETS:
            w = wallets.get_wallet(s, programme=p, code=code)
            for i, m in enumerate(members):
                a = find_member_account(s, wallet=w, member_id=m)
                out[(i, code)] = (a.available, a.pending) if a else (0, 0)
    return out


def _sweep(db: Database, p: Programme, now: datetime) -> None:
    """A punctual worker: release and expire what is due before the step's operation."""
    with db.transaction() as s:
        to_release, to_expire = ops.due_lots(s, programme=p, now=now)
        for lot_id in to_release:
            ops.release_lot(s, programme=p, lot_id=lot_id, now=now)
        for lot_id in to_expire:
            ops.expire_lot(s, programme=p, lot_id=lot_id, now=now)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(operation, min_size=1, max_size=30))
def test_any_sequence_keeps_the_invariants(
    database: Database, steps: list[tuple[Any, ...]]
) -> None:
    p = make_programme(database)
    with database.transaction() as s:
        wallets.ensure_default_wallets(s, programme=p)
    members = [make_member(database, p).id for _ in range(3)]
    snapshots: list[tuple[datetime, dict[tuple[int, str], tuple[int, int]]]] = []
    for k, op in enumerate(steps):
        now = T0 + timedelta(days=k + 1)
        _sweep(database, p, now)
        before = _balances(database, p, members)
        try:
            with database.transaction() as s:
                _apply(s, p, op, members, now, f"k{k}")
        except FideliaError:
            assert _balances(database, p, members) == before, op
        after = _balances(database, p, members)
        assert all(av >= 0 for (_, code), (av, _) in after.items() if code == "cashback")
        snapshots.append((now, after))
    assert_verified(database, p)
    with database.transaction(readonly=True) as s:
        for code in WALLETS:
            w = wallets.get_wallet(s, programme=p, code=code)
            for i, m in enumerate(members):
                account = find_member_account(s, wallet=w, member_id=m)
                if account is None:
                    continue
                for instant, balances in snapshots:
                    assert balance_as_of(s, account=account, as_of=instant) == balances[(i, code)]
