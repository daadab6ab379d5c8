"""Programme-wide limits on the intake path: a rule's budget and its first-N members cap stop
awarding exactly at the cap, one purchase after another and under concurrent first purchases."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.events.schemas import EventOutcome
from fidelia.intake import service as intake
from fidelia.ledger.verify import verify
from fidelia.models import Entry, Event, LedgerTransaction, Member, Programme
from fidelia.programmes import documents
from tests.fixtures.events import line, purchase, ref
from tests.fixtures.factories import Api, make_member, make_programme

FIRST_N, BUDGET = 5, 250
LIMITED: dict[str, Any] = {
    "rules": [
        {"id": "base", "name": "1 € = 1 point", "award": {"kind": "spend", "rate": 1}},
        {
            "id": "first-five",
            "name": "+100 points for the first five members who buy",
            "first_n_members": FIRST_N,
            "award": {"kind": "fixed", "amount": 100},
        },
        {
            "id": "launch",
            "name": "+30 points per purchase, 250 points in all",
            "budget": BUDGET,
            "award": {"kind": "fixed", "amount": 30},
        },
    ]
}


def by_rule(outcome: dict[str, Any] | EventOutcome) -> dict[str, int]:
    """Points awarded per rule by one event's outcome."""
    effects = outcome["effects"] if isinstance(outcome, dict) else outcome.effects
    return {e["rule"]["id"]: int(e["amount"]) for e in effects if e["kind"] == "award"}


def awarded(database: Database, programme: Programme, rule_id: str) -> tuple[int, int, int]:
    """(transactions, distinct members, points) the ledger holds for ``rule_id``."""
    with database.transaction(readonly=True) as session:
        txns = session.scalars(
            select(LedgerTransaction).where(
                LedgerTransaction.programme_id == programme.id,
                LedgerTransaction.rule_id == rule_id,
                LedgerTransaction.kind == "earn",
            )
        ).all()
        ids = [t.id for t in txns]
        points = session.scalar(
            select(func.coalesce(func.sum(Entry.amount), 0)).where(
                Entry.transaction_id.in_(ids), Entry.amount > 0
            )
        )
    return len(txns), len({t.member_id for t in txns}), int(points or 0)


def test_a_budget_and_a_first_n_cap_stop_awarding_exactly_at_the_cap(
    api: Api, database: Database, programme: Programme, member_factory: Callable[..., Member]
) -> None:
    applied = api.put("/programme/document", json=LIMITED)
    assert applied.status_code == 200, applied.text
    members = [member_factory() for _ in range(10)]

    def buy(member: Member) -> dict[str, int]:
        body = purchase(ref(member), lines=[line("sku", 1, "10.00")])
        response = api.post("/events", json=body, scope="integration")
        assert response.status_code == 201, response.text
        return by_rule(response.json())

    first_round = [buy(m) for m in members]

    assert [o.get("first-five", 0) for o in first_round] == [100] * 5 + [0] * 5
    # 8 awards of 30 = 240, the ninth is capped at the 10 left, the tenth gets nothing
    assert [o.get("launch", 0) for o in first_round] == [30] * 8 + [10, 0]
    assert [o["base"] for o in first_round] == [10] * 10
    # a member among the first five stays one of them; the sixth is still outside
    assert buy(members[0]) == {"base": 10, "first-five": 100}
    assert buy(members[5]) == {"base": 10}
    assert awarded(database, api.programme, "first-five") == (6, 5, 600)
    assert awarded(database, api.programme, "launch") == (9, 9, BUDGET)
    with database.transaction(readonly=True) as session:
        assert verify(session, programme_id=api.programme.id).ok


def _fresh_limited_programme(database: Database) -> tuple[Programme, list[Member]]:
    programme = make_programme(database)
    members = [make_member(database, programme) for _ in range(16)]
    with database.transaction() as session:
        documents.apply(session, programme=programme, raw=LIMITED, actor="test")
    with database.transaction(readonly=True) as session:
        live = session.get(Programme, programme.id)
        assert live is not None
        assert live.live_version == 1
    return live, members


@pytest.mark.postgres_only
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
@pytest.mark.parametrize("round_", range(3))
def test_sixteen_concurrent_first_purchases_respect_the_budget_and_the_first_n(
    database: Database, round_: int
) -> None:
    """On a programme applied a moment ago (no counter rows yet), 16 members buy at once."""
    programme, members = _fresh_limited_programme(database)
    barrier = threading.Barrier(len(members))
    outcomes: list[EventOutcome | BaseException | None] = [None] * len(members)

    def first_purchase(i: int) -> None:
        payload = purchase(ref(members[i]), lines=[line("sku", 1, "10.00")])
        barrier.wait()
        try:
            with database.transaction() as session:
                [outcomes[i]] = intake.ingest_payloads(
                    session, programme=programme, payloads=[payload]
                )
        except BaseException as exc:  # the test asserts that nothing failed
            outcomes[i] = exc

    threads = [threading.Thread(target=first_purchase, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    failures = [o for o in outcomes if not isinstance(o, EventOutcome)]
    assert failures == [], failures
    done = [o for o in outcomes if isinstance(o, EventOutcome)]
    assert [o.status for o in done] == ["accepted"] * 16
    assert sorted(by_rule(o).get("first-five", 0) for o in done) == [0] * 11 + [100] * 5
    assert sorted(by_rule(o).get("launch", 0) for o in done) == [0] * 7 + [10] + [30] * 8
    assert awarded(database, programme, "first-five") == (FIRST_N, FIRST_N, 100 * FIRST_N)
    assert awarded(database, programme, "launch") == (9, 9, BUDGET)
    assert awarded(database, programme, "base") == (16, 16, 160)
    with database.transaction(readonly=True) as session:
        events = session.scalar(
            select(func.count()).select_from(Event).where(Event.programme_id == programme.id)
        )
        assert events == 16
        assert verify(session, programme_id=programme.id).ok
