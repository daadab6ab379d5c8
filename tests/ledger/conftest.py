"""Ledger fixtures: a programme with the default wallets and members to post to."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from fidelia.db import Database
from fidelia.ledger import wallets
from fidelia.ledger.verify import verify
from fidelia.models import Account, Programme
from tests.fixtures.factories import make_member

T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


@pytest.fixture
def ledger_programme(database: Database, programme: Programme) -> Programme:
    """The test's programme with points, cashback and status wallets."""
    with database.transaction() as session:
        wallets.ensure_default_wallets(session, programme=programme)
    return programme


@pytest.fixture
def new_member(database: Database, ledger_programme: Programme) -> Callable[[], uuid.UUID]:
    return lambda: make_member(database, ledger_programme).id


def balance(
    database: Database, programme: Programme, member_id: uuid.UUID, code: str = "points"
) -> tuple[int, int]:
    """(available, pending) in minor units, read from the cached account."""
    with database.transaction(readonly=True) as session:
        wallet = wallets.get_wallet(session, programme=programme, code=code)
        from fidelia.ledger.repository import find_member_account

        account = find_member_account(session, wallet=wallet, member_id=member_id)
        return (account.available, account.pending) if account else (0, 0)


def assert_verified(database: Database, programme: Programme) -> None:
    with database.transaction(readonly=True) as session:
        report = verify(session, programme_id=programme.id)
    assert report.ok, report.problems


__all__ = ["T0", "Account", "assert_verified", "balance"]
