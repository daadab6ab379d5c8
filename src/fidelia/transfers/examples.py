"""Examples of the transfer documents (see ``fidelia.examples``)."""

from __future__ import annotations

from fidelia.examples import MEMBER_ID, OTHER_MEMBER_ID, TRANSFER_TRANSACTION_ID, JsonObject

TRANSFER_ID = "01a1dab9-2c38-7bf1-b42c-02436259aa01"

SECTION: JsonObject = {
    "enabled": True,
    "wallets": ["points"],
    "min_amount": 100,
    "max_per_transfer": 5000,
    "max_sent_per_month": 10000,
    "max_received_per_month": 10000,
    "max_transfers_per_month": 5,
    "min_member_age_days": 30,
    "portal": True,
}
"""Members may give 100 to 5,000 points at a time, up to 10,000 a month and five times a month,
once they have been members for 30 days."""

TRANSFER_IN: JsonObject = {
    "to": {"email": "camille.martin@example.com"},
    "wallet": "points",
    "amount": 500,
    "reference": "app-gift-7f3c2a-1",
    "reason": "birthday present",
}
"""Give 500 points to the member with this email address."""

TRANSFER_OUT: JsonObject = {
    "id": TRANSFER_ID,
    "sender_id": MEMBER_ID,
    "receiver_id": OTHER_MEMBER_ID,
    "wallet": "points",
    "amount": 500,
    "reference": "app-gift-7f3c2a-1",
    "channel": "api",
    "transaction_id": TRANSFER_TRANSACTION_ID,
    "direction": "sent",
    "reason": "birthday present",
    "created_at": "2026-11-14T15:42:10Z",
}
