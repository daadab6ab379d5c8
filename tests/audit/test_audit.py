"""The audit log: entries recorded in the writer's transaction, read per programme."""

from __future__ import annotations

import uuid

import pytest

from fidelia.audit import service as audit
from fidelia.db import Database
from fidelia.errors import ValidationFailed
from fidelia.models import Programme


def test_entries_are_per_programme_newest_first_and_paged(
    database: Database, programme_factory: object
) -> None:
    mine, other = programme_factory(), programme_factory()  # type: ignore[operator]
    target = str(uuid.uuid4())
    with database.transaction() as session:
        for i in range(3):
            audit.record(
                session,
                programme_id=mine.id,
                actor="user:a@example.com",
                action="points.adjust",
                target_type="member",
                target_id=target if i < 2 else "someone-else",
                before={"available": str(i)},
                after={"available": str(i + 1)},
                reason=f"reason {i}",
            )
        audit.record(
            session, programme_id=other.id, actor="x", action="a", target_type="t", target_id=target
        )
    with database.transaction(readonly=True) as session:
        first, cursor = audit.entries(session, programme_id=mine.id, limit=2)
        rest, last = audit.entries(session, programme_id=mine.id, limit=2, cursor=cursor)
        about, _ = audit.entries(session, programme_id=mine.id, target_id=target)
    assert [e.reason for e in first + rest] == ["reason 2", "reason 1", "reason 0"]
    assert last is None
    assert [e.after for e in about] == [{"available": "2"}, {"available": "1"}]


def test_an_entry_rolls_back_with_the_write_it_describes(
    database: Database, programme: Programme
) -> None:
    def write_then_fail() -> None:
        with database.transaction() as session:
            audit.record(
                session,
                programme_id=programme.id,
                actor="x",
                action="a",
                target_type="t",
                target_id="1",
            )
            raise RuntimeError("the write failed")

    with pytest.raises(RuntimeError):
        write_then_fail()
    with database.transaction(readonly=True) as session:
        assert audit.entries(session, programme_id=programme.id)[0] == []
        with pytest.raises(ValidationFailed):
            audit.entries(session, programme_id=programme.id, cursor="not-a-cursor")


def test_a_body_with_nan_or_infinity_is_audited_as_sent(
    database: Database, programme: Programme
) -> None:
    """A JSON column cannot hold NaN or the infinities (PostgreSQL's jsonb refuses them): the
    audit keeps their literals, so that the write reaches the endpoint that says what is wrong
    with the value (it failed as a 500 before, on PostgreSQL)."""
    from fidelia.audit.requests import summary

    after = summary(b'{"value": NaN, "range": [Infinity, -Infinity], "n": 1.5}', "application/json")
    assert after == {"value": "NaN", "range": ["Infinity", "-Infinity"], "n": 1.5}
    with database.transaction() as session:
        audit.record(
            session,
            programme_id=programme.id,
            actor="x",
            action="POST /segments/preview",
            target_type="segments",
            target_id="",
            after=after,
        )
    with database.transaction(readonly=True) as session:
        assert audit.entries(session, programme_id=programme.id)[0][0].after == after
