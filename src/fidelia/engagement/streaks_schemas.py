"""The ``streaks`` section of a programme document, and the API shape.

A streak counts consecutive periods (weeks or months, in the programme's time zone) in which
the member had a qualifying event. Reaching a length in ``rewards`` gives that gift once per
run; a missed period resets the run to zero, unless the member still has ``freezes`` left
(each missed period uses one; they come back with a new run).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fidelia.engagement import examples as ex
from fidelia.engagement.schemas import ChallengeReward as Gift
from fidelia.engagement.schemas import EventType, Slug
from fidelia.examples import examples
from fidelia.kit.bounds import Count
from fidelia.kit.conditions import Condition


class LengthGift(Gift):
    length: Count


class StreakDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Slug
    name: str = Field(min_length=1, max_length=200)
    event_type: EventType = "purchase"
    when: Condition | None = None
    period: Literal["week", "month"] = "week"
    freezes: int = Field(0, ge=0, le=52, description="Missed periods forgiven per run")
    rewards: list[LengthGift] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _lengths(self) -> Self:
        lengths = [g.length for g in self.rewards]
        if len(set(lengths)) != len(lengths):
            raise ValueError("each length may have one reward")
        return self


class StreakOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.STREAK))

    streak: str
    name: str
    period: str
    current: int = Field(description="Consecutive periods, as of now (0: broken or never)")
    best: int
    this_period_done: bool
    freezes_left: int
    next_reward_at: int | None = Field(description="The next length with a reward")
    left: int | None = Field(description="Periods left to it")
