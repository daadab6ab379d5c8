"""Back-test on the real CDNOW purchase log, checked against independent computations."""

from __future__ import annotations

import math
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from fidelia.rules.backtest import backtest, load_cdnow, percentile
from fidelia.rules.demo import demo_rules
from fidelia.rules.engine import CompiledProgramme, compile_programme
from fidelia.rules.state import EngineEvent, basket_amount
from tests.rules.support import programme

CDNOW = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cdnow_master.txt"
pytestmark = pytest.mark.skipif(not CDNOW.exists(), reason="CDNOW data set not present")


@pytest.fixture(scope="module")
def events() -> list[tuple[str, EngineEvent]]:
    return list(load_cdnow(CDNOW))


@pytest.fixture(scope="module")
def raw_rows() -> list[tuple[str, Decimal]]:
    rows = []
    for text in CDNOW.read_text().splitlines():
        parts = text.split()
        if len(parts) == 4 and parts[0].isdigit():
            rows.append((parts[0], Decimal(parts[3])))
    return rows


def demo_rules_compiled() -> CompiledProgramme:
    return compile_programme(demo_rules())


def one_euro_one_point() -> CompiledProgramme:
    return programme({"id": "base", "award": {"kind": "spend", "rate": 1}})


def test_loader_reads_every_purchase_exactly(
    events: list[tuple[str, EngineEvent]], raw_rows: list[tuple[str, Decimal]]
) -> None:
    assert len(events) == 69_659
    assert len({member for member, _ in events}) == 23_570
    amounts = [basket_amount(ev.purchase) for _, ev in events if ev.purchase is not None]
    assert amounts == [value for _, value in raw_rows]  # line amount == dollar value
    assert sum(1 for a in amounts if a == 0) == 80
    first = events[0][1]
    assert first.occurred_at.isoformat() == "1997-01-01T11:00:00+00:00"  # noon in Paris


def test_backtest_of_one_euro_one_point_equals_the_sum_of_floors(
    events: list[tuple[str, EngineEvent]], raw_rows: list[tuple[str, Decimal]]
) -> None:
    # given an independent computation: floor(value) per purchase, summed per member
    expected: dict[str, int] = defaultdict(int)
    for member, value in raw_rows:
        expected[member] += math.floor(value)
    # when CDNOW is replayed under 1 € = 1 pt (baseline) and the demo programme (candidate)
    report = backtest(events, one_euro_one_point(), demo_rules_compiled())
    base = report.baseline
    # then totals, per-member points and their distribution match
    total = sum(expected.values())
    assert base.per_rule["base"].amount == total
    assert base.per_wallet == {"points": total}
    assert base.per_rule["base"].awards == sum(1 for _, v in raw_rows if v >= 1)
    assert base.points_per_member == {m: p for m, p in expected.items() if p}
    assert base.liability == Decimal(total) * Decimal("0.01")
    ordered = sorted(expected.values())
    assert base.distribution(expected) == {
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "max": ordered[-1],
    }
    # and the demo programme's fixed first-time rules hit every member exactly once
    cand = report.candidate
    assert cand.per_rule["welcome-first-purchase"].amount == 50 * 23_570
    assert cand.per_rule["first-in-category"].amount == 60 * 23_570
    assert cand.per_rule["base-earn"].amount == total  # nobody has a tier in CDNOW
    assert report.members_affected == 23_570  # everyone gets at least the welcome bonus
    deltas = [w[2] - w[1] for w in report.winners]
    assert deltas == sorted(deltas, reverse=True)
    assert len(report.winners) == 10
    assert report.losers == []


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) == 0
    assert percentile([5], 99) == 5
    assert percentile(list(range(1, 101)), 50) == 50
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile([1, 2, 3], 90) == 3


def test_parallel_backtest_gives_the_same_report(events: list[tuple[str, EngineEvent]]) -> None:
    sample = events[:5000]
    demo = demo_rules_compiled()

    sequential = backtest(sample, one_euro_one_point(), demo)
    parallel = backtest(sample, one_euro_one_point(), demo, parallel=True)

    assert parallel.as_dict() == sequential.as_dict()
    assert sequential.baseline.events == 5000
