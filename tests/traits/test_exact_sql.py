"""What makes the SQL rebuild and the Python intake agree to the bit: ratios rounded half up in
integers (a float's own rounding differs at exact ties), and lifecycle stages compiled to SQL
that compare instants instead of computing days (exact at the day boundaries)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select
from sqlalchemy.engine import Engine

from fidelia.kit.conditions import parse_condition
from fidelia.rules.demo import programme_document
from fidelia.traits import compute as c
from fidelia.traits.fields import SqlContext
from fidelia.traits.schemas import TraitsSection
from fidelia.traits.service import TABLE, Compiled
from fidelia.traits.stages import stage_case

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def test_ties_round_half_up_from_the_exact_ratio() -> None:
    # 27 s is exactly 0.0003125 day: Python's round(27 / 86400, 6) gives 0.000312 (the float
    # is just below the tie); numeric ROUND in SQL gives 0.000313. Both paths now give 0.000313.
    mean, median, last, median_s = c.intervals([0, 27])
    assert (mean, median, last, median_s) == (0.000313, 0.000313, 0.000313, 27)
    # median of two gaps (1 s and 2 s): 1.5 s, rounded half up to 2 s for the next purchase
    assert c.intervals([0, 1, 3])[3] == 2
    assert c.intervals([0, 1, 3])[1] == c.micro(3, 2 * 86400)
    # 1 promotional purchase in 128 is exactly 0.0078125
    assert c._share(1, 128) == 0.007813
    assert c._share(Decimal("1.00"), Decimal("128.00")) == 0.007813
    assert c._share(0, 0) is None


@pytest.fixture
def traits_table() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    TABLE.create(engine)
    yield engine
    engine.dispose()


def _row(i: int, **values: Any) -> dict[str, Any]:
    import uuid

    base = {
        "member_id": uuid.UUID(int=i), "programme_id": uuid.UUID(int=0), "purchases_count": 3,
        "spend_total": Decimal("30.00"), "promo_purchases": 0, "promo_spend": Decimal(0),
        "windows": {}, "days": {}, "purchase_times": [], "affinities": {}, "channels": {},
        "stores": {}, "computed_at": NOW, "last_purchase_at": None, "first_purchase_at": None,
        "last_interval_days": None,
    }  # fmt: skip
    base.update(values)
    return base


def test_sql_stages_agree_with_python_at_day_boundaries(traits_table: Engine) -> None:
    section = TraitsSection.model_validate(programme_document()["traits"])
    compiled = Compiled(section, True)
    day, tick = timedelta(days=1), timedelta(microseconds=1)
    rows = [_row(1, purchases_count=0, spend_total=Decimal(0))]
    for n, d in enumerate((59, 60, 61, 89, 90, 91, 179, 180, 181)):
        for k, shift in enumerate((-tick, timedelta(0), tick)):
            last = NOW - d * day + shift
            first = NOW - 400 * day if n % 2 else last - 2 * day
            gap = 120.0 if k == 1 else 119.999999
            rows.append(_row(10 + 3 * n + k, last_purchase_at=last, first_purchase_at=first,
                             last_interval_days=gap))  # fmt: skip
    with traits_table.begin() as conn:
        conn.execute(insert(TABLE), rows)
        stage = stage_case(section, SqlContext(TABLE, NOW, "sqlite"))
        assert stage is not None
        got = dict(conn.execute(select(TABLE.c.member_id, stage)).all())
        stored = {r["member_id"]: dict(r) for r in conn.execute(select(TABLE)).mappings()}
    expected = {mid: compiled.stage_of(row, NOW) for mid, row in stored.items()}
    assert got == expected
    assert {"prospect", "won-back", "new", "active", "at-risk", "lapsed"} <= set(got.values())


def test_a_condition_sql_cannot_match_exactly_falls_back_to_python() -> None:
    raw = programme_document()["traits"]
    raw = {**raw, "lifecycle": [
        {"id": "fan", "when": parse_condition(
            {"field": "traits.favourite_store", "op": "starts_with", "value": "paris"}
        ).model_dump(mode="json", by_alias=True, exclude_none=True)},
        {"id": "other"},
    ]}  # fmt: skip
    section = TraitsSection.model_validate(raw)
    assert stage_case(section, SqlContext(TABLE, NOW, "sqlite")) is None
