"""Voucher pools and rewards as sections of the programme document."""

from __future__ import annotations

from typing import Any

from tests.fixtures.factories import Api

POOL = {
    "code": "bon-10",
    "name": "10 € voucher",
    "pattern": "BON10-XXXX-XXXX",
    "discount_type": "amount",
    "discount_value": "10",
}
REWARD = {
    "code": "voucher-10",
    "kind": "voucher",
    "name": "10 € voucher",
    "cost_points": 200,
    "pool": "bon-10",
    "stock": 5,
}


def _document(**changes: Any) -> dict[str, Any]:
    return {
        "voucher_pools": [{**POOL, **changes.get("pool", {})}],
        "rewards": [{**REWARD, **changes.get("reward", {})}],
    }


def test_applying_a_document_creates_its_pools_and_rewards(api: Api) -> None:
    assert api.put("/programme/document", json=_document()).status_code == 200

    rewards = api.get("/rewards", scope="read").json()
    pools = api.get("/voucher-pools", scope="read").json()

    assert [(r["code"], r["cost_points"], r["stock"]) for r in rewards] == [("voucher-10", 200, 5)]
    assert [p["code"] for p in pools] == ["bon-10"]


def test_a_new_version_updates_rewards_but_never_resets_their_stock(api: Api) -> None:
    api.put("/programme/document", json=_document())
    reward_id = api.get("/rewards", scope="read").json()[0]["id"]
    api.patch(f"/rewards/{reward_id}", json={"stock": 2})

    response = api.put("/programme/document", json=_document(reward={"cost_points": 250}))

    assert response.status_code == 200, response.text
    reward = api.get(f"/rewards/{reward_id}", scope="read").json()
    assert (reward["cost_points"], reward["stock"]) == (250, 2)


def test_changing_a_pools_discount_is_refused_and_changes_nothing(api: Api) -> None:
    api.put("/programme/document", json=_document())

    response = api.put("/programme/document", json=_document(pool={"discount_value": "15"}))

    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["loc"] == ["body", "voucher_pools", 0, "discount_value"]
    assert api.get("/programme/document").json()["version"] == 1


def test_a_reward_for_an_unknown_tier_names_the_path(api: Api) -> None:
    tiers = {"levels": [{"code": "bronze", "name": "Bronze"}]}
    document = {**_document(reward={"eligible_tiers": ["platinum"]}), "tiers": tiers}

    response = api.put("/programme/document", json=document)

    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "rewards", 0]
    assert api.get("/rewards", scope="read").json() == []
