"""Who enters a scenario, read set-based from the feeds the other domains write.

Events and segment changes are read after a cursor (a time), every tick, again from
``OVERLAP`` before it: a row's id and time are given before its transaction commits, so a
slow transaction can commit a row older than one already read. Reading again is harmless:
a journey's ``entry_key`` (the event id, the change's seq, the day) is unique per scenario and
member, goals are recorded once and a wait for an event is left once. Date traits, inactivity
and schedules are read once per local day (or at the scheduled time).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fidelia.kit.ids import uuid7
from fidelia.models import (
    Account,
    Base,
    Event,
    Lot,
    Member,
    MemberTraits,
    Programme,
    SegmentChange,
    SegmentMember,
)
from fidelia.models.scenarios import ScenarioCursor, ScenarioJourney
from fidelia.scenarios import service
from fidelia.scenarios.schemas import (
    DateEntry,
    EventEntry,
    InactivityEntry,
    Scenario,
    ScenariosSection,
    ScheduleEntry,
    SegmentEntry,
    Wait,
    parse_local_time,
)

OVERLAP = timedelta(minutes=5)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass
class Candidate:
    scenario: Scenario
    member_id: uuid.UUID
    entry_key: str
    event: dict[str, Any]
    at: datetime


@dataclass
class Found:
    candidates: list[Candidate] = field(default_factory=list)


def cursor(session: Session, programme_id: uuid.UUID, feed: str) -> ScenarioCursor | None:
    return session.get(ScenarioCursor, (programme_id, feed), with_for_update=True)


def move(session: Session, programme_id: uuid.UUID, feed: str, position: str) -> None:
    row = session.get(ScenarioCursor, (programme_id, feed))
    if row is None:
        session.add(ScenarioCursor(programme_id=programme_id, feed=feed, position=position))
    else:
        row.position = position


def event_context(row: Any) -> dict[str, Any]:
    """What conditions read as ``event.*``: as rules do, plus ``categories`` and ``skus`` of a
    purchase's lines (``{field: event.categories, op: contains, value: kibble}``)."""
    properties = row.properties or {}
    lines = properties.get("lines") if isinstance(properties, dict) else None
    lines = [x for x in lines if isinstance(x, dict)] if isinstance(lines, list) else []
    return {
        "id": str(row.id),
        "type": row.type,
        "occurred_at": row.occurred_at.isoformat(),
        "channel": row.channel,
        "store": row.store,
        "reference": row.reference,
        "properties": properties,
        "categories": sorted({str(x["category"]) for x in lines if x.get("category")}),
        "skus": sorted({str(x["sku"]) for x in lines if x.get("sku")}),
    }


def scan_events(
    session: Session,
    programme: Programme,
    section: ScenariosSection,
    now: datetime,
    *,
    replay: bool = False,
) -> list[Candidate]:
    """Entries from events; goals reached and waits for an event ended by the same events.
    ``replay``: read by occurrence time, not reception (a history replayed, as the demo)."""
    live = [s for s in section.definitions if s.active]
    entries = {s.code: s for s in live if isinstance(s.entry, EventEntry)}
    types = {s.entry.event for s in entries.values() if isinstance(s.entry, EventEntry)}
    types |= {s.goal.event for s in live if s.goal is not None}
    types |= {
        st.until_event.event
        for s in live
        for st in s.steps
        if isinstance(st, Wait) and st.until_event is not None
    }
    if not types:
        return []
    at = cursor(session, programme.id, "events")
    first = EPOCH if replay else now - OVERLAP  # a replay reads the history from its start
    start = datetime.fromisoformat(at.position) if at else first
    clock = Event.occurred_at if replay else Event.received_at
    rows = session.execute(
        select(
            Event.id,
            Event.member_id,
            Event.type,
            Event.occurred_at,
            clock.label("read_at"),
            Event.channel,
            Event.store,
            Event.reference,
            Event.properties,
        )
        .where(
            Event.programme_id == programme.id,
            Event.type.in_(sorted(types)),
            clock > start - OVERLAP,
            clock <= now,
        )
        .order_by(clock, Event.id)
    ).all()
    rows = list(rows)
    if rows:
        move(session, programme.id, "events", max(start, rows[-1].read_at).isoformat())
    elif at is None:
        move(session, programme.id, "events", start.isoformat())
    tz = ZoneInfo(programme.timezone)
    found: list[Candidate] = []
    for row in rows:
        ctx = {"event": event_context(row)}
        for scenario in entries.values():
            entry = scenario.entry
            assert isinstance(entry, EventEntry)
            if row.type == entry.event and service.holds(entry.condition, ctx, tz):
                found.append(
                    Candidate(
                        scenario, row.member_id, f"event:{row.id}", ctx["event"], row.occurred_at
                    )
                )
    _goals_and_waits(session, programme, live, rows, tz, now)
    return found


def _goals_and_waits(
    session: Session,
    programme: Programme,
    live: list[Scenario],
    rows: list[Any],
    tz: ZoneInfo,
    now: datetime,
) -> None:
    by_member: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for row in rows:
        by_member[row.member_id].append(row)
    if not by_member:
        return
    scenarios = {s.code: s for s in live}
    members = sorted(by_member)
    journeys = session.scalars(
        select(ScenarioJourney)
        .where(
            ScenarioJourney.programme_id == programme.id,
            ScenarioJourney.member_id.in_(members),
            ScenarioJourney.scenario.in_(sorted(scenarios)),
            ScenarioJourney.converted_at.is_(None),
            ScenarioJourney.status.in_(("active", "completed")),
        )
        .with_for_update(skip_locked=True)
    ).all()
    for journey in journeys:
        scenario = scenarios[journey.scenario]
        for row in by_member[journey.member_id]:
            if f"event:{row.id}" == journey.entry_key or row.occurred_at < journey.entered_at:
                continue
            ctx = {"event": event_context(row)}
            goal = scenario.goal
            if (
                goal is not None
                and row.type == goal.event
                and row.occurred_at <= journey.entered_at + timedelta(seconds=goal.within.seconds())
                and service.holds(goal.condition, ctx, tz)
            ):
                journey.converted_at = row.occurred_at
                if journey.status == "active" and "goal" in scenario.exit_on:
                    journey.status, journey.ended_at, journey.end_reason = "converted", now, "goal"
                    journey.due_at = journey.waiting = None
                break
            waiting = journey.waiting
            if journey.status == "active" and waiting and waiting["event"] == row.type:
                step = scenario.step(waiting["wait"])
                if (
                    isinstance(step, Wait)
                    and step.until_event is not None
                    and row.occurred_at >= datetime.fromisoformat(waiting["since"])
                    and service.holds(step.until_event.condition, ctx, tz)
                ):
                    journey.step, journey.due_at, journey.waiting = waiting["then"], now, None
                    journey.event = {**journey.event, "matched": ctx["event"]}


def scan_segments(
    session: Session, programme: Programme, section: ScenariosSection, now: datetime
) -> list[Candidate]:
    wanted = {
        s.code: s for s in section.definitions if s.active and isinstance(s.entry, SegmentEntry)
    }
    if not wanted:
        return []
    at = cursor(session, programme.id, "segments")
    start = datetime.fromisoformat(at.position) if at else now - OVERLAP
    segments = {s.entry.segment for s in wanted.values() if isinstance(s.entry, SegmentEntry)}
    rows = session.execute(
        select(
            SegmentChange.seq,
            SegmentChange.member_id,
            SegmentChange.segment,
            SegmentChange.kind,
            SegmentChange.at,
        )
        .where(
            SegmentChange.programme_id == programme.id,
            SegmentChange.segment.in_(sorted(segments)),
            SegmentChange.at > start - OVERLAP,
            SegmentChange.at <= now,
        )
        .order_by(SegmentChange.at, SegmentChange.seq)
    ).all()
    move(session, programme.id, "segments", max([start, *(r.at for r in rows)]).isoformat())
    found = []
    for row in rows:
        for scenario in wanted.values():
            entry = scenario.entry
            assert isinstance(entry, SegmentEntry)
            kind = "segment_entered" if entry.change == "entered" else "segment_left"
            if row.segment == entry.segment and row.kind in (kind, entry.change):
                data = {"type": kind, "segment": row.segment, "occurred_at": row.at.isoformat()}
                found.append(Candidate(scenario, row.member_id, f"segment:{row.seq}", data, row.at))
    return found


def scan_daily(
    session: Session, programme: Programme, section: ScenariosSection, now: datetime
) -> list[Candidate]:
    """Date traits, inactivity and schedules: each scenario once per local day, at its time."""
    tz = ZoneInfo(programme.timezone)
    local = now.astimezone(tz)
    found: list[Candidate] = []
    for scenario in section.definitions:
        entry = scenario.entry
        if not scenario.active or isinstance(entry, (EventEntry, SegmentEntry)):
            continue
        at_text = "00:00" if isinstance(entry, InactivityEntry) else entry.at
        hour, minute = parse_local_time(at_text)
        if (local.hour, local.minute) < (hour, minute):
            continue
        feed = f"daily:{scenario.code}"
        done = cursor(session, programme.id, feed)
        today = local.date().isoformat()
        if done is not None and done.position >= today:
            continue
        move(session, programme.id, feed, today)
        if isinstance(entry, ScheduleEntry):
            found += _scheduled(session, programme, scenario, entry, local.date(), now)
        elif isinstance(entry, InactivityEntry):
            found += _inactive(session, programme, scenario, entry, now)
        else:
            found += _dated(session, programme, scenario, entry, local.date(), now)
    return found


def _active_members(session: Session, programme: Programme, segment: str | None) -> list[uuid.UUID]:
    query = select(Member.id).where(Member.programme_id == programme.id, Member.status == "active")
    if segment is not None:
        query = query.join(SegmentMember, SegmentMember.member_id == Member.id).where(
            SegmentMember.programme_id == programme.id, SegmentMember.segment == segment
        )
    return list(session.scalars(query.order_by(Member.id)))


def _scheduled(
    session: Session,
    programme: Programme,
    scenario: Scenario,
    entry: ScheduleEntry,
    today: date,
    now: datetime,
) -> list[Candidate]:
    first = entry.on
    if today < first:
        return []
    if entry.every_days is None and today != first:
        return []
    if entry.every_days is not None and (today - first).days % entry.every_days:
        return []
    data = {"type": "schedule", "on": today.isoformat()}
    key = f"schedule:{today.isoformat()}"
    return [
        Candidate(scenario, m, key, data, now)
        for m in _active_members(session, programme, entry.segment)
    ]


def _inactive(
    session: Session,
    programme: Programme,
    scenario: Scenario,
    entry: InactivityEntry,
    now: datetime,
) -> list[Candidate]:
    last = func.max(Event.occurred_at)
    rows = session.execute(
        select(Event.member_id, last)
        .join(Member, Member.id == Event.member_id)
        .where(
            Event.programme_id == programme.id, Event.type == entry.event, Member.status == "active"
        )
        .group_by(Event.member_id)
        .having(last < now - timedelta(days=entry.days))
    ).all()
    return [
        Candidate(
            scenario,
            member_id,
            f"inactive:{at.isoformat()}",
            {"type": "inactivity", "event": entry.event, "last_at": at.isoformat()},
            now,
        )
        for member_id, at in rows
    ]


def _dated(
    session: Session,
    programme: Programme,
    scenario: Scenario,
    entry: DateEntry,
    today: date,
    now: datetime,
) -> list[Candidate]:
    target = today + timedelta(days=entry.days_before)
    tz = ZoneInfo(programme.timezone)
    base = select(Member.id).where(Member.programme_id == programme.id, Member.status == "active")
    ids: list[uuid.UUID]
    if entry.trait == "birthday":
        rows = session.execute(
            base.add_columns(Member.birth_date).where(Member.birth_date.is_not(None))
        ).all()
        ids = [r[0] for r in rows if (r[1].month, r[1].day) == (target.month, target.day)]
    elif entry.trait == "enrolment_anniversary":
        rows = session.execute(base.add_columns(Member.enrolled_at)).all()
        ids = [r[0] for r in rows if _anniversary(r[1].astimezone(tz).date(), target)]
    elif entry.trait == "expected_next_purchase":
        start = datetime.combine(target, datetime.min.time(), tz)
        ids = list(
            session.scalars(
                base.join(MemberTraits, MemberTraits.member_id == Member.id).where(
                    MemberTraits.expected_next_purchase_at >= start,
                    MemberTraits.expected_next_purchase_at < start + timedelta(days=1),
                )
            )
        )
    else:  # points expiring within days_before
        end = datetime.combine(target, datetime.max.time(), tz)
        ids = list(
            session.scalars(
                select(Account.member_id)
                .join(Lot, Lot.account_id == Account.id)
                .join(Member, Member.id == Account.member_id)
                .where(
                    Lot.programme_id == programme.id,
                    Lot.remaining > 0,
                    Member.status == "active",
                    Lot.expires_at.is_not(None),
                    Lot.expires_at > now,
                    Lot.expires_at <= end,
                )
                .distinct()
            )
        )
    data = {"type": entry.trait, "on": target.isoformat()}
    return [Candidate(scenario, m, f"{entry.trait}:{today.isoformat()}", data, now) for m in ids]


def _anniversary(enrolled: date, target: date) -> bool:
    return enrolled.year < target.year and (enrolled.month, enrolled.day) == (
        target.month,
        target.day,
    )


def insert_ignore(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert journeys, skipping those whose entry key is already there (a feed read again)."""
    if not rows:
        return
    table = Base.metadata.tables["scenario_journeys"]
    dialect = session.get_bind().dialect.name
    maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(rows), 2000):
        session.execute(maker(table).on_conflict_do_nothing(), rows[start : start + 2000])


def new_row(
    programme: Programme, candidate: Candidate, holdout: bool, now: datetime
) -> dict[str, Any]:
    return {
        "id": uuid7(),
        "programme_id": programme.id,
        "scenario": candidate.scenario.code,
        "member_id": candidate.member_id,
        "entry_key": candidate.entry_key,
        "version": programme.live_version,
        "holdout": holdout,
        "status": "active",
        "step": candidate.scenario.steps[0].id,
        "due_at": now,
        "waiting": None,
        "visits": 0,
        "event": candidate.event,
        "entered_at": min(candidate.at, now),
        "converted_at": None,
        "ended_at": None,
        "end_reason": None,
    }
