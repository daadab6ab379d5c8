"""Event intake documents: the envelope, the member reference, and the built-in typed events.

Built-in types (``purchase``, ``return``, ``enrolment``, ``profile_updated``,
``consent_changed``) have typed properties validated here. Any other type is open: its
properties are free unless the programme declared a JSON schema for it.
Money is ``Decimal`` and travels in JSON as a string (``"12.50"``) or a number.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fidelia.events import examples as ex
from fidelia.examples import examples
from fidelia.kit.bounds import Day, FreeJson, Instant

Channel = Literal["store", "web", "app", "import", "call_centre", "partner"]
ConsentChannel = Literal["email", "sms", "push", "postal"]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4)]
EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_.]{0,63}$"
EventTypeName = Annotated[str, Field(min_length=1, max_length=64, pattern=EVENT_TYPE_PATTERN)]

BUILT_IN_TYPES = frozenset(
    {"purchase", "return", "enrolment", "profile_updated", "consent_changed"}
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ExternalId(Strict):
    model_config = ConfigDict(json_schema_extra=examples(ex.EXTERNAL_ID))

    namespace: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    value: str = Field(min_length=1, max_length=200)


class MemberRef(Strict):
    """How an event or a request names a member: by id or by any of its identities."""

    model_config = ConfigDict(json_schema_extra=examples(ex.MEMBER_REF))

    id: uuid.UUID | None = None
    card: str | None = Field(default=None, min_length=1, max_length=64)
    email: str | None = Field(default=None, min_length=3, max_length=320)
    phone: str | None = Field(default=None, min_length=3, max_length=32)
    external: ExternalId | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> MemberRef:
        if not any((self.id, self.card, self.email, self.phone, self.external)):
            raise ValueError("give at least one of id, card, email, phone, external")
        return self


class PurchaseLine(Strict):
    sku: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=100)
    brand: str | None = Field(default=None, max_length=100)
    quantity: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)]
    unit_price: Money
    discount: Money = Decimal(0)

    @property
    def amount(self) -> Decimal:
        """What the line costs the customer: quantity x unit price, less its discount."""
        return self.quantity * self.unit_price - self.discount

    @model_validator(mode="after")
    def _discount_within_line(self) -> PurchaseLine:
        if self.discount > self.quantity * self.unit_price:
            raise ValueError("discount is larger than quantity x unit_price")
        return self


class Purchase(Strict):
    order_id: str = Field(min_length=1, max_length=100)
    lines: list[PurchaseLine] = Field(min_length=1, max_length=500)
    shipping: Money = Decimal(0)
    total: Money
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    payment_means: list[str] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _lines_unique(self) -> Purchase:
        skus = [line.sku for line in self.lines]
        if len(set(skus)) != len(skus):
            raise ValueError("each sku may appear on one line only; sum the quantities")
        return self


class ReturnLine(Strict):
    sku: str = Field(min_length=1, max_length=64)
    quantity: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)]


class Return(Strict):
    order_id: str = Field(min_length=1, max_length=100)
    return_id: str | None = Field(default=None, max_length=100)
    lines: list[ReturnLine] = Field(min_length=1, max_length=500)
    refund_total: Money | None = None


class Profile(Strict):
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    birth_date: Day | None = None
    locale: str | None = Field(default=None, max_length=16)
    postal_code: str | None = Field(default=None, max_length=16)
    attributes: FreeJson | None = None


class ConsentGrant(Strict):
    channel: ConsentChannel
    granted: bool
    source: str | None = Field(default=None, max_length=64)


class Enrolment(Strict):
    """A person joins. For a member who is already enrolled (not a prospect) it is a profile
    update instead: it fills the profile's empty fields, links new identities, records the
    consents, and runs no rules (the outcome says ``already_enrolled``)."""

    profile: Profile = Field(default_factory=Profile)
    consents: list[ConsentGrant] = Field(default_factory=list, max_length=4)
    external_ids: list[ExternalId] = Field(
        default_factory=list,
        max_length=20,
        description="More external ids of the member (besides member.external), linked to them",
    )
    referral_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="A referrer's code (member-get-member): links the new member to them",
    )


class ProfileUpdated(Strict):
    profile: Profile


class ConsentChanged(Strict):
    channel: ConsentChannel
    granted: bool
    source: str | None = Field(default=None, max_length=64)


BUILT_IN_MODELS: dict[str, type[Strict]] = {
    "purchase": Purchase,
    "return": Return,
    "enrolment": Enrolment,
    "profile_updated": ProfileUpdated,
    "consent_changed": ConsentChanged,
}


class EventIn(Strict):
    """One event as an integrator sends it."""

    model_config = ConfigDict(json_schema_extra=examples(ex.PURCHASE, ex.RETURN, ex.REVIEW))

    id: str = Field(
        min_length=1, max_length=200, description="Idempotency key, unique per programme"
    )
    type: EventTypeName
    occurred_at: Instant
    member: MemberRef | None = Field(
        default=None,
        description="Who the event happened to. Only a purchase may name nobody: an anonymous "
        "purchase (a customer who is not a member) is counted in the KPIs only: no points, no "
        "rules, no member",
    )
    channel: Channel | None = None
    store: str | None = Field(default=None, max_length=64)
    properties: FreeJson = Field(default_factory=dict)

    @model_validator(mode="after")
    def _member_unless_anonymous_purchase(self) -> EventIn:
        if self.member is None and self.type != "purchase":
            raise ValueError("member: required (only a purchase may be anonymous)")
        return self

    @property
    def ref(self) -> MemberRef:
        """The member named (the intake routes anonymous purchases elsewhere first)."""
        if self.member is None:
            raise ValueError("an anonymous purchase names no member")
        return self.member


class EventBatchIn(Strict):
    events: list[EventIn] = Field(min_length=1, max_length=1000)


class EventOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.EVENT))

    id: uuid.UUID
    idempotency_key: str
    type: str
    occurred_at: datetime
    received_at: datetime
    member_id: uuid.UUID
    channel: str | None
    store: str | None
    properties: dict[str, Any]


class EventOutcome(BaseModel):
    """What intake answered for one event; the same answer comes back if it is resent."""

    model_config = ConfigDict(json_schema_extra=examples(ex.OUTCOME, ex.RETURN_OUTCOME))

    index: int | None = None
    id: str
    status: Literal["accepted", "duplicate", "rejected"]
    event_id: uuid.UUID | None = None
    member_id: uuid.UUID | None = None
    member_created: bool = False
    already_enrolled: bool = Field(
        default=False,
        description="An enrolment for a member who was already enrolled: applied as a profile "
        "update (empty fields filled, identities linked, consents recorded); no rule ran",
    )
    error: str | None = None
    detail: str | None = None
    fields: list[dict[str, Any]] = Field(default_factory=list)
    totals: dict[str, Any] = Field(
        default_factory=dict, description="What the event earned per wallet, e.g. {'points': 120}"
    )
    effects: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Awards (with their explanation: rule and version, base, rate, lines), "
        "vouchers, badges, reversals of a return",
    )


class BatchOutcome(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.BATCH_OUTCOME, ex.BATCH_RESENT))

    accepted: int
    duplicates: int
    rejected: int
    results: list[EventOutcome]
