"""kit.prepared.Prepared: a statement run through the DBAPI reads and writes exactly what the
same statement run by SQLAlchemy does, on both databases (types both ways, literal values of
the statement, IN lists of any length, RETURNING, errors, the unit of work flushed first)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import Uuid

from fidelia.db import Database
from fidelia.kit.prepared import Prepared
from fidelia.models import Member
from fidelia.models.base import JSONType, UTCDateTime
from tests.fixtures.factories import make_member, make_programme


@pytest.fixture
def table(database: Database) -> Iterator[Table]:
    metadata = MetaData()
    found = Table(
        f"prepared_{uuid.uuid4().hex[:8]}",
        metadata,
        Column("id", Uuid(), primary_key=True),
        Column("at", UTCDateTime(), nullable=True),
        Column("body", JSONType, nullable=True),
        Column("label", String(20), nullable=True, unique=True),
        Column("n", Integer, nullable=False),
        Column("amount", Numeric(12, 2), nullable=True),
    )
    metadata.create_all(database.engine)
    paris = timezone(timedelta(hours=1))
    rows = [
        {
            "id": uuid.uuid4(),
            "at": datetime(2026, 12, 1, 10, i, 30, 123456, tzinfo=paris) if i % 3 else None,
            "body": {"a": [1, "é", None], "i": i} if i % 2 else None,
            "label": f"row {i}%" if i % 4 else None,
            "n": i,
            "amount": Decimal(i) / 4 if i % 5 else None,
        }
        for i in range(12)
    ]
    with database.transaction() as session:
        session.execute(insert(found), rows)
    yield found
    metadata.drop_all(database.engine)


def both(database: Database, statement: Any, params: dict[str, Any]) -> tuple[Any, Any]:
    """The rows through Prepared and through SQLAlchemy, same transaction."""
    with database.transaction(readonly=True) as session:
        mine = Prepared(statement).rows(session, params)
        theirs = [tuple(r) for r in session.execute(statement, params)]
    return mine, theirs


def test_values_come_back_as_sqlalchemy_reads_them(database: Database, table: Table) -> None:
    statement = select(table).where(table.c.n >= bindparam("least")).order_by(table.c.n)
    mine, theirs = both(database, statement, {"least": 3})
    assert mine == theirs
    assert len(mine) == 9
    with_time = next(r for r in mine if r[1] is not None)
    assert with_time[1].tzinfo is not None
    assert with_time[1].utcoffset() == timedelta(0)
    assert isinstance(with_time[0], uuid.UUID)
    assert any(isinstance(r[2], dict) for r in mine)
    assert {r[5] for r in mine} >= {Decimal("0.75"), Decimal("1.75")}


def test_in_lists_of_any_length_and_literal_values(database: Database, table: Table) -> None:
    with database.transaction(readonly=True) as session:
        ids = [r[0] for r in session.execute(select(table.c.id).order_by(table.c.n))]
    statement = (
        select(table.c.n, table.c.label)
        .where(table.c.id.in_(bindparam("ids", expanding=True)), table.c.n != 5)
        .order_by(table.c.n)
        .limit(bindparam("most"))
    )
    for chosen in ([], ids[:1], ids[2:9], ids):
        mine, theirs = both(database, statement, {"ids": chosen, "most": 100})
        assert mine == theirs
        assert [n for n, _ in mine] == [n for n in range(12) if ids[n] in chosen and n != 5]
    mine, _ = both(database, statement, {"ids": ids, "most": 2})
    assert mine == [(0, None), (1, "row 1%")]
    excluded = select(table.c.n).where(table.c.n.not_in(bindparam("ns", expanding=True)))
    mine, theirs = both(database, excluded.order_by(table.c.n), {"ns": [0, 1, 2]})
    assert mine == theirs == [(n,) for n in range(3, 12)]


def test_writes_returning_and_errors(database: Database, table: Table) -> None:
    new = uuid.uuid4()
    at = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
    adding = Prepared(
        insert(table)
        .values(id=bindparam("id"), at=bindparam("at"), body=bindparam("body"), n=1,
                label=bindparam("label"))
        .returning(table.c.id, table.c.at, table.c.body)
    )  # fmt: skip
    with database.transaction() as session:
        assert adding.rows(session, {"id": new, "at": at, "body": {"x": 1}, "label": "new"}) == [
            (new, at, {"x": 1})
        ]
    with database.transaction(readonly=True) as session:
        assert session.execute(select(table.c.at, table.c.body).where(table.c.id == new)).one() == (
            at,
            {"x": 1},
        )
    with pytest.raises(IntegrityError), database.transaction() as session:
        adding.rows(session, {"id": uuid.uuid4(), "at": None, "body": None, "label": "new"})
    with database.transaction(readonly=True) as session:
        assert session.execute(select(table.c.id).where(table.c.label == "new")).all() == [(new,)]
    bump = Prepared(update(table).where(table.c.id == bindparam("b_id")).values(n=bindparam("b_n")))
    with database.transaction() as session:
        assert bump.run(session, {"b_id": new, "b_n": 40}) == 1
        bump.run_many(session, [{"b_id": new, "b_n": 41}, {"b_id": uuid.uuid4(), "b_n": 0}])
    with database.transaction(readonly=True) as session:
        assert session.scalar(select(table.c.n).where(table.c.id == new)) == 41
    with pytest.raises(KeyError, match="b_n"), database.transaction() as session:
        bump.run(session, {"b_id": new})


def test_the_unit_of_work_is_flushed_first(database: Database) -> None:
    """As an ORM query would: a member added to the session and not flushed is found."""
    programme = make_programme(database)
    make_member(database, programme)
    query = Prepared(
        select(Member.id, Member.status).where(Member.programme_id == bindparam("programme_id"))
    )
    with database.transaction() as session:
        member = Member(
            id=uuid.uuid4(),
            programme_id=programme.id,
            status="active",
            enrolment_channel="store",
            enrolled_at=datetime.now(UTC),
        )
        session.add(member)
        found = query.rows(session, {"programme_id": programme.id})
        assert (member.id, "active") in found
        assert len(found) == 2
        session.rollback()


def test_listeners_see_each_statement_and_errors_are_sqlalchemys(
    database: Database, table: Table
) -> None:
    """Statements run on the DBAPI cursor: the engine's cursor listeners still see each one
    (the benchmarks count with them), and a DBAPI error is SQLAlchemy's exception, the
    driver's own in ``orig``, the statement in ``statement``, as through ``execute``."""
    from sqlalchemy import event

    seen: list[tuple[str, str]] = []

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's, through the engine's begin hook
            seen.append(("before", statement.split()[0].upper()))

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith("BEGIN"):
            seen.append(("after", statement.split()[0].upper()))

    event.listen(database.engine, "before_cursor_execute", before)
    event.listen(database.engine, "after_cursor_execute", after)
    adding = Prepared(insert(table).values(id=bindparam("id"), n=1, label=bindparam("label")))
    reading = Prepared(select(table.c.n).where(table.c.label == bindparam("label")))
    try:
        with database.transaction() as session:
            assert adding.run(session, {"id": uuid.uuid4(), "label": "one"}) == 1
            assert reading.rows(session, {"label": "one"}) == [(1,)]
        assert seen == [("before", "INSERT"), ("after", "INSERT"),
                        ("before", "SELECT"), ("after", "SELECT")]  # fmt: skip
        with pytest.raises(IntegrityError) as raised, database.transaction() as session:
            adding.run(session, {"id": uuid.uuid4(), "label": "one"})
        dbapi = database.engine.dialect.loaded_dbapi
        assert isinstance(raised.value.orig, dbapi.IntegrityError)
        assert "INSERT INTO" in str(raised.value.statement)
        assert seen[-1] == ("before", "INSERT")  # no "after" for a statement that failed
    finally:
        event.remove(database.engine, "before_cursor_execute", before)
        event.remove(database.engine, "after_cursor_execute", after)
    with database.transaction(readonly=True) as session:  # the failed write changed nothing
        assert session.scalar(select(func.count()).where(table.c.label == "one")) == 1
