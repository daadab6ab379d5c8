"""The outbox: notices written in the caller's transaction, positions given after commit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from fidelia.db import Database
from fidelia.models import Notification, Programme
from fidelia.notices import Notice, after_position, record_many, sequence

AT = datetime(2030, 1, 1, 12, tzinfo=UTC)


def feed(database: Database, programme: Programme, after: int = 0) -> list[Notification]:
    sequenced = True
    while sequenced:  # the test database holds other tests' notices: sequence them all
        with database.transaction() as session:
            sequenced = sequence(session) > 0
    with database.transaction(readonly=True) as session:
        return after_position(session, programme_id=programme.id, after=after, limit=100)


def test_record_many_writes_one_row_per_notice_with_jsonable_payloads(
    database: Database, programme: Programme
) -> None:
    member = uuid.uuid4()
    with database.transaction() as session:
        n = record_many(
            session,
            programme.id,
            [
                Notice("points.earned", member, AT, {"points": 120, "amount": Decimal("12.50")}),
                Notice("tier.changed", member, AT, {"from": None, "to": "gold"}),
            ],
        )
    assert n == 2
    rows = feed(database, programme)
    assert [r.type for r in rows] == ["points.earned", "tier.changed"]
    assert rows[0].payload == {"points": 120, "amount": "12.50"}
    assert rows[0].member_id == member
    assert rows[0].position is not None
    assert rows[1].position == rows[0].position + 1


def test_a_rolled_back_transaction_leaves_no_notice(
    database: Database, programme: Programme
) -> None:
    def change() -> None:
        with database.transaction() as session:
            record_many(session, programme.id, [Notice("member.enrolled", None, AT, {})])
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        change()
    assert feed(database, programme) == []


def test_a_badly_named_type_is_refused(database: Database, programme: Programme) -> None:
    with pytest.raises(ValueError, match="dotted"), database.transaction() as session:
        record_many(session, programme.id, [Notice("Points Earned", None, AT, {})])


def test_feed_never_skips_a_notice_committed_after_a_later_one(
    database: Database, programme: Programme
) -> None:
    """Transaction A writes first but commits last: a reader that has passed B's position
    still gets A's notice on its next page (the position is given after commit)."""
    if database.engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers; commits cannot be out of order")
    first = database.writer()
    first.begin()
    record_many(first, programme.id, [Notice("points.earned", None, AT, {"n": "A"})])
    first.flush()
    with database.transaction() as session:  # B, inserted after A, commits first
        record_many(session, programme.id, [Notice("points.earned", None, AT, {"n": "B"})])
    page = feed(database, programme)
    assert [r.payload["n"] for r in page] == ["B"]
    cursor = page[-1].position
    assert cursor is not None
    first.commit()
    first.close()
    later = feed(database, programme, after=cursor)
    assert [r.payload["n"] for r in later] == ["A"]
    with database.transaction(readonly=True) as session:
        seqs = dict(
            session.execute(
                select(Notification.payload["n"].as_string(), Notification.seq).where(
                    Notification.programme_id == programme.id
                )
            ).all()
        )
    assert seqs["A"] < seqs["B"]  # inserted first, positioned last
