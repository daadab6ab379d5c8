"""When an import refreshes the planner's statistics: only for the tables that grew much since
their last ANALYZE, read from the real tables of a database of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from fidelia.db import Database
from fidelia.intake import service as intake
from fidelia.intake.imports import ANALYSED, run_import, stale_tables
from fidelia.models import Programme
from tests.events.test_imports import event_lines, write_jsonl
from tests.fixtures.events import line, purchase
from tests.fixtures.factories import make_programme


def _stale(database: Database) -> list[str]:
    with database.transaction(readonly=True) as session:
        return stale_tables(session)


def _analyse(database: Database) -> None:
    with database.transaction() as session:
        session.execute(text(f"ANALYZE {', '.join(ANALYSED)}"))


def _purchases(database: Database, programme: Programme, cards: range, tag: str) -> None:
    """One purchase per card; unknown cards enrol a member."""
    payloads = [purchase({"card": f"C{n}"}, lines=[line("sku", 1, "12.50")]) for n in cards]
    with database.transaction() as session:
        fresh = session.get(Programme, programme.id)
        assert fresh is not None
        outcomes = intake.ingest_payloads(
            session, programme=fresh, payloads=payloads, enrol_unknown="active"
        )
    assert {o.status for o in outcomes} == {"accepted"}, tag


@pytest.mark.parametrize("fresh_database", ["postgresql"], indirect=True)
def test_only_the_tables_that_grew_much_since_their_statistics_are_analysed(
    fresh_database: Database,
) -> None:
    database = fresh_database
    programme = make_programme(database)
    assert _stale(database) == []  # empty tables: nothing to describe

    _purchases(database, programme, range(400), "new members")
    assert _stale(database) == list(ANALYSED)  # rows, never analysed

    _analyse(database)
    assert _stale(database) == []
    _purchases(database, programme, range(40), "a tenth more events")
    assert _stale(database) == []

    for part in range(5):  # more events than there were, for the same members
        first = part % 4 * 100
        _purchases(database, programme, range(first, first + 100), f"again {part}")
    assert _stale(database) == ["events"]

    _analyse(database)
    _purchases(database, programme, range(400, 1400), "members again and more")
    assert _stale(database) == list(ANALYSED)


@pytest.mark.parametrize("fresh_database", ["sqlite"], indirect=True)
def test_sqlite_imports_never_analyse(fresh_database: Database, tmp_path: Path) -> None:
    programme = make_programme(fresh_database)
    path = write_jsonl(tmp_path / "events.jsonl", event_lines(30))

    report = run_import(fresh_database, programme_id=programme.id, path=path, kind="events",
                        chunk_size=10, enrol_unknown="prospect")  # fmt: skip

    assert report.accepted == 30
    assert _stale(fresh_database) == []
    with fresh_database.transaction(readonly=True) as session:
        analysed = session.execute(
            text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        ).scalar_one()
    assert analysed == 0
