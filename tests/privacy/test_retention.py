"""Retention: members closed for more than ``settings.privacy.retention_months`` are erased by
the daily job; recently closed and open members are not."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fidelia.db import Database
from fidelia.jobs import service as jobs
from fidelia.members import service as members
from fidelia.models import Job, Member, MemberErasure, Programme
from fidelia.privacy import run_retention
from fidelia.privacy.retention import RETENTION_JOB, months_before, schedule
from tests.fixtures.factories import Api, make_member, make_programme

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _close(database: Database, programme: Programme, member_id: uuid.UUID, at: datetime) -> None:
    with database.transaction() as session:
        member = members.get_for_update(session, programme=programme, member_id=member_id)
        members.set_status(session, member=member, status="closed", actor="test", at=at)


def _member(database: Database, member_id: uuid.UUID) -> Member:
    with database.transaction(readonly=True) as session:
        found = session.get(Member, member_id)
        assert found is not None
        return found


def test_months_before_keeps_the_day_or_takes_the_months_last() -> None:
    assert months_before(NOW, 12) == datetime(2025, 11, 30, 12, 0, tzinfo=UTC)
    assert months_before(datetime(2026, 3, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)


def test_retention_erases_members_closed_for_longer_only(
    database: Database, programme_factory: Callable[..., Programme]
) -> None:
    programme = programme_factory(settings={"privacy": {"retention_months": 12}})
    old = make_member(database, programme, first_name="Old", email="old.ret@example.com")
    recent = make_member(database, programme, first_name="New", email="new.ret@example.com")
    open_ = make_member(database, programme, first_name="Open", email="open.ret@example.com")
    _close(database, programme, old.id, NOW - timedelta(days=400))
    _close(database, programme, recent.id, NOW - timedelta(days=30))

    with database.transaction() as session:
        erased = run_retention(session, programme=programme, now=NOW)

    assert erased == [old.id]
    assert _member(database, old.id).first_name is None
    assert _member(database, recent.id).first_name == "New"
    assert _member(database, open_.id).first_name == "Open"
    with database.transaction(readonly=True) as session:
        record = session.scalars(
            select(MemberErasure).where(MemberErasure.member_id == old.id)
        ).one()
    assert (record.reason, record.actor) == ("retention", "retention")
    # a second run finds nothing more
    with database.transaction() as session:
        assert run_retention(session, programme=programme, now=NOW) == []


def test_without_a_retention_setting_nothing_is_erased(
    database: Database, programme: Programme
) -> None:
    old = make_member(database, programme, first_name="Kept")
    _close(database, programme, old.id, NOW - timedelta(days=4000))

    with database.transaction() as session:
        assert run_retention(session, programme=programme, now=NOW) == []
    assert _member(database, old.id).first_name == "Kept"


def test_retention_is_a_programme_setting_checked_at_the_edge(
    api_factory: Callable[[Programme], Api], programme: Programme
) -> None:
    api = api_factory(programme)

    bad = api.patch("/programme", json={"settings": {"privacy": {"retention_months": 0}}})
    good = api.patch("/programme", json={"settings": {"privacy": {"retention_months": 24}}})

    assert bad.status_code == 422
    assert "retention_months" in bad.text
    assert good.status_code == 200, good.text
    assert good.json()["settings"]["privacy"] == {"retention_months": 24}


@pytest.mark.parametrize("fresh_database", ["sqlite"], indirect=True)
def test_the_daily_job_sweeps_and_schedules_the_next_day(fresh_database: Database) -> None:
    programme = make_programme(fresh_database, settings={"privacy": {"retention_months": 1}})
    old = make_member(fresh_database, programme, first_name="Gone")
    _close(fresh_database, programme, old.id, NOW - timedelta(days=90))
    with fresh_database.transaction() as session:
        schedule(session, after=NOW - timedelta(days=1))

    assert jobs.run_due(fresh_database, now=NOW) == 1

    assert _member(fresh_database, old.id).first_name is None
    with fresh_database.transaction(readonly=True) as session:
        pending = session.scalars(
            select(Job).where(Job.kind == RETENTION_JOB, Job.status == "pending")
        ).all()
    assert len(pending) == 1
    assert pending[0].due_at > NOW
