"""The dashboard's points figures from the daily ledger aggregate (issue 15).

Given the small known ledger of ``test_kpis`` and ``test_ledger_daily`` (earns, a spend, a gift
that expired, a return, cashback, a pending award), postings a few hours either side of
midnight on the first of a month (local midnight is not UTC's in most time zones), the
aggregate refreshed at a watermark, then a posting committed late within the refresh's overlap
and one posted after the watermark for a day long past: the points issued, redeemed and
expired over a period and by local month, and the liability, equal plain Python over the
ledger's transactions and entries in every time zone and period tried; the whole days are read
from the aggregate, the others from the ledger.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from fidelia.analytics import aggregates
from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.ledger import operations
from fidelia.ledger.wallets import from_minor
from fidelia.models import Account, Entry, LedgerDay, LedgerTransaction, Programme, Wallet
from fidelia.web import figures
from tests.analytics.test_kpis import _load
from tests.analytics.test_ledger_daily import _late, _more, _refresh
from tests.fixtures.factories import Api

ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham")
PERIODS = [  # start, end (excluded), local days
    (date(2025, 1, 1), date(2025, 4, 1)),
    (date(2025, 1, 15), date(2025, 3, 20)),
    (date(2025, 2, 1), date(2025, 3, 1)),
    (date(2025, 3, 1), date(2025, 3, 2)),
    (date(2024, 12, 1), date(2025, 12, 1)),
]
KINDS = ("earn", "spend", "expire")
AFTER = datetime(2025, 2, 10, 12, tzinfo=UTC)  # the day of the posting after the watermark


def _post(database: Database, programme: Programme, ids: dict[str, str]) -> None:
    """Earns and a spend a few hours either side of UTC midnight on the first of a month."""
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        for who, amount, at in (
            ("a", 13, datetime(2025, 2, 28, 20, tzinfo=UTC)),  # 1 March in Kolkata, Chatham
            ("c", 17, datetime(2025, 3, 1, 3, tzinfo=UTC)),  # 28 February in New York
            ("b", 23, datetime(2025, 1, 31, 22, 30, tzinfo=UTC)),
        ):
            operations.award(
                session, programme=found, member_id=uuid.UUID(ids[who]), wallet="points",
                amount=amount, idempotency_key=f"edge-{who}", occurred_at=at, rule_id="edge",
                source_type="adjustment", now=at,
            )  # fmt: skip
        at = datetime(2025, 3, 31, 23, tzinfo=UTC)  # 1 April in Kolkata, 31 March in New York
        operations.spend(
            session, programme=found, member_id=uuid.UUID(ids["c"]), wallet="points", amount=9,
            idempotency_key="edge-spend-c", occurred_at=at, now=at,
        )  # fmt: skip


def _after(database: Database, programme: Programme, member: str, posted: datetime) -> None:
    """19 points for 10 February 2025, posted at ``posted`` (after the aggregate's
    watermark)."""
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        operations.award(
            session, programme=found, member_id=uuid.UUID(member), wallet="points", amount=19,
            idempotency_key="after-watermark", occurred_at=AFTER, rule_id="after",
            source_type="adjustment", now=posted,
        )  # fmt: skip


def _ledger(database: Database, programme: Programme) -> dict[str, Any]:
    with database.transaction(readonly=True) as session:
        wallet = session.scalars(
            select(Wallet).where(Wallet.programme_id == programme.id, Wallet.code == "points")
        ).one()
        accounts = {a.id for a in session.scalars(select(Account).where(
            Account.wallet_id == wallet.id, Account.member_id.is_not(None)))}  # fmt: skip
        mine = LedgerTransaction.programme_id == programme.id
        txns = {t.id: t for t in session.scalars(select(LedgerTransaction).where(mine))}
        entries = session.scalars(select(Entry).where(Entry.programme_id == programme.id)).all()
        session.expunge(wallet)
    return {"wallet": wallet, "accounts": accounts, "txns": txns, "entries": entries}


def _expected(ledger: dict[str, Any], tz: ZoneInfo, start: date, end: date) -> dict[str, Any]:
    """The figures in plain Python over every entry: members' entries of the wallet's
    transactions of each kind, by local month from the first of ``start``'s month; totals from
    ``start``; the liability as the positive available balances summed from the entries."""
    since = datetime.combine(start, time(), tzinfo=tz)
    until = datetime.combine(end, time(), tzinfo=tz)
    lo = datetime.combine(start.replace(day=1), time(), tzinfo=tz)
    wallet = ledger["wallet"]
    totals = dict.fromkeys(KINDS, 0)
    months: dict[date, dict[str, int]] = {}
    balances: dict[uuid.UUID, int] = {}
    for e in ledger["entries"]:
        if e.account_id not in ledger["accounts"]:
            continue
        if not e.pending:
            balances[e.account_id] = balances.get(e.account_id, 0) + e.amount
        t = ledger["txns"][e.transaction_id]
        if t.wallet_id != wallet.id or t.kind not in KINDS or not lo <= t.occurred_at < until:
            continue
        month = t.occurred_at.astimezone(tz).date().replace(day=1)
        months.setdefault(month, dict.fromkeys(KINDS, 0))[t.kind] += e.amount
        if t.occurred_at >= since:
            totals[t.kind] += e.amount
    liability = sum(b for b in balances.values() if b > 0)
    money = None
    if wallet.unit_value:
        money = (Decimal(from_minor(wallet, liability)) * wallet.unit_value).quantize(
            Decimal("0.01")
        )
    by_month = []
    first = start.replace(day=1)
    while first < end:
        m = months.get(first, dict.fromkeys(KINDS, 0))
        by_month.append((first, m["earn"], -m["spend"], -m["expire"]))
        first = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return {
        "issued": totals["earn"],
        "redeemed": -totals["spend"],
        "expired": -totals["expire"],
        "months": by_month,
        "liability": (liability, money),
    }


def _got(database: Database, programme: Programme, zone: str, start: date, end: date) -> Any:
    with database.transaction(readonly=True) as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        session.expunge(found)
        found.timezone = zone  # the figures read only the programme's id and time zone
        wallet = session.scalars(
            select(Wallet).where(Wallet.programme_id == programme.id, Wallet.code == "points")
        ).one()
        return figures.compute(session, programme=found, wallet=wallet, start=start, end=end)


def _aggregated(database: Database, programme: Programme, day: date) -> int:
    with database.transaction(readonly=True) as session:
        found = session.scalar(
            select(LedgerDay.amount).where(
                LedgerDay.programme_id == programme.id, LedgerDay.day == day,
                LedgerDay.kind == "earn", LedgerDay.rule_id == "after",
            )
        )  # fmt: skip
    return int(found or 0)


def _check(database: Database, programme: Programme) -> int:
    ledger = _ledger(database, programme)
    checked = 0
    for zone in ZONES:
        for start, end in PERIODS:
            want = _expected(ledger, ZoneInfo(zone), start, end)
            got = _got(database, programme, zone, start, end)
            where = (zone, start, end)
            assert (got.issued, got.redeemed, got.expired) == (
                want["issued"], want["redeemed"], want["expired"],
            ), where  # fmt: skip
            months = [(m.start, m.issued, m.redeemed, m.expired) for m in got.months]
            assert months == want["months"], where
            assert (got.liability_points, got.liability_money) == want["liability"], where
            checked += 1
    return checked


def test_the_points_figures_equal_the_ledger_in_every_zone_with_postings_after_the_watermark(
    api: Api, database: Database, programme: Programme
) -> None:
    ids = _load(api, database, programme)
    _more(api, database, programme, ids)
    _post(database, programme, ids)
    watermark = utcnow() + timedelta(hours=1)  # everything so far posted before it
    _refresh(database, programme, watermark)
    _late(database, programme, ids["b"], watermark - timedelta(minutes=5))  # a late commit
    _after(database, programme, ids["c"], watermark + timedelta(minutes=1))
    assert _aggregated(database, programme, AFTER.date()) == 0  # not in the aggregate yet
    assert _check(database, programme) == len(ZONES) * len(PERIODS)
    feb = _got(database, programme, "UTC", date(2025, 2, 1), date(2025, 3, 1))
    assert feb.issued >= 19 + 11 + 13  # the posting after the watermark, the late one, an edge
    _refresh(database, programme, watermark + timedelta(hours=1))  # the next hourly job
    assert _aggregated(database, programme, AFTER.date()) == 19
    assert _check(database, programme) == len(ZONES) * len(PERIODS)


def test_whole_days_come_from_the_aggregate_and_the_rest_from_the_ledger(
    api: Api, database: Database, programme: Programme
) -> None:
    """A day row of the aggregate is what the page reads for a whole day inside a month, and
    for the longest part of a day a local midnight cuts (the rest is read from the ledger and
    taken off the row): an amount added to either row shows in the figures, in the month of
    that part; a day posted to after the watermark is read from the ledger, so the same change
    there does not show."""
    ids = _load(api, database, programme)
    _post(database, programme, ids)
    watermark = utcnow() + timedelta(hours=1)  # everything so far posted before it
    _refresh(database, programme, watermark)
    _after(database, programme, ids["c"], watermark + timedelta(minutes=1))
    start, end = date(2025, 1, 1), date(2025, 4, 1)
    before = _got(database, programme, "America/New_York", start, end)
    for day in (date(2025, 2, 15), date(2025, 3, 1), AFTER.date()):
        with database.transaction() as session:  # 1,000 more points on the day's earn rows
            session.execute(
                text("""UPDATE analytics_ledger_daily SET amount = amount + 1000
                  WHERE programme_id = :pid AND day = :day AND kind = 'earn'""").bindparams(
                    aggregates.PID
                ),
                {"pid": programme.id, "day": day},
            )
    after = _got(database, programme, "America/New_York", start, end)
    rows = 0
    with database.transaction(readonly=True) as session:
        for day in (date(2025, 2, 15), date(2025, 3, 1), AFTER.date()):
            rows += len(
                session.scalars(
                    select(LedgerDay.rule_id).where(
                        LedgerDay.programme_id == programme.id, LedgerDay.day == day,
                        LedgerDay.kind == "earn",
                    )
                ).all()
            )  # fmt: skip
    assert rows >= 2  # 15 February (c's purchase) and 1 March (the edge earn) have rows
    feb, mar = 1, 2  # indexes in the months shown
    assert after.issued - before.issued == 2000  # 15 February, 1 March (05:00 UTC onwards)
    assert after.months[feb].issued - before.months[feb].issued == 1000
    assert after.months[mar].issued - before.months[mar].issued == 1000


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata"])
def test_a_never_built_aggregate_reads_the_ledger(
    api: Api, database: Database, programme: Programme, zone: str
) -> None:
    ids = _load(api, database, programme)
    _post(database, programme, ids)
    ledger = _ledger(database, programme)
    start, end = date(2025, 1, 15), date(2025, 4, 1)
    want = _expected(ledger, ZoneInfo(zone), start, end)
    got = _got(database, programme, zone, start, end)
    assert (got.issued, got.redeemed, got.expired) == (
        want["issued"], want["redeemed"], want["expired"],
    )  # fmt: skip
    assert [(m.start, m.issued, m.redeemed, m.expired) for m in got.months] == want["months"]
