"""Segments for operators and the API: the live section, its checks, previews and reads.

Definitions live in the programme document (section ``segments``), read from the live version
and cached per immutable version, like tiers. Creating or changing a segment through the API
writes a new document version through the programmes domain's ``apply`` (registered here with
:func:`set_document_writer`, since programmes sits above segments), so the API and
``fidelia programme apply`` keep one history.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from fidelia import versions
from fidelia.errors import Conflict, FieldError, NotFound, ValidationFailed
from fidelia.kit.conditions import Condition, dump_condition
from fidelia.members import service as members_service
from fidelia.models import Member, Programme, SegmentChange, SegmentMember, Wallet
from fidelia.models.segment_summaries import SegmentBaseline
from fidelia.segments.compiler import (
    Catalogue,
    SqlCompiler,
    check_condition,
    check_counted_total,
)
from fidelia.segments.schemas import SegmentDef, SegmentsSection
from fidelia.traits import service as traits_service
from fidelia.traits.schemas import TraitsSection

DocumentWriter = Callable[[Session, Programme, dict[str, Any], str, str], int]
_WRITER: list[DocumentWriter] = []


def set_document_writer(writer: DocumentWriter) -> None:
    """Register how a new programme document is applied (the programmes domain does)."""
    _WRITER[:] = [writer]


# -- the live section -------------------------------------------------------------------------


def live_document(session: Session, programme: Programme) -> dict[str, Any]:
    return dict(versions.live_document(session, programme))


def section_for(session: Session, programme: Programme) -> SegmentsSection | None:
    """The live document's ``segments`` section, or None when it has none."""
    return _load(session, programme)[0]


def catalogue_for(session: Session, programme: Programme) -> Catalogue:
    """What conditions of the live version resolve against (wallet ids and scales included)."""
    return _load(session, programme)[1]


def _load(session: Session, programme: Programme) -> tuple[SegmentsSection | None, Catalogue]:
    return versions.section(
        session, programme, "segments", lambda document: _parse(session, programme, document)
    )


def _parse(
    session: Session, programme: Programme, document: Mapping[str, Any]
) -> tuple[SegmentsSection | None, Catalogue]:
    raw = document.get("segments")
    section = SegmentsSection.model_validate(raw) if raw else None
    wallets = {
        code: (wallet_id, scale)
        for code, wallet_id, scale in session.execute(
            select(Wallet.code, Wallet.id, Wallet.scale).where(Wallet.programme_id == programme.id)
        )
    }
    traits = traits_service.section_for(session, programme).section
    categories = frozenset(section.categories) if section else frozenset()
    return section, Catalogue(wallets=wallets, categories=categories, traits=traits)


def check_document(document: Mapping[str, Any], section: SegmentsSection | None) -> None:
    """Cross-section checks of a document's segments: unique codes, every field known (wallets
    of the document, declared categories, traits of its traits section); 422 with the path."""
    if section is None:
        return
    raw_traits = document.get("traits")
    traits = TraitsSection.model_validate(raw_traits) if raw_traits else None
    wallet_codes = [w.get("code") for w in document.get("wallets") or []]
    dummy = uuid.UUID(int=0)
    catalogue = Catalogue(
        wallets={str(code): (dummy, 0) for code in wallet_codes},
        categories=frozenset(section.categories),
        traits=traits,
    )
    seen: set[str] = set()
    for i, segment in enumerate(section.definitions):
        if segment.code in seen:
            raise ValidationFailed.on(("segments", "definitions", i, "code"), "duplicate code")
        seen.add(segment.code)
        check_condition(segment.condition, catalogue, ("segments", "definitions", i, "condition"))
    conditions = [s.condition for s in section.definitions]
    check_counted_total(conditions, catalogue, ("segments", "definitions"))


# -- writing definitions through the document -------------------------------------------------


def _write(
    session: Session, programme: Programme, document: dict[str, Any], comment: str, actor: str
) -> int:
    if not _WRITER:
        raise RuntimeError("no document writer registered (import fidelia.programmes)")
    return _WRITER[0](session, programme, document, actor, comment)


def create(session: Session, *, programme: Programme, data: SegmentDef, actor: str) -> int:
    """Add a segment to the live document (a new version); 409 if the code exists."""
    document = live_document(session, programme)
    section = dict(document.get("segments") or {})
    definitions = list(section.get("definitions") or [])
    if any(d.get("code") == data.code for d in definitions):
        raise Conflict(
            f"segment {data.code!r} exists",
            fields=[FieldError(("code",), "a segment with this code exists: PUT changes it")],
        )
    _check_alone(session, programme, data, ("condition",))
    definitions.append(_dump(data))
    section["definitions"] = definitions
    return _write(
        session, programme, {**document, "segments": section}, f"segment {data.code} created", actor
    )


def update(session: Session, *, programme: Programme, data: SegmentDef, actor: str) -> int:
    """Replace a segment's labels, description and condition (a new version); 404 if unknown."""
    document = live_document(session, programme)
    section = dict(document.get("segments") or {})
    definitions = list(section.get("definitions") or [])
    index = next((i for i, d in enumerate(definitions) if d.get("code") == data.code), None)
    if index is None:
        raise NotFound(f"segment {data.code!r} does not exist")
    _check_alone(session, programme, data, ("condition",))
    definitions[index] = _dump(data)
    section["definitions"] = definitions
    return _write(
        session, programme, {**document, "segments": section}, f"segment {data.code} changed", actor
    )


def _dump(data: SegmentDef) -> dict[str, Any]:
    out = data.model_dump(mode="json", exclude_none=True)
    out["condition"] = dump_condition(data.condition)
    return {k: out[k] for k in ("code", "labels", "description", "condition") if k in out}


def _check_alone(
    session: Session, programme: Programme, data: SegmentDef, loc: tuple[str | int, ...]
) -> None:
    """The segment's condition, and with the document's other segments (all evaluated by one
    statement), checked with paths of the request rather than of the document."""
    catalogue = catalogue_for(session, programme)
    check_condition(data.condition, catalogue, loc)
    section = section_for(session, programme)
    others = [s.condition for s in (section.definitions if section else []) if s.code != data.code]
    check_counted_total([*others, data.condition], catalogue, loc)


def get(session: Session, *, programme: Programme, code: str) -> SegmentDef:
    section = section_for(session, programme)
    found = section.get(code) if section else None
    if found is None:
        raise NotFound(f"segment {code!r} does not exist")
    return found


# -- reads ------------------------------------------------------------------------------------


def sizes(session: Session, *, programme: Programme) -> dict[str, int]:
    """Members per segment now."""
    rows = session.execute(
        select(SegmentMember.segment, func.count())
        .where(SegmentMember.programme_id == programme.id)
        .group_by(SegmentMember.segment)
    )
    return {segment: count for segment, count in rows}


@dataclass(frozen=True)
class Preview:
    count: int
    sample: list[Member]
    seconds: float


def preview(
    session: Session, *, programme: Programme, condition: Condition, sample: int, now: datetime
) -> Preview:
    """How many members ``condition`` holds now, and the first ``sample`` of them (by id)."""
    catalogue = catalogue_for(session, programme)
    check_condition(condition, catalogue, ("condition",))
    started = time.perf_counter()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":  # a whole population's counts grouped by member: in memory
        session.execute(text("SET LOCAL work_mem = '256MB'"))
    compiler = SqlCompiler(programme_id=programme.id, catalogue=catalogue, now=now, dialect=dialect)
    ids = compiler.members_query(condition).subquery("matching")
    with _time_limit(session, PREVIEW_SECONDS):
        count = session.scalar(select(func.count()).select_from(ids)) or 0
        seconds = time.perf_counter() - started
        members: list[Member] = []
        if sample and count:
            first = select(ids.c.id).order_by(ids.c.id).limit(sample)
            members = list(
                session.scalars(select(Member).where(Member.id.in_(first)).order_by(Member.id))
            )
    return Preview(count, members, seconds)


PREVIEW_SECONDS = 30.0  # a preview is a read-scope call: no condition may hold a process longer


@contextmanager
def _time_limit(session: Session, seconds: float) -> Iterator[None]:
    """Stop the statements run inside after ``seconds``: a 422 on the condition (PostgreSQL's
    ``statement_timeout`` for this transaction; SQLite's progress handler, removed after)."""
    too_costly = ValidationFailed.on(
        ("condition",), f"too costly to preview: it ran over {seconds:g} s; narrow the condition"
    )
    if session.get_bind().dialect.name == "postgresql":
        previous = session.scalar(text("SELECT current_setting('statement_timeout')"))
        limit = f"{max(1, int(seconds * 1000))}ms"
        session.execute(text("SELECT set_config('statement_timeout', :v, true)"), {"v": limit})
        try:
            yield
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == "57014":  # query_canceled
                raise too_costly from None
            raise
        session.execute(text("SELECT set_config('statement_timeout', :v, true)"), {"v": previous})
        return
    raw: Any = session.connection().connection.driver_connection
    deadline = time.monotonic() + seconds
    raw.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
    try:
        yield
    except OperationalError as exc:
        if "interrupted" in str(exc.orig):
            raise too_costly from None
        raise
    finally:
        raw.set_progress_handler(None, 0)


def members_page(
    session: Session, *, programme: Programme, code: str, after: uuid.UUID | None, limit: int
) -> list[tuple[Member, datetime]]:
    """Members of a segment by id, ``limit`` after ``after`` (keyset pagination)."""
    query = (
        select(Member, SegmentMember.since)
        .join(SegmentMember, SegmentMember.member_id == Member.id)
        .where(SegmentMember.programme_id == programme.id, SegmentMember.segment == code)
        .order_by(Member.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(Member.id > after)
    return [(m, since) for m, since in session.execute(query)]


def traits_of(
    session: Session, *, programme: Programme, member_ids: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, dict[str, Any]]:
    """The stored traits of some members, as conditions read them."""
    section = traits_service.section_for(session, programme).section
    rows = traits_service.traits_rows(session, member_ids=member_ids)
    return {
        member_id: traits_service.context_for(row, now=now, section=section)
        for member_id, row in rows.items()
    }


def memberships(
    session: Session, *, programme: Programme, member_id: uuid.UUID
) -> list[SegmentMember]:
    """The segments a member is in now, by code."""
    members_service.get(session, programme=programme, member_id=member_id)  # or a 404
    query = (
        select(SegmentMember)
        .where(SegmentMember.programme_id == programme.id, SegmentMember.member_id == member_id)
        .order_by(SegmentMember.segment)
    )
    return list(session.scalars(query))


def member_history(
    session: Session, *, programme: Programme, member_id: uuid.UUID, after: int, limit: int
) -> list[SegmentChange]:
    """A member's entries and exits, oldest first (``seq`` after ``after``); 404 when the
    member is not the programme's."""
    members_service.get(session, programme=programme, member_id=member_id)  # or a 404
    query = (
        select(SegmentChange)
        .where(SegmentChange.member_id == member_id, SegmentChange.seq > after)
        .order_by(SegmentChange.seq)
        .limit(limit)
    )
    return list(session.scalars(query))


def changes(
    session: Session, *, programme: Programme, after: int, limit: int, segment: str | None = None
) -> list[SegmentChange]:
    """Entries and exits in the order they were recorded (``seq`` after ``after``)."""
    query = (
        select(SegmentChange)
        .where(SegmentChange.programme_id == programme.id, SegmentChange.seq > after)
        .order_by(SegmentChange.seq)
        .limit(limit)
    )
    if segment is not None:
        query = query.where(SegmentChange.segment == segment)
    return list(session.scalars(query))


@dataclass(frozen=True)
class DayCount:
    day: str
    members: int
    entered: int
    left: int


def counts(
    session: Session, *, programme: Programme, code: str, days: int, now: datetime
) -> list[DayCount]:
    """Members at the end of each of the last ``days`` local days (today so far included),
    with the entries and exits of that day; derived from the history and the segment's
    baseline (its first members, entered without history rows), newest last."""
    tz = ZoneInfo(programme.timezone)
    today = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), tz)
    current = (
        session.scalar(
            select(func.count()).where(
                SegmentMember.programme_id == programme.id, SegmentMember.segment == code
            )
        )
        or 0
    )
    moves: dict[Any, list[int]] = {}
    rows = session.execute(
        select(SegmentChange.at, SegmentChange.kind).where(
            SegmentChange.programme_id == programme.id,
            SegmentChange.segment == code,
            SegmentChange.at >= start,
        )
    )
    for at, kind in rows:
        day = at.astimezone(tz).date()
        slot = moves.setdefault(day, [0, 0])
        slot[0 if kind == "segment_entered" else 1] += 1
    baseline = session.get(SegmentBaseline, (programme.id, code))
    if baseline is not None and baseline.at >= start:  # its first members: no history rows
        moves.setdefault(baseline.at.astimezone(tz).date(), [0, 0])[0] += baseline.members
    out: list[DayCount] = []
    members = current
    for offset in range(days):
        day = today - timedelta(days=offset)
        entered, left = moves.get(day, [0, 0])
        out.append(DayCount(day.isoformat(), members, entered, left))
        members = members - entered + left
    return list(reversed(out))


def export_rows(
    session: Session, *, programme: Programme, code: str, chunk: int = 5000
) -> Iterator[tuple[uuid.UUID, str, str, str, datetime]]:
    """Every member of a segment (id, names, status, since), read by keyset in chunks; the
    names as CSV cells (:func:`csv_text`), since every reader of these rows writes a CSV."""
    after: uuid.UUID | None = None
    while True:
        rows = members_page(session, programme=programme, code=code, after=after, limit=chunk)
        for m, since in rows:
            yield m.id, csv_text(m.first_name), csv_text(m.last_name), m.status, since
        if len(rows) < chunk:
            return
        after = rows[-1][0].id


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str | None) -> str:
    """A member's text as a CSV cell a spreadsheet shows as text: a value that starts like a
    formula (``=HYPERLINK(...)``, ``+cmd|...``) gets a leading apostrophe (OWASP's advice)."""
    if not value:
        return ""
    return f"'{value}" if value.startswith(_FORMULA) else value


def jsonable(value: Any) -> Any:
    """Traits as JSON: money as decimal strings, instants in ISO 8601."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
