"""Badges and challenges read ``member.segments`` and ``traits.*``: a badge for a segment's
members is earned by them only (segments as they stood before the event); an unknown trait in a
badge's condition is refused at apply with its path."""

from __future__ import annotations

from typing import Any

from tests.fixtures.factories import Api, unique_email
from tests.segments.conftest import CAT_BUYERS, apply, buy, document, enrol, segments_of

CAT_CLUB = {
    "code": "cat-club",
    "name": "Cat club",
    "event_type": "purchase",
    "when": {"field": "member.segments", "op": "contains", "value": "cat-buyers"},
}


def _badges(api: Api, member: str) -> list[str]:
    response = api.get(f"/members/{member}/badges", scope="read")
    assert response.status_code == 200, response.text
    return [b["badge"] for b in response.json()]


def _document(badge: dict[str, Any]) -> dict[str, Any]:
    return {**document(CAT_BUYERS), "badges": [badge]}


def test_a_badge_for_a_segment_is_earned_by_its_members_only(api: Api) -> None:
    apply(api, _document(CAT_CLUB))
    member = enrol(api, unique_email())
    other = enrol(api, unique_email())
    buy(api, member, days_ago=2, category="cat-food")
    assert segments_of(api, member) == ["cat-buyers"]
    assert _badges(api, member) == []  # not in the segment before that purchase
    buy(api, member, days_ago=1)
    buy(api, other, days_ago=1)
    assert _badges(api, member) == ["cat-club"]
    assert _badges(api, other) == []


def test_an_unknown_trait_in_a_badge_is_refused_with_its_path(api: Api) -> None:
    badge = {**CAT_CLUB, "when": {"field": "traits.shoe_size", "op": "gte", "value": 42}}
    response = api.put("/programme/document", json=_document(badge))
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["loc"] == ["body", "badges", 0, "when", "field"]
    profile = {**CAT_CLUB, "when": {"field": "member.tier", "op": "eq", "value": "gold"}}
    response = api.put("/programme/document", json=_document(profile))
    assert response.status_code == 422, response.text  # only member.segments of the member
