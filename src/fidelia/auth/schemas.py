from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fidelia.auth import examples as ex
from fidelia.examples import examples
from fidelia.kit.bounds import Instant
from fidelia.kit.clock import utcnow


class Scope(StrEnum):
    """Ordered: each scope includes the ones before it."""

    read = "read"
    integration = "integration"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Scope) -> bool:
        return self.rank >= needed.rank


_RANKS = {scope: n for n, scope in enumerate(Scope)}  # checked on every call: not a list scan


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=examples(ex.CREATE)
    )

    name: str = Field(min_length=1, max_length=200)
    scope: Scope
    expires_at: Instant | None = Field(
        default=None, description="Refused from then on (in the future); null: no expiry"
    )

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= utcnow():
            raise ValueError("must be in the future")
        return value


class ApiKeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=examples({"grace_hours": 24}))

    grace_hours: float = Field(
        default=24,
        ge=0,
        le=720,
        allow_inf_nan=False,
        description="How long the old key keeps working next to the new one (0: stops now)",
    )


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ex.KEY, ex.REVOKED))

    id: uuid.UUID
    name: str
    scope: Scope
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = None
    last_used_at: datetime | None = Field(
        default=None, description="Within a minute: written at most once a minute"
    )
    replaced_by_id: uuid.UUID | None = Field(
        default=None, description="The key a rotation replaced this one with"
    )


class ApiKeyCreated(ApiKeyOut):
    model_config = ConfigDict(json_schema_extra=examples(ex.CREATED))

    key: str = Field(description="The secret. Shown once; only its digest is stored.")
