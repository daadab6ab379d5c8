"""The demo's replay: a clean ledger; every tier, badge and reward kind reached; every RFM cell,
lifecycle stage and segment populated."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from fidelia.analytics import aggregates
from fidelia.db import Database
from fidelia.demo import setup
from fidelia.ledger.verify import verify
from fidelia.models import (
    Event,
    LedgerTransaction,
    Lot,
    MemberBadge,
    Programme,
    Redemption,
    Reward,
    TierChange,
)
from fidelia.models.segments import SegmentChange, SegmentMember
from fidelia.models.traits import MemberTraits
from fidelia.rules.demo import programme_document
from fidelia.segments import service as segments

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
HISTORY_END = datetime(2026, 11, 1, tzinfo=UTC)  # the generated year: November to October


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Database, setup.DemoReport]]:
    from tests.conftest import dispose_database, new_database

    database, url = new_database(request.param, tmp_path_factory.mktemp("demo"))
    report = setup.build(database, members=200, seed=7, now=NOW)
    yield database, report
    dispose_database(database, url)


def test_every_generated_event_goes_through_the_intake(
    demo: tuple[Database, setup.DemoReport],
) -> None:
    _, report = demo

    assert report.events > 3000
    assert report.rejected == 0
    assert report.accepted == report.events


def test_the_replay_leaves_the_ledger_verifiable(demo: tuple[Database, setup.DemoReport]) -> None:
    database, report = demo

    with database.transaction(readonly=True) as session:
        result = verify(session, programme_id=report.programme.id)

    assert result.problems == []
    assert result.transactions > report.events // 2


def test_the_demo_reaches_every_tier_badge_and_reward_kind(
    demo: tuple[Database, setup.DemoReport],
) -> None:
    database, report = demo
    document = programme_document()
    pid = report.programme.id

    with database.transaction(readonly=True) as session:
        tiers = set(
            session.scalars(
                select(TierChange.to_tier).distinct().where(TierChange.programme_id == pid)
            )
        )
        badges = set(
            session.scalars(
                select(MemberBadge.badge).distinct().where(MemberBadge.programme_id == pid)
            )
        )
        kinds = set(
            session.scalars(
                select(Reward.kind)
                .distinct()
                .join(Redemption, Redemption.reward_id == Reward.id)
                .where(Reward.programme_id == pid)
            )
        )

    assert tiers | {"bronze"} == {level["code"] for level in document["tiers"]["levels"]}
    assert badges == {badge["code"] for badge in document["badges"]}
    assert kinds == {reward["kind"] for reward in document["rewards"]}
    assert report.vouchers_used > 0


def test_the_demo_populates_every_rfm_cell_lifecycle_stage_and_segment(
    demo: tuple[Database, setup.DemoReport],
) -> None:
    database, report = demo
    document = programme_document()
    pid = report.programme.id

    with database.transaction(readonly=True) as session:
        cells = set(
            session.scalars(
                select(MemberTraits.rfm_cell).distinct().where(MemberTraits.programme_id == pid)
            )
        )
        stages = set(
            session.scalars(
                select(MemberTraits.lifecycle_stage)
                .distinct()
                .where(MemberTraits.programme_id == pid)
            )
        )
        segments = set(
            session.scalars(
                select(SegmentMember.segment).distinct().where(SegmentMember.programme_id == pid)
            )
        )

    assert cells - {None} == {cell["id"] for cell in document["traits"]["rfm"]["cells"]}
    assert stages == {stage["id"] for stage in document["traits"]["lifecycle"]}
    assert segments == {s["code"] for s in document["segments"]["definitions"]}


def test_the_demo_lives_through_its_year(demo: tuple[Database, setup.DemoReport]) -> None:
    """What the intake and the jobs stamp is dated through the year, not on the demo's day: the
    segments' history moves on many days and their counts over time rise; postings fall in
    every month of the history; events are received when they happen; the pending points of
    the history were released during it."""
    database, report = demo
    pid = report.programme.id

    with database.transaction(readonly=True) as session:
        programme = session.get_one(Programme, pid)
        moved = set(
            session.scalars(select(SegmentChange.at).where(SegmentChange.programme_id == pid))
        )
        posted = set(
            session.scalars(
                select(LedgerTransaction.posted_at).where(LedgerTransaction.programme_id == pid)
            )
        )
        late = max(
            received - occurred
            for occurred, received in session.execute(
                select(Event.occurred_at, Event.received_at).where(Event.programme_id == pid)
            )
        )
        pending = session.scalar(
            select(func.count()).where(Lot.programme_id == pid, Lot.pending > 0)
        )
        champions = segments.counts(
            session, programme=programme, code="champions", days=400, now=NOW
        )

    assert len({at.date() for at in moved}) > 100
    assert len({(at.year, at.month) for at in posted if at < HISTORY_END}) == 12
    assert timedelta(0) <= late < timedelta(days=1)
    assert pending == 0
    by_month = {row.day[:7]: row.members for row in champions}  # the last day's count wins
    assert by_month["2025-12"] < by_month["2026-04"] < by_month["2026-10"]


def test_the_demo_builds_the_dashboard_figures(demo: tuple[Database, setup.DemoReport]) -> None:
    database, report = demo
    with database.transaction(readonly=True) as session:
        programme = session.get_one(Programme, report.programme.id)
        assert aggregates.watermark(session, programme=programme) is not None
        assert aggregates.up_to_date(session, programme=programme)
