"""The ``referral`` section of a programme document (member-get-member) and its API shapes.

A referee enrols with a referrer's code: the link is recorded (or refused, with a reason code),
the referee may get a welcome gift at once, and both get theirs when the referee's first
qualifying purchase (at least ``min_amount``, within ``within_days`` of enrolment) arrives.
The referrer's rewards are capped per period; a return of the qualifying purchase takes both
back when ``return_takes_back`` is set.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from fidelia.engagement import examples as ex
from fidelia.engagement.schemas import ChallengeReward as Gift
from fidelia.examples import examples
from fidelia.kit.bounds import Count

REFUSALS = (
    "self_referral",  # the same member, email (aliases folded), phone or postal address
    "already_referred",  # the referee has a referrer already
    "not_new",  # the referee was known to the programme before this enrolment
    "referrer_closed",  # the referrer's membership is closed
)


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FirstPurchase(_Doc):
    min_amount: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)] = Decimal(0)
    within_days: Count = 30
    referee: Gift | None = None
    referrer: Gift | None = None


class ReferrerCap(_Doc):
    rewards: Count = Field(description="Referrer rewards at most, per period")
    period: Literal["month", "year", "ever"] = "month"


class ReferralSection(_Doc):
    link: str = Field(
        "https://example.com/join?ref={code}",
        max_length=300,
        pattern=r"\{code\}",
        description="The shareable link; {code} is replaced by the member's code",
    )
    at_enrolment: Gift | None = Field(None, description="What the referee gets at enrolment")
    first_purchase: FirstPurchase | None = None
    cap: ReferrerCap | None = None
    return_takes_back: bool = True


class ReferralStats(BaseModel):
    model_config = ConfigDict(
        json_schema_extra=examples(ex.MEMBER_REFERRAL_STATS, ex.PROGRAMME_REFERRAL_STATS)
    )

    invited: int = Field(description="Enrolments that named the code (refused ones included)")
    enrolled: int = Field(description="Referees linked to their referrer")
    qualified: int = Field(description="Referees who made their first qualifying purchase")
    rewarded: int = Field(description="Qualifications that paid the referrer (cap not reached)")
    refused: dict[str, int] = Field(default_factory=dict, description="Refusals by reason code")


class ReferralOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra=examples(ex.REFERRAL_QUALIFIED, ex.REFERRAL_ENROLLED, ex.REFERRAL_REFUSED)
    )

    id: uuid.UUID
    referrer_id: uuid.UUID
    referee_id: uuid.UUID
    status: Literal["enrolled", "qualified", "reversed", "refused"]
    reason: str | None
    enrolled_at: datetime
    qualified_at: datetime | None
    order_id: str | None
    referrer_rewarded: bool


class MemberReferralOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.MEMBER_REFERRAL))

    member_id: uuid.UUID
    code: str | None = Field(description="None until the member has one (POST gives one)")
    link: str | None
    stats: ReferralStats
    referred_by: uuid.UUID | None
    referrals: list[ReferralOut]


class ProgrammeReferralsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.PROGRAMME_REFERRALS))

    stats: ReferralStats
    top_referrers: list[dict[str, object]]


class CodeOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.CODE_VALID, ex.CODE_UNKNOWN))

    code: str
    valid: bool
    referrer: str | None = Field(description="The referrer's masked name, for the join page")
