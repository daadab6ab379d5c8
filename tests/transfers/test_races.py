"""Concurrent transfers on PostgreSQL: threads, each with its own session and transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from fidelia.db import Database
from fidelia.errors import FideliaError
from fidelia.events.schemas import MemberRef
from fidelia.models import Programme
from fidelia.models.transfers import PointTransfer
from fidelia.transfers import service
from tests.fixtures.factories import count_rows
from tests.ledger.conftest import assert_verified, balance
from tests.ledger.test_races import _in_threads
from tests.transfers.conftest import enable

pytestmark = pytest.mark.postgres_only


def _race(
    database: Database, p: Programme, sender: uuid.UUID, receivers: list[uuid.UUID], amount: int
) -> list[BaseException | None]:
    def give(i: int) -> None:
        with database.transaction() as s:
            programme = s.get(Programme, p.id)
            assert programme is not None
            service.give(
                s, programme=programme, sender_id=sender,
                to=MemberRef(id=receivers[i % len(receivers)]), wallet="points", amount=amount,
                reference=f"race-{i}", channel="api", actor="test",
            )  # fmt: skip

    return _in_threads(10, give)


def test_concurrent_transfers_cannot_overspend(
    database: Database,
    transfer_programme: Programme,
    rich_member: Callable[..., uuid.UUID],
    backend: str,
) -> None:
    if backend != "postgresql":
        pytest.skip("races are proven on PostgreSQL")
    p = transfer_programme
    enable(database, p, max_sent_per_month=None, max_received_per_month=None,
           max_transfers_per_month=None)  # fmt: skip
    sender = rich_member(700)
    receivers = [rich_member(0) for _ in range(3)]
    outcomes = _race(database, p, sender, receivers, 300)
    assert outcomes.count(None) == 2
    assert all(
        isinstance(o, FideliaError) and o.as_dict()["error"] == "insufficient_balance"
        for o in outcomes
        if o is not None
    )
    assert balance(database, p, sender) == (100, 0)
    assert sum(balance(database, p, r)[0] for r in receivers) == 600
    assert count_rows(database, PointTransfer, PointTransfer.sender_id == sender) == 2
    assert_verified(database, p)


def test_concurrent_transfers_cannot_pass_the_monthly_limits(
    database: Database,
    transfer_programme: Programme,
    rich_member: Callable[..., uuid.UUID],
    backend: str,
) -> None:
    if backend != "postgresql":
        pytest.skip("races are proven on PostgreSQL")
    p = transfer_programme  # at most 1500 given a month, 2000 received
    sender = rich_member(10_000)
    receivers = [rich_member(0) for _ in range(4)]
    outcomes = _race(database, p, sender, receivers, 400)
    assert outcomes.count(None) == 3  # 1200; a fourth would make 1600
    assert {o.as_dict()["error"] for o in outcomes if isinstance(o, FideliaError)} == {
        "monthly_sent_limit"
    }
    assert balance(database, p, sender) == (10_000 - 1200, 0)

    # Ten senders at once towards one receiver: at most 2000 received.
    receiver = rich_member(0)
    senders = [rich_member(1000) for _ in range(10)]

    def give(i: int) -> None:
        with database.transaction() as s:
            programme = s.get(Programme, p.id)
            assert programme is not None
            service.give(
                s, programme=programme, sender_id=senders[i], to=MemberRef(id=receiver),
                wallet="points", amount=300, reference="to-one", channel="api", actor="test",
            )  # fmt: skip

    outcomes = _in_threads(10, give)
    assert outcomes.count(None) == 6  # 1800; a seventh would make 2100
    assert {o.as_dict()["error"] for o in outcomes if isinstance(o, FideliaError)} == {
        "monthly_received_limit"
    }
    assert balance(database, p, receiver) == (1800, 0)
    assert_verified(database, p)
