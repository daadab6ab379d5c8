"""Purchases and returns: an order is bought once; a return matches what was bought."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fidelia.db import Database
from fidelia.models import Event, Member
from tests.fixtures.events import line, purchase, ref, return_of, returned
from tests.fixtures.factories import Api, count_rows


@pytest.fixture
def bought(api: Api, member_factory: Callable[..., Member]) -> tuple[Member, str]:
    """A member who bought 3 x A and 1 x B in order ORDER-1."""
    member = member_factory()
    order = purchase(
        ref(member),
        order_id="ORDER-1",
        lines=[line("A", 3, "10.00"), line("B", 1, "25.00", discount="5.00")],
        total="50.00",
    )
    assert api.post("/events", json=order).status_code == 201
    return member, "ORDER-1"


def events_of(database: Database, api: Api) -> int:
    return count_rows(database, Event, Event.programme_id == api.programme.id)


def test_a_purchase_stores_its_typed_properties(api: Api, bought: tuple[Member, str]) -> None:
    member, _ = bought

    (stored,) = api.get(f"/members/{member.id}/events").json()["items"]

    props = stored["properties"]
    assert props["order_id"] == "ORDER-1"
    assert props["total"] == "50.00"
    assert props["lines"][1] == {
        "sku": "B",
        "name": None,
        "category": None,
        "brand": None,
        "quantity": "1",
        "unit_price": "25.00",
        "discount": "5.00",
    }


def test_partial_returns_up_to_what_was_bought_are_accepted(
    api: Api, bought: tuple[Member, str], database: Database
) -> None:
    member, order = bought

    first = api.post("/events", json=return_of(ref(member), order, [returned("A", 2)]))
    second = api.post(
        "/events", json=return_of(ref(member), order, [returned("A", 1), returned("B", 1)])
    )

    assert (first.status_code, second.status_code) == (201, 201)
    assert events_of(database, api) == 3


def test_a_return_of_more_than_bought_is_rejected(
    api: Api, bought: tuple[Member, str], database: Database
) -> None:
    member, order = bought
    api.post("/events", json=return_of(ref(member), order, [returned("A", 2)]))

    response = api.post("/events", json=return_of(ref(member), order, [returned("A", 2)]))

    assert response.status_code == 409
    assert response.json()["fields"][0]["loc"] == ["body", "properties", "lines", 0, "quantity"]
    assert "at most 1" in response.json()["fields"][0]["msg"]
    assert events_of(database, api) == 2


def test_a_return_summing_two_lines_of_one_sku_beyond_the_purchase_is_rejected(
    api: Api, bought: tuple[Member, str]
) -> None:
    member, order = bought

    response = api.post(
        "/events", json=return_of(ref(member), order, [returned("A", 2), returned("A", 2)])
    )

    assert response.status_code == 409
    assert response.json()["fields"][0]["loc"] == ["body", "properties", "lines", 1, "quantity"]


def test_returns_in_one_batch_are_counted_together(
    api: Api, bought: tuple[Member, str], database: Database
) -> None:
    member, order = bought

    body = api.post(
        "/events/batch",
        json={"events": [return_of(ref(member), order, [returned("A", 2)]) for _ in range(2)]},
    ).json()

    assert [r["status"] for r in body["results"]] == ["accepted", "rejected"]
    assert events_of(database, api) == 2


def test_a_return_of_an_unknown_order_is_rejected(
    api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()

    response = api.post("/events", json=return_of(ref(member), "NO-SUCH-ORDER", [returned("A", 1)]))

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "properties", "order_id"]
    assert events_of(database, api) == 0


def test_a_return_of_another_members_order_is_rejected(
    api: Api, bought: tuple[Member, str], member_factory: Callable[..., Member]
) -> None:
    _, order = bought
    stranger = member_factory()

    response = api.post("/events", json=return_of(ref(stranger), order, [returned("A", 1)]))

    assert response.status_code == 422
    assert "another member" in response.json()["detail"]


def test_a_return_of_a_sku_not_in_the_order_is_rejected(
    api: Api, bought: tuple[Member, str]
) -> None:
    member, order = bought

    response = api.post("/events", json=return_of(ref(member), order, [returned("Z", 1)]))

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "properties", "lines", 0, "sku"]


def test_a_second_purchase_with_the_same_order_id_is_rejected(
    api: Api, bought: tuple[Member, str], database: Database
) -> None:
    member, order = bought

    response = api.post("/events", json=purchase(ref(member), order_id=order))

    assert response.status_code == 409
    assert response.json()["fields"][0]["loc"] == ["body", "properties", "order_id"]
    assert events_of(database, api) == 1


def test_a_purchase_and_its_return_in_one_batch(
    api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()
    order = purchase(ref(member), order_id="O-7", lines=[line("A", 1)])
    same_order = purchase(ref(member), order_id="O-7", lines=[line("B", 1)])

    body = api.post(
        "/events/batch",
        json={"events": [order, return_of(ref(member), "O-7", [returned("A", 1)]), same_order]},
    ).json()

    assert [r["status"] for r in body["results"]] == ["accepted", "accepted", "rejected"]
    assert events_of(database, api) == 2


@pytest.mark.parametrize(
    ("properties", "loc"),
    [
        ({"order_id": "o", "lines": [], "total": "1"}, ["properties", "lines"]),
        ({"order_id": "o", "lines": [line("A", 1)], "total": "-1"}, ["properties", "total"]),
        (
            {"order_id": "o", "lines": [line("A", 1, "5", discount="6")], "total": "0"},
            ["properties", "lines", 0],
        ),
        ({"lines": [line("A", 1)], "total": "1"}, ["properties", "order_id"]),
        ({"order_id": "o", "lines": [line("A", 1)], "total": "1", "tip": 3}, ["properties", "tip"]),
    ],
)
def test_an_invalid_purchase_names_the_property_path(
    api: Api,
    member_factory: Callable[..., Member],
    database: Database,
    properties: dict[str, object],
    loc: list[object],
) -> None:
    member = member_factory()
    payload = purchase(ref(member))
    payload["properties"] = properties

    response = api.post("/events", json=payload)

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", *loc]
    assert events_of(database, api) == 0
