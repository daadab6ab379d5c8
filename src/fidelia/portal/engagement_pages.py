"""The member's leaderboards and referral pages (issue 13, over issue 14's engagement domain):
each running programme-wide board's top ten and the member's own rank with neighbours, the
opt-in under a chosen name; the member's referral code, link and what it brought."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fidelia.auth.dependencies import get_database
from fidelia.engagement import leaderboards, referrals
from fidelia.engagement.plus import plus_for
from fidelia.errors import NotFound, ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.models.engagement_plus import LeaderboardMember
from fidelia.portal.access import MeDep, WriteMe
from fidelia.portal.templating import render

router = APIRouter()
TOP = 10


@router.get("/{slug}/leaderboards", response_class=HTMLResponse)
def boards(request: Request, me: MeDep, done: str | None = None) -> HTMLResponse:
    now = utcnow()
    shown: list[dict[str, Any]] = []
    with get_database(request).transaction(readonly=True) as session:
        defs = plus_for(session, me.programme)
        if not defs.leaderboards:
            raise NotFound("this programme has no leaderboard")
        for board in defs.leaderboards.values():
            period = leaderboards.period_of(board, defs, now)
            if period is None or board.by != "programme":
                continue  # boards by store are read at the store's own screens
            top = leaderboards.top(
                session, programme=me.programme, board=board.code, period=period, scope="",
                limit=TOP,
            )  # fmt: skip
            mine = leaderboards.rank_of(
                session, programme=me.programme, board=board.code, period=period, scope="",
                member_id=me.member.id, neighbours=2,
            )  # fmt: skip
            shown.append({"board": board, "period": period, "top": top, "mine": mine})
        profile = session.get(LeaderboardMember, me.member.id)
    return render(
        request,
        "leaderboards.html",
        site=me.site,
        me=me,
        page="leaderboards",
        boards=shown,
        opted_in=bool(profile and profile.opted_in),
        display_name=(profile.display_name if profile else None) or "",
        masked=leaderboards.mask(me.member.first_name, me.member.last_name, me.member.id),
        done=done == "1",
    )


@router.post("/{slug}/leaderboards/profile")
def profile(
    request: Request,
    me: WriteMe,
    opted_in: Annotated[str, Form(max_length=8)] = "",
    display_name: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Opt in (under a chosen name, or masked) or out: the member's scores show or hide."""
    name = display_name.strip() or None
    if name is not None and (len(name) < 2 or any(c in name for c in "<>")):
        raise ValidationFailed.on("display_name", "2 to 40 characters, without < or >")
    with get_database(request).transaction() as session:
        leaderboards.set_profile(
            session, programme=me.programme, member_id=me.member.id,
            opted_in=bool(opted_in), display_name=name,
        )  # fmt: skip
    return RedirectResponse(f"{me.site.base}/leaderboards?done=1", status_code=303)


@router.get("/{slug}/referral", response_class=HTMLResponse)
def referral(request: Request, me: MeDep) -> HTMLResponse:
    with get_database(request).transaction(readonly=True) as session:
        found = referrals.member_referral(session, programme=me.programme, member_id=me.member.id)
    return render(request, "referral.html", site=me.site, me=me, page="referral", referral=found)


@router.post("/{slug}/referral")
def referral_code(request: Request, me: WriteMe) -> Response:
    """A code for a member enrolled before the programme had a referral scheme (the same code
    each time: it is derived from the member)."""
    with get_database(request).transaction() as session:
        referrals.member_referral(
            session, programme=me.programme, member_id=me.member.id, create=True
        )
    return RedirectResponse(f"{me.site.base}/referral", status_code=303)
