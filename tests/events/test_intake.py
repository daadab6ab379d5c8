"""Event intake: single and batch, idempotency, per-event outcomes."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fidelia.db import Database
from fidelia.models import Event, Member
from tests.fixtures.events import event, line, purchase, ref
from tests.fixtures.factories import Api, count_rows


def events_of(database: Database, api: Api) -> int:
    return count_rows(database, Event, Event.programme_id == api.programme.id)


def test_an_event_is_accepted_then_a_resend_returns_the_same_outcome_and_writes_nothing(
    api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()
    payload = purchase(ref(member), channel="store", store="lyon-1")

    first = api.post("/events", json=payload, scope="integration")
    again = api.post("/events", json=payload, scope="integration")

    assert first.status_code == 201
    assert first.json()["status"] == "accepted"
    assert first.json()["member_id"] == str(member.id)
    assert again.status_code == 200
    assert again.json() == {**first.json(), "status": "duplicate"}
    assert events_of(database, api) == 1
    stored = api.get(f"/events/{payload['id']}", scope="read").json()
    assert stored["id"] == first.json()["event_id"]
    assert stored["store"] == "lyon-1"
    assert stored["properties"]["lines"][0]["unit_price"] == "10.00"


def test_a_resend_in_another_time_zone_notation_is_the_same_event(
    api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()
    payload = event("page_view", ref(member), {"url": "/"})
    payload["occurred_at"] = "2025-03-01T12:00:00+02:00"

    api.post("/events", json=payload)
    again = api.post("/events", json={**payload, "occurred_at": "2025-03-01T10:00:00Z"})

    assert again.status_code == 200
    assert events_of(database, api) == 1


def test_the_same_id_with_other_content_is_an_idempotency_conflict(
    api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()
    payload = purchase(ref(member))
    api.post("/events", json=payload)

    changed = {**payload, "properties": {**payload["properties"], "total": "99.00"}}
    response = api.post("/events", json=changed)

    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "idempotency_conflict"
    assert body["fields"][0]["loc"] == ["body", "id"]
    assert events_of(database, api) == 1
    assert api.get(f"/events/{payload['id']}").json()["properties"]["total"] == "20.00"


def test_the_same_id_in_two_programmes_is_two_events(
    api_factory: Callable[..., Api], programme_factory: Callable[..., object], database: Database
) -> None:
    brand_a, brand_b = api_factory(programme_factory()), api_factory(programme_factory())
    for brand in (brand_a, brand_b):
        member = brand.post("/members", json={"card": "C1"}).json()
        payload = event("store_check_in", {"id": member["id"]}, id="shared-id")
        assert brand.post("/events", json=payload).status_code == 201


def test_a_batch_answers_each_event_and_rejected_ones_write_nothing(
    api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()
    good = purchase(ref(member))
    bad_line = purchase(ref(member), lines=[line("a", 0, "5.00")], total="0")
    unknown = event("page_view", {"email": "nobody@example.com"})
    naive = {**event("page_view", ref(member)), "occurred_at": "2025-01-01T10:00:00"}
    missing_type = {k: v for k, v in event("x", ref(member)).items() if k != "type"}
    good_custom = event("review", ref(member), {"stars": 5})

    response = api.post(
        "/events/batch",
        json={"events": [good, bad_line, unknown, naive, missing_type, good_custom]},
        scope="integration",
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 4)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4, 5]
    assert [r["status"] for r in results] == [
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "accepted",
    ]
    assert results[1]["error"] == "validation_error"
    assert results[1]["fields"][0]["loc"] == ["properties", "lines", 0, "quantity"]
    assert results[2]["error"] == "unknown_member"
    assert results[3]["fields"][0]["loc"] == ["occurred_at"]
    assert results[4]["fields"][0]["loc"] == ["type"]
    assert events_of(database, api) == 2
    assert count_rows(database, Member, Member.programme_id == api.programme.id) == 1


def test_a_batch_resent_is_all_duplicates(
    api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()
    batch = {"events": [purchase(ref(member)) for _ in range(3)]}

    api.post("/events/batch", json=batch)
    again = api.post("/events/batch", json=batch).json()

    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 3, 0)
    assert events_of(database, api) == 3


def test_a_batch_with_the_same_event_twice_stores_it_once(
    api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()
    payload = purchase(ref(member))

    body = api.post("/events/batch", json={"events": [payload, payload]}).json()

    assert [r["status"] for r in body["results"]] == ["accepted", "duplicate"]
    assert body["results"][0]["event_id"] == body["results"][1]["event_id"]
    assert events_of(database, api) == 1


def test_a_batch_with_one_id_for_two_different_events_refuses_the_second(
    api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()
    first = event("page_view", ref(member), {"url": "/a"}, id="dup")
    second = event("page_view", ref(member), {"url": "/b"}, id="dup")

    body = api.post("/events/batch", json={"events": [first, second]}).json()

    assert [r["status"] for r in body["results"]] == ["accepted", "rejected"]
    assert body["results"][1]["error"] == "idempotency_conflict"
    assert api.get("/events/dup").json()["properties"] == {"url": "/a"}
    assert events_of(database, api) == 1


def test_a_batch_with_a_rejected_event_twice_rejects_both(
    api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    payload = event("page_view", {"card": "UNKNOWN"})

    body = api.post("/events/batch", json={"events": [payload, payload]}).json()

    assert [r["status"] for r in body["results"]] == ["rejected", "rejected"]
    assert events_of(database, api) == 0


def test_a_batch_is_limited_to_1000_events(api: Api, member_factory: Callable[..., Member]) -> None:
    member = member_factory()
    payload = event("page_view", ref(member))

    response = api.post("/events/batch", json={"events": [payload] * 1001})

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "events"]


def test_a_single_rejected_event_is_an_error_response_and_writes_nothing(
    api: Api, database: Database
) -> None:
    response = api.post("/events", json=event("page_view", {"email": "ghost@example.com"}))

    assert response.status_code == 422
    assert response.json()["error"] == "unknown_member"
    assert response.json()["fields"][0]["loc"] == ["body", "member"]
    assert events_of(database, api) == 0


def test_an_event_with_no_member_reference_is_422(api: Api) -> None:
    response = api.post("/events", json=event("page_view", {}))

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "member"]


def test_an_event_naming_an_unknown_member_id_is_422(api: Api) -> None:
    response = api.post("/events", json=event("page_view", {"id": str(uuid.uuid4())}))

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "member", "id"]


def test_identities_of_two_members_in_one_event_are_a_conflict(
    api: Api, member_factory: Callable[..., Member]
) -> None:
    member_factory(email="one@example.com")
    member_factory(card="TWO")

    response = api.post(
        "/events", json=event("page_view", {"email": "one@example.com", "card": "TWO"})
    )

    assert response.status_code == 409


def test_an_event_for_a_closed_member_is_refused(
    api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()
    api.post(f"/members/{member.id}/status", json={"status": "closed"})

    response = api.post("/events", json=purchase(ref(member)))

    assert response.status_code == 409
    assert response.json()["error"] == "member_closed"
    assert events_of(database, api) == 0


def test_an_event_names_its_member_by_any_identity(
    api: Api, member_factory: Callable[..., Member]
) -> None:
    member = member_factory(
        card="9 9 9", phone="0699999999", external_ids=[{"namespace": "app", "value": "u-7"}]
    )

    refs = [
        {"card": "999"},
        {"phone": "+33 6 99 99 99 99"},
        {"external": {"namespace": "app", "value": "u-7"}},
        {"card": "999", "id": str(member.id)},
    ]
    outcomes = [api.post("/events", json=event("page_view", r)).json() for r in refs]

    assert {o["member_id"] for o in outcomes} == {str(member.id)}
