"""The dashboard: headline figures over a chosen period, each chart with its table."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from fidelia.analytics import aggregates, kpis
from fidelia.analytics.schemas import KpisOut
from fidelia.auth.dependencies import get_database
from fidelia.errors import ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.ledger import wallets as wallet_service
from fidelia.ledger.expiry import add_months
from fidelia.web import charts, figures
from fidelia.web.access import ReadPage
from fidelia.web.templating import render

router = APIRouter()


def period(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """The period asked for, by default the last 12 months including today; ``end`` is the
    last day shown (inclusive in the form, exclusive once returned)."""
    last = end or today
    first = start or add_months(today.replace(day=1), -11)
    if first > last:
        raise ValidationFailed.on(("query", "start"), "the period starts after it ends")
    if (last - first).days > 366 * 3:
        raise ValidationFailed.on(("query", "start"), "a period of at most three years")
    return first, last + timedelta(days=1)


@router.get("/p/{slug}/", response_class=HTMLResponse)
def show(
    request: Request,
    page: ReadPage,
    start: Annotated[date | None, Query()] = None,
    end: Annotated[date | None, Query()] = None,
    wallet: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    programme = page.programme
    today = datetime.now(ZoneInfo(programme.timezone)).date()
    first, until = period(start, end, today)
    database = get_database(request)
    aggregates.fresh(database, programme=programme)  # KPIs read aggregates brought up to date
    with database.transaction(readonly=True) as session:
        kpi = kpis.compute(
            session, programme=programme, start=first, end=until - timedelta(days=1),
            grain="month", refresh=False,
        )  # fmt: skip
        wallets = wallet_service.list_wallets(session, programme=programme)
        chosen = next((w for w in wallets if w.code == wallet), None)
        chosen = chosen or next((w for w in wallets if w.code == "points"), None)
        chosen = chosen or (wallets[0] if wallets else None)
        data = None
        if chosen is not None:
            data = figures.compute(
                session, programme=programme, wallet=chosen, start=first, end=until
            )
    fmt, _ = page.fmt, page.fmt.gettext
    chart = tiers_chart = None
    if data is not None and chosen is not None:
        labels = [fmt.day(m.start, "MMM yy") for m in data.months]

        def unit(values: list[int]) -> list[float]:
            return [float(wallet_service.from_minor(chosen, v)) for v in values]

        chart = charts.bars(
            _("Points by month"),
            labels,
            [
                charts.Series(_("Issued"), unit([m.issued for m in data.months])),
                charts.Series(_("Redeemed"), unit([m.redeemed for m in data.months])),
                charts.Series(_("Expired"), unit([m.expired for m in data.months])),
            ],
        )
        tiers_chart = charts.bars(
            _("Tier mix"),
            [tier for tier, _n in data.tiers],
            [charts.Series(_("Members"), [n for _t, n in data.tiers])],
        )
    kpi_charts = _kpi_charts(kpi, fmt, _)
    return render(
        request,
        "dashboard.html",
        kpi=kpi,
        sales_chart=kpi_charts[0],
        activity_chart=kpi_charts[1],
        fmt=fmt,
        page=page,
        viewer=page.viewer,
        wallets=wallets,
        wallet=chosen,
        data=data,
        chart=chart,
        tiers_chart=tiers_chart,
        start=first,
        end=until - timedelta(days=1),
        from_minor=wallet_service.from_minor,
        now=utcnow(),
    )


def _kpi_charts(kpi: KpisOut, fmt: Any, _: Any) -> tuple[Markup, Markup]:
    """Sales of members and non-members by month; enrolments and active members by month."""
    labels = [fmt.day(row.bucket, "MMM yy") for row in kpi.series]
    sales = charts.bars(
        _("Sales by month"),
        labels,
        [
            charts.Series(_("Members"), [float(r.member_sales) for r in kpi.series]),
            charts.Series(_("Non-members"), [float(r.non_member_sales) for r in kpi.series]),
        ],
    )
    activity = charts.bars(
        _("Enrolments and active members by month"),
        labels,
        [
            charts.Series(_("Enrolments"), [r.enrolments for r in kpi.series]),
            charts.Series(_("Active members"), [r.active_members for r in kpi.series]),
        ],
    )
    return sales, activity
