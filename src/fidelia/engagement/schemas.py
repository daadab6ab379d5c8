"""The ``badges`` and ``challenges`` sections of a programme document, and the API shapes.

A badge counts the member's events of one type that pass its ``when`` condition; ``levels``
lists the counts that give each level (``[1]``: one-time, the first event gives it; ``[5]``:
"Critic" after five reviews; ``[1, 5, 10]``: three levels). A badge without ``event_type`` is
given only by a rule's ``badge`` effect or a challenge's reward.

A challenge is a set of goals (counts or sums of events, e.g. 5 purchases and 300 € of spend)
to reach between ``starts_at`` and ``ends_at``; completing it gives its reward (points through
the ledger, a voucher through the rewards domain, a badge) once, or again on every completion
when it is ``repeatable`` (progress restarts from zero), up to ``max_completions``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fidelia.engagement import examples as ex
from fidelia.examples import examples
from fidelia.kit.bounds import MAX_POSTING, Count, Instant, Labels
from fidelia.kit.conditions import Condition

Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
EventType = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.]*$")]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BadgeDef(_Doc):
    code: Slug
    name: str = Field(min_length=1, max_length=200)
    labels: Labels = Field(default_factory=dict, description="Name per locale")
    description: str = Field("", max_length=1000)
    event_type: EventType | None = Field(None, description="None: given by effects only")
    when: Condition | None = Field(
        None, description="Condition over event.*, member.segments and traits.*"
    )
    levels: list[Count] = Field(default_factory=lambda: [1], min_length=1, max_length=20)

    @model_validator(mode="after")
    def _ascending(self) -> Self:
        if any(b <= a for a, b in zip(self.levels, self.levels[1:], strict=False)):
            raise ValueError("levels must be strictly ascending counts")
        if self.when is not None and self.event_type is None:
            raise ValueError("a badge with 'when' needs an event_type")
        return self


class Goal(_Doc):
    """``count`` events, their ``spend`` (purchase baskets) or the ``sum`` of a property."""

    event_type: EventType = "purchase"
    when: Condition | None = None
    measure: Literal["count", "spend", "sum"] = "count"
    property: str | None = Field(None, max_length=64, description="For sum: the property")
    target: Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2)]

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if (self.measure == "sum") != (self.property is not None):
            raise ValueError("property is required with measure sum, and only with it")
        if self.measure == "spend" and self.event_type != "purchase":
            raise ValueError("spend is measured on purchases only")
        return self


class ChallengeReward(_Doc):
    points: Annotated[int, Field(ge=1, le=MAX_POSTING)] | None = None
    wallet: Slug = "points"
    voucher: Slug | None = Field(None, description="A voucher pool or voucher reward code")
    badge: Slug | None = None

    @model_validator(mode="after")
    def _some(self) -> Self:
        if self.points is None and self.voucher is None and self.badge is None:
            raise ValueError("give points, a voucher, a badge or several")
        return self


class ChallengeDef(_Doc):
    code: Slug
    name: str = Field(min_length=1, max_length=200)
    labels: Labels = Field(default_factory=dict)
    description: str = Field("", max_length=1000)
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    goals: list[Goal] = Field(min_length=1, max_length=10)
    reward: ChallengeReward
    repeatable: bool = False
    max_completions: Count | None = None

    @model_validator(mode="after")
    def _period(self) -> Self:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.max_completions is not None and not self.repeatable:
            raise ValueError("max_completions needs repeatable: true")
        return self

    def active(self, at: datetime) -> bool:
        """Whether events at ``at`` count."""
        return (self.starts_at is None or self.starts_at <= at) and (
            self.ends_at is None or at < self.ends_at
        )


class BadgeOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.BADGE, ex.CRITIC))

    badge: str
    name: str
    labels: dict[str, str]
    level: int
    levels: int
    earned_at: datetime
    source: str
    event_id: uuid.UUID | None


class GoalProgressOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.GOAL))

    event_type: str
    measure: str
    target: Decimal
    progress: Decimal
    left: Decimal


class ChallengeOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.CHALLENGE, ex.RECYCLER))

    challenge: str
    name: str
    labels: dict[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    status: Literal["upcoming", "active", "completed", "ended"]
    completions: int
    repeatable: bool
    goals: list[GoalProgressOut]
    reward: dict[str, Any]
