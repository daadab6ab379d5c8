"""Analytics documents: the KPI, cohort and liability answers (JSON; flattened for CSV)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fidelia.analytics import examples as ex
from fidelia.examples import examples

Grain = Literal["day", "week", "month"]
GroupBy = Literal["none", "store", "channel"]


class Activation(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.ACTIVATION))

    days: int = Field(description="The window after enrolment")
    enrolled: int = Field(description="Members enrolled in the period")
    activated: int = Field(description="Of them, those who bought within `days` of enrolling")
    rate: float | None


class Headline(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.HEADLINE))

    enrolments: int
    members_at_end: int = Field(description="Members enrolled before the end of the period")
    active_members: int = Field(description="Members with at least one purchase in the period")
    repeat_members: int = Field(description="Members with two purchases or more in the period")
    repeat_rate: float | None
    member_orders: int
    member_sales: Decimal
    non_member_orders: int = Field(description="Anonymous purchases (customers not members)")
    non_member_sales: Decimal
    member_order_share: float | None = Field(description="Member orders / all orders")
    member_sales_share: float | None
    enrolment_rate: float | None = Field(
        description="Enrolments / (enrolments + non-member orders): of the occasions to join "
        "(a non-member's purchase), the share taken; None without anonymous purchases"
    )
    frequency: float | None = Field(description="Orders per active member")
    spend_per_member: Decimal | None = Field(description="Sales per active member")
    basket_member: Decimal | None
    basket_non_member: Decimal | None
    activation: Activation
    member_returns: int = Field(description="Return events in the period (on their own day)")
    member_refunds: Decimal = Field(
        description="Their `refund_total`; a return without one is valued from its purchase: "
        "each returned unit at its line's amount per unit (after the line's discount), "
        "shipping excluded"
    )
    member_sales_net: Decimal = Field(description="Member sales less the refunds of the period")
    spend_per_member_net: Decimal | None = Field(description="Net sales per active member")
    basket_member_net: Decimal | None = Field(description="Net sales per member order")


class SeriesRow(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.SERIES_ROW))

    bucket: date = Field(description="First day of the day, week (Monday) or month")
    enrolments: int
    active_members: int
    member_orders: int
    member_sales: Decimal
    non_member_orders: int
    non_member_sales: Decimal


class GroupRow(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.GROUP_ROW))

    key: str = Field(description="The store or channel ('' when the event gave none)")
    enrolments: int
    member_orders: int
    member_sales: Decimal
    non_member_orders: int
    non_member_sales: Decimal
    basket_member: Decimal | None
    basket_non_member: Decimal | None


class RulePoints(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.RULE_POINTS))

    rule: str | None
    issued: int


class WalletPoints(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.WALLET_POINTS))

    wallet: str
    unit: str
    issued: int = Field(description="Earned in the period (minor units of the wallet)")
    redeemed: int
    expired: int
    returned: int = Field(description="Taken back by returns and reversals")
    adjusted: int = Field(description="Net of manual adjustments and transfers")
    outstanding_at_end: int = Field(description="Sum of member balances at the end (as of)")
    redemption_rate: float | None = Field(description="Redeemed / issued in the period")
    breakage_rate: float | None = Field(description="Expired / (expired + redeemed)")
    liability_money: Decimal | None = Field(description="Outstanding x the wallet's unit value")
    cost_of_redemptions: Decimal | None = Field(
        description="Points redeemed in the period x the wallet's unit value"
    )
    by_rule: list[RulePoints]


class RewardRow(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.REWARD_ROW))

    reward: str
    redemptions: int
    points: int
    value: Decimal | None = Field(description="The rewards' money value (minor units / 100)")


class Vouchers(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.VOUCHERS))

    issued: int
    used: int = Field(description="Of the vouchers issued in the period, those used since")
    conversion: float | None
    orders_with_voucher: int = Field(description="Orders that used a voucher in the period")
    revenue_with_voucher: Decimal


class TierRow(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.TIER_ROW))

    tier: str
    members: int


class TierFlow(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.TIER_FLOW))

    from_tier: str | None
    to_tier: str
    changes: int


class Tiers(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.TIERS))

    members_now: list[TierRow]
    flows: list[TierFlow] = Field(description="Tier changes in the period, from -> to")


class TierStock(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.TIER_STOCK))

    tier: str
    members: int = Field(description="Members holding the tier at the bucket's end")


class TierPeriod(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.TIER_PERIOD))

    bucket: date = Field(description="First day of the day, week (Monday) or month")
    end: date = Field(description="The stock is counted before this day (UTC midnight)")
    members: list[TierStock] = Field(description="Highest tier first")
    joined: int = Field(description="Members given their first tier in the bucket")
    upgrades: int = Field(description="Changes to a higher tier (ranks of the live document)")
    downgrades: int
    lateral: int = Field(description="Changes between tiers of the same or of unknown rank")
    flows: list[TierFlow] = Field(description="The bucket's changes, from -> to")


class TiersOverTimeOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.TIERS_OVER_TIME))

    start: date
    end: date = Field(description="Last day included (UTC days)")
    grain: Grain
    tiers: list[str] = Field(description="The live document's tiers, lowest first")
    periods: list[TierPeriod]


class KpisOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.KPIS))

    start: date
    end: date = Field(description="Last day included (UTC days)")
    grain: Grain
    group_by: GroupBy
    currency: str
    refreshed_to: datetime = Field(description="The aggregates include what arrived until then")
    headline: Headline
    series: list[SeriesRow]
    groups: list[GroupRow]
    points: list[WalletPoints]
    rewards: list[RewardRow]
    vouchers: Vouchers
    tiers: Tiers


class CohortRow(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.COHORT_ROW))

    cohort: date = Field(description="Enrolment month")
    members: int
    active: list[int] = Field(description="Members buying in month k after enrolment, k=1..12")
    retention: list[float | None] = Field(description="active[k] / members")
    repeat_members: int = Field(description="Members with two purchases or more, ever")


class CohortsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.COHORTS))

    start: date
    end: date
    refreshed_to: datetime
    cohorts: list[CohortRow]


class ForecastMonth(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.FORECAST_MONTH))

    month: int = Field(description="1..12: months (of 30 days) after the date")
    until: datetime
    expected_redeemed: int
    expected_expired: int = Field(description="Breakage: points expected to expire unredeemed")
    expected_outstanding: int = Field(description="Of the points outstanding at the date")
    expected_liability_money: Decimal | None
    actual_redeemed: int | None = Field(description="Back-test only: what happened")
    actual_expired: int | None
    actual_outstanding: int | None


class LiabilityOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.LIABILITY))

    wallet: str
    at: datetime
    outstanding: int = Field(description="Member balances at `at`, available and pending")
    available: int
    pending: int
    liability_money: Decimal | None
    unit_value: Decimal
    redemption_curve: list[float | None] = Field(
        description="Historical share of a lot's remaining points redeemed at age k months"
    )
    expected_breakage: int = Field(description="Of `outstanding`, expected to expire unredeemed")
    breakage_rate: float | None
    forecast: list[ForecastMonth]
    backtest: bool = Field(description="True when `at` is in the past and actuals are filled")
