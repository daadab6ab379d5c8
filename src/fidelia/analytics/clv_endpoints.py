"""CLV API: the programme's BG/NBD + Gamma-Gamma fit, live or refreshed into member traits."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from fidelia.analytics import clv_service as service
from fidelia.analytics.recommend_endpoints import router as recommend_router
from fidelia.auth.dependencies import Admin, DbSession, Reader
from fidelia.errors import ERROR_RESPONSES, NotFound, ValidationFailed
from fidelia.examples import examples
from fidelia.kit.bounds import Day
from fidelia.kit.clock import utcnow

router = APIRouter(tags=["analytics"], responses=ERROR_RESPONSES)
router.include_router(recommend_router)  # /analytics/recommendations, /members/{id}/...

CLV_EXAMPLE: dict[str, Any] = {
    "as_of": "1997-10-01",
    "time_unit": "week",
    "bgnbd": {"r": 0.242594, "alpha": 4.41360, "a": 0.792919, "b": 2.425893,
              "log_likelihood": -9582.429207, "customers": 2357, "converged": True},
    "gamma_gamma": {"p": 6.249572, "q": 3.744213, "gamma": 15.443618,
                    "log_likelihood": -4055.917690, "customers": 946, "converged": True},
    "settings": {"horizon_months": 12, "discount_rate": 0.1, "margin": 1.0,
                 "purchases_weeks": 13},
    "summary": {"customers": 2357, "repeat_customers": 946,
                "churn_risk": {"low": 1590, "medium": 512, "high": 255},
                "mean_p_alive": 0.781204, "expected_purchases": 713.4,
                "clv_total": "61240.87", "clv_mean": "25.98"},
    "holdout": None,
    "stored_at": None,
}  # fmt: skip
CSV_EXAMPLE = (
    "member_id,repeat_purchases,recency_weeks,age_weeks,p_alive,churn_risk,expected_purchases,"
    "expected_spend,clv\n019b8d62-7a80-7ce8-9a81-ba6a85a0bcc2,2,30.4286,38.8571,0.711234,low,"
    "0.412388,29.21,47.06\n"
)

CSV_COLUMNS = (
    "member_id", "repeat_purchases", "recency_weeks", "age_weeks", "p_alive", "churn_risk",
    "expected_purchases", "expected_spend", "clv",
)  # fmt: skip


class ClvOut(BaseModel):
    """A fit: BG/NBD (r, alpha, a, b; time unit: week) and Gamma-Gamma (p, q, gamma) with
    their log-likelihoods, the CLV settings and the distribution of the scores."""

    model_config = ConfigDict(json_schema_extra=examples(CLV_EXAMPLE))
    as_of: str
    time_unit: str = "week"
    bgnbd: dict[str, Any]
    gamma_gamma: dict[str, Any]
    settings: dict[str, Any]
    summary: dict[str, Any]
    holdout: dict[str, Any] | None = None
    stored_at: str | None = Field(None, description="when a refresh stored this fit")


class RefreshIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra=examples({"horizon_months": 12, "discount_rate": 0.1, "daily": True})
    )

    horizon_months: int = Field(12, ge=1, le=120)
    discount_rate: float = Field(0.10, ge=0, lt=1, allow_inf_nan=False)
    margin: float = Field(1.0, gt=0, le=1, allow_inf_nan=False)
    purchases_weeks: int = Field(13, ge=1, le=104)
    daily: bool = Field(False, description="also refresh by itself every day (UTC 01:00)")


@router.get(
    "/analytics/clv",
    response_model=ClvOut,
    summary="Fit CLV and churn models on the programme's purchases",
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string", "examples": [CSV_EXAMPLE]}}}}
    },
)
def get_clv(
    principal: Reader,
    session: DbSession,
    as_of: Annotated[Day | None, Query(description="UTC day, excluded (default: tomorrow)")] = None,
    horizon_months: Annotated[int, Query(ge=1, le=120)] = 12,
    discount_rate: Annotated[float, Query(ge=0, lt=1, allow_inf_nan=False)] = 0.10,
    margin: Annotated[float, Query(gt=0, le=1, allow_inf_nan=False)] = 1.0,
    purchases_weeks: Annotated[int, Query(ge=1, le=104)] = 13,
    holdout_days: Annotated[int | None, Query(ge=7, le=3650)] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """Fit BG/NBD (purchases, P(alive)) and Gamma-Gamma (spend) on the purchases before
    `as_of`, without storing anything: parameters, log-likelihoods, and the churn bands and CLV
    over `horizon_months` discounted at the yearly `discount_rate`. With `holdout_days`, also
    fits on the purchases before `as_of - holdout_days` and reports predicted vs actual repeat
    purchase days in the holdout, per member and in aggregate. `format=csv`: one line per
    purchaser.

    422: bad parameters, or too little history (the error names what is missing: `customers`,
    `repeat_customers`, `history` or `monetary`).

    Scope: `read`.
    """
    programme = principal.programme
    day = as_of or utcnow().date() + timedelta(days=1)
    if not date(1970, 1, 1) <= day <= date(2999, 12, 31):
        raise ValidationFailed.on(("query", "as_of"), "must be between 1970-01-01 and 2999-12-31")
    settings = service.Settings(horizon_months, discount_rate, margin, purchases_weeks)
    result = service.fit(session, programme=programme, as_of=day, settings=settings)
    if format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(service.member_rows(result))
        headers = {"Content-Disposition": f'attachment; filename="clv-{day.isoformat()}.csv"'}
        return Response(buffer.getvalue(), media_type="text/csv", headers=headers)
    out = ClvOut(**service.describe(result))
    if holdout_days is not None:
        start = day - timedelta(days=holdout_days)
        out.holdout = service.holdout(
            session, programme=programme, calibration_end=start, until=day
        )
    return out


@router.post(
    "/analytics/clv/refresh",
    response_model=ClvOut,
    summary="Refit and write p_alive, clv and churn_risk into the members' traits",
)
def refresh_clv(body: RefreshIn, principal: Admin, session: DbSession) -> ClvOut:
    """What the `analytics.clv` job does, now: fit on every purchase up to today, store the fit
    and write `traits.p_alive`, `traits.clv` and `traits.churn_risk` (low / medium / high for
    P(alive) >= 0.7 / >= 0.3 / below) of every purchaser, for segments, rules and templates.
    `daily: true` also schedules the job every day from tomorrow (UTC 01:00).

    422: too little history (nothing is written).

    Scope: `admin`.
    """
    programme = principal.programme
    settings = service.Settings(
        body.horizon_months, body.discount_rate, body.margin, body.purchases_weeks
    )
    now = utcnow()
    stored = service.refresh(session, programme=programme, now=now, settings=settings)
    if body.daily:
        service.schedule(session, programme=programme, after=now, settings=settings)
    return _stored(stored)


@router.get(
    "/analytics/clv/latest",
    response_model=ClvOut,
    summary="The fit the members' traits come from",
)
def latest_clv(principal: Reader, session: DbSession) -> ClvOut:
    """The last stored fit (refresh or job).

    404: the programme has never been refreshed.

    Scope: `read`.
    """
    stored = service.latest(session, programme_id=principal.programme.id)
    if stored is None:
        raise NotFound("no CLV fit stored yet: POST /analytics/clv/refresh")
    return _stored(stored)


def _stored(row: Any) -> ClvOut:
    return ClvOut(
        as_of=row.as_of.date().isoformat(),
        bgnbd=row.bgnbd,
        gamma_gamma=row.gamma_gamma,
        settings=row.settings,
        summary=row.summary,
        stored_at=row.fitted_at.isoformat(),
    )
