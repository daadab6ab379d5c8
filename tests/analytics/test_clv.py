"""BG/NBD and Gamma-Gamma against the published CDNOW estimates (../shared/data).

References (docs/analytics-models.md): Fader, Hardie & Lee (2005) "Counting Your Customers the
Easy Way", Marketing Science 24(2), Table/Figure on the 2,357-customer sample, 39-week
calibration: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4. Fader & Hardie
(2013) "The Gamma-Gamma Model of Monetary Value" (the 946 customers with a repeat purchase in
the calibration period): p = 6.25, q = 3.74, gamma = 15.44, LL = -4055.9.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from fidelia.analytics import clv
from fidelia.errors import ValidationFailed

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
CALIBRATION_END = date(1997, 9, 30)


def load_cdnow(name: str) -> list[tuple[str, date, float]]:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    sample = name == "cdnow_sample.txt"
    rows = []
    with path.open() as fh:
        for line in fh:
            p = line.split()
            if not p or not p[0].isdigit():
                continue
            cid, day, value = (p[0], p[2], p[4]) if sample else (p[0], p[1], p[3])
            rows.append((cid, datetime.strptime(day, "%Y%m%d").date(), float(value)))  # noqa: DTZ007
    return rows


@pytest.fixture(scope="module")
def sample() -> tuple[clv.RFM, np.ndarray]:
    rfm, holdout = clv.rfm_from_transactions(load_cdnow("cdnow_sample.txt"), CALIBRATION_END)
    return rfm, np.array([holdout[c] for c in rfm.ids], dtype=float)


def test_sample_summaries_match_the_papers_data(sample: tuple[clv.RFM, np.ndarray]) -> None:
    rfm, _ = sample
    assert len(rfm) == 2357
    assert int((rfm.x > 0).sum()) == 946
    # Customer 0001 of the sample (master id 00004): x = 2, t_x = 30.43, T = 38.86 weeks.
    i = rfm.ids.index("00004")
    assert rfm.x[i] == 2
    assert rfm.t_x[i] == pytest.approx(30.43, abs=0.005)
    assert rfm.T[i] == pytest.approx(38.86, abs=0.005)


def test_bgnbd_reproduces_published_estimates(sample: tuple[clv.RFM, np.ndarray]) -> None:
    bg = clv.fit_bgnbd(sample[0])
    assert bg.converged
    assert round(bg.r, 3) == 0.243
    assert round(bg.alpha, 3) == 4.414
    assert round(bg.a, 3) == 0.793
    assert round(bg.b, 3) == 2.426
    assert round(bg.log_likelihood, 1) == -9582.4


def test_gamma_gamma_reproduces_published_estimates(sample: tuple[clv.RFM, np.ndarray]) -> None:
    gg = clv.fit_gamma_gamma(sample[0])
    assert gg.customers == 946
    assert round(gg.p, 2) == 6.25
    assert round(gg.q, 2) == 3.74
    assert round(gg.gamma, 2) == 15.44
    assert round(gg.log_likelihood, 1) == -4055.9


def test_predictions_and_holdout(sample: tuple[clv.RFM, np.ndarray]) -> None:
    rfm, actual = sample
    bg = clv.fit_bgnbd(rfm)
    gg = clv.fit_gamma_gamma(rfm)
    alive = bg.p_alive(rfm.x, rfm.t_x, rfm.T)
    assert np.all((alive > 0) & (alive <= 1))
    assert np.all(alive[rfm.x == 0] == 1.0)
    # The paper's example (section 5): x = 2, t_x = 30.43, T = 38.86 expects 1.225 purchases in
    # the next 39 weeks at the published parameters.
    published = clv.BgNbd(0.243, 4.414, 0.793, 2.426, -9582.4, 2357, True)
    one = published.expected_purchases(39.0, np.array([2.0]), np.array([30.43]), np.array([38.86]))
    assert one[0] == pytest.approx(1.226, abs=0.002)
    # Unconditional cumulative repeat purchases over 78 weeks: aggregate against the data.
    report = clv.holdout_report(bg, rfm, actual, 39.0)
    assert report.actual_total == int(actual.sum())
    assert abs(report.predicted_total - report.actual_total) / report.actual_total < 0.2
    means = [g["predicted_mean"] for g in report.by_calibration_frequency]
    assert means == sorted(means)  # more calibration purchases, more expected later
    value = clv.clv(bg, gg, rfm, horizon=52.0, step=52.0 / 12, discount_rate=0.01)
    assert np.all(np.isfinite(value))
    assert np.all(value >= 0)
    # A frequent recent buyer is worth more than a one-off buyer.
    assert value[np.argmax(rfm.x)] > value[np.argmin(rfm.x)]
    spend = gg.expected_spend(rfm.x, rfm.monetary)
    assert spend[rfm.x == 0][0] == pytest.approx(gg.p * gg.gamma / (gg.q - 1))


def test_whole_cohort_fit() -> None:
    rfm, holdout = clv.rfm_from_transactions(load_cdnow("cdnow_master.txt"), CALIBRATION_END)
    assert len(rfm) == 23570
    bg = clv.fit_bgnbd(rfm)
    assert bg.converged
    # The whole cohort is ten samples like the published one: estimates of the same size.
    assert bg.r == pytest.approx(0.243, rel=0.1)
    assert bg.a == pytest.approx(0.793, rel=0.15)
    actual = np.array([holdout[c] for c in rfm.ids], dtype=float)
    report = clv.holdout_report(bg, rfm, actual, 39.0)
    assert report.correlation is not None
    assert report.correlation > 0.5


def test_too_little_history_is_refused() -> None:
    rows = [("a", date(2026, 1, 1), 10.0), ("b", date(2026, 1, 2), 5.0)]
    rfm, _ = clv.rfm_from_transactions(rows, date(2026, 2, 1))
    with pytest.raises(ValidationFailed) as err:
        clv.fit_bgnbd(rfm)
    assert err.value.fields[0].loc == ("customers",)
    many = [(str(i), date(2026, 1, 1), 10.0) for i in range(40)]
    rfm, _ = clv.rfm_from_transactions(many, date(2026, 2, 1))
    with pytest.raises(ValidationFailed) as err:
        clv.fit_bgnbd(rfm)
    assert err.value.fields[0].loc == ("repeat_customers",)
