"""Keeping memberships current: after each group of events, and by the daily sweep.

Design note
-----------
- After events (:func:`apply_events`, called by the intake in the events' own transaction,
  after the traits update): only the segments whose inputs an event of the group can change
  are re-evaluated (:func:`affected`), for the group's members only, with **one** SELECT that
  compiles every affected segment's condition for those members (their aggregates restricted
  to them) next to their current memberships. Nothing is written unless someone enters or
  leaves; then one INSERT per table and one DELETE per segment left.
- Time-driven conditions ("no purchase for 90 days", windows sliding, traits recomputed
  overnight) and changes that come from no event (expiry, tier reviews, a merge) are caught by
  :func:`sweep`: every segment for the whole population, set-based (the matching ids minus the
  current members, and the reverse), daily and after a new document version.
- Every entry and exit is a ``segment_changes`` row (time, cause, event) written in the same
  transaction as the membership: the history, and the ordered feed of ``segment_entered`` /
  ``segment_left`` internal events (by ``seq``) that scenarios consume.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, exists, select
from sqlalchemy.orm import Session

from fidelia.kit.bulk import insert_rows
from fidelia.kit.conditions import condition_fields
from fidelia.models import Base, Programme, SegmentMember
from fidelia.notices import Notice, record_many
from fidelia.segments.compiler import OUTSIDE, Catalogue, SqlCompiler
from fidelia.segments.schemas import SegmentDef
from fidelia.segments.service import catalogue_for, section_for

ENTERED, LEFT = "segment_entered", "segment_left"
PROFILE_EVENTS = frozenset({"enrolment", "profile_updated", "consent_changed"})
_CHUNK = 10_000
MEMBERS = Base.metadata.tables["segment_members"]
CHANGES = Base.metadata.tables["segment_changes"]


@dataclass
class Report:
    segments: int = 0
    entered: int = 0
    left: int = 0
    seconds: float = 0.0


def affected(
    definitions: Sequence[SegmentDef], catalogue: Catalogue, event_types: Collection[str]
) -> list[SegmentDef]:
    """The segments an event of one of ``event_types`` can move a member in or out of.

    Profile, attributes, consents and identities change on enrolment, profile and consent
    events; an event of type T moves ``events.T.*``; purchases move categories and traits;
    any event may move balances, the tier and badges (rules award on any event)."""
    types = set(event_types)
    out = []
    for segment in definitions:
        for _, path in condition_fields(segment.condition):
            spec = catalogue.resolve(path)
            if _moves(spec.source, spec.key, types):
                out.append(segment)
                break
    return out


def _moves(source: str, key: str, types: set[str]) -> bool:
    if source in ("wallet", "tier", "badges"):
        return True
    if source in ("profile", "attributes", "consent", "identity"):
        return bool(types & PROFILE_EVENTS)
    if source == "events":
        return key in types
    return bool(types & {"purchase", "return"})  # categories and traits


def apply_events(
    session: Session,
    *,
    programme: Programme,
    events: Sequence[tuple[uuid.UUID, str, uuid.UUID | None]],
    now: datetime,
) -> Report:
    """Re-evaluate a group's members after their events, ``(member_id, event type, event id)``
    each, in the events' transaction (see the module's note)."""
    section = section_for(session, programme)
    if section is None or not section.definitions or not events:
        return Report()
    catalogue = catalogue_for(session, programme)
    segments = affected(section.definitions, catalogue, {kind for _, kind, _ in events})
    if not segments:
        return Report()
    last: dict[uuid.UUID, uuid.UUID | None] = {}
    for member_id, _, event_id in events:
        last[member_id] = event_id
    return evaluate_members(
        session,
        programme=programme,
        segments=segments,
        catalogue=catalogue,
        member_ids=list(last),
        now=now,
        cause="event",
        event_ids=last,
    )


_STATEMENTS: dict[tuple[Any, ...], tuple[Any, SqlCompiler]] = {}
_LOCK = threading.Lock()
# traits computed from ``now`` in SQL (fidelia.traits.fields): a statement reading them is
# built for each evaluation instead of being kept
NOW_TRAITS = frozenset(
    {"traits.recency_days", "traits.days_since_first_purchase", "traits.days_to_next_purchase"}
)


def evaluate_members(
    session: Session,
    *,
    programme: Programme,
    segments: Sequence[SegmentDef],
    catalogue: Catalogue,
    member_ids: Sequence[uuid.UUID],
    now: datetime,
    cause: str,
    event_ids: Mapping[uuid.UUID, uuid.UUID | None] | None = None,
) -> Report:
    """Re-evaluate ``segments`` for some members in one SELECT; write only what changed.

    The statement is built once per (programme version, segments) with the instants and the
    member ids as parameters, and kept."""
    dialect = session.get_bind().dialect.name
    codes = tuple(s.code for s in segments)
    key = (programme.id, programme.live_version, codes, dialect)
    with _LOCK:
        found = _STATEMENTS.get(key)
    if found is None:
        found = _group_statement(programme, segments, catalogue, now, dialect)
        if not any(p in NOW_TRAITS for s in segments for _, p in condition_fields(s.condition)):
            with _LOCK:
                if len(_STATEMENTS) > 512:
                    _STATEMENTS.clear()
                _STATEMENTS[key] = found
    query, compiler = found
    entered: dict[str, list[uuid.UUID]] = {}
    left: dict[str, list[uuid.UUID]] = {}
    for row in session.execute(query, compiler.params(now, member_ids)):
        for i, code in enumerate(codes):
            now_in, was_in = row[1 + 2 * i], row[2 + 2 * i]
            if now_in and not was_in:
                entered.setdefault(code, []).append(row[0])
            elif was_in and not now_in:
                left.setdefault(code, []).append(row[0])
    return record(
        session,
        programme=programme,
        entered=entered,
        left=left,
        now=now,
        cause=cause,
        event_ids=event_ids,
        segments=len(segments),
    )


def _group_statement(
    programme: Programme,
    segments: Sequence[SegmentDef],
    catalogue: Catalogue,
    now: datetime,
    dialect: str,
) -> tuple[Any, SqlCompiler]:
    """``SELECT id, <in segment i now>, <was in segment i>...`` for a group of members."""
    compiler = SqlCompiler(
        programme_id=programme.id,
        catalogue=catalogue,
        now=now,
        dialect=dialect,
        member_ids=(),
        parametric=True,
    )
    compiler.prepare(*(s.condition for s in segments))
    m, sm = compiler.m, SegmentMember.__table__
    allowed = m.c.status.not_in(OUTSIDE)
    columns = []
    for segment in segments:
        columns.append(case((and_(allowed, compiler.add(segment.condition)), 1), else_=0))
        inside = exists().where(
            sm.c.programme_id == programme.id,
            sm.c.segment == segment.code,
            sm.c.member_id == m.c.id,
        )
        columns.append(case((inside, 1), else_=0))
    ids: Any = bindparam("member_ids", expanding=True)
    query = (
        select(m.c.id, *columns)
        .select_from(compiler.select_from())
        .where(m.c.programme_id == programme.id, m.c.id.in_(ids))
    )
    return query, compiler


def sweep(
    session: Session,
    *,
    programme: Programme,
    now: datetime,
    codes: Collection[str] | None = None,
    cause: str = "sweep",
) -> Report:
    """Re-evaluate segments (all, or ``codes``) for the whole population, set-based; members
    of segments no longer in the document leave them."""
    started = time.perf_counter()
    section = section_for(session, programme)
    definitions = list(section.definitions) if section else []
    if codes is not None:
        definitions = [d for d in definitions if d.code in codes]
    catalogue = catalogue_for(session, programme)
    dialect = session.get_bind().dialect.name
    sm = SegmentMember.__table__
    entered: dict[str, list[uuid.UUID]] = {}
    left: dict[str, list[uuid.UUID]] = {}
    for segment in definitions:
        compiler = SqlCompiler(
            programme_id=programme.id, catalogue=catalogue, now=now, dialect=dialect
        )
        matching = compiler.members_query(segment.condition).subquery("matching")
        current = (
            select(sm.c.member_id)
            .where(sm.c.programme_id == programme.id, sm.c.segment == segment.code)
            .subquery("current")
        )
        # one pass: who matches and is not in, who is in and no longer matches (a FULL JOIN:
        # PostgreSQL hashes both sides; SQLite has it since 3.39)
        both = matching.join(current, matching.c.id == current.c.member_id, full=True)
        diff = select(matching.c.id, current.c.member_id).select_from(both)
        diff = diff.where((matching.c.id.is_(None)) | (current.c.member_id.is_(None)))
        for new, old in session.execute(diff):
            if old is None:
                entered.setdefault(segment.code, []).append(new)
            else:
                left.setdefault(segment.code, []).append(old)
    if codes is None:
        kept = {d.code for d in definitions}
        gone = session.scalars(
            select(sm.c.segment).where(sm.c.programme_id == programme.id).distinct()
        )
        for code in set(gone) - kept:
            left[code] = list(
                session.scalars(
                    select(sm.c.member_id).where(
                        sm.c.programme_id == programme.id, sm.c.segment == code
                    )
                )
            )
    report = record(
        session,
        programme=programme,
        entered=entered,
        left=left,
        now=now,
        cause=cause,
        segments=len(definitions),
    )
    report.seconds = time.perf_counter() - started
    return report


def _notice(session: Session, programme: Programme, changes: Sequence[Mapping[str, Any]]) -> None:
    """The changes as ``segment.entered`` / ``segment.left`` notices (webhooks, feed)."""
    rows = [
        Notice(
            f"segment.{c['kind'].removeprefix('segment_')}",
            c["member_id"],
            c["at"],
            {"segment": c["segment"], "cause": c["cause"], "event_id": c["event_id"]},
        )
        for c in changes
    ]
    record_many(session, programme.id, rows)


def record(
    session: Session,
    *,
    programme: Programme,
    entered: Mapping[str, Sequence[uuid.UUID]],
    left: Mapping[str, Sequence[uuid.UUID]],
    now: datetime,
    cause: str,
    event_ids: Mapping[uuid.UUID, uuid.UUID | None] | None = None,
    segments: int = 0,
) -> Report:
    """Write entries and exits: memberships and their history rows, set-based."""
    history: list[dict[str, object]] = []
    joined: list[dict[str, object]] = []
    events = event_ids or {}
    for kind, moves in ((ENTERED, entered), (LEFT, left)):
        for code in sorted(moves):
            for member_id in moves[code]:
                history.append(
                    {
                        "programme_id": programme.id, "member_id": member_id, "segment": code,
                        "kind": kind, "at": now, "cause": cause,
                        "event_id": events.get(member_id),
                    }
                )  # fmt: skip
                if kind == ENTERED:
                    joined.append(
                        {"programme_id": programme.id, "segment": code, "member_id": member_id,
                         "since": now}
                    )  # fmt: skip
    sm = MEMBERS
    for code, members in left.items():
        for i in range(0, len(members), _CHUNK):
            session.execute(
                delete(sm).where(
                    sm.c.programme_id == programme.id,
                    sm.c.segment == code,
                    sm.c.member_id.in_(list(members[i : i + _CHUNK])),
                )
            )
    for i in range(0, len(joined), _CHUNK):
        insert_rows(session, sm, joined[i : i + _CHUNK])
    for i in range(0, len(history), _CHUNK):
        insert_rows(session, CHANGES, history[i : i + _CHUNK])
        _notice(session, programme, history[i : i + _CHUNK])
    n_in = sum(len(v) for v in entered.values())
    return Report(segments=segments, entered=n_in, left=len(history) - n_in)
