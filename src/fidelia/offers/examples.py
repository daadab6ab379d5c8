"""Examples of the offers API (the story of ``fidelia.examples``: Laure gets a comeback offer)."""

from __future__ import annotations

from fidelia.examples import MEMBER_ID, OTHER_MEMBER_ID, JsonObject
from fidelia.plans.examples import PERK

OFFER: JsonObject = {
    "code": "comeback-double",
    "name": "We miss you: double points on 3 purchases",
    "description": "",
    "kind": "booster",
    "amount": None,
    "wallet": "points",
    "reward": None,
    "multiplier": "2",
    "perk": None,
    "valid_from": None,
    "valid_to": None,
    "valid_days": 30,
    "max_uses": 3,
    "first_n": None,
}
FIRST_N: JsonObject = {"count": 500, "enrolled_after": "2026-01-01T00:00:00Z"}
GIVE: JsonObject = {"member_ids": [MEMBER_ID, OTHER_MEMBER_ID]}
GIVE_SEGMENT: JsonObject = {"segment": "slipping"}
GIVEN: JsonObject = {"offer": "comeback-double", "given": 2, "already": 0}
CONVERSION: JsonObject = {
    "offered": 1840,
    "used": 412,
    "uses": 655,
    "rate": "0.2239",
    "revenue": "31874.20",
}
OFFER_OUT: JsonObject = {
    "offer": OFFER,
    "status": "active",
    "slots_left": None,
    "conversion": CONVERSION,
}
MEMBER_OFFER: JsonObject = {
    "code": "comeback-double",
    "name": "We miss you: double points on 3 purchases",
    "description": "",
    "kind": "booster",
    "source": "segment",
    "given_at": "2026-11-30T09:30:00Z",
    "valid_from": "2026-11-30T09:30:00Z",
    "valid_until": "2026-12-30T09:30:00Z",
    "uses": 1,
    "uses_left": 2,
    "status": "active",
    "voucher_code": None,
    "detail": {"multiplier": "2", "wallet": "points"},
}
PERK_OUT: JsonObject = {
    **PERK,
    "sources": [{"kind": "plan", "code": "earth-plus-monthly", "until": "2026-12-14T10:02:11Z"}],
}
PERKS: JsonObject = {
    "member_id": MEMBER_ID,
    "at": "2026-11-30T16:40:00Z",
    "tier": "bronze",
    "effective_tier": "silver",
    "plan": "earth-plus-monthly",
    "perks": [PERK_OUT],
}
