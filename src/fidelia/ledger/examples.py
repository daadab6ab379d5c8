"""Examples of the ledger documents (see ``fidelia.examples``)."""

from __future__ import annotations

from fidelia.examples import (
    ADJUST_LOT_ID,
    ADJUST_TRANSACTION_ID,
    ADJUSTED_ACCOUNT_ID,
    ADJUSTED_AT,
    CASHBACK_WALLET_ID,
    EARN_LOT_ID,
    EARN_TRANSACTION_ID,
    ISSUED_ACCOUNT_ID,
    MEMBER_ACCOUNT_ID,
    MEMBER_ID,
    OTHER_ACCOUNT_ID,
    OTHER_MEMBER_ID,
    PURCHASE_EVENT_ID,
    PURCHASE_RECEIVED_AT,
    REVERSE_TRANSACTION_ID,
    TRANSFER_TRANSACTION_ID,
    JsonObject,
)

EXPIRY: JsonObject = {"kind": "rolling", "days": None, "months": 12, "period": None, "date": None}
PENDING: JsonObject = {"kind": "days", "days": 30}

WALLET_IN: JsonObject = {
    "code": "cashback",
    "name": "Cashback",
    "unit": "money",
    "scale": 2,
    "unit_value": "1",
    "spendable": True,
    "debt_policy": "clamp",
    "expiry": {"kind": "rolling", "months": 12},
    "pending": PENDING,
}
"""Cashback in euros, held 30 days (the return window), expiring 12 months after it is earned."""

WALLET: JsonObject = {
    "id": CASHBACK_WALLET_ID,
    "code": "cashback",
    "name": "Cashback",
    "unit": "money",
    "scale": 2,
    "unit_value": "1",
    "spendable": True,
    "debt_policy": "clamp",
    "expiry_policy": EXPIRY,
    "pending_policy": PENDING,
}

BALANCE: JsonObject = {
    "wallet": "points",
    "unit": "points",
    "available": 4664,
    "pending": 500,
    "lifetime_earned": 5264,
    "lifetime_spent": 600,
    "lifetime_expired": 0,
    "value": "46.64",
}
"""4,664 points worth 0.01 € each; 500 more are held until a return window closes."""

CASHBACK_BALANCE: JsonObject = {
    "wallet": "cashback",
    "unit": "money",
    "available": "1.61",
    "pending": "0.00",
    "lifetime_earned": "1.61",
    "lifetime_spent": "0.00",
    "lifetime_expired": "0.00",
    "value": "1.61",
}

AS_OF_BALANCE: JsonObject = {
    "wallet": "points",
    "as_of": "2026-09-30T22:00:00Z",
    "available": 2769,
    "pending": 400,
}

HISTORY_ITEM: JsonObject = {
    "transaction_id": EARN_TRANSACTION_ID,
    "kind": "earn",
    "amount": 206,
    "pending": 0,
    "occurred_at": "2026-11-14T15:42:10Z",
    "posted_at": PURCHASE_RECEIVED_AT,
    "source_type": "event",
    "source_id": PURCHASE_EVENT_ID,
    "rule_id": "base-earn",
    "rule_version": 1,
    "reason": None,
    "actor": None,
    "reverses_id": None,
}

EXPIRING: JsonObject = {"date": "2027-11-14", "amount": 206}

_SUPPORT = "support:camille.r"

ADJUSTMENT: JsonObject = {
    "member_id": MEMBER_ID,
    "wallet": "points",
    "amount": "250",
    "reason": "Goodwill: parcel arrived damaged (ticket 48213)",
    "actor": _SUPPORT,
    "idempotency_key": "zendesk-48213-goodwill",
    "expires_at": "2027-06-30T23:59:59+02:00",
}
"""A credit: a new lot of 250 points, expiring at the end of June 2027."""

DEBIT: JsonObject = {
    "member_id": MEMBER_ID,
    "wallet": "points",
    "amount": "-120",
    "reason": "Points earned on an order cancelled by the warehouse (case 3121)",
    "actor": _SUPPORT,
    "idempotency_key": "case-3121-debit",
}

TRANSFER_IN: JsonObject = {
    "from_member_id": MEMBER_ID,
    "to_member_id": OTHER_MEMBER_ID,
    "wallet": "points",
    "amount": "300",
    "idempotency_key": "app-transfer-7f3c2a-1",
    "reason": "Sharing with my son",
}

REVERSE_IN: JsonObject = {
    "reason": "Transferred by mistake",
    "actor": _SUPPORT,
    "idempotency_key": "zendesk-48250-reverse",
}


def _entry(
    account: str, account_id: str, member: str | None, lot: str | None, amount: int
) -> JsonObject:
    return {
        "account_id": account_id,
        "account": account,
        "member_id": member,
        "lot_id": lot,
        "pending": False,
        "amount": amount,
    }


ENTRY: JsonObject = _entry("member", MEMBER_ACCOUNT_ID, MEMBER_ID, ADJUST_LOT_ID, 250)

_TRANSACTION: JsonObject = {
    "wallet": "points",
    "member_id": MEMBER_ID,
    "rule_id": None,
    "rule_version": None,
    "reverses_id": None,
    "details": {},
}

ADJUSTMENT_TRANSACTION: JsonObject = {
    **_TRANSACTION,
    "id": ADJUST_TRANSACTION_ID,
    "kind": "adjust",
    "idempotency_key": "zendesk-48213-goodwill",
    "source_type": "operator",
    "source_id": _SUPPORT,
    "actor": _SUPPORT,
    "reason": "Goodwill: parcel arrived damaged (ticket 48213)",
    "occurred_at": ADJUSTED_AT,
    "posted_at": ADJUSTED_AT,
    "entries": [ENTRY, _entry("adjusted", ADJUSTED_ACCOUNT_ID, None, None, -250)],
}
"""Every transaction balances: the member's lot against a system account."""

EARN_TRANSACTION: JsonObject = {
    **_TRANSACTION,
    "id": EARN_TRANSACTION_ID,
    "kind": "earn",
    "idempotency_key": f"event:{PURCHASE_EVENT_ID}:base-earn:points",
    "source_type": "event",
    "source_id": PURCHASE_EVENT_ID,
    "rule_id": "base-earn",
    "rule_version": 1,
    "actor": None,
    "reason": None,
    "occurred_at": "2026-11-14T15:42:10Z",
    "posted_at": PURCHASE_RECEIVED_AT,
    "entries": [
        _entry("member", MEMBER_ACCOUNT_ID, MEMBER_ID, EARN_LOT_ID, 206),
        _entry("issued", ISSUED_ACCOUNT_ID, None, None, -206),
    ],
}

_TRANSFERRED_AT = "2026-11-30T09:00:00.118530Z"
_OTHER_LOT_ID = "01a22bae-b680-7a11-9c3e-65f1a0b7d2e4"

TRANSFER_TRANSACTION: JsonObject = {
    **_TRANSACTION,
    "id": TRANSFER_TRANSACTION_ID,
    "kind": "transfer",
    "idempotency_key": "app-transfer-7f3c2a-1",
    "source_type": "member",
    "source_id": MEMBER_ID,
    "actor": None,
    "reason": "Sharing with my son",
    "occurred_at": _TRANSFERRED_AT,
    "posted_at": _TRANSFERRED_AT,
    "details": {"to_member_id": OTHER_MEMBER_ID},
    "entries": [
        _entry("member", MEMBER_ACCOUNT_ID, MEMBER_ID, EARN_LOT_ID, -206),
        _entry("member", MEMBER_ACCOUNT_ID, MEMBER_ID, ADJUST_LOT_ID, -94),
        _entry("member", OTHER_ACCOUNT_ID, OTHER_MEMBER_ID, _OTHER_LOT_ID, 300),
    ],
}
"""Value leaves the giver's oldest lots first and arrives in a new lot of the receiver."""

_REVERSED_AT = "2026-11-30T10:00:00.552914Z"

REVERSAL_TRANSACTION: JsonObject = {
    **TRANSFER_TRANSACTION,
    "id": REVERSE_TRANSACTION_ID,
    "kind": "reverse",
    "idempotency_key": "zendesk-48250-reverse",
    "source_type": "operator",
    "source_id": _SUPPORT,
    "actor": _SUPPORT,
    "reason": "Transferred by mistake",
    "reverses_id": TRANSFER_TRANSACTION_ID,
    "occurred_at": _REVERSED_AT,
    "posted_at": _REVERSED_AT,
    "details": {},
    "entries": [
        _entry("member", OTHER_ACCOUNT_ID, OTHER_MEMBER_ID, _OTHER_LOT_ID, -300),
        _entry("member", MEMBER_ACCOUNT_ID, MEMBER_ID, EARN_LOT_ID, 206),
        _entry("member", MEMBER_ACCOUNT_ID, MEMBER_ID, ADJUST_LOT_ID, 94),
    ],
}

TRANSACTIONS = (
    ADJUSTMENT_TRANSACTION,
    EARN_TRANSACTION,
    TRANSFER_TRANSACTION,
    REVERSAL_TRANSACTION,
)
