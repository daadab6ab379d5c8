"""Where a member's lots went after a merge: who holds them now, and which lots they became.

Design note
-----------
A merge moves every lot of the duplicate to the survivor through a ``transfer`` posting, and
an unmerge moves what is left back; the merge record (``member_merges``) keeps, per wallet,
which old lot became which new lot (``details.wallets[].lots`` and
``unmerge_report.wallets[].lots``, ``from`` -> ``to``). Returns and reversals of a transaction
made before a merge follow those moves, so that they take back from (or give back to) the
lots the value is in now, on the member that holds them, exactly as if no merge had happened.
Only a member that was once a duplicate has moved lots: for any other member this costs one
indexed query.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fidelia.errors import Conflict, FieldError
from fidelia.models import Lot, Member, MemberMerge


class MemberMerged(Conflict):
    """409: a ledger write names a member merged into another; it names the survivor."""

    code = "member_merged"


def holder(session: Session, *, member_id: uuid.UUID) -> uuid.UUID:
    """The member holding ``member_id``'s record now: itself, or the survivor of the merge it
    went into (followed through merges of merges)."""
    seen, current = {member_id}, member_id
    while True:
        nxt = session.scalar(
            select(MemberMerge.survivor_id).where(
                MemberMerge.duplicate_id == current, MemberMerge.status == "merged"
            )
        )
        if nxt is None or nxt in seen:
            return current
        seen.add(nxt)
        current = nxt


def refuse_merged(session: Session, *, member_ids: Iterable[uuid.UUID]) -> None:
    """Refuse (409 :class:`MemberMerged`, naming the survivor) a direct write to a member
    merged into another: a merged member holds nothing, and writing to it would hide value
    from its survivor. (The intake follows merged ids to their survivor instead.)"""
    merged = session.scalar(
        select(Member.id)
        .where(Member.id.in_(set(member_ids)), Member.status == "merged")
        .order_by(Member.id)
        .limit(1)
    )
    if merged is not None:
        survivor = holder(session, member_id=merged)
        raise MemberMerged(
            f"member {merged} was merged into member {survivor}: write to {survivor} instead",
            fields=[FieldError(("member_id",), f"merged into member {survivor}")],
        )


def _merges_around(session: Session, member_id: uuid.UUID) -> list[MemberMerge]:
    """Every merge reachable from ``member_id`` as a duplicate, then through its survivors."""
    found: dict[uuid.UUID, MemberMerge] = {}
    frontier, seen = {member_id}, set[uuid.UUID]()
    while frontier:
        seen |= frontier
        rows = session.scalars(
            select(MemberMerge).where(
                or_(MemberMerge.duplicate_id.in_(frontier), MemberMerge.survivor_id.in_(frontier))
            )
        )
        batch = [m for m in rows if m.id not in found]
        found.update((m.id, m) for m in batch)
        frontier = {x for m in batch for x in (m.survivor_id, m.duplicate_id)} - seen
    return sorted(found.values(), key=lambda m: m.merged_at)


def successors(
    session: Session, *, member_id: uuid.UUID, lot_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[Lot]]:
    """For each of ``member_id``'s lots, the lots its value was moved to by merges and
    unmerges (transitively, in the order of the moves); empty when nothing moved."""
    wanted = list(lot_ids)
    was_duplicate = session.scalar(
        select(MemberMerge.id).where(MemberMerge.duplicate_id == member_id).limit(1)
    )
    if was_duplicate is None or not wanted:
        return {}
    moves: dict[str, list[str]] = {}
    for record in _merges_around(session, member_id):
        for report in (record.details, record.unmerge_report or {}):
            for wallet in report.get("wallets", []):
                for lot in wallet.get("lots", []):
                    moves.setdefault(lot["from"], []).append(lot["to"])
    chains: dict[uuid.UUID, list[uuid.UUID]] = {}
    for lot_id in wanted:
        chain: list[str] = []
        todo = list(moves.get(str(lot_id), []))
        while todo:
            nxt = todo.pop(0)
            if nxt not in chain:
                chain.append(nxt)
                todo += moves.get(nxt, [])
        chains[lot_id] = [uuid.UUID(x) for x in chain]
    ids = {x for chain in chains.values() for x in chain}
    if not ids:
        return {}
    query = select(Lot).where(Lot.id.in_(ids)).execution_options(populate_existing=True)
    lots = {lot.id: lot for lot in session.scalars(query)}
    return {k: [lots[x] for x in chain if x in lots] for k, chain in chains.items() if chain}
