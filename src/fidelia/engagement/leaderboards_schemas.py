"""The ``leaderboards`` section of a programme document, and the API shapes.

A board ranks members on a metric over a period (``week``, ``month``, a ``season`` between two
dates, or a ``challenge``'s own period), programme-wide or per store. Only members who opted in
appear, under the display name they chose or a masked one; ties go to who got there first.
The top ``rewards`` ranks are paid once when the period is over (a job, or ``close``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fidelia.engagement import examples as ex
from fidelia.engagement.schemas import ChallengeReward as Gift
from fidelia.engagement.schemas import EventType, Slug
from fidelia.examples import examples
from fidelia.kit.bounds import Count, Instant


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metric(_Doc):
    """``points`` earned (in ``wallet``) through rules, ``events`` of one type counted, or a
    ``challenge``'s goal measure (``goal`` is its index)."""

    kind: Literal["points", "events", "challenge"]
    wallet: Slug = "points"
    event_type: EventType | None = None
    challenge: Slug | None = None
    goal: Annotated[int, Field(ge=0, le=9)] = 0

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if (self.kind == "events") != (self.event_type is not None):
            raise ValueError("event_type is required with kind events, and only with it")
        if (self.kind == "challenge") != (self.challenge is not None):
            raise ValueError("challenge is required with kind challenge, and only with it")
        return self


class RankGift(Gift):
    ranks: Annotated[list[Count], Field(min_length=2, max_length=2)] = Field(
        description="[first, last] ranks that get this gift, e.g. [1, 3]"
    )


class LeaderboardDef(_Doc):
    code: Slug
    name: str = Field(min_length=1, max_length=200)
    period: Literal["week", "month", "season", "challenge"] = "month"
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    by: Literal["programme", "store"] = "programme"
    metric: Metric
    rewards: list[RankGift] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        season = self.period == "season"
        if season != (self.starts_at is not None and self.ends_at is not None):
            raise ValueError("a season needs starts_at and ends_at (and only a season has them)")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.period == "challenge" and self.metric.challenge is None:
            raise ValueError("period challenge needs a challenge metric")
        for gift in self.rewards:
            if gift.ranks[1] < gift.ranks[0]:
                raise ValueError("ranks are [first, last] with first <= last")
        return self


class BoardEntryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.BOARD_ENTRY))

    rank: int
    member_id: uuid.UUID | None = Field(description="Given to back-office readers only")
    display_name: str
    score: Decimal
    reached_at: datetime


class BoardOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.BOARD))

    board: str
    name: str
    period: str
    scope: str
    entries: list[BoardEntryOut]


class MemberRankOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.MEMBER_RANK))

    board: str
    period: str
    scope: str
    member_id: uuid.UUID
    opted_in: bool
    score: Decimal
    rank: int | None = Field(description="None when the member has not opted in or has no score")
    above: list[BoardEntryOut]
    below: list[BoardEntryOut]


class BoardInfoOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra=examples(
            ex.BOARD_MONTHLY_POINTS, ex.BOARD_RECYCLERS, ex.BOARD_SUMMER_RACE
        )
    )

    board: str
    name: str
    period: str
    current_period: str | None
    by: str
    metric: dict[str, object]
    rewards: list[dict[str, object]]


class ProfileIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra=examples(ex.PROFILE_IN, ex.PROFILE_OPT_OUT),
    )

    opted_in: bool
    display_name: str | None = Field(
        None, min_length=2, max_length=40, pattern=r"^[^\x00-\x1f<>]+$"
    )


class ProfileOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.PROFILE))

    member_id: uuid.UUID
    opted_in: bool
    display_name: str


class PayoutOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.PAYOUT, ex.PAYOUT_DONE_BEFORE))

    board: str
    period: str
    scope: str
    paid: bool = Field(description="False: this period was paid before (nothing done)")
    winners: list[dict[str, object]]
