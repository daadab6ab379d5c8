"""Examples of the traits API (see ``fidelia.examples``): Laure Moulin at the end of November."""

from __future__ import annotations

from fidelia.examples import MEMBER_ID, JsonObject

TRAITS: JsonObject = {
    "member_id": MEMBER_ID,
    "computed_at": "2026-11-30T00:00:02.114093Z",
    "windows_on": "2026-11-30",
    "recency_days": 16,
    "first_purchase_at": "2026-03-14T09:20:05Z",
    "last_purchase_at": "2026-11-14T15:42:10Z",
    "purchases_count": 9,
    "spend_total": "412.70",
    "average_basket": "45.86",
    "interval_mean_days": 30.26,
    "interval_median_days": 27.5,
    "expected_next_purchase_at": "2026-12-12T03:42:10Z",
    "windows": {
        "30d": {"purchases": 1, "spend": "73.70"},
        "90d": {"purchases": 3, "spend": "139.60"},
        "365d": {"purchases": 9, "spend": "412.70"},
    },
    "rfm": {
        "r": 4,
        "f": 4,
        "m": 4,
        "cell": "loyal",
        "cell_labels": {"fr": "Fidèles", "en": "Loyal"},
    },
    "lifecycle_stage": "active",
    "lifecycle_stage_labels": {"fr": "Actif", "en": "Active"},
    "affinities": {
        "category": {
            "home": {
                "purchases": 5,
                "spend": "189.20",
                "purchases_share": 0.5556,
                "spend_share": 0.4584,
            },
            "books": {
                "purchases": 4,
                "spend": "96.40",
                "purchases_share": 0.4444,
                "spend_share": 0.2336,
            },
        },
    },
    "channel_mix": {"store": 0.7778, "web": 0.2222},
    "favourite_store": "lyon-part-dieu",
    "favourite_channel": "store",
    "promo_purchases_share": 0.2222,
    "promo_spend_share": 0.1571,
    "points": {"points": 215, "status": 41, "cashback": 0},
    "points_expiring": [
        {"wallet": "points", "points": 40, "first_at": "2026-12-31T22:59:59Z"},
    ],
    "tier": {
        "tier": "silver",
        "next_tier": "gold",
        "missing": {"spend": "587.30"},
        "review_at": "2026-12-31T23:00:00Z",
        "days_to_review": 31,
    },
    "badges": ["first-purchase"],
    "open_challenges": [],
    "last_redemption_at": "2026-11-28T10:15:00Z",
    "reachability": [
        {"channel": "email", "address": True, "consent": True, "reachable": True},
        {"channel": "sms", "address": True, "consent": False, "reachable": False},
        {"channel": "push", "address": False, "consent": False, "reachable": False},
        {"channel": "postal", "address": True, "consent": False, "reachable": False},
    ],
}

WINDOW: JsonObject = TRAITS["windows"]["90d"]
SHARE: JsonObject = TRAITS["affinities"]["category"]["home"]
EXPIRING: JsonObject = TRAITS["points_expiring"][0]
TIER: JsonObject = TRAITS["tier"]
REACH: JsonObject = TRAITS["reachability"][0]
