"""The lift module against an independent computation (statsmodels) on the Hillstrom e-mail
experiment (../shared/data/hillstrom.csv.gz): visit, conversion and spend lift of each e-mail
version against the "No E-Mail" control."""

from __future__ import annotations

import csv
import gzip
import math
from pathlib import Path

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from fidelia.analytics import lift
from fidelia.errors import ValidationFailed

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "hillstrom.csv.gz"


@pytest.fixture(scope="module")
def hillstrom() -> dict[str, dict[str, np.ndarray]]:
    if not DATA.exists():
        pytest.skip(f"{DATA} not present")
    arms: dict[str, dict[str, list[float]]] = {}
    with gzip.open(DATA, "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            arm = arms.setdefault(row["segment"], {"visit": [], "conversion": [], "spend": []})
            for key in ("visit", "conversion", "spend"):
                arm[key].append(float(row[key]))
    return {a: {k: np.array(v) for k, v in cols.items()} for a, cols in arms.items()}


def test_hillstrom_has_three_arms(hillstrom: dict[str, dict[str, np.ndarray]]) -> None:
    assert sorted(hillstrom) == ["Mens E-Mail", "No E-Mail", "Womens E-Mail"]
    assert sum(len(a["visit"]) for a in hillstrom.values()) == 64000


@pytest.mark.parametrize("arm", ["Mens E-Mail", "Womens E-Mail"])
@pytest.mark.parametrize("outcome", ["visit", "conversion"])
def test_rate_lift_matches_statsmodels(
    hillstrom: dict[str, dict[str, np.ndarray]], arm: str, outcome: str
) -> None:
    t, c = hillstrom[arm][outcome], hillstrom["No E-Mail"][outcome]
    ts, tn, cs, cn = int(t.sum()), len(t), int(c.sum()), len(c)
    ours = lift.compare_rates(ts, tn, cs, cn)
    low, high = confint_proportions_2indep(ts, tn, cs, cn, method="wald", compare="diff")
    z, p = proportions_ztest([ts, cs], [tn, cn])
    assert ours.difference == pytest.approx(ts / tn - cs / cn, abs=1e-12)
    assert ours.ci_low == pytest.approx(low, abs=1e-9)
    assert ours.ci_high == pytest.approx(high, abs=1e-9)
    assert ours.z == pytest.approx(z, rel=1e-9)
    assert ours.p_value == pytest.approx(p, rel=1e-6, abs=1e-300)
    # Both e-mails raised visits and conversions: the published finding of the experiment.
    assert ours.ci_low > 0
    assert ours.significant


@pytest.mark.parametrize("arm", ["Mens E-Mail", "Womens E-Mail"])
def test_spend_lift_matches_statsmodels(
    hillstrom: dict[str, dict[str, np.ndarray]], arm: str
) -> None:
    t, c = hillstrom[arm]["spend"], hillstrom["No E-Mail"]["spend"]
    ours = lift.compare_means(lift.summarise(t.tolist()), lift.summarise(c.tolist()))
    cm = CompareMeans(DescrStatsW(t), DescrStatsW(c))
    low, high = cm.tconfint_diff(alpha=0.05, usevar="unequal")
    tstat, p, df = cm.ttest_ind(usevar="unequal")
    assert ours.difference == pytest.approx(t.mean() - c.mean(), rel=1e-12)
    assert ours.ci_low == pytest.approx(low, rel=1e-9)
    assert ours.ci_high == pytest.approx(high, rel=1e-9)
    assert ours.t == pytest.approx(tstat, rel=1e-9)
    assert ours.df == pytest.approx(df, rel=1e-9)
    assert ours.p_value == pytest.approx(p, rel=1e-6)


def test_mens_email_spend_lift_is_significant(
    hillstrom: dict[str, dict[str, np.ndarray]],
) -> None:
    t, c = hillstrom["Mens E-Mail"]["spend"], hillstrom["No E-Mail"]["spend"]
    ours = lift.compare_means(lift.summarise(t.tolist()), lift.summarise(c.tolist()))
    # About $0.77 more per customer over two weeks (Hillstrom's own summary).
    assert 0.6 < ours.difference < 0.9
    assert ours.significant


def test_sample_sizes_match_statsmodels() -> None:
    # Means: Cohen's d = effect / sd; statsmodels solves the t-test power, we use the normal
    # approximation: ours is within 1-2 members of it.
    n = lift.sample_size_means(sd=15.0, effect=1.0)
    ref = TTestIndPower().solve_power(effect_size=1.0 / 15.0, alpha=0.05, power=0.8)
    assert abs(n - ref) < 2
    ref_z = NormalIndPower().solve_power(effect_size=1.0 / 15.0, alpha=0.05, power=0.8)
    assert n == math.ceil(ref_z)
    # Rates: Fleiss' formula by hand, independent of the module.
    p0, p1 = 0.01, 0.012
    za, zb = 1.959963984540054, 0.8416212335729143
    pbar = (p0 + p1) / 2
    hand = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p0 * (1 - p0) + p1 * (1 - p1))
    assert lift.sample_size_rates(0.01, 0.002) == math.ceil(hand**2 / 0.002**2)
    # A smaller effect needs more members.
    assert lift.sample_size_rates(0.01, 0.001) > lift.sample_size_rates(0.01, 0.002)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: lift.compare_rates(5, 0, 1, 10), "treatment_total"),
        (lambda: lift.compare_rates(11, 10, 1, 10), "treatment_successes"),
        (lambda: lift.compare_rates(1, 10, -1, 10), "control_successes"),
        (lambda: lift.compare_rates(1, 10, 1, 10, confidence=1.5), "confidence"),
        (
            lambda: lift.compare_means(lift.Summary(1, 1.0, 0.0), lift.Summary(5, 1, 1)),
            "treatment.n",
        ),
        (lambda: lift.sample_size_rates(0.0, 0.1), "baseline_rate"),
        (lambda: lift.sample_size_rates(0.5, 0.0), "effect"),
        (lambda: lift.sample_size_means(0.0, 1.0), "sd"),
        (lambda: lift.sample_size_means(1.0, 1.0, power=1.0), "power"),
        (lambda: lift.summarise([1.0, float("nan")]), "values"),
    ],
)
def test_bad_input_names_the_argument(call: object, field: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        call()  # type: ignore[operator]
    assert err.value.fields[0].loc == (field,)


def test_degenerate_groups_give_no_nan() -> None:
    same = lift.compare_rates(0, 10, 0, 10)
    assert same.difference == 0
    assert same.z is None
    assert same.p_value is None
    assert same.relative_lift is None
    assert not same.significant
    flat = lift.compare_means(lift.Summary(3, 2.0, 0.0), lift.Summary(3, 1.0, 0.0))
    assert flat.difference == 1.0
    assert flat.ci_low == flat.ci_high == 1.0
    assert flat.p_value is None
