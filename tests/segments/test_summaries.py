"""Per-member event summaries: kept by the intake exactly as the rebuild computes them from the
log (batches, late events, returns, repeated categories), read by the population compiler with
windows exact to the second, and a segment's first evaluation written without history."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from fidelia.cli.main import app
from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.kit.conditions import parse_condition
from fidelia.models import (
    Event,
    Member,
    Notification,
    Programme,
    SegmentChange,
    SegmentMember,
)
from fidelia.models.segment_summaries import EventSummary, SegmentBaseline
from fidelia.segments import summaries
from fidelia.segments.compiler import Catalogue, SqlCompiler
from fidelia.segments.evaluate import evaluate
from tests.fixtures.events import line, purchase, return_of, returned
from tests.fixtures.factories import Api, make_programme, unique_email
from tests.segments.conftest import apply, buy, document, enrol, segment

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _rows(database: Database, programme_id: uuid.UUID) -> list[tuple[Any, ...]]:
    s = EventSummary
    with database.transaction(readonly=True) as session:
        found = session.execute(
            select(s.member_id, s.type, s.category, s.day, s.n, s.last_at)
            .where(s.programme_id == programme_id)
            .order_by(s.member_id, s.type, s.category, s.day)
        )
        return [tuple(r) for r in found]


def test_the_intake_keeps_what_the_rebuild_computes(api: Api, database: Database) -> None:
    apply(api, document())
    member = enrol(api, unique_email())
    other = enrol(api, unique_email())
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    both = [line("a", 1, "5.00", category="cat-food"), line("b", 1, "5.00", category="cat-food"),
            line("c", 1, "5.00", category="dog-food"), line("d", 1, "5.00")]  # fmt: skip
    bought = purchase({"id": member}, lines=both, occurred_at=at)
    batch = [
        bought,
        purchase({"id": member}, lines=[line("e", 1, category="cat-food")], occurred_at=at),
        purchase({"id": other}, lines=[line("f", 1, category="toys")], occurred_at=at),
    ]
    response = api.post("/events/batch", json={"events": batch}, scope="integration")
    assert response.json()["accepted"] == 3, response.text
    late = at - timedelta(days=40, seconds=5)  # arrives after newer events
    buy(api, member, days_ago=(datetime.now(UTC) - late).total_seconds() / 86400, category="x")
    back = return_of({"id": member}, bought["properties"]["order_id"], [returned("a")],
                     occurred_at=at + timedelta(hours=1))  # fmt: skip
    assert api.post("/events", json=back, scope="integration").status_code == 201
    kept = _rows(database, api.programme.id)
    mid = uuid.UUID(member)
    mine = {(t, c, d): (n, last) for m, t, c, d, n, last in kept if m == mid}
    day = at.date()
    # one purchase with two cat-food lines counts once in cat-food; the batch's two purchases
    # of the day are one row of two
    assert mine[("purchase", "", day)][0] == 2
    assert mine[("purchase", "cat-food", day)][0] == 2
    assert mine[("purchase", "dog-food", day)][0] == 1
    assert mine[("return", "", day)] == (1, at + timedelta(hours=1))
    assert ("return", "cat-food", day) not in mine  # categories count purchases only
    assert mine[("purchase", "x", (at - timedelta(days=40, seconds=5)).date())][0] == 1
    with database.transaction() as session:
        summaries.rebuild(session, programme_id=api.programme.id)
    assert _rows(database, api.programme.id) == kept


def _write(session: Any, programme_id: uuid.UUID, when: list[tuple[datetime, str]]) -> uuid.UUID:
    member = Member(programme_id=programme_id, status="active", enrolment_channel="store",
                    enrolled_at=NOW - timedelta(days=500), attributes={})  # fmt: skip
    session.add(member)
    session.flush()
    for at, category in when:
        session.add(
            Event(
                programme_id=programme_id,
                idempotency_key=uuid.uuid4().hex,
                fingerprint="x",
                type="purchase",
                occurred_at=at,
                member_id=member.id,
                outcome={},
                properties={"lines": [{"sku": "s", "category": category}]},
            )
        )
    session.flush()
    return member.id


@pytest.mark.parametrize("seconds", [-1, 0, 1])
def test_windows_are_exact_at_their_start_instant(database: Database, seconds: int) -> None:
    """A window of 30 days starts at ``now`` minus 30 days to the second, inside a UTC day the
    summary holds whole: the population read (summaries) agrees with the group read (events)
    and Python on each side of it."""
    programme = make_programme(database)
    start = NOW - timedelta(days=30)
    with database.transaction() as session:
        edge = _write(session, programme.id, [(start + timedelta(seconds=seconds), "books")])
        inside = _write(session, programme.id, [(start + timedelta(hours=13), "books")])
        summaries.rebuild(session, programme_id=programme.id)
    catalogue = Catalogue(categories=frozenset({"books"}))
    raw = {"all": [{"field": "events.purchase.count_30d", "op": "gte", "value": 1},
                   {"field": "categories.books.count_30d", "op": "gte", "value": 1}]}  # fmt: skip
    cond = parse_condition(raw)
    dialect = database.engine.dialect.name
    with database.transaction(readonly=True) as session:
        population = SqlCompiler(
            programme_id=programme.id, catalogue=catalogue, now=NOW, dialect=dialect
        )
        by_summary = set(session.scalars(population.members_query(cond)))
        group = SqlCompiler(programme_id=programme.id, catalogue=catalogue, now=NOW,
                            dialect=dialect, member_ids=[edge, inside])  # fmt: skip
        by_events = set(session.scalars(group.members_query(cond)))
        by_python = {
            m.id
            for m in session.scalars(select(Member).where(Member.programme_id == programme.id))
            if evaluate(session, member=m, conditions={"c": cond}, catalogue=catalogue, now=NOW)
        }
    expected = {inside} | ({edge} if seconds >= 0 else set())
    assert by_summary == by_events == by_python == expected


def test_a_first_sweep_writes_members_and_a_baseline_not_history(
    api: Api, database: Database
) -> None:
    apply(api, document())
    buyers = [enrol(api, unique_email()) for _ in range(3)]
    for member in buyers[:2]:
        buy(api, member, days_ago=2, category="cat-food")
    buy(api, buyers[2], days_ago=50, category="cat-food")
    cats = segment("cats", {"field": "categories.cat-food.count_30d", "op": "gte", "value": 1})
    apply(api, document(cats))
    first = api.post("/segments/sweep", json={}).json()
    assert (first["entered"], first["left"]) == (2, 0)
    p = api.programme.id
    with database.transaction(readonly=True) as session:
        members = set(session.scalars(select(SegmentMember.member_id).where(
            SegmentMember.programme_id == p, SegmentMember.segment == "cats")))  # fmt: skip
        history = session.scalars(select(SegmentChange).where(SegmentChange.programme_id == p))
        notices = session.scalars(select(Notification.type).where(
            Notification.programme_id == p, Notification.type.like("segment.%")))  # fmt: skip
        baseline = session.get(SegmentBaseline, (p, "cats"))
        assert members == {uuid.UUID(m) for m in buyers[:2]}
        assert list(history) == []
        assert list(notices) == []
        assert baseline is not None
        assert baseline.members == 2
    counts = api.get("/segments/cats/counts?days=2", scope="read").json()
    assert [(c["members"], c["entered"]) for c in counts] == [(0, 0), (2, 2)]
    # from then on, moves are news: the third member enters with history, time takes all out
    buy(api, buyers[2], days_ago=1, category="cat-food")
    later = api.post("/segments/sweep", json={"at": "2099-01-01T00:00:00Z"}).json()
    assert (later["entered"], later["left"]) == (0, 3)
    feed = api.get("/segments/changes", scope="read").json()
    assert [(c["kind"], c["cause"]) for c in feed] == [
        ("segment_entered", "event"),
        *[("segment_left", "sweep")] * 3,
    ]


def test_fidelia_segments_summarise_rebuilds_from_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FIDELIA_DATABASE_URL", url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        made = runner.invoke(
            app, ["programme", "create", "shop", "--name", "S", "--currency", "EUR"]
        )
        assert made.exit_code == 0, made.output
        database = Database.from_url(url)
        try:
            with database.transaction() as session:
                shop = session.scalar(select(Programme).where(Programme.slug == "shop"))
                assert shop is not None
                _write(session, shop.id, [(NOW, "books"), (NOW - timedelta(days=2), "toys")])
            assert _rows(database, shop.id) == []  # written around the intake
            done = runner.invoke(app, ["segments", "summarise", "-p", "shop"])
            assert done.exit_code == 0, done.output
            assert json.loads(done.output)["rows"] == 4
            assert sorted((t, c, n) for _, t, c, _, n, _ in _rows(database, shop.id)) == [
                ("purchase", "", 1), ("purchase", "", 1), ("purchase", "books", 1),
                ("purchase", "toys", 1),
            ]  # fmt: skip
        finally:
            database.dispose()
    finally:
        get_settings.cache_clear()


@pytest.mark.postgres_only
@pytest.mark.parametrize("fresh_database", ["postgresql"], indirect=True)
def test_after_a_rebuild_the_summaries_are_vacuumed_for_index_only_reads(
    fresh_database: Database,
) -> None:
    def vacuums() -> int:
        with fresh_database.engine.connect() as conn:
            found = conn.execute(
                text("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = :t"),
                {"t": "event_summaries"},
            ).scalar_one()
            return int(found)

    before = vacuums()
    summaries.vacuum(fresh_database.engine)
    deadline = time.monotonic() + 10  # the statistics collector reports a little later
    while vacuums() == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert vacuums() == before + 1
