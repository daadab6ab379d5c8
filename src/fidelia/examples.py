"""Sample values shared by the examples of the API documentation (each domain's
``examples.py``), so that together they tell one story.

Laure Moulin joins the Earth Care programme in the Lyon Part-Dieu store in March 2026 (card
``EC1625792787``). On 14 November she buys two water bottles and a book; a week later she
brings one bottle back. On 28 November she redeems 200 points for a 10 € voucher and uses it at
the till; on 30 November support credits her 250 points for a damaged parcel. The examples
carry what the API answers in that story: ids are UUIDv7 of the moment, times the client sends
carry their offset (Paris), times the server writes are UTC (``Z``), money travels as decimal
strings (``"24.90"``) and points as integers.

Examples are data only, checked by ``tests/api/test_openapi_docs.py``: each must validate
against its schema and be accepted by the model the API validates with.
"""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]


def examples(*payloads: JsonObject) -> JsonObject:
    """``json_schema_extra`` for a model: its examples, rendered in the OpenAPI document."""
    return {"examples": list(payloads)}


PROGRAMME_ID = "019b8d62-7a80-7ce8-9a81-ba6a85a0bcc1"
PROGRAMME_CREATED_AT = "2026-01-05T09:00:00.118204Z"
ADMIN_KEY_ID = "019b8d64-7650-75d9-bd78-bf154dad2986"
POS_KEY_ID = "01a19caa-c640-7c41-8b2e-17cf4a24e39a"

# -- the member and the people around her -----------------------------------------------------
MEMBER_ID = "019ceb9e-6018-78a4-ad11-f033b48438b5"
OTHER_MEMBER_ID = "019de98f-d9e0-71c3-91cf-484aa950666d"
CARD = "EC1625792787"
EMAIL = "laure.moulin@example.org"
PHONE = "+33612345678"
STORE = "lyon-part-dieu"
ENROLLED_AT = "2026-03-14T09:12:31Z"
MEMBER_UPDATED_AT = "2026-11-02T18:05:44.912330Z"

# -- events -----------------------------------------------------------------------------------
ENROLMENT_EVENT_ID = "019ceb9e-6018-73fb-81b9-5509eae0d2c1"
PURCHASE_EVENT_ID = "01a1dab9-2c38-7bf1-b42c-024362590992"
PURCHASE_KEY = "pos-lyon-0412-20261114-0087"
PURCHASED_AT = "2026-11-14T16:42:10+01:00"
PURCHASE_RECEIVED_AT = "2026-11-14T15:42:11.204518Z"
ORDER_ID = "LYO-20261114-0087"
RETURN_EVENT_ID = "01a1fd5a-1248-7dc1-9027-0e3c6b68b48e"
RETURN_KEY = "pos-lyon-0412-20261121-0012"
RETURNED_AT = "2026-11-21T10:05:00+01:00"

# -- ledger -----------------------------------------------------------------------------------
POINTS_WALLET_ID = "019b8d62-7a80-7a3e-9e57-a11adbd5f6d2"
STATUS_WALLET_ID = "019b8d62-7a80-7244-a665-762aff0f3b81"
CASHBACK_WALLET_ID = "019b8d62-7a80-7689-b3fb-278baebf9993"
MEMBER_ACCOUNT_ID = "019ceb9e-6018-7cd4-a3c4-e2668869510d"
OTHER_ACCOUNT_ID = "019de98f-d9e0-7a38-adcc-3623e1e8a4aa"
ISSUED_ACCOUNT_ID = "019b8d62-7a80-71f9-a28e-c27754bec7d8"
ADJUSTED_ACCOUNT_ID = "019b8d62-7a80-735c-abe4-a6a4f4873115"
EARN_TRANSACTION_ID = "01a1dab9-2c38-7514-b35a-185780690847"
EARN_LOT_ID = "01a1dab9-2c38-7f09-a077-6a7614f50791"
RETURN_TRANSACTION_ID = "01a1fd5a-1248-766c-ae5a-7b01f1f83a79"
SPEND_TRANSACTION_ID = "01a221e2-3e88-78d1-bfe6-8e452335e9e2"
ADJUST_TRANSACTION_ID = "01a22b85-83a0-7d00-88f3-d24f0febddf8"
ADJUST_LOT_ID = "01a22b85-83a0-768e-93c9-ecd711b5aecd"
ADJUSTED_AT = "2026-11-30T08:15:00.402117Z"
TRANSFER_TRANSACTION_ID = "01a22bae-b680-7325-b805-2f80caa7e9bf"
REVERSE_TRANSACTION_ID = "01a22be5-a500-7b4a-b87f-e0ea26a2658f"

# -- rewards ----------------------------------------------------------------------------------
REWARD_ID = "019b8d6b-a240-7eb8-a063-73b4d0398c72"
DONATION_REWARD_ID = "019b8d6b-a240-76ec-8124-3289561d2417"
POOL_ID = "019b8d67-0e60-70d3-a496-c7b25f4807bc"
REDEMPTION_ID = "01a221e2-3e88-7bd2-b021-56b2e599e358"
REDEEMED_AT = "2026-11-28T11:20:05.331906Z"
VOUCHER_ID = "01a221e2-3e88-7f5a-8338-0b4a5ac9cd0e"
VOUCHER_CODE = "BON10-WE3E-XA9K"
VOUCHER_VALID_UNTIL = "2027-02-26T11:20:05.331906Z"
TILL_ORDER_ID = "LYO-20261128-0031"
USED_AT = "2026-11-28T17:31:44.078215Z"

# -- tiers and engagement ---------------------------------------------------------------------
GOLD_EVENT_ID = "01a0c302-29b0-71df-8f4a-e68d67cc1752"
BADGE_EVENT_ID = "019fe1bf-c408-7f51-8daf-9b9a8e8b88c2"
