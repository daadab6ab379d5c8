"""A wallet's policies as awards read them (parsed once per wallet and document): a changed
policy applies to the value earned after the change, whether the wallet was declared again or
its document changed on the object the session holds."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from fidelia.db import Database
from fidelia.ledger import operations as ops
from fidelia.ledger import wallets
from fidelia.ledger.schemas import ExpiryPolicy, PendingPolicy, WalletIn
from fidelia.models import Lot, Programme
from tests.ledger.conftest import T0


def declare(database: Database, programme: Programme, days: int, pending: int | None) -> None:
    with database.transaction() as session:
        wallets.declare_wallet(
            session,
            programme=programme,
            data=WalletIn(
                code="gift",
                name="Gift points",
                expiry=ExpiryPolicy(kind="rolling", days=days),
                pending=PendingPolicy(kind="days", days=pending) if pending else PendingPolicy(),
            ),
        )


def earn(database: Database, programme: Programme, member_id: uuid.UUID, key: str) -> Lot:
    with database.transaction() as session:
        txn = ops.award(
            session,
            programme=programme,
            member_id=member_id,
            wallet="gift",
            amount=10,
            idempotency_key=key,
            occurred_at=T0,
            now=T0,
        )
        lot = session.scalar(select(Lot).where(Lot.transaction_id == txn.id))
        assert lot is not None
        return lot


def test_a_changed_policy_applies_to_what_is_earned_after(
    database: Database, ledger_programme: Programme, new_member: Callable[[], uuid.UUID]
) -> None:
    member = new_member()
    declare(database, ledger_programme, days=30, pending=None)
    first = earn(database, ledger_programme, member, "policy-1")
    assert (first.expires_at, first.pending) == (T0 + timedelta(days=30), 0)

    declare(database, ledger_programme, days=60, pending=7)
    second = earn(database, ledger_programme, member, "policy-2")
    assert (second.expires_at, second.available_at) == (
        T0 + timedelta(days=60),
        T0 + timedelta(days=7),
    )
    assert second.pending == 10


def test_a_document_changed_in_place_is_read_again(
    database: Database, ledger_programme: Programme
) -> None:
    declare(database, ledger_programme, days=30, pending=None)
    with database.transaction(readonly=True) as session:
        wallet = wallets.get_wallet(session, programme=ledger_programme, code="gift")
        assert wallets.expiry_policy(wallet).days == 30
        assert wallets.expiry_policy(wallet) is wallets.expiry_policy(wallet)  # parsed once
        wallet.expiry_policy["days"] = 45  # the same dict object, changed
        assert wallets.expiry_policy(wallet).days == 45
        wallet.pending_policy = {"kind": "manual"}
        assert wallets.pending_policy(wallet).kind == "manual"
