"""The members' state rows the intake reads per group (issue 18) are objects made from their
rows without the ORM's loader: persistent in the session, equal to what the loader gives, a
later change flushed as an UPDATE, and the session's own object handed back when it holds one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import inspect, select

from fidelia.db import Database
from fidelia.engagement import streaks
from fidelia.kit.attach import attached
from fidelia.models import EngagementState, Member, MemberTier, Programme
from fidelia.models.engagement_plus import MemberStreak

COLUMNS = ("current", "best", "started", "last", "freezes_used")


def with_rows(database: Database, programme: Programme, member: Member) -> None:
    with database.transaction() as session:
        data = {"badges": {"first": 1}, "challenges": {}}
        session.add(EngagementState(member_id=member.id, programme_id=programme.id, data=data))
        for code, n in (("weekly", 3), ("monthly", 1)):
            run = {"current": n, "best": n, "started": 0, "last": n - 1, "freezes_used": 0}
            session.add(
                MemberStreak(member_id=member.id, streak=code, programme_id=programme.id, **run)
            )


def test_streak_rows_are_the_loaders_objects_and_flush_their_changes(
    database: Database, programme: Programme, member_factory: Callable[..., Member]
) -> None:
    member = member_factory()
    with_rows(database, programme, member)
    with database.transaction() as session:
        query = select(MemberStreak).where(MemberStreak.member_id == member.id)
        expected = {
            (r.member_id, r.streak): [getattr(r, c) for c in COLUMNS]
            for r in session.scalars(query)
        }
    with database.transaction() as session:
        rows = streaks.rows_for(session, programme, [member.id])
        assert {k: [getattr(r, c) for c in COLUMNS] for k, r in rows.items()} == expected
        weekly = rows[(member.id, "weekly")]
        assert inspect(weekly).persistent
        assert session.get(MemberStreak, (member.id, "weekly")) is weekly
        assert not session.dirty
        before = weekly.updated_at
        weekly.current, weekly.best = 4, 4
    with database.transaction() as session:
        found = session.get_one(MemberStreak, (member.id, "weekly"))
        assert (found.current, found.best) == (4, 4)
        assert found.updated_at >= before
        assert session.get_one(MemberStreak, (member.id, "monthly")).current == 1


def test_a_row_the_session_holds_is_handed_back_with_its_expired_columns_filled(
    database: Database, programme: Programme, member_factory: Callable[..., Member]
) -> None:
    member = member_factory()
    with_rows(database, programme, member)
    table: Any = EngagementState.__table__
    with database.transaction() as session:
        held = session.get_one(EngagementState, member.id)
        session.expire(held, ["data"])
        values = session.execute(select(table).where(table.c.member_id == member.id)).one()
        assert attached(session, EngagementState, values) is held
        assert "data" in held.__dict__
        assert held.data == {"badges": {"first": 1}, "challenges": {}}
        assert not session.dirty


def test_tier_rows_flush_a_change_as_an_update(
    database: Database, programme: Programme, member_factory: Callable[..., Member]
) -> None:
    member = member_factory()
    table: Any = MemberTier.__table__
    with database.transaction() as session:
        session.add(MemberTier(member_id=member.id, programme_id=programme.id, tier="bronze",
                               source="metric", since=member.enrolled_at, metrics={}))  # fmt: skip
    with database.transaction() as session:
        values = session.execute(select(table).where(table.c.member_id == member.id)).one()
        row = attached(session, MemberTier, values)
        assert inspect(row).persistent
        assert (row.tier, row.metrics, row.since) == ("bronze", {}, member.enrolled_at)
        row.tier, row.metrics = "silver", {"life": [1, "10", 0]}
    with database.transaction() as session:
        found = session.get_one(MemberTier, member.id)
        assert (found.tier, found.metrics) == ("silver", {"life": [1, "10", 0]})


def test_a_change_rolled_back_with_its_savepoint_is_forgotten(
    database: Database, programme: Programme, member_factory: Callable[..., Member]
) -> None:
    member = member_factory()
    with_rows(database, programme, member)
    with database.transaction() as session:
        rows = streaks.rows_for(session, programme, [member.id])
        weekly = rows[(member.id, "weekly")]
        savepoint = session.begin_nested()
        weekly.current = 9
        session.flush()
        savepoint.rollback()
        assert weekly.current == 3
        weekly.best = 7
    with database.transaction() as session:
        found = session.get_one(MemberStreak, (member.id, "weekly"))
        assert (found.current, found.best) == (3, 7)
