"""Scenarios (issue 11): each scenario of the live document with its journeys, the conversion
of treated and holdout members with the lift and its 95 % interval, and its steps' outcomes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from fidelia.auth.dependencies import get_database
from fidelia.scenarios import service, stats
from fidelia.web.access import ReadPage
from fidelia.web.templating import render

router = APIRouter()


@router.get("/p/{slug}/scenarios", response_class=HTMLResponse)
def show(request: Request, page: ReadPage) -> HTMLResponse:
    rows: list[tuple[Any, dict[str, Any]]] = []
    with get_database(request).transaction(readonly=True) as session:
        section = service.section_for(session, page.programme)
        for scenario in section.definitions if section else []:
            figures = stats.scenario_stats(session, programme=page.programme, code=scenario.code)
            rows.append((scenario, figures))
    return render(
        request, "scenarios.html", fmt=page.fmt, page=page, viewer=page.viewer, scenarios=rows
    )
