"""A merge and an unmerge recompute both members' traits and segment memberships in their own
transaction: the survivor's traits count both members' purchases, and its segments follow."""

from __future__ import annotations

from typing import Any

from tests.fixtures.factories import Api
from tests.segments.conftest import apply, buy, document, enrol, segment, segments_of

TWO_PURCHASES = segment(
    "two-purchases", {"field": "traits.purchases_count", "op": "gte", "value": 2}
)


def _traits(api: Api, member_id: str) -> dict[str, Any]:
    response = api.get(f"/members/{member_id}/traits", scope="read")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_merge_and_unmerge_recompute_traits_and_segments(api: Api) -> None:
    apply(api, document(TWO_PURCHASES))
    survivor = enrol(api, "ana@example.org")
    duplicate = enrol(api, "ana.m@example.org")
    buy(api, survivor, days_ago=10)
    buy(api, duplicate, days_ago=5)
    assert (segments_of(api, survivor), segments_of(api, duplicate)) == ([], [])

    merged = api.post(f"/members/{survivor}/merge", json={"duplicate_id": duplicate})
    assert merged.status_code == 201, merged.text

    assert _traits(api, survivor)["purchases_count"] == 2
    assert _traits(api, survivor)["spend_total"] == "20.00"
    assert _traits(api, duplicate)["purchases_count"] == 0
    assert segments_of(api, survivor) == ["two-purchases"]

    back = api.post(f"/members/{survivor}/unmerge", json={"merge_id": merged.json()["id"]})
    assert back.status_code == 200, back.text

    counts = (_traits(api, survivor)["purchases_count"], _traits(api, duplicate)["purchases_count"])
    assert counts == (1, 1)
    assert (segments_of(api, survivor), segments_of(api, duplicate)) == ([], [])
