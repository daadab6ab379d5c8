"""Merge fixtures: a programme with wallets, members with points, and readers of what a merge
moves (balances, lots with their dates, identities, events, status)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.ledger import operations as ops
from fidelia.ledger import wallets
from fidelia.ledger.verify import verify
from fidelia.merges import service as merges
from fidelia.models import Account, Event, Lot, Member, MemberIdentity, MemberMerge, Programme
from tests.fixtures.factories import make_member

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def merge_programme(database: Database, programme: Programme) -> Programme:
    with database.transaction() as session:
        wallets.ensure_default_wallets(session, programme=programme)
    return programme


@pytest.fixture
def person(database: Database, merge_programme: Programme) -> Callable[..., Member]:
    return lambda **fields: make_member(database, merge_programme, **fields)


def earn(
    database: Database,
    programme: Programme,
    member_id: uuid.UUID,
    amount: int,
    *,
    days: int | None = 365,
    pending_days: int | None = None,
    wallet: str = "points",
    now: datetime = T0,
) -> None:
    extra: dict[str, Any] = {"expires_at": now + timedelta(days=days) if days else None}
    if pending_days:
        extra["available_at"] = now + timedelta(days=pending_days)
    with database.transaction() as session:
        ops.award(
            session,
            programme=programme,
            member_id=member_id,
            wallet=wallet,
            amount=amount,
            idempotency_key=f"earn:{uuid.uuid4()}",
            occurred_at=now,
            now=now,
            **extra,
        )


def spend(
    database: Database, programme: Programme, member_id: uuid.UUID, amount: int, now: datetime = T0
) -> None:
    with database.transaction() as session:
        ops.spend(
            session,
            programme=programme,
            member_id=member_id,
            wallet="points",
            amount=amount,
            idempotency_key=f"spend:{uuid.uuid4()}",
            now=now,
        )


def balance(database: Database, member_id: uuid.UUID, code: str = "points") -> tuple[int, int]:
    """(available, pending) of the member's account (0, 0 without one)."""
    with database.transaction(readonly=True) as session:
        row = session.execute(
            select(Account.available, Account.pending)
            .join(wallets.Wallet, wallets.Wallet.id == Account.wallet_id)
            .where(Account.member_id == member_id, wallets.Wallet.code == code)
        ).first()
    return (row[0], row[1]) if row else (0, 0)


def lots(database: Database, member_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """The member's lots with value left: (remaining, pending, expires_at, available_at)."""
    with database.transaction(readonly=True) as session:
        found = session.execute(
            select(Lot.remaining, Lot.pending, Lot.expires_at, Lot.available_at)
            .join(Account, Account.id == Lot.account_id)
            .where(Account.member_id == member_id, Lot.remaining > 0)
        ).all()
    return sorted((tuple(r) for r in found), key=repr)


def owned(database: Database, member_id: uuid.UUID) -> dict[str, int]:
    """How many identities and events the member has, and their status."""
    with database.transaction(readonly=True) as session:
        count = session.scalar
        return {
            "identities": count(select(func.count()).where(MemberIdentity.member_id == member_id))
            or 0,
            "events": count(select(func.count()).where(Event.member_id == member_id)) or 0,
        }


def status(database: Database, member_id: uuid.UUID) -> str:
    with database.transaction(readonly=True) as session:
        member = session.get(Member, member_id)
        assert member is not None
        return member.status


def do_merge(
    database: Database, programme: Programme, survivor: uuid.UUID, duplicate: uuid.UUID, **kw: Any
) -> MemberMerge:
    with database.transaction() as session:
        return merges.merge(
            session,
            programme=programme,
            survivor_id=survivor,
            duplicate_id=duplicate,
            actor="test",
            now=kw.pop("now", T0 + timedelta(days=1)),
            **kw,
        )


def do_unmerge(
    database: Database, programme: Programme, survivor: uuid.UUID, merge_id: uuid.UUID, **kw: Any
) -> MemberMerge:
    with database.transaction() as session:
        return merges.unmerge(
            session,
            programme=programme,
            survivor_id=survivor,
            merge_id=merge_id,
            actor="test",
            now=kw.pop("now", T0 + timedelta(days=2)),
        )


def assert_verified(database: Database, programme: Programme) -> None:
    with database.transaction(readonly=True) as session:
        report = verify(session, programme_id=programme.id)
    assert report.ok, report.problems
