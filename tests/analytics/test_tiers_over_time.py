"""Tiers over time against an independent computation on a small known tier history.

Given a programme with bronze < silver < gold < black and five members whose tier changes are
known (joining, upgrades, a downgrade, changes on bucket boundaries, one before the period and
one after it), when members per tier are asked by month, week and day, then each bucket's
closing stock equals replaying each member's history in plain Python (the last change before
the bucket's end), and the joined / upgrade / downgrade counts and the flows equal counting the
bucket's changes; the API answers JSON and CSV and refuses a bad period naming the field.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from fidelia.analytics import tiers
from fidelia.db import Database
from fidelia.models import Programme, TierChange
from tests.fixtures.factories import Api, make_member
from tests.tiers.conftest import document

RANKS = {"bronze": 0, "silver": 1, "gold": 2, "black": 3}


def at(day: int, month: int = 3, hour: int = 12) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=UTC)


# member -> its changes (from, to, at), in order
HISTORY: dict[str, list[tuple[str | None, str, datetime]]] = {
    "a": [(None, "bronze", at(20, 2)), ("bronze", "silver", at(3)), ("silver", "gold", at(17))],
    "b": [(None, "bronze", at(1, hour=0)), ("bronze", "silver", at(10)),
          ("silver", "bronze", datetime(2025, 4, 1, tzinfo=UTC))],  # on a month's boundary
    "c": [(None, "silver", at(9)), ("silver", "black", at(24)), ("black", "gold", at(30))],
    "d": [(None, "bronze", at(31, hour=23))],
    "e": [(None, "bronze", at(5, 4)), ("bronze", "silver", at(20, 4))],  # after March
}  # fmt: skip


def _load(api: Api, database: Database, programme: Programme) -> None:
    assert api.put("/programme/document", json=document()).status_code == 200
    ids = {name: make_member(database, programme).id for name in HISTORY}
    with database.transaction() as session:
        for name, changes in HISTORY.items():
            for before, after, when in changes:
                session.add(
                    TierChange(
                        programme_id=programme.id, member_id=ids[name], from_tier=before,
                        to_tier=after, reason="metric" if before else "joined", at=when,
                        event_id=None, metric={"test": name},
                    )
                )  # fmt: skip


def _expected(start: date, buckets: list[tuple[date, date]]) -> list[dict[str, Any]]:
    """Replay every member's history for each bucket ``[first, end)`` (its changes from the
    period's start on)."""
    out = []
    for first, end in buckets:
        lo = datetime.combine(max(first, start), datetime.min.time(), tzinfo=UTC)
        hi = datetime.combine(end, datetime.min.time(), tzinfo=UTC)
        stock: Counter[str] = Counter()
        moves: Counter[str] = Counter()
        flows: Counter[tuple[str | None, str]] = Counter()
        for changes in HISTORY.values():
            held = [to for _b, to, when in changes if when < hi]
            if held:
                stock[held[-1]] += 1
            for before, after, when in changes:
                if lo <= when < hi:
                    flows[(before, after)] += 1
                    if before is None:
                        moves["joined"] += 1
                    elif RANKS[after] > RANKS[before]:
                        moves["upgrades"] += 1
                    else:
                        moves["downgrades"] += 1
        out.append({"stock": stock, "moves": moves, "flows": flows})
    return out


def _check(answer: Any, start: date, buckets: list[tuple[date, date]]) -> None:
    assert [(p.bucket, p.end) for p in answer.periods] == buckets
    for period, want in zip(answer.periods, _expected(start, buckets), strict=True):
        got = {s.tier: s.members for s in period.members if s.members}
        assert got == dict(want["stock"]), period.bucket
        moves = {"joined": period.joined, "upgrades": period.upgrades,
                 "downgrades": period.downgrades}  # fmt: skip
        assert {k: v for k, v in moves.items() if v} == dict(want["moves"]), period.bucket
        assert period.lateral == 0
        flows = {(f.from_tier, f.to_tier): f.changes for f in period.flows}
        assert flows == dict(want["flows"]), period.bucket


@pytest.mark.parametrize(
    ("start", "end", "grain", "buckets"),
    [
        (date(2025, 2, 1), date(2025, 4, 30), "month",
         [(date(2025, 2, 1), date(2025, 3, 1)), (date(2025, 3, 1), date(2025, 4, 1)),
          (date(2025, 4, 1), date(2025, 5, 1))]),
        (date(2025, 3, 5), date(2025, 3, 20), "week",  # partial weeks at both ends
         [(date(2025, 3, 3), date(2025, 3, 10)), (date(2025, 3, 10), date(2025, 3, 17)),
          (date(2025, 3, 17), date(2025, 3, 21))]),
        (date(2025, 3, 29), date(2025, 4, 1), "day",
         [(date(2025, 3, 29) + timedelta(days=i), date(2025, 3, 30) + timedelta(days=i))
          for i in range(4)]),
    ],
)  # fmt: skip
def test_members_per_tier_and_flows_equal_a_replay_of_the_history(
    api: Api,
    database: Database,
    programme: Programme,
    start: date,
    end: date,
    grain: Any,
    buckets: list[tuple[date, date]],
) -> None:
    _load(api, database, programme)
    with database.transaction(readonly=True) as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        answer = tiers.compute(session, programme=found, start=start, end=end, grain=grain)
    assert answer.tiers == ["bronze", "silver", "gold", "black"]
    _check(answer, start, buckets)


def test_tiers_over_time_as_json_and_csv_and_bad_input(
    api: Api, database: Database, programme: Programme
) -> None:
    _load(api, database, programme)
    query = {"start": "2025-03-01", "end": "2025-03-31", "grain": "month"}
    answer = api.get("/analytics/tiers", params=query, scope="read")
    assert answer.status_code == 200, answer.text
    march = answer.json()["periods"][0]
    held = {s["tier"]: s["members"] for s in march["members"]}
    assert held == {"black": 0, "gold": 2, "silver": 1, "bronze": 1}
    assert (march["joined"], march["upgrades"], march["downgrades"]) == (3, 4, 1)
    as_csv = api.get("/analytics/tiers", params=query | {"format": "csv"}, scope="read")
    assert as_csv.status_code == 200
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == ["bucket", "kind", "key", "value"]
    assert ["2025-03-01", "members", "gold", "2"] in rows
    assert ["2025-03-01", "flow", "bronze>silver", "2"] in rows
    bad = api.get("/analytics/tiers", params={"start": "2025-03-01", "end": "2025-01-01"},
                  scope="read")  # fmt: skip
    assert bad.status_code == 422
    assert "end" in bad.text
    bad = api.get("/analytics/tiers", params={"grain": "year"}, scope="read")
    assert bad.status_code == 422
    assert "grain" in bad.text
