from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.models.base import Base, created_at, uuid_pk


class Programme(Base):
    """A loyalty programme: one brand or white-label tenant. Every other row belongs to one."""

    __tablename__ = "programmes"

    id: Mapped[uuid.UUID] = uuid_pk()
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(2))
    # Policies such as what to do with events for unknown identities.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The programme document version that the engine applies now (0: none applied yet).
    live_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = created_at()
