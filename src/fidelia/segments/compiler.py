"""Compile a segment condition to one SQL expression over a programme's whole population.

Design note
-----------
The condition is checked first (:func:`check_condition`: every field resolves, every operator
fits its field's kind), so compiling never meets a surprise. :class:`SqlCompiler` turns
conditions into SQLAlchemy Core expressions over ``members`` and a few LEFT JOINs that it adds
once whatever the number of conditions reading them: **one** grouped subquery over ``events``
for every counted field (each event type, category, window and ``days_since_last`` is a column
testing its own type, category and window: one scan of the events whatever their number), one
join per wallet, per consent channel and the member's tier. Badges and
identities are ``EXISTS``. Values are always bound parameters; only the SQL around them depends
on the condition's shape.

Every leaf is two-valued (never NULL): a missing value makes every operator false except
``exists: false``, as in Python, so ``not`` means the same in both evaluators.
``days_since_*`` fields compare the timestamp with ``now`` minus whole days instead of computing
days in SQL (exact, portable, and index-friendly). Custom attributes are read through a typed
view per dialect: the number view also reads JSON booleans as 1/0, as Python compares them.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    FromClause,
    Integer,
    Numeric,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB

from fidelia.errors import ValidationFailed
from fidelia.kit.conditions import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    NotOf,
    compile_condition,
    condition_fields,
)
from fidelia.models import (
    Account,
    Consent,
    Event,
    Member,
    MemberBadge,
    MemberIdentity,
    MemberTier,
    MemberTraits,
)
from fidelia.models.segment_summaries import EventSummary
from fidelia.segments.fields import (
    MAX_COUNTED,
    MAX_COUNTED_DOCUMENT,
    MAX_TERMS,
    FieldSpec,
    Kind,
    UnknownField,
    check_value,
    is_operator_problem,
    resolve,
    terms,
)
from fidelia.segments.leaves import as_number, boolean, compare, days_leaf
from fidelia.traits import fields as trait_fields
from fidelia.traits.fields import SqlContext, TraitField
from fidelia.traits.schemas import TraitsSection

OUTSIDE = ("closed", "merged")  # statuses never in a segment
_DAY = timedelta(days=1)
Expr = ColumnElement[Any]
_EVENTS = ("events", "")  # the one grouped subquery of every counted field


_TRAIT_KINDS: dict[str, Kind] = {
    "integer": "number", "number": "number", "money": "number", "string": "text",
    "datetime": "instant",
}  # fmt: skip


@dataclass(frozen=True)
class Catalogue:
    """What field paths resolve against, for one programme: wallets (id, scale), declared
    categories and the programme's traits section (the traits registry resolves names)."""

    wallets: Mapping[str, tuple[uuid.UUID, int]] = field(default_factory=dict)
    categories: frozenset[str] = frozenset()
    traits: TraitsSection | None = None

    def resolve(self, path: str) -> FieldSpec:
        return resolve(
            path, wallets=self.wallets, categories=self.categories, traits=self.trait_kind
        )

    def trait(self, path: str) -> TraitField | None:
        return trait_fields.resolve(path, self.traits)

    def trait_kind(self, path: str) -> Kind | None:
        found = self.trait(path)
        return _TRAIT_KINDS[found.type] if found is not None else None


def check_condition(
    cond: Condition, catalogue: Catalogue, loc: tuple[str | int, ...] = ()
) -> dict[str, FieldSpec]:
    """Every field of ``cond`` resolved; 422 naming the path of the first bad leaf."""
    specs: dict[str, FieldSpec] = {}
    for where, path in condition_fields(cond):
        try:
            specs[path] = catalogue.resolve(path)
        except UnknownField as exc:
            raise ValidationFailed.on((*loc, *where), str(exc)) from None
    chained = 0
    for where, leaf in _leaves(cond):
        spec = specs[leaf.field]
        problem = check_value(spec, leaf.op, leaf.value)
        if problem is not None:
            part = "op" if is_operator_problem(spec, leaf.op) else "value"
            raise ValidationFailed.on((*loc, *where, part), problem)
        chained += terms(spec, leaf.op, leaf.value)
    if chained > MAX_TERMS:
        raise ValidationFailed.on(
            loc,
            f"this condition makes {chained} comparisons (a leaf is one, `in` on a days field "
            f"one per value); at most {MAX_TERMS}: use between, or split it into segments",
        )
    counted = counted_fields(specs.values())
    if len(counted) > MAX_COUNTED:
        raise ValidationFailed.on(loc, _too_many(len(counted), MAX_COUNTED, "this condition"))
    return specs


def counted_fields(specs: Iterable[FieldSpec]) -> set[tuple[str, str, str, int | None]]:
    """The distinct counted fields (``events.*``, ``categories.*``) among ``specs``: one column
    each in the population's grouped statement."""
    return {
        (s.source, s.key, s.metric, s.window) for s in specs if s.source in ("events", "category")
    }


def _too_many(found: int, limit: int, where: str) -> str:
    return (
        f"{where} reads {found} counted fields (events.*, categories.*: one per type or "
        f"category, measure and window); at most {limit}, as evaluating them costs their square"
    )


def check_counted_total(
    conditions: Sequence[Condition], catalogue: Catalogue, loc: tuple[str | int, ...]
) -> None:
    """All of a document's segments are evaluated by one statement: at most
    :data:`MAX_COUNTED_DOCUMENT` counted fields between them; 422 at ``loc``."""
    specs = [catalogue.resolve(path) for cond in conditions for _, path in condition_fields(cond)]
    found = len(counted_fields(specs))
    if found > MAX_COUNTED_DOCUMENT:
        raise ValidationFailed.on(loc, _too_many(found, MAX_COUNTED_DOCUMENT, "the segments"))


def _leaves(cond: Condition, loc: tuple[str | int, ...] = ()) -> list[tuple[Any, Compare]]:
    if isinstance(cond, Compare):
        return [(loc, cond)]
    if isinstance(cond, NotOf):
        return _leaves(cond.not_, (*loc, "not"))
    key, kids = ("all", cond.all) if isinstance(cond, AllOf) else ("any", cond.any)
    return [found for i, c in enumerate(kids) for found in _leaves(c, (*loc, key, i))]


class SqlCompiler:
    """Conditions -> boolean expressions over ``members`` and the joins they need.

    ``member_ids`` restricts every grouped subquery (the live path evaluates one group of
    members; without it the whole population is aggregated).
    """

    def __init__(
        self,
        *,
        programme_id: uuid.UUID,
        catalogue: Catalogue,
        now: datetime,
        dialect: str,
        member_ids: Collection[uuid.UUID] | None = None,
        parametric: bool = False,
        single: bool = False,
    ) -> None:
        self.programme_id, self.catalogue, self.now = programme_id, catalogue, now
        self.pg = dialect == "postgresql"
        self.member_ids = list(member_ids) if member_ids is not None else None
        # parametric: instants and member ids are named parameters (``params``), so one built
        # statement serves every group (building a large statement costs more than running it)
        self.parametric = parametric
        # single (parametric only): one member, ``member_id = :member_id`` (an expanding IN
        # re-renders the whole statement's text at each execution)
        self.single = single
        self._offsets: dict[str, int] = {}
        self.m = Member.__table__
        self._joins: dict[tuple[str, str], tuple[FromClause, Expr]] = {}
        self._event_needs: dict[tuple[str, str], set[tuple[str, int | None]]] = {}
        self._specs: dict[str, FieldSpec] = {}

    # -- public ------------------------------------------------------------------------------

    def prepare(self, *conds: Condition) -> None:
        """Register what ``conds`` read; call it with every condition before compiling any
        (one grouped subquery per event type serves all their windows)."""
        for cond in conds:
            for _, path in condition_fields(cond):
                self._specs.setdefault(path, self.catalogue.resolve(path))
            self._register(cond)

    def add(self, cond: Condition) -> Expr:
        """The condition as a two-valued boolean expression (joins are registered)."""
        self.prepare(cond)
        return self._compile(cond)

    def select_from(self) -> FromClause:
        """``members`` LEFT JOIN every source the added conditions read."""
        source: FromClause = self.m
        for table, on in self._sources():
            source = source.outerjoin(table, on)
        return source

    def population(self) -> Expr:
        """The members a segment may hold: the programme's, not closed or merged."""
        where = and_(self.m.c.programme_id == self.programme_id, self.m.c.status.not_in(OUTSIDE))
        if self.member_ids is not None:
            where = and_(where, self.of_members(self.m.c.id))
        return where

    def days_ago(self, days: int) -> Any:
        """``now`` minus whole days: a value, or a named parameter when parametric."""
        if not self.parametric:
            return self.now - days * _DAY
        name = f"days_ago_{days}".replace("-", "m")
        self._offsets[name] = days
        return bindparam(name, type_=Event.__table__.c.occurred_at.type)

    def of_members(self, column: Any) -> Expr:
        """``column`` is one of the compiler's members."""
        if self.parametric and self.single:
            test: Expr = column == bindparam("member_id", type_=column.type)
            return test
        ids: Any = bindparam("member_ids", expanding=True) if self.parametric else self.member_ids
        found: Expr = column.in_(ids)
        return found

    def params(self, now: datetime, member_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
        """The parameters of a parametric statement for one evaluation."""
        out: dict[str, Any] = {n: now - d * _DAY for n, d in self._offsets.items()}
        if self.single:
            (out["member_id"],) = member_ids
        else:
            out["member_ids"] = list(member_ids)
        return out

    def members_query(self, cond: Condition) -> Select[tuple[uuid.UUID]]:
        """``SELECT members.id`` of everyone matching ``cond``.

        A whole population whose condition reads counted fields only and holds no member
        without a counted row (:func:`needs_counted_rows`) is read from the grouped counts
        alone: the condition filters the groups as they are made (PostgreSQL moves it into the
        grouping's HAVING) and only the programme's few closed or merged members are taken out,
        instead of joining the groups to every member (at 1,000,000 members that join was a
        fifth of a preview's CPU)."""
        expr = self.add(cond)
        if self._from_counts(cond):
            counted = self._joins[_EVENTS][0]
            m = self.m
            outside = exists().where(
                m.c.id == counted.c.member_id,
                m.c.programme_id == self.programme_id,
                m.c.status.in_(OUTSIDE),
            )
            ids: Select[tuple[uuid.UUID]] = select(counted.c.member_id.label("id")).where(
                expr, not_(outside)
            )
            return ids
        return select(self.m.c.id).select_from(self.select_from()).where(self.population(), expr)

    def _from_counts(self, cond: Condition) -> bool:
        """Whether ``cond`` (prepared) can be read from the population's grouped counts alone."""
        if self.member_ids is not None or self.parametric:
            return False
        specs = [self._specs[p] for _, p in condition_fields(cond)]
        if not specs or any(s.source not in ("events", "category") for s in specs):
            return False
        self._sources()  # the grouped subquery exists once a counted field was compiled
        return _EVENTS in self._joins and needs_counted_rows(cond, specs)

    # -- sources -----------------------------------------------------------------------------

    def _register(self, cond: Condition) -> None:
        for spec in (self._specs[p] for _, p in condition_fields(cond)):
            if spec.source in ("events", "category"):
                need = (spec.metric, spec.window)
                needs = self._event_needs.setdefault((spec.source, spec.key), set())
                if need not in needs and _EVENTS in self._joins:
                    raise AssertionError("prepare every condition before compiling one")
                needs.add(need)

    def _sources(self) -> list[tuple[FromClause, Expr]]:
        if self._event_needs and _EVENTS not in self._joins:
            self._joins[_EVENTS] = self._counted()
        return list(self._joins.values())

    def _join(self, kind: str, key: str, table: FromClause, on: Expr) -> FromClause:
        if (kind, key) not in self._joins:
            self._joins[(kind, key)] = (table, on)
        return self._joins[(kind, key)][0]

    def _counted(self) -> tuple[FromClause, Expr]:
        """One grouped subquery of every counted field: a column per (source, key, metric,
        window). A whole population reads the per-day summaries; a group of members (the live
        path) reads their own events."""
        if self.member_ids is None and not self.parametric:
            return self._summed()
        return self._counted_events()

    def _summed(self) -> tuple[FromClause, Expr]:
        """The counted fields from ``event_summaries`` (see ``fidelia.segments.summaries``):
        one index range per (type, category) for the days after the oldest window's start
        (all days when a field counts ever or reads the last instant), and the events of each
        window's first day, which a day's row cannot split at the window's start instant."""
        s = EventSummary.__table__
        names = [
            (source, key, metric, window, _column_name(source, key, metric, window))
            for (source, key), found in sorted(self._event_needs.items())
            for metric, window in sorted(found, key=lambda n: (n[0], n[1] or 0))
        ]
        windows = sorted({w for _, _, metric, w, _ in names if metric == "count" and w})
        first = {w: (self.now - w * _DAY).astimezone(UTC).date() for w in windows}
        after = {w: datetime.combine(d + _DAY, time(0), UTC) for w, d in first.items()}
        branches: list[Select[Any]] = []
        for (source, key), found in sorted(self._event_needs.items()):
            typ, category = (key, "") if source == "events" else ("purchase", key)
            columns: list[Any] = [s.c.member_id.label("member_id")]
            for src, k, metric, window, name in names:
                mine = (src, k) == (source, key)
                if metric == "days_since_last":
                    columns.append(self._instant(s.c.last_at if mine else null()).label(name))
                elif not mine:
                    columns.append(literal(0, Integer).label(name))
                elif window is None:
                    columns.append(s.c.n.label(name))
                else:
                    columns.append(case((s.c.day > first[window], s.c.n), else_=0).label(name))
            where = [s.c.programme_id == self.programme_id, s.c.type == typ,
                     s.c.category == category]  # fmt: skip
            if all(metric == "count" and w for metric, w in found):
                where.append(s.c.day > first[max(w for _, w in found if w)])
            branches.append(select(*columns).where(*where))
        # each window's first day, from the events (exact at its start instant): the counts of
        # event types in a branch of their own, which the (programme, type, occurred_at) index
        # INCLUDE member_id serves alone (index-only); the categories' in another, which must
        # open each purchase's lines
        for part in ("events", "category"):
            windowed = [n for n in names if n[0] == part and n[2] == "count" and n[3]]
            if windowed:
                branches.append(self._first_days(names, windowed, after))
        rows = union_all(*branches).subquery("summed")
        out: list[Any] = [rows.c.member_id]
        for _, _, metric, _, name in names:
            agg = func.max if metric == "days_since_last" else func.sum
            out.append(agg(rows.c[name]).label(name))
        sub = select(*out).group_by(rows.c.member_id).subquery("counted")
        return sub, sub.c.member_id == self.m.c.id

    def _first_days(
        self,
        names: list[tuple[str, str, str, int | None, str]],
        mine: list[tuple[str, str, str, int | None, str]],
        after: Mapping[int, datetime],
    ) -> Select[Any]:
        """The events of the first day of the windows of ``mine`` (windowed counts) from the
        window's start instant: a row per event, 1 in the columns of ``mine`` it counts in."""
        e = Event.__table__
        columns: list[Any] = [e.c.member_id.label("member_id")]
        for source, key, metric, window, name in names:
            if metric == "days_since_last":
                columns.append(self._instant(null()).label(name))
                continue
            if (source, key, metric, window, name) not in mine or window is None:
                columns.append(literal(0, Integer).label(name))
                continue
            test = and_(
                e.c.type == key
                if source == "events"
                else and_(e.c.type == "purchase", self._has_category(e, key)),
                e.c.occurred_at >= self.now - window * _DAY,
                e.c.occurred_at < after[window],
            )
            columns.append(case((test, 1), else_=0).label(name))
        types = sorted({k if src == "events" else "purchase" for src, k, *_ in mine})
        windows = sorted({w for *_, w, _ in mine if w})
        days = [
            and_(e.c.occurred_at >= self.now - w * _DAY, e.c.occurred_at < after[w])
            for w in windows
        ]
        return select(*columns).where(
            e.c.programme_id == self.programme_id, e.c.type.in_(types), or_(*days)
        )

    def _instant(self, value: Any) -> Any:
        """A timestamp column of a UNION (SQLite's CAST AS DATETIME would make it a number)."""
        typ = EventSummary.__table__.c.last_at.type
        return cast(value, typ) if self.pg else type_coerce(value, typ)

    def _counted_events(self) -> tuple[FromClause, Expr]:
        """One grouped subquery over the events every counted field reads (one scan of
        ``events`` whatever the number of types, categories and windows): a column per
        (source, key, metric, window), each testing its own type, category and window."""
        e = Event.__table__
        columns: list[Any] = [e.c.member_id.label("member_id")]
        types = sorted(
            {key if source == "events" else "purchase" for source, key in self._event_needs}
        )
        where: list[Expr] = [e.c.type.in_(types)]
        if self.member_ids is None:  # else the members' events (SQLite would otherwise pick
            where.append(e.c.programme_id == self.programme_id)  # the programme's type index)
        needs = [n for found in self._event_needs.values() for n in found]
        windows = sorted({w for metric, w in needs if metric == "count" and w is not None})
        if windows and not any(w is None for _, w in needs):  # no older event than the longest
            where.append(e.c.occurred_at >= self.days_ago(windows[-1]))
        for (source, key), found in sorted(self._event_needs.items()):
            test = (
                e.c.type == key
                if source == "events"
                else and_(e.c.type == "purchase", self._has_category(e, key))
            )
            for metric, window in sorted(found, key=lambda n: (n[0], n[1] or 0)):
                name = _column_name(source, key, metric, window)
                if metric == "days_since_last":
                    columns.append(func.max(case((test, e.c.occurred_at), else_=None)).label(name))
                    continue
                if window is not None:
                    test_in = and_(test, e.c.occurred_at >= self.days_ago(window))
                else:
                    test_in = test
                columns.append(func.sum(case((test_in, 1), else_=0)).label(name))
        if self.member_ids is not None:
            where.append(self.of_members(e.c.member_id))
        sub = select(*columns).where(*where).group_by(e.c.member_id).subquery("counted")
        return sub, sub.c.member_id == self.m.c.id

    def _has_category(self, e: Any, category: str) -> Expr:
        if self.pg:
            wanted = literal([{"category": category}], JSONB)  # bound as one JSONB value
            return type_coerce(e.c.properties, JSONB)["lines"].contains(wanted)
        lines = func.json_each(e.c.properties, "$.lines").table_valued("value").alias("l")
        return exists(
            select(literal(1))
            .select_from(lines)
            .where(func.json_extract(lines.c.value, "$.category") == category)
        )

    def _column(self, spec: FieldSpec) -> Expr:
        """The value column of a field (numbers of counted fields never NULL)."""
        m = self.m
        if spec.source == "profile":
            if spec.key == "birth_month":
                if self.pg:
                    return cast(func.extract("month", m.c.birth_date), Integer)
                return cast(func.strftime("%m", m.c.birth_date), Integer)
            if spec.key == "days_since_enrolment":
                return m.c.enrolled_at
            return m.c[spec.key]
        if spec.source == "tier":
            t = MemberTier.__table__.alias("tier")
            table = self._join("tier", "", t, t.c.member_id == m.c.id)
            return table.c.tier
        if spec.source == "wallet":
            wallet_id, _ = self.catalogue.wallets[spec.key]
            a = Account.__table__.alias(f"w_{spec.key.replace('-', '_')}")
            on = and_(a.c.member_id == m.c.id, a.c.wallet_id == wallet_id)
            table = self._join("wallet", spec.key, a, on)
            return func.coalesce(table.c.available, 0)
        if spec.source == "consent":
            c = Consent.__table__.alias(f"consent_{spec.key}")
            on = and_(c.c.member_id == m.c.id, c.c.channel == spec.key)
            return self._join("consent", spec.key, c, on).c.granted
        if spec.source in ("events", "category"):
            sub = self._sources_for(spec)
            column = sub.c[_column_name(spec.source, spec.key, spec.metric, spec.window)]
            return column if spec.metric == "days_since_last" else func.coalesce(column, 0)
        if spec.source == "trait":
            t = MemberTraits.__table__.alias("traits")
            table = self._join("traits", "", t, t.c.member_id == m.c.id)
            found = self.catalogue.trait(spec.key)
            assert found is not None  # resolved when the condition was checked
            return found.sql(SqlContext(table, self.now, "postgresql" if self.pg else "sqlite"))
        raise AssertionError(spec.source)

    def _sources_for(self, spec: FieldSpec) -> FromClause:
        self._sources()
        return self._joins[_EVENTS][0]

    # -- conditions --------------------------------------------------------------------------

    def _compile(self, cond: Condition) -> Expr:
        if isinstance(cond, AllOf):
            return and_(*(self._compile(c) for c in cond.all))
        if isinstance(cond, AnyOf):
            return or_(*(self._compile(c) for c in cond.any))
        if isinstance(cond, NotOf):
            return not_(self._compile(cond.not_))
        return self._leaf(self._specs[cond.field], cond.op, cond.value)

    def _leaf(self, spec: FieldSpec, op: str, value: Any) -> Expr:
        if spec.source == "badges":
            b = MemberBadge.__table__
            return exists().where(b.c.member_id == self.m.c.id, b.c.badge == value)
        if spec.source == "identity":
            i = MemberIdentity.__table__
            has = exists().where(i.c.member_id == self.m.c.id, i.c.kind == spec.key)
            return boolean(has, op, value)
        if spec.source == "attributes":
            return self._json_leaf(spec.key, op, value)
        column = self._column(spec)
        if spec.kind == "days":
            return days_leaf(column, op, value, self.days_ago)
        if spec.kind == "bool":
            return boolean(column, op, value, nullable=True)
        if spec.source == "wallet":
            scale = Decimal(10) ** self.catalogue.wallets[spec.key][1]
            value = tuple(v * scale for v in value) if isinstance(value, tuple) else value
            value = value * scale if isinstance(value, Decimal) else value
        return compare(column, op, self._bind(value), text=spec.kind == "text", pg=self.pg)

    def _bind(self, value: Any) -> Any:
        if isinstance(value, tuple):
            return tuple(self._bind(v) for v in value)
        if isinstance(value, Decimal) and not self.pg:  # SQLite binds no Decimal
            return int(value) if value == value.to_integral_value() else float(value)
        return value

    def _json_leaf(self, key: str, op: str, value: Any) -> Expr:
        typ, txt, num = self._json_views(key)
        present = typ.not_in(("null", "missing"))  # typ is never NULL: leaves stay two-valued
        if op == "exists":
            return present if value else not_(present)
        if op == "contains" and isinstance(value, str):
            return or_(
                compare(txt, op, value, text=True, pg=self.pg), self._array_has(key, typ, value)
            )
        if op in ("eq", "ne", "in", "not_in"):
            values = value if isinstance(value, tuple) else (value,)
            texts = tuple(v for v in values if isinstance(v, str))
            numbers = tuple(self._bind(as_number(v)) for v in values if not isinstance(v, str))
            hit = or_(
                and_(txt.is_not(None), txt.in_(texts)) if texts else false(),
                and_(num.is_not(None), num.in_(numbers)) if numbers else false(),
            )
            return and_(present, not_(hit)) if op in ("ne", "not_in") else hit
        if op == "starts_with":
            return compare(txt, op, value, text=True, pg=self.pg)
        return compare(num, op, self._bind(value), text=False, pg=self.pg)

    def _json_views(self, key: str) -> tuple[Expr, Expr, Expr]:
        attrs = self.m.c.attributes
        if self.pg:
            doc = type_coerce(attrs, JSONB)
            typ = func.coalesce(func.jsonb_typeof(doc.op("->")(literal(key, String))), "missing")
            raw: Expr = doc.op("->>")(literal(key, String))
            number = case(
                (typ == "number", cast(raw, Numeric)),
                (typ == "boolean", case((raw == "true", 1), else_=0)),
                else_=None,
            )
            return typ, case((typ == "string", raw), else_=None), number
        path = literal(f'$."{key}"', String)
        doc = type_coerce(attrs, JSON)
        typ = func.coalesce(func.json_type(doc, path), "missing")
        raw = func.json_extract(doc, path)
        number = case((typ.in_(("integer", "real", "true", "false")), raw), else_=None)
        return typ, case((typ == "text", raw), else_=None), number

    def _array_has(self, key: str, typ: Expr, value: str) -> Expr:
        attrs = self.m.c.attributes
        if self.pg:
            doc = type_coerce(attrs, JSONB).op("->")(literal(key, String))
            wanted = func.jsonb_build_array(literal(value, String))
            return and_(typ == "array", type_coerce(doc, JSONB).contains(wanted))
        items = (
            func.json_each(attrs, literal(f'$."{key}"', String))
            .table_valued("value", "type")
            .alias("items")
        )
        found = exists(
            select(literal(1))
            .select_from(items)
            .where(items.c.type == "text", items.c.value == value)
        )
        return and_(typ == "array", found)


def needs_counted_rows(cond: Condition, specs: Iterable[FieldSpec]) -> bool:
    """Whether ``cond``, whose fields are ``specs`` (all counted), is false for a member with no
    counted row: every count 0 and no last instant, decided by the Python evaluator itself
    (:func:`fidelia.kit.conditions.compile_condition`), so that reading only the members who
    have counted rows gives the same members as the Python evaluation of everyone."""
    ctx: dict[str, Any] = {}
    for spec in specs:
        node = ctx
        *parents, leaf = spec.path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = None if spec.metric == "days_since_last" else 0
    return not compile_condition(cond)(ctx)


def _column_name(source: str, key: str, metric: str, window: int | None) -> str:
    what = "last" if metric == "days_since_last" else f"n_{window or 'all'}"
    return f"{source}:{key}:{what}"


def evaluate_many(
    compiler: SqlCompiler, conditions: Sequence[tuple[str, Condition]]
) -> Select[Any]:
    """``SELECT members.id, <1 if in segment i else 0>...`` for the compiler's members."""
    compiler.prepare(*(cond for _, cond in conditions))
    exprs = [
        case((compiler.add(cond), 1), else_=0).label(f"s{i}")
        for i, (_, cond) in enumerate(conditions)
    ]
    source = compiler.select_from()
    return select(compiler.m.c.id, *exprs).select_from(source).where(compiler.population())
