"""A programme's CLV: purchase figures aggregated in SQL, the fit, the per-member traits.

The figures a BG/NBD and Gamma-Gamma fit needs are computed by one grouped query per
programme (:func:`figures`): per member, the distinct UTC purchase days before ``as_of``
(``x`` = days - 1), the first and last day, and the spend of the repeat days (spend of a
purchase = its ``total`` less ``shipping``). Only one row per purchaser comes back, never the
events. Returns are not subtracted (the models describe buying, not keeping).

Time is counted in weeks, as in the papers. ``refresh`` fits, stores a :class:`ClvFit` and
writes ``p_alive``, ``clv`` and ``churn_risk`` on each purchaser's ``member_traits`` row in one
executemany; the ``analytics.clv`` job runs it every day.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import Uuid, bindparam, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from fidelia.analytics import clv
from fidelia.errors import ValidationFailed
from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.models import ClvFit, Job, MemberTraits, Programme
from fidelia.models.base import UTCDateTime

REFRESH_JOB = "analytics.clv"
WEEK = 7.0
MONTH_WEEKS = 52.0 / 12.0
#: P(alive) bands: high churn risk below 0.3, medium below 0.7, low from 0.7
BANDS = ((0.3, "high"), (0.7, "medium"))
MIN_HISTORY_DAYS = 28

_DAY = {
    "postgresql": "CAST(occurred_at AT TIME ZONE 'UTC' AS date)",
    "sqlite": "substr(occurred_at, 1, 10)",
}
_AMOUNT = {
    "postgresql": "CAST(properties->>'total' AS numeric)"
    " - COALESCE(CAST(properties->>'shipping' AS numeric), 0)",
    "sqlite": "CAST(json_extract(properties, '$.total') AS REAL)"
    " - COALESCE(CAST(json_extract(properties, '$.shipping') AS REAL), 0)",
}


def _figures_sql(dialect: str) -> str:
    day, amount = _DAY[dialect], _AMOUNT[dialect]
    return f"""
WITH p AS (
  SELECT member_id, {day} AS day, {amount} AS amount FROM events
  WHERE programme_id = :programme_id AND type = 'purchase' AND occurred_at < :until
), d AS (
  SELECT member_id, day, SUM(amount) AS spend FROM p GROUP BY member_id, day
), m AS (
  SELECT member_id, COUNT(*) AS days, MIN(day) AS first_day, MAX(day) AS last_day,
    SUM(spend) AS spend
  FROM d GROUP BY member_id
)
SELECT m.member_id, m.days, m.first_day, m.last_day, m.spend - d.spend AS repeat_spend
FROM m JOIN d ON d.member_id = m.member_id AND d.day = m.first_day
ORDER BY m.member_id"""


def _holdout_sql(dialect: str) -> str:
    return f"""
SELECT member_id, COUNT(DISTINCT {_DAY[dialect]}) AS days FROM events
WHERE programme_id = :programme_id AND type = 'purchase'
  AND occurred_at >= :since AND occurred_at < :until
GROUP BY member_id"""


def _typed(sql: str, *instants: str) -> Any:
    """The statement with its programme id and instants bound as the columns' types (UUIDs as
    hex text and instants as ISO text on SQLite)."""
    params: list[BindParameter[Any]] = [bindparam("programme_id", type_=Uuid())]
    params += [bindparam(name, type_=UTCDateTime()) for name in instants]
    return text(sql).bindparams(*params)


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def figures(session: Session, *, programme_id: uuid.UUID, as_of: date) -> clv.RFM:
    """Per purchaser before ``as_of`` (a UTC day, excluded): x, t_x, T in weeks and the mean
    repeat-day spend, from one grouped query."""
    dialect = session.get_bind().dialect.name
    rows = session.execute(
        _typed(_figures_sql(dialect), "until"),
        {"programme_id": programme_id, "until": _start_of(as_of)},
    ).all()
    ids = [r.member_id if isinstance(r.member_id, uuid.UUID) else uuid.UUID(str(r.member_id))
           for r in rows]  # fmt: skip
    if not rows:
        empty = np.zeros(0)
        return clv.RFM(empty, empty, empty, empty, ids)
    first = np.array([_day(r.first_day).toordinal() for r in rows], dtype=float)
    last = np.array([_day(r.last_day).toordinal() for r in rows], dtype=float)
    x = np.array([r.days - 1 for r in rows], dtype=float)
    repeat = np.array([float(r.repeat_spend or 0) for r in rows], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        monetary = np.where(x > 0, repeat / np.maximum(x, 1), 0.0)
    end = float(as_of.toordinal() - 1)  # the last calibration day, as CDNOW's 1997-09-30
    return clv.RFM(x, (last - first) / WEEK, (end - first) / WEEK, monetary, ids)


def holdout_counts(
    session: Session, *, programme_id: uuid.UUID, since: date, until: date
) -> dict[uuid.UUID, int]:
    dialect = session.get_bind().dialect.name
    rows = session.execute(
        _typed(_holdout_sql(dialect), "since", "until"),
        {"programme_id": programme_id, "since": _start_of(since), "until": _start_of(until)},
    ).all()
    return {
        (r.member_id if isinstance(r.member_id, uuid.UUID) else uuid.UUID(str(r.member_id))): int(
            r.days
        )
        for r in rows
    }


@dataclass(frozen=True, slots=True)
class Settings:
    """CLV horizon (months), yearly discount rate and gross margin applied to spend."""

    horizon_months: int = 12
    discount_rate: float = 0.10
    margin: float = 1.0
    purchases_weeks: int = 13

    def check(self) -> Settings:
        if not 1 <= self.horizon_months <= 120:
            raise ValidationFailed.on("horizon_months", "must be between 1 and 120")
        if not 0 <= self.discount_rate < 1:
            raise ValidationFailed.on("discount_rate", "must be a yearly rate in [0, 1)")
        if not 0 < self.margin <= 1:
            raise ValidationFailed.on("margin", "must be in (0, 1]")
        if not 1 <= self.purchases_weeks <= 104:
            raise ValidationFailed.on("purchases_weeks", "must be between 1 and 104")
        return self

    def as_dict(self) -> dict[str, Any]:
        return {
            "horizon_months": self.horizon_months, "discount_rate": self.discount_rate,
            "margin": self.margin, "purchases_weeks": self.purchases_weeks,
        }  # fmt: skip


def band(p_alive: float) -> str:
    for limit, name in BANDS:
        if p_alive < limit:
            return name
    return "low"


@dataclass(slots=True)
class Result:
    """A fit and its per-member figures (arrays aligned with ``rfm.ids``)."""

    as_of: date
    rfm: clv.RFM
    bg: clv.BgNbd
    gg: clv.GammaGamma
    settings: Settings
    p_alive: np.ndarray
    expected_purchases: np.ndarray
    expected_spend: np.ndarray
    value: np.ndarray

    def summary(self) -> dict[str, Any]:
        bands = {"low": 0, "medium": 0, "high": 0}
        for p in self.p_alive:
            bands[band(float(p))] += 1
        n = len(self.rfm)
        return {
            "customers": n,
            "repeat_customers": int((self.rfm.x > 0).sum()),
            "churn_risk": bands,
            "mean_p_alive": _num(float(self.p_alive.mean())),
            "expected_purchases": _num(float(self.expected_purchases.sum())),
            "clv_total": str(_money(float(self.value.sum()))),
            "clv_mean": str(_money(float(self.value.mean()))),
        }


def _num(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def _money(value: float) -> Decimal:
    return Decimal(str(round(value if math.isfinite(value) else 0.0, 2))).quantize(Decimal("0.01"))


def _check_history(rfm: clv.RFM) -> None:
    span_days = float(rfm.T.max()) * WEEK if len(rfm) else 0.0
    if len(rfm) and span_days < MIN_HISTORY_DAYS:
        raise ValidationFailed.on(
            "history",
            f"the model needs at least {MIN_HISTORY_DAYS} days between the first purchase and "
            f"as_of, the programme has {span_days:.0f}",
        )


def fit(
    session: Session, *, programme: Programme, as_of: date, settings: Settings | None = None
) -> Result:
    """Fit both models on the programme's purchases before ``as_of`` and score every purchaser.

    422 (``customers``, ``repeat_customers``, ``history`` or ``monetary``) when the history is
    too thin to estimate anything."""
    settings = (settings or Settings()).check()
    rfm = figures(session, programme_id=programme.id, as_of=as_of)
    clv.check_enough(rfm)
    _check_history(rfm)
    bg = clv.fit_bgnbd(rfm)
    gg = clv.fit_gamma_gamma(rfm)
    monthly = (1 + settings.discount_rate) ** (1 / 12) - 1
    value = clv.clv(
        bg, gg, rfm,
        horizon=settings.horizon_months * MONTH_WEEKS, step=MONTH_WEEKS,
        discount_rate=monthly, margin=settings.margin,
    )  # fmt: skip
    alive = np.nan_to_num(bg.p_alive(rfm.x, rfm.t_x, rfm.T), nan=0.0)
    purchases = np.nan_to_num(
        bg.expected_purchases(float(settings.purchases_weeks), rfm.x, rfm.t_x, rfm.T), nan=0.0
    )
    spend = np.nan_to_num(gg.expected_spend(rfm.x, rfm.monetary), nan=0.0)
    return Result(as_of, rfm, bg, gg, settings, alive, purchases, spend, value)


def holdout(
    session: Session, *, programme: Programme, calibration_end: date, until: date
) -> dict[str, Any]:
    """Fit on purchases before ``calibration_end``; predicted vs actual repeat purchase days of
    the same members in [calibration_end, until)."""
    if until <= calibration_end:
        raise ValidationFailed.on("holdout_days", "must be positive")
    result = fit(session, programme=programme, as_of=calibration_end)
    counts = holdout_counts(session, programme_id=programme.id, since=calibration_end, until=until)
    actual = np.array([counts.get(m, 0) for m in result.rfm.ids], dtype=float)
    weeks = (until - calibration_end).days / WEEK
    report = clv.holdout_report(result.bg, result.rfm, actual, weeks).as_dict()
    return {
        "calibration_end": calibration_end.isoformat(),
        "holdout_end": until.isoformat(),
        "bgnbd": result.bg.as_dict(),
        **{k: _clean(v) for k, v in report.items()},
    }


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def describe(result: Result) -> dict[str, Any]:
    """The JSON of a fit: parameters, log-likelihoods, settings and the summary."""
    return {
        "as_of": result.as_of.isoformat(),
        "time_unit": "week",
        "bgnbd": _clean(result.bg.as_dict()),
        "gamma_gamma": _clean(result.gg.as_dict()),
        "settings": result.settings.as_dict(),
        "summary": result.summary(),
    }


def member_rows(result: Result) -> list[dict[str, Any]]:
    """One row per scored member (the CSV and the trait values)."""
    out = []
    for i, member_id in enumerate(result.rfm.ids):
        p = float(result.p_alive[i])
        out.append({
            "member_id": str(member_id),
            "repeat_purchases": int(result.rfm.x[i]),
            "recency_weeks": round(float(result.rfm.t_x[i]), 4),
            "age_weeks": round(float(result.rfm.T[i]), 4),
            "p_alive": round(p, 6),
            "churn_risk": band(p),
            "expected_purchases": round(float(result.expected_purchases[i]), 6),
            "expected_spend": str(_money(float(result.expected_spend[i]))),
            "clv": str(_money(float(result.value[i]))),
        })  # fmt: skip
    return out


def refresh(
    session: Session, *, programme: Programme, now: datetime, settings: Settings | None = None
) -> ClvFit:
    """Fit as of today (UTC), store the fit and write the traits of every purchaser."""
    as_of = now.astimezone(UTC).date() + timedelta(days=1)  # today's purchases included
    result = fit(session, programme=programme, as_of=as_of, settings=settings)
    stmt = (
        update(MemberTraits)
        .where(MemberTraits.member_id == bindparam("mid"))
        .values(p_alive=bindparam("p"), clv=bindparam("v"), churn_risk=bindparam("band"))
    )
    params = [
        {"mid": m, "p": round(float(result.p_alive[i]), 6),
         "v": _money(float(result.value[i])), "band": band(float(result.p_alive[i]))}
        for i, m in enumerate(result.rfm.ids)
    ]  # fmt: skip
    session.connection().execute(stmt, params)
    described = describe(result)
    row = ClvFit(
        programme_id=programme.id,
        fitted_at=now,
        as_of=_start_of(as_of),
        customers=len(result.rfm),
        repeat_customers=int((result.rfm.x > 0).sum()),
        bgnbd=described["bgnbd"],
        gamma_gamma=described["gamma_gamma"],
        settings=described["settings"],
        summary=described["summary"],
    )
    session.add(row)
    session.flush()
    return row


def latest(session: Session, *, programme_id: uuid.UUID) -> ClvFit | None:
    return session.scalar(
        select(ClvFit)
        .where(ClvFit.programme_id == programme_id)
        .order_by(ClvFit.fitted_at.desc())
        .limit(1)
    )


def schedule(
    session: Session, *, programme: Programme, after: datetime, settings: Settings | None = None
) -> Job:
    """Enqueue the programme's CLV refresh at the next UTC 01:00 after ``after`` (once)."""
    day = after.astimezone(UTC).date() + timedelta(days=1)
    return jobs.enqueue(
        session,
        kind=REFRESH_JOB,
        payload={
            "programme_id": str(programme.id),
            "settings": (settings or Settings()).as_dict(),
        },
        due_at=datetime.combine(day, time(1), tzinfo=UTC),
        idempotency_key=f"clv-refresh:{programme.id}:{day.isoformat()}",
        programme_id=programme.id,
    )


@jobs.handler(REFRESH_JOB)
def run_refresh(session: Session, job: Job) -> None:
    """Refit and rescore, then schedule the next day's run. A programme whose history is still
    too thin is skipped (and retried the next day), not failed."""
    programme = session.get(Programme, uuid.UUID(job.payload["programme_id"]))
    if programme is None:
        return
    at = max(job.due_at, utcnow())
    settings = Settings(**job.payload.get("settings", {}))
    try:
        with session.begin_nested():
            refresh(session, programme=programme, now=at, settings=settings)
    except ValidationFailed:
        pass
    schedule(session, programme=programme, after=at, settings=settings)
