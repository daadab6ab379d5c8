"""The audit log of a programme, newest first, by pages; optionally for one target."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from fidelia.audit import service as audit
from fidelia.auth.dependencies import get_database
from fidelia.web.access import ReadPage
from fidelia.web.templating import render

router = APIRouter()


@router.get("/p/{slug}/audit", response_class=HTMLResponse)
def show(
    request: Request,
    page: ReadPage,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    target: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    with get_database(request).transaction(readonly=True) as session:
        entries, next_cursor = audit.entries(
            session, programme_id=page.programme.id, target_id=target, cursor=cursor, limit=50
        )
    return render(
        request,
        "audit.html",
        fmt=page.fmt,
        page=page,
        viewer=page.viewer,
        entries=entries,
        next_cursor=next_cursor,
        target=target,
    )
