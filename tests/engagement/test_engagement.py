"""Badges (by condition, with levels, by a rule's effect, by a challenge) and challenges
(goals over a period, rewards in points, vouchers and badges, once or repeatable)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.fixtures.events import event, line, purchase
from tests.fixtures.factories import Api

T = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
BADGES: list[dict[str, Any]] = [
    {"code": "earth-care", "name": "Earth Care", "event_type": "recycling"},
    {"code": "critic", "name": "Critic", "event_type": "review", "levels": [5]},
    {
        "code": "reviewer",
        "name": "Reviewer",
        "event_type": "review",
        "when": {"field": "event.properties.stars", "op": "gte", "value": 4},
        "levels": [1, 3],
    },
    {"code": "ambassador", "name": "Ambassador", "levels": [1, 2]},
    {"code": "summer", "name": "Summer shopper"},
]


def _send(api: Api, payload: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/events", json=payload, scope="integration")
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "accepted", body
    return body


def _member(api: Api) -> str:
    payload = event("enrolment", {"email": f"e-{T.timestamp()}@example.com"}, occurred_at=T)
    return str(_send(api, payload)["member_id"])


def _act(api: Api, member: str, type: str, at: datetime = T, **props: Any) -> dict[str, Any]:
    return _send(api, event(type, {"id": member}, props, occurred_at=at))


def _buy(api: Api, member: str, amount: str, at: datetime) -> dict[str, Any]:
    return _send(api, purchase({"id": member}, lines=[line("x", 1, amount)], occurred_at=at))


def _badges(api: Api, member: str) -> list[tuple[str, int]]:
    response = api.get(f"/members/{member}/badges", scope="read")
    assert response.status_code == 200, response.text
    return [(b["badge"], b["level"]) for b in response.json()]


def _apply(api: Api, **sections: Any) -> None:
    response = api.put("/programme/document", json={"badges": BADGES, **sections})
    assert response.status_code == 200, response.text


def test_the_first_drop_off_gives_earth_care_once(api: Api) -> None:
    _apply(api)
    member = _member(api)

    first = _act(api, member, "recycling", item="jeans")
    second = _act(api, member, "recycling", item="coat")

    assert [e["badge"] for e in first["effects"] if e["kind"] == "badge_earned"] == ["earth-care"]
    assert [e for e in second["effects"] if e["kind"] == "badge_earned"] == []
    listed = api.get(f"/members/{member}/badges", scope="read").json()
    assert [(b["badge"], b["name"], b["earned_at"][:10]) for b in listed] == [
        ("earth-care", "Earth Care", "2026-06-01")
    ]


def test_five_reviews_give_critic_and_levels_follow_their_counts(api: Api) -> None:
    _apply(api)
    member = _member(api)
    for i, stars in enumerate([5, 2, 4, 1, 5]):
        _act(api, member, "review", T + timedelta(hours=i), stars=stars)

    # reviewer counts 4-5 star reviews only: levels at 1 and 3 of them
    assert sorted(_badges(api, member)) == [("critic", 1), ("reviewer", 1), ("reviewer", 2)]


def test_a_rule_badge_effect_gives_the_next_level(api: Api) -> None:
    rules = [{"id": "refer", "name": "Referral", "event_type": "referral",
              "effects": [{"kind": "badge", "badge": "ambassador"}]}]  # fmt: skip
    _apply(api, rules=rules)
    member = _member(api)

    effects = [_act(api, member, "referral")["effects"] for _ in range(3)]

    earned = [[e.get("level") for e in fx if e["kind"] == "badge_earned"] for fx in effects]
    assert earned == [[1], [2], []]  # two levels, then nothing more


def test_a_challenge_counts_only_inside_its_period_and_rewards_once(api: Api) -> None:
    challenge = {
        "code": "summer", "name": "Summer: 3 purchases and 300 €",
        "starts_at": "2026-06-01T00:00:00+02:00", "ends_at": "2026-09-01T00:00:00+02:00",
        "goals": [{"measure": "count", "target": 3}, {"measure": "spend", "target": 300}],
        "reward": {"points": 300, "badge": "summer"},
    }  # fmt: skip
    _apply(api, challenges=[challenge])
    member = _member(api)
    _buy(api, member, "500.00", T - timedelta(days=2))  # before the summer: not counted
    _buy(api, member, "100.00", T)
    _buy(api, member, "100.00", T + timedelta(days=20))
    progress = api.get(f"/members/{member}/challenges", scope="read").json()[0]
    assert [(Decimal(g["progress"]), Decimal(g["left"])) for g in progress["goals"]] == [
        (2, 1), (200, 100),
    ]  # fmt: skip

    done = _buy(api, member, "150.00", T + timedelta(days=40))
    _buy(api, member, "150.00", T + timedelta(days=41))  # once: no second reward

    completed = [e for e in done["effects"] if e["kind"] == "challenge_completed"]
    assert completed[0]["reward"]["points"] == {"wallet": "points", "amount": 300}
    assert ("summer", 1) in _badges(api, member)
    wallets = api.get(f"/members/{member}/wallets", scope="read").json()
    assert next(w for w in wallets if w["wallet"] == "points")["available"] == 300
    listed = api.get(f"/members/{member}/challenges", scope="read").json()[0]
    assert (listed["status"], listed["completions"]) == ("completed", 1)


def test_a_repeatable_challenge_restarts_and_stops_at_its_maximum(api: Api) -> None:
    pool = {"code": "thanks", "name": "Thanks", "pattern": "THX-XXXXXXXX",
            "discount_type": "percent", "discount_value": "10"}  # fmt: skip
    assert api.post("/voucher-pools", json=pool).status_code == 201
    challenge = {"code": "reviews", "name": "Two reviews", "repeatable": True,
                 "max_completions": 2, "goals": [{"event_type": "review", "target": 2}],
                 "reward": {"voucher": "thanks"}}  # fmt: skip
    _apply(api, challenges=[challenge])
    member = _member(api)

    outcomes = [_act(api, member, "review", T + timedelta(hours=i)) for i in range(6)]

    completions = [
        e["round"] for o in outcomes for e in o["effects"] if e["kind"] == "challenge_completed"
    ]
    assert completions == [1, 2]
    vouchers = api.get(f"/members/{member}/vouchers", scope="read").json()
    assert [v["pool"] for v in vouchers] == ["thanks", "thanks"]


def test_a_voucher_effect_on_an_unknown_pool_is_reported_and_the_event_stands(api: Api) -> None:
    rules = [{"id": "gift", "name": "Gift", "event_type": "app_download",
              "award": {"kind": "fixed", "amount": 50},
              "effects": [{"kind": "voucher", "reward": "nowhere"}]}]  # fmt: skip
    _apply(api, rules=rules)
    member = _member(api)

    outcome = _act(api, member, "app_download")

    failed = next(e for e in outcome["effects"] if e["kind"] == "voucher_issued")
    assert (failed["status"], failed["reason"]) == ("failed", "not_found")
    assert outcome["totals"] == {"points": 50}


def test_bad_badge_and_challenge_definitions_are_refused_with_their_path(api: Api) -> None:
    cases = [
        ({"badges": [{"code": "a", "name": "A", "event_type": "x", "levels": [3, 1]}]},
         "badges.0"),
        ({"rules": [{"id": "r", "name": "R", "event_type": "x",
                     "effects": [{"kind": "badge", "badge": "ghost"}]}]},
         "rules.0.effects.0.badge"),
        ({"challenges": [{"code": "c", "name": "C", "goals": [{"target": 1}],
                          "reward": {"badge": "ghost"}}]}, "challenges.0.reward.badge"),
        ({"badges": [{"code": "b", "name": "B", "event_type": "x",
                      "when": {"field": "member.tier", "op": "eq", "value": "gold"}}]},
         "badges.0.when"),
    ]  # fmt: skip
    for doc, where in cases:
        response = api.put("/programme/document", json=doc)
        assert response.status_code == 422, response.text
        assert response.json()["detail"].startswith(where), response.json()
    assert api.get("/programme/document", scope="read").json()["version"] == 0
