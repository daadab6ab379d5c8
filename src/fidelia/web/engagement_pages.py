"""Referrals and leaderboards (issue 14): the programme's referral figures and best referrers,
and each leaderboard's running period with its top 10, through the services the API uses."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from fidelia.auth.dependencies import get_database
from fidelia.engagement import leaderboards, referrals
from fidelia.engagement.plus import plus_for
from fidelia.kit.clock import utcnow
from fidelia.web.access import ReadPage
from fidelia.web.templating import render

router = APIRouter()


@router.get("/p/{slug}/engagement", response_class=HTMLResponse)
def show(request: Request, page: ReadPage) -> HTMLResponse:
    now = utcnow()
    boards = []
    with get_database(request).transaction(readonly=True) as session:
        defs = plus_for(session, page.programme)
        stats = (
            referrals.programme_referrals(session, programme=page.programme)
            if defs.referral is not None
            else None
        )
        for board in defs.leaderboards.values():
            period = leaderboards.period_of(board, defs, now)
            entries = (
                leaderboards.top(
                    session, programme=page.programme, board=board.code, period=period,
                    scope="", limit=10, with_ids=True,
                )
                if period is not None and board.by == "programme"
                else []
            )  # fmt: skip
            boards.append((board, period, entries))
    return render(
        request,
        "engagement.html",
        fmt=page.fmt,
        page=page,
        viewer=page.viewer,
        referral=stats,
        boards=boards,
    )
