from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fidelia.events.schemas import Channel, ConsentChannel, ExternalId, Profile
from fidelia.examples import examples
from fidelia.kit.bounds import Instant
from fidelia.members import examples as ex

MemberStatus = Literal["prospect", "active", "suspended", "closed", "merged"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ConsentIn(Strict):
    model_config = ConfigDict(json_schema_extra=examples(ex.CONSENT_IN))

    channel: ConsentChannel
    granted: bool
    source: str | None = Field(default=None, max_length=64)


class MemberCreate(Profile):
    """Enrolment. Identities are each unique within the programme."""

    model_config = ConfigDict(json_schema_extra=examples(ex.ENROLMENT))

    card: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    external_ids: list[ExternalId] = Field(default_factory=list, max_length=20)
    channel: Channel = "store"
    store: str | None = Field(default=None, max_length=64)
    enrolled_at: Instant | None = None
    consents: list[ConsentIn] = Field(default_factory=list, max_length=4)
    referral_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="The referrer's code, if a member referred them (see /referrals)",
    )


class MemberUpdate(Profile):
    """Profile changes; absent fields are left as they are."""

    model_config = ConfigDict(json_schema_extra=examples(ex.UPDATE))


class IdentityAdd(Strict):
    model_config = ConfigDict(json_schema_extra=examples(ex.IDENTITY_ADD))

    kind: Literal["card", "email", "phone", "external"]
    value: str = Field(min_length=1, max_length=320)
    namespace: str | None = Field(default=None, max_length=64)


class LookupQuery(Strict):
    """Find a member by one identity: card, email, phone, or an external id with its system."""

    card: str | None = Field(default=None, min_length=1, max_length=64)
    email: str | None = Field(default=None, min_length=3, max_length=320)
    phone: str | None = Field(default=None, min_length=3, max_length=32)
    namespace: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="System of an external id (with external_id)",
    )
    external_id: str | None = Field(default=None, min_length=1, max_length=200)


class StatusChange(Strict):
    model_config = ConfigDict(json_schema_extra=examples(ex.STATUS_CHANGE))

    status: MemberStatus
    reason: str | None = Field(default=None, max_length=500)


class IdentityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ex.IDENTITY))

    kind: str
    namespace: str
    value: str


class ConsentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ex.CONSENT))

    channel: str
    granted: bool
    changed_at: datetime
    source: str


class StatusChangeOut(BaseModel):
    """One change of a member's status; ``from_status`` is null for the status they joined with."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra=examples(ex.JOINED, ex.SUSPENDED)
    )

    from_status: MemberStatus | None
    to_status: MemberStatus
    reason: str | None
    at: datetime
    actor: str = Field(description="Who changed it: api_key:<key id>, intake, import")
    event_id: uuid.UUID | None = Field(description="The event that changed it, if one did")


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ex.MEMBER))

    id: uuid.UUID
    status: MemberStatus
    enrolment_channel: str
    enrolment_store: str | None
    enrolled_at: datetime
    first_name: str | None
    last_name: str | None
    birth_date: date | None
    locale: str | None
    postal_code: str | None
    attributes: dict[str, Any]
    identities: list[IdentityOut] = Field(default_factory=list)
    consents: list[ConsentOut] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class EnrolmentOut(BaseModel):
    """The member's enrolment event and what the programme gave for it (its rules, badges and
    tier ran on it, as on any enrolment event)."""

    model_config = ConfigDict(json_schema_extra=examples(ex.ENROLMENT_OUTCOME))

    id: str = Field(description="The event's id: the Idempotency-Key sent, or one made up")
    event_id: uuid.UUID
    status: Literal["accepted", "duplicate"] = Field(
        description="duplicate: a resend with the same Idempotency-Key; nothing was done again"
    )
    totals: dict[str, Any] = Field(description="What it earned per wallet")
    effects: list[dict[str, Any]] = Field(
        description="Awards, vouchers, badges, the tier the member joined, with explanations"
    )


class EnrolledMemberOut(MemberOut):
    """A new member, and what their enrolment earned."""

    model_config = ConfigDict(json_schema_extra=examples(ex.ENROLLED))

    enrolment: EnrolmentOut
