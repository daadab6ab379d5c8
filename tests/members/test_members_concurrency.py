"""Races between writers; PostgreSQL only (SQLite serialises writers with BEGIN IMMEDIATE)."""

from __future__ import annotations

import threading
import time

import pytest

from fidelia.db import Database
from fidelia.errors import Conflict
from fidelia.intake.enrolment import Enrolled, enrol
from fidelia.members.schemas import MemberCreate
from fidelia.models import Event, Member, Programme
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


@pytest.mark.postgres_only
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_two_concurrent_sends_of_one_enrolment_and_key_give_one_member_and_a_resend(
    database: Database, programme: Programme
) -> None:
    data = MemberCreate(email="twice@example.com", first_name="Twice")
    first = database.writer()
    first.begin()
    created = enrol(first, programme=programme, data=data, actor="t", idempotency_key="k-1")
    results: list[object] = []

    def second() -> None:
        try:
            with database.transaction() as session:
                results.append(
                    enrol(session, programme=programme, data=data, actor="t", idempotency_key="k-1")
                )
        except BaseException as exc:
            results.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)  # the second writer is now waiting on the unique index
    first.commit()
    first.close()
    thread.join(timeout=30)

    (again,) = results
    assert isinstance(again, Enrolled), again
    assert again.outcome.status == "duplicate"
    assert again.member.id == created.member.id
    assert count_rows(database, Member, Member.programme_id == programme.id) == 1
    assert count_rows(database, Event, Event.programme_id == programme.id) == 1
