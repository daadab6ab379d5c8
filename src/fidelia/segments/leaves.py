"""SQL leaves of segment conditions: each two-valued (never NULL), see ``compiler``."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, String, and_, false, func, literal, not_, or_, true

Expr = ColumnElement[Any]


def as_number(value: Any) -> Decimal:
    return Decimal(int(value)) if isinstance(value, bool) else Decimal(value)


def boolean(column: Expr, op: str, value: Any, *, nullable: bool = False) -> Expr:
    if op == "exists":
        if not nullable:
            return true() if value else false()
        return column.is_not(None) if value else column.is_(None)
    test = column if value else not_(column)
    hit = and_(column.is_not(None), test) if nullable else test
    if op == "ne":
        return and_(column.is_not(None), not_(hit)) if nullable else not_(hit)
    return hit


def compare(column: Expr, op: str, value: Any, *, text: bool, pg: bool) -> Expr:
    present = column.is_not(None)
    if op == "exists":
        return present if value else column.is_(None)
    if op == "starts_with":
        return and_(present, func.substr(column, 1, func.length(literal(value, String))) == value)
    if op == "contains":
        found: Expr = func.strpos(column, value) if pg else func.instr(column, value)
        return and_(present, found > 0)
    if op in ("in", "not_in"):
        hit = and_(present, column.in_(value))
        return and_(present, not_(hit)) if op == "not_in" else hit
    if op == "between":
        low, high = value
        return and_(present, column >= low, column <= high)
    tests = {
        "eq": column == value, "ne": column != value, "lt": column < value,
        "lte": column <= value, "gt": column > value, "gte": column >= value,
    }  # fmt: skip
    return and_(present, tests[op])


def days_leaf(ts: Expr, op: str, value: Any, days_ago: Callable[[int], Any]) -> Expr:
    """``floor((now - ts) / 1 day) <op> value`` as comparisons of ``ts`` with instants."""
    present = ts.is_not(None)
    if op == "exists":
        return present if value else ts.is_(None)

    def at_least(n: int) -> Expr:  # days >= n
        test: Expr = ts <= days_ago(n)
        return test

    def at_most(n: int) -> Expr:  # days <= n
        test: Expr = ts > days_ago(n + 1)
        return test

    def equal(n: int) -> Expr:
        return and_(at_least(n), at_most(n))

    if op in ("in", "not_in"):
        hit = and_(present, or_(*(equal(int(v)) for v in value)))
        return and_(present, not_(hit)) if op == "not_in" else hit
    if op == "between":
        return and_(present, at_least(int(value[0])), at_most(int(value[1])))
    n = int(value)
    tests = {
        "eq": equal(n), "ne": not_(equal(n)), "gte": at_least(n), "gt": at_least(n + 1),
        "lte": at_most(n), "lt": at_most(n - 1),
    }  # fmt: skip
    return and_(present, tests[op])
