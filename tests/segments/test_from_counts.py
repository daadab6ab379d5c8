"""A whole population's condition on counted fields only is read from the grouped counts.

When a condition reads only ``events.*`` and ``categories.*`` and holds no member without a
counted row, ``SqlCompiler.members_query`` selects from the grouped counts and takes the closed
and merged members out, instead of joining the counts to every member. These tests prove the
two shapes agree with the Python evaluator: which conditions take the short shape, and the same
members on generated data, closed and merged members and another programme's included.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from fidelia.db import Database
from fidelia.kit.conditions import parse_condition
from fidelia.models import Member
from fidelia.segments.compiler import SqlCompiler, check_condition, needs_counted_rows
from fidelia.segments.evaluate import evaluate
from tests.segments.test_sql_vs_python import NOW, _setup, conditions_of, member_strategy

COUNTS = [
    "events.purchase.count", "events.purchase.count_30d", "events.review.count_90d",
    "categories.cat-food.count_60d", "categories.books.count", "categories.books.count_365d",
]  # fmt: skip
LAST = "events.purchase.days_since_last"


def _counted_leaf() -> st.SearchStrategy[dict[str, Any]]:
    number = st.integers(-1, 4)
    plain = st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        st.sampled_from([*COUNTS, LAST]),
        st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte"]),
        number,
    )
    ranges = st.builds(
        lambda f, a, b: {"field": f, "op": "between", "value": [min(a, b), max(a, b)]},
        st.sampled_from([*COUNTS, LAST]),
        st.integers(0, 3),
        st.integers(0, 400),
    )
    sets = st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        st.sampled_from([*COUNTS, LAST]),
        st.sampled_from(["in", "not_in"]),
        st.lists(st.integers(0, 3), min_size=1, max_size=3),
    )
    exist = st.builds(lambda v: {"field": LAST, "op": "exists", "value": v}, st.booleans())
    return st.one_of(plain, ranges, sets, exist)


counted_conditions = conditions_of(_counted_leaf(), max_leaves=4)
people_strategy = st.lists(
    st.tuples(member_strategy, st.sampled_from(["active", "closed", "merged", "suspended"])).map(
        lambda found: {**found[0], "status": found[1]}
    ),
    min_size=1,
    max_size=8,
)


def _by_sql(database: Database, programme_id: uuid.UUID, catalogue: Any, cond: Any) -> set[Any]:
    compiler = SqlCompiler(
        programme_id=programme_id,
        catalogue=catalogue,
        now=NOW,
        dialect=database.engine.dialect.name,
    )
    with database.transaction(readonly=True) as session:
        return set(session.scalars(compiler.members_query(cond)))


def _by_python(database: Database, programme_id: uuid.UUID, catalogue: Any, cond: Any) -> set[Any]:
    with database.transaction(readonly=True) as session:
        members = session.scalars(select(Member).where(Member.programme_id == programme_id))
        return {
            m.id
            for m in members
            if evaluate(session, member=m, conditions={"c": cond}, catalogue=catalogue, now=NOW)
        }


@pytest.mark.parametrize(
    ("raw", "short"),
    [
        ({"field": "events.purchase.count_30d", "op": "gte", "value": 3}, True),
        ({"field": "events.purchase.count_30d", "op": "lt", "value": 2}, False),
        ({"field": "events.purchase.count", "op": "eq", "value": 0}, False),
        ({"not": {"field": "events.purchase.count", "op": "eq", "value": 0}}, True),
        ({"field": LAST, "op": "lte", "value": 30}, True),
        ({"field": LAST, "op": "exists", "value": False}, False),
        ({"any": [{"field": "categories.books.count", "op": "gte", "value": 1},
                  {"field": "events.purchase.count_30d", "op": "between", "value": [2, 5]}]}, True),
        ({"any": [{"field": "categories.books.count", "op": "gte", "value": 1},
                  {"field": "events.purchase.count_30d", "op": "in", "value": [0, 5]}]}, False),
        ({"all": [{"field": "categories.books.count", "op": "gte", "value": 1},
                  {"field": "events.purchase.count_30d", "op": "lt", "value": 3}]}, True),
    ],
)  # fmt: skip
def test_which_conditions_are_read_from_the_counts(
    database: Database, raw: dict[str, Any], short: bool
) -> None:
    programme, catalogue = _setup(database, [])
    cond = parse_condition(raw)
    specs = list(check_condition(cond, catalogue).values())
    assert needs_counted_rows(cond, specs) is short
    compiler = SqlCompiler(
        programme_id=programme.id,
        catalogue=catalogue,
        now=NOW,
        dialect=database.engine.dialect.name,
    )
    compiler.members_query(cond)
    assert compiler._from_counts(cond) is short


def test_closed_merged_and_other_programmes_members_stay_out(database: Database) -> None:
    """Three purchases in 30 days each: the active and suspended members are in, the closed
    and merged ones are not, nor the member of another programme with the same purchases."""
    base = {
        "postal_code": None, "birth": None, "enrolled_days": 100, "enrolled_seconds": 0,
        "attrs": {}, "tier": None, "points": None, "cashback": None, "badges": [],
        "consents": {}, "identities": [],
        "events": [("purchase", d, 3600, ["books"]) for d in (1, 5, 20)],
    }  # fmt: skip
    statuses = ["active", "suspended", "closed", "merged"]
    programme, catalogue = _setup(database, [{**base, "status": s} for s in statuses])
    other, _ = _setup(database, [{**base, "status": "active"}])
    cond = parse_condition({"field": "events.purchase.count_30d", "op": "gte", "value": 3})
    found = _by_sql(database, programme.id, catalogue, cond)
    with database.transaction(readonly=True) as session:
        status = dict(
            session.execute(
                select(Member.id, Member.status).where(
                    Member.programme_id.in_([programme.id, other.id])
                )
            ).all()
        )
    assert sorted(status[m] for m in found) == ["active", "suspended"]
    assert found == _by_python(database, programme.id, catalogue, cond)


@pytest.mark.xdist_group("segments-property")
@settings(
    max_examples=int(os.environ.get("FIDELIA_SEGMENT_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(people=people_strategy, raw=counted_conditions)
def test_counted_conditions_give_the_same_members_as_python(
    database: Database, people: list[dict[str, Any]], raw: dict[str, Any]
) -> None:
    programme, catalogue = _setup(database, people)
    cond = parse_condition(raw)
    check_condition(cond, catalogue)
    sql = _by_sql(database, programme.id, catalogue, cond)
    assert sql == _by_python(database, programme.id, catalogue, cond), raw
