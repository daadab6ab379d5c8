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


@router.get(
    "/members/{member_id}/tier",
    response_model=TierProgressOut,
    summary="The member's tier and progress",
)
def read_tier(member_id: uuid.UUID, principal: Reader, session: DbSession) -> TierProgressOut:
    """The member's current tier and where they stand: the metric in the running window (status
    points, spend, purchases), what is left to reach the next tier and by when (`next`), what keeps
    the current one at its review (`keep`), a manual assignment's end, and the tier's perks.

    404: no such member, or the programme has no tiers.

    Scope: `read`.
    """
    return tier_progress.progress(
        session, programme=principal.programme, member_id=member_id, now=utcnow()
    )


@router.get(
    "/members/{member_id}/tier/history",
    response_model=list[TierChangeOut],
    summary="The member's tier changes, oldest first",
)
def tier_history(
    member_id: uuid.UUID, principal: Reader, session: DbSession
) -> list[TierChangeOut]:
    """Every tier change of the member, oldest first (joined, upgrade, downgrade, manual...), with
    the metric that decided it and the event that triggered it, if one did.

    404: no such member.

    Scope: `read`.
    """
    rows = service.history(session, programme=principal.programme, member_id=member_id)
    return [TierChangeOut.model_validate(r) for r in rows]


@router.put(
    "/members/{member_id}/tier",
    response_model=TierProgressOut,
    summary="Put a member in a tier by hand",
)
def assign_tier(
    member_id: uuid.UUID, body: ManualAssignIn, principal: Admin, session: DbSession
) -> TierProgressOut:
    """Put a member in a tier by hand, invitation-only levels too, until a date or until removed.
    When the assignment ends, the next review gives the level their metric earns. The change is kept
    in the tier history with its reason; a retry puts the member in the same tier again.

    404: no such member. 422: the programme has no tiers, no such level, or `until` is not in the
    future.

    Scope: `admin`.
    """
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


@router.post(
    "/tiers/requalify", response_model=RequalifyOut, summary="Run the tier reviews that are due"
)
def run_requalify(body: RequalifyIn, principal: Admin, session: DbSession) -> RequalifyOut:
    """Review now (or as of `at`) every member whose qualification period, grace period or manual
    assignment has ended: each is kept, upgraded, downgraded or put in grace as the programme's tier
    policies say. The same review also runs daily by itself. A member reviewed is not due again
    until their next period ends, so a second run finds no one to review.

    404: the programme has no tiers. 422: `at` without an offset or out of range.

    Scope: `admin`.
    """
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
