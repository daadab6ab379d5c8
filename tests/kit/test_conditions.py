"""The condition language: validation with paths, exact numbers, calendar operators, and a
property test against a reference interpreter written independently of the compiler."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fidelia.errors import ValidationFailed
from fidelia.kit.conditions import compile_condition, dump_condition, parse_condition

PARIS = ZoneInfo("Europe/Paris")


def check(doc: dict[str, Any], ctx: dict[str, Any], tz: Any = UTC) -> bool:
    return compile_condition(parse_condition(doc), tz=tz)(ctx)


def at(*args: int) -> dict[str, Any]:
    return {"event": {"occurred_at": datetime(*args, tzinfo=UTC)}}


# -- validation ---------------------------------------------------------------------------------


def test_an_invalid_leaf_is_rejected_with_its_path() -> None:
    doc = {
        "all": [
            {"field": "event.channel", "op": "eq", "value": "web"},
            {"any": [{"field": "event.total", "op": "between", "value": [10]}]},
        ]
    }

    with pytest.raises(ValidationFailed) as err:
        parse_condition(doc, loc=("rules", 3, "when"))

    assert err.value.fields[0].loc == ("rules", 3, "when", "all", 1, "any", 0, "value")
    assert "two values" in err.value.fields[0].msg
    assert not err.value.fields[0].msg.startswith("Value error")  # our words, not pydantic's
    assert "Value error" not in err.value.detail


def test_unknown_operator_and_unknown_keys_are_rejected() -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_condition({"field": "event.type", "op": "like", "value": "x"})
    assert err.value.fields[0].loc == ("op",)

    with pytest.raises(ValidationFailed) as err:
        parse_condition({"field": "event.type", "op": "eq", "value": "x", "extra": 1})
    assert err.value.fields[0].loc == ("extra",)


def test_something_that_is_not_a_condition_is_rejected() -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_condition({"not": {"colour": "red"}})
    assert err.value.fields[0].loc == ("not",)


def test_field_paths_are_names_not_code() -> None:
    for path in ("__import__('os')", "event..type", "event.type; drop", ""):
        with pytest.raises(ValidationFailed):
            parse_condition({"field": path, "op": "exists"})


def test_bad_calendar_values_are_rejected() -> None:
    bad = [
        ("day_of_week", ["funday"]),
        ("month_in", [13]),
        ("hour_between", [25, 2]),
        ("time_between", ["18:00", "18:00"]),
        ("date_between", ["2024-02-01", "2024-01-01"]),
    ]
    for op, value in bad:
        with pytest.raises(ValidationFailed):
            parse_condition({"field": "event.occurred_at", "op": op, "value": value})


def test_a_condition_survives_a_json_round_trip() -> None:
    doc = {
        "all": [
            {"not": {"field": "event.channel", "op": "in", "value": ["web", "app"]}},
            {"field": "event.total", "op": "between", "value": [10.5, 100]},
            {"field": "event.occurred_at", "op": "hour_between", "value": [22, "02:30"]},
            {"field": "event.occurred_at", "op": "day_of_week", "value": ["sat", "sun"]},
        ]
    }

    cond = parse_condition(doc)

    assert parse_condition(dump_condition(cond)) == cond


# -- evaluation ---------------------------------------------------------------------------------


def test_numbers_compare_exactly_with_decimals() -> None:
    # given a rule value written as a JSON float and money amounts as Decimals
    cond = {"field": "event.total", "op": "eq", "value": 0.3}
    # then the decimal 0.3 matches exactly, and so does the float a JSON body would carry
    assert check(cond, {"event": {"total": Decimal("0.1") + Decimal("0.2")}})
    assert check(cond, {"event": {"total": 0.3}})
    assert not check(cond, {"event": {"total": Decimal("0.30000000000000004")}})
    assert check({"field": "event.total", "op": "gte", "value": 50}, {"event": {"total": 50}})


def test_missing_and_null_fields_are_false_except_for_exists() -> None:
    ctx: dict[str, Any] = {"event": {"properties": {"rating": None}}}
    for op, value in [("eq", 1), ("ne", 1), ("lt", 1), ("in", [1]), ("not_in", [1])]:
        assert not check({"field": "event.properties.rating", "op": op, "value": value}, ctx)
        assert not check({"field": "event.properties.nope.deeper", "op": op, "value": value}, ctx)
    assert check({"field": "event.properties.rating", "op": "exists", "value": False}, ctx)
    assert not check({"field": "event.properties.rating", "op": "exists"}, ctx)


def test_values_of_another_type_never_match_and_never_raise() -> None:
    ctx = {"member": {"tier": "gold", "tags": ["vip", 3]}}
    assert not check({"field": "member.tier", "op": "gt", "value": 3}, ctx)
    assert not check({"field": "member.tier", "op": "between", "value": [1, 5]}, ctx)
    assert not check({"field": "member.tags", "op": "in", "value": ["vip"]}, ctx)
    assert check({"field": "member.tags", "op": "contains", "value": 3}, ctx)
    assert check({"field": "member.tier", "op": "starts_with", "value": "go"}, ctx)


def test_all_any_not_combine() -> None:
    doc = {
        "any": [
            {
                "all": [
                    {"field": "a", "op": "gt", "value": 1},
                    {"field": "b", "op": "eq", "value": "x"},
                ]
            },
            {"not": {"field": "c", "op": "exists"}},
        ]
    }
    assert check(doc, {"a": 2, "b": "x", "c": 1})
    assert not check(doc, {"a": 2, "b": "y", "c": 1})
    assert check(doc, {"a": 0})


def test_happy_hour_is_local_time_on_both_sides_of_the_spring_dst_change() -> None:
    # given a happy hour 18:00-20:00 in Paris
    cond = {"field": "event.occurred_at", "op": "hour_between", "value": [18, 20]}
    # when it is 16:30 UTC the day before the change (CET, UTC+1) -> 17:30 local: out
    assert not check(cond, at(2024, 3, 30, 16, 30), PARIS)
    # and 16:30 UTC on the day of the change (CEST, UTC+2) -> 18:30 local: in
    assert check(cond, at(2024, 3, 31, 16, 30), PARIS)
    # and 19:59 local after the autumn change (CET again) is 18:59 UTC: in
    assert check(cond, at(2024, 10, 27, 18, 59), PARIS)
    assert not check(cond, at(2024, 10, 27, 19, 0), PARIS)


def test_calendar_operators_use_the_local_date() -> None:
    # 23:30 UTC on 31 December is already 1 January (a Wednesday) in Paris
    ctx = at(2024, 12, 31, 23, 30)
    assert check({"field": "event.occurred_at", "op": "month_in", "value": [1]}, ctx, PARIS)
    assert check({"field": "event.occurred_at", "op": "month_in", "value": [12]}, ctx, UTC)
    day = {"field": "event.occurred_at", "op": "day_of_week", "value": ["wed"]}
    assert check(day, ctx, PARIS)
    assert not check(day, ctx, UTC)
    dates = {"field": "event.occurred_at", "op": "date_between", "value": ["2025-01-01"] * 2}
    assert check(dates, ctx, PARIS)


def test_a_window_across_midnight_wraps() -> None:
    cond = {"field": "event.occurred_at", "op": "time_between", "value": ["22:00", "02:00"]}
    assert check(cond, at(2024, 1, 10, 23, 0))
    assert check(cond, at(2024, 1, 10, 1, 59))
    assert not check(cond, at(2024, 1, 10, 2, 0))
    assert not check(cond, {"event": {"occurred_at": "2024-01-10T23:00:00Z"}})  # not a datetime


# -- property: compiled closures agree with a plain reference interpreter -----------------------

FIELDS = ["event.properties.x", "event.properties.y", "member.tier", "member.tags"]
scalars = st.one_of(
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False, allow_infinity=False).map(lambda f: round(f, 2)),
    st.sampled_from(["a", "ab", "b", "gold", ""]),
)
field_values = st.one_of(st.none(), scalars, st.lists(scalars, max_size=3))


def _leaves() -> st.SearchStrategy[dict[str, Any]]:
    field = st.sampled_from(FIELDS)
    simple = st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        field,
        st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte", "contains"]),
        scalars,
    )
    sets = st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        field,
        st.sampled_from(["in", "not_in"]),
        st.lists(scalars, min_size=1, max_size=4),
    )
    ranges = st.builds(
        lambda f, a, b: {"field": f, "op": "between", "value": sorted([a, b])},
        field,
        st.integers(-5, 5),
        st.integers(-5, 5),
    )
    exists = st.builds(lambda f, b: {"field": f, "op": "exists", "value": b}, field, st.booleans())
    prefix = st.builds(
        lambda f, v: {"field": f, "op": "starts_with", "value": v}, field, st.sampled_from("abg")
    )
    return st.one_of(simple, sets, ranges, exists, prefix)


conditions = st.recursive(
    _leaves(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
        inner.map(lambda x: {"not": x}),
    ),
    max_leaves=8,
)


def _num(x: Any) -> Any:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return x
    return Decimal(repr(x)) if isinstance(x, float) else Decimal(x)


def _same(a: Any, b: Any) -> bool:
    a, b = _num(a), _num(b)
    both_numbers = isinstance(a, Decimal) and isinstance(b, Decimal)
    both_strings = isinstance(a, str) and isinstance(b, str)
    return (both_numbers or both_strings) and a == b


def _ordered(a: Any, b: Any) -> bool:
    a, b = _num(a), _num(b)
    return (isinstance(a, Decimal) and isinstance(b, Decimal)) or (
        isinstance(a, str) and isinstance(b, str)
    )


def reference(cond: dict[str, Any], ctx: dict[str, Any]) -> bool:
    if "all" in cond:
        return all(reference(c, ctx) for c in cond["all"])
    if "any" in cond:
        return any(reference(c, ctx) for c in cond["any"])
    if "not" in cond:
        return not reference(cond["not"], ctx)
    node: Any = ctx
    for part in cond["field"].split("."):
        node = node.get(part) if isinstance(node, dict) else None
    op, v, x = cond["op"], cond["value"], node
    if op == "exists":
        return (x is not None) == v
    if x is None:
        return False
    if op in ("eq", "ne"):  # a list is a value too: never equal to a scalar
        return _same(x, v) if op == "eq" else not _same(x, v)
    if op in ("lt", "lte", "gt", "gte"):
        if not _ordered(x, v):
            return False
        a, b = _num(x), _num(v)
        return {"lt": a < b, "lte": a <= b, "gt": a > b, "gte": a >= b}[op]
    if op in ("in", "not_in"):
        found = any(_same(x, item) for item in v)
        return found if op == "in" else not found
    if op == "between":
        return _ordered(x, v[0]) and _num(v[0]) <= _num(x) <= _num(v[1])
    if op == "starts_with":
        return isinstance(x, str) and x.startswith(v)
    if isinstance(x, str):  # contains
        return isinstance(v, str) and v in x
    return isinstance(x, list) and any(_same(item, v) for item in x)


@settings(max_examples=400, deadline=None)
@given(
    cond=conditions,
    x=field_values,
    y=field_values,
    tier=field_values,
    tags=field_values,
)
def test_compiled_conditions_agree_with_the_reference(
    cond: dict[str, Any], x: Any, y: Any, tier: Any, tags: Any
) -> None:
    ctx = {"event": {"properties": {"x": x, "y": y}}, "member": {"tier": tier, "tags": tags}}

    compiled = compile_condition(parse_condition(cond))

    assert compiled(ctx) == reference(cond, ctx)
