"""The bulk rebuild (SQL) and the incremental path (intake) give the same traits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from fidelia.db import Database
from fidelia.demo import setup
from tests.traits.conftest import differences, rebuilt, replay_incremental, snapshot

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
