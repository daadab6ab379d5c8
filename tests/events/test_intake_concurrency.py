"""Two writers sending the same thing at once; PostgreSQL only (SQLite serialises writers)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from fidelia.db import Database
from fidelia.events.schemas import EventOutcome
from fidelia.intake import service as intake
from fidelia.models import Event, Member, Programme
from tests.fixtures.events import event, purchase
from tests.fixtures.factories import count_rows

PG_ONLY = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


def race(database: Database, programme: Programme, payloads: list[dict[str, Any]]) -> list[Any]:
    """Ingest ``payloads`` in a first transaction left open while a second writer ingests the
    same payloads, then commit the first: the second must wait and then see the first's rows."""
    first = database.writer()
    first.begin()
    first_outcomes = intake.ingest_payloads(first, programme=programme, payloads=payloads)
    results: list[Any] = []

    def second() -> None:
        try:
            with database.transaction() as session:
                results.append(
                    intake.ingest_payloads(session, programme=programme, payloads=payloads)
                )
        except BaseException as exc:
            results.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)  # the second writer is now waiting on a unique index
    first.commit()
    first.close()
    thread.join(timeout=30)
    return [first_outcomes, *results]


@pytest.mark.postgres_only
@PG_ONLY
def test_the_same_event_sent_twice_at_once_is_stored_once(
    database: Database, programme: Programme, member_factory: Callable[..., Member]
) -> None:
    member = member_factory()
    payload = purchase({"id": str(member.id)})

    first, second = race(database, programme, [payload])

    assert isinstance(second, list)
    assert first[0].status == "accepted"
    assert second[0].status == "duplicate"
    assert second[0].event_id == first[0].event_id
    assert count_rows(database, Event, Event.programme_id == programme.id) == 1


@pytest.mark.postgres_only
@PG_ONLY
def test_two_events_enrolling_the_same_prospect_at_once_give_one_member(
    database: Database, programme_factory: Callable[..., Programme]
) -> None:
    programme = programme_factory(settings={"unknown_member": "enrol_prospect"})
    first_payload = event("page_view", {"email": "race@example.com"})
    second_payload = event("page_view", {"email": "race@example.com"})

    first = database.writer()
    first.begin()
    (one,) = intake.ingest_payloads(first, programme=programme, payloads=[first_payload])
    results: list[Any] = []

    def second() -> None:
        try:
            with database.transaction() as session:
                results.extend(
                    intake.ingest_payloads(session, programme=programme, payloads=[second_payload])
                )
        except BaseException as exc:
            results.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)
    first.commit()
    first.close()
    thread.join(timeout=30)

    (two,) = results
    assert isinstance(two, EventOutcome)
    assert two.status == "accepted"
    assert two.member_id == one.member_id
    assert two.member_created is False
    assert count_rows(database, Member, Member.programme_id == programme.id) == 1
    assert count_rows(database, Event, Event.programme_id == programme.id) == 2
