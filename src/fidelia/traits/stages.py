"""The lifecycle stages of a programme as one SQL ``CASE`` over ``member_traits`` columns.

The rebuild sets every member's stage in the same ``INSERT ... SELECT`` that builds the row
(and in one ``UPDATE`` when a stage reads the RFM scores, which are ranked after), instead of
evaluating each row in Python. Only what can be made exactly equal to the Python evaluation
(:func:`fidelia.kit.conditions.compile_condition` over :func:`service.context_for`) compiles:
``all``/``any``/``not`` over ``traits.*`` fields (the registry of :mod:`fidelia.traits.fields`)
with ``eq ne gt gte lt lte between in not_in exists`` and values of the field's kind. Whole days
(``recency_days``, ``days_since_first_purchase``, ``days_to_next_purchase``) compare the
instant with ``now`` plus or minus whole days (exact on both databases, no day arithmetic).
Every leaf is two-valued (a missing value makes it false, as in Python, so ``not`` agrees).
Anything else returns None and the caller evaluates the stages in Python.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, false, func, literal, not_, or_, true
from sqlalchemy.sql.elements import ColumnElement

from fidelia.kit.conditions import AllOf, AnyOf, Compare, Condition, NotOf
from fidelia.models import MemberTraits
from fidelia.traits.fields import SqlContext, resolve
from fidelia.traits.schemas import TraitsSection

Expr = ColumnElement[Any]

# field -> (column, sign): days = floor(sign * (column - now) / 1 day)
_DAYS = {
    "traits.recency_days": ("last_purchase_at", -1),
    "traits.days_since_first_purchase": ("first_purchase_at", -1),
    "traits.days_to_next_purchase": ("expected_next_purchase_at", 1),
}
_NUMERIC = ("integer", "number", "money")


class Unsupported(Exception):
    """The condition cannot be compiled exactly: evaluate it in Python."""


def stage_case(section: TraitsSection, ctx: SqlContext) -> Expr | None:
    """``CASE WHEN <stage 1> THEN 'id1' ... END`` (NULL when no stage holds), or None."""
    if not section.lifecycle:
        return None
    whens: list[tuple[Expr, Any]] = []
    try:
        for stage in section.lifecycle:
            cond = true() if stage.when is None else _compile(stage.when, section, ctx)
            whens.append((cond, literal(stage.id, MemberTraits.__table__.c.lifecycle_stage.type)))
    except Unsupported:
        return None
    out: Expr = case(*whens, else_=None)
    return out


def _compile(cond: Condition, section: TraitsSection, ctx: SqlContext) -> Expr:
    if isinstance(cond, AllOf):
        return and_(*(_compile(c, section, ctx) for c in cond.all))
    if isinstance(cond, AnyOf):
        return or_(*(_compile(c, section, ctx) for c in cond.any))
    if isinstance(cond, NotOf):
        return not_(_compile(cond.not_, section, ctx))
    assert isinstance(cond, Compare)
    out: Expr = func.coalesce(_leaf(cond, section, ctx), false())
    return out


def _number(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    raise Unsupported


def _leaf(cond: Compare, section: TraitsSection, ctx: SqlContext) -> Expr:
    op, value = cond.op, cond.value
    if cond.field in _DAYS:
        return _days(cond.field, op, value, ctx)
    found = resolve(cond.field, section)
    if found is None or cond.field == "traits.lifecycle_stage":
        raise Unsupported
    expr = found.sql(ctx)
    if op == "exists":
        return expr.is_not(None) if value else expr.is_(None)
    values = value if isinstance(value, tuple) else (value,)
    if found.type in _NUMERIC:
        bound = tuple(_bind(_number(v), ctx) for v in values)
    elif found.type == "string" and op in ("eq", "ne", "in", "not_in"):
        if not all(isinstance(v, str) for v in values):
            raise Unsupported
        bound = values
    else:
        raise Unsupported
    present = expr.is_not(None)
    if op == "eq":
        return and_(present, expr == bound[0])
    if op == "ne":
        return and_(present, expr != bound[0])
    if op in _ORDER:
        return and_(present, _ORDER[op](expr, bound[0]))
    if op == "between":
        return and_(present, expr >= bound[0], expr <= bound[1])
    if op == "in":
        return and_(present, expr.in_(bound))
    if op == "not_in":
        return and_(present, expr.not_in(bound))
    raise Unsupported


_ORDER: dict[str, Callable[[Expr, Any], Expr]] = {
    "gt": lambda e, v: e > v,
    "gte": lambda e, v: e >= v,
    "lt": lambda e, v: e < v,
    "lte": lambda e, v: e <= v,
}


def _bind(value: Decimal, ctx: SqlContext) -> Any:
    if ctx.dialect == "postgresql":
        return value
    return int(value) if value == value.to_integral_value() else float(value)


def _days(field: str, op: str, value: Any, ctx: SqlContext) -> Expr:
    """A whole-days field compared without computing days: ``days >= N`` for an integer N is
    ``column <= now - N days`` (recency, since first) or ``column >= now + N days`` (to next)."""
    name, sign = _DAYS[field]
    column = ctx.col(name)
    instant = MemberTraits.__table__.c.computed_at.type
    present = column.is_not(None)

    def ge(n: int) -> Expr:  # days >= n
        if sign < 0:
            return column <= literal(ctx.now - timedelta(days=n), instant)
        return column >= literal(ctx.now + timedelta(days=n), instant)

    def eq(v: Decimal) -> Expr:
        if v != v.to_integral_value():
            return false()
        return and_(ge(int(v)), not_(ge(int(v) + 1)))

    if op == "exists":
        return present if value else column.is_(None)
    values = tuple(_number(v) for v in (value if isinstance(value, tuple) else (value,)))
    v = values[0]
    if op == "gte":
        return and_(present, ge(math.ceil(v)))
    if op == "gt":
        return and_(present, ge(math.floor(v) + 1))
    if op == "lte":
        return and_(present, not_(ge(math.floor(v) + 1)))
    if op == "lt":
        return and_(present, not_(ge(math.ceil(v))))
    if op == "between":
        return and_(present, ge(math.ceil(values[0])), not_(ge(math.floor(values[1]) + 1)))
    if op == "eq":
        return and_(present, eq(v))
    if op == "ne":
        return and_(present, not_(eq(v)))
    if op == "in":
        return and_(present, or_(*(eq(x) for x in values)))
    if op == "not_in":
        return and_(present, not_(or_(*(eq(x) for x in values))))
    raise Unsupported
