"""The condition language: a small typed AST, validated by Pydantic, compiled to closures.

Design note
-----------
A condition is data (JSON or YAML), never code: ``{"all": [...]}``, ``{"any": [...]}``,
``{"not": {...}}`` and leaves ``{"field": "event.properties.rating", "op": "gte", "value": 4}``.
Earning rules, reward eligibility, segments and scenario branches share it.

- Validation happens once, when a document is saved: :func:`parse_condition` rejects a bad
  document with :class:`~fidelia.errors.ValidationFailed` and the path of the error.
- :func:`compile_condition` turns the AST into one plain closure ``Callable[[Mapping], bool]``.
  Operator dispatch, number conversion (``Decimal`` at compile time, so comparisons with money
  are exact) and time zone lookup all happen at compile time; evaluating is a few attribute and
  dict lookups.
- Field paths address a context of nested mappings (``event.channel``, ``member.tier``,
  ``line.category``). A missing field and ``null`` are the same thing: every operator is false
  on it except ``exists`` with ``false``. This is SQL's NULL behaviour, so the same AST can
  compile to SQL later (``ne`` on a missing field is false there too).
- Calendar operators (``day_of_week``, ``hour_between``, ``time_between``, ``date_between``,
  ``month_in``) read an aware datetime and look at it in the programme's time zone, so a happy
  hour stays 18:00-20:00 local across daylight saving changes.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
)

from fidelia.errors import FieldError, ValidationFailed, error_message

Predicate = Callable[[Mapping[str, Any]], bool]
Getter = Callable[[Mapping[str, Any]], Any]

CALENDAR_OPS = ("day_of_week", "hour_between", "time_between", "date_between", "month_in")
Operator = Literal[
    "eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "contains", "starts_with",
    "between", "exists",
    "day_of_week", "hour_between", "time_between", "date_between", "month_in",
]  # fmt: skip
FieldPath = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[a-z_][a-z0-9_]*(\.[A-Za-z0-9_-]+)*$")
]
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TAGS = {"all": "<all>", "any": "<any>", "not": "<not>", "leaf": "<leaf>"}


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AllOf(_Node):
    """True when every child is true (an empty list is refused: say what you mean)."""

    all: list[Condition] = Field(min_length=1, max_length=100)


class AnyOf(_Node):
    """True when at least one child is true."""

    any: list[Condition] = Field(min_length=1, max_length=100)


class NotOf(_Node):
    """Negation of its child."""

    not_: Condition = Field(alias="not")


class Compare(_Node):
    """A leaf: one field, one operator, one literal value (normalised at validation)."""

    field: FieldPath
    op: Operator
    value: Any = Field(None, validate_default=True)

    @field_validator("value")
    @classmethod
    def _normalise(cls, value: Any, info: ValidationInfo) -> Any:
        op = info.data.get("op")
        return _normalise_value(op, value) if op is not None else value

    @field_serializer("value")
    def _dump_value(self, value: Any) -> Any:
        return _jsonable(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def _node_kind(data: Any) -> str | None:
    if isinstance(data, Mapping):
        for key in ("all", "any", "not"):
            if key in data:
                return _TAGS[key]
        return _TAGS["leaf"] if ("field" in data or "op" in data) else None
    kinds: dict[type, str] = {AllOf: "all", AnyOf: "any", NotOf: "not", Compare: "leaf"}
    kind = kinds.get(type(data))
    return _TAGS[kind] if kind else None


Condition = Annotated[
    Annotated[AllOf, Tag(_TAGS["all"])]
    | Annotated[AnyOf, Tag(_TAGS["any"])]
    | Annotated[NotOf, Tag(_TAGS["not"])]
    | Annotated[Compare, Tag(_TAGS["leaf"])],
    Discriminator(
        _node_kind,
        custom_error_type="condition_kind",
        custom_error_message="expected an object with all, any, not, or field and op",
    ),
]
for _model in (AllOf, AnyOf, NotOf, Compare):
    _model.model_rebuild()
_ADAPTER: TypeAdapter[Condition] = TypeAdapter(Condition)


# -- value normalisation (validation time) ------------------------------------------------------


def _number(value: Any) -> Any:
    """Numbers become exact Decimals; bools and everything else stay as they are."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, (dict, list, tuple, set)):
        raise ValueError("expected a string, number or boolean")
    return _number(value)


def _normalise_value(op: str, value: Any) -> Any:
    if op in ("in", "not_in"):
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"{op} needs a non-empty list")
        return tuple(_scalar(v) for v in value)
    if op == "between":
        return _pair(value, _scalar)
    if op == "exists":
        if value is None:
            return True
        if not isinstance(value, bool):
            raise ValueError("exists takes true or false")
        return value
    if op == "starts_with":
        if not isinstance(value, str):
            raise ValueError("starts_with needs a string")
        return value
    if op in CALENDAR_OPS:
        return _CALENDAR_NORMALISERS[op](value)
    return _scalar(value)


def _pair(value: Any, convert: Callable[[Any], Any]) -> tuple[Any, Any]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError("expected a list of two values [low, high]")
    low, high = convert(value[0]), convert(value[1])
    try:
        if low > high:
            raise ValueError("low is greater than high")
    except (TypeError, ArithmeticError):  # ArithmeticError: a NaN (decimal.InvalidOperation)
        raise ValueError("low and high are not comparable") from None
    return low, high


def _weekday(value: Any) -> int:
    if isinstance(value, str) and value.lower()[:3] in DAY_NAMES:
        return DAY_NAMES.index(value.lower()[:3]) + 1
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 7:
        return value
    raise ValueError("days are mon..sun or 1..7 (ISO, Monday = 1)")


def _days(value: Any) -> tuple[int, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ValueError("give at least one day")
    return tuple(sorted({_weekday(v) for v in items}))


def _months(value: Any) -> tuple[int, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    ok = all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 12 for v in items)
    if not items or not ok:
        raise ValueError("months are integers 1..12")
    return tuple(sorted(set(items)))


def _minute_of_day(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 24:
        return value * 60
    if isinstance(value, str) and len(value) == 5 and value[2] == ":":
        hours, minutes = value[:2], value[3:]
        if hours.isdigit() and minutes.isdigit() and int(minutes) < 60:
            total = int(hours) * 60 + int(minutes)
            if total <= 1440:
                return total
    raise ValueError("times are hours 0..24 or 'HH:MM'")


def _window(value: Any) -> tuple[str, str]:
    """Validated ``[start, end)`` as canonical ``"HH:MM"`` strings (re-parsable)."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError("expected [start, end]; start is included, end is not")
    start, end = _minute_of_day(value[0]), _minute_of_day(value[1])
    if start == end:
        raise ValueError("start and end are equal: the window would be empty")
    return f"{start // 60:02d}:{start % 60:02d}", f"{end // 60:02d}:{end % 60:02d}"


def _iso_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("dates are 'YYYY-MM-DD'")


_CALENDAR_NORMALISERS: dict[str, Callable[[Any], Any]] = {
    "day_of_week": _days,
    "month_in": _months,
    "hour_between": _window,
    "time_between": _window,
    "date_between": lambda v: _pair(v, _iso_date),
}


# -- parsing ------------------------------------------------------------------------------------


def errors_from(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[FieldError]:
    """Pydantic errors as :class:`FieldError` with clean paths (union tags removed)."""
    found = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("<")))
        found.append(FieldError((*prefix, *loc), error_message(err)))
    return found


def validation_failed(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> ValidationFailed:
    """Convert a Pydantic error into the API's 422 error, keeping every field path."""
    fields = errors_from(exc, prefix)
    first = fields[0]
    detail = f"{'.'.join(str(p) for p in first.loc) or '<root>'}: {first.msg}"
    return ValidationFailed(detail, fields=fields)


def parse_condition(data: Any, *, loc: tuple[str | int, ...] = ()) -> Condition:
    """Validate a JSON/YAML condition document; raise ValidationFailed with the error path."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise validation_failed(exc, loc) from None


def condition_fields(
    cond: Condition, loc: tuple[str | int, ...] = ()
) -> list[tuple[tuple[str | int, ...], str]]:
    """Every field a condition reads, with its location, e.g. ``(("all", 0, "field"), "a.b")``."""
    if isinstance(cond, Compare):
        return [((*loc, "field"), cond.field)]
    if isinstance(cond, NotOf):
        return condition_fields(cond.not_, (*loc, "not"))
    key, children = ("all", cond.all) if isinstance(cond, AllOf) else ("any", cond.any)
    return [f for i, c in enumerate(children) for f in condition_fields(c, (*loc, key, i))]


def dump_condition(cond: Condition) -> Any:
    """The JSON document of a condition (inverse of :func:`parse_condition`)."""
    return _ADAPTER.dump_python(cond, mode="json", by_alias=True)


# -- compilation --------------------------------------------------------------------------------


def field_getter(path: str) -> Getter:
    """A closure reading a dotted path from nested mappings; missing anywhere gives None."""
    parts = tuple(path.split("."))
    if len(parts) == 1:
        (a,) = parts
        return lambda ctx: ctx.get(a)
    if len(parts) == 2:
        a, b = parts

        def get2(ctx: Mapping[str, Any]) -> Any:
            try:
                return ctx.get(a).get(b)  # type: ignore[union-attr]
            except AttributeError:
                return None

        return get2
    if len(parts) == 3:
        a, b, c = parts

        def get3(ctx: Mapping[str, Any]) -> Any:
            try:
                return ctx.get(a).get(b).get(c)  # type: ignore[union-attr]
            except AttributeError:
                return None

        return get3

    def get_n(ctx: Mapping[str, Any]) -> Any:
        node: Any = ctx
        try:
            for part in parts:
                node = node.get(part)
        except AttributeError:
            return None
        return node

    return get_n


def compile_condition(cond: Condition | None, *, tz: tzinfo = UTC) -> Predicate:
    """Compile a validated condition into one closure; ``None`` compiles to always-true.

    ``tz`` is the time zone the calendar operators read datetimes in (the programme's).
    """
    if cond is None:
        return _always
    if isinstance(cond, AllOf):
        return _compile_all([compile_condition(c, tz=tz) for c in cond.all])
    if isinstance(cond, AnyOf):
        return _compile_any([compile_condition(c, tz=tz) for c in cond.any])
    if isinstance(cond, NotOf):
        inner = compile_condition(cond.not_, tz=tz)
        return lambda ctx: not inner(ctx)
    return _LEAVES[cond.op](field_getter(cond.field), cond.value, tz)


def _always(ctx: Mapping[str, Any]) -> bool:
    return True


def _compile_all(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        p, q = preds
        return lambda ctx: p(ctx) and q(ctx)
    items = tuple(preds)
    return lambda ctx: all(p(ctx) for p in items)


def _compile_any(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        p, q = preds
        return lambda ctx: p(ctx) or q(ctx)
    items = tuple(preds)
    return lambda ctx: any(p(ctx) for p in items)


# -- leaves: one factory per operator, chosen at compile time ------------------------------------


def _plain(x: Any) -> Any:
    """Runtime floats become Decimals the way JSON meant them (0.1 is 0.1)."""
    return Decimal(repr(x)) if type(x) is float else x


def _eq(get: Getter, v: Any, tz: tzinfo) -> Predicate:
    return lambda ctx: (x := get(ctx)) is not None and _plain(x) == v


def _ne(get: Getter, v: Any, tz: tzinfo) -> Predicate:
    return lambda ctx: (x := get(ctx)) is not None and _plain(x) != v


def _ordering(test: Callable[[Any, Any], bool]) -> Callable[[Getter, Any, tzinfo], Predicate]:
    def factory(get: Getter, v: Any, tz: tzinfo) -> Predicate:
        def pred(ctx: Mapping[str, Any]) -> bool:
            x = get(ctx)
            if x is None:
                return False
            try:
                return test(_plain(x), v)
            except (TypeError, ArithmeticError):  # str vs number, NaN: not comparable
                return False

        return pred

    return factory


def _between(get: Getter, v: Any, tz: tzinfo) -> Predicate:
    low, high = v
    return _ordering(lambda x, _: bool(low <= x <= high))(get, v, tz)


def _in(get: Getter, v: Any, tz: tzinfo) -> Predicate:
    values = frozenset(v)

    def pred(ctx: Mapping[str, Any]) -> bool:
        x = get(ctx)
        try:
            return x is not None and _plain(x) in values
        except TypeError:  # unhashable field value
            return False

    return pred


def _not_in(get: Getter, v: Any, tz: tzinfo) -> Predicate:
    inside = _in(get, v, tz)
    return lambda ctx: get(ctx) is not None and not inside(ctx)


def _contains(get: Getter, v: Any, tz: tzinfo) -> Predicate:
    def pred(ctx: Mapping[str, Any]) -> bool:
        x = get(ctx)
        if isinstance(x, str):
            return isinstance(v, str) and v in x
        if isinstance(x, (list, tuple, set, frozenset)):
            return any(_plain(item) == v for item in x)
        return False

    return pred


def _starts_with(get: Getter, v: Any, tz: tzinfo) -> Predicate:
    return lambda ctx: isinstance(x := get(ctx), str) and x.startswith(v)


def _exists(get: Getter, v: Any, tz: tzinfo) -> Predicate:
    if v:
        return lambda ctx: get(ctx) is not None
    return lambda ctx: get(ctx) is None


_LOCAL_BOXES: dict[tzinfo, list[tuple[Any, Any]]] = {}


def local_time(value: datetime, tz: tzinfo) -> datetime:
    """``value.astimezone(tz)``, remembered for the last datetime object seen in ``tz``.

    The calendar leaves of a programme, the engine and the state update usually convert the
    same object (the event's ``occurred_at``), so one conversion serves them all. The box
    holds one tuple, replaced whole: a concurrent reader sees the old pair or the new one.
    """
    box = _LOCAL_BOXES.get(tz)
    if box is None:
        box = _LOCAL_BOXES.setdefault(tz, [(None, None)])
    seen, local = box[0]
    if value is seen:
        return local  # type: ignore[no-any-return]
    local = value.astimezone(tz)
    box[0] = (value, local)
    return local


def _local(get: Getter, tz: tzinfo) -> Getter:
    def read(ctx: Mapping[str, Any]) -> datetime | None:
        x = get(ctx)
        if isinstance(x, datetime) and x.tzinfo is not None:
            return local_time(x, tz)
        return None

    return read


def _day_of_week(get: Getter, v: Any, tz: tzinfo) -> Predicate:
    days, local = frozenset(d - 1 for d in v), _local(get, tz)
    return lambda ctx: (t := local(ctx)) is not None and t.weekday() in days


def _month_in(get: Getter, v: Any, tz: tzinfo) -> Predicate:
    months, local = frozenset(v), _local(get, tz)
    return lambda ctx: (t := local(ctx)) is not None and t.month in months


def _minutes_between(get: Getter, v: Any, tz: tzinfo) -> Predicate:
    start, end, local = _minute_of_day(v[0]), _minute_of_day(v[1]), _local(get, tz)

    def pred(ctx: Mapping[str, Any]) -> bool:
        t = local(ctx)
        if t is None:
            return False
        m = t.hour * 60 + t.minute
        return bool(start <= m < end if start < end else (m >= start or m < end))

    return pred


def _date_between(get: Getter, v: Any, tz: tzinfo) -> Predicate:
    low, high = v
    local = _local(get, tz)
    return lambda ctx: (t := local(ctx)) is not None and low <= t.date() <= high


_LEAVES: dict[str, Callable[[Getter, Any, tzinfo], Predicate]] = {
    "eq": _eq,
    "ne": _ne,
    "lt": _ordering(operator.lt),
    "lte": _ordering(operator.le),
    "gt": _ordering(operator.gt),
    "gte": _ordering(operator.ge),
    "between": _between,
    "in": _in,
    "not_in": _not_in,
    "contains": _contains,
    "starts_with": _starts_with,
    "exists": _exists,
    "day_of_week": _day_of_week,
    "month_in": _month_in,
    "hour_between": _minutes_between,
    "time_between": _minutes_between,
    "date_between": _date_between,
}
