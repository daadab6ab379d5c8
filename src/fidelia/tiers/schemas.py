"""The ``tiers`` section of a programme document, and the tier API's shapes.

A programme declares its levels in rank order (the first is the base level everyone holds);
each level above it names the thresholds that qualify for it. Thresholds combine with
``combine`` (``all``: every threshold given; ``any``: one is enough) over the ``window``:
``rolling_12_months`` (reviewed on the first of each month), ``calendar_year`` (reviewed on
1 January), ``anniversary`` (reviewed on the member's enrolment anniversary) or
``since_joining`` (never reviewed: only returns and manual assignments move a member down).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fidelia.examples import examples
from fidelia.kit.bounds import MAX_POSTING, Count, Instant, Labels
from fidelia.tiers import examples as ex

Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
Window = Literal["rolling_12_months", "calendar_year", "anniversary", "since_joining"]
METRICS = ("status_points", "spend", "purchases")


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Doc):
    """What qualifies for a level over the window; give one or more."""

    status_points: Annotated[int, Field(ge=1, le=MAX_POSTING)] | None = None
    spend: Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2)] | None = None
    purchases: Count | None = None

    @model_validator(mode="after")
    def _some(self) -> Self:
        if self.status_points is None and self.spend is None and self.purchases is None:
            raise ValueError("give status_points, spend, purchases or a combination")
        return self


class Perk(_Doc):
    """A benefit shown on the portal (earning rates and prices live in rules and rewards)."""

    model_config = ConfigDict(json_schema_extra=examples(ex.PERK))

    code: Slug
    description: str = Field(min_length=1, max_length=500)
    labels: Labels = Field(default_factory=dict, description="Description per locale")


class TierLevel(_Doc):
    code: Slug
    name: str = Field(min_length=1, max_length=200)
    labels: Labels = Field(default_factory=dict, description="Name per locale")
    requires: Thresholds | None = Field(None, description="None only for the base level")
    invitation_only: bool = Field(False, description="Only a manual assignment gives it")
    perks: list[Perk] = Field(default_factory=list, max_length=50)


class TiersSection(_Doc):
    """Levels in rank order (lowest first) and the policies that move members between them."""

    window: Window = "rolling_12_months"
    combine: Literal["all", "any"] = "all"
    downgrade: Literal["recompute", "one_level"] = Field(
        "one_level", description="At a review: to the level the metric gives, or one level down"
    )
    grace_days: Annotated[int, Field(ge=0, le=366)] = Field(
        0, description="Days a member keeps a level they no longer qualify for after a review"
    )
    on_return: Literal["recompute", "keep"] = Field(
        "recompute",
        description="After a return: recompute the level at once (down included), or keep it "
        "until the next review",
    )
    status_wallet: Slug = Field("status", description="The wallet whose points count as status")
    levels: list[TierLevel] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        codes = [level.code for level in self.levels]
        for i, code in enumerate(codes):
            if code in codes[:i]:
                raise ValueError(f"levels.{i}.code: duplicate level {code!r}")
        base = self.levels[0]
        if base.requires is not None or base.invitation_only:
            raise ValueError("levels.0: the base level has no requires and is not invitation_only")
        for i, level in enumerate(self.levels[1:], start=1):
            if level.requires is None and not level.invitation_only:
                raise ValueError(f"levels.{i}.requires: a level above the base needs thresholds")
        return self

    def rank(self, code: str | None) -> int:
        """The level's position (0: base); an unknown or no level ranks as the base."""
        for i, level in enumerate(self.levels):
            if level.code == code:
                return i
        return 0


class ManualAssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.ASSIGN))

    tier: Slug
    until: Instant | None = Field(None, description="None: until removed")
    reason: str = Field("manual", min_length=1, max_length=200)


class MetricOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.METRIC))

    status_points: int
    spend: Decimal
    purchases: int


class NextTierOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.NEXT))

    tier: str
    name: str
    missing: dict[str, int | Decimal] = Field(description="What is left per threshold")
    by: datetime | None = Field(description="End of the window the metric counts in")


class KeepOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.KEEP))

    needed: dict[str, int | Decimal] = Field(description="What is left to keep the current tier")
    review_at: datetime | None
    grace_until: datetime | None


class TierProgressOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.PROGRESS, ex.GOLD_PROGRESS))

    member_id: uuid.UUID
    tier: str | None
    name: str | None
    source: str
    since: datetime | None
    manual_until: datetime | None
    window: str
    window_start: datetime | None
    window_end: datetime | None
    metric: MetricOut
    next: NextTierOut | None
    keep: KeepOut | None
    perks: list[Perk]


class TierChangeOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra=examples(ex.CHANGE, ex.JOINED)
    )

    id: uuid.UUID
    from_tier: str | None
    to_tier: str
    reason: str
    at: datetime
    event_id: uuid.UUID | None
    metric: dict[str, str | int]


class RequalifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.REQUALIFY))

    at: Instant | None = Field(None, description="Review every member due by then (now)")


class RequalifyOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.REQUALIFY_OUT))

    reviewed: int
    upgraded: int
    downgraded: int
    in_grace: int
    seconds: float
