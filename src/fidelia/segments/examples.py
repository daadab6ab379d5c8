"""Examples of the segment documents (see ``fidelia.examples``)."""

from __future__ import annotations

from fidelia.examples import MEMBER_ID, PURCHASE_EVENT_ID, JsonObject

CONDITION: JsonObject = {
    "all": [
        {"field": "events.purchase.count_90d", "op": "gte", "value": 3},
        {"field": "categories.cat-food.count_180d", "op": "gte", "value": 1},
    ]
}

SEGMENT: JsonObject = {
    "code": "cat-regulars",
    "labels": {"fr": "Habitués chat", "en": "Cat regulars"},
    "description": "Three purchases in 90 days, cat food in the last six months",
    "condition": CONDITION,
}

SEGMENT_UPDATE: JsonObject = {
    "labels": {"fr": "Habitués chat", "en": "Cat regulars"},
    "condition": {
        "all": [
            {"field": "events.purchase.count_90d", "op": "gte", "value": 2},
            {"field": "categories.cat-food.count_180d", "op": "gte", "value": 1},
        ]
    },
}

PREVIEW_IN: JsonObject = {
    "condition": {
        "all": [
            {"field": "events.purchase.days_since_last", "op": "gte", "value": 90},
            {"field": "consents.sms", "op": "eq", "value": True},
        ]
    },
    "sample": 5,
}

SAMPLE: JsonObject = {
    "member_id": MEMBER_ID,
    "first_name": "Laure",
    "last_name": "Moulin",
    "status": "active",
}

PREVIEW_OUT: JsonObject = {"count": 1834, "sample": [SAMPLE], "seconds": 0.182}

SEGMENT_OUT: JsonObject = {**SEGMENT, "members": 412, "version": 7}

SEGMENT_MEMBER: JsonObject = {
    **SAMPLE,
    "since": "2026-11-14T14:42:10.200114Z",
    "traits": {"recency_days": 16, "frequency_365d": 7, "rfm_cell": "loyal"},
}

MEMBERSHIP: JsonObject = {
    "segment": "cat-regulars",
    "labels": {"fr": "Habitués chat", "en": "Cat regulars"},
    "since": "2026-11-14T14:42:10.200114Z",
}

CHANGE: JsonObject = {
    "seq": 18211,
    "segment": "cat-regulars",
    "member_id": MEMBER_ID,
    "kind": "segment_entered",
    "at": "2026-11-14T14:42:10.200114Z",
    "cause": "event",
    "event_id": PURCHASE_EVENT_ID,
}

COUNT_POINT: JsonObject = {"day": "2026-11-29", "members": 412, "entered": 9, "left": 3}

SWEEP_IN: JsonObject = {"at": "2026-11-30T00:00:00+01:00"}

SWEEP_OUT: JsonObject = {"segments": 12, "entered": 118, "left": 97, "seconds": 1.402}
