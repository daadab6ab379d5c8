"""The dashboard: headline figures over a chosen period, each chart with its table.

The sales and customer KPIs come from the analytics aggregates as they stand: the page never
refreshes them (a first build over a large programme takes seconds). It shows their watermark
("figures as of"), the hourly ``analytics.refresh`` job brings them up to date, a page that
finds them never built or more than ``STALE_AFTER`` behind asks that job to run now, and an
owner may press "Refresh now" (``POST .../dashboard/refresh``), which refreshes and comes back.
The points issued, redeemed and expired by month come from the daily ledger aggregate with the
days it may not hold yet read from the ledger (:mod:`fidelia.web.figures`), so they are the
ledger's as it stands whatever the watermark; the liability (cached balances), members, tier mix
and the members per tier by month (:mod:`fidelia.analytics.tiers`, from the tier changes) are
read live. All are then kept for ``SNAPSHOT_FOR``.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup
from sqlalchemy.orm import Session

from fidelia.analytics import aggregates, kpis
from fidelia.analytics import jobs as analytics_jobs
from fidelia.analytics import tiers as tiers_over_time
from fidelia.analytics.schemas import Headline, SeriesRow, TiersOverTimeOut
from fidelia.auth.dependencies import get_database
from fidelia.errors import ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.ledger import wallets as wallet_service
from fidelia.ledger.expiry import add_months
from fidelia.models import Programme, Wallet
from fidelia.web import charts, figures
from fidelia.web.access import BASE, OwnerPage, ReadPage
from fidelia.web.templating import render

router = APIRouter()

STALE_AFTER = timedelta(hours=2)  # the hourly job missed a run: ask for one now
SNAPSHOT_FOR = timedelta(minutes=5)  # the figures of a period are reused this long


@dataclass(frozen=True)
class Kpis:
    """The KPIs the page shows (``kpis.compute`` also reads points, rewards, vouchers and tiers
    over the ledger, which this page shows from :mod:`fidelia.web.figures`)."""

    currency: str
    headline: Headline
    series: list[SeriesRow]
    tiers: TiersOverTimeOut


@dataclass(frozen=True)
class Snapshot:
    computed_at: datetime
    kpi: Kpis
    data: figures.Figures | None


class Snapshots:
    """The figures of the periods viewed lately, per process: a period's figures over a large
    programme take a second or more to read from the ledger, so they are computed once and
    reused for ``SNAPSHOT_FOR`` or until the aggregates' watermark moves (it is part of the
    key), and the page says when they were computed. "Refresh now" drops a programme's."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[tuple[Any, ...], Snapshot] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], now: datetime) -> Snapshot | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found.computed_at < now - SNAPSHOT_FOR:
                return None
            self._items.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], snapshot: Snapshot) -> None:
        with self._lock:
            self._items[key] = snapshot
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def drop(self, programme_id: uuid.UUID) -> None:
        with self._lock:
            for key in [k for k in self._items if k[1] == programme_id]:
                del self._items[key]


_snapshots = Snapshots()


def _compute(
    session: Session, programme: Programme, wallet: Wallet | None, first: date, until: date,
    now: datetime,
) -> Snapshot:  # fmt: skip
    span = kpis.period(first, until - timedelta(days=1))
    d = aggregates.sql_for(session)
    kpi = Kpis(
        currency=programme.currency,
        headline=kpis.headline(session, d, programme.id, span, 30),
        series=kpis.series(session, d, programme.id, span, "month"),
        tiers=tiers_over_time.compute(
            session, programme=programme, start=span.start, end=span.end, grain="month"
        ),
    )
    data = None
    if wallet is not None:
        data = figures.compute(session, programme=programme, wallet=wallet, start=first, end=until)
    return Snapshot(computed_at=now, kpi=kpi, data=data)


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
    now = utcnow()
    with database.transaction(readonly=True) as session:
        as_of = aggregates.watermark(session, programme=programme)
        wallets = wallet_service.list_wallets(session, programme=programme)
        chosen = next((w for w in wallets if w.code == wallet), None)
        chosen = chosen or next((w for w in wallets if w.code == "points"), None)
        chosen = chosen or (wallets[0] if wallets else None)
        key = (id(database), programme.id, chosen.id if chosen else None, first, until, as_of)
        snapshot = _snapshots.get(key, now)
        if snapshot is None:
            snapshot = _compute(session, programme, chosen, first, until, now)
            _snapshots.put(key, snapshot)
    kpi, data = snapshot.kpi, snapshot.data
    if as_of is None or as_of < now - STALE_AFTER:
        with database.transaction() as session:  # the worker refreshes; this page does not wait
            analytics_jobs.schedule(session, programme=programme, after=now - timedelta(hours=1))
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
        tiers_time_chart=kpi_charts[2],
        tier_codes=_tier_codes(kpi.tiers),
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
        now=now,
        as_of=as_of,
        computed_at=snapshot.computed_at,
        query=request.url.query,
    )


@router.post("/p/{slug}/dashboard/refresh")
def refresh_now(request: Request, page: OwnerPage) -> RedirectResponse:
    """Bring the KPI aggregates up to date now (an owner's button), then show the dashboard."""
    aggregates.fresh(get_database(request), programme=page.programme)
    _snapshots.drop(page.programme.id)
    query = request.url.query  # the period shown, checked again by the dashboard itself
    back = f"{BASE}/p/{page.programme.slug}/" + (f"?{query}" if query else "")
    return RedirectResponse(back, 303)


def _tier_codes(answer: TiersOverTimeOut) -> list[str]:
    """The tiers someone held in the period, highest first (as each period lists them)."""
    held = {s.tier for p in answer.periods for s in p.members if s.members}
    order = [s.tier for s in answer.periods[0].members] if answer.periods else []
    return [t for t in order if t in held] + sorted(held - set(order))


def _kpi_charts(kpi: Kpis, fmt: Any, _: Any) -> tuple[Markup, Markup, Markup | None]:
    """Sales of members and non-members by month; enrolments and active members by month;
    members per tier at the end of each month (None when nobody held a tier)."""
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
    codes = _tier_codes(kpi.tiers)
    held = [{s.tier: s.members for s in p.members} for p in kpi.tiers.periods]
    tiers = charts.bars(
        _("Members per tier by month"),
        [fmt.day(p.bucket, "MMM yy") for p in kpi.tiers.periods],
        [charts.Series(code, [h.get(code, 0) for h in held]) for code in codes],
    )
    return sales, activity, tiers if codes else None
