"""Paying at the till with the cashback wallet, and with points where the programme allows it:
quote, pay idempotently by order, refused without writing, given back by a return of the
order (its share, cumulatively), reversed by a cancelled order."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.ledger import operations
from fidelia.ledger.verify import verify
from fidelia.models import Member, Programme
from fidelia.models.plans import TillPayment
from tests.fixtures.events import line, purchase, ref, return_of, returned
from tests.fixtures.factories import Api, count_rows

DOC: dict[str, Any] = {
    "rules": [{"id": "base", "name": "1 € = 1 point", "award": {"kind": "spend", "rate": 1}}],
    "till": {"pay_with": ["cashback", "points"]},
}


@pytest.fixture
def till_api(api: Api) -> Api:
    assert api.put("/programme/document", json=DOC).status_code == 200
    return api


def fund(
    database: Database, programme: Programme, member: Member, wallet: str, amount: Any
) -> None:
    with database.transaction() as session:
        live = session.get(Programme, programme.id)
        assert live is not None
        operations.award(
            session,
            programme=live,
            member_id=member.id,
            wallet=wallet,
            amount=amount,
            idempotency_key=f"fund-{uuid.uuid4().hex}",
            expires_at=utcnow() + timedelta(days=300),
        )


def balance(api: Api, member: Member, wallet: str) -> Decimal:
    found = api.get(f"/members/{member.id}/wallets", scope="read").json()
    return sum((Decimal(str(w["available"])) for w in found if w["wallet"] == wallet), Decimal(0))


def pay(
    api: Api,
    member: Member,
    order: str,
    amount: str,
    wallet: str = "cashback",
    total: str = "40.00",
) -> Any:
    body = {
        "member_id": str(member.id),
        "order_id": order,
        "wallet": wallet,
        "amount": amount,
        "order_total": total,
    }
    return api.post("/till/payments", json=body, scope="integration")


def test_cashback_pays_an_order_once_and_a_return_gives_back_its_share(
    till_api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()
    fund(database, till_api.programme, member, "cashback", Decimal("10.00"))
    quote = till_api.post(
        "/till/quote",
        scope="integration",
        json={
            "member_id": str(member.id),
            "order_id": "o1",
            "amount": "4.00",
            "order_total": "40.00",
        },
    )
    assert quote.status_code == 200, quote.text
    assert (quote.json()["valid"], quote.json()["available"]) == (True, "10.00")
    assert balance(till_api, member, "cashback") == Decimal("10.00")  # a quote writes nothing

    paid = pay(till_api, member, "o1", "4.00")
    assert paid.status_code == 201, paid.text
    assert (paid.json()["units"], paid.json()["replay"]) == ("4.00", False)
    retry = pay(till_api, member, "o1", "4.00")
    assert (retry.status_code, retry.json()["replay"]) == (200, True)
    assert retry.json()["id"] == paid.json()["id"]
    other_amount = pay(till_api, member, "o1", "5.00")
    assert other_amount.status_code == 409
    assert balance(till_api, member, "cashback") == Decimal("6.00")

    too_much = pay(till_api, member, "o2", "7.00")
    assert too_much.status_code == 409
    assert too_much.json()["error"] == "insufficient_balance"
    assert balance(till_api, member, "cashback") == Decimal("6.00")

    order = purchase(
        ref(member),
        order_id="o1",
        occurred_at=utcnow(),
        lines=[line("a", 1, "30.00"), line("b", 1, "10.00")],
    )
    assert till_api.post("/events", json=order, scope="integration").status_code == 201
    back = till_api.post(
        "/events",
        scope="integration",
        json=return_of(ref(member), "o1", [returned("b")], occurred_at=utcnow()),
    )
    assert back.status_code == 201, back.text
    refunds = [e for e in back.json()["effects"] if e["kind"] == "till_refund"]
    assert refunds == [
        {"kind": "till_refund", "wallet": "cashback", "order_id": "o1", "amount": "1.00"}
    ]
    rest = till_api.post(
        "/events",
        scope="integration",
        json=return_of(ref(member), "o1", [returned("a")], occurred_at=utcnow()),
    )
    assert [e["amount"] for e in rest.json()["effects"] if e["kind"] == "till_refund"] == ["3.00"]
    assert balance(till_api, member, "cashback") == Decimal("10.00")
    with database.transaction(readonly=True) as session:
        assert verify(session, programme_id=till_api.programme.id).ok


def test_points_pay_at_their_unit_value_and_a_cancelled_order_reverses_them(
    till_api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()
    fund(database, till_api.programme, member, "points", 1000)
    paid = pay(till_api, member, "p1", "5.00", wallet="points", total="20.00")
    assert paid.status_code == 201, paid.text
    assert paid.json()["units"] == "500"  # 1 point = 0.01 €
    assert balance(till_api, member, "points") == 500
    cancelled = till_api.post("/till/orders/p1/cancel", scope="integration")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()[0]["status"] == "reversed"
    assert balance(till_api, member, "points") == 1000
    assert till_api.post("/till/orders/nope/cancel", scope="integration").status_code == 404


def test_bad_input_is_refused_and_spends_nothing(
    till_api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    member = member_factory()
    fund(database, till_api.programme, member, "cashback", Decimal("10.00"))
    cases = [
        (pay(till_api, member, "b1", "1.00", wallet="status"), 422, ["body", "wallet"]),
        (pay(till_api, member, "b2", "50.00"), 422, ["body", "amount"]),
        (pay(till_api, member, "b3", "0.005"), 422, ["body", "amount"]),
        (pay(till_api, member, "b4", "-1"), 422, ["body", "amount"]),
    ]
    for response, code, loc in cases:
        assert response.status_code == code, response.text
        assert response.json()["fields"][0]["loc"] == loc
    stranger = till_api.post(
        "/till/payments",
        scope="integration",
        json={"member_id": str(uuid.uuid4()), "order_id": "b5", "amount": "1", "order_total": "9"},
    )
    assert stranger.status_code == 404
    read_only = till_api.post(
        "/till/payments",
        scope="read",
        json={"member_id": str(member.id), "order_id": "b6", "amount": "1", "order_total": "9"},
    )
    assert read_only.status_code == 403
    assert count_rows(database, TillPayment, TillPayment.programme_id == till_api.programme.id) == 0
    assert balance(till_api, member, "cashback") == Decimal("10.00")


def test_points_are_refused_where_the_programme_does_not_take_them(
    api: Api, member_factory: Callable[..., Member], database: Database
) -> None:
    assert api.put("/programme/document", json={"rules": DOC["rules"]}).status_code == 200
    member = member_factory()
    fund(database, api.programme, member, "points", 1000)
    refused = pay(api, member, "n1", "1.00", wallet="points")
    assert refused.status_code == 422
    assert "the till takes cashback only" in refused.json()["detail"]
