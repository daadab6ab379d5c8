from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from fidelia.auth import examples as ex
from fidelia.examples import examples


class Scope(StrEnum):
    """Ordered: each scope includes the ones before it."""

    read = "read"
    integration = "integration"
    admin = "admin"

    @property
    def rank(self) -> int:
        return list(Scope).index(self)

    def allows(self, needed: Scope) -> bool:
        return self.rank >= needed.rank


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=examples(ex.CREATE)
    )

    name: str = Field(min_length=1, max_length=200)
    scope: Scope


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ex.KEY, ex.REVOKED))

    id: uuid.UUID
    name: str
    scope: Scope
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    model_config = ConfigDict(json_schema_extra=examples(ex.CREATED))

    key: str = Field(description="The secret. Shown once; only its digest is stored.")
