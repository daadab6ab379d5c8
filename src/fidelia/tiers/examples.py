"""Examples of the tier documents (see ``fidelia.examples``)."""

from __future__ import annotations

from fidelia.examples import ENROLLED_AT, ENROLMENT_EVENT_ID, GOLD_EVENT_ID, MEMBER_ID, JsonObject

PERK: JsonObject = {
    "code": "early-access",
    "description": "Early access to the sales",
    "labels": {"fr": "Accès anticipé aux soldes", "en": "Early access to the sales"},
}

METRIC: JsonObject = {"status_points": 67, "spend": "712.40", "purchases": 7}

NEXT: JsonObject = {
    "tier": "gold",
    "name": "Gold",
    "missing": {"status_points": 33, "spend": "287.60"},
    "by": "2026-12-31T23:00:00Z",
}
"""Either threshold is enough (``combine: any``): 33 status points or 287.60 € more."""

KEEP: JsonObject = {
    "needed": {"status_points": 0, "spend": "0"},
    "review_at": "2026-11-30T23:00:00Z",
    "grace_until": None,
}

PROGRESS: JsonObject = {
    "member_id": MEMBER_ID,
    "tier": "silver",
    "name": "Silver",
    "source": "metric",
    "since": "2026-06-20T10:00:00Z",
    "manual_until": None,
    "window": "rolling_12_months",
    "window_start": "2026-01-01T00:00:00+01:00",
    "window_end": "2027-01-01T00:00:00+01:00",
    "metric": METRIC,
    "next": NEXT,
    "keep": KEEP,
    "perks": [
        {
            "code": "earn-2",
            "description": "1 € = 2 points",
            "labels": {"fr": "1 € = 2 points", "en": "1 € = 2 points"},
        }
    ],
}

GOLD_PROGRESS: JsonObject = {
    **PROGRESS,
    "tier": "gold",
    "name": "Gold",
    "source": "manual",
    "since": "2026-11-30T08:20:00.771402Z",
    "manual_until": "2027-03-31T23:59:59Z",
    "next": None,
    "keep": {
        "needed": {"status_points": 33, "spend": "287.60"},
        "review_at": None,
        "grace_until": None,
    },
    "perks": [PERK],
}
"""Put in Gold by hand until the end of March; then the review gives what the metric earns."""

CHANGE: JsonObject = {
    "id": "01a0c302-29b0-7de2-8054-8189c63d6f69",
    "from_tier": "silver",
    "to_tier": "gold",
    "reason": "upgrade",
    "at": "2026-09-21T08:08:14Z",
    "event_id": GOLD_EVENT_ID,
    "metric": {"purchases": 9, "spend": "1168.29", "status_points": 112},
}

JOINED: JsonObject = {
    "id": "019ceb9e-6018-7e41-b7a0-2a9d53c81f06",
    "from_tier": None,
    "to_tier": "bronze",
    "reason": "joined",
    "at": ENROLLED_AT,
    "event_id": ENROLMENT_EVENT_ID,
    "metric": {"purchases": 0, "spend": "0", "status_points": 0},
}

ASSIGN: JsonObject = {
    "tier": "gold",
    "until": "2027-04-01T00:00:00+02:00",
    "reason": "Store manager's invitation",
}

REQUALIFY: JsonObject = {"at": "2026-12-01T00:00:00+01:00"}

REQUALIFY_OUT: JsonObject = {
    "reviewed": 1843,
    "upgraded": 12,
    "downgraded": 97,
    "in_grace": 41,
    "seconds": 2.318,
}
