"""The ``offers`` section of the programme document, and the offers API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fidelia.errors import ValidationFailed
from fidelia.examples import examples
from fidelia.kit.bounds import Count, Instant, ShortText
from fidelia.offers import examples as ex
from fidelia.plans.schemas import Multiplier, Slug
from fidelia.tiers.schemas import Perk

OfferKind = Literal["points", "voucher", "booster", "perk"]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FirstN(_Doc):
    """Given automatically to the first ``count`` members enrolled from ``enrolled_after``."""

    model_config = ConfigDict(json_schema_extra=examples(ex.FIRST_N))

    count: Count
    enrolled_after: Instant | None = Field(None, description="Only enrolments from this instant")


class OfferDef(_Doc):
    """An offer: what it gives (points, a voucher, a points booster, a perk), when it is valid,
    how many times a member may use it, and optionally who gets it by itself (first N)."""

    model_config = ConfigDict(json_schema_extra=examples(ex.OFFER))

    code: Slug
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=1000)
    kind: OfferKind
    amount: Annotated[int, Field(ge=1, le=10_000_000)] | None = Field(
        None, description="points: how many, credited when the offer is given"
    )
    wallet: Slug = Field("points", description="points and booster: the wallet")
    reward: Slug | None = Field(None, description="voucher: the voucher pool or voucher reward")
    multiplier: Multiplier | None = Field(
        None, description="booster: purchase earnings (spend rules) into `wallet` are multiplied"
    )
    perk: Perk | None = Field(None, description="perk: the perk the member holds while valid")
    valid_from: Instant | None = None
    valid_to: Instant | None = None
    valid_days: Annotated[int, Field(ge=1, le=3650)] | None = Field(
        None, description="Days a member has from when it is given (the earlier end wins)"
    )
    max_uses: Count | None = Field(None, description="booster: boosted purchases per member")
    first_n: FirstN | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> Self:
        needed = {"points": "amount", "voucher": "reward", "booster": "multiplier", "perk": "perk"}
        key = needed[self.kind]
        if getattr(self, key) is None:
            raise ValueError(f"a {self.kind} offer needs {key}")
        for other in set(needed.values()) - {key}:
            if getattr(self, other) is not None:
                raise ValueError(f"{other} is only for a {self._kind_of(other)} offer")
        if self.kind == "booster" and self.multiplier is not None and self.multiplier <= 1:
            raise ValueError("multiplier: a booster multiplies by more than 1")
        if self.valid_from and self.valid_to and self.valid_from >= self.valid_to:
            raise ValueError("valid_from must be before valid_to")
        if self.max_uses is not None and self.kind != "booster":
            raise ValueError("max_uses is only for a booster offer")
        return self

    @staticmethod
    def _kind_of(key: str) -> str:
        return {"amount": "points", "reward": "voucher", "multiplier": "booster"}.get(key, "perk")


def check_section(doc: Any) -> None:
    """Cross-section checks of ``offers`` (``doc`` is a ProgrammeDocument)."""
    seen: set[str] = set()
    refs = {p.code for p in doc.voucher_pools} | {r.code for r in doc.rewards}
    wallets = {w.code for w in doc.wallets} if doc.wallets is not None else None
    for i, offer in enumerate(doc.offers):
        if offer.code in seen:
            raise ValidationFailed.on(("offers", i, "code"), f"duplicate code {offer.code!r}")
        seen.add(offer.code)
        if offer.reward is not None and offer.reward not in refs:
            raise ValidationFailed.on(
                ("offers", i, "reward"), "declare it in voucher_pools or rewards"
            )
        if (
            wallets is not None
            and offer.kind in ("points", "booster")
            and offer.wallet not in wallets
        ):
            raise ValidationFailed.on(("offers", i, "wallet"), "no such wallet")


class GiveIn(BaseModel):
    """Give an offer to members: a list of ids, or every member of a segment now."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.GIVE, ex.GIVE_SEGMENT))

    member_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10_000)
    segment: ShortText | None = None

    @model_validator(mode="after")
    def _one_audience(self) -> Self:
        if bool(self.member_ids) == (self.segment is not None):
            raise ValueError("give member_ids or a segment (one of them)")
        return self


class GiveOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.GIVEN))

    offer: str
    given: int = Field(description="Members who got it now")
    already: int = Field(description="Members who had it already (unchanged)")


class ConversionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.CONVERSION))

    offered: int
    used: int = Field(description="Members who used it at least once")
    uses: int
    rate: Decimal = Field(description="used / offered")
    revenue: Decimal = Field(description="Baskets that came with its uses")


class OfferOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.OFFER_OUT))

    offer: OfferDef
    status: Literal["upcoming", "active", "ended"]
    slots_left: int | None = Field(None, description="first_n offers: slots not given yet")
    conversion: ConversionOut


class MemberOfferOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.MEMBER_OFFER))

    code: str
    name: str
    description: str
    kind: str
    source: str
    given_at: datetime
    valid_from: datetime
    valid_until: datetime | None
    uses: int
    uses_left: int | None
    status: Literal["upcoming", "active", "used", "expired"]
    voucher_code: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class PerkOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.PERK_OUT))

    code: str
    description: str
    labels: dict[str, str] = Field(default_factory=dict)
    sources: list[dict[str, Any]] = Field(
        description="Why the member holds it: [{kind: tier|plan|offer, code, until}]"
    )


class PerksOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.PERKS))

    member_id: uuid.UUID
    at: datetime
    tier: str | None
    effective_tier: str | None = Field(description="The tier, raised to a plan's tier floor")
    plan: str | None
    perks: list[PerkOut]
