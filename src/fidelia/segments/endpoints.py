"""Segments API: definitions (versioned with the programme document), previews, members,
counts over time, CSV export, the entry/exit feed, and a member's segments."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import StreamingResponse

from fidelia.auth.dependencies import Admin, DbSession, Reader, get_database
from fidelia.db import Database
from fidelia.errors import ERROR_RESPONSES, ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.kit.pagination import Page, decode_cursor, encode_cursor
from fidelia.models import Programme
from fidelia.segments import live, service
from fidelia.segments.schemas import (
    CountPoint,
    MemberSample,
    MembershipOut,
    PreviewIn,
    PreviewOut,
    SegmentChangeOut,
    SegmentDef,
    SegmentIn,
    SegmentMemberOut,
    SegmentOut,
    SegmentUpdate,
    SweepIn,
    SweepOut,
    as_def,
)

router = APIRouter(tags=["segments"], responses=ERROR_RESPONSES)
CSV = (
    "member_id,first_name,last_name,status,since\r\n"
    "019ceb9e-6018-78a4-ad11-f033b48438b5,Laure,Moulin,active,2026-11-14T14:42:10.200114+00:00\r\n"
)
CodePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]


def _out(session: DbSession, programme: Programme, segment: SegmentDef) -> SegmentOut:
    sizes = service.sizes(session, programme=programme)
    return _with(segment, sizes.get(segment.code, 0), programme.live_version)


def _with(segment: SegmentDef, members: int, version: int) -> SegmentOut:
    data = segment.model_dump(mode="json")
    return SegmentOut(**data, members=members, version=version)


@router.get("/segments", response_model=list[SegmentOut], summary="The programme's segments")
def list_segments(principal: Reader, session: DbSession) -> list[SegmentOut]:
    """Every segment of the live programme document, with how many members it holds now.

    Scope: `read`.
    """
    programme = principal.programme
    section = service.section_for(session, programme)
    sizes = service.sizes(session, programme=programme)
    definitions = section.definitions if section else []
    return [_with(s, sizes.get(s.code, 0), programme.live_version) for s in definitions]


@router.post(
    "/segments",
    response_model=SegmentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a segment (a new document version)",
)
def create_segment(body: SegmentIn, principal: Admin, session: DbSession) -> SegmentOut:
    """Add a segment to the programme document: a new version of the document is stored (as
    `PUT /programme/document` would) and the segment is filled at once. A retry with the same
    code is a 409, so it cannot create the segment twice.

    409: a segment with this code exists. 422: a field the condition names is unknown (a field,
    a wallet, a trait, a category not declared in `segments.categories`), or an operator does not
    fit its field; `fields` gives the path.

    Scope: `admin`.
    """
    programme = principal.programme
    data = body.to_def()
    service.create(session, programme=programme, data=data, actor=f"api-key:{principal.key_id}")
    live.sweep(session, programme=programme, now=utcnow(), codes={body.code}, cause="definition")
    return _out(session, programme, service.get(session, programme=programme, code=body.code))


@router.post("/segments/preview", response_model=PreviewOut, summary="Try a condition")
def preview_segment(body: PreviewIn, principal: Reader, session: DbSession) -> PreviewOut:
    """How many members a condition holds now, and the first `sample` of them, before it is
    saved anywhere. Nothing is written.

    422: an unknown field, wallet, trait or category, or an operator that does not fit its field.

    Scope: `read`.
    """
    found = service.preview(
        session,
        programme=principal.programme,
        condition=body.parsed(),
        sample=body.sample,
        now=utcnow(),
    )
    sample = [
        MemberSample(
            member_id=m.id, first_name=m.first_name, last_name=m.last_name, status=m.status
        )
        for m in found.sample
    ]
    return PreviewOut(count=found.count, sample=sample, seconds=round(found.seconds, 4))


@router.get(
    "/segments/changes",
    response_model=list[SegmentChangeOut],
    summary="Entries and exits, in order (segment_entered / segment_left)",
)
def segment_changes(
    principal: Reader,
    session: DbSession,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    segment: Annotated[str | None, Query(max_length=64)] = None,
) -> list[SegmentChangeOut]:
    """The internal `segment_entered` and `segment_left` events, oldest first: pass the last
    `seq` you read as `after` to read on. Each says when, why (`event`: after one of the
    member's events; `sweep`: the daily re-evaluation; `definition`: the segment was created or
    changed; `merge`: a merge or an unmerge of the member) and which event did it.

    Scope: `read`.
    """
    rows = service.changes(
        session, programme=principal.programme, after=after, limit=limit, segment=segment
    )
    return [SegmentChangeOut.model_validate(r, from_attributes=True) for r in rows]


@router.post("/segments/sweep", response_model=SweepOut, summary="Re-evaluate every segment")
def sweep_segments(body: SweepIn, principal: Admin, session: DbSession) -> SweepOut:
    """Re-evaluate every segment for every member now (or as of `at`), as the daily sweep does;
    members of segments removed from the document leave them. A second run finds nothing to
    change.

    422: `at` without an offset or out of range.

    Scope: `admin`.
    """
    report = live.sweep(session, programme=principal.programme, now=body.at or utcnow())
    return SweepOut(
        segments=report.segments,
        entered=report.entered,
        left=report.left,
        seconds=round(report.seconds, 3),
    )


@router.get("/segments/{code}", response_model=SegmentOut, summary="Read a segment")
def read_segment(code: CodePath, principal: Reader, session: DbSession) -> SegmentOut:
    """One segment: its labels, condition and how many members it holds now.

    404: no such segment.

    Scope: `read`.
    """
    programme = principal.programme
    return _out(session, programme, service.get(session, programme=programme, code=code))


@router.put(
    "/segments/{code}", response_model=SegmentOut, summary="Change a segment (a new version)"
)
def update_segment(
    code: CodePath, body: SegmentUpdate, principal: Admin, session: DbSession
) -> SegmentOut:
    """Replace a segment's labels, description and condition: a new version of the programme
    document is stored and the members are re-evaluated at once (entries and exits recorded with
    the cause `definition`). The same body again changes nothing.

    404: no such segment. 422: an unknown field, wallet, trait or category, or an operator that
    does not fit its field.

    Scope: `admin`.
    """
    programme = principal.programme
    data = as_def(code, body.labels, body.description, body.condition)
    service.get(session, programme=programme, code=code)
    service.update(session, programme=programme, data=data, actor=f"api-key:{principal.key_id}")
    live.sweep(session, programme=programme, now=utcnow(), codes={code}, cause="definition")
    return _out(session, programme, service.get(session, programme=programme, code=code))


@router.get(
    "/segments/{code}/members",
    response_model=Page[SegmentMemberOut],
    summary="Members of a segment, with their traits",
)
def segment_members(
    code: CodePath,
    principal: Reader,
    session: DbSession,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[SegmentMemberOut]:
    """The members of a segment by id, each with the date they entered it and their computed
    traits. Paged: pass the `next_cursor` of a page as `cursor`.

    404: no such segment. 422: a cursor this API did not give.

    Scope: `read`.
    """
    programme = principal.programme
    service.get(session, programme=programme, code=code)
    after = _after(cursor)
    rows = service.members_page(session, programme=programme, code=code, after=after, limit=limit)
    traits = service.traits_of(
        session, programme=programme, member_ids=[m.id for m, _ in rows], now=utcnow()
    )
    items = [
        SegmentMemberOut(
            member_id=m.id,
            since=since,
            first_name=m.first_name,
            last_name=m.last_name,
            status=m.status,
            traits=service.jsonable(traits.get(m.id, {})),
        )
        for m, since in rows
    ]
    last = rows[-1][0].id if len(rows) == limit else None
    return Page(items=items, next_cursor=encode_cursor([str(last)]) if last else None)


def _after(cursor: str | None) -> uuid.UUID | None:
    if cursor is None:
        return None
    try:
        (value,) = decode_cursor(cursor)
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationFailed.on(("query", "cursor"), "not a cursor this API gave") from None


@router.get(
    "/segments/{code}/counts",
    response_model=list[CountPoint],
    summary="A segment's size over time",
)
def segment_counts(
    code: CodePath,
    principal: Reader,
    session: DbSession,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> list[CountPoint]:
    """Members at the end of each of the last `days` local days (today so far last), with the
    entries and exits of each day, from the segment's history.

    404: no such segment.

    Scope: `read`.
    """
    programme = principal.programme
    service.get(session, programme=programme, code=code)
    found = service.counts(session, programme=programme, code=code, days=days, now=utcnow())
    return [CountPoint(day=c.day, members=c.members, entered=c.entered, left=c.left) for c in found]


@router.get(
    "/segments/{code}/export",
    summary="Export a segment's members as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string", "examples": [CSV]}}}}},
)
def export_segment(
    code: CodePath,
    principal: Reader,
    session: DbSession,
    database: Annotated[Database, Depends(get_database)],
) -> StreamingResponse:
    """Every member of the segment as CSV (`member_id,first_name,last_name,status,since`),
    streamed as it is read, so a segment of any size exports in constant memory. A name that
    starts like a spreadsheet formula (`=`, `+`, `-`, `@`, tab, carriage return) is written with
    a leading `'`, so that opening the file runs nothing.

    404: no such segment.

    Scope: `read`.
    """
    programme = principal.programme
    service.get(session, programme=programme, code=code)
    headers = {"Content-Disposition": f'attachment; filename="segment-{code}.csv"'}
    return StreamingResponse(
        _csv(database, programme, code), media_type="text/csv", headers=headers
    )


def _csv(database: Database, programme: Programme, code: str) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["member_id", "first_name", "last_name", "status", "since"])
    with database.transaction(readonly=True) as session:
        for n, (member_id, first, last, state, since) in enumerate(
            service.export_rows(session, programme=programme, code=code), start=1
        ):
            writer.writerow([member_id, first, last, state, since.isoformat()])
            if n % 1000 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


@router.get(
    "/members/{member_id}/segments",
    response_model=list[MembershipOut],
    summary="The segments a member is in",
)
def member_segments(
    member_id: uuid.UUID, principal: Reader, session: DbSession
) -> list[MembershipOut]:
    """The segments the member is in now, by code, with their labels and since when.

    404: no such member.

    Scope: `read`.
    """
    programme = principal.programme
    rows = service.memberships(session, programme=programme, member_id=member_id)
    section = service.section_for(session, programme)
    labels = {s.code: dict(s.labels) for s in (section.definitions if section else [])}
    return [
        MembershipOut(segment=r.segment, labels=labels.get(r.segment, {}), since=r.since)
        for r in rows
    ]


@router.get(
    "/members/{member_id}/segments/history",
    response_model=Page[SegmentChangeOut],
    summary="A member's entries into and exits from segments",
)
def member_segment_history(
    member_id: uuid.UUID,
    principal: Reader,
    session: DbSession,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[SegmentChangeOut]:
    """Every `segment_entered` and `segment_left` of the member, oldest first: the segment,
    when, why (`event`: after one of the member's events, named by `event_id`; `sweep`: the
    daily re-evaluation; `definition`: the segment was created or changed; `merge`: a merge or
    an unmerge of the member) and its `seq` in the programme's feed. A segment's first members
    (its first evaluation) have no entry here: see `since` in `GET /members/{id}/segments`.
    Paged: pass `next_cursor` as `cursor`.

    404: no such member. 422: a cursor this API did not give.

    Scope: `read`.
    """
    after = 0
    if cursor is not None:
        try:
            (after,) = decode_cursor(cursor)
        except ValueError:
            after = -1
        if type(after) is not int or not 0 <= after <= 2**62:
            raise ValidationFailed.on(("query", "cursor"), "not a cursor this API gave")
    rows = service.member_history(
        session, programme=principal.programme, member_id=member_id, after=after, limit=limit
    )
    items = [SegmentChangeOut.model_validate(r, from_attributes=True) for r in rows]
    last = items[-1].seq if len(items) == limit else None
    return Page(items=items, next_cursor=encode_cursor([last]) if last is not None else None)
