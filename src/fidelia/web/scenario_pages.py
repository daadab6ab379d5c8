"""Scenarios (issue 11): each scenario of the live document with its journeys, the conversion
of treated and holdout members with the lift and its 95 % interval, and its steps' outcomes."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from fidelia.auth.dependencies import get_database
from fidelia.errors import FideliaError
from fidelia.kit.clock import utcnow
from fidelia.members import service as members
from fidelia.scenarios import preview, service, stats
from fidelia.web.access import ReadPage
from fidelia.web.templating import render

router = APIRouter()


@router.get("/p/{slug}/scenarios", response_class=HTMLResponse)
def show(
    request: Request,
    page: ReadPage,
    code: Annotated[str | None, Query(max_length=64)] = None,
    member: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """The scenarios; with ``code`` and ``member`` (an id), that member's path through that
    scenario with the messages they would get, rendered (nothing is written)."""
    rows: list[tuple[Any, dict[str, Any]]] = []
    trial: dict[str, Any] | None = None
    with get_database(request).transaction(readonly=True) as session:
        section = service.section_for(session, page.programme)
        for scenario in section.definitions if section else []:
            figures = stats.scenario_stats(session, programme=page.programme, code=scenario.code)
            rows.append((scenario, figures))
            if scenario.code == code and member:
                trial = _trial(session, page.programme, section, scenario, member)
    return render(
        request,
        "scenarios.html",
        fmt=page.fmt,
        page=page,
        viewer=page.viewer,
        scenarios=rows,
        trial=trial,
        trial_code=code,
        trial_member=member or "",
    )


def _trial(
    session: Any, programme: Any, section: Any, scenario: Any, member_ref: str
) -> dict[str, Any]:
    try:
        member_id = uuid.UUID(member_ref.strip())
    except ValueError:
        return {"error": "not a member id"}
    try:
        found = members.get(session, programme=programme, member_id=member_id)
        path = preview.path_for(session, programme, scenario, found, {}, utcnow())
    except FideliaError as exc:
        return {"error": exc.detail}
    holdout = service.is_holdout(section, scenario, programme.id, found.id)
    return {"path": path, "holdout": holdout}
