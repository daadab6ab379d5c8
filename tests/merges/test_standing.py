"""What a merge joins besides points: tier and its metric, badge counters and badges, the
engine's state, consents (the most recent decision wins, both histories kept); and what an
unmerge takes out again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fidelia.db import Database
from fidelia.models import MemberState
from tests.fixtures.events import consent_changed, event
from tests.fixtures.factories import Api, make_member
from tests.merges.conftest import assert_verified
from tests.tiers.conftest import buy, document, send

NOV = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
CRITIC = [{"code": "critic", "name": "Critic", "event_type": "review", "levels": [2, 4]}]


def _people(api: Api, database: Database) -> tuple[str, str]:
    assert api.put("/programme/document", json={**document(), "badges": CRITIC}).is_success
    survivor = make_member(database, api.programme, card="EC5000001")
    duplicate = make_member(database, api.programme, email="ines@example.org")
    return str(survivor.id), str(duplicate.id)


def _review(api: Api, member: str) -> None:
    send(api, event("review", {"id": member}, {"stars": 5}, occurred_at=NOV))


def _badges(api: Api, member: str) -> list[tuple[str, int]]:
    return sorted((b["badge"], b["level"]) for b in api.get(f"/members/{member}/badges").json())


def _merge(api: Api, survivor: str, duplicate: str) -> dict[str, Any]:
    response = api.post(f"/members/{survivor}/merge", json={"duplicate_id": duplicate})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_joined_metric_upgrades_the_survivor_and_the_unmerge_takes_it_back(
    api: Api, database: Database
) -> None:
    survivor, duplicate = _people(api, database)
    buy(api, survivor, "200.00", NOV)
    buy(api, duplicate, "200.00", NOV)
    assert api.get(f"/members/{survivor}/tier").json()["tier"] == "bronze"

    merged = _merge(api, survivor, duplicate)

    assert merged["tier"] == {"before": "bronze", "after": "silver"}
    tier = api.get(f"/members/{survivor}/tier").json()
    assert (tier["tier"], tier["metric"]["spend"]) == ("silver", "400.00")
    history = api.get(f"/members/{survivor}/tier/history").json()
    assert [(h["to_tier"], h["reason"]) for h in history][-1] == ("silver", "merge")
    with database.transaction(readonly=True) as session:
        state = session.get(MemberState, uuid.UUID(merged["survivor_id"]))
        assert state is not None
        assert (state.state["purchases"], state.state["tier"]) == (2, "silver")

    api.post(f"/members/{survivor}/unmerge", json={"merge_id": merged["id"]})

    tier = api.get(f"/members/{survivor}/tier").json()
    assert (tier["tier"], tier["metric"]["spend"]) == ("bronze", "200.00")
    assert api.get(f"/members/{duplicate}/tier").json()["tier"] == "bronze"
    with database.transaction(readonly=True) as session:
        state = session.get(MemberState, uuid.UUID(merged["survivor_id"]))
        assert state is not None
        assert (state.state["purchases"], state.state["tier"]) == (1, "bronze")
    assert_verified(database, api.programme)


def test_badge_counters_add_up_and_badges_follow(api: Api, database: Database) -> None:
    survivor, duplicate = _people(api, database)
    _review(api, survivor)
    _review(api, duplicate)
    _review(api, duplicate)  # the duplicate reaches 2 reviews: critic, level 1
    assert (_badges(api, survivor), _badges(api, duplicate)) == ([], [("critic", 1)])

    merged = _merge(api, survivor, duplicate)

    assert (_badges(api, survivor), _badges(api, duplicate)) == ([("critic", 1)], [])
    _review(api, survivor)  # 1 + 2 + 1 = 4 reviews: level 2 at the threshold
    assert _badges(api, survivor) == [("critic", 1), ("critic", 2)]

    api.post(f"/members/{survivor}/unmerge", json={"merge_id": merged["id"]})

    assert (_badges(api, survivor), _badges(api, duplicate)) == ([("critic", 2)], [("critic", 1)])


def test_summed_counters_award_the_levels_they_jump_over(api: Api, database: Database) -> None:
    survivor, duplicate = _people(api, database)
    _review(api, survivor)
    _review(api, duplicate)  # 1 and 1: nobody holds a badge

    merged = _merge(api, survivor, duplicate)

    assert _badges(api, survivor) == [("critic", 1)]  # 2 reviews together
    api.post(f"/members/{survivor}/unmerge", json={"merge_id": merged["id"]})
    assert (_badges(api, survivor), _badges(api, duplicate)) == ([], [])


def test_the_most_recent_consent_wins_and_both_histories_are_kept(
    api: Api, database: Database
) -> None:
    survivor, duplicate = _people(api, database)
    early, late = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 9, 1, tzinfo=UTC)
    send(api, consent_changed({"id": survivor}, "email", False, occurred_at=early))
    send(api, consent_changed({"id": duplicate}, "email", True, occurred_at=late))
    send(api, consent_changed({"id": duplicate}, "sms", False, occurred_at=early))

    merged = _merge(api, survivor, duplicate)

    consents = {
        c["channel"]: c["granted"] for c in api.get(f"/members/{survivor}").json()["consents"]
    }
    assert consents == {"email": True, "sms": False}
    history = api.get(f"/members/{survivor}/consents/history").json()
    assert len(history) == 3

    api.post(f"/members/{survivor}/unmerge", json={"merge_id": merged["id"]})

    consents = {
        c["channel"]: c["granted"] for c in api.get(f"/members/{survivor}").json()["consents"]
    }
    assert consents == {"email": False}
    assert len(api.get(f"/members/{duplicate}/consents/history").json()) == 2
