"""Merges under concurrency, on PostgreSQL: threads, each with its own transaction."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.errors import FideliaError
from fidelia.events.schemas import EventOutcome
from fidelia.intake import service as intake
from fidelia.merges import service as merges
from fidelia.models import Event, Member, MemberMerge, Programme
from tests.fixtures.events import line, purchase
from tests.fixtures.factories import Api, make_member
from tests.merges.conftest import assert_verified, balance, status

pytestmark = pytest.mark.postgres_only

EARN = {"rules": [{"id": "base", "name": "1 € = 1 point", "award": {"kind": "spend", "rate": 1}}]}


def _in_threads(n: int, work: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    outcomes: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = work(i)
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


def _merge(database: Database, programme: Programme, into: uuid.UUID, frm: uuid.UUID) -> Any:
    with database.transaction() as session:
        return merges.merge(
            session, programme=programme, survivor_id=into, duplicate_id=frm, actor="race"
        ).id


def _earning(api: Api, database: Database) -> tuple[Member, Member]:
    assert api.put("/programme/document", json=EARN).is_success
    older = make_member(database, api.programme, card="EC4000001")
    newer = make_member(database, api.programme, email="race@example.org")
    for who in ({"card": "EC4000001"}, {"email": "race@example.org"}):
        sent = api.post(
            "/events", json=purchase(who, lines=[line("s", 1, "25.00")]), scope="integration"
        )
        assert sent.is_success, sent.text
    return older, newer


@pytest.mark.parametrize("crossed", [False, True], ids=["same", "crossed"])
def test_two_merges_of_the_same_members_at_once(
    api: Api, database: Database, backend: str, crossed: bool
) -> None:
    if backend != "postgresql":
        pytest.skip("races are proven on PostgreSQL")
    older, newer = _earning(api, database)
    pairs = [(older.id, newer.id), (newer.id, older.id) if crossed else (older.id, newer.id)]

    outcomes = _in_threads(2, lambda i: _merge(database, api.programme, *pairs[i]))

    won = [o for o in outcomes if isinstance(o, uuid.UUID)]
    lost = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(won) == 1, outcomes
    assert len(lost) == 1
    assert isinstance(lost[0], FideliaError)
    assert lost[0].status_code == 409
    with database.transaction(readonly=True) as session:
        record = session.get(MemberMerge, won[0])
        assert record is not None
        survivor, duplicate = record.survivor_id, record.duplicate_id
        merged = session.scalar(
            select(func.count())
            .select_from(MemberMerge)
            .where(MemberMerge.programme_id == api.programme.id)
        )
    assert merged == 1
    assert status(database, duplicate) == "merged"
    assert balance(database, survivor) == (50, 0)
    assert balance(database, duplicate) == (0, 0)
    assert_verified(database, api.programme)


def test_purchases_during_a_merge_end_on_the_survivor(
    api: Api, database: Database, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("races are proven on PostgreSQL")
    older, newer = _earning(api, database)

    def work(i: int) -> Any:
        if i == 0:
            return _merge(database, api.programme, older.id, newer.id)
        who = {"email": "race@example.org"} if i % 2 else {"id": str(newer.id)}
        payload = purchase(who, lines=[line("s", 1, "10.00")])
        with database.transaction() as session:
            programme = session.get(Programme, api.programme.id)  # with its live version
            assert programme is not None
            [outcome] = intake.ingest_payloads(session, programme=programme, payloads=[payload])
        return outcome

    outcomes = _in_threads(7, work)

    assert isinstance(outcomes[0], uuid.UUID), outcomes[0]
    accepted = [o for o in outcomes[1:] if isinstance(o, EventOutcome)]
    assert [o.status for o in accepted] == ["accepted"] * 6, outcomes
    with database.transaction(readonly=True) as session:
        events = session.scalar(select(func.count()).where(Event.member_id == newer.id))
        theirs = session.scalar(select(func.count()).where(Event.member_id == older.id))
    assert (events, theirs) == (0, 2 + 6)
    assert balance(database, newer.id) == (0, 0)
    assert balance(database, older.id) == (25 + 25 + 6 * 10, 0)
    assert_verified(database, api.programme)
