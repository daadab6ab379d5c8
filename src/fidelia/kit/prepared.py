"""Hot-path statements compiled once and run straight through the DBAPI.

Design note
-----------
A small query costs SQLAlchemy far more CPU than the database spends on it: through
``session.execute`` each execution builds a cache key, looks the compiled form up, runs
``construct_params``, expands ``IN`` lists and builds the result's metadata (a micro-benchmark
of a 16-row ``IN`` query on SQLite: 1.5-2.5 ms, against 0.2 ms for the DBAPI call). On the
intake and redemption paths, which run some twenty such statements per group, that was a
large share of the CPU (issue 18).

A :class:`Prepared` statement is a Core statement (``select``, ``insert ... returning``,
``update``) with named ``bindparam``\\s, compiled once per dialect. Each execution binds the
given values with the parameters' own type processors (:func:`fidelia.kit.bulk.bind_processor`:
SQLAlchemy's, or a faster one giving the same values), literal values of the statement with
theirs, and reads each result column through its type's result processor, so values go in
and come out exactly as through SQLAlchemy (UUIDs as 32-hex text and naive-UTC datetimes on
SQLite, JSON decoded). It runs through ``Connection.exec_driver_sql`` on the session's
connection: the same transaction, the same engine events (the benchmarks count statements
with them), the same error wrapping (``IntegrityError``). Like an ORM query,
:meth:`Prepared.rows` flushes the session first (unless autoflush is off).

:meth:`Prepared.rows` and :meth:`Prepared.run` go one step lower: the statement runs on a
cursor of the session's own DBAPI connection, with the engine's ``before_cursor_execute`` and
``after_cursor_execute`` listeners called as SQLAlchemy calls them (without an execution
context: a single execution) and a DBAPI error raised as SQLAlchemy's exception for it
(``DBAPIError.instance``: ``IntegrityError`` and its kin, the original in ``orig``).
``exec_driver_sql`` built an execution context and a result's metadata from the cursor on
every call: 12-14 % of a redemption on SQLite, more than the statements' own work (issue 18).
Executemany (:meth:`Prepared.run_many`) stays on ``exec_driver_sql``, whose context tells the
listeners how many rows it ran.

An expanding parameter (``column.in_(bindparam("ids", expanding=True))``) is rendered per
execution as ``IN (?, ?, ...)`` on SQLite (an empty list is ``IN ()``, which SQLite accepts)
and as ``= ANY(CAST(%(ids)b AS type[]))`` on PostgreSQL: one statement text whatever the
length, planned like the ``IN`` list, the array sent in binary (see :mod:`fidelia.kit.bulk`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ClauseElement

from fidelia.kit.bulk import bind_processor

Processor = Callable[[Any], Any] | None
_EXPAND = re.compile(r"(NOT IN|IN) \(__\[POSTCOMPILE_(\w+)\]\)")
_MISSING = object()


@dataclass(frozen=True, slots=True)
class _Compiled:
    sqlite: bool
    text: str  # final, except on SQLite with ``{name}`` where an expanding list goes
    order: tuple[str, ...]  # SQLite (qmark): the parameter of each placeholder, in order
    binds: dict[str, tuple[Processor, Any]]  # name -> (bind processor, the statement's value)
    expanding: frozenset[str]
    columns: tuple[Any, ...]  # the result columns' types


class Prepared:
    """One Core statement, compiled once per dialect, run with the DBAPI's own parameters."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}
        self._results: dict[str, tuple[tuple[int, Callable[[Any], Any]], ...]] = {}
        self._lock = threading.Lock()

    def rows(
        self, session: Session, params: Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """The statement's rows, each a tuple of values read by the columns' types."""
        if session.autoflush:
            session.flush()
        connection = session.connection()
        compiled = self._compiled(connection.dialect)
        text, bound = _bind(compiled, params or {})
        cursor = _execute(connection, text, bound)
        try:
            processors = self._results.get(connection.dialect.name)
            if processors is None:  # once: some processors depend on the type the server sends
                processors = self._results.setdefault(
                    connection.dialect.name,
                    _result_processors(compiled.columns, connection.dialect, cursor),
                )
            found = cursor.fetchall()
        finally:
            cursor.close()
        if not processors:
            return [tuple(row) for row in found]
        out = []
        for row in found:
            values = list(row)
            for i, process in processors:
                if values[i] is not None:
                    values[i] = process(values[i])
            out.append(tuple(values))
        return out

    def run(self, session: Session, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement that returns no rows; how many rows it changed."""
        connection = session.connection()
        compiled = self._compiled(connection.dialect)
        text, bound = _bind(compiled, params or {})
        cursor = _execute(connection, text, bound)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def run_many(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run a statement without expanding parameters once per row (one executemany)."""
        if not rows:
            return
        connection = session.connection()
        compiled = self._compiled(connection.dialect)
        if compiled.expanding:
            raise ValueError("run_many takes no expanding parameter")
        bound = [_bind(compiled, row)[1] for row in rows]
        connection.exec_driver_sql(compiled.text, bound)

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            with self._lock:
                found = self._by_dialect.get(dialect.name)
                if found is None:
                    found = self._by_dialect[dialect.name] = _compile(self.statement, dialect)
        return found


def _execute(connection: Connection, text: str, bound: Any) -> Any:
    """A DBAPI cursor of the connection that ran ``text``: the engine's cursor listeners
    called around it, a DBAPI error raised as SQLAlchemy raises it (see the module's note)."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    dispatch = connection.dispatch
    if dispatch.before_cursor_execute:
        dispatch.before_cursor_execute(connection, cursor, text, bound, None, False)
    dialect = connection.dialect
    try:
        cursor.execute(text, bound)
    except dialect.loaded_dbapi.Error as exc:
        cursor.close()
        raise DBAPIError.instance(
            text, bound, exc, dialect.loaded_dbapi.Error, dialect=dialect, ismulti=False
        ) from exc
    if dispatch.after_cursor_execute:
        dispatch.after_cursor_execute(connection, cursor, text, bound, None, False)
    return cursor


def _compile(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    if dialect.name not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"no prepared statements for {dialect.name}")
    sqlite = dialect.name == "sqlite"
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    binds: dict[str, tuple[Processor, Any]] = {}
    expanding: set[str] = set()
    params: dict[str, BindParameter[Any]] = {}
    for name, bind in compiled.binds.items():
        params[name] = bind
        value = bind.effective_value if not bind.required else _MISSING
        process = bind_processor(bind.type, dialect)
        binds[name] = (process, value)
        if bind.expanding:
            expanding.add(name)
    text = compiled.string
    if sqlite:
        if expanding:
            text = text.replace("{", "{{").replace("}", "}}")
            text = _EXPAND.sub(lambda m: f"{m.group(1)} ({{{m.group(2)}}})", text)
        order = tuple(compiled.positiontup or ())
    else:

        def any_of(match: re.Match[str]) -> str:
            name = match.group(2)
            kind = params[name].type.compile(dialect=dialect)
            operator = "<> ALL" if match.group(1) == "NOT IN" else "= ANY"
            return f"{operator}(CAST(%({name})b AS {kind}[]))"  # binary: see kit.bulk

        text = _EXPAND.sub(any_of, text)
        order = ()
    if "__[POSTCOMPILE_" in text:
        raise ValueError("an expanding parameter is written in a form not supported here")
    columns = tuple(column.type for column in _result_columns(statement))
    return _Compiled(sqlite, text, order, binds, frozenset(expanding), columns)


def _result_processors(
    columns: Sequence[Any], dialect: Dialect, cursor: Any
) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """(column index, processor) of the columns whose values need converting, given the types
    the server reports for them (PostgreSQL's numeric processors depend on it)."""
    described = cursor.description or ()
    found = []
    for i, kind in enumerate(columns):
        coltype = described[i][1] if i < len(described) else None
        process = kind.dialect_impl(dialect).result_processor(dialect, coltype)
        if process is not None:
            found.append((i, process))
    return tuple(found)


def _result_columns(statement: ClauseElement) -> Sequence[Any]:
    """The columns a statement returns (a select's, or an insert's or update's RETURNING)."""
    selected = getattr(statement, "selected_columns", None)
    if selected is not None:
        return list(selected)
    if getattr(statement, "_returning", ()):
        return list(statement.exported_columns)  # type: ignore[attr-defined]
    return []


def _bind(compiled: _Compiled, values: Mapping[str, Any]) -> tuple[str, Any]:
    """The statement text for these values and its DBAPI parameters."""
    bound: dict[str, Any] = {}
    for name, (process, default) in compiled.binds.items():
        value = values.get(name, default)
        if value is _MISSING:
            raise KeyError(f"no value for parameter {name!r}")
        if name in compiled.expanding:
            value = list(value) if process is None else [process(v) for v in value]
        elif process is not None and value is not None:
            value = process(value)
        bound[name] = value
    if not compiled.sqlite:
        return compiled.text, bound
    if not compiled.expanding:
        return compiled.text, tuple(bound[name] for name in compiled.order)
    params: list[Any] = []
    lists: dict[str, str] = {}
    for name in compiled.order:
        if name in compiled.expanding:
            params.extend(bound[name])
            lists[name] = ", ".join("?" * len(bound[name]))
        else:
            params.append(bound[name])
    return compiled.text.format(**lists), tuple(params)
