"""Duplicate suggestions: likely pairs with their reasons and score, best first, paged; and the
sure match of one member (what the intake's merge policy acts on)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fidelia.db import Database
from fidelia.merges import duplicates
from fidelia.models import Member
from tests.fixtures.factories import Api, make_member

T = datetime(2026, 1, 1, tzinfo=UTC)


def _make(database: Database, api: Api, n: int, **fields: Any) -> Member:
    fields.setdefault("card", f"EC6{n:06d}")
    return make_member(database, api.programme, enrolled_at=T + timedelta(days=n), **fields)


def _world(database: Database, api: Api) -> dict[str, Member]:
    born = date(1988, 4, 2)
    return {
        "web": _make(database, api, 1, email="Chloe.Martin@example.org"),
        "store": _make(database, api, 2, attributes={"email": "chloe.martin@EXAMPLE.org "}),
        "app": _make(database, api, 3, phone="06 12 34 56 78"),
        "paper": _make(database, api, 4, attributes={"mobile": "+33 6 12 34 56 78"}),
        "lea": _make(
            database, api, 5, first_name="Léa", last_name="Le Moël", birth_date=born,
            postal_code="69003",
        ),
        "lea2": _make(
            database, api, 6, first_name="lea", last_name="LE MOEL", birth_date=born,
            postal_code="69 003",
        ),
        "tom": _make(database, api, 7, first_name="Tom", last_name="Roux", birth_date=born),
        "tom2": _make(
            database, api, 8, first_name="Tom", last_name="roux", birth_date=born,
            postal_code="75011",
        ),
        "alone": _make(
            database, api, 9, first_name="Tom", last_name="Roux", birth_date=date(1990, 1, 1)
        ),
    }  # fmt: skip


def _pairs(
    body: dict[str, Any], people: dict[str, Member]
) -> list[tuple[str, str, float, list[str]]]:
    names = {str(m.id): name for name, m in people.items()}
    return [
        (names[p["survivor_id"]], names[p["duplicate_id"]], p["score"], p["reasons"])
        for p in body["items"]
    ]


def test_likely_pairs_come_with_their_reasons_best_first(api: Api, database: Database) -> None:
    people = _world(database, api)

    body = api.get("/members/duplicates", scope="read").json()

    assert _pairs(body, people) == [
        ("web", "store", 0.95, ["same_email"]),
        ("app", "paper", 0.9, ["same_phone"]),
        ("lea", "lea2", 0.9, ["same_name_birth_date_postal_code"]),
        ("tom", "tom2", 0.6, ["same_name_birth_date"]),
    ]
    assert body["next_cursor"] is None


def test_pages_and_a_minimum_score(api: Api, database: Database) -> None:
    people = _world(database, api)

    first = api.get("/members/duplicates", params={"limit": 2}).json()
    second = api.get("/members/duplicates", params={"limit": 2, "cursor": first["next_cursor"]})
    sure = api.get("/members/duplicates", params={"min_score": 0.9}).json()

    assert [p[:2] for p in _pairs(first, people)] == [("web", "store"), ("app", "paper")]
    assert [p[:2] for p in _pairs(second.json(), people)] == [("lea", "lea2"), ("tom", "tom2")]
    assert second.json()["next_cursor"] is None
    assert len(sure["items"]) == 3
    bad = api.get("/members/duplicates", params={"cursor": "bm9wZQ"})
    assert bad.status_code == 422
    assert bad.json()["fields"][0]["loc"] == ["query", "cursor"]


def test_closed_and_merged_members_are_not_suggested(api: Api, database: Database) -> None:
    people = _world(database, api)
    assert api.post(f"/members/{people['store'].id}/status", json={"status": "closed"}).is_success
    merged = api.post(
        f"/members/{people['app'].id}/merge", json={"duplicate_id": str(people["paper"].id)}
    )
    assert merged.status_code == 201

    body = api.get("/members/duplicates").json()

    assert [p[:2] for p in _pairs(body, people)] == [("lea", "lea2"), ("tom", "tom2")]


def test_the_sure_match_of_one_member(api: Api, database: Database) -> None:
    people = _world(database, api)

    with database.transaction(readonly=True) as session:
        found = {
            name: duplicates.sure_match(session, programme=api.programme, member=member)
            for name, member in people.items()
        }

    assert found["store"] is not None
    assert (found["store"].first, found["store"].reasons) == (people["web"].id, ["same_email"])
    assert found["paper"] is not None
    assert found["paper"].first == people["app"].id
    assert found["lea2"] is not None
    assert found["lea2"].first == people["lea"].id
    assert found["tom2"] is None  # name and birth date only: not sure


def test_a_cursor_with_a_score_that_is_not_a_number_is_refused(api: Api) -> None:
    from fidelia.kit.pagination import encode_cursor

    ids = ["019ceb9e-6018-78a4-ad11-f033b48438b5", "019ceb9e-6018-78a4-ad11-f033b48438b6"]
    for score in ("nan", "inf", True, None, 2.5):
        cursor = encode_cursor([score, *ids])
        response = api.get("/members/duplicates", params={"cursor": cursor}, scope="read")
        assert response.status_code == 422, (score, response.text)
        assert response.json()["fields"][0]["loc"] == ["query", "cursor"]
