"""Examples of the event intake documents (see ``fidelia.examples``)."""

from __future__ import annotations

from fidelia.examples import (
    CARD,
    MEMBER_ID,
    ORDER_ID,
    PURCHASE_EVENT_ID,
    PURCHASE_KEY,
    PURCHASE_RECEIVED_AT,
    PURCHASED_AT,
    RETURN_EVENT_ID,
    RETURN_KEY,
    RETURN_TRANSACTION_ID,
    RETURNED_AT,
    STORE,
    JsonObject,
)

EXTERNAL_ID: JsonObject = {"namespace": "shopify", "value": "7421094518"}

MEMBER_REF: JsonObject = {"card": CARD}

_BOTTLE: JsonObject = {
    "sku": "GOU-012",
    "name": "Gourde inox 750 ml",
    "category": "outdoor",
    "brand": "Cime",
    "quantity": "2",
    "unit_price": "24.90",
    "discount": "5.00",
}
_BOOK: JsonObject = {
    "sku": "LIV-002",
    "name": "Cuisine zéro déchet",
    "category": "books",
    "brand": "Éditions du Lierre",
    "quantity": "1",
    "unit_price": "24.00",
    "discount": "0",
}

PURCHASE: JsonObject = {
    "id": PURCHASE_KEY,
    "type": "purchase",
    "occurred_at": PURCHASED_AT,
    "member": MEMBER_REF,
    "channel": "store",
    "store": STORE,
    "properties": {
        "order_id": ORDER_ID,
        "lines": [_BOTTLE, _BOOK],
        "shipping": "0.00",
        "total": "68.80",
        "currency": "EUR",
        "payment_means": ["card"],
    },
}
"""A purchase at the till: 2 x 24.90 less 5.00 of discount, plus a 24.00 book = 68.80."""

RETURN: JsonObject = {
    "id": RETURN_KEY,
    "type": "return",
    "occurred_at": RETURNED_AT,
    "member": MEMBER_REF,
    "channel": "store",
    "store": STORE,
    "properties": {
        "order_id": ORDER_ID,
        "return_id": "RET-20261121-0012",
        "lines": [{"sku": "GOU-012", "quantity": "1"}],
        "refund_total": "22.40",
    },
}
"""One of the two bottles comes back: the points its line earned are taken back."""

REVIEW: JsonObject = {
    "id": "web-review-58213",
    "type": "review",
    "occurred_at": "2026-11-16T20:03:37+01:00",
    "member": {"email": "laure.moulin@example.org"},
    "channel": "web",
    "properties": {"sku": "GOU-012", "rating": 5, "text_length": 212},
}
"""A custom event type, declared by the programme with ``PUT /event-types/review``."""

_AWARD_LINES = [
    {"sku": "GOU-012", "base": "44.80", "amount": 134},
    {"sku": "LIV-002", "base": "24.00", "amount": 72},
]
_STATUS_LINES = [
    {"sku": "GOU-012", "base": "44.80", "amount": 4},
    {"sku": "LIV-002", "base": "24.00", "amount": 2},
]


def _award(rule: str, wallet: str, amount: int, rate: str, tier: str | None) -> JsonObject:
    lines = _AWARD_LINES if wallet == "points" else _STATUS_LINES
    return {
        "kind": "award",
        "rule": {"id": rule, "version": 1},
        "wallet": wallet,
        "amount": amount,
        "expires_at": None,
        "available_at": None,
        "explanation": {
            "base": "68.80",
            "rate": rate,
            "multiplier": "1",
            "tier": tier,
            "capped_by": [],
            "lines": lines,
        },
    }


PURCHASE_EFFECTS = [
    _award("base-earn", "points", 206, "3", "gold"),
    _award("status-points", "status", 6, "0.1", None),
]
PURCHASE_TOTALS: JsonObject = {"points": 206, "status": 6}

OUTCOME: JsonObject = {
    "index": None,
    "id": PURCHASE_KEY,
    "status": "accepted",
    "event_id": PURCHASE_EVENT_ID,
    "member_id": MEMBER_ID,
    "member_created": False,
    "error": None,
    "detail": None,
    "fields": [],
    "totals": PURCHASE_TOTALS,
    "effects": PURCHASE_EFFECTS,
}
"""A Gold member earns 3 points per euro and 1 status point per 10 euros."""

RETURN_OUTCOME: JsonObject = {
    **OUTCOME,
    "id": RETURN_KEY,
    "event_id": RETURN_EVENT_ID,
    "totals": {},
    "effects": [
        {
            "kind": "reversal",
            "rule": {"id": "base-earn", "version": 1},
            "wallet": "points",
            "amount": "67",
            "transaction_id": RETURN_TRANSACTION_ID,
        }
    ],
}

REJECTED: JsonObject = {
    "index": 1,
    "id": "pos-lyon-0412-20261114-0088",
    "status": "rejected",
    "event_id": None,
    "member_id": None,
    "member_created": False,
    "error": "validation_error",
    "detail": "occurred_at: datetime must carry a time zone offset (e.g. +01:00 or Z)",
    "fields": [
        {
            "loc": ["occurred_at"],
            "msg": "datetime must carry a time zone offset (e.g. +01:00 or Z)",
        }
    ],
    "totals": {},
    "effects": [],
}

BATCH: JsonObject = {"events": [PURCHASE, RETURN]}

BATCH_OUTCOME: JsonObject = {
    "accepted": 2,
    "duplicates": 0,
    "rejected": 0,
    "results": [{**OUTCOME, "index": 0}, {**RETURN_OUTCOME, "index": 1}],
}

BATCH_RESENT: JsonObject = {
    "accepted": 0,
    "duplicates": 1,
    "rejected": 1,
    "results": [{**OUTCOME, "index": 0, "status": "duplicate"}, REJECTED],
}
"""A batch sent again after a timeout: the first event is a duplicate (its first outcome comes
back), the second was sent without a time zone offset."""

DRY_RUN: JsonObject = {
    "member_id": MEMBER_ID,
    "version": 2,
    "totals": PURCHASE_TOTALS,
    "effects": PURCHASE_EFFECTS,
    "skipped": [],
}

EVENT: JsonObject = {
    "id": PURCHASE_EVENT_ID,
    "idempotency_key": PURCHASE_KEY,
    "type": "purchase",
    "occurred_at": "2026-11-14T15:42:10Z",
    "received_at": PURCHASE_RECEIVED_AT,
    "member_id": MEMBER_ID,
    "channel": "store",
    "store": STORE,
    "properties": PURCHASE["properties"],
}

EVENT_TYPE_IN: JsonObject = {
    "description": "A product review written on the web shop",
    "schema": {
        "type": "object",
        "required": ["sku", "rating"],
        "properties": {
            "sku": {"type": "string"},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "text_length": {"type": "integer", "minimum": 0},
        },
    },
}

EVENT_TYPE: JsonObject = {"name": "review", **EVENT_TYPE_IN}
