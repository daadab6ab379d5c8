"""Members many reviews behind are caught up in one step, with the results of reviewing them
pass after pass: the same tiers, review dates, grace and manual ends, engine states, history
rows and counts."""

from __future__ import annotations

import random
import typing
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Table, insert, select

from fidelia.db import Database
from fidelia.models import Member, MemberState, MemberTier, Programme, TierChange
from fidelia.programmes import documents
from fidelia.rules.state import MemberState as State
from fidelia.tiers import metrics as m
from fidelia.tiers import requalify as rq
from fidelia.tiers.service import section_for, tz_of
from tests.fixtures.factories import make_programme
from tests.tiers.conftest import document

PARIS = ZoneInfo("Europe/Paris")
AT = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
LEVELS = ["bronze", "silver", "gold"]


def _pass_by_pass(session: Any, programme: Programme, at: datetime, chunk: int) -> rq.Report:
    """The reference: every member due reviewed once per pass, the row written after each
    review, passes repeated while someone is still due (the requalification as it was)."""
    report = rq.Report()
    section = section_for(session, programme)
    assert section is not None
    passes = True
    while passes:
        passes, after = False, None
        while rows := rq._due(session, programme, at, after, chunk):
            after = rows[-1][0]
            out, dates = rq._Chunk(), rq._Dates(section, tz_of(programme))
            for row in rows:
                member_id, tier, source, review_at, manual_until, grace_until = row[:6]
                metrics, enrolled = row[6:]
                report.reviewed += 1
                current = section.rank(tier)
                manual_over = source == "manual" and manual_until is not None and manual_until <= at
                start, end, next_at = dates.of(
                    review_at, enrolled, manual_over or grace_until is not None
                )
                earned = m.qualified(section, m.totals(metrics, start, end))
                target = earned if manual_over else m.target_at_review(section, current, earned)
                passes = passes or (next_at is not None and next_at <= at)
                if (
                    target < current
                    and section.grace_days
                    and grace_until is None
                    and not (manual_over)
                ):
                    grace = review_at + timedelta(days=section.grace_days)
                    report.in_grace += 1
                    out.rows.append(rq._row(member_id, tier, source, grace, grace, manual_until))
                    continue
                if target == current and grace_until is None and not manual_over:
                    out.keep[next_at].append(member_id)
                    continue
                code = section.levels[target].code
                report.upgraded += target > current
                report.downgraded += target < current
                out.rows.append(rq._row(member_id, code, "metric", next_at, None, None))
                if code != tier:
                    got = m.totals(metrics, start, end)
                    out.changes.append(
                        rq._change(programme, member_id, tier, code, target > current, at, got)
                    )
            rq._write(session, programme, out)
    return report


def _metrics(rng: random.Random) -> dict[str, Any]:
    days: dict[str, list[Any]] = {}
    for _ in range(rng.randint(0, 40)):
        day = date(2018, 6, 1) + timedelta(days=rng.randrange(2550))
        p, s, sp = days.get(day.isoformat(), [0, "0", 0])
        spend = Decimal(rng.randrange(2000, 45000)) / 100
        days[day.isoformat()] = [p + 1, str(Decimal(s) + spend), sp + int(spend // 10)]
    life = [sum(v[0] for v in days.values()), str(sum(Decimal(v[1]) for v in days.values())),
            sum(v[2] for v in days.values())]  # fmt: skip
    return {"days": days, "life": life}


def _populate(database: Database, programme: Programme, seed: int, count: int) -> list[uuid.UUID]:
    """``count`` members a few years behind: on the metric, in a grace period, manually
    assigned (ended or not), at every level; the same for the same seed."""
    rng = random.Random(seed)
    with database.transaction() as session:
        section = section_for(session, session.get(Programme, programme.id))
    assert section is not None
    members, tiers, states, ids = [], [], [], []
    for _ in range(count):
        member_id = uuid.uuid4()
        ids.append(member_id)
        enrolled = datetime(2018, 1, 1, 9, tzinfo=UTC) + timedelta(days=rng.randrange(700))
        joined = enrolled.astimezone(PARIS).date()
        first = date(2020, 6, 1) + timedelta(days=rng.randrange(900))
        nxt = m.next_review(section, day=first, enrolled=joined)
        assert nxt is not None
        review_at: datetime | None = m.local_midnight(nxt, PARIS)
        tier, source = rng.choice(LEVELS), "metric"
        manual_until = grace_until = None
        kind = rng.choices(["metric", "grace", "manual", "manual_later"], [6, 2, 2, 1])[0]
        if kind == "grace" and section.grace_days:
            grace_until = review_at = datetime(2020, 6, 1, 15, tzinfo=UTC) + timedelta(
                days=rng.randrange(900)
            )
        elif kind.startswith("manual"):
            tier, source = rng.choice(["silver", "gold", "black"]), "manual"
            later = kind == "manual_later"
            manual_until = review_at = datetime(
                2027 if later else 2020, 6, 1, tzinfo=UTC
            ) + timedelta(hours=rng.randrange(20000))
        members.append({"id": member_id, "programme_id": programme.id, "status": "active",
                        "enrolment_channel": "import", "enrolled_at": enrolled, "attributes": {},
                        "created_at": enrolled, "updated_at": enrolled})  # fmt: skip
        tiers.append({"member_id": member_id, "programme_id": programme.id, "tier": tier,
                      "source": source, "since": enrolled, "review_at": review_at,
                      "manual_until": manual_until, "grace_until": grace_until,
                      "metrics": _metrics(rng), "updated_at": enrolled})  # fmt: skip
        if rng.random() < 0.9:  # some members have no engine state yet
            state = State(tier=tier).to_json()
            states.append({"member_id": member_id, "programme_id": programme.id, "state": state,
                           "updated_at": enrolled})  # fmt: skip
    with database.transaction() as session:
        for model, rows in ((Member, members), (MemberTier, tiers), (MemberState, states)):
            session.execute(insert(typing.cast(Table, model.__table__)), rows)
    return ids


def _outcome(database: Database, ids: list[uuid.UUID]) -> list[Any]:
    """Per member, in creation order: the tier row, the engine's tier, the history."""
    out = []
    with database.transaction(readonly=True) as session:
        for member_id in ids:
            row = session.get(MemberTier, member_id)
            assert row is not None
            state = session.get(MemberState, member_id)
            history = session.scalars(
                select(TierChange)
                .where(TierChange.member_id == member_id)
                .order_by(TierChange.at, TierChange.id)
            ).all()
            out.append((
                (row.tier, row.source, row.review_at, row.manual_until, row.grace_until),
                state.state.get("tier") if state is not None else None,
                [(c.from_tier, c.to_tier, c.reason, c.at, c.event_id, c.metric) for c in history],
            ))  # fmt: skip
    return out


def _programme(database: Database, tiers: dict[str, Any]) -> Programme:
    programme = make_programme(database)
    with database.transaction() as session:
        documents.apply(session, programme=programme, raw=document(**tiers), actor="test")
    return programme


@pytest.mark.parametrize(
    "tiers",
    [
        {"window": "rolling_12_months"},
        {"window": "rolling_12_months", "combine": "all", "grace_days": 40},
        {"window": "calendar_year", "downgrade": "recompute", "grace_days": 45},
        {"window": "anniversary", "grace_days": 20},
    ],
    ids=["rolling", "rolling-grace", "calendar-recompute-grace", "anniversary-grace"],
)
def test_catching_up_in_one_step_gives_what_pass_after_pass_gives(
    database: Database, tiers: dict[str, Any]
) -> None:
    reference, caught_up = _programme(database, tiers), _programme(database, tiers)
    old_ids = _populate(database, reference, seed=7, count=40)
    new_ids = _populate(database, caught_up, seed=7, count=40)

    with database.transaction() as session:
        expected = _pass_by_pass(session, session.get(Programme, reference.id), AT, chunk=16)
    with database.transaction() as session:
        got = rq.requalify(session, programme=session.get(Programme, caught_up.id), at=AT, chunk=16)

    counts = ("reviewed", "upgraded", "downgraded", "in_grace")
    assert [getattr(got, k) for k in counts] == [getattr(expected, k) for k in counts]
    assert got.reviewed > 2 * 40  # far behind: several reviews per member
    assert got.upgraded > 10
    assert got.downgraded > 10
    assert _outcome(database, new_ids) == _outcome(database, old_ids)
    with database.transaction(readonly=True) as session:  # nobody is left due
        due = session.scalars(
            select(MemberTier.member_id).where(
                MemberTier.programme_id == caught_up.id, MemberTier.review_at <= AT
            )
        ).all()
    assert due == []


def test_a_member_six_years_behind_gets_every_change_in_order(database: Database) -> None:
    programme = _programme(database, {"window": "calendar_year"})
    [member_id] = _populate(database, programme, seed=1, count=1)
    spend = {2019: "1200", 2022: "400", 2023: "1500"}  # nothing in 2020, 2021, 2024
    days = {f"{y}-05-01": [1, s, 0] for y, s in spend.items()}
    with database.transaction() as session:
        row = session.get(MemberTier, member_id)
        assert row is not None
        row.tier, row.source, row.manual_until, row.grace_until = "bronze", "metric", None, None
        row.review_at = datetime(2019, 12, 31, 23, tzinfo=UTC)  # 1 January 2020 in Paris
        row.metrics = {"days": days, "life": [3, "3100", 0]}

    with database.transaction() as session:
        report = rq.requalify(session, programme=session.get(Programme, programme.id), at=AT)

    assert (report.reviewed, report.upgraded, report.downgraded) == (6, 3, 3)
    [(tier_row, state_tier, history)] = _outcome(database, [member_id])
    assert tier_row[:3] == ("silver", "metric", datetime(2025, 12, 31, 23, tzinfo=UTC))
    assert state_tier == "silver"
    assert [(h[0], h[1], h[2], h[5]["spend"]) for h in history] == [
        ("bronze", "gold", "requalify_up", "1200"),  # 2019 judged on 1 January 2020
        ("gold", "silver", "requalify_down", "0"),  # one level down at most
        ("silver", "bronze", "requalify_down", "0"),
        ("bronze", "silver", "requalify_up", "400"),
        ("silver", "gold", "requalify_up", "1500"),
        ("gold", "silver", "requalify_down", "0"),  # 2024 judged on 1 January 2025
    ]
    assert {h[3] for h in history} == {AT}


def test_the_parsed_metric_sums_every_window_as_the_plain_sum_does() -> None:
    rng = random.Random(3)
    for _ in range(200):
        days = {
            (date(2023, 1, 1) + timedelta(days=rng.randrange(900))).isoformat(): [
                rng.randint(0, 3),
                rng.choice(["10", "12.5", "0.00", "-5.25", "199.99", "300"]),
                rng.randint(-5, 40),
            ]
            for _ in range(rng.randint(0, 12))
        }
        metrics = {"days": days, "life": [7, "123.45", 9]}
        daily = m.Daily.of(metrics)
        for _ in range(10):
            bounds = sorted(date(2022, 11, 1) + timedelta(days=rng.randrange(1000)) for _ in "ab")
            start = rng.choice([None, bounds[0]])
            end = rng.choice([None, bounds[1]])
            assert daily.totals(start, end).as_dict() == m.totals(metrics, start, end).as_dict()
