"""Examples of the rewards documents: catalogue, redemptions, voucher pools and the till (see
``fidelia.examples``)."""

from __future__ import annotations

from fidelia.examples import (
    DONATION_REWARD_ID,
    MEMBER_ID,
    POOL_ID,
    REDEEMED_AT,
    REDEMPTION_ID,
    REWARD_ID,
    SPEND_TRANSACTION_ID,
    TILL_ORDER_ID,
    USED_AT,
    VOUCHER_CODE,
    VOUCHER_ID,
    VOUCHER_VALID_UNTIL,
    JsonObject,
)

# -- catalogue --------------------------------------------------------------------------------
REWARD_IN: JsonObject = {
    "code": "voucher-10-eur",
    "kind": "voucher",
    "name": "10 € voucher",
    "description": "10 € off your next purchase in store or online, valid 90 days.",
    "labels": {"fr": "Bon d'achat de 10 €", "en": "10 € voucher"},
    "cost_points": 200,
    "cost_by_tier": {"gold": 180},
    "featured": True,
    "pool": "bon-10",
}
"""A voucher reward: its codes come from the pool ``bon-10``; Gold members pay 180 points."""

DONATION_IN: JsonObject = {
    "code": "donation-planete-verte",
    "kind": "donation",
    "name": "Donate 1 € to Planète Verte",
    "labels": {"fr": "Don de 1 € à Planète Verte"},
    "cost_points": 100,
    "association": "Planète Verte",
    "value": "1.00",
}

WORKSHOP_IN: JsonObject = {
    "code": "repair-workshop",
    "kind": "experience",
    "name": "Bike repair workshop",
    "cost_points": 400,
    "stock": 40,
    "available_from": "2026-12-01T00:00:00+01:00",
    "available_until": "2027-03-01T00:00:00+01:00",
    "eligible_tiers": ["silver", "gold"],
    "condition": {"field": "state.purchases", "op": "gte", "value": 5},
    "limit_per_member": 1,
    "value": "35.00",
}
"""An experience for Silver and Gold members with five purchases or more, 40 places."""

REWARD_UPDATE: JsonObject = {"cost_points": 180, "stock": 25, "featured": False}

_AUDIT = {"created_at": "2026-01-05T09:10:00.402651Z", "updated_at": "2026-01-05T09:10:00.402651Z"}

REWARD: JsonObject = {
    "id": REWARD_ID,
    "code": "voucher-10-eur",
    "kind": "voucher",
    "name": "10 € voucher",
    "description": "10 € off your next purchase in store or online, valid 90 days.",
    "labels": {"fr": "Bon d'achat de 10 €", "en": "10 € voucher"},
    "cost_points": 200,
    "cost_by_tier": {"gold": 180},
    "stock": None,
    "available_from": None,
    "available_until": None,
    "eligible_tiers": [],
    "condition": None,
    "limit_per_member": None,
    "first_n": None,
    "featured": True,
    "visible": True,
    "archived": False,
    "pool": "bon-10",
    "association": None,
    "value": None,
    **_AUDIT,
}

DONATION: JsonObject = {
    **REWARD,
    "id": DONATION_REWARD_ID,
    "code": "donation-planete-verte",
    "kind": "donation",
    "name": "Donate 1 € to Planète Verte",
    "description": "",
    "labels": {"fr": "Don de 1 € à Planète Verte"},
    "cost_points": 100,
    "cost_by_tier": {},
    "featured": False,
    "pool": None,
    "association": "Planète Verte",
    "value": "1.00",
}

MEMBER_REWARD: JsonObject = {
    "reward": REWARD,
    "price": 180,
    "eligible": True,
    "reasons": [],
    "affordable": True,
}
"""A Gold member sees the Gold price."""

MEMBER_REWARD_BLOCKED: JsonObject = {
    "reward": {**DONATION, "stock": 0},
    "price": 100,
    "eligible": False,
    "reasons": ["out_of_stock"],
    "affordable": True,
}

DONATION_TOTAL: JsonObject = {
    "association": "Planète Verte",
    "donations": 312,
    "points": 31200,
    "value": "312.00",
}

# -- redemptions ------------------------------------------------------------------------------
REDEEM: JsonObject = {"reward": "voucher-10-eur", "idempotency_key": "app-7f3c2a-redeem-1"}

REDEEM_WORKSHOP: JsonObject = {
    "reward": "repair-workshop",
    "idempotency_key": "app-7f3c2a-redeem-2",
    "quantity": 2,
    "fulfilment": {"session": "2027-01-16 10:00", "guests": ["Paul Moulin"]},
}

CANCEL: JsonObject = {
    "reason": "Member changed her mind at the desk",
    "actor": "store:lyon-part-dieu",
}

FULFIL: JsonObject = {
    "actor": "warehouse:saint-priest",
    "details": {"carrier": "Colissimo", "tracking": "6A21738457120"},
}

# -- voucher pools ----------------------------------------------------------------------------
POOL_IN: JsonObject = {
    "code": "bon-10",
    "name": "10 € voucher",
    "pattern": "BON10-XXXX-XXXX",
    "discount_type": "amount",
    "discount_value": "10.00",
    "min_basket": "30.00",
    "max_uses": 1,
    "validity_days": 90,
}
"""10 € off a basket of 30 € or more; each code valid 90 days after it is issued."""

PERCENT_POOL_IN: JsonObject = {
    "code": "outdoor-15",
    "name": "15 % off outdoor gear, winter sales",
    "discount_type": "percent",
    "discount_value": "15",
    "categories": ["outdoor"],
    "valid_from": "2027-01-07T08:00:00+01:00",
    "valid_until": "2027-02-04T00:00:00+01:00",
}
"""Without a pattern: its codes are imported (``POST /voucher-pools/outdoor-15/import``)."""

POOL_UPDATE: JsonObject = {"name": "10 € voucher (winter)", "validity_days": 60}

POOL: JsonObject = {
    "id": POOL_ID,
    "code": "bon-10",
    "name": "10 € voucher",
    "pattern": "BON10-XXXX-XXXX",
    "discount_type": "amount",
    "discount_value": "10.00",
    "min_basket": "30.00",
    "categories": [],
    "max_uses": 1,
    "valid_from": None,
    "valid_until": None,
    "validity_days": 90,
    "counts": {"available": 4870, "active": 96, "used": 34},
}

GENERATE: JsonObject = {"count": 500}

IMPORT: JsonObject = {"codes": ["NOEL2026", "HIVER-OUTDOOR"], "bearer": True}

CODES: JsonObject = {
    "created": 3,
    "codes": ["BON10-4K5E-M3Q8", "BON10-K95W-D4FK", "BON10-KVZK-BRFH"],
}

ISSUE: JsonObject = {
    "member_id": MEMBER_ID,
    "idempotency_key": "zendesk-48213-voucher",
    "actor": "support:camille.r",
}

VOUCHER: JsonObject = {
    "id": VOUCHER_ID,
    "code": VOUCHER_CODE,
    "pool": "bon-10",
    "member_id": MEMBER_ID,
    "redemption_id": REDEMPTION_ID,
    "status": "active",
    "uses": 0,
    "max_uses": 1,
    "valid_from": None,
    "valid_until": VOUCHER_VALID_UNTIL,
    "source": "redemption",
    "source_id": REDEMPTION_ID,
    "issued_at": REDEEMED_AT,
    "discount_type": "amount",
    "discount_value": "10.00",
}

REDEMPTION: JsonObject = {
    "id": REDEMPTION_ID,
    "member_id": MEMBER_ID,
    "reward_id": REWARD_ID,
    "reward": "voucher-10-eur",
    "kind": "voucher",
    "status": "issued",
    "idempotency_key": "app-7f3c2a-redeem-1",
    "quantity": 1,
    "points": 180,
    "value": None,
    "association": None,
    "spend_transaction_id": SPEND_TRANSACTION_ID,
    "refund_transaction_id": None,
    "cashback_transaction_id": None,
    "voucher": VOUCHER,
    "fulfilment": {},
    "requested_at": REDEEMED_AT,
    "issued_at": REDEEMED_AT,
    "used_at": None,
    "expires_at": VOUCHER_VALID_UNTIL,
    "cancelled_at": None,
    "cancel_reason": None,
}
"""180 points (the Gold price) spent, a voucher of the pool issued to the member, at once."""

# -- the till ---------------------------------------------------------------------------------
LINE: JsonObject = {"sku": "GOU-012", "category": "outdoor", "quantity": "2", "unit_price": "24.90"}

BASKET: JsonObject = {
    "total": "49.80",
    "lines": [LINE],
}

VALIDATE: JsonObject = {"code": VOUCHER_CODE, "member_id": MEMBER_ID, "basket": BASKET}

REDEEM_VOUCHER: JsonObject = {**VALIDATE, "order_id": TILL_ORDER_ID}

VALID: JsonObject = {
    "valid": True,
    "reason": None,
    "detail": "valid",
    "code": VOUCHER_CODE,
    "voucher_id": VOUCHER_ID,
    "discount": "10.00",
    "uses_left": 1,
    "valid_until": VOUCHER_VALID_UNTIL,
}

INVALID: JsonObject = {
    **VALID,
    "valid": False,
    "reason": "used",
    "detail": "this code has been used already",
    "discount": "0",
    "uses_left": 0,
}

VOUCHER_USE: JsonObject = {
    "voucher_id": VOUCHER_ID,
    "code": VOUCHER_CODE,
    "order_id": TILL_ORDER_ID,
    "member_id": MEMBER_ID,
    "discount": "10.00",
    "basket_total": "49.80",
    "used_at": USED_AT,
    "uses_left": 0,
}
