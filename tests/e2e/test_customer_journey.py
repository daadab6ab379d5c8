"""The seed's customer journey ("CUSTOMER JOURNEY TYPE — TRANSACTIONNEL & RELATIONNEL"), end to
end through the HTTP API only, on SQLite and PostgreSQL.

Enrolment gives a welcome coupon and a loyalty card; a used-item deposit gives +100 and the
"Earth Care" badge; the app download +100; a product review +100; a first purchase in a
category +60; Bronze earns 1 point per euro; past 300 € spent the member is Silver and earns 2;
5 purchases and 300 € complete a challenge worth +300. The member then returns the purchase
that made them Silver (the programme says ``on_return: recompute``: the points it earned are
taken back and the tier is recomputed at once), redeems a 10 € voucher for 200 points and a
donation to a charity, and uses the voucher at the till.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.fixtures.events import event, line, purchase, return_of
from tests.fixtures.factories import Api

DAY0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

PROGRAMME: dict[str, Any] = {
    "name": "Maison Verte",
    "rules": [
        {
            "id": "welcome",
            "name": "Welcome coupon",
            "event_type": "enrolment",
            "effects": [{"kind": "voucher", "reward": "welcome"}],
        },
        {
            "id": "base",
            "name": "1 € = 1 point (Silver: 2)",
            "award": {"kind": "spend", "rate": 1, "rate_by_tier": {"silver": 2}},
        },
        {
            "id": "deposit",
            "name": "Used item deposit",
            "event_type": "item_deposit",
            "award": {"kind": "fixed", "amount": 100},
        },
        {
            "id": "app",
            "name": "App download",
            "event_type": "app_download",
            "award": {"kind": "fixed", "amount": 100},
            "limits": [{"per": "lifetime", "max_awards": 1}],
        },
        {
            "id": "review",
            "name": "Product review",
            "event_type": "review",
            "award": {"kind": "fixed", "amount": 100},
        },
        {
            "id": "new-category",
            "name": "First purchase in a category",
            "first_time": "category",
            "award": {"kind": "fixed", "amount": 60},
        },
    ],
    "tiers": {
        "window": "rolling_12_months",
        "on_return": "recompute",
        "levels": [
            {"code": "bronze", "name": "Bronze", "labels": {"fr": "Bronze"}},
            {
                "code": "silver",
                "name": "Silver",
                "labels": {"fr": "Argent"},
                "requires": {"spend": "300"},
                "perks": [{"code": "double", "description": "1 € = 2 points"}],
            },
        ],
    },
    "badges": [
        {
            "code": "earth-care",
            "name": "Earth Care",
            "labels": {"fr": "Éco-responsable"},
            "event_type": "item_deposit",
        },
        {"code": "critic", "name": "Critic", "event_type": "review", "levels": [5]},
    ],
    "challenges": [
        {
            "code": "five-and-300",
            "name": "5 purchases and 300 €",
            "goals": [
                {"event_type": "purchase", "measure": "count", "target": 5},
                {"event_type": "purchase", "measure": "spend", "target": "300"},
            ],
            "reward": {"points": 300},
        }
    ],
}


class Journey:
    """The member's side of the story, as an integrator's calls."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.member_id = ""
        self.day = 0

    def send(self, payload: dict[str, Any]) -> dict[str, Any]:
        response = self.api.post("/events", json=payload, scope="integration")
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        assert body["status"] == "accepted", body
        return body

    def at(self) -> datetime:
        self.day += 1
        return DAY0 + timedelta(days=self.day)

    def act(self, type: str, **properties: Any) -> dict[str, Any]:
        return self.send(event(type, {"card": "MV-0001"}, properties, occurred_at=self.at()))

    def buy(self, order: str, amount: str, category: str) -> dict[str, Any]:
        lines = [line(f"{order}-item", 1, amount, category=category)]
        payload = purchase({"card": "MV-0001"}, order_id=order, lines=lines, occurred_at=self.at())
        return self.send(payload)

    def get(self, path: str) -> Any:
        response = self.api.get(f"/members/{self.member_id}{path}", scope="read")
        assert response.status_code == 200, response.text
        return response.json()

    def points(self) -> int:
        wallets = {w["wallet"]: w for w in self.get("/wallets")}
        return int(wallets["points"]["available"])

    def tier(self) -> str:
        return str(self.get("/tier")["tier"])

    def badges(self) -> list[str]:
        return [b["badge"] for b in self.get("/badges")]


def kinds(outcome: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in outcome["effects"]]


def _catalogue(api: Api) -> None:
    pools = [
        {"code": "welcome", "name": "Welcome 5 €", "pattern": "WELCOME-XXXXXXXX",
         "discount_type": "amount", "discount_value": "5", "validity_days": 365},
        {"code": "ten-euros", "name": "10 € voucher", "pattern": "TEN-XXXXXXXX",
         "discount_type": "amount", "discount_value": "10", "min_basket": "30",
         "validity_days": 365},
    ]  # fmt: skip
    for pool in pools:
        assert api.post("/voucher-pools", json=pool).status_code == 201
    rewards = [
        {"code": "voucher-10", "kind": "voucher", "name": "10 € voucher", "cost_points": 200,
         "pool": "ten-euros"},
        {"code": "ocean", "kind": "donation", "name": "2 € for the ocean", "cost_points": 200,
         "association": "Surfrider Foundation", "value": "2.00"},
    ]  # fmt: skip
    for reward in rewards:
        created = api.post("/rewards", json=reward)
        assert created.status_code == 201, created.text


def test_the_seed_customer_journey_end_to_end(api: Api) -> None:
    applied = api.put("/programme/document", json=PROGRAMME)
    assert applied.status_code == 200, applied.text
    _catalogue(api)
    me = Journey(api)

    # Enrolment: a loyalty card, a welcome coupon, Bronze
    enrol = me.send(
        event("enrolment", {"card": "MV-0001", "email": "lea@example.com"},
              {"profile": {"first_name": "Léa"}, "consents": []}, occurred_at=DAY0)
    )  # fmt: skip
    me.member_id = enrol["member_id"]
    assert enrol["member_created"] is True
    coupon = next(e for e in enrol["effects"] if e["kind"] == "voucher_issued")
    assert coupon["status"] == "issued"
    assert coupon["code"].startswith("WELCOME-")
    vouchers = me.get("/vouchers")
    assert [(v["pool"], v["status"]) for v in vouchers] == [("welcome", "active")]
    assert me.tier() == "bronze"
    assert me.points() == 0

    # Relational: deposit (+100 and Earth Care), app (+100), review (+100)
    deposit = me.act("item_deposit", item="coat")
    assert deposit["totals"] == {"points": 100}
    assert "badge_earned" in kinds(deposit)
    assert me.badges() == ["earth-care"]
    assert me.act("app_download", platform="ios")["totals"] == {"points": 100}
    assert me.act("app_download", platform="ios")["totals"] == {}  # once only
    assert me.act("review", product="boots")["totals"] == {"points": 100}
    assert me.points() == 300
    assert me.badges() == ["earth-care"]

    # Transactional: Bronze 1 €/pt, +60 for a first purchase in a category
    assert me.buy("o1", "60.00", "shoes")["totals"] == {"points": 120}
    assert me.buy("o2", "50.00", "shoes")["totals"] == {"points": 50}
    assert me.buy("o3", "40.00", "books")["totals"] == {"points": 100}
    assert me.buy("o4", "50.00", "shoes")["totals"] == {"points": 50}
    assert me.points() == 620
    assert me.tier() == "bronze"
    progress = me.get("/tier")
    assert progress["next"]["tier"] == "silver"
    assert Decimal(progress["next"]["missing"]["spend"]) == Decimal("100")
    challenge = me.get("/challenges")[0]
    assert [Decimal(g["progress"]) for g in challenge["goals"]] == [4, 200]

    # The fifth purchase crosses 300 €: earned at the Bronze rate, then Silver; challenge +300
    fifth = me.buy("o5", "120.00", "shoes")
    assert fifth["totals"] == {"points": 120}
    tier_change = next(e for e in fifth["effects"] if e["kind"] == "tier")
    assert (tier_change["from"], tier_change["to"], tier_change["reason"]) == (
        "bronze", "silver", "upgrade",
    )  # fmt: skip
    done = next(e for e in fifth["effects"] if e["kind"] == "challenge_completed")
    assert done["reward"] == {"points": {"wallet": "points", "amount": 300}}
    assert me.tier() == "silver"
    assert me.points() == 620 + 120 + 300
    assert me.get("/challenges")[0]["status"] == "completed"

    # Silver earns 2 points per euro
    assert me.buy("o6", "50.00", "shoes")["totals"] == {"points": 100}
    assert me.points() == 1140

    # A return after the upgrade: its points are taken back, the tier is recomputed (250 €)
    returned = me.send(
        return_of({"card": "MV-0001"}, "o5", [{"sku": "o5-item", "quantity": 1}],
                  occurred_at=me.at())
    )  # fmt: skip
    reversal = next(e for e in returned["effects"] if e["kind"] == "reversal")
    assert reversal["amount"] == "120"
    down = next(e for e in returned["effects"] if e["kind"] == "tier")
    assert (down["from"], down["to"], down["reason"]) == ("silver", "bronze", "return")
    assert me.points() == 1020
    assert me.tier() == "bronze"
    history = [(h["from_tier"], h["to_tier"], h["reason"]) for h in me.get("/tier/history")]
    assert history == [
        (None, "bronze", "joined"), ("bronze", "silver", "upgrade"), ("silver", "bronze", "return"),
    ]  # fmt: skip
    assert me.buy("o7", "30.00", "shoes")["totals"] == {"points": 30}  # Bronze rate again
    assert me.points() == 1050

    # Catalogue: a 10 € voucher for 200 points, a donation to a charity
    offers = {o["reward"]["code"]: o for o in me.get("/rewards")}
    assert offers["voucher-10"]["price"] == 200
    assert offers["voucher-10"]["affordable"]
    voucher = _redeem(api, me.member_id, "voucher-10", "r-1")["voucher"]
    _redeem(api, me.member_id, "ocean", "r-2")
    assert me.points() == 1050 - 200 - 200
    totals = api.get("/donations/totals", scope="read").json()
    assert totals == [{"association": "Surfrider Foundation", "donations": 1, "points": 200,
                       "value": "2.00"}]  # fmt: skip

    # At the till: validate, then use the voucher; a second use is refused
    basket = {"total": "45.00"}
    check = api.post(
        "/vouchers/validate",
        scope="integration",
        json={"code": voucher["code"], "member_id": me.member_id, "basket": basket},
    )
    assert check.json()["valid"] is True
    assert Decimal(check.json()["discount"]) == 10
    use = {"code": voucher["code"], "member_id": me.member_id, "basket": basket, "order_id": "t-1"}
    assert api.post("/vouchers/redeem", json=use, scope="integration").status_code == 201
    again = api.post(
        "/vouchers/validate",
        scope="integration",
        json={"code": voucher["code"], "member_id": me.member_id, "basket": basket},
    )
    assert again.json()["valid"] is False
    assert again.json()["reason"] == "used"
    statuses = {v["pool"]: v["status"] for v in me.get("/vouchers")}
    assert statuses == {"welcome": "active", "ten-euros": "used"}
    assert me.badges() == ["earth-care"]
    assert me.tier() == "bronze"
    assert me.points() == 650


def _redeem(api: Api, member_id: str, reward: str, key: str) -> dict[str, Any]:
    response = api.post(
        f"/members/{member_id}/redemptions",
        json={"reward": reward, "idempotency_key": key},
        scope="integration",
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] in ("issued", "used")
    return body
