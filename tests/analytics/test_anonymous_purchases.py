"""Anonymous purchases: accepted by the intake for the KPIs only (no member, no points)."""

from __future__ import annotations

from typing import Any

from fidelia.models import AnonymousPurchase, Event, LedgerTransaction, Member, Programme
from tests.fixtures.events import purchase, ref
from tests.fixtures.factories import Api, count_rows

RULES = {
    "wallets": [{"code": "points", "name": "Points", "unit": "points"}],
    "rules": [
        {
            "id": "base",
            "name": "1 point per euro",
            "when": {"event": "purchase"},
            "then": [{"award": {"wallet": "points", "per_amount": "1", "points": 1}}],
        }
    ],
}


def anonymous(**kwargs: Any) -> dict[str, Any]:
    body = purchase({}, **kwargs)
    del body["member"]
    return body


def test_an_anonymous_purchase_is_stored_for_kpis_with_no_member_and_no_points(
    api: Api, programme: Programme, database: Any
) -> None:
    body = anonymous(store="paris-1", channel="store")
    first = api.post("/events", json=body, scope="integration")
    assert first.status_code == 201, first.text
    assert first.json()["member_id"] is None
    assert first.json()["totals"] == {}
    again = api.post("/events", json=body, scope="integration")
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    pid = programme.id
    assert count_rows(database, AnonymousPurchase, AnonymousPurchase.programme_id == pid) == 1
    assert count_rows(database, Event, Event.programme_id == pid) == 0
    assert count_rows(database, Member, Member.programme_id == pid) == 0
    assert count_rows(database, LedgerTransaction, LedgerTransaction.programme_id == pid) == 0
    with database.transaction(readonly=True) as session:
        row = session.query(AnonymousPurchase).filter_by(programme_id=pid).one()
        assert (row.total_cents, row.store, row.channel) == (2000, "paris-1", "store")


def test_only_a_purchase_may_be_anonymous_and_it_is_checked_like_any_purchase(
    api: Api, programme: Programme, database: Any
) -> None:
    review = {"id": "r-1", "type": "review", "occurred_at": "2025-03-01T10:00:00Z"}
    answer = api.post("/events", json=review, scope="integration")
    assert answer.status_code == 422
    assert "member" in answer.json()["detail"]
    bad_total = anonymous(total="99.00")
    answer = api.post("/events", json=bad_total, scope="integration")
    assert answer.status_code == 422
    assert answer.json()["fields"][0]["loc"][-2:] == ["properties", "total"]
    batch = api.post(
        "/events/batch",
        json={"events": [anonymous(order_id="o-1"), anonymous(order_id="o-1")]},
        scope="integration",
    )
    results = batch.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert results[1]["fields"][0]["loc"] == ["properties", "order_id"]
    pid = programme.id
    assert count_rows(database, AnonymousPurchase, AnonymousPurchase.programme_id == pid) == 1


def test_a_key_used_by_a_member_event_is_refused_for_an_anonymous_purchase(
    api: Api, programme: Programme, member_factory: Any
) -> None:
    member = member_factory()
    named = purchase(ref(member))
    assert api.post("/events", json=named, scope="integration").status_code == 201
    clash = anonymous(id=named["id"])
    answer = api.post("/events", json=clash, scope="integration")
    assert answer.status_code == 409
    assert answer.json()["error"] == "idempotency_conflict"
