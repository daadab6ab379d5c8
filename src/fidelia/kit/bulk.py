"""Set-based writes: many rows of one table in one statement.

``session.execute(insert(table), rows)`` is a DBAPI ``executemany``. On SQLite that is a loop
in C inside the process, as cheap as it gets. On PostgreSQL psycopg pipelines it, but the
server still parses and runs one INSERT per row; SQLAlchemy's multi-row VALUES mode
("insertmanyvalues") costs more CPU on the client than it saves. So on PostgreSQL the rows go
as one array per column into one constant statement,
``INSERT INTO t (a, b) SELECT * FROM unnest(CAST(:a AS type[]), CAST(:b AS type[]))``:
one statement, compiled once per table, whatever the number of rows, with the values bound by
each column's own type (JSON, UTC timestamps) as SQLAlchemy would. The arrays go in psycopg's
binary format (``%(c0)b``): in the text format psycopg quotes and escapes every element that
needs it with a regular expression, which was a quarter of the CPU of a group of purchases on
PostgreSQL (JSON elements are full of quotes).

On SQLite the executemany goes to the DBAPI directly, with each column's value bound by its
type's processor: SQLAlchemy's own executemany builds every row's parameters through the
compiled statement (``construct_params``), which cost as much CPU as SQLite's insert itself in
the profile of a bulk import (issue 18).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Dialect, Table, insert
from sqlalchemy.orm import Session

Processor = Callable[[Any], Any] | None
_UNNEST: dict[tuple[str, tuple[str, ...]], tuple[str, list[Processor]]] = {}
_DIRECT: dict[tuple[str, tuple[str, ...]], tuple[str, list[Processor]] | None] = {}
_LOCK = threading.Lock()


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (complete, all with the same keys) into ``table`` in the caller's
    transaction: an executemany on SQLite, one ``INSERT ... SELECT FROM unnest`` on
    PostgreSQL."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":
        direct = _direct_insert(table, tuple(rows[0]), dialect)
        if direct is not None:
            sql, processors = direct
            columns = [
                [row[key] for row in rows]
                if process is None
                else [process(row[key]) for row in rows]
                for key, process in zip(rows[0], processors, strict=True)
            ]
            values = list(zip(*columns, strict=True))
            session.connection().exec_driver_sql(sql, values[0] if len(values) == 1 else values)
            return
    if len(rows) == 1 or dialect.name != "postgresql":
        session.execute(insert(table), rows[0] if len(rows) == 1 else list(rows))
        return
    keys = tuple(rows[0])
    statement, processors = _unnest_insert(table, keys, dialect)
    params = {}
    for i, (key, process) in enumerate(zip(keys, processors, strict=True)):
        values = [row[key] for row in rows]
        params[f"c{i}"] = values if process is None else [process(v) for v in values]
    session.connection().exec_driver_sql(statement, params)


def _unnest_insert(
    table: Table, keys: tuple[str, ...], dialect: Dialect
) -> tuple[str, list[Processor]]:
    cache_key = (table.name, keys)
    with _LOCK:
        found = _UNNEST.get(cache_key)
    if found is not None:
        return found
    columns = [table.c[key] for key in keys]
    arrays = ", ".join(
        f"CAST(%(c{i})b AS {column.type.compile(dialect=dialect)}[])"
        for i, column in enumerate(columns)
    )
    names = ", ".join(dialect.identifier_preparer.quote(column.name) for column in columns)
    statement = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({names}) "
        f"SELECT * FROM unnest({arrays})"
    )
    processors: list[Processor] = [
        column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns
    ]
    with _LOCK:
        _UNNEST[cache_key] = (statement, processors)
    return statement, processors


def _direct_insert(
    table: Table, keys: tuple[str, ...], dialect: Dialect
) -> tuple[str, list[Processor]] | None:
    """The qmark INSERT of ``keys`` into ``table`` and their bind processors, or None when a
    column left out has a default computed in Python (SQLAlchemy's executemany fills it)."""
    cache_key = (table.name, keys)
    with _LOCK:
        if cache_key in _DIRECT:
            return _DIRECT[cache_key]
    columns = [table.c[key] for key in keys]
    missing = [c for c in table.c if c.key not in keys]
    found: tuple[str, list[Processor]] | None = None
    if not any(c.default is not None or c.onupdate is not None for c in missing):
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(column.name) for column in columns)
        marks = ", ".join("?" for _ in columns)
        found = (
            f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({names}) "
            f"VALUES ({marks})",
            [column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns],
        )
    with _LOCK:
        _DIRECT[cache_key] = found
    return found
