"""Referral API: a member's code, link and referees; the programme's referral figures."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from fidelia.auth.dependencies import DbSession, Integrator, Reader
from fidelia.engagement import referrals
from fidelia.engagement.referrals_schemas import (
    CodeOut,
    MemberReferralOut,
    ProgrammeReferralsOut,
    ReferralOut,
)
from fidelia.errors import ERROR_RESPONSES

router = APIRouter(tags=["referrals"], responses=ERROR_RESPONSES)


@router.get(
    "/members/{member_id}/referral",
    response_model=MemberReferralOut,
    summary="The member's referral code, link, figures and referees",
)
def member_referral(
    member_id: uuid.UUID, principal: Reader, session: DbSession
) -> MemberReferralOut:
    """The member's referral code (given at enrolment, or by `POST` for members enrolled before
    the programme had a referral scheme; a prospect enrols with it: `referral_code` on
    `POST /members` or on an `enrolment` event),
    the shareable link from the programme's `referral.link`, the member's figures (invited,
    enrolled, qualified, rewarded, refusals by reason) and their latest 200 referees.

    404: no such member, or the programme has no `referral` section.

    Scope: `read`.
    """
    return referrals.member_referral(session, programme=principal.programme, member_id=member_id)


@router.post(
    "/members/{member_id}/referral",
    response_model=MemberReferralOut,
    summary="Give the member a referral code (if they have none) and answer as GET",
)
def create_member_referral(
    member_id: uuid.UUID, principal: Integrator, session: DbSession
) -> MemberReferralOut:
    """Members enrolled while the programme has a `referral` section get their code at
    enrolment; this gives one to a member enrolled before (the same code each time: it is
    derived from the member). Idempotent.

    404: no such member, or the programme has no `referral` section.

    Scope: `integration`.
    """
    return referrals.member_referral(
        session, programme=principal.programme, member_id=member_id, create=True
    )


@router.get(
    "/referrals/stats",
    response_model=ProgrammeReferralsOut,
    summary="The programme's referral figures and best referrers",
)
def programme_stats(
    principal: Reader,
    session: DbSession,
    top: Annotated[int, Query(ge=1, le=100)] = 10,
) -> ProgrammeReferralsOut:
    """Invited (every enrolment that named a code, refused ones included), enrolled (linked),
    qualified (first qualifying purchase made), rewarded (the referrer was paid: under the cap),
    refusals by reason code, and the `top` referrers by qualified referees.

    Scope: `read`.
    """
    return referrals.programme_referrals(session, programme=principal.programme, top=top)


@router.get(
    "/referrals",
    response_model=list[ReferralOut],
    summary="Referrals of the programme, latest first",
)
def list_referrals(
    principal: Reader,
    session: DbSession,
    status: Literal["enrolled", "qualified", "reversed", "refused"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[ReferralOut]:
    """Every referrer-referee link (or refusal, with its `reason`), filtered by `status`.

    Scope: `read`.
    """
    return referrals.list_referrals(
        session, programme=principal.programme, status=status, limit=limit, offset=offset
    )


@router.get(
    "/referrals/codes/{code}",
    response_model=CodeOut,
    summary="Check a referral code (for a join page)",
)
def check_code(
    code: str,
    principal: Reader,
    session: DbSession,
) -> CodeOut:
    """Whether the code belongs to a member of the programme, with their masked name
    (`M*** D.`), so that a join page can say who invited the prospect. An unknown code answers
    `valid: false` (200).

    Scope: `read`.
    """
    return referrals.lookup_code(session, programme=principal.programme, code=code[:32])
