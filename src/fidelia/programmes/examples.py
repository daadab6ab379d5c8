"""Examples of the programme API's documents (see ``fidelia.examples``)."""

from __future__ import annotations

from fidelia.examples import ADMIN_KEY_ID, PROGRAMME_CREATED_AT, PROGRAMME_ID, JsonObject

SETTINGS: JsonObject = {"unknown_member": "enrol_prospect"}

UPDATE: JsonObject = {"name": "Earth Care Club", "locale": "fr-FR", "settings": SETTINGS}

PROGRAMME: JsonObject = {
    "id": PROGRAMME_ID,
    "slug": "earth-care",
    "name": "Earth Care Club",
    "currency": "EUR",
    "timezone": "Europe/Paris",
    "locale": "fr-FR",
    "country": "FR",
    "settings": SETTINGS,
    "created_at": PROGRAMME_CREATED_AT,
}

_BASE_EARN = {"kind": "spend", "wallet": "points", "rate": "1"}
_RATES = {"bronze": "1", "silver": "2", "gold": "3"}
_GOLD_PERK = {
    "code": "early-access",
    "description": "Early access to the sales",
    "labels": {"fr": "Accès anticipé aux soldes"},
}

DOCUMENT: JsonObject = {
    "name": "Earth Care",
    "locale": "fr-FR",
    "settings": {"unknown_member": "reject"},
    "exclusive_groups": {"boosters": "best"},
    "rules": [
        {
            "id": "base-earn",
            "name": "1 € = 1 point (Bronze), 2 (Silver), 3 (Gold)",
            "priority": 100,
            "award": {**_BASE_EARN, "rate_by_tier": _RATES},
        },
        {
            "id": "status-points",
            "name": "Status points: 1 per 10 € spent",
            "award": {"kind": "spend", "wallet": "status", "rate": "0.1"},
        },
        {
            "id": "birthday-double",
            "name": "Double points during your birthday month",
            "when": {"field": "member.is_birthday_month", "op": "eq", "value": True},
            "award": {"kind": "booster", "of": "base-earn", "multiplier": "2"},
            "exclusive_group": "boosters",
        },
        {
            "id": "product-review",
            "name": "+100 points per product review (3 per month)",
            "event_type": "review",
            "award": {"kind": "fixed", "amount": "100", "pending_days": 14},
            "limits": [{"per": "month", "max_awards": 3}],
        },
    ],
    "tiers": {
        "window": "rolling_12_months",
        "combine": "any",
        "grace_days": 30,
        "status_wallet": "status",
        "levels": [
            {"code": "bronze", "name": "Bronze"},
            {"code": "silver", "name": "Silver", "requires": {"status_points": 40, "spend": "500"}},
            {
                "code": "gold",
                "name": "Gold",
                "requires": {"status_points": 100, "spend": "1000"},
                "perks": [_GOLD_PERK],
            },
        ],
    },
    "voucher_pools": [
        {
            "code": "bon-10",
            "name": "10 € voucher",
            "pattern": "BON10-XXXX-XXXX",
            "discount_type": "amount",
            "discount_value": "10",
            "validity_days": 90,
        }
    ],
    "rewards": [
        {
            "code": "voucher-10-eur",
            "kind": "voucher",
            "name": "10 € voucher",
            "labels": {"fr": "Bon d'achat de 10 €"},
            "cost_points": 200,
            "pool": "bon-10",
            "featured": True,
        }
    ],
}
"""A whole programme document, as ``PUT /programme/document`` takes it."""


def _wallet(code: str, name: str, unit: str, unit_value: str, **policy: object) -> JsonObject:
    return {
        "code": code,
        "name": name,
        "unit": unit,
        "unit_value": unit_value,
        "spendable": code != "status",
        "debt_policy": "allow_debt" if code == "points" else "clamp",
        "expiry": policy.get("expiry", {"kind": "rolling", "months": 12}),
        "pending": {"kind": "none"},
    }


def _spend_award(wallet: str, rate: str, **extra: object) -> JsonObject:
    base = {"discounts": "after", "shipping": "exclude"}
    award = {"rounding": "floor", "kind": "spend", "wallet": wallet, "rate": rate}
    return {**award, "rate_by_tier": {}, **extra, "multiplier": "1", "base": base}


def _rule(rule_id: str, version: int, name: str, award: JsonObject, **extra: object) -> JsonObject:
    head = {"id": rule_id, "version": version, "name": name, "active": True}
    tail = {"effects": [], "limits": [], "priority": 0}
    return {**head, "event_type": "purchase", **extra, "award": award, **tail}


STORED_DOCUMENT: JsonObject = {
    "name": "Earth Care",
    "locale": "fr-FR",
    "settings": {"unknown_member": "reject"},
    "wallets": [
        _wallet("points", "Points", "points", "0.01"),
        _wallet("cashback", "Cashback", "money", "1"),
        _wallet("status", "Status points", "points", "0", expiry={"kind": "never"}),
    ],
    "exclusive_groups": {"boosters": "best"},
    "rules": [
        {
            **_rule(
                "base-earn",
                2,
                "1 € = 1 point (Bronze), 2 (Silver), 3 (Gold)",
                _spend_award("points", "1", rate_by_tier=_RATES),
            ),
            "priority": 100,
        },
        _rule("status-points", 1, "Status points: 1 per 10 € spent", _spend_award("status", "0.1")),
    ],
    "tiers": {
        "window": "rolling_12_months",
        "combine": "any",
        "downgrade": "one_level",
        "grace_days": 30,
        "on_return": "recompute",
        "status_wallet": "status",
        "levels": [
            {
                "code": "bronze",
                "name": "Bronze",
                "labels": {},
                "invitation_only": False,
                "perks": [],
            },
            {
                "code": "gold",
                "name": "Gold",
                "labels": {},
                "requires": {"status_points": 100, "spend": "1000"},
                "invitation_only": False,
                "perks": [_GOLD_PERK],
            },
        ],
    },
    "badges": [],
    "challenges": [],
    "voucher_pools": [],
    "rewards": [],
}
"""A live document as stored: defaults filled in (the default wallets too), rule versions kept
by the system."""

DOCUMENT_OUT: JsonObject = {"version": 2, "document": STORED_DOCUMENT}

APPLY_OUT: JsonObject = {
    "version": 2,
    "changed": True,
    "applied": True,
    "diff": "--- live\n+++ candidate\n@@ -39,8 +39,8 @@\n   boosters: best\n rules:\n"
    " - id: base-earn\n-  version: 1\n-  name: 1 € = 1 point (Bronze), 2 (Silver, Gold)\n"
    "+  version: 2\n+  name: 1 € = 1 point (Bronze), 2 (Silver), 3 (Gold)\n   active: true\n"
    "   event_type: purchase\n   award:\n@@ -51,7 +51,7 @@\n     rate_by_tier:\n"
    "       bronze: '1'\n       silver: '2'\n-      gold: '2'\n+      gold: '3'\n"
    "     multiplier: '1'\n     base:\n       discounts: after\n",
    "document": STORED_DOCUMENT,
}

VERSION: JsonObject = {
    "version": 2,
    "actor": f"api-key:{ADMIN_KEY_ID}",
    "comment": "Gold earns 3 points per euro",
    "created_at": "2026-11-03T10:47:52.660913Z",
}
