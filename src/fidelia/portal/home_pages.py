"""Home (balances, expiring points, tier progress, badges, challenges) and history."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from fidelia.auth.dependencies import get_database
from fidelia.kit.clock import utcnow
from fidelia.portal import views
from fidelia.portal.access import MeDep
from fidelia.portal.templating import render
from fidelia.rewards import redemptions as redemption_service

router = APIRouter()


@router.get("/{slug}/", response_class=HTMLResponse)
def home(request: Request, me: MeDep) -> HTMLResponse:
    now = utcnow()
    programme, member = me.programme, me.member
    with get_database(request).transaction(readonly=True) as session:
        wallets = views.balances_of(
            session, programme=programme, member=member, section=me.site.section, now=now
        )
        tier = views.tier_of(
            session, programme=programme, member=member, language=me.fmt.language, now=now
        )
        badges, challenges = views.engagement_of(
            session, programme=programme, member=member, now=now
        )
    return render(
        request,
        "home.html",
        site=me.site,
        me=me,
        page="home",
        wallets=wallets,
        tier=tier,
        badges=badges,
        challenges=challenges,
        goal_percent=views.goal_percent,
    )


@router.get("/{slug}/history", response_class=HTMLResponse)
def history(request: Request, me: MeDep) -> HTMLResponse:
    programme, member = me.programme, me.member
    with get_database(request).transaction(readonly=True) as session:
        lines = views.history_of(
            session,
            programme=programme,
            member=member,
            section=me.site.section,
            language=me.fmt.language,
        )
        redemptions, _ = redemption_service.list_for_member(
            session, programme=programme, member_id=member.id, limit=50
        )
        names = views.reward_names(session, programme=programme)
    return render(
        request,
        "history.html",
        site=me.site,
        me=me,
        page="history",
        lines=lines,
        redemptions=redemptions,
        reward_names=names,
    )
