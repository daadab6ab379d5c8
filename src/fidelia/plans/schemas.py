"""The ``plans`` and ``till`` sections of the programme document, and the plans API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fidelia.errors import ValidationFailed
from fidelia.examples import examples
from fidelia.kit.bounds import Instant, ShortText
from fidelia.plans import examples as ex
from fidelia.tiers.schemas import Perk

Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
Price = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=4)]
Multiplier = Annotated[Decimal, Field(ge=1, le=10, max_digits=6, decimal_places=3)]
Status = Literal["trialing", "active", "past_due", "cancelled", "expired"]
LIVE_STATES = ("trialing", "active", "past_due")


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Benefits(_Doc):
    """What a live subscription gives, from the moment it starts until it stops."""

    model_config = ConfigDict(json_schema_extra=examples(ex.BENEFITS))

    earning_multiplier: Multiplier = Field(
        Decimal(1), description="Purchase earnings (spend rules) into `wallet` are multiplied"
    )
    wallet: Slug = Field("points", description="The wallet the multiplier applies to")
    tier_floor: Slug | None = Field(None, description="The member counts at least at this tier")
    exclusive_rewards: list[Slug] = Field(
        default_factory=list, max_length=50, description="Rewards only subscribers may redeem"
    )
    perks: list[Perk] = Field(default_factory=list, max_length=50)


class PlanDef(_Doc):
    """A paid membership plan: its price per period, trial and grace, and its benefits."""

    model_config = ConfigDict(json_schema_extra=examples(ex.PLAN))

    code: Slug
    name: str = Field(min_length=1, max_length=200)
    period: Literal["month", "year"]
    price: Price
    currency: str = Field(max_length=3, pattern=r"^[A-Z]{3}$")
    trial_days: Annotated[int, Field(ge=0, le=365)] = 0
    grace_days: Annotated[int, Field(ge=0, le=60)] = Field(
        7, description="Days a past-due subscription keeps its benefits while payment is retried"
    )
    active: bool = Field(True, description="False: no new subscription (existing ones go on)")
    benefits: Benefits = Field(default_factory=Benefits)


class TillSection(_Doc):
    """Which wallets a member may pay with at the till (their value: the wallet's unit value)."""

    pay_with: list[Slug] = Field(default_factory=lambda: ["cashback"], max_length=5)
    min_order: Decimal = Field(Decimal(0), ge=0, max_digits=12, decimal_places=4)


def check_section(doc: Any) -> None:
    """Cross-section checks of ``plans`` and ``till`` (``doc`` is a ProgrammeDocument)."""
    seen: set[str] = set()
    levels = {level.code for level in doc.tiers.levels} if doc.tiers else set()
    rewards = {r.code for r in doc.rewards}
    wallets = {w.code: w for w in doc.wallets} if doc.wallets is not None else None
    for i, plan in enumerate(doc.plans):
        if plan.code in seen:
            raise ValidationFailed.on(("plans", i, "code"), f"duplicate code {plan.code!r}")
        seen.add(plan.code)
        floor = plan.benefits.tier_floor
        if floor is not None and floor not in levels:
            raise ValidationFailed.on(("plans", i, "benefits", "tier_floor"), "no such tier")
        for j, code in enumerate(plan.benefits.exclusive_rewards):
            if code not in rewards:
                loc = ("plans", i, "benefits", "exclusive_rewards", j)
                raise ValidationFailed.on(loc, "declare it in rewards")
        if wallets is not None and plan.benefits.wallet not in wallets:
            raise ValidationFailed.on(("plans", i, "benefits", "wallet"), "no such wallet")
    if doc.till is not None:
        for j, code in enumerate(doc.till.pay_with):
            wallet = wallets.get(code) if wallets is not None else None
            if wallets is None and code in ("points", "cashback"):
                continue
            if wallet is None or not wallet.spendable:
                raise ValidationFailed.on(
                    ("till", "pay_with", j), "no spendable wallet by this code"
                )


class SubscribeIn(BaseModel):
    """An operator starts a subscription for the member (the provider's payments follow)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.SUBSCRIBE))

    plan: Slug
    provider_ref: ShortText | None = Field(
        None, description="The payment provider's subscription id, for its webhook events"
    )
    paid: bool = Field(
        False,
        description="True: the first period is paid (active at once, the trial skipped)",
    )


class SubscriptionActionIn(BaseModel):
    """An operator's change: cancel now, or record a payment (renew) or a failed one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.ACTION))

    action: Literal["cancel", "renew", "payment_failed"]
    reason: ShortText | None = None


class SubscriptionChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ex.CHANGE))

    from_status: str | None
    to_status: str
    at: datetime
    cause: str
    period_end: datetime | None
    actor: str | None


class PlanSubscriptionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.SUBSCRIPTION))

    id: uuid.UUID
    member_id: uuid.UUID
    plan: str
    status: Status = Field(description="The state now (a lapsed period counts at once)")
    stored_status: Status = Field(description="The state last written")
    benefits_active: bool
    provider_ref: str | None
    started_at: datetime
    trial_ends_at: datetime | None
    period_end: datetime
    grace_until: datetime | None
    cancelled_at: datetime | None
    ended_at: datetime | None
    benefits: Benefits
    history: list[SubscriptionChangeOut] = Field(default_factory=list)


class PlanOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.PLAN_OUT))

    plan: PlanDef
    live: int = Field(description="Live subscriptions (trialing, active, past due)")
    by_status: dict[str, int]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.ENDPOINT_IN))

    name: str = Field(min_length=1, max_length=100)


class EndpointOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.ENDPOINT))

    id: uuid.UUID
    name: str
    url: str = Field(description="Where the provider posts its events")
    secret: str | None = Field(None, description="Shown once, when the endpoint is created")
    created_at: datetime
    revoked_at: datetime | None = None


class PaymentEventIn(BaseModel):
    """The generic payment provider's event (see docs/offers-and-membership.md)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.PAYMENT_EVENT))

    id: str = Field(min_length=1, max_length=200, description="The provider's event id")
    type: Literal[
        "subscription.created",
        "payment.succeeded",
        "payment.failed",
        "subscription.cancelled",
    ]
    created: Instant | None = None
    subscription: str = Field(min_length=1, max_length=200, description="Provider subscription id")
    member_id: uuid.UUID | None = Field(None, description="Required with subscription.created")
    plan: Slug | None = Field(None, description="Required with subscription.created")
    amount: Decimal | None = Field(None, ge=0, max_digits=12, decimal_places=4)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    period_end: Instant | None = Field(
        None, description="The paid period's end, if the provider says"
    )

    @model_validator(mode="after")
    def _created_names_member(self) -> Self:
        if self.type == "subscription.created" and (self.member_id is None or self.plan is None):
            raise ValueError("subscription.created needs member_id and plan")
        return self


class PaymentOutcomeOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.PAYMENT_OUTCOME))

    id: uuid.UUID
    outcome: str
    detail: str | None
    subscription: PlanSubscriptionOut | None = None


class PlanSweepOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.SWEEP))

    changed: int = Field(description="Subscriptions whose lapse was written")
