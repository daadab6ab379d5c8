"""Analytics API: KPIs, cohorts and liability, as JSON or CSV (``format=csv``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from fidelia.analytics import aggregates, cohorts, kpis, liability
from fidelia.analytics import examples as ex
from fidelia.analytics import tiers as tiers_over_time
from fidelia.analytics.schemas import (
    CohortsOut,
    Grain,
    GroupBy,
    KpisOut,
    LiabilityOut,
    TiersOverTimeOut,
)
from fidelia.auth.dependencies import DbSession, Reader, get_database
from fidelia.errors import ERROR_RESPONSES, ValidationFailed
from fidelia.kit.bounds import Day, Instant
from fidelia.kit.clock import utcnow

router = APIRouter(prefix="/analytics", tags=["analytics"], responses=ERROR_RESPONSES)

Format = Literal["json", "csv"]


def csv_response(example: str) -> dict[int | str, dict[str, Any]]:
    """The 200 answer's CSV alternative, for the OpenAPI document."""
    return {
        200: {
            "content": {"text/csv": {"schema": {"type": "string", "examples": [example]}}},
            "description": "JSON, or CSV with `format=csv`",
        }
    }


def default_period(start: date | None, end: date | None) -> tuple[date, date]:
    """By default the last 365 days to today (UTC), or 365 days from ``start``."""
    last = end or (start + timedelta(days=364) if start else utcnow().date())
    return start or last - timedelta(days=364), last


def as_csv(name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def kpi_rows(answer: KpisOut) -> list[tuple[Any, ...]]:
    """The KPIs in long form: section, key, metric, value."""
    rows: list[tuple[Any, ...]] = []
    for metric, value in answer.headline.model_dump(exclude={"activation"}).items():
        rows.append(("headline", "", metric, value))
    for metric, value in answer.headline.activation.model_dump().items():
        rows.append(("activation", "", metric, value))
    for s in answer.series:
        for metric, value in s.model_dump(exclude={"bucket"}).items():
            rows.append(("series", s.bucket.isoformat(), metric, value))
    for g in answer.groups:
        for metric, value in g.model_dump(exclude={"key"}).items():
            rows.append((answer.group_by, g.key, metric, value))
    for w in answer.points:
        for metric, value in w.model_dump(exclude={"wallet", "by_rule", "unit"}).items():
            rows.append(("points", w.wallet, metric, value))
        rows.extend(("points_by_rule", w.wallet, r.rule or "", r.issued) for r in w.by_rule)
    for r in answer.rewards:
        rows.append(("rewards", r.reward, "redemptions", r.redemptions))
        rows.append(("rewards", r.reward, "points", r.points))
    for metric, value in answer.vouchers.model_dump().items():
        rows.append(("vouchers", "", metric, value))
    rows.extend(("tiers", t.tier, "members", t.members) for t in answer.tiers.members_now)
    rows.extend(
        ("tier_flows", f"{f.from_tier or ''}>{f.to_tier}", "changes", f.changes)
        for f in answer.tiers.flows
    )
    return [tuple("" if v is None else v for v in row) for row in rows]


@router.get(
    "/kpis",
    response_model=KpisOut,
    responses=csv_response(ex.KPIS_CSV),
    summary="Programme KPIs over a period",
)
def get_kpis(
    request: Request,
    principal: Reader,
    start: Annotated[Day | None, Query(description="First day (UTC); default end - 364 d")] = None,
    end: Annotated[Day | None, Query(description="Last day included (UTC); default today")] = None,
    grain: Annotated[Grain, Query(description="Buckets of the series")] = "month",
    group_by: Annotated[GroupBy, Query(description="Sales and enrolments by")] = "none",
    activation_days: Annotated[int, Query(ge=1, le=365)] = 30,
    format: Annotated[Format, Query()] = "json",
) -> KpisOut | Response:
    """The programme's KPIs from `start` to `end` (UTC days, both included; at most three
    years): enrolments, activation within `activation_days`, active and repeat members,
    frequency, basket, spend per member, members vs non-members (anonymous purchases) and the
    enrolment rate; a series by `grain`; sales and enrolments by store or channel
    (`group_by`); the points economy per wallet and rule (issued, redeemed, expired,
    outstanding and liability in money at the end, redemption and breakage rates, cost of
    redemptions); redemptions by reward, vouchers issued and used, revenue of orders with a
    voucher; members per tier and tier changes. Sales are the purchases' totals; the members'
    returns of the period, their refunds (`refund_total`, or the returned units at what they
    cost on the purchase) and the sales, basket and spend per
    member net of them stand beside (`*_net`). `format=csv`: the same in long form (section,
    key, metric, value).

    422: `end` before `start`, a period over three years, an unknown `grain` or `group_by`.

    Scope: `read`.
    """
    first, last = default_period(start, end)
    kpis.period(first, last)  # bad input refused before anything is written
    database = get_database(request)
    aggregates.fresh(database, programme=principal.programme)
    with database.transaction(readonly=True) as session:  # a snapshot taken after the refresh
        answer = kpis.compute(
            session,
            programme=principal.programme,
            refresh=False,
            start=first,
            end=last,
            grain=grain,
            group_by=group_by,
            activation_days=activation_days,
        )
    if format == "csv":
        return as_csv("kpis", ("section", "key", "metric", "value"), kpi_rows(answer))
    return answer


@router.get(
    "/cohorts",
    response_model=CohortsOut,
    responses=csv_response(ex.COHORTS_CSV),
    summary="Retention by enrolment month",
)
def get_cohorts(
    request: Request,
    principal: Reader,
    start: Annotated[Day | None, Query(description="First enrolment day (UTC)")] = None,
    end: Annotated[Day | None, Query(description="Last enrolment day included (UTC)")] = None,
    format: Annotated[Format, Query()] = "json",
) -> CohortsOut | Response:
    """Members enrolled from `start` to `end`, by enrolment month (UTC): how many, how many
    bought in each of the 12 months after their enrolment month and that share (retention),
    and how many bought twice or more (repeat). `format=csv`: one row per cohort.

    422: `end` before `start`, a period over three years.

    Scope: `read`.
    """
    first, last = default_period(start, end)
    kpis.period(first, last)
    database = get_database(request)
    aggregates.fresh(database, programme=principal.programme)
    with database.transaction(readonly=True) as session:
        answer = cohorts.compute(
            session, programme=principal.programme, start=first, end=last, refresh=False
        )
    if format == "csv":
        header = ["cohort", "members", "repeat_members"] + [f"m{k}" for k in range(1, 13)]
        rows = (
            [c.cohort.isoformat(), c.members, c.repeat_members]
            + ["" if r is None else r for r in c.retention]
            for c in answer.cohorts
        )
        return as_csv("cohorts", header, rows)
    return answer


@router.get(
    "/tiers",
    response_model=TiersOverTimeOut,
    responses=csv_response(ex.TIERS_CSV),
    summary="Members per tier over time, upgrades and downgrades",
)
def get_tiers(
    principal: Reader,
    session: DbSession,
    start: Annotated[Day | None, Query(description="First day (UTC); default end - 364 d")] = None,
    end: Annotated[Day | None, Query(description="Last day included (UTC); default today")] = None,
    grain: Annotated[Grain, Query(description="Buckets: day, week (Monday) or month")] = "month",
    format: Annotated[Format, Query()] = "json",
) -> TiersOverTimeOut | Response:
    """Members holding each tier at the end of every day, week or month from `start` to `end`
    (UTC days, both included; at most three years), from the tier history, and each bucket's
    changes: members joining the tiers, upgrades and downgrades (by the ranks of the live
    document's tiers) and every from -> to flow. `format=csv`: long form (bucket, kind, key,
    value).

    422: `end` before `start`, a period over three years, an unknown `grain`.

    Scope: `read`.
    """
    first, last = default_period(start, end)
    answer = tiers_over_time.compute(
        session, programme=principal.programme, start=first, end=last, grain=grain
    )
    if format == "csv":
        return as_csv("tiers", ("bucket", "kind", "key", "value"), tiers_over_time.rows(answer))
    return answer


@router.get(
    "/liability",
    response_model=LiabilityOut,
    responses=csv_response(ex.LIABILITY_CSV),
    summary="Points liability, breakage forecast and back-test",
)
def get_liability(
    principal: Reader,
    session: DbSession,
    wallet: Annotated[str, Query(max_length=32)] = "points",
    at: Annotated[Instant | None, Query(description="ISO instant with offset; default now")] = None,
    format: Annotated[Format, Query()] = "json",
) -> LiabilityOut | Response:
    """The wallet's liability at `at` (member balances as of then, in points and in money at the
    wallet's unit value), the historical redemption curve by lot age, the breakage forecast and
    the forecast liability for each of the next 12 months (30-day months) of the points
    outstanding at `at`. With `at` in the past, each month that has happened also carries what
    did (`actual_*`): the back-test. `format=csv`: the 12 months.

    404: no such wallet. 422: `at` without an offset.

    Scope: `read`.
    """
    if at is not None and at.tzinfo is None:
        raise ValidationFailed.on(("query", "at"), "an instant with a time zone offset, e.g. Z")
    answer = liability.forecast(session, programme=principal.programme, wallet=wallet, at=at)
    if format == "csv":
        header = [
            "month", "until", "expected_redeemed", "expected_expired", "expected_outstanding",
            "expected_liability_money", "actual_redeemed", "actual_expired", "actual_outstanding",
        ]  # fmt: skip
        rows = (
            ["" if v is None else v for v in m.model_dump(mode="json").values()]
            for m in answer.forecast
        )
        return as_csv("liability", header, rows)
    return answer
