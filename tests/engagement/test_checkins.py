"""Store check-in by geolocation: accepted within the radius (accuracy allowed for), once per
store and day, earning through rules; every refusal has a reason and writes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fidelia.db import Database
from fidelia.engagement.checkins import distance_m
from fidelia.models import Event, Programme
from fidelia.models.engagement_plus import StoreCheckIn
from tests.fixtures.events import event
from tests.fixtures.factories import Api, count_rows

T = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
# Two stores in Paris: Bastille and Opéra.
DOCUMENT: dict[str, Any] = {
    "check_in": {
        "max_accuracy_m": 100,
        "stores": [
            {"code": "bastille", "name": "Bastille", "latitude": 48.8532, "longitude": 2.3691,
             "radius_m": 80},
            {"code": "opera", "name": "Opéra", "latitude": 48.8710, "longitude": 2.3318},
        ],
    },
    "rules": [
        {"id": "visit", "name": "Store visit", "event_type": "store_check_in",
         "award": {"kind": "fixed", "amount": 10}},
    ],
}  # fmt: skip


def setup(api: Api) -> str:
    response = api.put("/programme/document", json=DOCUMENT)
    assert response.status_code == 200, response.text
    enrolled = api.post(
        "/members", json={"email": f"c-{uuid.uuid4().hex[:8]}@example.com"}, scope="integration"
    )
    assert enrolled.status_code == 201, enrolled.text
    return str(enrolled.json()["id"])


def check_in(
    api: Api, member: str, lat: float, lon: float, accuracy: float, *, store: str | None,
    at: datetime = T,
) -> dict[str, Any]:  # fmt: skip
    payload = event(
        "store_check_in",
        {"id": member},
        {"latitude": lat, "longitude": lon, "accuracy_m": accuracy},
        occurred_at=at,
        **({"store": store} if store else {}),
    )
    response = api.post("/events", json=payload, scope="integration")
    assert response.status_code in (201, 422), response.text
    body: dict[str, Any] = response.json()
    return body


def test_haversine_distance_is_right_within_a_metre() -> None:
    # One degree of latitude is 111,195 m on a 6,371 km sphere; Bastille to Opéra is 1,979 m
    # north and 2,730 m west (the flat approximation holds at this scale): 3,372 m.
    assert abs(distance_m(0, 0, 1, 0) - 111_195) < 1
    assert abs(distance_m(48.8532, 2.3691, 48.8710, 2.3318) - 3372) < 2
    assert distance_m(48.8532, 2.3691, 48.8532, 2.3691) == 0


def test_a_check_in_at_the_door_earns_once_a_day(
    api: Api, database: Database, programme: Programme
) -> None:
    member = setup(api)

    first = check_in(api, member, 48.8535, 2.3695, 20, store="bastille")
    again = check_in(api, member, 48.8533, 2.3692, 10, store="bastille", at=T + timedelta(hours=3))
    tomorrow = check_in(api, member, 48.8533, 2.3692, 10, store="bastille", at=T + timedelta(1))

    assert first["status"] == "accepted", first
    assert first["totals"] == {"points": 10}
    assert next(e for e in first["effects"] if e["kind"] == "checked_in")["store"] == "bastille"
    assert again["error"] == "check_in_refused"
    assert again["fields"] == [{"loc": ["body", "store"], "msg": "already_checked_in"}]
    assert tomorrow["status"] == "accepted", tomorrow
    rows = count_rows(database, StoreCheckIn, StoreCheckIn.programme_id == programme.id)
    assert rows == 2


def test_accuracy_lets_a_position_just_outside_the_radius_in(api: Api) -> None:
    member = setup(api)
    # About 110 m east of Bastille (radius 80 m): in with a 50 m accuracy, out with 10 m.
    lon = 2.3691 + 0.0015
    out = check_in(api, member, 48.8532, lon, 10, store="bastille")
    inside = check_in(api, member, 48.8532, lon, 50, store="bastille")

    assert out["error"] == "check_in_refused"
    assert out["fields"] == [{"loc": ["body", "properties", "latitude"], "msg": "too_far"}]
    assert inside["status"] == "accepted", inside


def test_a_check_in_5_km_away_is_refused_and_writes_nothing(
    api: Api, database: Database, programme: Programme
) -> None:
    member = setup(api)
    events_before = count_rows(database, Event, Event.programme_id == programme.id)

    far = check_in(api, member, 48.89817, 2.3691, 30, store="bastille")  # 5 km north
    vague = check_in(api, member, 48.8532, 2.3691, 500, store="bastille")
    unknown = check_in(api, member, 48.8532, 2.3691, 10, store="nowhere")
    no_position = api.post(
        "/events",
        json=event("store_check_in", {"id": member}, {"latitude": 48.85}, store="bastille"),
        scope="integration",
    ).json()

    assert far["error"] == "check_in_refused"
    assert "too_far" in far["detail"]
    assert far["detail"] == "too_far: 5000 m from store 'bastille' (radius 80 m)"
    assert [f["msg"] for f in vague["fields"]] == ["position_inaccurate"]
    assert [f["msg"] for f in unknown["fields"]] == ["unknown_store"]
    assert [f["msg"] for f in no_position["fields"]] == ["position_missing"]
    assert count_rows(database, Event, Event.programme_id == programme.id) == events_before
    assert count_rows(database, StoreCheckIn, StoreCheckIn.programme_id == programme.id) == 0


def test_without_a_store_the_nearest_one_is_checked(api: Api) -> None:
    member = setup(api)
    near_opera = check_in(api, member, 48.8711, 2.3319, 15, store=None)
    assert near_opera["status"] == "accepted", near_opera
    assert [e["store"] for e in near_opera["effects"] if e["kind"] == "checked_in"] == ["opera"]
