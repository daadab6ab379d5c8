"""Bounced addresses in the back-office: the addresses a hard bounce proved dead, filtered by
a part of the address, a page at a time; an owner clears one (the mailbox works again), through
the messaging service, with an audit record."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fidelia.audit import service as audit
from fidelia.auth.dependencies import get_database
from fidelia.errors import NotFound
from fidelia.messaging import bounced
from fidelia.web.access import BASE, OwnerPage, Page, ReadPage
from fidelia.web.templating import render

router = APIRouter()
PAGE_SIZE = 50


def _page(
    request: Request,
    page: Page,
    *,
    address: str = "",
    after: str | None = None,
    status: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    with get_database(request).transaction(readonly=True) as session:
        rows, more = bounced.list_bounced(
            session, programme=page.programme, address=address or None, after=after,
            limit=PAGE_SIZE,
        )  # fmt: skip
    return render(
        request, "bounced.html", fmt=page.fmt, page=page, viewer=page.viewer, status=status,
        rows=rows, more=more, address=address, error=error,
    )  # fmt: skip


@router.get("/p/{slug}/bounced", response_class=HTMLResponse)
def show(
    request: Request,
    page: ReadPage,
    address: Annotated[str, Query(max_length=320)] = "",
    after: Annotated[str | None, Query(max_length=320)] = None,
) -> HTMLResponse:
    return _page(request, page, address=address.strip(), after=after)


@router.post("/p/{slug}/bounced/clear", response_model=None)
def clear(
    request: Request, page: OwnerPage, address: Annotated[str, Form(max_length=320)] = ""
) -> Response:
    try:
        with get_database(request).transaction() as session:
            row = bounced.clear(session, programme=page.programme, address=address)
            audit.record(
                session,
                programme_id=page.programme.id, actor=page.actor, user_id=page.viewer.user.id,
                action="bounced_address.clear", target_type="bounced_address",
                target_id=address[:64],
                before={"address": row.address, "reason": row.reason,
                        "bounced_at": row.bounced_at.isoformat()},
            )  # fmt: skip
    except NotFound as exc:
        return _page(request, page, status=404, error=exc.detail)
    return RedirectResponse(f"{BASE}/p/{page.programme.slug}/bounced", status_code=303)
