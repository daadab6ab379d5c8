"""kit.bulk.insert_rows: the rows read back are what SQLAlchemy's own insert stores, whatever
the path (SQLite's direct executemany, PostgreSQL's unnest), one row or many."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.types import Uuid

from fidelia.db import Database
from fidelia.kit.bulk import insert_rows, upsert_tuples
from fidelia.models.base import JSONType, UTCDateTime


@pytest.fixture
def tables(database: Database) -> Iterator[tuple[Table, Table]]:
    """Two identical tables: one filled by insert_rows, one by SQLAlchemy's insert."""
    metadata = MetaData()
    suffix = uuid.uuid4().hex[:8]

    def table(name: str) -> Table:
        return Table(
            f"bulk_{name}_{suffix}",
            metadata,
            Column("id", Uuid(), primary_key=True),
            Column("at", UTCDateTime(), nullable=True),
            Column("body", JSONType, nullable=True),
            Column("label", String(20), nullable=True),
            Column("n", Integer, nullable=True),
            Column("filled", Integer, nullable=True, default=7),  # a Python-side default
        )

    pair = table("bulk"), table("core")
    metadata.create_all(database.engine)
    yield pair
    metadata.drop_all(database.engine)


def rows(count: int) -> list[dict[str, Any]]:
    paris = timezone(timedelta(hours=1))
    return [
        {
            "id": uuid.uuid4(),
            "at": datetime(2026, 12, 1, 10, i, 30, 123456, tzinfo=paris) if i % 3 else None,
            "body": {"a": [1, "é", None], "b": {"c": i}} if i % 2 else None,
            "label": f"row {i}" if i % 4 else None,
            "n": i,
            "filled": i,
        }
        for i in range(count)
    ]


def stored(database: Database, table: Table) -> list[tuple[Any, ...]]:
    with database.transaction(readonly=True) as session:
        return [tuple(r) for r in session.execute(select(table).order_by(table.c.n))]


@pytest.mark.parametrize("count", [1, 5])
def test_insert_rows_stores_what_core_stores(
    database: Database, tables: tuple[Table, Table], count: int
) -> None:
    bulk, core = tables
    given = rows(count)
    with database.transaction() as session:
        insert_rows(session, bulk, given)
        session.execute(insert(core), given if count > 1 else given[0])

    assert stored(database, bulk) == stored(database, core)
    first = stored(database, bulk)[0]
    assert first[0] == given[0]["id"]
    if count > 1:
        assert stored(database, bulk)[1][1] == datetime(2026, 12, 1, 9, 1, 30, 123456, tzinfo=UTC)


def test_awkward_json_is_stored_as_core_stores_it(
    database: Database, tables: tuple[Table, Table]
) -> None:
    """JSON that needs quoting in an array literal, JSON null and SQL NULL, strings and
    scalars as documents (PostgreSQL's uuid and JSON arrays go as text)."""
    bodies: list[Any] = [
        {"q": 'say "hi"\\n', "u": "é\u2028ü", "nested": [{"a": None}, [], {}], "f": 0.25},
        ["a,b", "{c}", "NULL", None],
        "a string",
        42,
        None,
        JSON.NULL,
    ]
    given = [
        {"id": uuid.uuid4(), "at": None, "body": body, "label": None, "n": i, "filled": None}
        for i, body in enumerate(bodies)
    ]
    with database.transaction() as session:
        insert_rows(session, bulk_table := tables[0], given)
        session.execute(insert(tables[1]), given)
    assert stored(database, bulk_table) == stored(database, tables[1])
    assert [r[2] for r in stored(database, bulk_table)][:4] == bodies[:4]


def test_a_left_out_column_gets_its_python_default_on_sqlite(
    database: Database, tables: tuple[Table, Table], backend: str
) -> None:
    if backend == "postgresql":
        pytest.skip("the unnest path takes complete rows (see kit.bulk.insert_rows)")
    bulk, _ = tables
    given = [{k: v for k, v in r.items() if k != "filled"} for r in rows(3)]
    with database.transaction() as session:
        insert_rows(session, bulk, given)
    assert [r[5] for r in stored(database, bulk)] == [7, 7, 7]


def test_rows_roll_back_with_the_transaction(
    database: Database, tables: tuple[Table, Table]
) -> None:
    bulk, _ = tables

    def abandoned() -> None:
        with database.transaction() as session:
            insert_rows(session, bulk, rows(4))
            raise RuntimeError("abandon")

    with pytest.raises(RuntimeError):
        abandoned()
    assert stored(database, bulk) == []


def test_a_string_too_long_for_its_column_is_refused_as_core_refuses_it(
    database: Database, tables: tuple[Table, Table]
) -> None:
    """PostgreSQL refuses a value longer than VARCHAR(20) on insert; the unnest path must not
    cut it (an explicit cast to ``VARCHAR(20)[]`` would, silently). SQLite stores it whole,
    both ways."""
    bulk, core = tables
    given = rows(3)
    given[1]["label"] = "x" * 21

    def outcome(write: Any) -> str | list[tuple[Any, ...]]:
        try:
            with database.transaction() as session:
                write(session)
        except Exception as error:  # the error's kind is what is compared
            return type(error).__name__
        return [r[1:] for r in stored(database, core if write is core_write else bulk)]

    def bulk_write(session: Any) -> None:
        insert_rows(session, bulk, given)

    def core_write(session: Any) -> None:
        session.execute(insert(core), given)

    assert outcome(bulk_write) == outcome(core_write)
    assert stored(database, bulk) == stored(database, core)


def test_upsert_tuples_inserts_then_updates_on_conflict(
    database: Database, tables: tuple[Table, Table]
) -> None:
    bulk, core = tables
    keys = ("id", "at", "body", "label", "n", "filled")
    given = rows(4)
    again = [{**row, "label": f"again {row['n']}", "n": row["n"] + 10} for row in given[:2]]

    def replace_label(_dialect: Any) -> str:
        return "ON CONFLICT (id) DO UPDATE SET label = excluded.label, n = excluded.n"

    with database.transaction() as session:
        upsert_tuples(
            session, bulk, keys, [tuple(r[k] for k in keys) for r in given], replace_label
        )
    with database.transaction() as session:
        upsert_tuples(
            session, bulk, keys, [tuple(r[k] for k in keys) for r in again], replace_label
        )
        session.execute(insert(core), [*given[2:], *again])
    assert stored(database, bulk) == stored(database, core)
    assert [r[4] for r in stored(database, bulk)] == [2, 3, 10, 11]


def test_upsert_tuples_needs_the_columns_with_python_defaults(
    database: Database, tables: tuple[Table, Table], backend: str
) -> None:
    if backend == "postgresql":
        pytest.skip("the unnest path takes complete rows whatever their defaults")
    bulk, _ = tables
    keys = ("id", "n")
    with pytest.raises(ValueError, match="columns with defaults"), database.transaction() as s:
        upsert_tuples(s, bulk, keys, [(uuid.uuid4(), 1)], lambda _d: "ON CONFLICT DO NOTHING")
    assert stored(database, bulk) == []
