"""The daily ledger aggregate behind the points economy KPIs (migration 0029).

Given the small known ledger of ``test_kpis`` (earns under a rule, a spend, a gift that
expired), a return taking points back, a cashback award and a pending award; when a posting
commits late (posted before the last refresh's watermark, within the overlap) and another
arrives after it; then the incrementally refreshed aggregate equals a rebuild, the points
economy of several periods equals plain Python over the ledger's own transactions and
entries, the outstanding balance equals the members' as-of balances and (today) the cached
balances that ``ledger verify`` checks, and a reader's ``fresh`` sees a new posting.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from fidelia.analytics import aggregates, kpis
from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.ledger import operations
from fidelia.ledger.balances import balance_as_of
from fidelia.ledger.verify import verify
from fidelia.models import Account, AnalyticsState, Entry, LedgerTransaction, Programme, Wallet
from tests.analytics.test_kpis import _load
from tests.fixtures.events import return_of, returned
from tests.fixtures.factories import Api

COLUMNS = "day, wallet_id, kind, rule_id, transactions, amount, pending"


def _rows(database: Database, programme: Programme) -> list[tuple[str, ...]]:
    query = text(f"SELECT {COLUMNS} FROM analytics_ledger_daily WHERE programme_id = :pid")
    with database.transaction(readonly=True) as session:
        found = session.execute(query.bindparams(aggregates.PID), {"pid": programme.id})
        return sorted(tuple(str(v) for v in row) for row in found)


def _refresh(database: Database, programme: Programme, now: datetime) -> None:
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        aggregates.refresh(session, programme=found, now=now)


def _more(api: Api, database: Database, programme: Programme, ids: dict[str, str]) -> None:
    """A return of one of a's 40 € (3 March), 5.00 of cashback to c, 30 pending points to d."""
    back = return_of({"id": ids["a"]}, "o-2", [returned("sku", 1)],
                     occurred_at=datetime(2025, 3, 10, 9, tzinfo=UTC))  # fmt: skip
    assert api.post("/events", json=back, scope="integration").status_code == 201
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        operations.award(
            session, programme=found, member_id=uuid.UUID(ids["c"]), wallet="cashback",
            amount=5, idempotency_key="cash-c", occurred_at=datetime(2025, 2, 12, tzinfo=UTC),
            rule_id="cash", source_type="adjustment",
        )  # fmt: skip
        operations.award(
            session, programme=found, member_id=uuid.UUID(ids["d"]), wallet="points",
            amount=30, idempotency_key="pending-d", occurred_at=datetime(2025, 3, 20, tzinfo=UTC),
            available_at=datetime(2099, 1, 1, tzinfo=UTC), rule_id="welcome",
            source_type="adjustment",
        )  # fmt: skip


def _late(database: Database, programme: Programme, member: str, posted: datetime) -> None:
    """11 points to ``member`` for 14 February, posted (``now``) at ``posted``."""
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        operations.award(
            session, programme=found, member_id=uuid.UUID(member), wallet="points", amount=11,
            idempotency_key=f"late-{posted.isoformat()}", rule_id="late",
            occurred_at=datetime(2025, 2, 14, 15, tzinfo=UTC), source_type="adjustment",
            now=posted,
        )  # fmt: skip


def _from_the_ledger(database: Database, programme: Programme, start: date, end: date) -> Any:
    """Per wallet code: the flows of the period by kind, earns by rule, and the member
    accounts' balance at its end, in plain Python over every transaction and entry."""
    lo = datetime(start.year, start.month, start.day, tzinfo=UTC)
    hi = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    with database.transaction(readonly=True) as session:
        wallets = {w.id: w.code for w in session.scalars(
            select(Wallet).where(Wallet.programme_id == programme.id))}  # fmt: skip
        members = {a.id: a.wallet_id for a in session.scalars(
            select(Account).where(Account.programme_id == programme.id,
                                  Account.member_id.is_not(None)))}  # fmt: skip
        mine = LedgerTransaction.programme_id == programme.id
        txns = {t.id: t for t in session.scalars(select(LedgerTransaction).where(mine))}
        entries = session.scalars(select(Entry).where(Entry.programme_id == programme.id)).all()
    answer: dict[str, dict[str, Any]] = {
        code: {"kinds": {}, "rules": {}, "held": 0} for code in wallets.values()
    }
    for e in entries:
        if e.account_id not in members:
            continue
        w = answer[wallets[members[e.account_id]]]
        t = txns[e.transaction_id]
        if e.effective_at < hi:
            w["held"] += e.amount
        if lo <= t.occurred_at < hi and t.kind != "release":
            w["kinds"][t.kind] = w["kinds"].get(t.kind, 0) + e.amount
            if t.kind == "earn":
                w["rules"][t.rule_id] = w["rules"].get(t.rule_id, 0) + e.amount
    return answer


def _check_points(database: Database, programme: Programme, start: date, end: date) -> None:
    expected = _from_the_ledger(database, programme, start, end)
    with database.transaction(readonly=True) as session:
        span = kpis.period(start, end)
        got = {w.wallet: w for w in kpis.points(session, programme.id, span)}
    assert set(got) == set(expected)
    for code, w in got.items():
        k = expected[code]["kinds"]
        assert w.issued == k.get("earn", 0), (code, start, end)
        assert w.redeemed == -k.get("spend", 0)
        assert w.expired == -k.get("expire", 0)
        assert w.returned == -(k.get("return", 0) + k.get("reverse", 0))
        assert w.adjusted == k.get("adjust", 0) + k.get("transfer", 0)
        assert w.outstanding_at_end == expected[code]["held"], (code, start, end)
        rules = {r.rule: r.issued for r in w.by_rule}
        assert rules == {r: n for r, n in expected[code]["rules"].items() if n}


def test_late_postings_refresh_incrementally_to_what_a_rebuild_gives(
    api: Api, database: Database, programme: Programme
) -> None:
    ids = _load(api, database, programme)
    _more(api, database, programme, ids)
    t0 = utcnow()
    _refresh(database, programme, t0)  # the first: a full build
    # committed after the refresh, though posted 5 minutes before its watermark (within the
    # overlap), for a day already aggregated; then an ordinary one after the watermark
    _late(database, programme, ids["b"], t0 - timedelta(minutes=5))
    _late(database, programme, ids["c"], t0 + timedelta(seconds=30))
    _refresh(database, programme, t0 + timedelta(minutes=1))
    incremental = _rows(database, programme)
    feb14 = [r for r in incremental if r[0] == "2025-02-14" and r[3] == "late"]
    assert [(r[4], r[5]) for r in feb14] == [("2", "22")]  # both late postings are counted once
    with database.transaction() as session:
        session.execute(
            update(AnalyticsState)
            .where(AnalyticsState.programme_id == programme.id)
            .values(ledger_to=None)
        )
    _refresh(database, programme, t0 + timedelta(minutes=2))
    assert _rows(database, programme) == incremental
    kinds = {r[2] for r in incremental}
    assert {"earn", "spend", "expire", "return"} <= kinds


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2025, 1, 1), date(2025, 3, 31)),
        (date(2025, 2, 14), date(2025, 2, 14)),  # one day: the late posting's
        (date(2025, 3, 6), date(2025, 3, 15)),  # the expiry and the return, not the spend
        (date(2024, 1, 1), date(2024, 12, 31)),  # before anything
    ],
)
def test_the_points_economy_equals_the_ledger_and_its_balances(
    api: Api, database: Database, programme: Programme, start: date, end: date
) -> None:
    ids = _load(api, database, programme)
    _more(api, database, programme, ids)
    t0 = utcnow()
    _refresh(database, programme, t0)
    _late(database, programme, ids["b"], t0 - timedelta(minutes=5))
    _refresh(database, programme, t0 + timedelta(minutes=1))
    _check_points(database, programme, start, end)
    until = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    with database.transaction(readonly=True) as session:
        got = {w.wallet: w for w in kpis.points(session, programme.id, kpis.period(start, end))}
        accounts = session.scalars(
            select(Account).where(
                Account.programme_id == programme.id, Account.member_id.is_not(None)
            )
        ).all()
        wallets = {w.id: w.code for w in session.scalars(select(Wallet).where(
            Wallet.programme_id == programme.id))}  # fmt: skip
        as_of: dict[str, int] = {}
        for a in accounts:  # the ledger's own as-of balances, account by account
            held = sum(balance_as_of(session, account=a, as_of=until - timedelta(microseconds=1)))
            as_of[wallets[a.wallet_id]] = as_of.get(wallets[a.wallet_id], 0) + held
    assert {c: w.outstanding_at_end for c, w in got.items() if as_of.get(c)} == {
        c: n for c, n in as_of.items() if n
    }


def test_outstanding_today_equals_the_cached_balances_verify_checks(
    api: Api, database: Database, programme: Programme
) -> None:
    ids = _load(api, database, programme)
    _more(api, database, programme, ids)
    _refresh(database, programme, utcnow())
    today = utcnow().date()
    with database.transaction(readonly=True) as session:
        assert verify(session, programme_id=programme.id).ok
        got = {w.wallet: w for w in kpis.points(session, programme.id, kpis.period(today, today))}
        accounts = session.scalars(
            select(Account).where(
                Account.programme_id == programme.id, Account.member_id.is_not(None)
            )
        ).all()
        wallets = {w.id: w.code for w in session.scalars(select(Wallet).where(
            Wallet.programme_id == programme.id))}  # fmt: skip
    cached: dict[str, int] = {}
    for a in accounts:
        cached[wallets[a.wallet_id]] = cached.get(wallets[a.wallet_id], 0) + a.available + a.pending
    assert {c: w.outstanding_at_end for c, w in got.items()} == {c: cached.get(c, 0) for c in got}
    assert got["points"].outstanding_at_end > 0
    assert got["cashback"].outstanding_at_end == 500


def test_fresh_sees_a_new_posting(api: Api, database: Database, programme: Programme) -> None:
    ids = _load(api, database, programme)
    assert aggregates.fresh(database, programme=programme)  # never refreshed: it builds
    assert not aggregates.fresh(database, programme=programme)  # nothing new
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        operations.award(
            session, programme=found, member_id=uuid.UUID(ids["a"]), wallet="points",
            amount=3, idempotency_key="fresh-a", source_type="adjustment", rule_id="fresh",
        )  # fmt: skip
    assert aggregates.fresh(database, programme=programme)  # the ledger moved: it refreshes
    today = utcnow().date()
    with database.transaction(readonly=True) as session:
        points = next(
            w for w in kpis.points(session, programme.id, kpis.period(today, today))
            if w.wallet == "points"
        )  # fmt: skip
    assert [(r.rule, r.issued) for r in points.by_rule if r.rule == "fresh"] == [("fresh", 3)]
