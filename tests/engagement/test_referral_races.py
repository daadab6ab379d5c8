"""PostgreSQL races: two purchases of a referee at once pay the referral once; two closers of a
leaderboard period at once pay its rewards once."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.engagement import leaderboards
from fidelia.engagement.plus import plus_for
from fidelia.intake import service as intake
from fidelia.models import LedgerTransaction, Programme
from fidelia.models.engagement_plus import LeaderboardPayout
from tests.engagement.test_referrals import REFERRAL, code_of, enrol, points
from tests.fixtures.events import line, purchase
from tests.fixtures.factories import Api

pytestmark = pytest.mark.postgres_only
T = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def in_threads(n: int, work: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # the outcome is what the test checks
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_purchases_at_once_pay_the_referral_once(
    api: Api, database: Database, programme: Programme, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("a race needs PostgreSQL")
    response = api.put("/programme/document", json={"referral": REFERRAL})
    assert response.status_code == 200, response.text
    anna = enrol(api, f"anna-{uuid.uuid4().hex[:6]}@example.com")["id"]
    bob = enrol(api, f"bob-{uuid.uuid4().hex[:6]}@example.com", code_of(api, anna)["code"])["id"]
    with database.transaction() as s:
        p = s.get_one(Programme, programme.id)

    def work(i: int) -> list[Any]:
        payload = purchase(
            {"id": bob}, order_id=f"race-{i}", lines=[line("x", 1, "60.00")],
            occurred_at=T + timedelta(days=1),
        )  # fmt: skip
        with database.transaction() as s:
            outcomes = intake.ingest_payloads(s, programme=p, payloads=[payload])
        return [e["kind"] for o in outcomes for e in o.effects]

    results = in_threads(2, work)

    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sum(kinds.count("referral_qualified") for kinds in results) == 1
    assert points(api, anna) == 500
    assert points(api, bob) == 100 + 200
    with database.transaction() as s:
        paid = s.scalar(
            select(func.count()).where(
                LedgerTransaction.programme_id == programme.id,
                LedgerTransaction.source_type == "referral",
            )
        )
    assert paid == 3  # the welcome gift, the referee's and the referrer's


def test_two_closers_at_once_pay_the_period_once(
    api: Api, database: Database, programme: Programme, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("a race needs PostgreSQL")
    from tests.engagement.test_leaderboards import DOCUMENT, buy, member

    assert api.put("/programme/document", json=DOCUMENT).status_code == 200
    winner = member(api, "Wyn", "Ner")
    buy(api, winner, "70.00", datetime(2026, 6, 3, tzinfo=UTC))
    with database.transaction() as s:
        p = s.get_one(Programme, programme.id)

    def work(i: int) -> bool:
        with database.transaction() as s:
            defs = plus_for(s, p)
            (out,) = leaderboards.close(
                s, programme=p, defs=defs, board=defs.leaderboards["monthly"], period="2026-06",
                now=datetime(2026, 7, 2, tzinfo=UTC),
            )  # fmt: skip
        return out.paid

    results = in_threads(4, work)

    assert sorted(results) == [False, False, False, True], results
    assert points(api, winner) == 70 + 1000
    with database.transaction() as s:
        payouts = s.scalar(
            select(func.count()).where(LeaderboardPayout.programme_id == programme.id)
        )
    assert payouts == 1
