"""Transfer fixtures: a programme whose document enables transfers, members with points."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from fidelia.db import Database
from fidelia.ledger import operations as ops
from fidelia.ledger import wallets
from fidelia.models import Programme
from fidelia.programmes import documents
from tests.fixtures.factories import make_member, make_programme

POLICY: dict[str, Any] = {
    "enabled": True,
    "wallets": ["points"],
    "min_amount": 50,
    "max_per_transfer": 1000,
    "max_sent_per_month": 1500,
    "max_received_per_month": 2000,
    "max_transfers_per_month": 5,
    "min_member_age_days": 0,
}


def enable(database: Database, programme: Programme, **policy: Any) -> None:
    with database.transaction() as session:
        documents.apply(
            session, programme=programme, raw={"transfers": {**POLICY, **policy}}, actor="test"
        )


@pytest.fixture
def transfer_programme(database: Database) -> Programme:
    programme = make_programme(database)
    with database.transaction() as session:
        wallets.ensure_default_wallets(session, programme=programme)
    enable(database, programme)
    with database.transaction() as session:
        return session.get(Programme, programme.id)  # type: ignore[return-value]


@pytest.fixture
def rich_member(database: Database, transfer_programme: Programme) -> Callable[..., uuid.UUID]:
    """A member of the transfer programme with ``points`` points (one lot)."""

    def make(points: int = 0, **fields: Any) -> uuid.UUID:
        member = make_member(database, transfer_programme, **fields)
        if points:
            with database.transaction() as s:
                ops.award(
                    s, programme=transfer_programme, member_id=member.id, wallet="points",
                    amount=points, idempotency_key=f"seed:{member.id}",
                )  # fmt: skip
        return member.id

    return make
