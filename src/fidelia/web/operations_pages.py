"""Operations in the back-office (issue 12): the programme's background jobs (counts per state,
the next ones due, the dead ones with a retry) and its file imports with their progress. API
keys and webhooks have pages of their own."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from fidelia.audit import service as audit
from fidelia.auth.dependencies import get_database
from fidelia.errors import NotFound
from fidelia.jobs import service as jobs
from fidelia.models import ImportRun, Job
from fidelia.web.access import BASE, ReadPage, WritePage
from fidelia.web.templating import render

router = APIRouter()
SHOWN = 25


@router.get("/p/{slug}/operations", response_class=HTMLResponse)
def show(request: Request, page: ReadPage, done: str | None = None) -> HTMLResponse:
    mine = Job.programme_id == page.programme.id
    with get_database(request).transaction(readonly=True) as session:
        rows = session.execute(select(Job.status, func.count()).where(mine).group_by(Job.status))
        counts = {str(status): int(n) for status, n in rows}
        due = list(
            session.scalars(
                select(Job).where(mine, Job.status == "pending").order_by(Job.due_at).limit(SHOWN)
            )
        )
        dead = list(
            session.scalars(
                select(Job)
                .where(mine, Job.status == "dead")
                .order_by(Job.finished_at.desc())
                .limit(SHOWN)
            )
        )
        imports = list(
            session.scalars(
                select(ImportRun)
                .where(ImportRun.programme_id == page.programme.id)
                .order_by(ImportRun.started_at.desc())
                .limit(SHOWN)
            )
        )
    return render(
        request,
        "operations.html",
        fmt=page.fmt,
        page=page,
        viewer=page.viewer,
        active="operations",
        counts=counts,
        due=due,
        dead=dead,
        imports=imports,
        done=done == "retried",
    )


@router.post("/p/{slug}/operations/jobs/{job_id}/retry")
def retry(request: Request, page: WritePage, job_id: uuid.UUID) -> Response:
    """Give a dead job of this programme another round of attempts (409 if it is not dead)."""
    with get_database(request).transaction() as session:
        owner = session.scalar(select(Job.programme_id).where(Job.id == job_id))
        if owner != page.programme.id:
            raise NotFound(f"job {job_id} does not exist")
        job = jobs.retry(session, job_id=job_id)
        audit.record(
            session,
            programme_id=page.programme.id,
            actor=page.actor,
            user_id=page.viewer.user.id,
            action="job.retry",
            target_type="job",
            target_id=str(job.id),
            before={"status": "dead"},
            after={"status": job.status, "kind": job.kind},
        )
    return RedirectResponse(f"{BASE}/p/{page.programme.slug}/operations?done=retried", 303)
