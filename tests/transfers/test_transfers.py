"""Transfers between members through the API, on both databases: the policy, its refusals
(each writing nothing), idempotent retries, the ledger, notices, audit and the list."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from fidelia.db import Database
from fidelia.ledger import operations as ops
from fidelia.members import service as members
from fidelia.models import LedgerTransaction, Lot, Notification, Programme
from fidelia.models.audit import AuditEntry
from fidelia.models.transfers import PointTransfer
from tests.fixtures.factories import Api, count_rows, make_member, make_programme
from tests.ledger.conftest import assert_verified, balance
from tests.transfers.conftest import enable

Member = Callable[..., uuid.UUID]


def _written(database: Database, programme: Programme) -> tuple[int, int]:
    return (
        count_rows(database, LedgerTransaction, LedgerTransaction.programme_id == programme.id),
        count_rows(database, PointTransfer, PointTransfer.programme_id == programme.id),
    )


def _give(api: Api, sender: uuid.UUID, to: dict[str, Any], amount: Any, ref: str, **more: Any):  # type: ignore[no-untyped-def]
    body = {"to": to, "wallet": "points", "amount": amount, "reference": ref, **more}
    return api.post(f"/members/{sender}/transfers", scope="integration", json=body)


def test_a_member_gives_points_by_email(
    database: Database,
    transfer_programme: Programme,
    rich_member: Member,
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(transfer_programme)
    p = transfer_programme
    sender = rich_member(800)
    receiver = rich_member(0, email="camille@example.com")
    with database.transaction(readonly=True) as s:
        sender_lot = s.scalars(select(Lot).where(Lot.programme_id == p.id)).one()
        sender_expiry = sender_lot.expires_at

    given = _give(api, sender, {"email": "Camille@Example.com"}, 300, "gift-1", reason="bday")
    assert given.status_code == 201, given.text
    body = given.json()
    assert (body["amount"], body["direction"], body["channel"]) == (300, "sent", "api")
    assert body["receiver_id"] == str(receiver)
    assert balance(database, p, sender) == (500, 0)
    assert balance(database, p, receiver) == (300, 0)
    assert_verified(database, p)
    with database.transaction(readonly=True) as s:
        received = s.scalars(
            select(Lot).where(Lot.programme_id == p.id, Lot.transaction_id == uuid.UUID(
                body["transaction_id"]))
        ).one()  # fmt: skip
        assert received.expires_at == sender_expiry  # a transfer never extends validity
        notices = s.execute(
            select(Notification.member_id, Notification.payload).where(
                Notification.programme_id == p.id, Notification.type == "points.transferred"
            )
        ).all()
        assert {(m, n["points"]) for m, n in notices} == {(sender, -300), (receiver, 300)}
        audit = s.scalars(
            select(AuditEntry).where(
                AuditEntry.programme_id == p.id, AuditEntry.action == "points.transfer"
            )
        ).one()
        assert audit.target_id == str(sender)
        assert audit.reason == "bday"
        assert audit.after is not None
        assert audit.after["receiver_id"] == str(receiver)

    # A retry gives back the same transfer; the same reference for another one is refused.
    again = _give(api, sender, {"id": str(receiver)}, 300, "gift-1")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    written = _written(database, p)
    other = _give(api, sender, {"id": str(receiver)}, 200, "gift-1")
    assert (other.status_code, other.json()["error"]) == (409, "reference_reused")
    assert _written(database, p) == written

    listed = api.get(f"/members/{receiver}/transfers", scope="read").json()
    assert [(t["id"], t["direction"]) for t in listed["items"]] == [(body["id"], "received")]
    assert (
        api.get(f"/members/{sender}/transfers", scope="read").json()["items"][0]["direction"]
        == "sent"
    )


def test_off_by_default(database: Database, api_factory: Callable[[Programme], Api]) -> None:
    from fidelia.ledger import wallets

    p = make_programme(database)
    with database.transaction() as s:
        wallets.ensure_default_wallets(session=s, programme=p)
    a, b = make_member(database, p).id, make_member(database, p).id
    with database.transaction() as s:
        ops.award(s, programme=p, member_id=a, wallet="points", amount=500, idempotency_key="e")
    before = _written(database, p)
    refused = _give(api_factory(p), a, {"id": str(b)}, 100, "r1")
    assert (refused.status_code, refused.json()["error"]) == (403, "transfers_disabled")
    assert _written(database, p) == before


@pytest.mark.parametrize(
    ("case", "status", "error"),
    [
        ("cashback", 409, "wallet_not_transferable"),
        ("below", 422, "amount_below_minimum"),
        ("above", 422, "amount_above_maximum"),
        ("self", 422, "self_transfer"),
        ("closed", 409, "receiver_inactive"),
        ("suspended_sender", 409, "sender_inactive"),
        ("other_programme", 404, "not_found"),
        ("unknown_email", 404, "not_found"),
        ("insufficient", 409, "insufficient_balance"),
        ("too_new", 409, "member_too_new"),
        ("fractional", 422, "validation_error"),
    ],
)
def test_refusals_write_nothing(
    database: Database,
    transfer_programme: Programme,
    rich_member: Member,
    api_factory: Callable[[Programme], Api],
    case: str,
    status: int,
    error: str,
) -> None:
    p = transfer_programme
    api = api_factory(p)
    sender, receiver = rich_member(400), rich_member(0)
    to: dict[str, Any] = {"id": str(receiver)}
    amount: Any = 100
    extra: dict[str, Any] = {}
    if case == "cashback":
        extra["wallet"] = "cashback"
    elif case == "below":
        amount = 49
    elif case == "above":
        amount = 1001
    elif case == "self":
        to = {"id": str(sender)}
    elif case in ("closed", "suspended_sender"):
        who = receiver if case == "closed" else sender
        with database.transaction() as s:
            member = members.get(s, programme=p, member_id=who)
            target = "closed" if case == "closed" else "suspended"
            members.set_status(s, member=member, status=target, actor="test")
    elif case == "other_programme":
        to = {"id": str(make_member(database, make_programme(database)).id)}
    elif case == "unknown_email":
        to = {"email": "nobody-here@example.com"}
    elif case == "insufficient":
        amount = 401
    elif case == "too_new":
        enable(database, p, min_member_age_days=30)
    elif case == "fractional":
        amount = "10.5"
    before = _written(database, p)
    refused = _give(api, sender, to, amount, f"r-{case}", **extra)
    assert (refused.status_code, refused.json()["error"]) == (status, error), refused.text
    assert _written(database, p) == before
    assert balance(database, p, sender) == (400, 0)
    assert balance(database, p, receiver) == (0, 0)


def test_monthly_limits(
    database: Database,
    transfer_programme: Programme,
    rich_member: Member,
    api_factory: Callable[[Programme], Api],
) -> None:
    p = transfer_programme
    api = api_factory(p)
    sender, receiver = rich_member(5000), rich_member(0)
    for i in range(2):
        assert _give(api, sender, {"id": str(receiver)}, 700, f"m{i}").status_code == 201
    over = _give(api, sender, {"id": str(receiver)}, 101, "m2")  # 1400 given, limit 1500
    assert (over.status_code, over.json()["error"]) == (409, "monthly_sent_limit")
    assert "100 left" in over.json()["detail"]
    assert _give(api, sender, {"id": str(receiver)}, 100, "m3").status_code == 201

    # The receiver's limit (2000) counts what every sender gave them.
    other = rich_member(5000)
    assert _give(api, other, {"id": str(receiver)}, 500, "o1").status_code == 201
    full = _give(api, other, {"id": str(receiver)}, 100, "o2")
    assert (full.status_code, full.json()["error"]) == (409, "monthly_received_limit")

    # At most five transfers a month.
    enable(database, p, max_sent_per_month=None, max_received_per_month=None)
    third = rich_member(0)
    for i in range(2):
        assert _give(api, sender, {"id": str(third)}, 50, f"c{i}").status_code == 201
    counted = _give(api, sender, {"id": str(third)}, 50, "c2")
    assert (counted.status_code, counted.json()["error"]) == (409, "monthly_count_limit")
    assert balance(database, p, sender) == (5000 - 1500 - 100, 0)
    assert_verified(database, p)


def test_policy_is_validated_when_the_document_is_applied(
    database: Database, transfer_programme: Programme, api_factory: Callable[[Programme], Api]
) -> None:
    from fidelia.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="min_amount is above max_per_transfer"):
        enable(database, transfer_programme, min_amount=2000)
    with pytest.raises(ValidationFailed, match="transfers"):
        enable(database, transfer_programme, wallets=["gems"])
