"""Offers and plans (issue 14): the offers of the live document with their conversion and
first-N slots, the plans with their subscriptions, and giving an offer to members (ids) or a
segment, through the offers service the API uses, in the audit log."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fidelia.audit import service as audit
from fidelia.auth.dependencies import get_database
from fidelia.errors import FideliaError, ValidationFailed
from fidelia.offers import service as offers
from fidelia.offers.schemas import GiveIn
from fidelia.plans import service as plans
from fidelia.plans.definitions import sections_for
from fidelia.plans.schemas import LIVE_STATES
from fidelia.web.access import BASE, Page, ReadPage, WritePage
from fidelia.web.templating import render

router = APIRouter()


def _page(
    request: Request,
    page: Page,
    *,
    status: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    with get_database(request).transaction(readonly=True) as session:
        listed = offers.list_offers(session, programme=page.programme)
        counts = plans.counts(session, programme=page.programme)
        defs = sections_for(session, page.programme).plans
    plan_rows = [
        (
            plan,
            sum(n for s, n in counts.get(code, {}).items() if s in LIVE_STATES),
            counts.get(code, {}),
        )
        for code, plan in sorted(defs.items())
    ]
    return render(
        request,
        "offers.html",
        fmt=page.fmt,
        page=page,
        viewer=page.viewer,
        status=status,
        offers=listed,
        plans=plan_rows,
        error=error,
        form=form or {},
        done=request.query_params.get("done"),
    )


@router.get("/p/{slug}/offers", response_class=HTMLResponse)
def show(request: Request, page: ReadPage) -> HTMLResponse:
    return _page(request, page)


@router.post("/p/{slug}/offers/give", response_class=HTMLResponse)
def give(
    request: Request,
    page: WritePage,
    offer: Annotated[str, Form(max_length=64)] = "",
    members: Annotated[str, Form(max_length=100_000)] = "",
    segment: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    form = {"offer": offer, "members": members, "segment": segment}
    try:
        ids = []
        for i, raw in enumerate(members.split()):
            try:
                ids.append(uuid.UUID(raw))
            except ValueError:
                raise ValidationFailed.on(("members", i), f"{raw!r} is not a member id") from None
        if bool(ids) == bool(segment.strip()):
            raise ValidationFailed.on("members", "give member ids or a segment (one of them)")
        data = GiveIn(member_ids=ids, segment=segment.strip() or None)
        with get_database(request).transaction() as session:
            result = offers.give(
                session, programme=page.programme, code=offer, data=data, actor=page.actor
            )
            audit.record(
                session,
                programme_id=page.programme.id,
                actor=page.actor,
                user_id=page.viewer.user.id,
                action="offer.give",
                target_type="offer",
                target_id=offer,
                after={
                    "given": result.given,
                    "already": result.already,
                    "segment": data.segment,
                    "members": len(ids),
                },
            )
    except FideliaError as exc:
        message = exc.fields[0].msg if exc.fields else exc.detail
        return _page(request, page, status=exc.status_code, error=message, form=form)
    done = f"given-{result.given}-already-{result.already}"
    return RedirectResponse(f"{BASE}/p/{page.programme.slug}/offers?done={done}", status_code=303)
