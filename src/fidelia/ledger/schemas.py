"""Ledger documents: wallet policies (stored as JSON on the wallet) and the API shapes.

Amounts cross the API in the wallet's unit: an integer for points, a decimal string for money
(``"12.50"``). Inside, they are integers of the wallet's minor unit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fidelia.examples import examples
from fidelia.kit.bounds import Day, Instant
from fidelia.ledger import examples as ex

Amount = int | Decimal
Period = Literal["month", "quarter", "year"]


class ExpiryPolicy(BaseModel):
    """When earned value expires.

    ``never``; ``rolling``: ``days`` or ``months`` after earning; ``end_of_period``: at the end
    of the ``period`` (month, quarter, year) reached ``months`` after earning, in the
    programme's time zone; ``fixed``: at the end of ``date`` (programme time zone).
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.EXPIRY))

    kind: Literal["never", "rolling", "end_of_period", "fixed"] = "never"
    days: int | None = Field(default=None, ge=1, le=36_500)
    months: int | None = Field(default=None, ge=0, le=1_200)
    period: Period | None = None
    date: Day | None = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.kind == "rolling" and (self.days is None) == (self.months is None):
            raise ValueError("a rolling expiry needs exactly one of 'days' or 'months'")
        if self.kind == "rolling" and self.months == 0:
            raise ValueError("a rolling expiry needs months >= 1")
        if self.kind == "end_of_period" and self.period is None:
            raise ValueError("an end_of_period expiry needs 'period' (month, quarter, year)")
        if self.kind == "fixed" and self.date is None:
            raise ValueError("a fixed expiry needs 'date'")
        return self


class PendingPolicy(BaseModel):
    """Whether earned value is held before it can be spent: ``none``; ``days`` (a return
    window of ``days`` days); ``manual`` (until an explicit release)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.PENDING))

    kind: Literal["none", "days", "manual"] = "none"
    days: int | None = Field(default=None, ge=1, le=3_650)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if (self.kind == "days") != (self.days is not None):
            raise ValueError("'days' is required with kind 'days' and only then")
        return self


DebtPolicy = Literal["allow_debt", "clamp"]


class WalletIn(BaseModel):
    """A wallet declaration. ``scale`` defaults to 0 for points and to the currency's
    exponent for money; ``unit_value`` is the value of one unit in the programme currency."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=examples(ex.WALLET_IN)
    )

    code: str = Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1, max_length=100)
    unit: Literal["points", "money"] = "points"
    scale: int | None = Field(default=None, ge=0, le=6)
    unit_value: Decimal = Field(default=Decimal(0), ge=0, max_digits=18, decimal_places=8)
    spendable: bool = True
    debt_policy: DebtPolicy = Field(
        default="clamp",
        description="When a return takes back value already spent: 'allow_debt' (negative "
        "balance repaid by future earnings) or 'clamp' (stop at zero, record the unrecovered "
        "amount)",
    )
    expiry: ExpiryPolicy = Field(default_factory=ExpiryPolicy)
    pending: PendingPolicy = Field(default_factory=PendingPolicy)


class WalletOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ex.WALLET))

    id: uuid.UUID
    code: str
    name: str
    unit: str
    scale: int
    unit_value: Decimal
    spendable: bool
    debt_policy: str
    expiry_policy: ExpiryPolicy
    pending_policy: PendingPolicy


class BalanceOut(BaseModel):
    """A member's balance in one wallet, with its value in the programme currency."""

    model_config = ConfigDict(json_schema_extra=examples(ex.BALANCE, ex.CASHBACK_BALANCE))

    wallet: str
    unit: str
    available: Amount
    pending: Amount
    lifetime_earned: Amount
    lifetime_spent: Amount
    lifetime_expired: Amount
    value: Decimal = Field(description="available x unit value, in the programme currency")


class AsOfBalanceOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.AS_OF_BALANCE))

    wallet: str
    as_of: datetime
    available: Amount
    pending: Amount


class HistoryItem(BaseModel):
    """One transaction as seen from a member's account."""

    model_config = ConfigDict(json_schema_extra=examples(ex.HISTORY_ITEM))

    transaction_id: uuid.UUID
    kind: str
    amount: Amount = Field(description="Change of the available balance")
    pending: Amount = Field(description="Change of the pending balance")
    occurred_at: datetime
    posted_at: datetime
    source_type: str
    source_id: str | None
    rule_id: str | None
    rule_version: int | None
    reason: str | None
    actor: str | None
    reverses_id: uuid.UUID | None


class ExpiringOut(BaseModel):
    """How much expires on each day (programme time zone)."""

    model_config = ConfigDict(json_schema_extra=examples(ex.EXPIRING))

    date: dt.date
    amount: Amount


class EntryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.ENTRY))

    account_id: uuid.UUID
    account: str = Field(description="'member' or the system account: issued, redeemed...")
    member_id: uuid.UUID | None
    lot_id: uuid.UUID | None
    pending: bool
    amount: Amount


class TransactionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(*ex.TRANSACTIONS))

    id: uuid.UUID
    wallet: str
    kind: str
    member_id: uuid.UUID | None
    idempotency_key: str
    source_type: str
    source_id: str | None
    rule_id: str | None
    rule_version: int | None
    actor: str | None
    reason: str | None
    reverses_id: uuid.UUID | None
    occurred_at: datetime
    posted_at: datetime
    details: dict[str, object]
    entries: list[EntryOut]


class AdjustmentIn(BaseModel):
    """An operator's correction: positive credits a new lot, negative debits lots."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra=examples(ex.ADJUSTMENT, ex.DEBIT),
    )

    member_id: uuid.UUID
    wallet: str = Field(min_length=1, max_length=32)
    amount: Decimal = Field(
        max_digits=24, decimal_places=6, description="In the wallet's unit; signed, not zero"
    )
    reason: str = Field(min_length=1, max_length=2000)
    actor: str = Field(min_length=1, max_length=200)
    idempotency_key: str = Field(min_length=1, max_length=200)
    expires_at: Instant | None = Field(default=None, description="Overrides the wallet policy")


class TransferIn(BaseModel):
    """Move value between two members of the programme (both sides in one transaction)."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=examples(ex.TRANSFER_IN)
    )

    from_member_id: uuid.UUID
    to_member_id: uuid.UUID
    wallet: str = Field(min_length=1, max_length=32)
    amount: Decimal = Field(gt=0, max_digits=24, decimal_places=6)
    idempotency_key: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=2000)


class ReverseIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=examples(ex.REVERSE_IN)
    )

    reason: str = Field(min_length=1, max_length=2000)
    actor: str = Field(min_length=1, max_length=200)
    idempotency_key: str = Field(min_length=1, max_length=200)
