"""The ``traits`` section of a programme document, and the shapes of the traits API.

A programme declares what its members' behaviour is summed up by:

- ``windows``: the frequency and monetary windows, in days (``traits.frequency_90d``...);
- ``rfm``: the named cells of the RFM grid, each a box of R, F (and optionally M) scores; the
  first cell whose box holds a member's scores names them, and every R x F (x M) combination
  must fall in some cell, so that every scored member is named;
- ``lifecycle``: stages in order, each with a condition over ``traits.*`` and ``member.*`` (the
  rules' condition language); the first stage whose condition holds is the member's stage;
- ``affinities``: the dimensions whose shares are kept (category, brand) and the product
  attributes the programme declares, each a mapping from values to SKUs (``CAT-*`` prefixes
  allowed), such as an animal species or a clothing line.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fidelia.examples import examples
from fidelia.kit.bounds import Labels
from fidelia.kit.conditions import Condition
from fidelia.traits import examples as ex

Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
Score = Annotated[int, Field(ge=1, le=5)]
SkuPattern = Annotated[str, Field(min_length=1, max_length=65, pattern=r"^[^*]+\*?$")]
Box = Annotated[list[Score], Field(min_length=2, max_length=2)]
Skus = Annotated[list[SkuPattern], Field(min_length=1, max_length=1000)]
Dimension = Literal["category", "brand"]
DIMENSIONS: tuple[Dimension, ...] = ("category", "brand")


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RfmCell(_Doc):
    """A named box of the RFM grid: scores from ``[low, high]`` on each axis (1-5)."""

    id: Slug
    labels: Labels = Field(default_factory=dict, description="Name per locale")
    r: Box = Field(default_factory=lambda: [1, 5], description="[low, high] R scores")
    f: Box = Field(default_factory=lambda: [1, 5], description="[low, high] F scores")
    m: Box = Field(default_factory=lambda: [1, 5], description="[low, high] M scores")

    def holds(self, r: int, f: int, m: int) -> bool:
        """Whether scores (r, f, m) fall in this cell."""
        return (
            self.r[0] <= r <= self.r[1]
            and self.f[0] <= f <= self.f[1]
            and self.m[0] <= m <= self.m[1]
        )


class RfmSection(_Doc):
    """The RFM grid. Scores are quintiles within the programme (5 = most recent, most...)."""

    cells: list[RfmCell] = Field(min_length=1, max_length=125)

    @model_validator(mode="after")
    def _covers_the_grid(self) -> Self:
        for i, cell in enumerate(self.cells):
            for axis in ("r", "f", "m"):
                low, high = getattr(cell, axis)
                if low > high:
                    raise ValueError(f"cells.{i}.{axis}: low is above high")
        ids = [c.id for c in self.cells]
        if len(set(ids)) != len(ids):
            raise ValueError("cells: cell ids must be unique")
        for r in range(1, 6):
            for f in range(1, 6):
                for m in range(1, 6):
                    if not any(c.holds(r, f, m) for c in self.cells):
                        raise ValueError(f"cells: no cell holds r={r} f={f} m={m} (a hole)")
        return self

    def cell(self, r: int, f: int, m: int) -> str:
        """The id of the first cell holding (r, f, m) (the grid has no hole)."""
        return next(c.id for c in self.cells if c.holds(r, f, m))


class LifecycleStage(_Doc):
    """A lifecycle stage and the condition (over traits.* and member.*) that puts a member in it."""

    id: Slug
    labels: Labels = Field(default_factory=dict, description="Name per locale")
    when: Condition | None = Field(None, description="None: every member (a last, catch-all stage)")


class AffinityAttribute(_Doc):
    """A product attribute the programme declares: each value lists its SKUs or SKU prefixes."""

    id: Slug
    labels: Labels = Field(default_factory=dict, description="Name per locale")
    values: dict[Slug, Skus] = Field(min_length=1, max_length=100)


class AffinitiesSection(_Doc):
    by: list[Dimension] = Field(default_factory=lambda: list(DIMENSIONS), max_length=2)
    attributes: list[AffinityAttribute] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = [*self.by, *(a.id for a in self.attributes)]
        if len(set(names)) != len(names):
            raise ValueError("attributes: affinity dimensions must be unique")
        return self


class TraitsSection(_Doc):
    """What the programme computes about each member (see the module docstring)."""

    windows: list[Annotated[int, Field(ge=1, le=3660)]] = Field(
        default_factory=lambda: [30, 90, 365], min_length=1, max_length=10
    )
    rfm: RfmSection | None = None
    lifecycle: list[LifecycleStage] = Field(default_factory=list, max_length=50)
    affinities: AffinitiesSection = Field(default_factory=AffinitiesSection)
    expiring_within_days: int = Field(30, ge=1, le=3660)

    @model_validator(mode="after")
    def _checks(self) -> Self:
        if len(set(self.windows)) != len(self.windows):
            raise ValueError("windows: windows must be unique")
        ids = [s.id for s in self.lifecycle]
        if len(set(ids)) != len(ids):
            raise ValueError("lifecycle: stage ids must be unique")
        return self

    @property
    def longest(self) -> int:
        return max(self.windows)


# -- API shapes ---------------------------------------------------------------------------------


class WindowFigures(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.WINDOW))

    purchases: int
    spend: Decimal


class Share(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.SHARE))

    purchases: int
    spend: Decimal
    purchases_share: float
    spend_share: float


class PointsExpiring(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.EXPIRING))

    wallet: str
    points: int = Field(description="In the wallet's smallest unit (cents of a money wallet)")
    first_at: datetime | None = Field(None, description="When the first of these points expire")


class TierDistance(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.TIER))

    tier: str | None
    next_tier: str | None
    missing: dict[str, Any] = Field(default_factory=dict, description="Spend, points... to go")
    review_at: datetime | None = None
    days_to_review: int | None = None


class Reachability(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.REACH))

    channel: str
    address: bool = Field(description="The member has an address for this channel")
    consent: bool = Field(description="The member's current consent for this channel")
    reachable: bool


class TraitsOut(BaseModel):
    """Every trait of a member: the stored figures (``member_traits``) as of now; points, tier,
    badges, challenges, last redemption and reachability read from their domains when asked."""

    model_config = ConfigDict(json_schema_extra=examples(ex.TRAITS))

    member_id: uuid.UUID
    computed_at: datetime | None
    recency_days: int | None = Field(description="Whole days since the last purchase")
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    purchases_count: int
    spend_total: Decimal
    average_basket: Decimal | None
    interval_mean_days: float | None
    interval_median_days: float | None
    expected_next_purchase_at: datetime | None
    windows: dict[str, WindowFigures] = Field(description="Per declared window, e.g. '90d'")
    rfm: dict[str, Any] | None = Field(
        description="r, f, m scores (1-5), the named cell and its labels per locale"
    )
    lifecycle_stage: str | None
    lifecycle_stage_labels: dict[str, str] = Field(
        default_factory=dict, description="The stage's name per locale, as the document says"
    )
    affinities: dict[str, dict[str, Share]]
    channel_mix: dict[str, float]
    favourite_store: str | None
    favourite_channel: str | None
    promo_purchases_share: float | None
    promo_spend_share: float | None
    points: dict[str, int] = Field(
        description="Available balance per wallet in its smallest unit: points, or the cents of "
        "a money wallet (944 is 9.44 €; GET /members/{id}/wallets gives money as decimals)"
    )
    points_expiring: list[PointsExpiring]
    tier: TierDistance | None
    badges: list[str]
    open_challenges: list[dict[str, Any]]
    last_redemption_at: datetime | None
    reachability: list[Reachability]
    windows_on: date | None = None
    p_alive: float | None = Field(None, description="P(alive) of the last CLV refresh (BG/NBD)")
    clv: Decimal | None = Field(None, description="Discounted value over the CLV horizon")
    churn_risk: str | None = Field(None, description="low, medium or high (from p_alive)")
