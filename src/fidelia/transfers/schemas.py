"""The ``transfers`` section of a programme document, and the transfer API's documents.

Amounts and limits are in the wallet's unit (whole points for a points wallet). A limit left
out is no limit; the section left out (or ``enabled: false``) refuses every transfer.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fidelia.events.schemas import MemberRef
from fidelia.examples import examples
from fidelia.ledger.schemas import Amount
from fidelia.transfers import examples as ex

Limit = Annotated[Decimal, Field(gt=0, max_digits=24, decimal_places=6)]
WalletCode = Annotated[str, Field(min_length=1, max_length=32)]


class TransfersSection(BaseModel):
    """Whether and how members may give value to one another (off by default)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.SECTION))

    enabled: bool = False
    wallets: list[WalletCode] = Field(
        default_factory=lambda: ["points"], min_length=1, max_length=10,
        description="The wallets whose value may be given",
    )  # fmt: skip
    min_amount: Limit | None = Field(default=None, description="Smallest transfer")
    max_per_transfer: Limit | None = Field(default=None, description="Largest transfer")
    max_sent_per_month: Limit | None = Field(
        default=None, description="Most a member may give per calendar month (programme time)"
    )
    max_received_per_month: Limit | None = Field(
        default=None, description="Most a member may receive per calendar month"
    )
    max_transfers_per_month: int | None = Field(
        default=None, ge=1, le=1000, description="How many transfers a member may send a month"
    )
    min_member_age_days: int = Field(
        default=0, ge=0, le=3650, description="Days since enrolment before a member may give"
    )
    portal: bool = Field(default=True, description="Members may give from the portal")

    @model_validator(mode="after")
    def _bounds(self) -> TransfersSection:
        if (
            self.min_amount is not None
            and self.max_per_transfer is not None
            and self.min_amount > self.max_per_transfer
        ):
            raise ValueError("min_amount is above max_per_transfer")
        if len(set(self.wallets)) != len(self.wallets):
            raise ValueError("each wallet may appear once in wallets")
        return self


class TransferIn(BaseModel):
    """Give value to another member of the programme, named by id or any identity."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=examples(ex.TRANSFER_IN)
    )

    to: MemberRef
    wallet: WalletCode = "points"
    amount: Decimal = Field(gt=0, max_digits=24, decimal_places=6)
    reference: str = Field(
        min_length=1,
        max_length=100,
        description="The caller's idempotency key: the same reference from the same sender "
        "gives back the same transfer",
    )
    reason: str | None = Field(default=None, max_length=2000)


class TransferOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.TRANSFER_OUT))

    id: uuid.UUID
    sender_id: uuid.UUID
    receiver_id: uuid.UUID
    wallet: str
    amount: Amount
    reference: str
    channel: Literal["api", "portal", "admin"]
    transaction_id: uuid.UUID
    direction: Literal["sent", "received"] | None = Field(
        default=None, description="Seen from the member whose list this is"
    )
    reason: str | None
    created_at: datetime
