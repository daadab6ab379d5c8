"""The member portal: one-time sign-in codes, member sessions and sign-in attempts.

Separate from the back-office's tables on purpose: a member's cookie can never open ``/admin``
and a back-office session never shows a member's portal. Secrets (codes, session tokens) are
stored as SHA-256 digests only.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.models.base import Base, created_at, uuid_pk


class PortalCode(Base):
    """A one-time sign-in code sent to one identity (email or phone) of one member."""

    __tablename__ = "portal_codes"
    __table_args__ = (Index("ix_portal_codes_identity", "programme_id", "identity"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    identity: Mapped[str] = mapped_column(String(64))  # digest of kind:value
    digest: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()


class PortalSession(Base):
    """A member signed in to the portal: the cookie carries the token, the row its digest."""

    __tablename__ = "portal_sessions"

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = created_at()
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class PortalAttempt(Base):
    """One code request (``send``) or wrong code (``fail``), kept so that throttling holds
    across processes; identities are digests, unknown ones included (no enumeration)."""

    __tablename__ = "portal_attempts"
    __table_args__ = (
        Index("ix_portal_attempts_identity_at", "programme_id", "identity", "at"),
        Index("ix_portal_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    identity: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
