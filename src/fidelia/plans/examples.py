"""Examples of the plans API (the story of ``fidelia.examples``: Laure joins Earth Care+)."""

from __future__ import annotations

from fidelia.examples import MEMBER_ID, JsonObject

SUB_ID = "019f2a41-5c7e-7a10-9d3b-3f0c2b7e4a11"
ENDPOINT_ID = "019f2a40-1b2c-7d3e-8f40-51a2b3c4d5e6"
PAYMENT_EVENT_ID = "019f2a42-7e8f-7a90-8b1c-2d3e4f5a6b7c"
PERK: JsonObject = {
    "code": "free-delivery",
    "description": "Free delivery",
    "labels": {"fr": "Livraison offerte", "en": "Free delivery"},
}
BENEFITS: JsonObject = {
    "earning_multiplier": "1.5",
    "wallet": "points",
    "tier_floor": "silver",
    "exclusive_rewards": [],
    "perks": [PERK],
}
PLAN: JsonObject = {
    "code": "earth-plus-monthly",
    "name": "Earth Care+ (monthly)",
    "period": "month",
    "price": "4.99",
    "currency": "EUR",
    "trial_days": 14,
    "grace_days": 7,
    "active": True,
    "benefits": BENEFITS,
}
PLAN_OUT: JsonObject = {
    "plan": PLAN,
    "live": 412,
    "by_status": {"active": 380, "trialing": 32, "cancelled": 57},
}
SUBSCRIBE: JsonObject = {"plan": "earth-plus-monthly", "provider_ref": "sub_1QxYz", "paid": False}
ACTION: JsonObject = {"action": "cancel", "reason": "asked by phone"}
CHANGE: JsonObject = {
    "from_status": None,
    "to_status": "trialing",
    "at": "2026-11-30T10:02:11Z",
    "cause": "operator",
    "period_end": "2026-12-14T10:02:11Z",
    "actor": "api_key:019b8d64",
}
SUBSCRIPTION: JsonObject = {
    "id": SUB_ID,
    "member_id": MEMBER_ID,
    "plan": "earth-plus-monthly",
    "status": "trialing",
    "stored_status": "trialing",
    "benefits_active": True,
    "provider_ref": "sub_1QxYz",
    "started_at": "2026-11-30T10:02:11Z",
    "trial_ends_at": "2026-12-14T10:02:11Z",
    "period_end": "2026-12-14T10:02:11Z",
    "grace_until": None,
    "cancelled_at": None,
    "ended_at": None,
    "benefits": BENEFITS,
    "history": [CHANGE],
}
ENDPOINT_IN: JsonObject = {"name": "PayCo"}
ENDPOINT: JsonObject = {
    "id": ENDPOINT_ID,
    "name": "PayCo",
    "url": f"https://loyalty.example.org/api/v1/payments/{ENDPOINT_ID}/events",
    "secret": "whsec_6f1d0c8e2b7a4f3d9c5e1a0b8d7c6e5f4a3b2c1d0e9f8a7b",
    "created_at": "2026-11-30T09:00:00Z",
    "revoked_at": None,
}
PAYMENT_EVENT: JsonObject = {
    "id": "evt_3Qa1",
    "type": "payment.succeeded",
    "created": "2026-12-14T10:02:40Z",
    "subscription": "sub_1QxYz",
    "member_id": None,
    "plan": None,
    "amount": "4.99",
    "currency": "EUR",
    "period_end": "2027-01-14T10:02:11Z",
}
PAYMENT_OUTCOME: JsonObject = {
    "id": PAYMENT_EVENT_ID,
    "outcome": "applied",
    "detail": None,
    "subscription": SUBSCRIPTION,
}
SWEEP: JsonObject = {"changed": 3}
TILL_PAY: JsonObject = {
    "member_id": MEMBER_ID,
    "order_id": "POS-LYON-2026-11-30-0042",
    "wallet": "cashback",
    "amount": "4.00",
    "order_total": "38.50",
}
TILL_QUOTE: JsonObject = {
    "member_id": MEMBER_ID,
    "order_id": "POS-LYON-2026-11-30-0042",
    "wallet": "cashback",
    "valid": True,
    "reason": None,
    "detail": "valid",
    "requested": "4.00",
    "available": "6.42",
    "payable": "6.42",
    "units": "4.00",
}
TILL_PAYMENT: JsonObject = {
    "id": "019f2a43-0a1b-7c2d-8e3f-4a5b6c7d8e9f",
    "member_id": MEMBER_ID,
    "order_id": "POS-LYON-2026-11-30-0042",
    "wallet": "cashback",
    "value": "4.00",
    "units": "4.00",
    "order_total": "38.50",
    "refunded_units": "0.00",
    "status": "used",
    "transaction_id": "019f2a43-0a1b-7c2d-8e3f-4a5b6c7d8ea0",
    "created_at": "2026-11-30T16:40:12Z",
    "replay": False,
}
