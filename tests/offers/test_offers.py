"""Offers through the API: a personal booster reaches the earning path (and a return takes its
share back), points and voucher offers are delivered when given, a list and a segment, the
conversion measure, bad input refused with nothing written; first-N offers at enrolment."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.ledger.verify import verify
from fidelia.models import LedgerTransaction, Member
from fidelia.models.offers import OfferTarget
from tests.fixtures.events import enrolment, line, purchase, ref, return_of, returned
from tests.fixtures.factories import Api, count_rows

NOW = utcnow()
AT = NOW - timedelta(hours=1)
SINCE = (NOW - timedelta(days=1)).isoformat()

DOC: dict[str, Any] = {
    "rules": [{"id": "base", "name": "1 € = 1 point", "award": {"kind": "spend", "rate": 1}}],
    "voucher_pools": [
        {
            "code": "five-off",
            "name": "5 € off",
            "pattern": "OFF-XXXX-XXXX",
            "discount_type": "amount",
            "discount_value": "5",
            "validity_days": 30,
        },
    ],
    "offers": [
        {
            "code": "double",
            "name": "Double points for you",
            "kind": "booster",
            "multiplier": 2,
            "max_uses": 2,
            "valid_days": 30,
        },
        {"code": "gift-200", "name": "200 points, on us", "kind": "points", "amount": 200},
        {"code": "coupon", "name": "A 5 € coupon", "kind": "voucher", "reward": "five-off"},
        {
            "code": "free-delivery",
            "name": "Free delivery this month",
            "kind": "perk",
            "perk": {"code": "free-delivery", "description": "Free delivery"},
            "valid_days": 31,
        },
        {
            "code": "welcome-3",
            "name": "The first 3 members get 100 points",
            "kind": "points",
            "amount": 100,
            "first_n": {"count": 3, "enrolled_after": SINCE},
        },
    ],
}


@pytest.fixture
def offers_api(api: Api) -> Api:
    applied = api.put("/programme/document", json=DOC)
    assert applied.status_code == 200, applied.text
    return api


def points_of(api: Api, member: Member, wallet: str = "points") -> int:
    found = api.get(f"/members/{member.id}/wallets", scope="read")
    assert found.status_code == 200, found.text
    return sum(int(w["available"]) for w in found.json() if w["wallet"] == wallet)


def buy(api: Api, member: Member, order: str, *lines: dict[str, Any]) -> dict[str, Any]:
    body = purchase(ref(member), order_id=order, lines=list(lines), occurred_at=utcnow())
    response = api.post("/events", json=body, scope="integration")
    assert response.status_code == 201, response.text
    return dict(response.json())


def by_rule(outcome: dict[str, Any]) -> dict[str, int]:
    return {e["rule"]["id"]: int(e["amount"]) for e in outcome["effects"] if e["kind"] == "award"}


def test_a_personal_booster_doubles_one_members_purchases_within_its_use_limit(
    offers_api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    chosen, other = member_factory(), member_factory()
    given = offers_api.post("/offers/double/give", json={"member_ids": [str(chosen.id)]})
    assert given.status_code == 200, given.text
    assert given.json() == {"offer": "double", "given": 1, "already": 0}

    first = buy(offers_api, chosen, "o1", line("a", 1, "30.00"), line("b", 1, "20.00"))
    assert by_rule(first) == {"base": 50, "offer:double": 50}
    assert by_rule(buy(offers_api, other, "o2", line("a", 1, "30.00"))) == {"base": 30}
    assert by_rule(buy(offers_api, chosen, "o3", line("a", 1, "10.00"))) == {
        "base": 10,
        "offer:double": 10,
    }
    # max_uses 2: the third purchase is not boosted
    assert by_rule(buy(offers_api, chosen, "o4", line("a", 1, "10.00"))) == {"base": 10}

    # returning line b of o1 takes back its base points and its boosted share (20 + 20)
    back = offers_api.post(
        "/events",
        json=return_of(ref(chosen), "o1", [returned("b")], occurred_at=utcnow()),
        scope="integration",
    )
    assert back.status_code == 201, back.text
    taken = {
        e["rule"]["id"]: int(e["amount"]) for e in back.json()["effects"] if e["kind"] == "reversal"
    }
    assert taken == {"base": 20, "offer:double": 20}

    offer = offers_api.get("/offers/double", scope="read").json()
    assert offer["conversion"]["offered"] == 1
    assert offer["conversion"]["used"] == 1
    assert offer["conversion"]["uses"] == 2
    assert offer["conversion"]["revenue"] == "60.00"
    mine = offers_api.get(f"/members/{chosen.id}/offers", scope="read").json()
    assert [(o["code"], o["status"], o["uses"], o["uses_left"]) for o in mine] == [
        ("double", "used", 2, 0)
    ]
    with database.transaction(readonly=True) as session:
        assert verify(session, programme_id=offers_api.programme.id).ok


def test_points_voucher_and_perk_offers_are_delivered_when_given(
    offers_api: Api, member_factory: Callable[..., Member]
) -> None:
    a, b = member_factory(), member_factory()
    ids = [str(a.id), str(b.id)]
    assert offers_api.post("/offers/gift-200/give", json={"member_ids": ids}).json()["given"] == 2
    # giving again changes nothing: no second credit
    again = offers_api.post("/offers/gift-200/give", json={"member_ids": ids}).json()
    assert again == {"offer": "gift-200", "given": 0, "already": 2}
    assert points_of(offers_api, a) == 200

    assert offers_api.post("/offers/coupon/give", json={"member_ids": [ids[0]]}).status_code == 200
    [coupon] = offers_api.get(f"/members/{a.id}/offers?active=true", scope="read").json()[:1]
    assert coupon["code"] == "coupon"
    assert coupon["voucher_code"].startswith("OFF-")

    assert (
        offers_api.post("/offers/free-delivery/give", json={"member_ids": [ids[1]]}).status_code
        == 200
    )
    perks = offers_api.get(f"/members/{b.id}/perks", scope="read").json()
    assert [(p["code"], p["sources"][0]["kind"]) for p in perks["perks"]] == [
        ("free-delivery", "offer")
    ]
    assert offers_api.get(f"/members/{a.id}/perks", scope="read").json()["perks"] == []

    listing = {o["offer"]["code"]: o for o in offers_api.get("/offers", scope="read").json()}
    assert listing["gift-200"]["conversion"]["offered"] == 2
    assert listing["coupon"]["conversion"]["offered"] == 1
    assert listing["welcome-3"]["slots_left"] == 3


def test_bad_input_is_refused_and_gives_nothing(
    offers_api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()
    unknown = uuid.uuid4()
    response = offers_api.post(
        "/offers/gift-200/give", json={"member_ids": [str(member.id), str(unknown)]}
    )
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["loc"] == ["body", "member_ids", 1]
    assert (
        offers_api.post("/offers/nope/give", json={"member_ids": [str(member.id)]}).status_code
        == 404
    )
    bad_segment = offers_api.post("/offers/gift-200/give", json={"segment": "nobody"})
    assert bad_segment.status_code == 422
    assert bad_segment.json()["fields"][0]["loc"] == ["body", "segment"]
    both = offers_api.post(
        "/offers/gift-200/give", json={"member_ids": [str(member.id)], "segment": "x"}
    )
    assert both.status_code == 422
    assert (
        offers_api.post(
            "/offers/gift-200/give", json={"member_ids": [str(member.id)]}, scope="read"
        ).status_code
        == 403
    )
    assert (
        count_rows(database, OfferTarget, OfferTarget.programme_id == offers_api.programme.id) == 0
    )
    assert points_of(offers_api, member) == 0


def test_an_offer_document_with_errors_is_refused_with_its_path(api: Api) -> None:
    cases = [
        ({"code": "x", "name": "X", "kind": "booster"}, "a booster offer needs multiplier"),
        ({"code": "x", "name": "X", "kind": "voucher", "reward": "missing"}, "offers.0.reward"),
        ({"code": "x", "name": "X", "kind": "booster", "multiplier": "0.5"}, "multiplier"),
        ({"code": "x", "name": "X", "kind": "points", "amount": 5, "max_uses": 2}, "max_uses"),
    ]
    for offer, named in cases:
        response = api.put("/programme/document", json={"offers": [offer]})
        assert response.status_code == 422, response.text
        assert named in response.json()["detail"]
        assert response.json()["fields"][0]["loc"][:3] in (["body", "offers", 0], ["offers", 0])
    assert api.get("/offers", scope="read").json() == []


def test_the_first_three_enrolments_after_the_date_get_the_welcome_offer(
    offers_api: Api, database: Database
) -> None:
    early = offers_api.post(
        "/events",
        json=enrolment(
            {"email": f"e-{uuid.uuid4().hex[:8]}@example.org"}, occurred_at=NOW - timedelta(days=2)
        ),
        scope="integration",
    )
    assert early.status_code == 201, early.text
    assert "offer:welcome-3" not in by_rule(early.json())
    got = []
    for _ in range(5):
        body = enrolment({"email": f"n-{uuid.uuid4().hex[:8]}@example.org"}, occurred_at=AT)
        response = offers_api.post("/events", json=body, scope="integration")
        assert response.status_code == 201, response.text
        got.append(by_rule(response.json()).get("offer:welcome-3", 0))
    assert got == [100, 100, 100, 0, 0]
    with database.transaction(readonly=True) as session:
        slots = session.scalars(
            select(OfferTarget.slot).where(
                OfferTarget.programme_id == offers_api.programme.id,
                OfferTarget.offer == "welcome-3",
            )
        ).all()
        assert sorted(slots) == [1, 2, 3]
        credited = session.scalars(
            select(LedgerTransaction.id).where(
                LedgerTransaction.programme_id == offers_api.programme.id,
                LedgerTransaction.rule_id == "offer:welcome-3",
            )
        ).all()
        assert len(credited) == 3
    listing = {o["offer"]["code"]: o for o in offers_api.get("/offers", scope="read").json()}
    assert listing["welcome-3"]["slots_left"] == 0
    assert listing["welcome-3"]["conversion"]["offered"] == 3
