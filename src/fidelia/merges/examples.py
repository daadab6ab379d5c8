"""Examples of the merge documents (see ``fidelia.examples``): Laure Moulin's web account,
opened with her email before she had a card, is folded into her store card's member."""

from __future__ import annotations

from fidelia.examples import ADMIN_KEY_ID, MEMBER_ID, OTHER_MEMBER_ID, JsonObject

MERGE_ID = "01a23c41-5b20-7d3e-8a11-4f2c9e0b7a55"
MERGE_TXN_ID = "01a23c41-5b21-70a4-9c2e-1d7f3b8e6a10"
UNMERGE_TXN_ID = "01a2a1f0-0c33-7b6e-a4d1-58e20f9c3b21"
MERGED_AT = "2026-11-30T09:14:02.511803Z"
UNMERGED_AT = "2026-12-02T16:40:19.207114Z"

MERGE_IN: JsonObject = {
    "duplicate_id": OTHER_MEMBER_ID,
    "reason": "Same person: web account opened with her email before she had a card",
}

UNMERGE_IN: JsonObject = {"merge_id": MERGE_ID}

MOVED: JsonObject = {
    "identity": 2,
    "event": 14,
    "consent_change": 3,
    "badge": 1,
    "completion": 0,
    "voucher": 1,
    "voucher_use": 0,
    "redemption": 1,
}

WALLET_MOVE: JsonObject = {
    "wallet": "points",
    "moved": "340",
    "lots": 3,
    "transaction_id": MERGE_TXN_ID,
}

WALLET_BACK: JsonObject = {
    "wallet": "points",
    "moved": "340",
    "returned": "160",
    "shortfall": "180",
    "transaction_id": UNMERGE_TXN_ID,
}

MERGE: JsonObject = {
    "id": MERGE_ID,
    "survivor_id": MEMBER_ID,
    "duplicate_id": OTHER_MEMBER_ID,
    "status": "merged",
    "source": "api",
    "actor": f"api_key:{ADMIN_KEY_ID}",
    "reason": MERGE_IN["reason"],
    "merged_at": MERGED_AT,
    "moved": MOVED,
    "wallets": [WALLET_MOVE],
    "tier": {"before": "silver", "after": "gold"},
    "unmerged_at": None,
    "unmerged_by": None,
    "unmerge": None,
}

UNMERGE: JsonObject = {
    "moved_back": MOVED,
    "wallets": [WALLET_BACK],
}

UNMERGED: JsonObject = {
    **MERGE,
    "status": "unmerged",
    "unmerged_at": UNMERGED_AT,
    "unmerged_by": f"api_key:{ADMIN_KEY_ID}",
    "unmerge": UNMERGE,
}

PAIR: JsonObject = {
    "survivor_id": MEMBER_ID,
    "duplicate_id": OTHER_MEMBER_ID,
    "score": 0.995,
    "reasons": ["same_email", "same_name_birth_date_postal_code"],
}
