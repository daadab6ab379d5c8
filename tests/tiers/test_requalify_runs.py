"""The period-end requalification as it runs in production: the daily job scheduled when a
document with tiers is applied, and the ``fidelia tiers requalify`` command."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from fidelia.cli.main import app
from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.intake import service as events
from fidelia.jobs import service as jobs
from fidelia.models import Job, MemberTier, Programme
from fidelia.programmes import documents
from fidelia.tiers.jobs import REQUALIFY_JOB
from tests.fixtures.events import line, purchase
from tests.fixtures.factories import make_member, make_programme
from tests.tiers.conftest import document


def _silver_in_2024(database: Database) -> tuple[Programme, uuid.UUID]:
    """A programme with tiers on the calendar year and a member Silver in 2024 only."""
    programme = make_programme(database)
    member = make_member(database, programme)
    with database.transaction() as session:
        documents.apply(session, programme=programme, raw=document(), actor="test")
    with database.transaction() as session:
        fresh = session.get(Programme, programme.id)
        assert fresh is not None
        at = datetime(2024, 5, 1, tzinfo=UTC)
        payload = purchase({"id": str(member.id)}, lines=[line("a", 1, "400.00")], occurred_at=at)
        [outcome] = events.ingest_payloads(session, programme=fresh, payloads=[payload])
        assert outcome.status == "accepted", outcome
    return fresh, member.id


def _tier(database: Database, member_id: uuid.UUID) -> str:
    with database.transaction(readonly=True) as session:
        row = session.get(MemberTier, member_id)
        assert row is not None
        return row.tier


def test_applying_tiers_schedules_the_daily_job_which_reviews_who_is_due(
    fresh_database: Database,
) -> None:
    _, member_id = _silver_in_2024(fresh_database)
    assert _tier(fresh_database, member_id) == "silver"
    with fresh_database.transaction(readonly=True) as session:
        job = session.scalar(select(Job).where(Job.kind == REQUALIFY_JOB))
        assert job is not None
        due = job.due_at

    assert jobs.run_due(fresh_database, now=due, limit=20) >= 1

    assert _tier(fresh_database, member_id) == "bronze"  # kept for 2025, lost for 2026
    with fresh_database.transaction(readonly=True) as session:
        kinds = session.scalars(select(Job.status).where(Job.kind == REQUALIFY_JOB)).all()
    assert sorted(kinds) == ["done", "pending"]  # the next day's review is scheduled


@pytest.fixture
def cli_database(fresh_database: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv(
        "FIDELIA_DATABASE_URL", fresh_database.engine.url.render_as_string(hide_password=False)
    )
    get_settings.cache_clear()
    yield fresh_database
    get_settings.cache_clear()


def test_the_cli_requalifies_a_programme(cli_database: Database, tmp_path: Path) -> None:
    programme, member_id = _silver_in_2024(cli_database)
    runner = CliRunner()

    early = runner.invoke(app, ["tiers", "requalify", "-p", programme.slug,
                                "--at", "2024-12-01T00:00:00+00:00"])  # fmt: skip
    done = runner.invoke(app, ["tiers", "requalify", "-p", programme.slug,
                               "--at", "2026-01-01T00:00:00+01:00"])  # fmt: skip
    naive = runner.invoke(app, ["tiers", "requalify", "-p", programme.slug, "--at", "2026-01-01"])

    assert early.exit_code == 0, early.output
    assert "reviewed 0 members" in early.output
    assert done.exit_code == 0, done.output
    assert "reviewed 2 members: 0 up, 1 down" in done.output  # 2025 kept, 2026 lost
    assert _tier(cli_database, member_id) == "bronze"
    assert naive.exit_code == 2
