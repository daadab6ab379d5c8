"""Streaks: consecutive weeks with a purchase, rewards at lengths, a missed week resets the run
unless a freeze covers it; progress shown by /members/{id}/streaks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fixtures.events import line, purchase
from tests.fixtures.factories import Api

MONDAY = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)  # a Monday
STREAKS: list[dict[str, Any]] = [
    {
        "code": "weekly",
        "name": "A purchase every week",
        "event_type": "purchase",
        "when": {"field": "event.amount", "op": "gte", "value": 10},
        "period": "week",
        "freezes": 1,
        "rewards": [{"length": 3, "points": 300}, {"length": 5, "points": 1000}],
    }
]


def setup(api: Api, streaks: list[dict[str, Any]] = STREAKS) -> str:
    response = api.put("/programme/document", json={"streaks": streaks})
    assert response.status_code == 200, response.text
    enrolled = api.post(
        "/members", json={"email": f"s-{uuid.uuid4().hex[:8]}@example.com"}, scope="integration"
    )
    assert enrolled.status_code == 201, enrolled.text
    return str(enrolled.json()["id"])


def buy(api: Api, member: str, week: int, amount: str = "20.00", day: int = 0) -> list[Any]:
    at = MONDAY + timedelta(weeks=week, days=day)
    payload = purchase({"id": member}, lines=[line("x", 1, amount)], occurred_at=at)
    response = api.post("/events", json=payload, scope="integration")
    assert response.status_code == 201, response.text
    return [e for e in response.json()["effects"] if e["kind"] == "streak_reached"]


def points(api: Api, member: str) -> int:
    response = api.get(f"/members/{member}/wallets/points/balance", scope="read")
    return int(response.json()["available"])


def test_three_weeks_in_a_row_give_the_first_reward_once(api: Api) -> None:
    member = setup(api)
    assert buy(api, member, 0) == []
    assert buy(api, member, 0, day=3) == []  # the same week counts once
    assert buy(api, member, 1, amount="5.00") == []  # below the condition: not counted
    assert buy(api, member, 1, day=6) == []  # Sunday of week 1
    reached = buy(api, member, 2)

    assert [(e["streak"], e["length"]) for e in reached] == [("weekly", 3)]
    assert reached[0]["reward"]["points"] == {"wallet": "points", "amount": 300}
    assert points(api, member) == 300


def test_a_freeze_covers_one_missed_week_and_a_second_gap_resets(api: Api) -> None:
    member = setup(api)
    buy(api, member, 0)
    buy(api, member, 1)
    reached = buy(api, member, 3)  # week 2 missed: the freeze covers it, run is 3
    assert [e["length"] for e in reached] == [3]
    buy(api, member, 5)  # week 4 missed, no freeze left: a new run of 1
    buy(api, member, 6)
    reached = buy(api, member, 7)  # a new run reaches 3 again: paid again (a new run)
    assert [e["length"] for e in reached] == [3]
    assert points(api, member) == 600


def test_progress_is_shown_with_the_next_reward(api: Api) -> None:
    member = setup(api)
    start = datetime.now(UTC) - timedelta(weeks=1)
    for week in range(2):
        at = start + timedelta(weeks=week)
        payload = purchase({"id": member}, lines=[line("x", 1, "20.00")], occurred_at=at)
        assert api.post("/events", json=payload, scope="integration").status_code == 201

    response = api.get(f"/members/{member}/streaks", scope="read")

    assert response.status_code == 200, response.text
    (streak,) = response.json()
    assert streak["streak"] == "weekly"
    assert streak["current"] == 2
    assert streak["best"] == 2
    assert streak["this_period_done"] is True
    assert streak["next_reward_at"] == 3
    assert streak["left"] == 1
    assert streak["freezes_left"] == 1


def test_a_streak_missed_beyond_its_freezes_shows_zero(api: Api) -> None:
    member = setup(api)
    buy(api, member, 0)  # June 2026: long before now
    (streak,) = api.get(f"/members/{member}/streaks", scope="read").json()
    assert (streak["current"], streak["best"], streak["this_period_done"]) == (0, 1, False)


def test_a_streak_condition_on_member_fields_is_refused(api: Api) -> None:
    bad = [{**STREAKS[0], "when": {"field": "member.segments", "op": "contains", "value": "x"}}]
    response = api.put("/programme/document", json={"streaks": bad})
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["loc"][:3] == ["body", "streaks", 0]
