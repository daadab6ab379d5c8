"""The first real data set: the CDNOW purchase log imported as purchase events."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.intake.imports import run_import
from fidelia.models import Event, Member, MemberIdentity, Programme

CDNOW = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdnow_master.txt"


def file_totals(path: Path) -> tuple[int, int, Decimal]:
    """Orders, customers and dollars, read straight from the file."""
    orders, customers, dollars = 0, set(), Decimal(0)
    for text in path.read_text(encoding="ascii").splitlines():
        cells = text.split()
        if len(cells) != 4 or not cells[0].isdigit():
            continue
        orders += 1
        customers.add(int(cells[0]))
        dollars += Decimal(cells[3])
    return orders, len(customers), dollars


@pytest.mark.skipif(not CDNOW.exists(), reason="the shared CDNOW file is not there")
def test_the_cdnow_log_imports_as_purchase_events(
    database: Database, programme_factory: object, tmp_path: Path
) -> None:
    programme: Programme = programme_factory(currency="USD", timezone="America/New_York")  # type: ignore[operator]
    orders, customers, dollars = file_totals(CDNOW)
    assert (orders, customers) == (69_659, 23_570)

    report = run_import(
        database,
        programme_id=programme.id,
        path=CDNOW,
        kind="events",
        fmt="cdnow",
        chunk_size=1000,
        enrol_unknown="active",
        rejects_path=tmp_path / "rejects.csv",
    )

    assert (report.accepted, report.duplicates, report.rejected) == (69_659, 0, 0)
    mine = Event.programme_id == programme.id
    with database.transaction(readonly=True) as session:
        events = session.scalar(select(func.count()).where(mine, Event.type == "purchase"))
        members = session.scalar(
            select(func.count()).where(
                Member.programme_id == programme.id, Member.status == "active"
            )
        )
        namespaces = set(
            session.scalars(
                select(MemberIdentity.namespace).where(MemberIdentity.programme_id == programme.id)
            )
        )
        totals = session.scalars(select(Event.properties["total"].as_string()).where(mine))
        imported = sum((Decimal(t) for t in totals), Decimal(0))
    assert events == 69_659
    assert members == 23_570
    assert namespaces == {"cdnow"}
    assert imported == dollars
