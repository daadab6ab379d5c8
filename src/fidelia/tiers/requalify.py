"""Requalification: every member whose review is due gets the level their metric earned.

Design note
-----------
Each ``member_tiers`` row carries its own ``review_at`` (the end of its window, a grace end or
a manual end date), so one indexed range scan finds the members due, whatever the window. They
are judged in chunks in primary-key order (the member rows are locked in that order, as intake
locks them): one query reads a chunk with the enrolment dates, Python decides, and the writes
are grouped: one ``UPDATE ... WHERE member_id IN`` per new review date for the members whose
level stays, per-row updates only for the members who move, and their history rows inserted
together.

A member more than one review behind (a worker that was down, history imported years late) is
caught up in the same step: their reviews are applied one after the other in memory, each
judging its own window of the daily metric (which no review changes), and the row is written
once with the outcome of the last, next to the history rows of every change on the way. Once
a member holds the base level with no activity left to judge, the reviews still due can only
keep it: they are counted, not judged. The result is what reviewing the members pass after
pass would give (``tests/tiers/test_catch_up.py`` checks it); writing the same rows once per
pass instead left a dead row version per member and pass on PostgreSQL, and every pass of a
long catch-up slower than the one before.
"""

from __future__ import annotations

import time as clock
import typing
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Table,
    Text,
    Uuid,
    any_,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from fidelia.kit.ids import uuid7
from fidelia.models import Member, MemberTier, Programme, TierChange
from fidelia.models import MemberState as MemberStateRow
from fidelia.notices import Notice, record_many
from fidelia.rules.state import MemberState
from fidelia.tiers import metrics as m
from fidelia.tiers.schemas import TiersSection
from fidelia.tiers.service import section_for, tz_of

CHUNK = 5000


@dataclass
class Report:
    reviewed: int = 0
    upgraded: int = 0
    downgraded: int = 0
    in_grace: int = 0
    seconds: float = 0.0


@dataclass
class _Chunk:
    keep: dict[datetime | None, list[uuid.UUID]] = field(default_factory=lambda: defaultdict(list))
    rows: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Held:
    """What a review reads and leaves of a ``member_tiers`` row (its metric aside)."""

    tier: str
    source: str
    review_at: datetime | None
    manual_until: datetime | None
    grace_until: datetime | None


# a tier change made by a review: from, to, up, the metric of the window judged
_Move = tuple[str, str, bool, m.Totals]


def requalify(
    session: Session,
    *,
    programme: Programme,
    at: datetime,
    chunk: int = CHUNK,
    progress: Callable[[Report], None] | None = None,
) -> Report:
    """Review every member of ``programme`` whose review is due by ``at``, every review a
    member is behind included; ``progress`` is called after each chunk of members."""
    started = clock.perf_counter()
    report = Report()
    section = section_for(session, programme)
    if section is None:
        return report
    after = None
    while rows := _due(session, programme, at, after, chunk):
        after = rows[-1][0]
        _write(session, programme, _judge(section, programme, rows, at, report))
        if progress is not None:
            progress(report)
    report.seconds = clock.perf_counter() - started
    return report


def _due(
    session: Session, programme: Programme, at: datetime, after: uuid.UUID | None, chunk: int
) -> list[Any]:
    query = (
        select(
            MemberTier.member_id,
            MemberTier.tier,
            MemberTier.source,
            MemberTier.review_at,
            MemberTier.manual_until,
            MemberTier.grace_until,
            MemberTier.metrics,
            Member.enrolled_at,
        )
        .join(Member, Member.id == MemberTier.member_id)
        .where(MemberTier.programme_id == programme.id, MemberTier.review_at <= at)
        .order_by(MemberTier.member_id)
        .limit(chunk)
    )
    if after is not None:
        query = query.where(MemberTier.member_id > after)
    rows = list(session.connection().execute(query))  # plain rows: no ORM loading
    if rows and session.get_bind().dialect.name == "postgresql":
        ids = [r[0] for r in rows]
        session.execute(
            select(Member.id)
            .where(_in(session, Member.id, ids))
            .order_by(Member.id)
            .with_for_update()
        )
    return rows


def _judge(
    section: TiersSection, programme: Programme, rows: list[Any], at: datetime, report: Report
) -> _Chunk:
    """Every review each member is due by ``at``, in order, in memory; one write per member."""
    out, dates = _Chunk(), _Dates(section, tz_of(programme))
    for member_id, tier, source, review_at, manual_until, grace_until, metrics, enrolled in rows:
        held = _Held(tier, source, review_at, manual_until, grace_until)
        rewrite = False  # more than the review date changed: write the whole row
        daily = m.Daily.of(metrics)
        while held.review_at is not None and held.review_at <= at:
            if _quiet(dates, held, daily, enrolled):  # every review left keeps the level
                review_at, count = dates.quiet(held.review_at, enrolled, at)
                report.reviewed += count
                held = _Held(held.tier, held.source, review_at, held.manual_until, None)
                break
            held, whole, move = _review(section, dates, held, daily, enrolled, at, report)
            rewrite = rewrite or whole
            if move is not None:
                before, after, up, got = move
                out.changes.append(_change(programme, member_id, before, after, up, at, got))
        if rewrite:
            out.rows.append(_row(member_id, held.tier, held.source, held.review_at,
                                 held.grace_until, held.manual_until))  # fmt: skip
        else:
            out.keep[held.review_at].append(member_id)
    return out


def _quiet(dates: _Dates, held: _Held, daily: m.Daily, enrolled: datetime) -> bool:
    """Whether this review and every one after it keep the level: the member holds, on the
    metric, the level a window without activity earns, and has no activity from this review's
    window on (the window of a later review starts later)."""
    if held.source != "metric" or held.grace_until is not None:
        return False
    if dates.section.rank(held.tier) != dates.idle or held.review_at is None:
        return False
    start = dates.of(held.review_at, enrolled, False)[0]
    return start is not None and daily.quiet_from(start)


def _review(
    section: TiersSection,
    dates: _Dates,
    held: _Held,
    daily: m.Daily,
    enrolled: datetime,
    at: datetime,
    report: Report,
) -> tuple[_Held, bool, _Move | None]:
    """One review of one member: what it leaves, whether more than the review date changed,
    and the tier change it made (None: the tier stays)."""
    review_at = held.review_at
    assert review_at is not None
    report.reviewed += 1
    current = section.rank(held.tier)
    until = held.manual_until
    manual_over = held.source == "manual" and until is not None and until <= at
    # after a grace period or a manual assignment: judged on the window running now
    running = manual_over or held.grace_until is not None
    start, end, next_at = dates.of(review_at, enrolled, running)
    got = daily.totals(start, end)
    earned = dates.idle if got is m.NOTHING else m.qualified(section, got)
    target = earned if manual_over else m.target_at_review(section, current, earned)
    if target < current and section.grace_days and held.grace_until is None and not manual_over:
        grace = review_at + timedelta(days=section.grace_days)
        report.in_grace += 1
        return _Held(held.tier, held.source, grace, held.manual_until, grace), True, None
    if target == current and held.grace_until is None and not manual_over:
        return _Held(held.tier, held.source, next_at, held.manual_until, None), False, None
    code = section.levels[target].code
    report.upgraded += target > current
    report.downgraded += target < current
    move = (held.tier, code, target > current, got) if code != held.tier else None
    return _Held(code, "metric", next_at, None, None), True, move


@dataclass
class _Dates:
    """Windows and next reviews, computed once per review date (and enrolment date when the
    window is the membership anniversary): most members share them."""

    section: TiersSection
    tz: ZoneInfo
    seen: dict[tuple[Any, ...], tuple[Any, Any, datetime | None]] = field(default_factory=dict)
    runs: dict[tuple[Any, ...], tuple[datetime | None, int]] = field(default_factory=dict)
    idle: int = field(init=False)  # the level a window without activity earns

    def __post_init__(self) -> None:
        self.idle = m.qualified(self.section, m.NOTHING)

    def of(
        self, review_at: datetime, enrolled: datetime, running: bool
    ) -> tuple[Any, Any, datetime | None]:
        per_member = self.section.window == "anniversary"
        key = (review_at, enrolled if per_member else None, running)
        found = self.seen.get(key)
        if found is None:
            found = self.seen[key] = self._compute(review_at, enrolled, running)
        return found

    def quiet(
        self, review_at: datetime, enrolled: datetime, at: datetime
    ) -> tuple[datetime | None, int]:
        """The first review after ``at`` in the run of reviews from ``review_at`` (None: no
        more), and how many reviews the run holds up to ``at``."""
        per_member = self.section.window == "anniversary"
        key = (review_at, enrolled if per_member else None, at)
        found = self.runs.get(key)
        if found is None:
            nxt: datetime | None = review_at
            count = 0
            while nxt is not None and nxt <= at:
                count += 1
                nxt = self.of(nxt, enrolled, False)[2]
            found = self.runs[key] = (nxt, count)
        return found

    def _compute(
        self, review_at: datetime, enrolled: datetime, running: bool
    ) -> tuple[Any, Any, datetime | None]:
        section, tz = self.section, self.tz
        review, joined = review_at.astimezone(tz).date(), enrolled.astimezone(tz).date()
        if running:
            start, end = m.window(section, day=review, enrolled=joined)
        else:
            start, end = m.reviewed_window(section, review=review, enrolled=joined)
        nxt = m.next_review(section, day=review, enrolled=joined)
        return start, end, m.local_midnight(nxt, tz) if nxt is not None else None


def _row(
    member_id: uuid.UUID,
    tier: str,
    source: str,
    review_at: datetime | None,
    grace_until: datetime | None,
    manual_until: datetime | None,
) -> dict[str, Any]:
    return {
        "member_id": member_id,
        "tier": tier,
        "source": source,
        "review_at": review_at,
        "grace_until": grace_until,
        "manual_until": manual_until,
    }


def _change(
    programme: Programme,
    member_id: uuid.UUID,
    before: str,
    after: str,
    up: bool,
    at: datetime,
    got: m.Totals,
) -> dict[str, Any]:
    return {
        "programme_id": programme.id,
        "member_id": member_id,
        "from_tier": before,
        "to_tier": after,
        "reason": "requalify_up" if up else "requalify_down",
        "at": at,
        "event_id": None,
        "metric": got.as_dict(),
    }


def _write(session: Session, programme: Programme, chunk: _Chunk) -> None:
    """Grouped writes: one UPDATE per distinct outcome and slice of ids, never per member."""
    groups: dict[tuple[Any, ...], list[uuid.UUID]] = defaultdict(list)
    for review_at, ids in chunk.keep.items():
        groups[(("review_at", review_at),)].extend(ids)
    for row in chunk.rows:
        groups[tuple((k, v) for k, v in row.items() if k != "member_id")].append(row["member_id"])
    for values, ids in groups.items():
        for part in _slices(ids):
            session.execute(
                update(MemberTier)
                .where(_in(session, MemberTier.member_id, part))
                .values(dict(values))
                .execution_options(synchronize_session=False)
            )
    if chunk.changes:
        for change in chunk.changes:
            change["id"] = uuid7()
        session.execute(insert(typing.cast(Table, TierChange.__table__)), chunk.changes)
        _write_states(session, programme, {c["member_id"]: c["to_tier"] for c in chunk.changes})
        record_many(session, programme.id, [
            Notice("tier.changed", c["member_id"], c["at"],
                   {"from": c["from_tier"], "to": c["to_tier"], "reason": c["reason"]})
            for c in chunk.changes
        ])  # fmt: skip


def _in(session: Session, column: Any, ids: list[uuid.UUID]) -> Any:
    """``column IN ids``; on PostgreSQL ``= ANY(array)``: one parameter, not thousands."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(Uuid())))
    return column.in_(ids)


def _slices(ids: list[uuid.UUID], size: int = 1000) -> list[list[uuid.UUID]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _write_states(session: Session, programme: Programme, tiers: dict[uuid.UUID, str]) -> None:
    """``member_states.state["tier"]`` follows (the engine and rewards read it), set in SQL."""
    by_tier: dict[str, list[uuid.UUID]] = defaultdict(list)
    for member_id, tier in tiers.items():
        by_tier[tier].append(member_id)
    column = MemberStateRow.state
    postgres = session.get_bind().dialect.name == "postgresql"
    for tier, ids in by_tier.items():
        value = (
            func.jsonb_set(column, literal_column("ARRAY['tier']"), func.to_jsonb(cast(tier, Text)))
            if postgres
            else func.json_set(column, "$.tier", tier)
        )
        for part in _slices(ids):
            session.execute(
                update(MemberStateRow)
                .where(_in(session, MemberStateRow.member_id, part))
                .values(state=value)
                .execution_options(synchronize_session=False)
            )
    have: set[uuid.UUID] = set()
    for part in _slices(list(tiers)):
        have.update(
            session.scalars(
                select(MemberStateRow.member_id).where(_in(session, MemberStateRow.member_id, part))
            )
        )
    new = [
        {"member_id": k, "programme_id": programme.id, "state": MemberState(tier=t).to_json()}
        for k, t in tiers.items()
        if k not in have
    ]
    if new:
        session.execute(insert(MemberStateRow), new)
