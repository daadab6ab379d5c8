"""CLV and churn: the BG/NBD purchase model and the Gamma-Gamma spend model (issue 15).

- BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way: An Alternative to
  the Pareto/NBD Model", Marketing Science 24(2)): while alive a customer buys at Poisson rate
  lambda ~ Gamma(r, alpha); after each purchase they drop out with probability p ~ Beta(a, b).
- Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV: Using Iso-Value Curves for Customer
  Base Analysis", JMR 42(4); Fader & Hardie's note "The Gamma-Gamma Model of Monetary Value",
  2013): a customer's transaction values are Gamma(p, nu) around their mean, nu ~ Gamma(q, gamma).

Inputs per customer, in one time unit (weeks for CDNOW, days or weeks for a programme):
``x`` repeat purchases (distinct purchase days after the first), ``t_x`` the time of the last
purchase since the first, ``T`` the time from the first purchase to the end of calibration, and
for Gamma-Gamma ``m`` the mean value of the repeat purchases (customers with ``x > 0`` only).

Both fits maximise the vectorised log-likelihood with L-BFGS-B on the log of the parameters
(so they stay positive). Everything here is pure numpy/scipy; :mod:`fidelia.analytics.clv_jobs`
reads a programme's figures in SQL and stores the per-member results.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, hyp2f1
from threadpoolctl import threadpool_limits

from fidelia.errors import ValidationFailed

Array = NDArray[np.float64]

#: fewest customers and repeat buyers a fit accepts (below that the estimates are noise)
MIN_CUSTOMERS = 30
MIN_REPEAT_CUSTOMERS = 10


@dataclass(frozen=True, slots=True)
class RFM:
    """Per-customer summaries (arrays of one length). ``monetary`` is the mean value of the
    repeat purchases (0 for customers with none)."""

    x: Array
    t_x: Array
    T: Array
    monetary: Array
    ids: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.x)


def rfm_from_transactions(
    rows: Iterable[tuple[Any, date, float]], calibration_end: date, *, unit_days: float = 7.0
) -> tuple[RFM, dict[Any, int]]:
    """Calibration summaries and holdout repeat-purchase counts from ``(customer, day, value)``.

    Purchases on one day are one purchase (their values add up). ``calibration_end`` is the
    calibration period's last day (CDNOW: 1997-09-30, so that T of a customer who first bought
    on 1997-01-01 is 272 / 7 = 38.86 weeks, as in the papers' data); purchases after it count
    in the holdout. Customers whose first purchase falls in the holdout are left out.
    """
    days: dict[Any, dict[date, float]] = {}
    for customer, day, value in rows:
        per = days.setdefault(customer, {})
        per[day] = per.get(day, 0.0) + float(value)
    ids: list[Any] = []
    x, t_x, big_t, mon = [], [], [], []
    holdout: dict[Any, int] = {}
    for customer, per in days.items():
        cal = sorted(d for d in per if d <= calibration_end)
        if not cal:
            continue
        first = cal[0]
        ids.append(customer)
        x.append(len(cal) - 1)
        t_x.append((cal[-1] - first).days / unit_days)
        big_t.append((calibration_end - first).days / unit_days)
        repeat = [per[d] for d in cal[1:]]
        mon.append(sum(repeat) / len(repeat) if repeat else 0.0)
        holdout[customer] = sum(1 for d in per if d > calibration_end)
    f = np.asarray
    return RFM(f(x, float), f(t_x, float), f(big_t, float), f(mon, float), ids), holdout


def check_enough(rfm: RFM) -> None:
    """422 naming what is missing when there are too few customers or repeat buyers."""
    n = len(rfm)
    if n < MIN_CUSTOMERS:
        raise ValidationFailed.on(
            "customers", f"the model needs at least {MIN_CUSTOMERS} customers with a purchase, "
            f"got {n}",
        )  # fmt: skip
    repeaters = int((rfm.x > 0).sum())
    if repeaters < MIN_REPEAT_CUSTOMERS:
        raise ValidationFailed.on(
            "repeat_customers",
            f"the model needs at least {MIN_REPEAT_CUSTOMERS} customers with a repeat purchase, "
            f"got {repeaters}",
        )
    if float(rfm.T.max()) <= 0:
        raise ValidationFailed.on("history", "all purchases fall on the calibration's last day")


# --------------------------------------------------------------------------------- BG/NBD


@dataclass(frozen=True, slots=True)
class BgNbd:
    """Fitted BG/NBD parameters (per time unit of the data) and the fit's log-likelihood."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    converged: bool

    def p_alive(self, x: Array, t_x: Array, T: Array) -> Array:
        """P(alive at T | x, t_x, T) (eq. 11 of the paper); 1 for customers with no repeat."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
            odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-300) * np.exp(log_ratio), 0.0)
        out: Array = 1.0 / (1.0 + odds)
        return out

    def expected_purchases(self, t: float, x: Array, t_x: Array, T: Array) -> Array:
        """E[purchases in (T, T + t] | x, t_x, T] (eq. 10 of the paper)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + T + t)
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
        base = 1.0 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * hyp
        head = (a + b + x - 1) / (a - 1)
        out: Array = head * base * self.p_alive(x, t_x, T)
        return out

    def expected_unconditional(self, t: Array) -> Array:
        """E[X(t)]: purchases a new customer makes in their first ``t`` (eq. 9)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + t)
        out: Array = (
            (a + b - 1) / (a - 1) * (1.0 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))
        )
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b,
            "log_likelihood": self.log_likelihood, "customers": self.customers,
            "converged": self.converged,
        }  # fmt: skip


def bgnbd_log_likelihood(
    params: Array, x: Array, t_x: Array, T: Array, weights: Array | None = None
) -> float:
    """Sum of the customers' log-likelihoods (eq. 6 of the paper) at ``(r, alpha, a, b)``."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * math.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            math.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    ll = a1 + a2 + np.logaddexp(a3, a4)
    return float(ll.sum() if weights is None else (ll * weights).sum())


def _compress(*cols: Array) -> tuple[list[Array], Array]:
    """Identical customers share one likelihood term: (unique rows, counts)."""
    stacked = np.column_stack(cols)
    uniq, counts = np.unique(stacked, axis=0, return_counts=True)
    return [uniq[:, i] for i in range(uniq.shape[1])], counts.astype(float)


def _bgnbd_value_and_gradient(
    params: Array, x: Array, t_x: Array, T: Array, w: Array
) -> tuple[float, Array]:
    """Minus the log-likelihood and its gradient in the log-parameters (weights ``w``)."""
    r, alpha, a, b = (float(v) for v in params)
    repeat = x > 0
    log_at, log_atx = np.log(alpha + T), np.log(alpha + t_x)
    a3 = -(r + x) * log_at
    with np.errstate(divide="ignore", invalid="ignore"):
        bx1 = np.where(repeat, b + x - 1, 1.0)
        a4 = np.where(repeat, math.log(a) - np.log(bx1) - (r + x) * log_atx, -np.inf)
    mix = np.logaddexp(a3, a4)
    w3, w4 = np.exp(a3 - mix), np.exp(a4 - mix)
    ll = (
        gammaln(r + x) - gammaln(r) + r * math.log(alpha)
        + gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x) + mix
    )  # fmt: skip
    value = -float((ll * w).sum())
    if not math.isfinite(value):
        return 1e300, np.zeros(4)
    d_r = digamma(r + x) - digamma(r) + math.log(alpha) - w3 * log_at - w4 * log_atx
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    d_ab = digamma(a + b) - digamma(a + b + x)
    d_a = d_ab + w4 / a
    d_b = d_ab + digamma(b + x) - digamma(b) - w4 / bx1
    grad = np.array([(w * g).sum() for g in (d_r, d_alpha, d_a, d_b)]) * np.array([r, alpha, a, b])
    return value, -grad


def fit_bgnbd(rfm: RFM, *, initial: tuple[float, float, float, float] | None = None) -> BgNbd:
    """Maximum-likelihood BG/NBD on the calibration summaries."""
    check_enough(rfm)
    (x, t_x, T), w = _compress(rfm.x, rfm.t_x, rfm.T)
    scale = float(np.mean(T)) / 10.0 or 1.0  # alpha lives on the time unit's scale

    def neg(logp: Array) -> tuple[float, Array]:
        return _bgnbd_value_and_gradient(np.exp(logp), x, t_x, T, w)

    start = np.log(np.array(initial or (1.0, scale, 1.0, 1.0)))
    with threadpool_limits(1, "blas"):  # a BLAS thread pool only spins on these tiny products
        res = minimize(neg, start, jac=True, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * 4,
                           options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-8})  # fmt: skip
    r, alpha, a, b = (float(v) for v in np.exp(res.x))
    return BgNbd(r, alpha, a, b, -float(res.fun), len(rfm), bool(res.success))


# ---------------------------------------------------------------------------- Gamma-Gamma


@dataclass(frozen=True, slots=True)
class GammaGamma:
    """Fitted Gamma-Gamma parameters on the repeat buyers' mean transaction values."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    customers: int
    converged: bool

    def expected_spend(self, x: Array, monetary: Array) -> Array:
        """E[mean transaction value | x, m] (eq. 5 of the 2013 note); the population mean
        p gamma / (q - 1) for customers with no repeat purchase."""
        p, q, g = self.p, self.q, self.gamma
        population = p * g / (q - 1) if q > 1 else float(np.mean(monetary[x > 0]))
        with np.errstate(divide="ignore", invalid="ignore"):
            cond = p * (g + x * monetary) / (p * x + q - 1)
        out: Array = np.where(x > 0, cond, population)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "p": self.p, "q": self.q, "gamma": self.gamma,
            "log_likelihood": self.log_likelihood, "customers": self.customers,
            "converged": self.converged,
        }  # fmt: skip


def gamma_gamma_log_likelihood(params: Array, x: Array, m: Array, w: Array | None = None) -> float:
    """Sum over repeat buyers of log f(m | p, q, gamma, x) (mean of ``x`` transaction values)."""
    p, q, g = params
    px = p * x
    ll = (
        gammaln(px + q) - gammaln(px) - gammaln(q) + q * math.log(g)
        + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(g + x * m)
    )  # fmt: skip
    return float(ll.sum() if w is None else (ll * w).sum())


def fit_gamma_gamma(rfm: RFM) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma on customers with repeat purchases of positive value."""
    check_enough(rfm)
    keep = (rfm.x > 0) & (rfm.monetary > 0)
    if int(keep.sum()) < MIN_REPEAT_CUSTOMERS:
        raise ValidationFailed.on(
            "monetary", f"the spend model needs at least {MIN_REPEAT_CUSTOMERS} repeat buyers "
            f"with a positive spend, got {int(keep.sum())}",
        )  # fmt: skip
    (x, m), w = _compress(rfm.x[keep], rfm.monetary[keep])

    log_m, log_x = np.log(m), np.log(x)

    def neg(logp: Array) -> tuple[float, Array]:
        # value and analytic gradient in the log-parameters
        p, q, g = np.exp(logp)
        px = p * x
        log_gxm = np.log(g + x * m)
        value = -gamma_gamma_log_likelihood(np.array([p, q, g]), x, m, w)
        if not math.isfinite(value):
            return 1e300, np.zeros(3)
        d_pq = digamma(px + q)
        dp = (w * x * (d_pq - digamma(px) + log_m + log_x - log_gxm)).sum()
        dq = (w * (d_pq - digamma(q) + math.log(g) - log_gxm)).sum()
        dg = (w * (q / g - (px + q) / (g + x * m))).sum()
        return value, -np.array([p * dp, q * dq, g * dg])

    start = np.log(np.array([1.0, 1.0, max(float(np.mean(m)), 1e-3)]))
    with threadpool_limits(1, "blas"):
        res = minimize(neg, start, jac=True, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * 3,
                           options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-8})  # fmt: skip
    p, q, g = (float(v) for v in np.exp(res.x))
    return GammaGamma(p, q, g, -float(res.fun), int(keep.sum()), bool(res.success))


# ------------------------------------------------------------------------------------ CLV


def clv(
    bg: BgNbd,
    gg: GammaGamma,
    rfm: RFM,
    *,
    horizon: float,
    step: float,
    discount_rate: float,
    margin: float = 1.0,
) -> Array:
    """Customer value over ``horizon`` (data time units), discounted per ``step``.

    Sums, over steps k = 1..horizon/step, the expected purchases in step k times the expected
    spend times ``margin``, divided by (1 + discount_rate)^k (``discount_rate`` per step:
    e.g. a monthly rate with steps of 30 days or 4.345 weeks).
    """
    if horizon <= 0 or step <= 0 or step > horizon:
        raise ValidationFailed.on("horizon", "must be positive and at least one step long")
    if not 0 <= discount_rate < 1:
        raise ValidationFailed.on("discount_rate", f"must be in [0, 1), got {discount_rate}")
    spend = gg.expected_spend(rfm.x, rfm.monetary) * margin
    total = np.zeros(len(rfm))
    previous = np.zeros(len(rfm))
    steps = max(1, round(horizon / step))
    for k in range(1, steps + 1):
        cumulative = bg.expected_purchases(k * step, rfm.x, rfm.t_x, rfm.T)
        total += (cumulative - previous) * spend / (1 + discount_rate) ** k
        previous = cumulative
    out: Array = np.nan_to_num(total, nan=0.0, posinf=0.0, neginf=0.0)
    return out


# ---------------------------------------------------------------------------- holdout


@dataclass(frozen=True, slots=True)
class HoldoutReport:
    """Predicted vs actual repeat purchases in the holdout period."""

    customers: int
    holdout_length: float
    predicted_total: float
    actual_total: int
    per_customer_mae: float
    per_customer_rmse: float
    correlation: float | None
    by_calibration_frequency: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "customers": self.customers, "holdout_length": self.holdout_length,
            "predicted_total": self.predicted_total, "actual_total": self.actual_total,
            "aggregate_error": (self.predicted_total - self.actual_total)
            / max(self.actual_total, 1),
            "per_customer_mae": self.per_customer_mae,
            "per_customer_rmse": self.per_customer_rmse, "correlation": self.correlation,
            "by_calibration_frequency": self.by_calibration_frequency,
        }  # fmt: skip


def holdout_report(bg: BgNbd, rfm: RFM, actual: Array, holdout_length: float) -> HoldoutReport:
    """Conditional expectations over the holdout against what the customers did (the paper's
    Figure 4: mean holdout purchases by calibration frequency, 7+ pooled)."""
    predicted = bg.expected_purchases(holdout_length, rfm.x, rfm.t_x, rfm.T)
    err = predicted - actual
    groups: list[dict[str, Any]] = []
    capped = np.minimum(rfm.x, 7)
    for k in range(8):
        sel = capped == k
        if sel.any():
            groups.append({
                "calibration_repeats": f"{k}+" if k == 7 else str(k),
                "customers": int(sel.sum()),
                "actual_mean": float(actual[sel].mean()),
                "predicted_mean": float(predicted[sel].mean()),
            })  # fmt: skip
    corr = float(np.corrcoef(predicted, actual)[0, 1]) if np.std(actual) > 0 else None
    return HoldoutReport(
        customers=len(rfm), holdout_length=holdout_length,
        predicted_total=float(predicted.sum()), actual_total=int(actual.sum()),
        per_customer_mae=float(np.abs(err).mean()),
        per_customer_rmse=float(np.sqrt((err**2).mean())),
        correlation=corr if corr is not None and math.isfinite(corr) else None,
        by_calibration_frequency=groups,
    )  # fmt: skip
