"""The operations page (issue 12): the programme's jobs per state, the next due and the dead
ones with a retry (audited; another programme's job is not found), and its file imports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.models import ImportRun, Job, Programme
from fidelia.models.audit import AuditEntry
from fidelia.users.service import Role
from tests.fixtures.factories import make_programme
from tests.web.conftest import Browser


def add_job(database: Database, programme: Programme, status: str, kind: str) -> Job:
    now, dead = utcnow(), status == "dead"
    with database.transaction() as session:
        job = Job(
            programme_id=programme.id,
            kind=kind,
            payload={},
            status=status,
            due_at=now + timedelta(hours=1),
            attempts=8 if dead else 0,
            last_error="ConnectionRefusedError: the SMTP server is down" if dead else None,
            finished_at=now if dead else None,
        )
        session.add(job)
        session.flush()
        session.expunge(job)
    return job


def test_jobs_and_imports_are_shown_and_a_dead_job_retried(
    signed_in: Callable[..., Browser], database: Database, programme: Programme
) -> None:
    dead = add_job(database, programme, "dead", "messaging.deliver")
    add_job(database, programme, "pending", "tiers.requalify")
    with database.transaction() as session:
        session.add(
            ImportRun(
                programme_id=programme.id,
                kind="events",
                file_name="june.jsonl",
                file_digest="0" * 64,
                lines_done=1200,
                accepted=1190,
                duplicates=4,
                rejected=6,
                status="done",
            )
        )
    b = signed_in(programme, Role.support)
    page = b.get(f"/admin/p/{programme.slug}/operations")
    assert page.status_code == 200
    assert 'data-status="dead">1<' in page.text
    assert "the SMTP server is down" in page.text
    assert "tiers.requalify" in page.text
    assert "june.jsonl" in page.text
    assert "1,190" in page.text
    retried = b.post(f"/admin/p/{programme.slug}/operations/jobs/{dead.id}/retry")
    assert retried.status_code == 303
    with database.transaction(readonly=True) as s:
        job = s.get(Job, dead.id)
        assert job is not None
        assert (job.status, job.attempts) == ("pending", 0)
        assert (
            s.query(AuditEntry).filter_by(programme_id=programme.id, action="job.retry").count()
            == 1
        )
    again = b.post(f"/admin/p/{programme.slug}/operations/jobs/{dead.id}/retry")
    assert again.status_code == 409


def test_another_programmes_job_and_read_only_roles_are_refused(
    signed_in: Callable[..., Browser], database: Database, programme: Programme
) -> None:
    other = make_programme(database)
    foreign = add_job(database, other, "dead", "webhooks.deliver")
    b = signed_in(programme, Role.owner)
    b.get(f"/admin/p/{programme.slug}/operations")
    assert (
        b.post(f"/admin/p/{programme.slug}/operations/jobs/{foreign.id}/retry").status_code == 404
    )
    mine = add_job(database, programme, "dead", "webhooks.deliver")
    analyst = signed_in(programme, Role.analyst)
    analyst.get(f"/admin/p/{programme.slug}/operations")
    assert (
        analyst.post(f"/admin/p/{programme.slug}/operations/jobs/{mine.id}/retry").status_code
        == 403
    )
    with database.transaction(readonly=True) as s:
        for job_id in (foreign.id, mine.id):
            found = s.get(Job, job_id)
            assert found is not None
            assert found.status == "dead"
