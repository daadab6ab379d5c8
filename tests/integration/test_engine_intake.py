"""The engine on the intake path: programme documents, awards through the ledger, returns,
dry-run, versions recorded on postings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from fidelia.db import Database
from fidelia.models import LedgerTransaction, MemberState
from tests.fixtures.events import line, purchase, ref
from tests.fixtures.factories import Api, count_rows

RULES: dict[str, Any] = {
    "exclusive_groups": {"boosters": "best"},
    "rules": [
        {
            "id": "base",
            "name": "1 € = 1 point",
            "award": {"kind": "spend", "wallet": "points", "rate": 1, "rounding": "floor"},
        },
        {
            "id": "shoes-x2",
            "name": "Double points on shoes",
            "lines": {"field": "line.category", "op": "eq", "value": "shoes"},
            "award": {"kind": "booster", "of": "base", "multiplier": 2},
            "exclusive_group": "boosters",
        },
        {
            "id": "status",
            "name": "1 status point per 10 €",
            "award": {"kind": "spend", "wallet": "status", "rate": 0.1, "rounding": "floor"},
        },
        {
            "id": "review",
            "name": "+100 for a review",
            "event_type": "review",
            "award": {"kind": "fixed", "amount": 100},
            "limits": [{"per": "month", "max_awards": 1}],
        },
    ],
}


def _balance(api: Api, member_id: str, wallet: str) -> dict[str, Any]:
    response = api.get(f"/members/{member_id}/wallets", scope="read")
    assert response.status_code == 200, response.text
    return next(b for b in response.json() if b["wallet"] == wallet)


def test_a_purchase_earns_through_the_ledger_with_its_explanation(
    api: Api, member_factory: Any
) -> None:
    member = member_factory()
    applied = api.put("/programme/document", json=RULES)
    assert applied.status_code == 200, applied.text
    assert applied.json()["version"] == 1

    basket = [line("tee", 1, "20.00", category="tops"), line("boot", 1, "50.00", category="shoes")]
    response = api.post("/events", json=purchase(ref(member), lines=basket), scope="integration")

    assert response.status_code == 201, response.text
    outcome = response.json()
    # 70 € at 1 pt/€ = 70, plus the booster doubles the 50 € of shoes: +50; 7 status points
    assert outcome["totals"] == {"points": 120, "status": 7}
    booster = next(e for e in outcome["effects"] if e["rule"]["id"] == "shoes-x2")
    assert booster["rule"]["version"] == 1
    assert [x["sku"] for x in booster["explanation"]["lines"]] == ["boot"]
    assert _balance(api, str(member.id), "points")["available"] == 120
    assert _balance(api, str(member.id), "status")["available"] == 7


def test_resending_the_purchase_earns_nothing_more(api: Api, member_factory: Any) -> None:
    member = member_factory()
    api.put("/programme/document", json=RULES)
    event = purchase(ref(member), lines=[line("tee", 3, "10.00")])

    first = api.post("/events", json=event, scope="integration").json()
    again = api.post("/events", json=event, scope="integration")

    assert again.status_code == 200
    assert again.json()["totals"] == first["totals"] == {"points": 30, "status": 3}
    assert _balance(api, str(member.id), "points")["available"] == 30


def test_a_return_takes_back_what_the_returned_lines_earned(
    api: Api, member_factory: Any, database: Database
) -> None:
    member = member_factory()
    api.put("/programme/document", json=RULES)
    basket = [line("tee", 2, "10.00", category="tops"), line("boot", 1, "50.00", category="shoes")]
    bought = purchase(ref(member), lines=basket)
    api.post("/events", json=bought, scope="integration")
    # the rules change afterwards: the return must not use them
    changed = {
        **RULES,
        "rules": [{**RULES["rules"][0], "award": {**RULES["rules"][0]["award"], "rate": 5}}],
    }
    assert api.put("/programme/document", json=changed).json()["version"] == 2

    ret = {
        "id": "ret-1",
        "type": "return",
        "occurred_at": "2025-03-05T10:00:00+00:00",
        "member": ref(member),
        "properties": {
            "order_id": bought["properties"]["order_id"],
            "lines": [{"sku": "boot", "quantity": 1}],
        },
    }
    response = api.post("/events", json=ret, scope="integration")

    assert response.status_code == 201, response.text
    reversals = {
        (e["rule"]["id"], e["wallet"]): e["amount"]
        for e in response.json()["effects"]
        if e["kind"] == "reversal"
    }
    # the boot earned 50 (base) + 50 (booster) + 5 status points (of 7: floor(70 * 0.1))
    assert reversals == {
        ("base", "points"): "50",
        ("shoes-x2", "points"): "50",
        ("status", "status"): "5",
    }
    assert _balance(api, str(member.id), "points")["available"] == 20
    assert _balance(api, str(member.id), "status")["available"] == 2
    # returning the tees too takes back exactly the rest, whatever the rounding
    rest = {
        **ret,
        "id": "ret-2",
        "properties": {**ret["properties"], "lines": [{"sku": "tee", "quantity": 2}]},
    }
    assert api.post("/events", json=rest, scope="integration").status_code == 201
    assert _balance(api, str(member.id), "points")["available"] == 0
    assert _balance(api, str(member.id), "status")["available"] == 0


def test_postings_record_the_rule_version_that_produced_them(
    api: Api, member_factory: Any, database: Database
) -> None:
    member = member_factory()
    api.put("/programme/document", json=RULES)
    api.post(
        "/events", json=purchase(ref(member), lines=[line("a", 1, "10.00")]), scope="integration"
    )
    changed = {
        **RULES,
        "rules": [{**RULES["rules"][0], "award": {**RULES["rules"][0]["award"], "rate": 2}}],
    }
    api.put("/programme/document", json=changed)
    api.post(
        "/events", json=purchase(ref(member), lines=[line("a", 1, "10.00")]), scope="integration"
    )

    with database.transaction(readonly=True) as session:
        versions = session.scalars(
            select(LedgerTransaction.rule_version)
            .where(LedgerTransaction.member_id == member.id, LedgerTransaction.rule_id == "base")
            .order_by(LedgerTransaction.posted_at)
        ).all()
    assert versions == [1, 2]
    assert _balance(api, str(member.id), "points")["available"] == 10 + 20


def test_limits_use_the_state_kept_with_each_event(
    api: Api, member_factory: Any, database: Database
) -> None:
    member = member_factory()
    api.put("/programme/document", json=RULES)

    def review(n: int, day: int) -> dict[str, Any]:
        at = f"2025-03-{day:02d}T10:00:00+00:00"
        return {
            "id": f"rev-{n}",
            "type": "review",
            "occurred_at": at,
            "member": ref(member),
            "properties": {},
        }

    totals = [
        api.post("/events", json=review(n, d), scope="integration").json()["totals"]
        for n, d in ((1, 2), (2, 3))
    ]

    assert totals == [{"points": 100}, {}]
    assert count_rows(database, MemberState, MemberState.member_id == member.id) == 1


def test_dry_run_explains_and_writes_nothing(
    api: Api, member_factory: Any, database: Database
) -> None:
    member = member_factory()
    api.put("/programme/document", json=RULES)
    event = purchase(ref(member), lines=[line("boot", 1, "40.00", category="shoes")])

    response = api.post("/events/dry-run", json=event, scope="integration")

    assert response.status_code == 200, response.text
    assert response.json()["totals"] == {"points": 80, "status": 4}
    assert _balance(api, str(member.id), "points")["available"] == 0
    assert count_rows(database, LedgerTransaction, LedgerTransaction.member_id == member.id) == 0


def test_an_invalid_document_names_the_path_and_changes_nothing(api: Api) -> None:
    bad = {
        "rules": [
            RULES["rules"][0],
            {"id": "x", "name": "x", "award": {"kind": "spend", "wallet": "nope", "rate": 1}},
        ]
    }

    response = api.put("/programme/document", json=bad)

    assert response.status_code == 422, response.text
    assert any(f["loc"][:3] == ["body", "rules", 1] for f in response.json()["fields"])
    assert api.get("/programme/document").json() == {"version": 0, "document": None}


def test_applying_the_same_document_twice_makes_one_version(api: Api) -> None:
    first = api.put("/programme/document", json=RULES).json()
    second = api.put("/programme/document", json=RULES).json()

    assert (first["version"], first["applied"]) == (1, True)
    assert (second["version"], second["changed"], second["applied"]) == (1, False, False)
    assert [v["version"] for v in api.get("/programme/versions").json()] == [1]


def test_an_enrolment_naming_a_known_member_adds_its_new_identities(
    api: Api, member_factory: Any
) -> None:
    member = member_factory(card="CARD-77")
    event = {
        "id": "web-signup-1",
        "type": "enrolment",
        "occurred_at": "2025-03-01T10:00:00+00:00",
        "member": {"card": "CARD-77", "email": "Lea@Example.com"},
        "channel": "web",
        "properties": {"profile": {"first_name": "Léa"}},
    }

    response = api.post("/events", json=event, scope="integration")

    assert response.status_code == 201, response.text
    assert response.json()["member_id"] == str(member.id)
    found = api.get("/members/lookup", params={"email": "lea@example.com"}, scope="read")
    assert found.status_code == 200
    assert found.json()["id"] == str(member.id)
    assert found.json()["first_name"] == "Léa"


def test_rules_read_the_member_profile(api: Api, member_factory: Any) -> None:
    """The birthday-month booster fires for a member born in the month of the purchase."""
    birthday = {
        "id": "birthday",
        "name": "Double points in your birthday month",
        "when": {"field": "member.is_birthday_month", "op": "eq", "value": True},
        "award": {"kind": "booster", "of": "base", "multiplier": 2},
    }
    api.put("/programme/document", json={"rules": [RULES["rules"][0], birthday]})
    born_in_march = member_factory(birth_date="1990-03-14")
    born_in_july = member_factory(birth_date="1990-07-02")

    totals = [
        api.post(
            "/events", json=purchase(ref(m), lines=[line("a", 1, "10.00")]), scope="integration"
        ).json()["totals"]
        for m in (born_in_march, born_in_july)
    ]

    assert totals == [{"points": 20}, {"points": 10}]  # the purchase is on 1 March 2025
