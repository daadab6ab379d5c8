"""GDPR erasures and rate-limit buckets (issue 16)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.models.base import Base, uuid_pk


class MemberErasure(Base):
    """That a member's personal data was erased: when, by whom and why (``request`` or
    ``retention``), never what. Its existence is what lets the erasure rewrite the personal
    fields of the member's append-only rows (events, consent history): the database triggers
    allow that change only for a member with an erasure row."""

    __tablename__ = "member_erasures"

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), unique=True
    )
    erased_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(16))


class RateBucket(Base):
    """A token bucket of one API key for one route class. ``tokens`` as of ``stamp`` (seconds
    since the epoch, a float, so the refill is the same arithmetic on both databases);
    ``allowed``: whether the last take got a token; ``granted``: how many it took (a process
    may take a few ahead, see ``fidelia.auth.limits``)."""

    __tablename__ = "rate_buckets"

    key_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    route_class: Mapped[str] = mapped_column(String(16), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    stamp: Mapped[float] = mapped_column(Float)
    allowed: Mapped[bool]
    granted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
