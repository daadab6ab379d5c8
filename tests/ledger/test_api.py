"""The ledger through its HTTP surface."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fidelia.db import Database
from fidelia.ledger import operations as ops
from fidelia.models import Programme
from tests.fixtures.factories import Api


def test_balances_adjust_transfer_reverse_history(
    database: Database,
    ledger_programme: Programme,
    new_member: Callable[[], uuid.UUID],
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(ledger_programme)
    a, b = new_member(), new_member()
    with database.transaction() as s:
        ops.award(
            s,
            programme=ledger_programme,
            member_id=a,
            wallet="points",
            amount=120,
            idempotency_key="e",
        )
    body = {
        "member_id": str(a),
        "wallet": "cashback",
        "amount": "5.25",
        "reason": "goodwill",
        "actor": "alice",
        "idempotency_key": "adj1",
    }
    created = api.post("/ledger/adjustments", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["entries"][0]["amount"] in ("5.25", "-5.25")
    assert api.post("/ledger/adjustments", json=body).json()["error"] == "already_posted"
    wallets = {w["wallet"]: w for w in api.get(f"/members/{a}/wallets", scope="read").json()}
    assert (wallets["points"]["available"], wallets["cashback"]["available"]) == (120, "5.25")
    moved = api.post(
        "/ledger/transfers",
        scope="integration",
        json={
            "from_member_id": str(a),
            "to_member_id": str(b),
            "wallet": "points",
            "amount": 20,
            "idempotency_key": "t1",
        },
    )
    assert moved.status_code == 201, moved.text
    too_much = api.post(
        "/ledger/transfers",
        scope="integration",
        json={
            "from_member_id": str(a),
            "to_member_id": str(b),
            "wallet": "points",
            "amount": 1000,
            "idempotency_key": "t2",
        },
    )
    assert (too_much.status_code, too_much.json()["error"]) == (409, "insufficient_balance")
    undo = api.post(
        f"/ledger/transactions/{moved.json()['id']}/reverse",
        json={"reason": "mistake", "actor": "bob", "idempotency_key": "rv"},
    )
    assert undo.status_code == 201, undo.text
    again = api.post(
        f"/ledger/transactions/{moved.json()['id']}/reverse",
        json={"reason": "again", "actor": "bob", "idempotency_key": "rv2"},
    )
    assert again.status_code == 409
    history = api.get(f"/members/{a}/wallets/points/history?limit=2", scope="read").json()
    assert [h["kind"] for h in history["items"]] == ["reverse", "transfer"]
    assert history["next_cursor"]
    as_of = api.get(f"/members/{a}/wallets/points/balance", scope="read").json()
    assert as_of["available"] == 120
    assert (
        api.get(f"/members/{a}/wallets/points/expiring?days=366", scope="read").status_code == 200
    )
    assert api.get("/ledger/expiring?wallet=points", scope="read").status_code == 200


def test_wallet_declaration_and_errors(
    ledger_programme: Programme, api_factory: Callable[[Programme], Api]
) -> None:
    api = api_factory(ledger_programme)
    miles = {
        "code": "miles",
        "name": "Miles",
        "unit_value": "0.005",
        "expiry": {"kind": "end_of_period", "period": "year", "months": 12},
        "pending": {"kind": "days", "days": 14},
    }
    assert api.put("/ledger/wallets/miles", json=miles).status_code == 200
    assert "miles" in [w["code"] for w in api.get("/ledger/wallets", scope="read").json()]
    assert api.put("/ledger/wallets/miles", json={**miles, "unit": "money"}).status_code == 409
    assert (
        api.put("/ledger/wallets/miles", json={**miles, "expiry": {"kind": "rolling"}}).status_code
        == 422
    )
    assert api.put("/ledger/wallets/miles", json=miles, scope="integration").status_code == 403
    unknown = api.get(f"/members/{uuid.uuid4()}/wallets", scope="read")
    assert unknown.status_code == 404
