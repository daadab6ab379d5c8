"""Back-office users, their roles per programme, their sessions, login attempts and password
reset tokens. Secrets (session tokens, reset tokens) are stored as SHA-256 digests only."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fidelia.models.base import Base, created_at, uuid_pk


class BackofficeUser(Base):
    """A person who signs in to ``/admin``; ``email`` is stored lower-cased."""

    __tablename__ = "backoffice_users"

    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    # None: the programme's default locale.
    locale: Mapped[str | None] = mapped_column(String(16))
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()


class BackofficeRole(Base):
    """What a user may do in one programme: owner, marketer, support or analyst."""

    __tablename__ = "backoffice_roles"
    __table_args__ = (
        UniqueConstraint("user_id", "programme_id"),
        CheckConstraint("role IN ('owner', 'marketer', 'support', 'analyst')", name="role"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("backoffice_users.id", ondelete="CASCADE")
    )
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = created_at()


class BackofficeSession(Base):
    """A signed-in browser: the cookie carries the token, the row its digest and CSRF token."""

    __tablename__ = "backoffice_sessions"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("backoffice_users.id", ondelete="CASCADE"), index=True
    )
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = created_at()
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class LoginAttempt(Base):
    """One sign-in attempt, kept so that throttling holds across processes."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_at", "email", "at"),
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(String(320))
    ip: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool]
    at: Mapped[datetime]


class PasswordReset(Base):
    """A password reset token sent by email: single use, short-lived."""

    __tablename__ = "password_resets"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("backoffice_users.id", ondelete="CASCADE"), index=True
    )
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
