"""Request and response documents of merges, unmerges and duplicate suggestions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fidelia.examples import examples
from fidelia.merges import examples as ex
from fidelia.models import MemberMerge

Reason = Literal[
    "same_email", "same_phone", "same_name_birth_date_postal_code", "same_name_birth_date"
]


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.MERGE_IN))

    duplicate_id: uuid.UUID = Field(description="The member folded into this one; it ends merged")
    reason: str | None = Field(
        None, min_length=1, max_length=500, description="Why, for the record"
    )


class UnmergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.UNMERGE_IN))

    merge_id: uuid.UUID = Field(description="The merge to undo (one of GET .../merges)")


class WalletMoveOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.WALLET_MOVE))

    wallet: str
    moved: str = Field(description="In the wallet's unit (points, or money as a decimal)")
    lots: int = Field(description="How many lots moved (a lot keeps its expiry and pending date)")
    transaction_id: uuid.UUID = Field(description="The ledger posting that moved them")


class WalletBackOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.WALLET_BACK))

    wallet: str
    moved: str = Field(description="What the merge moved, in the wallet's unit")
    returned: str = Field(description="What was left of it and went back to the duplicate")
    shortfall: str = Field(description="What the survivor used meanwhile: not taken back")
    transaction_id: uuid.UUID | None = Field(description="The posting; null if nothing was left")


class UnmergeOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.UNMERGE))

    moved_back: dict[str, int] = Field(description="Rows re-pointed to the duplicate, per kind")
    wallets: list[WalletBackOut]


class TierMoveOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.MERGE["tier"]))

    before: str | None = Field(description="The survivor's tier before the merge")
    after: str | None = Field(description="Its tier after the merge")


class MergeOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.MERGE, ex.UNMERGED))

    id: uuid.UUID
    survivor_id: uuid.UUID
    duplicate_id: uuid.UUID
    status: Literal["merged", "unmerged"]
    source: Literal["api", "enrolment", "event"]
    actor: str
    reason: str | None
    merged_at: datetime
    moved: dict[str, int] = Field(description="Rows re-pointed to the survivor, per kind")
    wallets: list[WalletMoveOut]
    tier: TierMoveOut | None = Field(description="Null when the duplicate had no tier")
    unmerged_at: datetime | None
    unmerged_by: str | None
    unmerge: UnmergeOut | None = Field(description="What the unmerge did; null while merged")

    @classmethod
    def of(cls, record: MemberMerge) -> MergeOut:
        details: dict[str, Any] = record.details
        tier = details.get("tier")
        report = record.unmerge_report
        return cls(
            id=record.id,
            survivor_id=record.survivor_id,
            duplicate_id=record.duplicate_id,
            status=record.status,
            source=record.source,
            actor=record.actor,
            reason=record.reason,
            merged_at=record.merged_at,
            moved=details.get("moved", {}),
            wallets=[
                WalletMoveOut(
                    wallet=w["wallet"],
                    moved=w["moved"],
                    lots=len(w["lots"]),
                    transaction_id=w["transaction_id"],
                )
                for w in details.get("wallets", [])
            ],
            tier=TierMoveOut(
                before=(tier["before"] or {}).get("tier"), after=(tier["after"] or {}).get("tier")
            )
            if tier
            else None,
            unmerged_at=record.unmerged_at,
            unmerged_by=record.unmerged_by,
            unmerge=UnmergeOut.model_validate(report) if report else None,
        )


class DuplicatePairOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.PAIR))

    survivor_id: uuid.UUID = Field(description="The member enrolled first: the one to keep")
    duplicate_id: uuid.UUID
    score: float = Field(ge=0, le=1, description="1 - product of (1 - weight) of the reasons")
    reasons: list[Reason]
