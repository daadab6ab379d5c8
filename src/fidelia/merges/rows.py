"""Rows that follow the person: re-pointed to the survivor by a merge, back by an unmerge.

Each kind is two set-based statements whatever the number of rows: the ids are recorded in
``member_merge_items`` with one ``INSERT ... SELECT``, then the rows are re-pointed with one
``UPDATE ... WHERE id IN (the recorded ids)``. An unmerge re-points exactly the recorded rows
that still belong to the survivor. Badges and challenge completions the survivor already holds
(same badge and level, same challenge round) stay with the duplicate: their unique keys allow
one per member. Consents and profile fields are values, not rows: see :func:`join_consents`
and :func:`fill_profile`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.types import String, Uuid

from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.merges.errors import CannotUnmerge
from fidelia.models import (
    ChallengeCompletion,
    Consent,
    ConsentChange,
    Event,
    Member,
    MemberBadge,
    MemberIdentity,
    MemberMergeItem,
    Redemption,
    Voucher,
    VoucherUse,
)

ITEMS: Table = MemberMergeItem.__table__  # type: ignore[assignment]
PROFILE_FIELDS = ("first_name", "last_name", "birth_date", "locale", "postal_code")


@dataclass(frozen=True)
class Kind:
    """A table whose rows move with the person; ``unique``: columns of a per-member key."""

    name: str
    table: Table
    unique: tuple[str, ...] = ()


def _t(model: Any) -> Table:
    table: Table = model.__table__
    return table


KINDS = (
    Kind("identity", _t(MemberIdentity)),
    Kind("event", _t(Event)),
    Kind("consent_change", _t(ConsentChange)),
    Kind("badge", _t(MemberBadge), ("badge", "level")),
    Kind("completion", _t(ChallengeCompletion), ("challenge", "round")),
    Kind("voucher", _t(Voucher)),
    Kind("voucher_use", _t(VoucherUse)),
    Kind("redemption", _t(Redemption)),
)


def move_rows(
    session: Session, *, merge_id: uuid.UUID, survivor_id: uuid.UUID, duplicate_id: uuid.UUID
) -> dict[str, int]:
    """Re-point the duplicate's rows of every kind to the survivor; how many, per kind."""
    counts = {}
    for kind in KINDS:
        table = kind.table
        where = [table.c.member_id == duplicate_id]
        if kind.unique:
            held = aliased(table)
            where.append(
                ~exists().where(
                    held.c.member_id == survivor_id,
                    *(held.c[col] == table.c[col] for col in kind.unique),
                )
            )
        ids = select(literal(merge_id, Uuid()), literal(kind.name, String()), table.c.id).where(
            *where
        )
        session.execute(insert(ITEMS).from_select(["merge_id", "kind", "item_id"], ids))
        moved = session.execute(
            update(table)
            .where(table.c.id.in_(_recorded(merge_id, kind.name)))
            .values(member_id=survivor_id)
        )
        counts[kind.name] = int(cast(CursorResult[Any], moved).rowcount)
    return counts


def _recorded(merge_id: uuid.UUID, kind: str) -> Any:
    return select(ITEMS.c.item_id).where(ITEMS.c.merge_id == merge_id, ITEMS.c.kind == kind)


def check_rows_back(session: Session, *, merge_id: uuid.UUID, survivor_id: uuid.UUID) -> None:
    """Refuse (409) an unmerge when a recorded row no longer belongs to the survivor."""
    for kind in KINDS:
        table = kind.table
        recorded = session.scalar(
            select(func.count())
            .select_from(ITEMS)
            .where(ITEMS.c.merge_id == merge_id, ITEMS.c.kind == kind.name)
        )
        there = session.scalar(
            select(func.count())
            .select_from(table)
            .where(table.c.id.in_(_recorded(merge_id, kind.name)), table.c.member_id == survivor_id)
        )
        if recorded != there:
            raise CannotUnmerge(
                f"{(recorded or 0) - (there or 0)} {kind.name.replace('_', ' ')} row(s) the merge "
                "moved no longer belong to the survivor"
            )


def rows_back(
    session: Session, *, merge_id: uuid.UUID, survivor_id: uuid.UUID, duplicate_id: uuid.UUID
) -> dict[str, int]:
    """Re-point the recorded rows to the duplicate again; how many, per kind."""
    counts = {}
    for kind in KINDS:
        table = kind.table
        moved = session.execute(
            update(table)
            .where(table.c.id.in_(_recorded(merge_id, kind.name)), table.c.member_id == survivor_id)
            .values(member_id=duplicate_id)
        )
        counts[kind.name] = int(cast(CursorResult[Any], moved).rowcount)
    return counts


def _consent_json(consent: Consent) -> dict[str, Any]:
    return {
        "channel": consent.channel,
        "granted": consent.granted,
        "changed_at": consent.changed_at.isoformat(),
        "source": consent.source,
    }


def join_consents(session: Session, *, survivor: Member, duplicate: Member) -> list[dict[str, Any]]:
    """Per channel, the most recent decision of the two wins on the survivor. Returns what
    changed: ``{"channel", "created": id}`` or ``{"channel", "before": survivor's, "after"}``."""
    rows = session.scalars(
        select(Consent).where(Consent.member_id.in_([survivor.id, duplicate.id]))
    ).all()
    mine = {c.channel: c for c in rows if c.member_id == survivor.id}
    changes: list[dict[str, Any]] = []
    for theirs in sorted((c for c in rows if c.member_id == duplicate.id), key=lambda c: c.channel):
        own = mine.get(theirs.channel)
        if own is None:
            new = Consent(
                id=uuid7(),
                programme_id=survivor.programme_id,
                member_id=survivor.id,
                channel=theirs.channel,
                granted=theirs.granted,
                changed_at=theirs.changed_at,
                source=theirs.source,
            )
            session.add(new)
            changes.append({"channel": theirs.channel, "created": str(new.id)})
        elif theirs.changed_at > own.changed_at:
            before = _consent_json(own)
            own.granted, own.changed_at, own.source = (
                theirs.granted,
                theirs.changed_at,
                theirs.source,
            )
            changes.append({"channel": own.channel, "before": before, "after": _consent_json(own)})
    return changes


def split_consents(session: Session, *, survivor: Member, changes: list[dict[str, Any]]) -> None:
    """Undo :func:`join_consents` where the survivor's consent is still what the merge made
    of it; a decision the person took since the merge stands."""
    current = {
        c.channel: c
        for c in session.scalars(select(Consent).where(Consent.member_id == survivor.id))
    }
    for change in changes:
        consent = current.get(change["channel"])
        if consent is None:
            continue
        if "created" in change:
            if str(consent.id) == change["created"] and not _changed_since(session, consent):
                session.execute(delete(Consent).where(Consent.id == consent.id))
        elif _consent_json(consent) == change["after"]:
            before = change["before"]
            consent.granted = before["granted"]
            consent.changed_at = datetime.fromisoformat(before["changed_at"])
            consent.source = before["source"]


def _changed_since(session: Session, consent: Consent) -> bool:
    """Whether the survivor's history has a decision on this channel after the copied one."""
    newer = select(ConsentChange.id).where(
        and_(
            ConsentChange.member_id == consent.member_id,
            ConsentChange.channel == consent.channel,
            ConsentChange.changed_at > consent.changed_at,
        )
    )
    return session.scalar(newer.limit(1)) is not None


def fill_profile(survivor: Member, duplicate: Member) -> dict[str, Any]:
    """The survivor's empty profile fields and missing attributes take the duplicate's;
    what was filled (JSON-ready), to take out again at an unmerge."""
    fields: dict[str, Any] = {}
    for name in PROFILE_FIELDS:
        if getattr(survivor, name) is None and getattr(duplicate, name) is not None:
            value = getattr(duplicate, name)
            setattr(survivor, name, value)
            fields[name] = value.isoformat() if hasattr(value, "isoformat") else value
    attributes = {k: v for k, v in duplicate.attributes.items() if k not in survivor.attributes}
    if attributes:
        survivor.attributes = {**survivor.attributes, **attributes}
    survivor.updated_at = utcnow()
    return {"fields": fields, "attributes": attributes}


def empty_profile(survivor: Member, filled: dict[str, Any]) -> None:
    """Take out what :func:`fill_profile` filled, where the survivor still has that value."""
    for name, value in filled.get("fields", {}).items():
        current = getattr(survivor, name)
        shown = current.isoformat() if hasattr(current, "isoformat") else current
        if shown == value:
            setattr(survivor, name, None)
    attributes = dict(survivor.attributes)
    for key, value in filled.get("attributes", {}).items():
        if key in attributes and attributes[key] == value:
            del attributes[key]
    survivor.attributes = attributes
