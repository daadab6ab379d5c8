"""Paid membership: the lifecycle through the operator API and the calendar, benefits that
start and stop with the state (an earning multiplier, perks, a tier floor), points earned
under a benefit kept after it stops, and bad input refused with nothing written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.models import Member, Programme
from fidelia.models.plans import Subscription, SubscriptionChange
from fidelia.plans import service
from tests.fixtures.events import line, purchase, ref
from tests.fixtures.factories import Api, count_rows

PLANS: dict[str, Any] = {
    "rules": [{"id": "base", "name": "1 € = 1 point", "award": {"kind": "spend", "rate": 1}}],
    "tiers": {
        "levels": [
            {"code": "bronze", "name": "Bronze"},
            {
                "code": "gold",
                "name": "Gold",
                "requires": {"spend": "1000"},
                "perks": [{"code": "early-access", "description": "Early access to the sales"}],
            },
        ]
    },
    "plans": [
        {
            "code": "plus-monthly",
            "name": "Plus, monthly",
            "period": "month",
            "price": "4.99",
            "currency": "EUR",
            "trial_days": 14,
            "grace_days": 5,
            "benefits": {
                "earning_multiplier": "1.5",
                "tier_floor": "gold",
                "perks": [{"code": "free-delivery", "description": "Free delivery"}],
            },
        },
        {
            "code": "plus-yearly",
            "name": "Plus, yearly",
            "period": "year",
            "price": "49",
            "currency": "EUR",
            "benefits": {"earning_multiplier": 2},
        },
    ],
}


@pytest.fixture
def plans_api(api: Api) -> Api:
    applied = api.put("/programme/document", json=PLANS)
    assert applied.status_code == 200, applied.text
    return api


def buy(api: Api, member: Member, euros: str) -> dict[str, int]:
    body = purchase(ref(member), lines=[line("a", 1, euros)], occurred_at=utcnow())
    response = api.post("/events", json=body, scope="integration")
    assert response.status_code == 201, response.text
    effects = response.json()["effects"]
    return {e["rule"]["id"]: int(e["amount"]) for e in effects if e["kind"] == "award"}


def points(api: Api, member: Member) -> int:
    found = api.get(f"/members/{member.id}/wallets", scope="read").json()
    return sum(int(w["available"]) for w in found if w["wallet"] == "points")


def test_a_trial_gives_benefits_from_its_start_and_cancelling_stops_them_at_once(
    plans_api: Api, member_factory: Callable[..., Member]
) -> None:
    member = member_factory()
    assert buy(plans_api, member, "20.00") == {"base": 20}
    started = plans_api.post(f"/members/{member.id}/subscription", json={"plan": "plus-monthly"})
    assert started.status_code == 201, started.text
    body = started.json()
    assert (body["status"], body["benefits_active"]) == ("trialing", True)
    assert buy(plans_api, member, "20.00") == {"base": 20, "plan:plus-monthly": 10}
    perks = plans_api.get(f"/members/{member.id}/perks", scope="read").json()
    assert perks["effective_tier"] == "gold"
    assert perks["plan"] == "plus-monthly"
    assert {p["code"]: [s["kind"] for s in p["sources"]] for p in perks["perks"]} == {
        "early-access": ["tier"],
        "free-delivery": ["plan"],
    }

    again = plans_api.post(f"/members/{member.id}/subscription", json={"plan": "plus-yearly"})
    assert again.status_code == 409
    assert again.json()["error"] == "already_subscribed"

    cancelled = plans_api.post(
        f"/members/{member.id}/subscription/actions", json={"action": "cancel"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["benefits_active"]) == (
        "cancelled",
        False,
    )
    assert buy(plans_api, member, "20.00") == {"base": 20}
    assert plans_api.get(f"/members/{member.id}/perks", scope="read").json()["perks"] == []
    # the 10 points earned under the plan stay
    assert points(plans_api, member) == 20 + 30 + 20
    history = [(h["from_status"], h["to_status"], h["cause"]) for h in cancelled.json()["history"]]
    assert history == [(None, "trialing", "operator"), ("trialing", "cancelled", "operator")]
    # and the member may subscribe again
    renewed = plans_api.post(
        f"/members/{member.id}/subscription", json={"plan": "plus-yearly", "paid": True}
    )
    assert renewed.json()["status"] == "active"
    assert buy(plans_api, member, "10.00") == {"base": 10, "plan:plus-yearly": 10}


def test_the_calendar_moves_a_lapsed_period_to_past_due_then_expired(
    plans_api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()
    start = utcnow() - timedelta(days=40)
    with database.transaction() as session:
        programme = session.get(Programme, plans_api.programme.id)
        assert programme is not None
        sub = service.subscribe(
            session,
            programme=programme,
            member_id=member.id,
            plan_code="plus-yearly",
            paid=True,
            now=start,
        )
        assert sub.status == "active"
        plan = service.plan_of(session, programme, "plus-yearly")
        end = sub.period_end
        assert service.effective(sub, plan, end - timedelta(seconds=1)) == "active"
        assert service.effective(sub, plan, end) == "past_due"
        assert service.effective(sub, plan, end + timedelta(days=7)) == "expired"
        sub_id = sub.id
    # a month-long trial that lapsed 20 days ago: past due within the 5 grace days? no: expired
    other = member_factory()
    with database.transaction() as session:
        live = session.get(Programme, plans_api.programme.id)
        assert live is not None
        trial = service.subscribe(
            session,
            programme=live,
            member_id=other.id,
            plan_code="plus-monthly",
            now=utcnow() - timedelta(days=20),
        )
        trial_id = trial.id
    shown = plans_api.get(f"/members/{other.id}/subscription", scope="read").json()
    assert (shown["status"], shown["stored_status"], shown["benefits_active"]) == (
        "expired",
        "trialing",
        False,
    )
    assert buy(plans_api, other, "10.00") == {"base": 10}
    assert plans_api.post("/plans/sweep").json() == {"changed": 1}
    with database.transaction(readonly=True) as session:
        stored = session.get(Subscription, trial_id)
        assert stored is not None
        assert stored.status == "expired"
        assert stored.ended_at == stored.grace_until
        assert session.get(Subscription, sub_id).status == "active"  # type: ignore[union-attr]
    changes = count_rows(
        database, SubscriptionChange, SubscriptionChange.subscription_id == trial_id
    )
    assert changes == 3  # trialing, past_due (dated at the trial end), expired
    listing = {p["plan"]["code"]: p for p in plans_api.get("/plans", scope="read").json()}
    assert listing["plus-yearly"]["live"] == 1
    assert listing["plus-monthly"]["by_status"] == {"expired": 1}
    assert Decimal(listing["plus-monthly"]["plan"]["price"]) == Decimal("4.99")


def test_renewal_and_a_failed_payment_with_grace(
    plans_api: Api, member_factory: Callable[..., Member]
) -> None:
    member = member_factory()
    created = plans_api.post(
        f"/members/{member.id}/subscription", json={"plan": "plus-yearly", "paid": True}
    ).json()
    failed = plans_api.post(
        f"/members/{member.id}/subscription/actions", json={"action": "payment_failed"}
    ).json()
    assert (failed["status"], failed["benefits_active"]) == ("past_due", True)
    assert buy(plans_api, member, "10.00") == {"base": 10, "plan:plus-yearly": 10}
    renewed = plans_api.post(
        f"/members/{member.id}/subscription/actions", json={"action": "renew"}
    ).json()
    assert renewed["status"] == "active"
    assert renewed["period_end"] > created["period_end"]
    assert renewed["grace_until"] is None


def test_bad_input_is_refused_and_writes_nothing(
    plans_api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()
    unknown = plans_api.post(f"/members/{member.id}/subscription", json={"plan": "gold-club"})
    assert unknown.status_code == 422
    assert unknown.json()["fields"][0]["loc"] == ["body", "plan"]
    read_only = plans_api.post(
        f"/members/{member.id}/subscription", json={"plan": "plus-yearly"}, scope="read"
    )
    assert read_only.status_code == 403
    none = plans_api.get(f"/members/{member.id}/subscription", scope="read")
    assert none.status_code == 404
    assert count_rows(database, Subscription, Subscription.member_id == member.id) == 0
    bad_doc = plans_api.put(
        "/programme/document",
        json={**PLANS, "plans": [{**PLANS["plans"][0], "benefits": {"tier_floor": "platinum"}}]},
    )
    assert bad_doc.status_code == 422
    assert bad_doc.json()["fields"][0]["loc"] == ["body", "plans", 0, "benefits", "tier_floor"]


def test_an_exclusive_reward_is_for_subscribers_only(
    api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    doc = {
        **PLANS,
        "rewards": [{"code": "vip-tote", "kind": "product", "name": "VIP tote", "cost_points": 10}],
        "plans": [
            {**PLANS["plans"][1], "benefits": {"exclusive_rewards": ["vip-tote"]}},
        ],
    }
    assert api.put("/programme/document", json=doc).status_code == 200
    member = member_factory()
    buy(api, member, "50.00")

    def seen() -> dict[str, Any]:
        found = api.get(f"/members/{member.id}/rewards", scope="read").json()
        [tote] = [r for r in found if r["reward"]["code"] == "vip-tote"]
        return dict(tote)

    assert (seen()["eligible"], seen()["reasons"]) == (False, ["plan"])
    refused = api.post(
        f"/members/{member.id}/redemptions",
        scope="integration",
        json={"reward": "vip-tote", "idempotency_key": "r1"},
    )
    assert refused.status_code == 409, refused.text
    assert points(api, member) == 50
    api.post(f"/members/{member.id}/subscription", json={"plan": "plus-yearly", "paid": True})
    assert (seen()["eligible"], seen()["reasons"]) == (True, [])
