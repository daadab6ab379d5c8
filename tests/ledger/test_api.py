"""The ledger through its HTTP surface."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fidelia.db import Database
from fidelia.ledger import operations as ops
from fidelia.ledger import wallets
from fidelia.models import Programme
from tests.fixtures.factories import Api, make_member, make_programme
from tests.ledger.conftest import T0

PARIS = ZoneInfo("Europe/Paris")


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


def _end_of(day: date) -> datetime:
    """The expiry instant of value valid through local ``day`` in Paris (the next midnight)."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=PARIS).astimezone(UTC)


def _award(
    database: Database,
    programme: Programme,
    member_id: uuid.UUID,
    amount: Any,
    expires_at: datetime | None,
    wallet: str = "points",
) -> None:
    with database.transaction() as s:
        ops.award(
            s,
            programme=programme,
            member_id=member_id,
            wallet=wallet,
            amount=amount,
            idempotency_key=f"earn-{uuid.uuid4().hex}",
            expires_at=expires_at,
        )


def test_expiring_value_per_local_day_for_a_member_and_for_the_programme(
    database: Database,
    ledger_programme: Programme,
    new_member: Callable[[], uuid.UUID],
    api_factory: Callable[[Programme], Api],
) -> None:
    """Given lots expiring in 10, 40 and 200 days, one never, one overdue and a spend that
    consumed part of the soonest, the endpoints list what remains per last valid local day."""
    api, p = api_factory(ledger_programme), ledger_programme
    today = datetime.now(PARIS).date()
    soon, later, far = (today + timedelta(days=n) for n in (10, 40, 200))
    a, b, idle = new_member(), new_member(), new_member()
    _award(database, p, a, 100, _end_of(soon))
    _award(database, p, a, 30, _end_of(soon))
    _award(database, p, a, 40, _end_of(later))
    _award(database, p, a, 5, datetime.combine(later, time(10), tzinfo=PARIS))  # 10:00 that day
    _award(database, p, a, 70, _end_of(far))
    _award(database, p, a, 20, None)  # never expires
    _award(database, p, a, 15, datetime.now(UTC) - timedelta(days=1))  # overdue, not swept yet
    _award(database, p, a, Decimal("5.25"), _end_of(soon), wallet="cashback")
    _award(database, p, b, 25, _end_of(soon))
    with database.transaction() as s:  # soonest expiry first: 30 of the 100 due on ``soon``
        ops.spend(s, programme=p, member_id=a, wallet="points", amount=30, idempotency_key="s")
    other = make_programme(database)  # another programme's lots never show
    with database.transaction() as s:
        wallets.ensure_default_wallets(s, programme=other)
    _award(database, other, make_member(database, other).id, 999, _end_of(soon))

    def expiring(path: str) -> list[tuple[str, Any]]:
        response = api.get(path, scope="read")
        assert response.status_code == 200, response.text
        return [(row["date"], row["amount"]) for row in response.json()]

    s, la, f = soon.isoformat(), later.isoformat(), far.isoformat()
    assert expiring(f"/members/{a}/wallets/points/expiring") == [(s, 100), (la, 45)]
    assert expiring(f"/members/{a}/wallets/points/expiring?days=366") == [
        (s, 100),
        (la, 45),
        (f, 70),
    ]
    assert expiring(f"/members/{a}/wallets/points/expiring?days=5") == []
    assert expiring(f"/members/{a}/wallets/cashback/expiring") == [(s, "5.25")]
    assert expiring(f"/members/{b}/wallets/points/expiring") == [(s, 25)]
    assert expiring(f"/members/{idle}/wallets/points/expiring") == []
    assert expiring("/ledger/expiring?wallet=points") == [(s, 125), (la, 45)]
    assert expiring("/ledger/expiring?wallet=points&days=366") == [(s, 125), (la, 45), (f, 70)]
    assert expiring("/ledger/expiring?wallet=cashback") == [(s, "5.25")]
    for bad in ("days=0", "days=367"):
        assert api.get(f"/ledger/expiring?{bad}", scope="read").status_code == 422
    assert api.get("/ledger/expiring?wallet=miles", scope="read").status_code == 404


def test_balance_as_of_replays_earn_spend_pending_release_and_expiry(
    database: Database,
    ledger_programme: Programme,
    new_member: Callable[[], uuid.UUID],
    api_factory: Callable[[Programme], Api],
) -> None:
    """100 earned at T0 (expiring T0 + 30 days), 30 spent at T0 + 5 days, 50 earned pending at
    T0 + 10 days (released 14 days later); the balance replayed at each moment in between."""
    api, p, m = api_factory(ledger_programme), ledger_programme, new_member()
    spent_at, second_at, expires = (
        T0 + timedelta(days=5),
        T0 + timedelta(days=10),
        T0 + timedelta(days=30),
    )
    released_at = second_at + timedelta(days=14)
    with database.transaction() as s:
        ops.award(s, programme=p, member_id=m, wallet="points", amount=100,
                  idempotency_key="earn", occurred_at=T0, expires_at=expires, now=T0)  # fmt: skip
    with database.transaction() as s:
        ops.spend(s, programme=p, member_id=m, wallet="points", amount=30,
                  idempotency_key="spend", occurred_at=spent_at, now=spent_at)  # fmt: skip
    with database.transaction() as s:
        ops.award(s, programme=p, member_id=m, wallet="points", amount=50,
                  idempotency_key="earn-2", occurred_at=second_at, expires_at=None,
                  available_at=released_at, now=second_at)  # fmt: skip
    sweep = expires + timedelta(days=1)
    with database.transaction() as s:  # what the release and expiry jobs do
        release, expire = ops.due_lots(s, programme=p, now=sweep)
        assert (len(release), len(expire)) == (1, 1)
        ops.release_lot(s, programme=p, lot_id=release[0], now=sweep)
        ops.expire_lot(s, programme=p, lot_id=expire[0], now=sweep)

    def as_of(when: datetime) -> tuple[Any, Any]:
        response = api.get(
            f"/members/{m}/wallets/points/balance", params={"as_of": when.isoformat()}, scope="read"
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert datetime.fromisoformat(body["as_of"]) == when
        return body["available"], body["pending"]

    assert as_of(T0 - timedelta(seconds=1)) == (0, 0)  # before the earn
    assert as_of(T0) == (100, 0)
    assert as_of(T0 + timedelta(days=1)) == (100, 0)  # between earn and spend
    assert as_of(spent_at) == (70, 0)
    assert as_of(second_at + timedelta(hours=1)) == (70, 50)  # the second earn is pending
    assert as_of(released_at.astimezone(PARIS)) == (120, 0)  # any offset, same instant
    assert as_of(expires - timedelta(microseconds=1)) == (120, 0)
    assert as_of(expires) == (50, 0)  # the 70 left of the first lot expired
    assert as_of(sweep) == (50, 0)
    now = api.get(f"/members/{m}/wallets/points/balance", scope="read").json()
    assert (now["available"], now["pending"]) == (50, 0)
    naive = api.get(
        f"/members/{m}/wallets/points/balance",
        params={"as_of": "2026-01-20T10:00:00"},
        scope="read",
    )
    assert naive.status_code == 422, naive.text
