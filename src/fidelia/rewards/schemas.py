"""Rewards documents: catalogue entries, voucher pools, redemptions and till requests.

Money crosses the API as decimal strings in the programme currency; points are integers.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fidelia.examples import examples
from fidelia.kit.bounds import Count, FreeJson, Instant, Labels, ShortText, Stock
from fidelia.kit.conditions import parse_condition
from fidelia.rewards import examples as ex

Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
Money = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=4)]
Points = Annotated[int, Field(ge=1, le=1_000_000_000)]
Key = Annotated[str, Field(min_length=1, max_length=200)]
RewardKind = Literal[
    "voucher", "product", "donation", "experience", "event", "early_access", "cashback"
]
FULFILLED_KINDS = ("product", "experience", "event", "early_access")
CODE_CHARS = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,63}$")
MIN_RANDOM_CHARS = 8


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RewardIn(_In):
    """A catalogue entry. Kind-specific fields: ``pool`` (voucher: the pool its codes come
    from), ``association`` (donation), ``value`` (the money a unit stands for: the donation
    made, the cashback credited, or a product's value for reporting)."""

    model_config = ConfigDict(
        json_schema_extra=examples(ex.REWARD_IN, ex.DONATION_IN, ex.WORKSHOP_IN)
    )

    code: Slug
    kind: RewardKind
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    labels: Labels = Field(default_factory=dict, description="Name per locale")
    cost_points: Points
    cost_by_tier: dict[ShortText, Points] = Field(
        default_factory=dict,
        max_length=20,
        description="Price in points for members of these tiers",
    )
    stock: Stock | None = Field(default=None, description="None: unlimited")
    available_from: Instant | None = None
    available_until: Instant | None = None
    eligible_tiers: list[ShortText] = Field(
        default_factory=list, max_length=20, description="Empty: every tier"
    )
    condition: Any | None = Field(
        default=None, description="Condition over {member: {...}, state: {...}}"
    )
    limit_per_member: Count | None = None
    first_n: Count | None = Field(default=None, description="Only the first N members")
    featured: bool = False
    visible: bool = True
    pool: Slug | None = None
    association: str | None = Field(default=None, min_length=1, max_length=200)
    value: Money | None = None

    @field_validator("condition")
    @classmethod
    def _condition(cls, value: Any) -> Any:
        if value is not None:
            parse_condition(value, loc=("condition",))
        return value

    @model_validator(mode="after")
    def _kind_fields(self) -> Self:
        start, end = self.available_from, self.available_until
        if start and end and end <= start:
            raise ValueError("available_until must be after available_from")
        if self.kind == "voucher" and self.pool is None:
            raise ValueError("a voucher reward needs 'pool' (the voucher pool of its codes)")
        if self.kind != "voucher" and self.pool is not None:
            raise ValueError("only a voucher reward takes 'pool'")
        if self.kind == "donation" and (self.association is None or not self.value):
            raise ValueError("a donation needs 'association' and 'value' (money per unit)")
        if self.kind == "cashback" and not self.value:
            raise ValueError("a cashback conversion needs 'value' (money credited per unit)")
        return self


class RewardUpdate(_In):
    """A partial update; ``code`` and ``kind`` cannot change."""

    model_config = ConfigDict(json_schema_extra=examples(ex.REWARD_UPDATE))

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    labels: Labels | None = None
    cost_points: Points | None = None
    cost_by_tier: dict[ShortText, Points] | None = Field(default=None, max_length=20)
    stock: Stock | None = None
    available_from: Instant | None = None
    available_until: Instant | None = None
    eligible_tiers: list[ShortText] | None = Field(default=None, max_length=20)
    condition: Any | None = None
    limit_per_member: Count | None = None
    first_n: Count | None = None
    featured: bool | None = None
    visible: bool | None = None
    pool: Slug | None = None
    association: str | None = Field(default=None, min_length=1, max_length=200)
    value: Money | None = None


class RewardOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.REWARD, ex.DONATION))

    id: uuid.UUID
    code: str
    kind: str
    name: str
    description: str
    labels: dict[str, str]
    cost_points: int
    cost_by_tier: dict[str, int]
    stock: int | None
    available_from: datetime | None
    available_until: datetime | None
    eligible_tiers: list[str]
    condition: Any | None
    limit_per_member: int | None
    first_n: int | None
    featured: bool
    visible: bool
    archived: bool
    pool: str | None
    association: str | None
    value: Decimal | None
    created_at: datetime
    updated_at: datetime


class MemberRewardOut(BaseModel):
    """A catalogue entry as one member sees it: price resolved, eligibility explained."""

    model_config = ConfigDict(
        json_schema_extra=examples(ex.MEMBER_REWARD, ex.MEMBER_REWARD_BLOCKED)
    )

    reward: RewardOut
    price: int = Field(description="Points this member pays (tier price if any)")
    eligible: bool = Field(description="The member may redeem it now (points aside)")
    reasons: list[str] = Field(
        description="Why not: not_available, tier, condition, out_of_stock, limit_reached, "
        "first_n_reached"
    )
    affordable: bool = Field(description="The member's available points cover the price")


class RedeemIn(_In):
    model_config = ConfigDict(json_schema_extra=examples(ex.REDEEM, ex.REDEEM_WORKSHOP))

    reward: str = Field(min_length=1, max_length=64, description="The reward's code or id")
    idempotency_key: Key = Field(description="A retry with the same key returns the first result")
    quantity: int = Field(default=1, ge=1, le=100)
    fulfilment: FreeJson = Field(
        default_factory=dict, description="What fulfilment needs (delivery address, guests...)"
    )


class CancelIn(_In):
    model_config = ConfigDict(json_schema_extra=examples(ex.CANCEL))

    reason: str = Field(min_length=1, max_length=2000)
    actor: str = Field(min_length=1, max_length=200)


class FulfilIn(_In):
    model_config = ConfigDict(json_schema_extra=examples(ex.FULFIL))

    actor: str = Field(min_length=1, max_length=200)
    details: FreeJson = Field(default_factory=dict, description="Tracking number, notes...")


class PoolIn(_In):
    """A voucher pool: the discount its codes give, and how codes are made.

    ``pattern``: ``X`` stands for one random character (digits and capitals without the
    ambiguous 0, O, 1, I, L), anything else is literal, e.g. ``WELCOME-XXXX-XXXX``; at least 8
    ``X``. Without a pattern, codes must be imported. Validity: fixed dates and/or
    ``validity_days`` after issue (the earlier end wins)."""

    model_config = ConfigDict(json_schema_extra=examples(ex.POOL_IN, ex.PERCENT_POOL_IN))

    code: Slug
    name: str = Field(min_length=1, max_length=200)
    pattern: str | None = Field(default=None, min_length=8, max_length=64)
    discount_type: Literal["amount", "percent"]
    discount_value: Money = Field(gt=0)
    min_basket: Money | None = None
    categories: list[ShortText] = Field(
        default_factory=list, max_length=100, description="Empty: the whole basket"
    )
    max_uses: int = Field(default=1, ge=1, le=1_000_000, description="1: single-use")
    valid_from: Instant | None = None
    valid_until: Instant | None = None
    validity_days: int | None = Field(default=None, ge=1, le=3650)

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not CODE_CHARS.match(value):
            raise ValueError("capitals, digits and '-' only")
        if value.count("X") < MIN_RANDOM_CHARS:
            raise ValueError(f"needs at least {MIN_RANDOM_CHARS} 'X' (random characters)")
        return value

    @model_validator(mode="after")
    def _discount(self) -> Self:
        if self.discount_type == "percent" and self.discount_value > 100:
            raise ValueError("a percentage discount is at most 100")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class PoolUpdate(_In):
    model_config = ConfigDict(json_schema_extra=examples(ex.POOL_UPDATE))

    name: str | None = Field(default=None, min_length=1, max_length=200)
    valid_from: Instant | None = None
    valid_until: Instant | None = None
    validity_days: int | None = Field(default=None, ge=1, le=3650)

    @field_validator("name")
    @classmethod
    def _name_stays(cls, value: str | None) -> str:
        # absent leaves the name as it is; null would remove it, and a pool always has one
        if value is None:
            raise ValueError("a pool keeps a name: give a new one or leave the field out")
        return value


class PoolOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.POOL))

    id: uuid.UUID
    code: str
    name: str
    pattern: str | None
    discount_type: str
    discount_value: Decimal
    min_basket: Decimal | None
    categories: list[str]
    max_uses: int
    valid_from: datetime | None
    valid_until: datetime | None
    validity_days: int | None
    counts: dict[str, int] = Field(description="Vouchers of the pool by status")


class GenerateIn(_In):
    model_config = ConfigDict(json_schema_extra=examples(ex.GENERATE))

    count: int = Field(ge=1, le=100_000)


class ImportIn(_In):
    model_config = ConfigDict(json_schema_extra=examples(ex.IMPORT))

    codes: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=100_000
    )
    bearer: bool = Field(
        default=False,
        description="True: the codes are usable now by anyone (a printed campaign code); "
        "False: they stock the pool and are handed out one by one when issued",
    )


class CodesOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.CODES))

    created: int
    codes: list[str] = Field(description="The codes created (at most the first 1,000)")


class IssueIn(_In):
    model_config = ConfigDict(json_schema_extra=examples(ex.ISSUE))

    member_id: uuid.UUID | None = Field(default=None, description="None: a bearer voucher")
    idempotency_key: Key
    actor: str = Field(min_length=1, max_length=200)


class VoucherOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.VOUCHER))

    id: uuid.UUID
    code: str
    pool: str
    member_id: uuid.UUID | None
    redemption_id: uuid.UUID | None
    status: str
    uses: int
    max_uses: int
    valid_from: datetime | None
    valid_until: datetime | None
    source: str
    source_id: str | None
    issued_at: datetime | None
    discount_type: str
    discount_value: Decimal


class LineIn(_In):
    model_config = ConfigDict(json_schema_extra=examples(ex.LINE))

    sku: str = Field(min_length=1, max_length=100)
    category: str | None = Field(default=None, max_length=100)
    quantity: Decimal = Field(gt=0, max_digits=12, decimal_places=3)
    unit_price: Money


class BasketIn(_In):
    model_config = ConfigDict(json_schema_extra=examples(ex.BASKET))

    total: Money | None = Field(default=None, description="Default: the sum of the lines")
    lines: list[LineIn] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.total is None and not self.lines:
            raise ValueError("give the basket's total or its lines")
        return self


class ValidateIn(_In):
    model_config = ConfigDict(json_schema_extra=examples(ex.VALIDATE))

    code: str = Field(min_length=1, max_length=64)
    member_id: uuid.UUID | None = None
    basket: BasketIn


class RedeemVoucherIn(ValidateIn):
    model_config = ConfigDict(json_schema_extra=examples(ex.REDEEM_VOUCHER))

    order_id: Key = Field(description="A retry with the same order id returns the first result")


class ValidationOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.VALID, ex.INVALID))

    valid: bool
    reason: str | None = Field(
        description="unknown, not_issued, cancelled, used, expired, not_yet_valid, foreign, "
        "member_required, min_basket, no_applicable_items"
    )
    detail: str
    code: str
    voucher_id: uuid.UUID | None = None
    discount: Decimal = Field(description="What the code takes off this basket")
    uses_left: int | None = None
    valid_until: datetime | None = None


class VoucherUseOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.VOUCHER_USE))

    voucher_id: uuid.UUID
    code: str
    order_id: str
    member_id: uuid.UUID | None
    discount: Decimal
    basket_total: Decimal
    used_at: datetime
    uses_left: int


class RedemptionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.REDEMPTION))

    id: uuid.UUID
    member_id: uuid.UUID
    reward_id: uuid.UUID
    reward: str
    kind: str
    status: str
    idempotency_key: str
    quantity: int
    points: int
    value: Decimal | None
    association: str | None
    spend_transaction_id: uuid.UUID | None
    refund_transaction_id: uuid.UUID | None
    cashback_transaction_id: uuid.UUID | None
    voucher: VoucherOut | None
    fulfilment: dict[str, Any]
    requested_at: datetime
    issued_at: datetime | None
    used_at: datetime | None
    expires_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None


class DonationTotalOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.DONATION_TOTAL))

    association: str
    donations: int
    points: int
    value: Decimal
