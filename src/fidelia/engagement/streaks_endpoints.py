"""Streak API: a member's runs of consecutive weeks or months."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from fidelia.auth.dependencies import DbSession, Reader
from fidelia.engagement import streaks
from fidelia.engagement.streaks_schemas import StreakOut
from fidelia.errors import ERROR_RESPONSES
from fidelia.kit.clock import utcnow

router = APIRouter(tags=["engagement"], responses=ERROR_RESPONSES)


@router.get(
    "/members/{member_id}/streaks",
    response_model=list[StreakOut],
    summary="The member's streaks and progress",
)
def member_streaks(member_id: uuid.UUID, principal: Reader, session: DbSession) -> list[StreakOut]:
    """Every streak of the programme with the member's current run as of now (0 once a period
    was missed beyond the freezes), their best run, whether this period is done already, the
    freezes left, and the next length that gives a reward with the periods left to it.

    404: no such member.

    Scope: `read`.
    """
    return streaks.streaks_of(
        session, programme=principal.programme, member_id=member_id, now=utcnow()
    )
