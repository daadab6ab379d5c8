"""Examples of the analytics answers for the API documentation (the Earth Care story:
a year of the programme, to the end of November 2026)."""

from __future__ import annotations

from fidelia.examples import JsonObject

ACTIVATION: JsonObject = {"days": 30, "enrolled": 1840, "activated": 1104, "rate": 0.6}
HEADLINE: JsonObject = {
    "enrolments": 1840, "members_at_end": 12410, "active_members": 6920,
    "repeat_members": 3806, "repeat_rate": 0.55, "member_orders": 24570,
    "member_sales": "1032790.40", "non_member_orders": 9120, "non_member_sales": "281280.00",
    "member_order_share": 0.729297, "member_sales_share": 0.785939, "enrolment_rate": 0.167883,
    "frequency": 3.550578, "spend_per_member": "149.25", "basket_member": "42.03",
    "basket_non_member": "30.84", "activation": ACTIVATION, "member_returns": 610,
    "member_refunds": "21480.30", "member_sales_net": "1011310.10",
    "spend_per_member_net": "146.14", "basket_member_net": "41.16",
}  # fmt: skip
SERIES_ROW: JsonObject = {
    "bucket": "2026-11-01", "enrolments": 162, "active_members": 1710, "member_orders": 2215,
    "member_sales": "95120.55", "non_member_orders": 801, "non_member_sales": "24988.10",
}  # fmt: skip
GROUP_ROW: JsonObject = {
    "key": "lyon-part-dieu", "enrolments": 410, "member_orders": 6120,
    "member_sales": "251330.90", "non_member_orders": 2480, "non_member_sales": "74112.00",
    "basket_member": "41.07", "basket_non_member": "29.88",
}  # fmt: skip
RULE_POINTS: JsonObject = {"rule": "base", "issued": 1012400}
WALLET_POINTS: JsonObject = {
    "wallet": "points", "unit": "points", "issued": 1086300, "redeemed": 512000,
    "expired": 96200, "returned": 18400, "adjusted": 2500, "outstanding_at_end": 1490300,
    "redemption_rate": 0.471325, "breakage_rate": 0.158216, "liability_money": "14903.00",
    "cost_of_redemptions": "5120.00", "by_rule": [RULE_POINTS],
}  # fmt: skip
REWARD_ROW: JsonObject = {
    "reward": "voucher-10",
    "redemptions": 2560,
    "points": 512000,
    "value": "25600.00",
}
VOUCHERS: JsonObject = {
    "issued": 2700, "used": 2210, "conversion": 0.818519, "orders_with_voucher": 2198,
    "revenue_with_voucher": "118540.20",
}  # fmt: skip
TIER_ROW: JsonObject = {"tier": "silver", "members": 2140}
TIER_FLOW: JsonObject = {"from_tier": "bronze", "to_tier": "silver", "changes": 612}
TIERS: JsonObject = {"members_now": [TIER_ROW], "flows": [TIER_FLOW]}
KPIS: JsonObject = {
    "start": "2025-12-01", "end": "2026-11-30", "grain": "month", "group_by": "store",
    "currency": "EUR", "refreshed_to": "2026-11-30T15:00:02.118204Z", "headline": HEADLINE,
    "series": [SERIES_ROW], "groups": [GROUP_ROW], "points": [WALLET_POINTS],
    "rewards": [REWARD_ROW], "vouchers": VOUCHERS, "tiers": TIERS,
}  # fmt: skip
TIER_STOCK: JsonObject = {"tier": "gold", "members": 310}
TIER_PERIOD: JsonObject = {
    "bucket": "2026-11-01", "end": "2026-12-01",
    "members": [TIER_STOCK, {"tier": "silver", "members": 2140},
                {"tier": "bronze", "members": 9960}],
    "joined": 162, "upgrades": 58, "downgrades": 21, "lateral": 0,
    "flows": [TIER_FLOW, {"from_tier": "silver", "to_tier": "bronze", "changes": 21}],
}  # fmt: skip
TIERS_OVER_TIME: JsonObject = {
    "start": "2026-06-01", "end": "2026-11-30", "grain": "month",
    "tiers": ["bronze", "silver", "gold"], "periods": [TIER_PERIOD],
}  # fmt: skip
TIERS_CSV = (
    "bucket,kind,key,value\n2026-11-01,members,gold,310\n2026-11-01,upgrades,,58\n"
    "2026-11-01,flow,bronze>silver,612\n"
)
COHORT_ROW: JsonObject = {
    "cohort": "2026-03-01", "members": 152,
    "active": [61, 55, 50, 48, 44, 41, 40, 38, 0, 0, 0, 0],
    "retention": [0.401316, 0.361842, 0.328947, 0.315789, 0.289474, 0.269737, 0.263158,
                  0.25, 0.0, 0.0, 0.0, 0.0],
    "repeat_members": 83,
}  # fmt: skip
COHORTS: JsonObject = {
    "start": "2026-01-01", "end": "2026-11-30", "refreshed_to": "2026-11-30T15:00:02.118204Z",
    "cohorts": [COHORT_ROW],
}  # fmt: skip
FORECAST_MONTH: JsonObject = {
    "month": 1, "until": "2026-07-01T00:00:00Z", "expected_redeemed": 41200,
    "expected_expired": 6100, "expected_outstanding": 1402700,
    "expected_liability_money": "14027.00", "actual_redeemed": 39850, "actual_expired": 6240,
    "actual_outstanding": 1403910,
}  # fmt: skip
LIABILITY: JsonObject = {
    "wallet": "points", "at": "2026-06-01T00:00:00Z", "outstanding": 1450000,
    "available": 1432000, "pending": 18000, "liability_money": "14500.00",
    "unit_value": "0.01", "redemption_curve": [0.08, 0.05, 0.041, 0.035],
    "expected_breakage": 201000, "breakage_rate": 0.138621, "forecast": [FORECAST_MONTH],
    "backtest": True,
}  # fmt: skip
KPIS_CSV = (
    "section,key,metric,value\nheadline,,member_orders,24570\nheadline,,member_sales,1032790.40\n"
)
COHORTS_CSV = (
    "cohort,members,repeat_members,m1,m2,m3\n2026-03-01,152,83,0.401316,0.361842,0.328947\n"
)
LIABILITY_CSV = (
    "month,until,expected_redeemed,expected_expired,expected_outstanding\n"
    "1,2026-07-01T00:00:00Z,41200,6100,1402700\n"
)
