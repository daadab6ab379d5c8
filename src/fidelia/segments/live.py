"""Keeping memberships current: after each group of events, and by the daily sweep.

Design note
-----------
- After events (:func:`apply_events`, called by the intake in the events' own transaction,
  after the traits update): for each member, only the segments whose inputs that member's
  own events can change are re-evaluated (:func:`affected`; no statement at all when there
  are none); members needing the same segments share **one** SELECT that compiles those
  segments' conditions for them (their aggregates restricted to them) next to their current
  memberships. Nothing is written unless someone enters or leaves; then one INSERT per table
  and one DELETE per segment left.
- Time-driven conditions ("no purchase for 90 days", windows sliding, traits recomputed
  overnight) and changes that come from no event (expiry, tier reviews, a merge) are caught by
  :func:`sweep`: every segment for the whole population in one statement (one scan of the
  events), the moves computed and written in the database (temporary tables,
  ``INSERT ... SELECT``), daily and after a new document version.
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

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session

from fidelia.kit.bulk import insert_rows
from fidelia.kit.clock import utcnow
from fidelia.kit.conditions import condition_fields
from fidelia.kit.prepared import Prepared
from fidelia.models import Base, Programme, SegmentMember
from fidelia.notices import Notice, record_many
from fidelia.segments.compiler import OUTSIDE, Catalogue, SqlCompiler, evaluate_many
from fidelia.segments.schemas import SegmentDef
from fidelia.segments.service import catalogue_for, section_for

ENTERED, LEFT = "segment_entered", "segment_left"
PROFILE_EVENTS = frozenset({"enrolment", "profile_updated", "consent_changed"})
_CHUNK = 10_000
MEMBERS = Base.metadata.tables["segment_members"]
CHANGES = Base.metadata.tables["segment_changes"]
NOTICES = Base.metadata.tables["notifications"]
BASELINES = Base.metadata.tables["segment_baselines"]


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
    types: dict[uuid.UUID, set[str]] = {}
    last: dict[uuid.UUID, uuid.UUID | None] = {}
    for member_id, kind, event_id in events:
        types.setdefault(member_id, set()).add(kind)
        last[member_id] = event_id
    # per member: only the segments their own events can move; members needing the same
    # segments share one statement
    groups: dict[tuple[str, ...], tuple[list[SegmentDef], list[uuid.UUID]]] = {}
    for member_id, kinds in types.items():
        segments = _affected_cached(programme, section.definitions, catalogue, frozenset(kinds))
        if segments:
            key = tuple(s.code for s in segments)
            groups.setdefault(key, (segments, []))[1].append(member_id)
    report = Report()
    for segments, member_ids in groups.values():
        found = evaluate_members(
            session,
            programme=programme,
            segments=segments,
            catalogue=catalogue,
            member_ids=member_ids,
            now=now,
            cause="event",
            event_ids={m: last[m] for m in member_ids},
        )
        report.segments = max(report.segments, found.segments)
        report.entered += found.entered
        report.left += found.left
    return report


_AFFECTED: dict[tuple[Any, ...], list[SegmentDef]] = {}


def _affected_cached(
    programme: Programme,
    definitions: Sequence[SegmentDef],
    catalogue: Catalogue,
    types: frozenset[str],
) -> list[SegmentDef]:
    """:func:`affected`, kept per (programme version, event types)."""
    key = (programme.id, programme.live_version, types)
    with _LOCK:
        found = _AFFECTED.get(key)
    if found is None:
        found = affected(definitions, catalogue, types)
        with _LOCK:
            if len(_AFFECTED) > 1024:
                _AFFECTED.clear()
            _AFFECTED[key] = found
    return found


_STATEMENTS: dict[tuple[Any, ...], tuple[Prepared, SqlCompiler]] = {}
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
    single = len(member_ids) == 1
    key = (programme.id, programme.live_version, codes, dialect, single)
    with _LOCK:
        found = _STATEMENTS.get(key)
    if found is None:
        found = _group_statement(programme, segments, catalogue, now, dialect, single)
        if not any(p in NOW_TRAITS for s in segments for _, p in condition_fields(s.condition)):
            with _LOCK:
                if len(_STATEMENTS) > 512:
                    _STATEMENTS.clear()
                _STATEMENTS[key] = found
    query, compiler = found
    entered: dict[str, list[uuid.UUID]] = {}
    left: dict[str, list[uuid.UUID]] = {}
    # through the driver (kit.prepared): SQLAlchemy's execution of a statement with some 300
    # parameters cost more than SQLite running it; nothing flushed first, as before
    with session.no_autoflush:
        rows = query.rows(session, compiler.params(now, member_ids))
    for row in rows:
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
    single: bool,
) -> tuple[Prepared, SqlCompiler]:
    """``SELECT id, <in segment i now>, <was in segment i>...`` for a group of members."""
    compiler = SqlCompiler(
        programme_id=programme.id,
        catalogue=catalogue,
        now=now,
        dialect=dialect,
        member_ids=(),
        parametric=True,
        single=single,
    )
    compiler.prepare(*(s.condition for s in segments))
    m, sm = compiler.m, SegmentMember.__table__
    allowed = m.c.status.not_in(OUTSIDE)
    # the group's current memberships: one read by member (an EXISTS per segment let
    # PostgreSQL hash a whole segment's members when its statistics were stale)
    was = (
        select(
            sm.c.member_id,
            *(
                func.max(case((sm.c.segment == segment.code, 1), else_=0)).label(f"w{i}")
                for i, segment in enumerate(segments)
            ),
        )
        .where(compiler.of_members(sm.c.member_id))  # by member_id's index (the members are
        .group_by(sm.c.member_id)  # the programme's; a programme filter invites the primary key)
        .subquery("was")
    )
    columns: list[Any] = []
    for i, segment in enumerate(segments):
        columns.append(case((and_(allowed, compiler.add(segment.condition)), 1), else_=0))
        columns.append(func.coalesce(was.c[f"w{i}"], 0))
    query = (
        select(m.c.id, *columns)
        .select_from(compiler.select_from().outerjoin(was, was.c.member_id == m.c.id))
        .where(m.c.programme_id == programme.id, compiler.of_members(m.c.id))
    )
    return Prepared(query), compiler


def sweep(
    session: Session,
    *,
    programme: Programme,
    now: datetime,
    codes: Collection[str] | None = None,
    cause: str = "sweep",
) -> Report:
    """Re-evaluate segments (all, or ``codes``) for the whole population, set-based; members
    of segments no longer in the document leave them.

    One statement evaluates every segment for every member into a temporary table (one scan of
    the events for all of them); the moves are the differences with ``segment_members``,
    computed in the database; memberships, history and (on PostgreSQL) notices are written
    from them by ``INSERT ... SELECT`` / ``DELETE ... WHERE EXISTS``: no row travels through
    Python except SQLite's notices."""
    started = time.perf_counter()
    section = section_for(session, programme)
    definitions = list(section.definitions) if section else []
    if codes is not None:
        definitions = [d for d in definitions if d.code in codes]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":  # the grouped events of a whole population: hash in memory
        session.execute(text("SET LOCAL work_mem = '256MB'"))
    sm, p = MEMBERS, programme.id
    moves = _temporary(session, "tmp_segment_moves", _move_columns())
    into = ["member_id", "segment", "kind"]
    if definitions:
        compiler = SqlCompiler(
            programme_id=p, catalogue=catalogue_for(session, programme), now=now, dialect=dialect
        )
        query = evaluate_many(compiler, [(d.code, d.condition) for d in definitions])
        flags = [f"s{i}" for i in range(len(definitions))]
        columns: list[Column[Any]] = [Column("id", Uuid()), *(Column(f, Integer) for f in flags)]
        ev = _temporary(session, "tmp_segment_eval", columns)
        session.execute(insert(ev).from_select(["id", *flags], query))
        if dialect == "postgresql":
            session.execute(text("ANALYZE tmp_segment_eval"))
        for flag, segment in zip(flags, definitions, strict=True):
            inside = and_(sm.c.programme_id == p, sm.c.segment == segment.code)
            code = literal(segment.code, String)
            came = select(ev.c.id, code, literal(ENTERED, String)).where(
                ev.c[flag] == 1, ~exists().where(inside, sm.c.member_id == ev.c.id)
            )
            went = select(sm.c.member_id, code, literal(LEFT, String)).where(
                inside, ~exists().where(ev.c.id == sm.c.member_id, ev.c[flag] == 1)
            )
            session.execute(insert(moves).from_select(into, came))
            session.execute(insert(moves).from_select(into, went))
        ev.drop(session.connection())
    if codes is None:  # segments taken out of the document: everyone leaves them
        kept = [d.code for d in definitions]
        gone = select(sm.c.member_id, sm.c.segment, literal(LEFT, String)).where(
            sm.c.programme_id == p, sm.c.segment.not_in(kept)
        )
        session.execute(insert(moves).from_select(into, gone))
        session.execute(
            delete(BASELINES).where(BASELINES.c.programme_id == p, BASELINES.c.segment.not_in(kept))
        )
    first = _first_evaluations(session, p, [d.code for d in definitions])
    report = _write_moves(session, programme, moves, now=now, cause=cause, quiet=first)
    _baselines(session, p, moves, first, now)
    moves.drop(session.connection())
    report.segments = len(definitions)
    report.seconds = time.perf_counter() - started
    return report


def _move_columns() -> list[Column[Any]]:
    return [Column("member_id", Uuid()), Column("segment", String(64)), Column("kind", String(16))]


def _temporary(session: Session, name: str, columns: list[Column[Any]]) -> Table:
    """A temporary table of this connection, new and empty."""
    table = Table(name, MetaData(), *columns, prefixes=["TEMPORARY"])
    session.execute(text(f"DROP TABLE IF EXISTS {name}"))  # left by a failed sweep on SQLite
    table.create(session.connection())
    return table


def _first_evaluations(session: Session, programme_id: uuid.UUID, codes: list[str]) -> list[str]:
    """The segments among ``codes`` never evaluated by a sweep (no baseline yet)."""
    if not codes:
        return []
    done = set(
        session.scalars(
            select(BASELINES.c.segment).where(
                BASELINES.c.programme_id == programme_id, BASELINES.c.segment.in_(codes)
            )
        )
    )
    return [c for c in codes if c not in done]


def _baselines(
    session: Session, programme_id: uuid.UUID, moves: Table, codes: list[str], now: datetime
) -> None:
    """Record the first evaluation of ``codes``: when, and how many entered without history."""
    if not codes:
        return
    entered: dict[str, int] = {
        str(code): int(n)
        for code, n in session.execute(
            select(moves.c.segment, func.count())
            .where(moves.c.kind == ENTERED, moves.c.segment.in_(codes))
            .group_by(moves.c.segment)
        )
    }
    rows = [
        {"programme_id": programme_id, "segment": c, "at": now, "members": entered.get(c, 0)}
        for c in codes
    ]
    session.execute(insert(BASELINES), rows)
    if session.get_bind().dialect.name == "postgresql":
        # a first evaluation may add millions of memberships at once: without fresh statistics
        # the next sweep's anti-joins take the table for empty (a nested loop: minutes)
        session.execute(text("ANALYZE segment_members"))


def _write_moves(
    session: Session,
    programme: Programme,
    moves: Table,
    *,
    now: datetime,
    cause: str,
    quiet: Collection[str] = (),
) -> Report:
    """Memberships, history rows and notices of the moves in ``moves``, set-based. Entries
    into the ``quiet`` segments (their first evaluation) get a membership only: no history
    row, no notice (a segment's first members are not news; its baseline counts them)."""
    sm, p = MEMBERS, programme.id
    out = moves.c.kind == LEFT
    told = or_(out, moves.c.segment.not_in(list(quiet))) if quiet else true()
    session.execute(
        delete(sm).where(
            sm.c.programme_id == p,
            exists().where(
                out, moves.c.segment == sm.c.segment, moves.c.member_id == sm.c.member_id
            ),
        )
    )
    joined = select(
        literal(p, Uuid()), moves.c.segment, moves.c.member_id, literal(now, sm.c.since.type)
    )
    session.execute(
        insert(sm).from_select(
            ["programme_id", "segment", "member_id", "since"],
            joined.where(moves.c.kind == ENTERED).order_by(moves.c.segment, moves.c.member_id),
        )
    )
    ordered = (moves.c.kind, moves.c.segment, moves.c.member_id)  # entries first, as record()
    history = (
        select(
            literal(p, Uuid()),
            moves.c.member_id,
            moves.c.segment,
            moves.c.kind,
            literal(now, CHANGES.c.at.type),
            literal(cause, String),
        )
        .where(told)
        .order_by(*ordered)
    )
    session.execute(
        insert(CHANGES).from_select(
            ["programme_id", "member_id", "segment", "kind", "at", "cause"], history
        )
    )
    if session.get_bind().dialect.name == "postgresql":
        notices = (
            select(
                func.gen_random_uuid(),
                literal(p, Uuid()),
                case((out, "segment.left"), else_="segment.entered"),
                moves.c.member_id,
                literal(now, NOTICES.c.occurred_at.type),
                func.jsonb_build_object(
                    "segment", moves.c.segment, "cause", literal(cause, String), "event_id", None
                ),
                literal(utcnow(), NOTICES.c.created_at.type),
            )
            .where(told)
            .order_by(*ordered)
        )
        names = ["id", "programme_id", "type", "member_id", "occurred_at", "payload", "created_at"]
        session.execute(insert(NOTICES).from_select(names, notices))
    else:
        rows = session.execute(select(*ordered).where(told).order_by(*ordered)).all()
        for i in range(0, len(rows), _CHUNK):
            _notice(session, programme, [
                {"kind": kind, "member_id": member_id, "at": now, "cause": cause,
                 "segment": segment, "event_id": None}
                for kind, segment, member_id in rows[i : i + _CHUNK]
            ])  # fmt: skip
    found = session.execute(select(moves.c.kind, func.count()).group_by(moves.c.kind))
    counts: dict[str, int] = {str(kind): int(n) for kind, n in found}
    return Report(entered=counts.get(ENTERED, 0), left=counts.get(LEFT, 0))


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
