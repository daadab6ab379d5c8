"""Referral points on the intake path, under the demo programme's rule: +200 points to the
referrer when a referred friend makes a first purchase, at most 10 a year."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from fidelia.db import Database
from fidelia.ledger.verify import verify
from fidelia.models import LedgerTransaction, Member, Programme
from fidelia.rules.demo import programme_document
from tests.fixtures.events import event, ref
from tests.fixtures.factories import Api


def referral(referrer: Member, referee: Member, at: datetime, **envelope: Any) -> dict[str, Any]:
    properties = {"referee": str(referee.id), "order_id": f"order-of-{referee.id}"}
    return event("referral_completed", ref(referrer), properties, occurred_at=at, **envelope)


def points(api: Api, member: Member) -> int:
    response = api.get(f"/members/{member.id}/wallets", scope="read")
    assert response.status_code == 200, response.text
    return int(next(b for b in response.json() if b["wallet"] == "points")["available"])


def test_a_completed_referral_earns_the_referrer_200_points_ten_times_a_year(
    api: Api, database: Database, programme: Programme, member_factory: Callable[..., Member]
) -> None:
    applied = api.put("/programme/document", json=programme_document())
    assert applied.status_code == 200, applied.text
    referrer = member_factory()
    friends = [member_factory() for _ in range(12)]
    # ten friends in 2026 (Paris time), an eleventh in December, a twelfth in January 2027
    dates = [datetime(2026, month, 15, 10, tzinfo=UTC) for month in range(1, 11)]
    dates += [datetime(2026, 12, 20, 10, tzinfo=UTC), datetime(2027, 1, 5, 10, tzinfo=UTC)]

    outcomes = []
    for friend, at in zip(friends, dates, strict=True):
        response = api.post("/events", json=referral(referrer, friend, at), scope="integration")
        assert response.status_code == 201, response.text
        outcomes.append(response.json())

    assert [o["totals"].get("points", 0) for o in outcomes] == [200] * 10 + [0, 200]
    assert [e for e in outcomes[10]["effects"] if e["kind"] == "award"] == []
    award = next(e for e in outcomes[0]["effects"] if e["kind"] == "award")
    assert (award["rule"]["id"], award["wallet"], award["amount"]) == ("referral", "points", 200)
    assert points(api, referrer) == 11 * 200
    assert [points(api, friend) for friend in friends] == [0] * 12  # the friend earns nothing

    resent = referral(referrer, friends[0], dates[0], id=outcomes[0]["id"])
    again = api.post("/events", json=resent, scope="integration")
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"
    assert points(api, referrer) == 11 * 200
    with database.transaction(readonly=True) as session:
        earned = session.scalars(
            select(LedgerTransaction.rule_id).where(
                LedgerTransaction.programme_id == programme.id,
                LedgerTransaction.member_id == referrer.id,
                LedgerTransaction.kind == "earn",
            )
        ).all()
        assert earned == ["referral"] * 11
        assert verify(session, programme_id=programme.id).ok
