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
PostgreSQL (JSON elements are full of quotes). Two kinds of column go otherwise, as the
binary dumper still costs Python calls per element: a uuid array as one text literal
``{hex,NULL,...}`` (nothing in it needs quoting), a JSON array as a binary ``text[]`` of the
JSON texts cast to ``jsonb[]`` (the texts ``json.dumps`` makes, which a binary jsonb holds
too) (issue 18).

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
from sqlalchemy.types import Enum, String, TypeEngine, Uuid

Processor = Callable[[Any], Any] | None
# (statement, processors, (index, processor) of the columns that have one)
Plan = tuple[str, list[Processor], list[tuple[int, Callable[[Any], Any]]]]
ArrayOf = Callable[[tuple[Any, ...]], Any]  # a column's values -> the parameter of its array
_UNNEST: dict[tuple[str, tuple[str, ...]], tuple[str, list[ArrayOf]]] = {}
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


def upsert_tuples(
    session: Session,
    table: Table,
    keys: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    on_conflict: Callable[[Dialect], str],
) -> None:
    """:func:`insert_tuples` followed by ``on_conflict(dialect)``, an ``ON CONFLICT ... DO
    ...`` clause (``excluded.`` names the row offered): one executemany on SQLite, one
    ``INSERT ... SELECT FROM unnest ... ON CONFLICT`` on PostgreSQL, where no two rows may
    share a conflict key (a row cannot be changed twice by one statement). ``keys`` must
    name every column that has a default computed in Python."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    clause = on_conflict(dialect)
    if dialect.name == "postgresql":
        statement, arrays = _unnest_insert(table, keys, dialect)
        columns = zip(*rows, strict=True)
        params = {
            f"c{i}": array(c) for i, (c, array) in enumerate(zip(columns, arrays, strict=True))
        }
        session.connection().exec_driver_sql(f"{statement} {clause}", params)
        return
    direct = _direct_insert(table, keys, dialect)
    if direct is None:
        raise ValueError(f"an upsert into {table.name} must give the columns with defaults")
    sql, _, active = direct
    values = _processed(rows, active, len(keys))
    session.connection().exec_driver_sql(
        f"{sql} {clause}", values[0] if len(values) == 1 else values
    )


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
    statement, arrays = _unnest_insert(table, keys, dialect)
    columns = zip(*rows, strict=True)
    params = {f"c{i}": array(c) for i, (c, array) in enumerate(zip(columns, arrays, strict=True))}
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
    found = _json_encoder()
    if isinstance(impl, JSON) and dialect._json_serializer is None and found is not None:
        if impl._str_impl.bind_processor(dialect) is not None:
            return chain
        make, unknown, ascii_text, keys, items = found

        def json_text(value: Any) -> Any:
            if value.__class__ is not dict and value.__class__ is not list:
                return chain(value)
            if not value:  # the ledger's metadata, most of the time: no encoder made
                return "{}" if value.__class__ is dict else "[]"
            encode = make({}, unknown, ascii_text, None, keys, items, False, False, True)
            return "".join(encode(value, 0))  # what json.dumps(value) returns

        return json_text
    return chain


def _json_encoder() -> tuple[Any, ...] | None:
    """What ``json.dumps(value)`` with its defaults runs, without its Python frames: it is
    ``JSONEncoder().encode(value)``, which joins what ``c_make_encoder(markers, default,
    encode_basestring_ascii, None, key_separator, item_separator, False, False, True)``
    makes of it, with a new dict of markers. None where json has no C accelerator."""
    make = getattr(json_encoder, "c_make_encoder", None)
    if make is None:
        return None
    default = json.JSONEncoder()
    return (
        make,
        default.default,
        json_encoder.encode_basestring_ascii,
        default.key_separator,
        default.item_separator,
    )


def _json_dumps() -> Callable[[Any], str] | None:
    """``json.dumps`` with its defaults (see :func:`_json_encoder`), for a dict or a list."""
    found = _json_encoder()
    if found is None:
        return None
    make, unknown, ascii_text, keys, items = found

    def dumps(value: Any) -> str:
        encode = make({}, unknown, ascii_text, None, keys, items, False, False, True)
        return "".join(encode(value, 0))

    return dumps


def _array_element(column: Any, dialect: Dialect) -> str:
    """The type of the column's array: a string column's without its length. An explicit
    ``CAST(... AS VARCHAR(20)[])`` cuts a longer value silently, where the insert's own
    assignment to the column refuses it, as a plain INSERT would."""
    kind = column.type
    if isinstance(kind, String) and not isinstance(kind, Enum) and kind.length is not None:
        return "VARCHAR"
    return str(kind.compile(dialect=dialect))


def _unnest_insert(
    table: Table, keys: tuple[str, ...], dialect: Dialect
) -> tuple[str, list[ArrayOf]]:
    """The unnest INSERT of ``keys`` and, per column, what makes the parameter of its array
    from the column's values: uuid and JSON arrays in text (below), the processed values
    otherwise (sent in binary)."""
    cache_key = (table.name, keys)
    found = _UNNEST.get(cache_key)  # a dict read is atomic; the lock guards the writes
    if found is not None:
        return found
    columns = [table.c[key] for key in keys]
    arrays: list[ArrayOf] = []
    casts: list[str] = []
    for i, column in enumerate(columns):
        impl = column.type.dialect_impl(dialect)
        kind = f"{_array_element(column, dialect)}[]"
        texts = _json_texts(impl, dialect)
        if isinstance(impl, Uuid) and impl.as_uuid:
            arrays.append(_uuid_array_text)
            casts.append(f"CAST(%(c{i})s AS {kind})")
        elif texts is not None:
            arrays.append(texts)
            casts.append(f"CAST(CAST(%(c{i})b AS text[]) AS {kind})")
        else:
            arrays.append(_array(bind_processor(column.type, dialect)))
            casts.append(f"CAST(%(c{i})b AS {kind})")
    names = ", ".join(dialect.identifier_preparer.quote(column.name) for column in columns)
    statement = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({names}) "
        f"SELECT * FROM unnest({', '.join(casts)})"
    )
    with _LOCK:
        _UNNEST[cache_key] = (statement, arrays)
    return statement, arrays


def _array(process: Processor) -> ArrayOf:
    if process is None:
        return list
    return lambda column: list(map(process, column))


def _uuid_array_text(column: tuple[Any, ...]) -> Any:
    """A uuid[] in PostgreSQL's text form, ``{hex,NULL,...}`` (nothing in it to quote): in
    psycopg's binary form each element cost two Python calls (issue 18). A column holding
    anything but UUIDs and None: psycopg's own array."""
    if any(value.__class__ is not uuid.UUID and value is not None for value in column):
        return list(column)
    inner = ",".join([f"{v.int:032x}" if v is not None else "NULL" for v in column])
    return f"{{{inner}}}"


def _json_texts(impl: TypeEngine[Any], dialect: Dialect) -> ArrayOf | None:
    """For a JSON column on PostgreSQL, the JSON texts of a column's values, sent as a text[]
    cast to jsonb[] (the server parses the same text as from a binary jsonb, which is text with
    a version byte): each value as SQLAlchemy binds it, ``psycopg.types.json.Jsonb(value)``,
    dumped by psycopg with ``json.dumps``, or NULL; a dict or a list by json's encoder
    directly, without the wrapper and three Python frames (issue 18)."""
    dumps = _json_dumps()
    if dialect.name != "postgresql" or not isinstance(impl, JSON) or dumps is None:
        return None
    chain = impl.bind_processor(dialect)  # type: ignore[no-untyped-call]
    if dialect._json_serializer is not None or chain is None:
        return None

    def other(value: Any) -> str | None:
        wrapped = chain(value)  # Jsonb(value), or None for SQL NULL
        if wrapped is None:
            return None
        return json.dumps(wrapped.obj) if wrapped.dumps is None else wrapped.dumps(wrapped.obj)

    def texts(column: tuple[Any, ...]) -> list[str | None]:
        return [
            dumps(v) if v.__class__ is dict or v.__class__ is list else other(v) for v in column
        ]

    return texts


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
