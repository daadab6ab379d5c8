"""Examples of the engagement documents: badges and challenges (see ``fidelia.examples``)."""

from __future__ import annotations

from fidelia.examples import BADGE_EVENT_ID, JsonObject

BADGE: JsonObject = {
    "badge": "eco-hero",
    "name": "Eco Hero",
    "labels": {"fr": "Éco-héros", "en": "Eco Hero"},
    "level": 1,
    "levels": 1,
    "earned_at": "2026-08-08T14:21:09Z",
    "source": "rule:recycling-drop-off",
    "event_id": BADGE_EVENT_ID,
}

CRITIC: JsonObject = {
    "badge": "critic",
    "name": "Critic",
    "labels": {"fr": "Critique", "en": "Critic"},
    "level": 2,
    "levels": 3,
    "earned_at": "2026-11-16T19:03:38Z",
    "source": "condition",
    "event_id": "01a1e4f8-9c58-7b20-8d41-3f6a2c9e1b75",
}
"""The second of three levels: five reviews written (levels at 1, 5 and 10)."""

GOAL: JsonObject = {
    "event_type": "purchase",
    "measure": "spend",
    "target": "300",
    "progress": "295.29",
    "left": "4.71",
}

CHALLENGE: JsonObject = {
    "challenge": "winter-2026",
    "name": "Winter challenge: 5 purchases and 300 € between December and February",
    "labels": {"fr": "Défi de l'hiver : 5 achats et 300 € de décembre à février"},
    "starts_at": "2026-12-01T00:00:00+01:00",
    "ends_at": "2027-03-01T00:00:00+01:00",
    "status": "active",
    "completions": 0,
    "repeatable": False,
    "goals": [
        {"event_type": "purchase", "measure": "count", "target": "5", "progress": "3", "left": "2"},
        GOAL,
    ],
    "reward": {"points": 500, "wallet": "points", "badge": "winter-champion"},
}

RECYCLER: JsonObject = {
    "challenge": "recycler",
    "name": "Drop off 3 used items",
    "labels": {"fr": "Déposez 3 articles usagés"},
    "starts_at": None,
    "ends_at": None,
    "status": "active",
    "completions": 1,
    "repeatable": True,
    "goals": [
        {
            "event_type": "recycling_drop_off",
            "measure": "count",
            "target": "3",
            "progress": "1",
            "left": "2",
        }
    ],
    "reward": {"points": 150, "wallet": "points"},
}
"""Repeatable: completed once, progress restarted from zero."""
