"""Merges API: fold a duplicate into a member, undo it, list a member's merges, and the
suggested duplicates of the programme."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from fidelia.auth.dependencies import Admin, DbSession, Reader
from fidelia.errors import ERROR_RESPONSES
from fidelia.kit.pagination import Page
from fidelia.merges import duplicates, service
from fidelia.merges.schemas import DuplicatePairOut, MergeIn, MergeOut, UnmergeIn

router = APIRouter(prefix="/members", tags=["merges"], responses=ERROR_RESPONSES)


def _actor(key_id: uuid.UUID) -> str:
    return f"api_key:{key_id}"


@router.get(
    "/duplicates",
    response_model=Page[DuplicatePairOut],
    summary="Pairs of members that are likely one person",
)
def list_duplicates(
    principal: Reader,
    session: DbSession,
    min_score: Annotated[float, Query(ge=0, le=1, allow_inf_nan=False)] = 0.0,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[DuplicatePairOut]:
    """Pairs of open members (closed and merged ones aside) that are likely the same person, best
    score first, with the reasons: the same email or phone held by one as an identity and by the
    other in its attributes (`same_email`, `same_phone`), the same first name, last name, birth date
    and postal code (`same_name_birth_date_postal_code`), or the same name and birth date only
    (`same_name_birth_date`, weaker). Names are compared without case, accents or punctuation. The
    score is 1 - ∏(1 - weight) over the reasons; 0.9 or more is a sure match (what the programme's
    `settings.merge.on_sure_match` acts on). `survivor_id` is the member enrolled first, the one to
    keep: merge with `POST /members/{survivor_id}/merge`. Paged: pass `next_cursor` as `cursor`.

    422: `min_score` outside [0, 1], or a cursor this API did not give.

    Scope: `read`.
    """
    pairs, next_cursor = duplicates.page_of_pairs(
        session, programme=principal.programme, min_score=min_score, cursor=cursor, limit=limit
    )
    items = [
        DuplicatePairOut(
            survivor_id=p.first, duplicate_id=p.second, score=p.score, reasons=p.reasons
        )
        for p in pairs
    ]
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/{member_id}/merge",
    response_model=MergeOut,
    status_code=201,
    summary="Fold a duplicate member into this one",
)
def merge(member_id: uuid.UUID, body: MergeIn, principal: Admin, session: DbSession) -> MergeOut:
    """Fold the member `duplicate_id` into this one (the survivor), in one transaction: its
    identities, events, consent history, badges, challenge completions, vouchers and redemptions
    move to the survivor; per channel the most recent consent decision of the two wins; the
    survivor's empty profile fields and missing attributes take the duplicate's; its points move
    lot by lot through ledger postings that keep every lot's expiry and pending date; counters,
    challenge progress and tier metric are added up and the survivor keeps the higher tier (or the
    one the joined metric earns). The duplicate becomes `merged`, for good: its identities now find
    the survivor. The merge is recorded with what moved (`GET /members/{id}/merges`) and can be
    undone (`POST /members/{id}/unmerge`). A retry merges nothing twice: the duplicate is merged by
    then, so it is a 409.

    404: no such member (either). 409: `not_mergeable` (either member is closed or merged),
    `duplicate_in_debt` (the duplicate owes points in a wallet that allows debt: settle it first).
    422: `duplicate_id` is this member.

    Scope: `admin`.
    """
    record = service.merge(
        session,
        programme=principal.programme,
        survivor_id=member_id,
        duplicate_id=body.duplicate_id,
        actor=_actor(principal.key_id),
        reason=body.reason,
    )
    return MergeOut.of(record)


@router.post(
    "/{member_id}/unmerge",
    response_model=MergeOut,
    summary="Undo one merge into this member",
)
def unmerge(
    member_id: uuid.UUID, body: UnmergeIn, principal: Admin, session: DbSession
) -> MergeOut:
    """Undo the merge `merge_id` into this member: the rows it moved go back to the duplicate,
    consents and profile fields the merge changed go back where the survivor has not changed them
    since, the tier metric and counters lose the duplicate's part, and the duplicate gets back what
    is left of its points, lot by lot with their dates, and its status. Points the survivor spent
    (or saw expire) from the duplicate's lots meanwhile are not taken from the survivor's own: they
    are the `shortfall`, reported per wallet and kept on the merge. A retry is a 409: the merge is
    undone by then.

    404: this member has no such merge. 409: `already_unmerged`, or `cannot_unmerge` (this member
    was merged into another since — undo that first — or a row the merge moved is gone).

    Scope: `admin`.
    """
    record = service.unmerge(
        session,
        programme=principal.programme,
        survivor_id=member_id,
        merge_id=body.merge_id,
        actor=_actor(principal.key_id),
    )
    return MergeOut.of(record)


@router.get(
    "/{member_id}/merges",
    response_model=Page[MergeOut],
    summary="The merges this member took part in",
)
def list_merges(
    member_id: uuid.UUID,
    principal: Reader,
    session: DbSession,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[MergeOut]:
    """Every merge this member took part in, as survivor or as duplicate, newest first: who
    merged, when, why, what moved and, once undone, what the unmerge gave back. Paged: pass
    `next_cursor` as `cursor`.

    404: no such member. 422: a cursor this API did not give.

    Scope: `read`.
    """
    found, next_cursor = service.merges_of(
        session, programme=principal.programme, member_id=member_id, cursor=cursor, limit=limit
    )
    return Page(items=[MergeOut.of(r) for r in found], next_cursor=next_cursor)
