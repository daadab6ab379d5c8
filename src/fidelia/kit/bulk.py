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

Bind processors. :func:`bind_processor` is the one place that picks the processor of a column
type for a dialect, for this module and :mod:`fidelia.kit.prepared`: SQLAlchemy's own, except
where a faster function gives the same value. On SQLite a ``Uuid`` is its 32-digit hex text
(what ``UUID.hex`` returns, without the property's call) and a JSON dict or list is the text
``json.dumps`` makes (its C encoder called directly, without the two Python frames of
``JSONEncoder.encode``); ``UTCDateTime`` fuses its own (see :mod:`fidelia.models.base`).
Values of other classes go through SQLAlchemy's processor; tests/kit/test_binds.py proves
that both give the same. The rows' columns are processed with ``map`` over ``zip``\\ped
tuples: no Python frame per value where a column needs no processor.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Sequence
from json import encoder as json_encoder
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Dialect, Table, insert
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine, Uuid

Processor = Callable[[Any], Any] | None
# (statement, processors, (index, processor) of the columns that have one)
Plan = tuple[str, list[Processor], list[tuple[int, Callable[[Any], Any]]]]
_UNNEST: dict[tuple[str, tuple[str, ...]], Plan] = {}
_DIRECT: dict[tuple[str, tuple[str, ...]], Plan | None] = {}
_LOCK = threading.Lock()


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (complete, all with the same keys) into ``table`` in the caller's
    transaction: an executemany on SQLite, one ``INSERT ... SELECT FROM unnest`` on
    PostgreSQL."""
    if not rows:
        return
    keys = tuple(rows[0])
    if len(keys) == 1:
        only = keys[0]
        tuples = [(row[only],) for row in rows]
    else:
        tuples = list(map(itemgetter(*keys), rows))
    _insert(session, table, keys, tuples, rows)


def insert_tuples(
    session: Session, table: Table, keys: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    """:func:`insert_rows` for rows given as tuples of the values of ``keys``, in that order
    (no dict per row for the caller to build nor for this function to read)."""
    if rows:
        _insert(session, table, keys, rows, None)


def _insert(
    session: Session,
    table: Table,
    keys: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    dicts: Sequence[dict[str, Any]] | None,
) -> None:
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":
        direct = _direct_insert(table, keys, dialect)
        if direct is not None:
            sql, _, active = direct
            values = _processed(rows, active, len(keys))
            session.connection().exec_driver_sql(sql, values[0] if len(values) == 1 else values)
            return
    if len(rows) == 1 or dialect.name != "postgresql":
        if dicts is None:
            dicts = [dict(zip(keys, row, strict=True)) for row in rows]
        session.execute(insert(table), dicts[0] if len(dicts) == 1 else list(dicts))
        return
    statement, processors, _ = _unnest_insert(table, keys, dialect)
    params = {}
    for i, (column, process) in enumerate(zip(zip(*rows, strict=True), processors, strict=True)):
        params[f"c{i}"] = list(column) if process is None else list(map(process, column))
    session.connection().exec_driver_sql(statement, params)


def _processed(
    rows: Sequence[tuple[Any, ...]], active: list[tuple[int, Callable[[Any], Any]]], width: int
) -> list[tuple[Any, ...]]:
    """``rows`` with the values of the columns that have a processor processed."""
    if not active:
        return list(rows)
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * width
    for i, process in active:
        columns[i] = map(process, columns[i])
    return list(zip(*columns, strict=True))


def bind_processor(kind: TypeEngine[Any], dialect: Dialect) -> Processor:
    """The processor that binds a value of column type ``kind`` on ``dialect``: SQLAlchemy's,
    or a faster one that gives the same values (see the module's docstring)."""
    impl = kind.dialect_impl(dialect)
    chain = impl.bind_processor(dialect)
    if chain is None or dialect.name != "sqlite":
        return chain
    if type(impl) is Uuid and impl.as_uuid:

        def uuid_hex(value: Any) -> Any:
            if value.__class__ is not uuid.UUID:
                return chain(value)
            return f"{value.int:032x}"  # what UUID.hex returns

        return uuid_hex
    make = getattr(json_encoder, "c_make_encoder", None)  # None where the C accelerator is absent
    if isinstance(impl, JSON) and dialect._json_serializer is None and make is not None:
        if impl._str_impl.bind_processor(dialect) is not None:
            return chain
        # json.dumps(value) with its defaults is JSONEncoder().encode(value), which runs
        # c_make_encoder's encoder with these arguments and a new dict of markers
        default = json.JSONEncoder()
        unknown, ascii_text = default.default, json_encoder.encode_basestring_ascii
        keys, items = default.key_separator, default.item_separator

        def json_text(value: Any) -> Any:
            if value.__class__ is not dict and value.__class__ is not list:
                return chain(value)
            encode = make({}, unknown, ascii_text, None, keys, items, False, False, True)
            return "".join(encode(value, 0))

        return json_text
    return chain


def _unnest_insert(table: Table, keys: tuple[str, ...], dialect: Dialect) -> Plan:
    cache_key = (table.name, keys)
    found = _UNNEST.get(cache_key)  # a dict read is atomic; the lock guards the writes
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
    found = (statement, *_processors(columns, dialect))
    with _LOCK:
        _UNNEST[cache_key] = found
    return found


def _direct_insert(table: Table, keys: tuple[str, ...], dialect: Dialect) -> Plan | None:
    """The qmark INSERT of ``keys`` into ``table`` and their bind processors, or None when a
    column left out has a default computed in Python (SQLAlchemy's executemany fills it)."""
    cache_key = (table.name, keys)
    if cache_key in _DIRECT:  # a dict read is atomic; the lock guards the writes
        return _DIRECT[cache_key]
    columns = [table.c[key] for key in keys]
    missing = [c for c in table.c if c.key not in keys]
    found: Plan | None = None
    if not any(c.default is not None or c.onupdate is not None for c in missing):
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(column.name) for column in columns)
        marks = ", ".join("?" for _ in columns)
        found = (
            f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({names}) "
            f"VALUES ({marks})",
            *_processors(columns, dialect),
        )
    with _LOCK:
        _DIRECT[cache_key] = found
    return found


def _processors(
    columns: Sequence[Any], dialect: Dialect
) -> tuple[list[Processor], list[tuple[int, Callable[[Any], Any]]]]:
    processors = [bind_processor(column.type, dialect) for column in columns]
    return processors, [(i, p) for i, p in enumerate(processors) if p is not None]
