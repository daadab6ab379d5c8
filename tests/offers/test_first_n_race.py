"""First-N offers on PostgreSQL: 20 enrolments at once for 5 slots give exactly 5."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.events.schemas import EventOutcome
from fidelia.intake import service as intake
from fidelia.kit.clock import utcnow
from fidelia.ledger.verify import verify
from fidelia.models import LedgerTransaction, Member, Programme
from fidelia.models.offers import OfferCounter, OfferTarget
from fidelia.programmes import documents
from tests.fixtures.events import enrolment
from tests.fixtures.factories import make_programme

pytestmark = pytest.mark.postgres_only
N, ENROLLING = 5, 20
DOC: dict[str, Any] = {
    "offers": [
        {
            "code": "first-five",
            "name": "The first five get 100 points",
            "kind": "points",
            "amount": 100,
            "first_n": {"count": N},
        },
    ]
}


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
@pytest.mark.parametrize("round_", range(2))
def test_twenty_concurrent_enrolments_take_exactly_five_slots(
    database: Database, round_: int
) -> None:
    programme = make_programme(database)
    with database.transaction() as session:
        documents.apply(session, programme=programme, raw=DOC, actor="test")
    with database.transaction(readonly=True) as session:
        live = session.get(Programme, programme.id)
        assert live is not None
    barrier = threading.Barrier(ENROLLING)
    outcomes: list[Any] = [None] * ENROLLING
    at = utcnow() - timedelta(minutes=1)

    def enrol(i: int) -> None:
        payload = enrolment({"email": f"race-{uuid.uuid4().hex[:10]}@example.org"}, occurred_at=at)
        barrier.wait()
        try:
            with database.transaction() as session:
                [outcomes[i]] = intake.ingest_payloads(session, programme=live, payloads=[payload])
        except BaseException as exc:  # the test asserts that nothing failed
            outcomes[i] = exc

    threads = [threading.Thread(target=enrol, args=(i,)) for i in range(ENROLLING)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    failures = [o for o in outcomes if not isinstance(o, EventOutcome)]
    assert failures == [], failures
    given = [
        o
        for o in outcomes
        if any(e.get("rule", {}).get("id") == "offer:first-five" for e in o.effects)
    ]
    assert len(given) == N
    with database.transaction(readonly=True) as session:
        where = OfferTarget.programme_id == programme.id
        slots = session.scalars(select(OfferTarget.slot).where(where)).all()
        assert sorted(slots) == list(range(1, N + 1))
        counter = session.scalar(
            select(OfferCounter.claimed).where(OfferCounter.programme_id == programme.id)
        )
        assert counter == N
        credits = session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(
                LedgerTransaction.programme_id == programme.id,
                LedgerTransaction.rule_id == "offer:first-five",
            )
        )
        assert credits == N
        enrolled = session.scalar(
            select(func.count()).select_from(Member).where(Member.programme_id == programme.id)
        )
        assert enrolled == ENROLLING
        assert verify(session, programme_id=programme.id).ok
