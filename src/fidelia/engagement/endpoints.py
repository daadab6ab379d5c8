"""Engagement API: a member's badges and challenge progress (read)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from fidelia.auth.dependencies import DbSession, Reader
from fidelia.engagement import queries
from fidelia.engagement.schemas import BadgeOut, ChallengeOut
from fidelia.errors import ERROR_RESPONSES
from fidelia.kit.clock import utcnow

router = APIRouter(tags=["engagement"], responses=ERROR_RESPONSES)


@router.get(
    "/members/{member_id}/badges",
    response_model=list[BadgeOut],
    summary="The member's badges",
)
def member_badges(member_id: uuid.UUID, principal: Reader, session: DbSession) -> list[BadgeOut]:
    """The badges the member earned, oldest first: each level with the date it was earned, and what
    gave it (a rule, a challenge, the badge's own condition) with the event, if one did.

    404: no such member.

    Scope: `read`.
    """
    return queries.badges_of(session, programme=principal.programme, member_id=member_id)


@router.get(
    "/members/{member_id}/challenges",
    response_model=list[ChallengeOut],
    summary="The member's challenges and progress",
)
def member_challenges(
    member_id: uuid.UUID, principal: Reader, session: DbSession
) -> list[ChallengeOut]:
    """Every challenge of the programme with the member's progress toward each goal (target,
    progress, what is left), its status (`upcoming`, `active`, `completed`, `ended`), how many times
    the member completed it, and its reward.

    404: no such member.

    Scope: `read`.
    """
    return queries.challenges_of(
        session, programme=principal.programme, member_id=member_id, now=utcnow()
    )
