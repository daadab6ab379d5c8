"""Plain waits start set-based: the journeys due at a duration or local-time wait move to the
next step with the wait's end as due time and a step run each, in a fixed number of statements
whatever their number; the walk takes them on from there."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, event, func, select, update

from fidelia.db import Database
from fidelia.kit.bulk import insert_rows
from fidelia.kit.ids import uuid7
from fidelia.models import Base, Programme
from fidelia.models.scenarios import ScenarioJourney, ScenarioStepRun
from fidelia.scenarios import engine, entries
from fidelia.scenarios import service as scenarios
from tests.fixtures.factories import Api, make_member, make_programme
from tests.messaging.conftest import apply, messaging_doc

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Paris
WAITS = {
    "code": "waits",
    "name": "Waits",
    "entry": {"kind": "event", "event": "never_sent"},
    "holdout_percent": 0,
    "steps": [
        {"id": "two_days", "kind": "wait", "duration": {"days": 2}},
        {"id": "nine", "kind": "wait", "until_time": "09:00", "days": ["fri"]},
        {"id": "end", "kind": "exit"},
    ],
}


def _programme(api: Api) -> Programme:
    doc = messaging_doc()
    doc["scenarios"] = {"definitions": [WAITS]}
    apply(api, doc)
    return api.programme


def _place(database: Database, programme: Programme, n: int) -> list[uuid.UUID]:
    members = [make_member(database, programme) for _ in range(n)]
    rows = [
        {"id": uuid7(), "programme_id": programme.id, "scenario": "waits", "member_id": m.id,
         "entry_key": f"test:{m.id}", "version": 1, "holdout": False, "status": "active",
         "step": "two_days", "due_at": T0, "waiting": None, "visits": 0, "event": {},
         "entered_at": T0, "converted_at": None, "ended_at": None, "end_reason": None}
        for m in members
    ]  # fmt: skip
    with database.transaction() as session:
        insert_rows(session, Base.metadata.tables["scenario_journeys"], rows)
    return [r["id"] for r in rows]


def _advance(database: Database, programme: Programme, now: datetime) -> tuple[int, int]:
    """(journeys advanced, statements run)."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        section = scenarios.section_for(session, found)
        event.listen(database.engine, "before_cursor_execute", count)
        try:
            done, _ = engine.advance(session, programme=found, section=section, now=now)
            session.flush()
        finally:
            event.remove(database.engine, "before_cursor_execute", count)
    return done, len(seen)


def _journeys(database: Database, ids: list[uuid.UUID]) -> list[ScenarioJourney]:
    with database.transaction(readonly=True) as session:
        return list(session.scalars(select(ScenarioJourney).where(ScenarioJourney.id.in_(ids))))


def test_due_plain_waits_start_set_based_then_the_walk_ends_them(
    api: Api, database: Database
) -> None:
    programme = _programme(api)
    ids = _place(database, programme, 4)
    assert _advance(database, programme, T0)[0] == 4
    for journey in _journeys(database, ids):
        assert (journey.step, journey.visits, journey.status) == ("nine", 1, "active")
        assert journey.due_at == T0 + timedelta(days=2)
    assert _advance(database, programme, T0 + timedelta(days=1))[0] == 0  # not due yet
    assert _advance(database, programme, T0 + timedelta(days=2))[0] == 4
    friday_nine = datetime(2026, 3, 6, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
    for journey in _journeys(database, ids):
        assert (journey.step, journey.visits, journey.due_at) == ("end", 2, friday_nine)
    assert _advance(database, programme, friday_nine)[0] == 4
    for journey in _journeys(database, ids):
        assert (journey.status, journey.end_reason, journey.due_at) == (
            "completed",
            "exit step end",
            None,
        )
    with database.transaction(readonly=True) as session:
        runs = session.execute(
            select(ScenarioStepRun.step, ScenarioStepRun.visit, ScenarioStepRun.outcome)
            .where(ScenarioStepRun.journey_id == ids[0])
            .order_by(ScenarioStepRun.visit)
        ).all()
    assert [tuple(r) for r in runs] == [
        ("two_days", 0, "waiting"),
        ("nine", 1, "waiting"),
        ("end", 2, "exit"),
    ]


def test_starting_waits_costs_the_same_statements_for_3_or_30_journeys(
    api: Api, database: Database, api_factory: Any
) -> None:
    few = _programme(api)
    _place(database, few, 3)
    many = _programme(api_factory(make_programme(database)))
    _place(database, many, 30)
    done_few, statements_few = _advance(database, few, T0)
    done_many, statements_many = _advance(database, many, T0)
    assert (done_few, done_many) == (3, 30)
    assert statements_many == statements_few


def test_journeys_entered_and_those_stored_with_a_json_null_start_set_based(
    api: Api, database: Database
) -> None:
    """The entry path stores "waiting for no event" as SQL NULL; journeys stored before with
    a JSON ``null`` there are claimed by the set-based start too (not left to the walk)."""
    programme = _programme(api)
    ids = _place(database, programme, 2)
    member = make_member(database, programme)
    with database.transaction() as session:
        row = {"id": uuid7(), "programme_id": programme.id, "scenario": "waits",
               "member_id": member.id, "entry_key": "entered", "version": 1, "holdout": False,
               "status": "active", "step": "two_days", "due_at": T0, "waiting": None,
               "visits": 0, "event": {}, "entered_at": T0, "converted_at": None,
               "ended_at": None, "end_reason": None}  # fmt: skip
        entries.insert_ignore(session, [row])
        ids.append(row["id"])
        session.execute(
            update(ScenarioJourney).where(ScenarioJourney.id == ids[0]).values(waiting=JSON.NULL)
        )
        stored_null = session.scalar(
            select(func.count())
            .select_from(ScenarioJourney)
            .where(ScenarioJourney.id.in_(ids), ScenarioJourney.waiting.is_(None))
        )
    assert stored_null == 2  # the entered one and one placed; ids[0] holds JSON null
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        section = scenarios.section_for(session, found)
        started = engine.advance_waits(
            session, programme=found, section=section, now=T0, limit=1000
        )
    assert started == 3
    for journey in _journeys(database, ids):
        assert (journey.step, journey.visits, journey.waiting) == ("nine", 1, None)


def test_the_set_based_start_claims_the_oldest_due_first(api: Api, database: Database) -> None:
    programme = _programme(api)
    ids = _place(database, programme, 3)
    dues = [T0 - timedelta(minutes=1), T0 - timedelta(hours=2), T0 - timedelta(hours=1)]
    with database.transaction() as session:
        for journey_id, due in zip(ids, dues, strict=True):
            session.execute(
                update(ScenarioJourney).where(ScenarioJourney.id == journey_id).values(due_at=due)
            )
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        section = scenarios.section_for(session, found)
        started = engine.advance_waits(session, programme=found, section=section, now=T0, limit=2)
    assert started == 2
    steps = {j.id: j.step for j in _journeys(database, ids)}
    assert [steps[i] for i in ids] == ["two_days", "nine", "nine"]  # the latest due waits
