"""Races between writers; PostgreSQL only (SQLite serialises writers with BEGIN IMMEDIATE)."""

from __future__ import annotations

import threading
import time

import pytest

from fidelia.db import Database
from fidelia.errors import Conflict
from fidelia.members.enrolment import enrol
from fidelia.members.schemas import MemberCreate
from fidelia.models import Member, Programme
from tests.fixtures.factories import count_rows


@pytest.mark.postgres_only
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_two_concurrent_enrolments_of_one_email_give_one_member_and_one_conflict(
    database: Database, programme: Programme
) -> None:
    first = database.writer()
    first.begin()
    enrol(first, programme=programme, data=MemberCreate(email="race@example.com"), actor="t")
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with database.transaction() as session:
                enrol(
                    session, programme=programme, data=MemberCreate(email="race@x.com"), actor="t"
                )
                enrol(
                    session,
                    programme=programme,
                    data=MemberCreate(email="RACE@example.com"),
                    actor="t",
                )
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)  # the second writer is now waiting on the unique index
    first.commit()
    first.close()
    thread.join(timeout=30)

    assert len(errors) == 1
    assert isinstance(errors[0], Conflict)
    assert errors[0].fields[0].loc == ("email",)
    assert count_rows(database, Member, Member.programme_id == programme.id) == 1
