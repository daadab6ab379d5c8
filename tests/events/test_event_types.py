"""Custom event types: open by default, validated against a schema once declared."""

from __future__ import annotations

from collections.abc import Callable

from fidelia.db import Database
from fidelia.models import Event, Member
from tests.fixtures.events import event, ref
from tests.fixtures.factories import Api, count_rows

REVIEW_SCHEMA = {
    "type": "object",
    "properties": {
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "product": {"type": "object", "properties": {"sku": {"type": "string"}}},
    },
    "required": ["rating"],
    "additionalProperties": False,
}


def test_declare_a_type_and_read_it_back(api: Api) -> None:
    response = api.put(
        "/event-types/review", json={"description": "Product review", "schema": REVIEW_SCHEMA}
    )

    assert response.status_code == 200
    assert response.json() == {
        "name": "review",
        "description": "Product review",
        "schema": REVIEW_SCHEMA,
    }
    assert api.get("/event-types", scope="read").json() == [response.json()]


def test_declaring_again_replaces_the_schema(api: Api) -> None:
    api.put("/event-types/review", json={"schema": REVIEW_SCHEMA})

    api.put("/event-types/review", json={"schema": {"type": "object"}})

    (declared,) = api.get("/event-types").json()
    assert declared["schema"] == {"type": "object"}


def test_events_of_a_declared_type_are_validated_with_the_path(
    api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()
    api.put("/event-types/review", json={"schema": REVIEW_SCHEMA})

    good = event("review", ref(member), {"rating": 4, "product": {"sku": "X"}})
    wrong_type = event("review", ref(member), {"rating": 4, "product": {"sku": 12}})
    missing = event("review", ref(member), {})
    out_of_range = event("review", ref(member), {"rating": 9})
    body = api.post("/events/batch", json={"events": [good, wrong_type, missing, out_of_range]})

    results = body.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "rejected"]
    assert results[1]["fields"][0]["loc"] == ["properties", "product", "sku"]
    assert results[2]["fields"][0]["loc"] == ["properties"]
    assert "rating" in results[2]["fields"][0]["msg"]
    assert results[3]["fields"][0]["loc"] == ["properties", "rating"]
    assert count_rows(database, Event, Event.programme_id == api.programme.id) == 1


def test_a_single_invalid_custom_event_is_422(
    api: Api, member_factory: Callable[..., Member]
) -> None:
    member = member_factory()
    api.put("/event-types/review", json={"schema": REVIEW_SCHEMA})

    response = api.post("/events", json=event("review", ref(member), {"rating": "five"}))

    assert response.status_code == 422
    assert response.json()["fields"] == [
        {"loc": ["body", "properties", "rating"], "msg": "'five' is not of type 'integer'"}
    ]


def test_an_undeclared_custom_type_is_accepted_as_is(
    api: Api, member_factory: Callable[..., Member]
) -> None:
    member = member_factory()
    properties = {"latitude": 45.76, "longitude": 4.83, "anything": ["goes"]}

    response = api.post("/events", json=event("store_check_in", ref(member), properties))

    assert response.status_code == 201
    (stored,) = api.get(f"/members/{member.id}/events").json()["items"]
    assert stored["type"] == "store_check_in"
    assert stored["properties"] == properties


def test_a_declared_schema_belongs_to_its_programme(
    api_factory: Callable[..., Api], programme_factory: Callable[..., object]
) -> None:
    brand_a, brand_b = api_factory(programme_factory()), api_factory(programme_factory())
    brand_a.put("/event-types/review", json={"schema": REVIEW_SCHEMA})
    member_b = brand_b.post("/members", json={"card": "B"}).json()

    response = brand_b.post("/events", json=event("review", {"id": member_b["id"]}, {"x": 1}))

    assert response.status_code == 201
    assert brand_b.get("/event-types").json() == []


def test_a_built_in_type_cannot_be_redeclared(api: Api) -> None:
    response = api.put("/event-types/purchase", json={"schema": {"type": "object"}})

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["path", "name"]


def test_a_bad_type_name_is_422(api: Api) -> None:
    response = api.put("/event-types/Bad-Name", json={"schema": {"type": "object"}})

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["path", "name"]


def test_an_invalid_json_schema_is_422_with_its_path(api: Api) -> None:
    response = api.put(
        "/event-types/review",
        json={"schema": {"type": "object", "properties": {"rating": {"type": "integr"}}}},
    )

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"][:2] == ["body", "schema"]
    assert api.get("/event-types").json() == []


def test_declaring_a_type_needs_an_admin_key(api: Api) -> None:
    response = api.put("/event-types/review", json={"schema": {}}, scope="integration")

    assert response.status_code == 403
