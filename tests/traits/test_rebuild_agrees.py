"""The bulk rebuild (SQL) and the incremental path (intake) give the same traits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from fidelia.db import Database
from fidelia.demo import setup
from fidelia.traits.rebuild import rebuild
from tests.traits.conftest import differences, fresh, rebuilt, replay_incremental, snapshot

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Database, setup.DemoReport]]:
    from tests.conftest import dispose_database, new_database

    database, url = new_database(request.param, tmp_path_factory.mktemp("traits"))
    report = setup.build(database, members=100, seed=11, now=NOW)
    yield database, report
    dispose_database(database, url)


def test_the_rebuild_agrees_with_the_incremental_path_on_the_generated_year(
    demo: tuple[Database, setup.DemoReport],
) -> None:
    database, report = demo
    programme = report.programme

    replay_incremental(database, programme, now=NOW)
    incremental = snapshot(database, programme)
    rebuilt(database, programme, now=NOW, chunk=40)
    bulk = snapshot(database, programme)

    assert len(bulk) >= 100
    assert sum(1 for r in bulk.values() if r["purchases_count"]) > 60
    assert differences(incremental, bulk) == []


def test_chunks_built_by_parallel_connections_give_the_same_rows_and_leave_no_table(
    demo: tuple[Database, setup.DemoReport],
) -> None:
    database, report = demo
    programme = report.programme
    with database.transaction() as session:
        rebuild(session, programme=fresh(session, programme), now=NOW, chunk=30, workers=1)
    serial = snapshot(database, programme)
    with database.transaction() as session:
        rebuild(session, programme=fresh(session, programme), now=NOW, chunk=30, workers=2)
    parallel = snapshot(database, programme)

    assert sum(1 for r in serial.values() if r["rfm_cell"]) > 60
    assert differences(serial, parallel) == []
    if database.engine.dialect.name == "postgresql":
        with database.transaction(readonly=True) as session:
            left = session.scalars(
                text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'traits_rebuild_%'")
            ).all()
        assert left == []


def test_a_reader_sees_the_previous_rows_until_the_rebuild_commits(
    demo: tuple[Database, setup.DemoReport],
) -> None:
    database, report = demo
    programme = report.programme
    rebuilt(database, programme, now=NOW, chunk=40)
    before = snapshot(database, programme)
    later = NOW + timedelta(days=30)  # every recency changes: a row rebuilt or not shows
    with database.transaction() as session:
        rebuild(session, programme=fresh(session, programme), now=later, chunk=30, workers=2)
        during = snapshot(database, programme)
        assert differences(before, during) == []
    after = snapshot(database, programme)
    assert {r["windows_on"] for r in after.values()} == {later.date()}


def test_a_failed_parallel_rebuild_drops_its_table_and_keeps_the_rows(
    demo: tuple[Database, setup.DemoReport], monkeypatch: pytest.MonkeyPatch
) -> None:
    database, report = demo
    if database.engine.dialect.name != "postgresql":
        pytest.skip("the shared table of the parallel build is PostgreSQL's")
    programme = report.programme
    rebuilt(database, programme, now=NOW, chunk=40)
    before = snapshot(database, programme)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("fidelia.traits.rebuild._write", broken)
    with pytest.raises(RuntimeError, match="disk full"), database.transaction() as session:
        rebuild(session, programme=fresh(session, programme), now=NOW, chunk=30, workers=2)

    with database.transaction(readonly=True) as session:
        left = session.scalars(
            text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'traits_rebuild_%'")
        ).all()
    assert left == []
    assert differences(before, snapshot(database, programme)) == []
