"""Experiment lift: is a treated group's outcome different from its control's? (issue 15)

Pure functions on counts and summary statistics, used by scenario holdouts and any A/B
comparison. All intervals are two-sided at ``confidence`` (default 95 %).

- :func:`compare_rates`: difference of two proportions (conversions / members), Wald interval
  on the unpooled standard error, two-sided z-test on the pooled one (the textbook
  two-proportion test), relative lift.
- :func:`compare_means`: difference of two means (spend per member) from each group's count,
  mean and sample standard deviation, Welch's t interval and test (unequal variances).
  :func:`summarise` turns raw values into those statistics.
- :func:`sample_size_rates` / :func:`sample_size_means`: members needed per group to detect a
  given absolute effect with a given power (normal approximation, equal groups).

Bad input raises :class:`fidelia.errors.ValidationFailed` naming the argument; results never
hold NaN (an undefined figure is ``None``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from scipy import stats

from fidelia.errors import ValidationFailed

__all__ = [
    "MeanComparison",
    "RateComparison",
    "Summary",
    "compare_means",
    "compare_rates",
    "sample_size_means",
    "sample_size_rates",
    "summarise",
]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _check_confidence(confidence: float, name: str = "confidence") -> float:
    if not 0.0 < confidence < 1.0:
        raise ValidationFailed.on(name, f"must be strictly between 0 and 1, got {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2.0))


@dataclass(frozen=True, slots=True)
class RateComparison:
    """Treatment vs control rates. ``difference`` = treatment - control (absolute)."""

    treatment_rate: float
    control_rate: float
    difference: float
    ci_low: float
    ci_high: float
    relative_lift: float | None  # difference / control_rate; None when the control rate is 0
    z: float | None
    p_value: float | None
    confidence: float
    significant: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_rates(
    treatment_successes: int,
    treatment_total: int,
    control_successes: int,
    control_total: int,
    *,
    confidence: float = 0.95,
) -> RateComparison:
    """Difference of conversion rates with its confidence interval and a two-sided z-test.

    >>> r = compare_rates(120, 1000, 100, 1000)
    >>> round(r.difference, 3), round(r.ci_low, 4), round(r.ci_high, 4)
    (0.02, -0.0074, 0.0474)
    """
    for name, successes, total in (
        ("treatment", treatment_successes, treatment_total),
        ("control", control_successes, control_total),
    ):
        if total <= 0:
            raise ValidationFailed.on(f"{name}_total", f"must be a positive count, got {total}")
        if not 0 <= successes <= total:
            raise ValidationFailed.on(
                f"{name}_successes",
                f"must be between 0 and {name}_total ({total}), got {successes}",
            )
    z_crit = _check_confidence(confidence)
    p1 = treatment_successes / treatment_total
    p0 = control_successes / control_total
    diff = p1 - p0
    se = math.sqrt(p1 * (1 - p1) / treatment_total + p0 * (1 - p0) / control_total)
    pooled = (treatment_successes + control_successes) / (treatment_total + control_total)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / treatment_total + 1 / control_total))
    z = diff / se_pooled if se_pooled > 0 else None
    p_value = float(2 * stats.norm.sf(abs(z))) if z is not None else None
    low, high = diff - z_crit * se, diff + z_crit * se
    return RateComparison(
        treatment_rate=p1,
        control_rate=p0,
        difference=diff,
        ci_low=low,
        ci_high=high,
        relative_lift=diff / p0 if p0 > 0 else None,
        z=z,
        p_value=p_value,
        confidence=confidence,
        significant=p_value is not None and p_value < 1 - confidence,
    )


@dataclass(frozen=True, slots=True)
class Summary:
    """Count, mean and sample standard deviation (ddof=1) of one group's values."""

    n: int
    mean: float
    sd: float


def summarise(values: Iterable[float]) -> Summary:
    """One pass (Welford) over raw values: the statistics :func:`compare_means` takes."""
    n, mean, m2 = 0, 0.0, 0.0
    for raw in values:
        x = float(raw)
        if not math.isfinite(x):
            raise ValidationFailed.on("values", f"must be finite numbers, got {raw!r}")
        n += 1
        delta = x - mean
        mean += delta / n
        m2 += delta * (x - mean)
    sd = math.sqrt(m2 / (n - 1)) if n > 1 else 0.0
    return Summary(n, mean, sd)


@dataclass(frozen=True, slots=True)
class MeanComparison:
    """Treatment vs control means (Welch). ``difference`` = treatment - control."""

    treatment_mean: float
    control_mean: float
    difference: float
    ci_low: float
    ci_high: float
    relative_lift: float | None
    t: float | None
    df: float | None
    p_value: float | None
    confidence: float
    significant: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_means(
    treatment: Summary, control: Summary, *, confidence: float = 0.95
) -> MeanComparison:
    """Difference of means (e.g. spend per member) with Welch's t interval and test.

    Pass :class:`Summary` values (``summarise(values)`` or ``Summary(n, mean, sd)`` from SQL
    aggregates: ``count``, ``avg`` and ``stddev_samp``).
    """
    for name, group in (("treatment", treatment), ("control", control)):
        if group.n < 2:
            raise ValidationFailed.on(f"{name}.n", f"needs at least 2 values, got {group.n}")
        if not (math.isfinite(group.mean) and math.isfinite(group.sd)) or group.sd < 0:
            raise ValidationFailed.on(f"{name}.sd", "mean and sd must be finite, sd >= 0")
    _check_confidence(confidence)
    diff = treatment.mean - control.mean
    v1 = treatment.sd**2 / treatment.n
    v0 = control.sd**2 / control.n
    se = math.sqrt(v1 + v0)
    if se > 0:
        df = (v1 + v0) ** 2 / (v1**2 / (treatment.n - 1) + v0**2 / (control.n - 1))
        t_crit = float(stats.t.ppf(0.5 + confidence / 2.0, df))
        t: float | None = diff / se
        p_value: float | None = float(2 * stats.t.sf(abs(diff / se), df))
        low, high = diff - t_crit * se, diff + t_crit * se
        df_out: float | None = df
    else:  # both groups constant: the difference is exact
        t, p_value, df_out, low, high = None, None, None, diff, diff
    return MeanComparison(
        treatment_mean=treatment.mean,
        control_mean=control.mean,
        difference=diff,
        ci_low=low,
        ci_high=high,
        relative_lift=_finite(diff / control.mean) if control.mean != 0 else None,
        t=t,
        df=df_out,
        p_value=p_value,
        confidence=confidence,
        significant=p_value is not None and p_value < 1 - confidence,
    )


def _power_z(alpha: float, power: float) -> tuple[float, float]:
    if not 0.0 < alpha < 1.0:
        raise ValidationFailed.on("alpha", f"must be strictly between 0 and 1, got {alpha}")
    if not 0.0 < power < 1.0:
        raise ValidationFailed.on("power", f"must be strictly between 0 and 1, got {power}")
    return float(stats.norm.ppf(1 - alpha / 2)), float(stats.norm.ppf(power))


def sample_size_rates(
    baseline_rate: float, effect: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Members per group to detect ``baseline_rate`` -> ``baseline_rate + effect`` (two-sided).

    n = (z_a/2 * sqrt(2 p̄ q̄) + z_b * sqrt(p0 q0 + p1 q1))² / effect² (Fleiss, no continuity
    correction).
    """
    if not 0.0 < baseline_rate < 1.0:
        raise ValidationFailed.on("baseline_rate", f"must be in (0, 1), got {baseline_rate}")
    p1 = baseline_rate + effect
    if effect == 0 or not 0.0 < p1 < 1.0:
        raise ValidationFailed.on(
            "effect", f"must be non-zero with baseline_rate + effect in (0, 1), got {effect}"
        )
    za, zb = _power_z(alpha, power)
    p0 = baseline_rate
    pbar = (p0 + p1) / 2
    num = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p0 * (1 - p0) + p1 * (1 - p1))
    return math.ceil(num**2 / effect**2)


def sample_size_means(sd: float, effect: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Members per group to detect a difference of means ``effect`` given the outcome's ``sd``:
    n = 2 (z_a/2 + z_b)² sd² / effect²."""
    if not (math.isfinite(sd) and sd > 0):
        raise ValidationFailed.on("sd", f"must be a positive number, got {sd}")
    if not math.isfinite(effect) or effect == 0:
        raise ValidationFailed.on("effect", f"must be a non-zero number, got {effect}")
    za, zb = _power_z(alpha, power)
    return math.ceil(2 * (za + zb) ** 2 * sd**2 / effect**2)
