from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.models.base import Base, created_at, uuid_pk


class ApiKey(Base):
    """A programme's API key. Only a SHA-256 digest of the secret is stored."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at()
    revoked_at: Mapped[datetime | None]
    # Refused from then on; set by a rotation to end the old key's grace period.
    expires_at: Mapped[datetime | None]
    # Written at most once a minute per process (not on every request).
    last_used_at: Mapped[datetime | None]
    # The key a rotation replaced this one with.
    replaced_by_id: Mapped[uuid.UUID | None]
