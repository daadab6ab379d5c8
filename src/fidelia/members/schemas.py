from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fidelia.events.schemas import Channel, ConsentChannel, ExternalId, Profile
from fidelia.kit.clock import ensure_aware

MemberStatus = Literal["prospect", "active", "suspended", "closed"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ConsentIn(Strict):
    channel: ConsentChannel
    granted: bool
    source: str | None = Field(default=None, max_length=64)


class MemberCreate(Profile):
    """Enrolment. Identities are each unique within the programme."""

    card: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    external_ids: list[ExternalId] = Field(default_factory=list, max_length=20)
    channel: Channel = "store"
    store: str | None = Field(default=None, max_length=64)
    enrolled_at: datetime | None = None
    consents: list[ConsentIn] = Field(default_factory=list, max_length=4)

    @field_validator("enrolled_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return None if value is None else ensure_aware(value)


class MemberUpdate(Profile):
    """Profile changes; absent fields are left as they are."""


class IdentityAdd(Strict):
    kind: Literal["card", "email", "phone", "external"]
    value: str = Field(min_length=1, max_length=320)
    namespace: str | None = Field(default=None, max_length=64)


class StatusChange(Strict):
    status: MemberStatus
    reason: str | None = Field(default=None, max_length=500)


class IdentityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    namespace: str
    value: str


class ConsentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    channel: str
    granted: bool
    changed_at: datetime
    source: str


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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
