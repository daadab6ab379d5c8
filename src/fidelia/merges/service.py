"""Merging two members of one person, and undoing it.

Design note
-----------
:func:`merge` folds a duplicate into a survivor in the caller's transaction (an API request,
or the intake's own transaction when the programme merges sure matches): both members are
locked in primary-key order (then their ledger accounts, in primary-key order too), so two
merges of the same pair, or an event for either member, wait for each other. Rows that
follow the person are re-pointed (``rows``), points move through ledger postings that keep
every lot's dates (``points``), counters, badges and the tier are joined (``standing``), and
the duplicate becomes ``merged``, a final status: its identities now lead to the survivor and
:func:`survivor_of` follows a merged member's id to whoever holds it now. Everything an
unmerge needs is on the ``member_merges`` row and its items. :func:`unmerge` undoes one merge
while what moved is still where the merge put it; the points the survivor used meanwhile are
the shortfall (see ``points``). Every check that refuses runs before anything is written.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from fidelia.errors import FieldError, NotFound, ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.kit.pagination import decode_cursor, encode_cursor
from fidelia.members import service as members
from fidelia.merges import derived, points, rows
from fidelia.merges.errors import AlreadyUnmerged, CannotUnmerge, NotMergeable
from fidelia.merges.standing import join_standing, split_standing
from fidelia.models import Member, MemberMerge, MemberStatusChange, Programme
from fidelia.notices import Notice, record_many

FINAL = ("closed", "merged")
SURVIVOR_FIELD = ("path", "member_id")  # the survivor is the member of the URL


def _lock_pair(
    session: Session,
    programme: Programme,
    survivor_id: uuid.UUID,
    duplicate_id: uuid.UUID,
    *,
    duplicate_field: tuple[str, ...] = ("duplicate_id",),
) -> tuple[Member, Member]:
    """Both members, locked in primary-key order; 404 naming the missing one."""
    found = {
        m.id: m
        for m in session.scalars(
            select(Member)
            .where(Member.programme_id == programme.id, Member.id.in_([survivor_id, duplicate_id]))
            .order_by(Member.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    if survivor_id not in found:
        raise NotFound(
            f"member {survivor_id} does not exist",
            fields=[FieldError(SURVIVOR_FIELD, "no such member in this programme")],
        )
    if duplicate_id not in found:
        raise NotFound(
            f"member {duplicate_id} does not exist in this programme",
            fields=[FieldError(duplicate_field, "no such member in this programme")],
        )
    return found[survivor_id], found[duplicate_id]


def merge(
    session: Session,
    *,
    programme: Programme,
    survivor_id: uuid.UUID,
    duplicate_id: uuid.UUID,
    actor: str,
    reason: str | None = None,
    source: str = "api",
    now: datetime | None = None,
) -> MemberMerge:
    """Fold ``duplicate_id`` into ``survivor_id`` (see the module note); the merge record.

    422: the same member twice. 404: either member unknown in the programme. 409
    :class:`NotMergeable`: either is closed or merged; :class:`DuplicateInDebt`.
    """
    now = now or utcnow()
    if survivor_id == duplicate_id:
        raise ValidationFailed.on("duplicate_id", "a member cannot be merged into themself")
    survivor, duplicate = _lock_pair(session, programme, survivor_id, duplicate_id)
    for member, field in ((survivor, SURVIVOR_FIELD), (duplicate, ("duplicate_id",))):
        if member.status in FINAL:
            raise NotMergeable(
                f"member {member.id} is {member.status}",
                fields=[FieldError(field, f"a {member.status} member cannot be merged")],
            )
    points.check_no_debt(session, duplicate_id=duplicate.id)
    record = MemberMerge(
        id=uuid7(),
        programme_id=programme.id,
        survivor_id=survivor.id,
        duplicate_id=duplicate.id,
        status="merged",
        source=source,
        actor=actor,
        reason=reason,
        merged_at=now,
        details={},
    )
    session.add(record)
    session.flush()  # the triggers of the event log look the merge up
    ids = {"merge_id": record.id, "survivor_id": survivor.id, "duplicate_id": duplicate.id}
    counts = rows.move_rows(session, **ids)
    consents = rows.join_consents(session, survivor=survivor, duplicate=duplicate)
    filled = rows.fill_profile(survivor, duplicate)
    wallets = points.move_points(session, programme=programme, **ids, now=now)
    standing = join_standing(session, programme=programme, **ids, now=now)
    previous = duplicate.status
    _set_status(session, duplicate, "merged", f"merged into {survivor.id}", actor, now)
    record.details = {
        "duplicate_status": previous,
        "moved": counts,
        "consents": consents,
        "profile": filled,
        "wallets": wallets,
        **standing,
    }
    session.flush()
    derived.recompute(session, programme=programme, member_ids=[survivor.id, duplicate.id], now=now)
    notice = Notice("member.merged", survivor.id, now, {**ids, "source": source})
    record_many(session, programme.id, [notice])
    return record


def _set_status(
    session: Session, member: Member, to: str, reason: str, actor: str, now: datetime
) -> None:
    change = members.status_change(member, to=to, reason=reason, at=now, actor=actor, event_id=None)
    session.execute(insert(MemberStatusChange), [change])
    member.status = to


def unmerge(
    session: Session,
    *,
    programme: Programme,
    survivor_id: uuid.UUID,
    merge_id: uuid.UUID,
    actor: str,
    now: datetime | None = None,
) -> MemberMerge:
    """Undo merge ``merge_id`` of the survivor ``survivor_id``; the record, with its report.

    404: no such merge of this member. 409: :class:`AlreadyUnmerged`, or
    :class:`CannotUnmerge` when the survivor was merged into someone since, or a row the merge
    moved no longer belongs to the survivor.
    """
    now = now or utcnow()
    record = session.get(MemberMerge, merge_id)
    if record is None or record.programme_id != programme.id or record.survivor_id != survivor_id:
        raise NotFound(
            f"member {survivor_id} has no merge {merge_id}",
            fields=[FieldError(("merge_id",), "no such merge of this member")],
        )
    survivor, duplicate = _lock_pair(
        session, programme, record.survivor_id, record.duplicate_id, duplicate_field=("merge_id",)
    )
    session.refresh(record, with_for_update=True)
    if record.status == "unmerged":
        raise AlreadyUnmerged(f"merge {record.id} was undone at {record.unmerged_at}")
    if survivor.status == "merged":
        raise CannotUnmerge(
            f"member {survivor.id} was merged into another member since: undo that merge first"
        )
    rows.check_rows_back(session, merge_id=record.id, survivor_id=survivor.id)
    record.status, record.unmerged_at, record.unmerged_by = "unmerged", now, actor
    session.flush()  # the triggers of the event log look the merge up
    ids = {"merge_id": record.id, "survivor_id": survivor.id, "duplicate_id": duplicate.id}
    details: dict[str, Any] = record.details
    counts = rows.rows_back(session, **ids)
    rows.split_consents(session, survivor=survivor, changes=details.get("consents", []))
    rows.empty_profile(survivor, details.get("profile", {}))
    back = details.get("duplicate_status", "active")
    _set_status(session, duplicate, back, f"merge {record.id} undone", actor, now)
    session.flush()  # the ledger refuses writes to a merged member
    wallets = points.return_points(
        session, programme=programme, **ids, moved=details.get("wallets", []), now=now
    )
    split_standing(session, programme=programme, **ids, details=details, now=now)
    record.unmerge_report = {"moved_back": counts, "wallets": wallets}
    session.flush()
    derived.recompute(session, programme=programme, member_ids=[survivor.id, duplicate.id], now=now)
    return record


def merges_of(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[MemberMerge], str | None]:
    """The merges the member took part in (as survivor or duplicate), newest first."""
    members.get(session, programme=programme, member_id=member_id)
    query = select(MemberMerge).where(
        MemberMerge.programme_id == programme.id,
        (MemberMerge.survivor_id == member_id) | (MemberMerge.duplicate_id == member_id),
    )
    if cursor is not None:
        try:
            (last,) = decode_cursor(cursor)
            query = query.where(MemberMerge.id < uuid.UUID(str(last)))
        except ValueError as exc:
            raise ValidationFailed.on(("query", "cursor"), "not a cursor of this list") from exc
    found = list(session.scalars(query.order_by(MemberMerge.id.desc()).limit(limit + 1)))
    more = len(found) > limit
    found = found[:limit]
    return found, encode_cursor([str(found[-1].id)]) if more and found else None


def survivor_of(session: Session, *, programme: Programme, member_id: uuid.UUID) -> uuid.UUID:
    """Who holds a member's record now: the member, or the survivor of the merge it went
    into (followed through merges of merges)."""
    seen = {member_id}
    current = member_id
    while True:
        nxt = session.scalar(
            select(MemberMerge.survivor_id).where(
                MemberMerge.programme_id == programme.id,
                MemberMerge.duplicate_id == current,
                MemberMerge.status == "merged",
            )
        )
        if nxt is None or nxt in seen:
            return current
        seen.add(nxt)
        current = nxt
