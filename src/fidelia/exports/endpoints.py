"""``GET /exports/{table}``: a table of the programme as a streamed CSV or JSON-lines download;
``/exports/jobs``: the same written to a file by the worker, with progress (issue 16)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import FileResponse, StreamingResponse

from fidelia.auth.dependencies import Admin, DbSession, get_database
from fidelia.db import Database
from fidelia.errors import ERROR_RESPONSES
from fidelia.exports import jobs, service
from fidelia.exports.schemas import ExportJobIn, ExportJobOut
from fidelia.kit.bounds import Instant
from fidelia.kit.clock import utcnow
from fidelia.models import Programme
from fidelia.models.exports import ExportRun

router = APIRouter(prefix="/exports", tags=["exports"], responses=ERROR_RESPONSES)

SINCE = (
    "Only rows changed (members, redemptions), received (events) or posted (ledger) at or "
    "after this instant"
)
CSV = "id,event_id,type,occurred_at\n019ceb9e-6018-78a4-ad11-f033b48438b5,o-1,purchase,...\n"
JSONL = '{"id": "019ceb9e-6018-78a4-ad11-f033b48438b5", "type": "purchase"}\n'
MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


@router.get(
    "/{table}",
    summary="Download members, events, ledger or redemptions (streamed)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                MEDIA["csv"]: {"schema": {"type": "string", "examples": [CSV]}},
                MEDIA["jsonl"]: {"schema": {"type": "string", "examples": [JSONL]}},
            }
        }
    },
)
def download(
    table: str,
    principal: Admin,
    request: Request,
    format: Annotated[
        service.Format, Query(description="csv (header line first) or jsonl")
    ] = "csv",
    since: Annotated[Instant | None, Query(description=SINCE)] = None,
) -> StreamingResponse:
    """The programme's `members`, `events`, `ledger` (entries, both sides of each posting) or
    `redemptions`, streamed as it is read (constant memory, any size): CSV with a header line
    or one JSON object per line. The columns are listed in docs/exports.md.

    422: an unknown table or format (nothing is sent).

    Scope: `admin`.
    """
    spec = service.table_of(table)
    database = get_database(request)
    programme = principal.programme
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    filename = f"{programme.slug}-{spec.name}-{stamp}.{format}"
    return StreamingResponse(
        _stream(database, programme, spec.name, format, since),
        media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _stream(
    database: Database, programme: Programme, table: str, fmt: str, since: datetime | None
) -> Iterator[bytes]:
    """Read in a transaction of its own: the request's session is closed once the endpoint
    function returns, before the body is sent."""
    with database.transaction(readonly=True) as session:
        yield from service.export(session, programme=programme, table=table, fmt=fmt, since=since)


def _out(request: Request, run: ExportRun) -> ExportJobOut:
    done = run.status == "done"
    if done:
        progress = 1.0
    else:
        progress = min(run.rows_done / run.rows_estimated, 1.0) if run.rows_estimated else 0.0
    url = str(request.url_for("export_job_file", export_id=str(run.id))) if done else None
    return ExportJobOut(
        id=run.id,
        programme_id=run.programme_id,
        table=run.table_name,
        format=run.format,
        since=run.since,
        status=run.status,
        rows_done=run.rows_done,
        rows_estimated=run.rows_estimated,
        progress=round(progress, 4),
        size_bytes=run.size_bytes,
        download_url=url,
        error=run.error,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        expires_at=run.expires_at,
    )


@router.post(
    "/jobs",
    response_model=ExportJobOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start an export job (a file written by the worker, with progress)",
)
def start_job(
    body: ExportJobIn, principal: Admin, session: DbSession, request: Request
) -> ExportJobOut:
    """Start writing the programme's `members`, `events`, `ledger` or `redemptions` to a CSV or
    JSON-lines file in the background (the worker, chunk by chunk, constant memory). Poll
    `GET /exports/jobs/{id}` for the progress; once `done`, `download_url` gives the file until
    `expires_at` (kept `FIDELIA_EXPORT_KEEP_DAYS`, 7 by default). The columns are those of the
    streamed download (docs/exports.md).

    422: an unknown table or format, a `since` without a time zone (nothing is started).

    Scope: `admin`.
    """
    run = jobs.start(
        session,
        programme=principal.programme,
        table=body.table,
        fmt=body.format,
        since=body.since,
        actor=f"api_key:{principal.key_id}",
    )
    return _out(request, run)


@router.get("/jobs/{export_id}", response_model=ExportJobOut, summary="An export job's progress")
def get_job(
    export_id: uuid.UUID, principal: Admin, session: DbSession, request: Request
) -> ExportJobOut:
    """The export's status (`queued`, `running`, `done`, `failed`, `expired`), rows written
    against the estimate counted at the start, and once `done` the download link.

    404: no such export in this programme.

    Scope: `admin`.
    """
    return _out(request, jobs.get(session, programme=principal.programme, export_id=export_id))


@router.get(
    "/jobs/{export_id}/file",
    name="export_job_file",
    summary="Download a finished export job's file",
    response_class=FileResponse,
    responses={
        200: {
            "content": {
                MEDIA["csv"]: {"schema": {"type": "string", "examples": [CSV]}},
                MEDIA["jsonl"]: {"schema": {"type": "string", "examples": [JSONL]}},
            }
        }
    },
)
def job_file(export_id: uuid.UUID, principal: Admin, session: DbSession) -> FileResponse:
    """The file of a `done` export.

    404: no such export. 409: still being written. 410 `export_expired`: its keeping time is
    over (or it failed): start a new one.

    Scope: `admin`.
    """
    path = jobs.file_of(session, programme=principal.programme, export_id=export_id)
    media = MEDIA["csv"] if path.suffix == ".csv" else MEDIA["jsonl"]
    return FileResponse(path, media_type=media, filename=path.name)
