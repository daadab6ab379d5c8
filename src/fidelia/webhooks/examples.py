"""Examples of the webhooks API: the Earth Care online shop subscribes to points and tier
notices; Laure's purchase of 14 November reaches it as a ``points.earned`` notice (see
``fidelia.examples``)."""

from __future__ import annotations

from fidelia.examples import (
    EARN_TRANSACTION_ID,
    MEMBER_ID,
    PURCHASE_EVENT_ID,
    PURCHASE_RECEIVED_AT,
    JsonObject,
)

SUBSCRIPTION_ID = "01a0613d-73b2-756d-ba69-8a9842f636db"
CRM_SUBSCRIPTION_ID = "01a15441-e807-7bc9-93c7-7797d779f418"
NOTICE_ID = "01a1dab9-2d3e-7d26-9d93-ec5c2619de39"
DELIVERY_ID = "01a1dab9-2fc0-78d8-adcf-46f9ceb5977a"
TIER_NOTICE_ID = "01a22cc3-60ca-7a25-b3bd-60c3aec5f9c3"
NOTICE_CURSOR = "18342"
SHOP_URL = "https://shop.example.com/fidelia/hooks"

# -- subscriptions ----------------------------------------------------------------------------
SUBSCRIPTION_IN: JsonObject = {
    "url": SHOP_URL,
    "types": ["points.*", "tier.changed"],
    "description": "Online shop: points and tier on the customer account page",
}
"""Every points notice (a family) and tier changes; the secret is generated."""

SUBSCRIPTION_WITH_SECRET_IN: JsonObject = {
    "url": "https://crm.example.com/webhooks/fidelia",
    "types": ["member.enrolled", "member.updated", "member.merged"],
    "description": "CRM: keep the contacts in step",
    "secret": "8f3b2c1e9d7a4f6b0c5e1d2a7b9f4c3e",
}

SUBSCRIPTION_PATCH: JsonObject = {"types": ["points.*", "tier.changed", "voucher.issued"]}
SUBSCRIPTION_RESUME: JsonObject = {"status": "active"}
"""Resume a paused subscription: what failed meanwhile is delivered from where it stopped."""

SUBSCRIPTION: JsonObject = {
    "id": SUBSCRIPTION_ID,
    "url": SHOP_URL,
    "types": ["points.*", "tier.changed"],
    "description": "Online shop: points and tier on the customer account page",
    "status": "active",
    "paused_reason": None,
    "paused_at": None,
    "consecutive_failures": 0,
    "last_success_at": "2026-11-30T14:02:12.480113Z",
    "last_failure_at": "2026-11-21T09:05:02.117406Z",
    "cursor": "18977",
    "created_at": "2026-09-02T08:30:12.402551Z",
    "secret": None,
    "pending": 2,
    "failed": 0,
}
"""As listed (the secret is only shown when created or rotated)."""

SUBSCRIPTION_CREATED: JsonObject = {
    **SUBSCRIPTION,
    "last_success_at": None,
    "last_failure_at": None,
    "cursor": "4120",
    "secret": "whsec_Z-pULyfC_5PeD1zabrGHBX5LbiET9_vH-FxbwkXfdwc",
    "pending": 0,
}
"""Just created: the generated secret, shown this once."""

SUBSCRIPTION_PAUSED: JsonObject = {
    "id": CRM_SUBSCRIPTION_ID,
    "url": "https://crm.example.com/webhooks/fidelia",
    "types": ["member.enrolled", "member.merged", "member.updated"],
    "description": "CRM: keep the contacts in step",
    "status": "paused",
    "paused_reason": (
        "delivery 01a1fd5a-12a0-7b51-9e02-5d1c6a0b8e47 failed for 72 hours "
        "(21 attempts; last: HTTP 503)"
    ),
    "paused_at": "2026-11-24T10:07:31.904127Z",
    "consecutive_failures": 21,
    "last_success_at": "2026-11-21T09:58:40.220531Z",
    "last_failure_at": "2026-11-24T10:07:31.904127Z",
    "cursor": "17215",
    "created_at": "2026-10-19T13:02:47.815342Z",
    "secret": None,
    "pending": 38,
    "failed": 1,
}
"""Paused after a delivery failed for the whole retry window; nothing is lost."""

# -- deliveries -------------------------------------------------------------------------------
DELIVERY: JsonObject = {
    "id": DELIVERY_ID,
    "subscription_id": SUBSCRIPTION_ID,
    "notice_id": NOTICE_ID,
    "type": "points.earned",
    "member_id": MEMBER_ID,
    "cursor": NOTICE_CURSOR,
    "status": "delivered",
    "attempts": 2,
    "due_at": "2026-11-14T15:42:42.310846Z",
    "first_attempt_at": "2026-11-14T15:42:12.045361Z",
    "last_attempt_at": "2026-11-14T15:42:42.388012Z",
    "last_status": 200,
    "last_error": None,
    "delivered_at": "2026-11-14T15:42:42.391270Z",
}
"""Delivered at the second attempt (the first got an HTTP 502, retried 30 s later)."""

DELIVERY_PAGE: JsonObject = {"items": [DELIVERY], "next": "96211"}

REDELIVER_IN: JsonObject = {"after": "18000", "until": "18342", "status": "failed"}
"""Send the failed deliveries of that range of the feed again (same delivery ids)."""

REDELIVERED: JsonObject = {"redelivered": 3}

# -- the feed ---------------------------------------------------------------------------------
FEED_ITEM: JsonObject = {
    "id": NOTICE_ID,
    "type": "points.earned",
    "programme": "earth-care",
    "member_id": MEMBER_ID,
    "occurred_at": PURCHASE_RECEIVED_AT,
    "cursor": NOTICE_CURSOR,
    "data": {
        "wallet": "points",
        "points": 206,
        "event_id": PURCHASE_EVENT_ID,
        "transaction_id": EARN_TRANSACTION_ID,
    },
}

TIER_FEED_ITEM: JsonObject = {
    "id": TIER_NOTICE_ID,
    "type": "tier.changed",
    "programme": "earth-care",
    "member_id": MEMBER_ID,
    "occurred_at": "2026-11-30T14:02:11.530288Z",
    "cursor": "18343",
    "data": {"from": "silver", "to": "gold", "reason": "upgrade"},
}

FEED_PAGE: JsonObject = {"items": [FEED_ITEM, TIER_FEED_ITEM], "next": "18343", "has_more": False}
