"""Traits API: every computed trait of a member (read), and the bulk rebuild (admin)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from fidelia.auth.dependencies import DbSession, Reader
from fidelia.errors import ERROR_RESPONSES
from fidelia.kit.clock import utcnow
from fidelia.traits.read import describe
from fidelia.traits.schemas import TraitsOut

router = APIRouter(tags=["traits"], responses=ERROR_RESPONSES)


@router.get(
    "/members/{member_id}/traits",
    response_model=TraitsOut,
    summary="Everything computed about the member",
)
def member_traits(member_id: uuid.UUID, principal: Reader, session: DbSession) -> TraitsOut:
    """The member's computed traits as of now: recency, frequency and spend over the programme's
    windows, first and last purchase, average basket, mean and median interval between
    purchases and the expected next purchase; RFM scores (1-5, quintiles within the programme,
    recomputed daily) and the named cell; the lifecycle stage; affinities (share of purchases and
    of spend per category, brand and declared product attribute), channel mix and favourite
    store; promotion sensitivity; and, read live from the ledger, tiers and engagement, points
    per wallet, points expiring soon, distance to the next tier, badges, open challenges, last
    redemption and whether each consent channel can reach the member.

    404: no such member.

    Scope: `read`.
    """
    return describe(session, programme=principal.programme, member_id=member_id, now=utcnow())
