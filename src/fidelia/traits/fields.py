"""The registry of trait fields: what ``traits.<name>`` means in a condition, in SQL and in Python.

Segments (and rules) name traits in the condition language as ``traits.<name>``. Each field
here says its type, the SQL expression that reads it from ``member_traits`` (for a whole
population) and how to read it from one member's traits context
(:func:`fidelia.traits.service.context_for`, the mapping put under ``"traits"`` in a condition
context). Both read the same stored values, except:

- ``recency_days``, ``days_since_first_purchase`` and ``days_to_next_purchase`` are computed
  from the stored instants and ``now`` (both sides);
- windowed figures (``frequency_<N>d``, ``monetary_<N>d``): Python recomputes them from the
  member's day buckets at ``now``; SQL reads ``member_traits.windows``, exact as of
  ``windows_on`` (the intake keeps a touched member's figures exact for the day, the daily
  traits job refreshes every row whose day is past: see docs/decisions.md).

Dynamic names (resolved against the programme's ``traits`` section by :func:`resolve`):
``traits.frequency_<N>d``, ``traits.monetary_<N>d`` (N a declared window),
``traits.spend_share.<dimension>.<value>``, ``traits.purchases_share.<dimension>.<value>``
(dimension: category, brand or a declared attribute; shares in 0..1) and
``traits.channel_share.<channel>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Float, Integer, Numeric, cast, func, literal, null
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from fidelia.models.traits import MemberTraits
from fidelia.traits.schemas import TraitsSection

FieldType = Literal["integer", "number", "money", "string", "datetime"]
SqlOf = Callable[["SqlContext"], ColumnElement[Any]]
Getter = Callable[[Mapping[str, Any]], Any]

PREFIX = "traits."


@dataclass(frozen=True, slots=True)
class SqlContext:
    """What a trait's SQL expression needs: the ``member_traits`` table (or an alias of it),
    the instant conditions are evaluated at, and the dialect (``sqlite`` or ``postgresql``)."""

    table: FromClause
    now: datetime
    dialect: str

    def col(self, name: str) -> ColumnElement[Any]:
        return self.table.c[name]


@dataclass(frozen=True, slots=True)
class TraitField:
    """One trait: ``name`` is the full condition path (``traits.spend_total``)."""

    name: str
    type: FieldType
    sql: SqlOf
    get: Getter
    description: str


def _key(name: str) -> Getter:
    short = name.removeprefix(PREFIX)
    return lambda traits: traits.get(short)


def _column(name: str, type_: FieldType, description: str) -> TraitField:
    full = PREFIX + name
    return TraitField(full, type_, lambda c: c.col(name), _key(full), description)


def days_between(
    c: SqlContext, later: ColumnElement[Any], earlier: ColumnElement[Any]
) -> ColumnElement[Any]:
    """Whole days from ``earlier`` to ``later`` (truncated), on either dialect."""
    if c.dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", later - earlier) / 86400), Integer)
    return cast(func.julianday(later) - func.julianday(earlier), Integer)


def _now(c: SqlContext) -> ColumnElement[Any]:
    return literal(c.now, MemberTraits.__table__.c.computed_at.type)


def _recency(c: SqlContext) -> ColumnElement[Any]:
    return days_between(c, _now(c), c.col("last_purchase_at"))


def _since_first(c: SqlContext) -> ColumnElement[Any]:
    return days_between(c, _now(c), c.col("first_purchase_at"))


def _to_next(c: SqlContext) -> ColumnElement[Any]:
    return days_between(c, c.col("expected_next_purchase_at"), _now(c))


_COLUMNS: tuple[tuple[str, FieldType, str], ...] = (
    ("first_purchase_at", "datetime", "first purchase"),
    ("last_purchase_at", "datetime", "last purchase"),
    ("purchases_count", "integer", "purchases, lifetime"),
    ("spend_total", "money", "spend (lines after discounts, shipping excluded), lifetime"),
    ("average_basket", "money", "spend_total / purchases_count"),
    ("interval_mean_days", "number", "mean days between consecutive purchases"),
    ("interval_median_days", "number", "median days between consecutive purchases"),
    ("last_interval_days", "number", "days between the last two purchases"),
    ("expected_next_purchase_at", "datetime", "last purchase + median interval"),
    ("rfm_r", "integer", "recency score 1-5 (5: most recent quintile)"),
    ("rfm_f", "integer", "frequency score 1-5"),
    ("rfm_m", "integer", "monetary score 1-5"),
    ("rfm_cell", "string", "named cell of the document's RFM grid"),
    ("lifecycle_stage", "string", "first lifecycle stage of the document whose condition holds"),
    ("promo_purchases_share", "number", "share of purchases with a discount or a voucher"),
    ("promo_spend_share", "number", "share of spend in purchases with a discount or a voucher"),
    ("favourite_store", "string", "store of most purchases (ties: the smallest id)"),
    ("favourite_channel", "string", "channel of most purchases (ties: the smallest name)"),
    ("last_redemption_at", "datetime", "last reward redemption (as of the last rebuild/job)"),
    ("p_alive", "number", "probability the member is still active (BG/NBD, as of the CLV job)"),
    ("clv", "money", "expected discounted value over the CLV horizon (as of the CLV job)"),
    ("churn_risk", "string", "low, medium or high from p_alive (as of the CLV job)"),
)

FIELDS: dict[str, TraitField] = {
    f.name: f
    for f in (
        *(_column(n, t, d) for n, t, d in _COLUMNS),
        TraitField(
            "traits.recency_days", "integer", _recency, _key("traits.recency_days"),
            "whole days since the last purchase, at evaluation time",
        ),
        TraitField(
            "traits.days_since_first_purchase", "integer", _since_first,
            _key("traits.days_since_first_purchase"), "whole days since the first purchase",
        ),
        TraitField(
            "traits.days_to_next_purchase", "integer", _to_next,
            _key("traits.days_to_next_purchase"),
            "whole days until the expected next purchase (negative: overdue)",
        ),
    )
}  # fmt: skip


def _json_text(c: SqlContext, column: str, *path: str | int) -> ColumnElement[Any]:
    out: ColumnElement[Any] = c.col(column)[path].as_string()
    return out


def _window_field(days: int, what: Literal["frequency", "monetary"]) -> TraitField:
    name = f"{PREFIX}{what}_{days}d"
    key = "purchases" if what == "frequency" else "spend"

    def sql(c: SqlContext) -> ColumnElement[Any]:
        raw = _json_text(c, "windows", str(days), key)
        typed = cast(raw, Integer) if what == "frequency" else cast(raw, Numeric(14, 2))
        out: ColumnElement[Any] = func.coalesce(typed, 0)
        return out

    label = "purchases" if what == "frequency" else "spend"
    return TraitField(name, "integer" if what == "frequency" else "money", sql, _key(name),
                      f"{label} in the last {days} days (UTC days, today included)")  # fmt: skip


def _share_field(kind: str, dimension: str, value: str) -> TraitField:
    name = f"{PREFIX}{kind}.{dimension}.{value}"
    index, total = (1, "spend_total") if kind == "spend_share" else (0, "purchases_count")

    def sql(c: SqlContext) -> ColumnElement[Any]:
        part = cast(_json_text(c, "affinities", dimension, value, index), Float)
        whole = func.nullif(cast(c.col(total), Float), 0.0)
        out: ColumnElement[Any] = func.coalesce(part, 0.0) / whole
        return out

    def get(traits: Mapping[str, Any]) -> Any:
        return traits.get(kind, {}).get(dimension, {}).get(value, 0.0 if traits.get(
            "purchases_count") else None)  # fmt: skip

    what = "spend" if kind == "spend_share" else "purchases"
    return TraitField(name, "number", sql, get, f"share of {what} in {dimension} {value}")


def _channel_field(channel: str) -> TraitField:
    name = f"{PREFIX}channel_share.{channel}"

    def sql(c: SqlContext) -> ColumnElement[Any]:
        part = cast(_json_text(c, "channels", channel), Float)
        whole = func.nullif(cast(c.col("purchases_count"), Float), 0.0)
        return func.coalesce(part, 0.0) / whole

    def get(traits: Mapping[str, Any]) -> Any:
        mix = traits.get("channel_share", {})
        return mix.get(channel, 0.0 if traits.get("purchases_count") else None)

    return TraitField(name, "number", sql, get, f"share of purchases on channel {channel}")


def resolve(name: str, section: TraitsSection | None) -> TraitField | None:
    """The trait field a condition path names, or None when it names no trait of the programme.

    Affinity values are open (any category or brand seen), so a share of an unknown value
    resolves too (it is 0 for every member); an unknown dimension does not.
    """
    if name in FIELDS:
        return FIELDS[name]
    if not name.startswith(PREFIX):
        return None
    rest = name.removeprefix(PREFIX)
    windows = section.windows if section else TraitsSection().windows
    what: Literal["frequency", "monetary"]
    for what in ("frequency", "monetary"):
        if rest.startswith(what + "_") and rest.endswith("d"):
            days = rest.removeprefix(what + "_").removesuffix("d")
            if days.isdigit() and int(days) in windows:
                return _window_field(int(days), what)
            return None
    parts = rest.split(".")
    if len(parts) == 3 and parts[0] in ("spend_share", "purchases_share"):
        if parts[1] in dimensions(section):
            return _share_field(parts[0], parts[1], parts[2])
        return None
    if len(parts) == 2 and parts[0] == "channel_share":
        return _channel_field(parts[1])
    return None


def dimensions(section: TraitsSection | None) -> tuple[str, ...]:
    """The affinity dimensions a programme keeps: category/brand and its declared attributes."""
    aff = (section or TraitsSection()).affinities
    return (*aff.by, *(a.id for a in aff.attributes))


def null_field() -> ColumnElement[Any]:
    """A typed SQL NULL (for a trait a programme does not keep)."""
    return null()
