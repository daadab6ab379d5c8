"""Traits on real customers: the CDNOW purchase log, checked against an independent numpy
computation written here from the file itself, and rebuild == incremental on it.

The test takes the file's first customers, whole (the file is sorted by customer): their orders
up to the 20,000th, about 6,300 customers, so that it runs in a few minutes per database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import select

from fidelia.db import Database
from fidelia.intake.imports import run_import
from fidelia.models import MemberIdentity, Programme
from tests.traits.conftest import differences, rebuilt, replay_incremental, snapshot

CDNOW = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdnow_master.txt"
NOW = datetime(1998, 7, 1, tzinfo=UTC)
TZ = "America/New_York"


ORDERS = 20_000


def first_customers(path: Path) -> Path:
    """The header and the orders of the customers of the first ``ORDERS`` orders, whole."""
    lines = CDNOW.read_text(encoding="ascii").splitlines()
    kept, last = [lines[0]], None
    for text in lines[1:]:
        customer = text.split()[0]
        if len(kept) > ORDERS and customer != last:
            break
        kept.append(text)
        last = customer
    path.write_text("\n".join(kept) + "\n", encoding="ascii")
    return path


def from_the_file(path: Path) -> dict[str, tuple[np.ndarray, Decimal]]:
    """Per customer: purchase instants (epoch seconds, noon New York time) and dollars."""
    tz = ZoneInfo(TZ)
    times: dict[str, list[int]] = {}
    spend: dict[str, Decimal] = {}
    for text in path.read_text(encoding="ascii").splitlines():
        cells = text.split()
        if len(cells) != 4 or not cells[0].isdigit():
            continue
        day = cells[1]
        noon = datetime(int(day[:4]), int(day[4:6]), int(day[6:]), 12, tzinfo=tz)
        times.setdefault(cells[0], []).append(int(noon.timestamp()))
        spend[cells[0]] = spend.get(cells[0], Decimal(0)) + Decimal(cells[3])
    return {c: (np.sort(np.array(t, dtype=np.int64)), spend[c]) for c, t in times.items()}


def quintile_scores(values: np.ndarray) -> np.ndarray:
    """1 + 5 * (rank - 1) // n, ties sharing their lowest rank."""
    ranks = np.searchsorted(np.sort(values), values, side="left") + 1
    return np.asarray(1 + (5 * (ranks - 1)) // len(values))


@pytest.mark.skipif(not CDNOW.exists(), reason="the shared CDNOW file is not there")
def test_cdnow_rfm_scores_and_intervals_match_an_independent_computation(
    database: Database, programme_factory: object, tmp_path: Path
) -> None:
    programme: Programme = programme_factory(currency="USD", timezone=TZ)  # type: ignore[operator]
    sample = first_customers(tmp_path / "cdnow.txt")
    report = run_import(database, programme_id=programme.id, path=sample, kind="events",
                        fmt="cdnow", chunk_size=2000, enrol_unknown="active",
                        rejects_path=tmp_path / "rejects.csv")  # fmt: skip
    expected = from_the_file(sample)
    assert report.accepted == sum(len(t) for t, _ in expected.values()) > ORDERS

    rebuilt(database, programme, now=NOW, chunk=5000)
    bulk = snapshot(database, programme)
    with database.transaction(readonly=True) as session:
        found = session.execute(
            select(MemberIdentity.member_id, MemberIdentity.value).where(
                MemberIdentity.programme_id == programme.id,
                MemberIdentity.namespace == "cdnow",
            )
        ).all()
        customer_of = {member_id: value for member_id, value in found}
    customers = sorted(expected)
    assert len(customers) > 6000
    by_customer = {customer_of[m]: row for m, row in bulk.items()}
    rows = [by_customer[c] for c in customers]

    last = np.array([expected[c][0][-1] for c in customers])
    count = np.array([len(expected[c][0]) for c in customers])
    dollars = np.array([float(expected[c][1]) for c in customers])
    assert [r["purchases_count"] for r in rows] == count.tolist()
    assert [r["spend_total"] for r in rows] == [expected[c][1] for c in customers]
    assert [r["rfm_r"] for r in rows] == quintile_scores(last).tolist()
    assert [r["rfm_f"] for r in rows] == quintile_scores(count).tolist()
    assert [r["rfm_m"] for r in rows] == quintile_scores(dollars).tolist()

    for c, row in zip(customers, rows, strict=True):
        gaps = np.diff(expected[c][0]) / 86400
        if len(gaps) == 0:
            assert row["interval_mean_days"] is None
            assert row["interval_median_days"] is None
            continue
        assert row["interval_mean_days"] == pytest.approx(float(np.mean(gaps)), abs=1e-6)
        assert row["interval_median_days"] == pytest.approx(float(np.median(gaps)), abs=1e-6)
        assert row["last_interval_days"] == pytest.approx(float(gaps[-1]), abs=1e-6)

    replay_incremental(database, programme, now=NOW, group=64)
    assert differences(snapshot(database, programme), bulk) == []
