"""Export jobs: a table of a programme written to a file by the worker, with progress.

Design note
-----------
``POST /exports/jobs`` stores an ``export_runs`` row (with an estimate of the rows: one count)
and enqueues an ``exports.run`` job on the durable jobs table. Each run of the job writes at
most ``export_rows_per_run`` rows (installation setting) in keyset pages, exactly as the
streamed download reads them (constant memory), appends them to the file, records the key
reached, the rows done and the file's length, and enqueues the next run, until the table is
exhausted. So progress is committed after every chunk (``GET /exports/jobs/{id}`` shows it),
and a chunk that fails is retried by the jobs table: the file is first cut back to the length
recorded by the last committed chunk, so nothing is written twice. An error that survives a
chunk's retries marks the export ``failed``. Rows are read chunk by chunk (not one snapshot):
rows added meanwhile may be included, none present from the start is missed.

A finished file is kept ``export_keep_days`` (7) days: an ``exports.expire`` job due then
deletes it and marks the export ``expired``.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fidelia.config import get_settings
from fidelia.errors import Conflict, FideliaError, NotFound
from fidelia.exports.service import PAGE, Row, check_format, pages, render, table_of
from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.models import Job, Programme
from fidelia.models.exports import ExportRun

RUN_JOB = "exports.run"
EXPIRE_JOB = "exports.expire"


class ExportGone(FideliaError):
    status_code = 410
    code = "export_expired"


def directory() -> Path:
    """Where export files are written (``FIDELIA_EXPORT_DIR``, else a temp folder)."""
    configured = get_settings().export_dir
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "fidelia-exports"


def path_of(run: ExportRun) -> Path:
    return directory() / str(run.programme_id) / run.file_name


def start(
    session: Session,
    *,
    programme: Programme,
    table: str,
    fmt: str,
    since: datetime | None,
    actor: str,
    now: datetime | None = None,
) -> ExportRun:
    """Record an export of ``table`` and enqueue its first run; 422 for an unknown table or
    format (nothing stored)."""
    now = now or utcnow()
    spec, checked = table_of(table), check_format(fmt)
    base = spec.select(programme)
    if since is not None:
        base = base.where(spec.since >= since)
    estimate = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    run_id = uuid.uuid4()
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    run = ExportRun(
        id=run_id,
        programme_id=programme.id,
        table_name=spec.name,
        format=checked,
        since=since,
        status="queued",
        rows_done=0,
        rows_estimated=estimate,
        size_bytes=0,
        file_name=f"{programme.slug}-{spec.name}-{stamp}-{run_id.hex[:8]}.{checked}",
        requested_by=actor[:200],
        created_at=now,
    )
    session.add(run)
    session.flush()
    jobs.enqueue(
        session, kind=RUN_JOB, payload={"export_id": str(run.id)}, programme_id=programme.id,
        due_at=now,
    )  # fmt: skip
    return run


def get(session: Session, *, programme: Programme, export_id: uuid.UUID) -> ExportRun:
    run = session.get(ExportRun, export_id)
    if run is None or run.programme_id != programme.id:
        raise NotFound(f"export {export_id} does not exist")
    return run


def file_of(session: Session, *, programme: Programme, export_id: uuid.UUID) -> Path:
    """The finished file; 409 while it is being written, 410 once expired or failed."""
    run = get(session, programme=programme, export_id=export_id)
    if run.status in ("queued", "running"):
        raise Conflict(f"export {run.id} is {run.status} ({run.rows_done} rows so far)")
    if run.status != "done":
        raise ExportGone(f"export {run.id} is {run.status}; start a new one")
    found = path_of(run)
    if not found.exists():
        raise ExportGone(f"the file of export {run.id} is no longer there; start a new one")
    return found


def _chunk(session: Session, programme: Programme, run: ExportRun, limit: int) -> bool:
    """Append up to ``limit`` rows to the file; whether the table is exhausted."""
    spec = table_of(run.table_name)
    target = path_of(run)
    target.parent.mkdir(parents=True, exist_ok=True)
    after = uuid.UUID(run.last_key) if run.last_key else None
    written, finished, last = 0, True, run.last_key
    with target.open("ab") as sink:
        sink.truncate(run.size_bytes)  # what a failed attempt appended goes
        found = pages(
            session, programme=programme, table=spec, since=run.since, after=after,
            page=min(PAGE, limit),
        )  # fmt: skip

        def counting() -> Iterator[list[Row]]:
            nonlocal written, last, finished
            for rows in found:
                written += len(rows)
                last = str(rows[-1]["id"])
                yield rows
                if written >= limit:
                    finished = False
                    return

        chunks = render(
            counting(),
            columns=spec.columns,
            fmt=check_format(run.format),
            header=run.size_bytes == 0,
        )
        for chunk in chunks:
            sink.write(chunk)
        sink.flush()
        size = sink.tell()
    run.rows_done += written
    run.size_bytes = size
    run.last_key = last
    return finished


@jobs.handler(RUN_JOB)
def run_job(session: Session, job: Job) -> None:
    """One chunk of an export, then the next run (or the expiry job once done)."""
    run = session.get(ExportRun, uuid.UUID(job.payload["export_id"]), with_for_update=True)
    if run is None or run.status not in ("queued", "running"):
        return
    programme = session.get(Programme, run.programme_id)
    assert programme is not None
    now = utcnow()
    if run.started_at is None:
        run.started_at = now
    run.status = "running"
    last_try = job.attempts >= job.max_attempts  # counted before the handler runs
    try:
        with session.begin_nested():
            finished = _chunk(session, programme, run, get_settings().export_rows_per_run)
    except Exception as exc:
        if not last_try:
            raise  # the jobs table retries the chunk later (the file is cut back first)
        run.status, run.error, run.finished_at = "failed", str(exc)[:2000], now
        return
    if not finished:
        jobs.enqueue(session, kind=RUN_JOB, payload=job.payload, programme_id=programme.id)
        return
    run.status, run.finished_at = "done", now
    run.expires_at = now + timedelta(days=get_settings().export_keep_days)
    run.rows_estimated = max(run.rows_estimated, run.rows_done)
    jobs.enqueue(
        session, kind=EXPIRE_JOB, payload={"export_id": str(run.id)}, due_at=run.expires_at,
        idempotency_key=f"export-expire:{run.id}", programme_id=programme.id,
    )  # fmt: skip


@jobs.handler(EXPIRE_JOB)
def expire_job(session: Session, job: Job) -> None:
    """Delete a finished export's file once its keeping time is over."""
    run = session.get(ExportRun, uuid.UUID(job.payload["export_id"]), with_for_update=True)
    if run is None or run.status != "done":
        return
    path_of(run).unlink(missing_ok=True)
    run.status = "expired"
