"""Tiers API: a member's tier progress and history (read), manual assignment and the
period-end requalification (admin)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from fidelia.auth.dependencies import Admin, DbSession, Reader
from fidelia.errors import ERROR_RESPONSES, NotFound
from fidelia.kit.clock import utcnow
from fidelia.tiers import progress as tier_progress
from fidelia.tiers import service
from fidelia.tiers.requalify import requalify
from fidelia.tiers.schemas import (
    ManualAssignIn,
    RequalifyIn,
    RequalifyOut,
    TierChangeOut,
    TierProgressOut,
)

router = APIRouter(tags=["tiers"], responses=ERROR_RESPONSES)


@router.get("/members/{member_id}/tier", response_model=TierProgressOut)
def read_tier(member_id: uuid.UUID, principal: Reader, session: DbSession) -> TierProgressOut:
    """Current tier, metric in the running window, what is left to reach the next tier and by
    when, what keeps the current one at its review, and the tier's perks."""
    return tier_progress.progress(
        session, programme=principal.programme, member_id=member_id, now=utcnow()
    )


@router.get("/members/{member_id}/tier/history", response_model=list[TierChangeOut])
def tier_history(
    member_id: uuid.UUID, principal: Reader, session: DbSession
) -> list[TierChangeOut]:
    """Every tier change of the member, oldest first, with the metric that decided it."""
    rows = service.history(session, programme=principal.programme, member_id=member_id)
    return [TierChangeOut.model_validate(r) for r in rows]


@router.put("/members/{member_id}/tier", response_model=TierProgressOut)
def assign_tier(
    member_id: uuid.UUID, body: ManualAssignIn, principal: Admin, session: DbSession
) -> TierProgressOut:
    """Put a member in a tier by hand (invitation-only levels too), optionally until a date;
    after it the next review gives the level their metric earns."""
    now = utcnow()
    service.assign(
        session,
        programme=principal.programme,
        member_id=member_id,
        tier=body.tier,
        until=body.until,
        reason=body.reason,
        now=now,
    )
    return tier_progress.progress(
        session, programme=principal.programme, member_id=member_id, now=now
    )


@router.post("/tiers/requalify", response_model=RequalifyOut)
def run_requalify(body: RequalifyIn, principal: Admin, session: DbSession) -> RequalifyOut:
    """Review now (or at ``at``) every member whose period, grace or manual assignment ended."""
    programme = principal.programme
    if service.section_for(session, programme) is None:
        raise NotFound("the programme has no tiers")
    report = requalify(session, programme=programme, at=body.at or utcnow())
    return RequalifyOut(
        reviewed=report.reviewed,
        upgraded=report.upgraded,
        downgraded=report.downgraded,
        in_grace=report.in_grace,
        seconds=round(report.seconds, 3),
    )
