"""``GET /exports/{table}``: a table of the programme as a streamed CSV or JSON-lines download."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from fidelia.auth.dependencies import Admin, get_database
from fidelia.db import Database
from fidelia.errors import ERROR_RESPONSES
from fidelia.exports import service
from fidelia.kit.bounds import Instant
from fidelia.kit.clock import utcnow
from fidelia.models import Programme

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
