"""Member-get-member: codes and links, the link at enrolment, fraud guards with reason codes,
rewards at the first qualifying purchase (once, capped, taken back by a return), figures."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from fidelia.db import Database
from fidelia.engagement.referrals import normalise_email
from fidelia.models import Base, Member, Programme
from fidelia.models.engagement_plus import Referral
from tests.fixtures.events import event, line, purchase
from tests.fixtures.factories import Api, count_rows

T = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
NOTICES = Base.metadata.tables["notifications"]
REFERRAL: dict[str, Any] = {
    "link": "https://shop.example/join?ref={code}",
    "at_enrolment": {"points": 100},
    "first_purchase": {
        "min_amount": "30",
        "within_days": 30,
        "referee": {"points": 200},
        "referrer": {"points": 500},
    },
    "cap": {"rewards": 2, "period": "month"},
    "return_takes_back": True,
}


def apply(api: Api, referral: dict[str, Any] | None = None) -> None:
    response = api.put("/programme/document", json={"referral": referral or REFERRAL})
    assert response.status_code == 200, response.text


def enrol(api: Api, email: str, code: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"email": email, "enrolled_at": T.isoformat(), **extra}
    if code is not None:
        body["referral_code"] = code
    response = api.post("/members", json=body, scope="integration")
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def points(api: Api, member: str) -> int:
    response = api.get(f"/members/{member}/wallets/points/balance", scope="read")
    assert response.status_code == 200, response.text
    return int(response.json()["available"])


def buy(api: Api, member: str, amount: str, at: datetime, order: str) -> dict[str, Any]:
    payload = purchase({"id": member}, order_id=order, lines=[line("x", 1, amount)], occurred_at=at)
    response = api.post("/events", json=payload, scope="integration")
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "accepted", body
    return body


def code_of(api: Api, member: str) -> dict[str, Any]:
    response = api.get(f"/members/{member}/referral", scope="read")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def kinds(body: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in body["effects"] if e["kind"].startswith("referral")]


def test_a_referee_enrols_with_the_code_and_both_earn_at_the_first_qualifying_purchase(
    api: Api, database: Database, programme: Programme
) -> None:
    apply(api)
    anna = enrol(api, f"anna-{uuid.uuid4().hex[:6]}@example.com")["id"]
    mine = code_of(api, anna)
    assert mine["link"] == f"https://shop.example/join?ref={mine['code']}"
    assert len(mine["code"]) == 10

    bob = enrol(api, f"bob-{uuid.uuid4().hex[:6]}@example.com", mine["code"].lower())
    assert [e["kind"] for e in bob["enrolment"]["effects"]] == ["referral_enrolled"]
    assert points(api, bob["id"]) == 100

    small = buy(api, bob["id"], "20.00", T + timedelta(days=1), "o-small")
    assert kinds(small) == []
    first = buy(api, bob["id"], "45.00", T + timedelta(days=2), "o-first")
    again = buy(api, bob["id"], "90.00", T + timedelta(days=3), "o-again")

    assert kinds(first) == ["referral_qualified"]
    assert kinds(again) == []
    assert points(api, bob["id"]) == 300
    assert points(api, anna) == 500
    stats = code_of(api, anna)["stats"]
    assert stats == {"invited": 1, "enrolled": 1, "qualified": 1, "rewarded": 1, "refused": {}}
    assert code_of(api, bob["id"])["referred_by"] == anna
    with database.transaction() as s:
        notices = s.execute(
            select(NOTICES.c.member_id, NOTICES.c.payload).where(
                NOTICES.c.programme_id == programme.id, NOTICES.c.type == "referral.qualified"
            )
        ).all()
    assert [(str(m), p["referrer_id"], p["order_id"]) for m, p in notices] == [
        (bob["id"], anna, "o-first")
    ]


def test_a_purchase_after_the_window_does_not_qualify(api: Api) -> None:
    apply(api)
    anna = enrol(api, f"anna-{uuid.uuid4().hex[:6]}@example.com")["id"]
    bob = enrol(api, f"bob-{uuid.uuid4().hex[:6]}@example.com", code_of(api, anna)["code"])["id"]

    late = buy(api, bob, "100.00", T + timedelta(days=31), "o-late")

    assert kinds(late) == []
    assert points(api, anna) == 0


def test_an_unknown_code_refuses_the_enrolment_and_writes_nothing(
    api: Api, database: Database, programme: Programme
) -> None:
    apply(api)
    before = count_rows(database, Member, Member.programme_id == programme.id)

    response = api.post(
        "/members",
        json={"email": "carl@example.com", "referral_code": "NOSUCHCODE"},
        scope="integration",
    )

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["fields"] == [
        {"loc": ["body", "referral_code"], "msg": "no member has this referral code"}
    ]
    assert count_rows(database, Member, Member.programme_id == programme.id) == before


def test_a_code_is_refused_where_the_programme_has_no_referral_scheme(api: Api) -> None:
    response = api.put("/programme/document", json={"rules": []})
    assert response.status_code == 200, response.text
    response = api.post(
        "/members", json={"email": "dan@example.com", "referral_code": "ABC"}, scope="integration"
    )
    assert response.status_code == 422, response.text
    assert "no referral scheme" in response.json()["detail"]


def test_gmail_aliases_are_the_same_mailbox() -> None:
    assert normalise_email("Jean.Dupont+promo@googlemail.com") == "jeandupont@gmail.com"
    assert normalise_email("jean.dupont+x@example.com") == "jean.dupont@example.com"


def test_fraud_guards_refuse_the_link_with_a_reason_code(
    api: Api, database: Database, programme: Programme
) -> None:
    apply(api)
    tag = uuid.uuid4().hex[:6]
    anna = enrol(
        api,
        f"anna.{tag}@gmail.com",
        phone="+33611223344",
        postal_code="75011",
        attributes={"address": "12 rue Oberkampf"},
    )["id"]
    code = code_of(api, anna)["code"]

    alias = enrol(api, f"anna{tag}+2@gmail.com", code)
    dotted = enrol(api, f"a.n.n.a.{tag}@googlemail.com", code)  # a phone is unique anyway
    same_home = enrol(
        api, f"y-{tag}@example.com", code, postal_code="75011",
        attributes={"address": "12, Rue Oberkampf"},
    )  # fmt: skip

    for enrolled in (alias, dotted, same_home):
        effects = enrolled["enrolment"]["effects"]
        assert [(e["kind"], e["reason"]) for e in effects] == [
            ("referral_refused", "self_referral")
        ]
        assert points(api, enrolled["id"]) == 0
    stats = code_of(api, anna)["stats"]
    assert stats["invited"] == 3
    assert stats["enrolled"] == 0
    assert stats["refused"] == {"self_referral": 3}
    refused = count_rows(
        database, Referral, Referral.programme_id == programme.id, Referral.status == "refused"
    )
    assert refused == 3


def test_a_prospect_known_before_is_not_new(api: Api) -> None:
    response = api.put(
        "/programme/document",
        json={"referral": REFERRAL, "settings": {"unknown_member": "enrol_prospect"}},
    )
    assert response.status_code == 200, response.text
    anna = enrol(api, f"anna-{uuid.uuid4().hex[:6]}@example.com")["id"]
    email = f"pat-{uuid.uuid4().hex[:6]}@example.com"
    buy_body = purchase({"email": email}, lines=[line("x", 1, "10.00")], occurred_at=T)
    assert api.post("/events", json=buy_body, scope="integration").json()["status"] == "accepted"

    joined = api.post(
        "/events",
        json=event(
            "enrolment", {"email": email}, {"referral_code": code_of(api, anna)["code"]},
            occurred_at=T + timedelta(days=1),
        ),
        scope="integration",
    ).json()  # fmt: skip

    assert joined["status"] == "accepted", joined
    assert [(e["kind"], e.get("reason")) for e in joined["effects"]] == [
        ("referral_refused", "not_new")
    ]


def test_the_referrer_cap_and_a_return_taking_rewards_back(api: Api) -> None:
    apply(api)
    anna = enrol(api, f"anna-{uuid.uuid4().hex[:6]}@example.com")["id"]
    code = code_of(api, anna)["code"]
    referees = [
        enrol(api, f"r{i}-{uuid.uuid4().hex[:6]}@example.com", code)["id"] for i in range(3)
    ]
    results = [
        buy(api, r, "50.00", T + timedelta(days=1, hours=i), f"o-{i}-{r}")
        for i, r in enumerate(referees)
    ]
    rewards = [
        next(e for e in b["effects"] if e["kind"] == "referral_qualified")["rewards"]
        for b in results
    ]
    assert [r["referrer"].get("status") for r in rewards] == [None, None, "capped"]
    assert points(api, anna) == 1000

    order = f"o-0-{referees[0]}"
    ret = event(
        "return", {"id": referees[0]}, {"order_id": order, "lines": [{"sku": "x", "quantity": 1}]},
        occurred_at=T + timedelta(days=5),
    )  # fmt: skip
    back = api.post("/events", json=ret, scope="integration").json()

    assert back["status"] == "accepted", back
    assert "referral_reversed" in [e["kind"] for e in back["effects"]]
    assert points(api, anna) == 500
    assert points(api, referees[0]) == 100  # the welcome gift stays
    listed = api.get("/referrals", params={"status": "reversed"}, scope="read").json()
    assert [r["referee_id"] for r in listed] == [referees[0]]


def test_a_member_enrolled_before_the_scheme_gets_a_code_by_post(api: Api) -> None:
    response = api.put("/programme/document", json={"rules": []})
    assert response.status_code == 200, response.text
    old = enrol(api, f"old-{uuid.uuid4().hex[:6]}@example.com")["id"]
    apply(api)

    before = code_of(api, old)
    created = api.post(f"/members/{old}/referral", scope="integration")
    again = api.post(f"/members/{old}/referral", scope="integration")

    assert (before["code"], before["link"]) == (None, None)
    assert created.status_code == 200, created.text
    assert created.json()["code"] == again.json()["code"] == code_of(api, old)["code"]
    assert (
        enrol(api, f"new-{uuid.uuid4().hex[:6]}@example.com", created.json()["code"])["enrolment"][
            "effects"
        ][0]["kind"]
        == "referral_enrolled"
    )
