from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fidelia.kit.clock import utcnow
from fidelia.models.base import Base, created_at, uuid_pk


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        Index("ix_members_programme_id_id", "programme_id", "id"),
        Index("ix_members_programme_id_status", "programme_id", "status"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    enrolment_channel: Mapped[str] = mapped_column(String(16))
    enrolment_store: Mapped[str | None] = mapped_column(String(64))
    enrolled_at: Mapped[datetime]
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    birth_date: Mapped[date | None] = mapped_column(Date)
    locale: Mapped[str | None] = mapped_column(String(16))
    postal_code: Mapped[str | None] = mapped_column(String(16))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MemberIdentity(Base):
    """A way to recognise a member: card number, email, phone, or an external id of a channel.

    ``namespace`` is empty for card, email and phone; for external ids it names the system
    (``shopify``, ``app``, ``pos``...). Unique within a programme.
    """

    __tablename__ = "member_identities"
    __table_args__ = (
        UniqueConstraint("programme_id", "kind", "namespace", "value"),
        # the search by any identity, kind unknown (migration 0028)
        Index("ix_member_identities_programme_id_value", "programme_id", "value"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    # Declared so that a flush writes the member before the rows that point at it.
    member: Mapped[Member] = relationship(lazy="raise")
    kind: Mapped[str] = mapped_column(String(16))
    namespace: Mapped[str] = mapped_column(String(64), default="")
    value: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = created_at()


class Consent(Base):
    """The current consent of a member for one channel; its history is in ``ConsentChange``."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("member_id", "channel"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    # Declared so that a flush writes the member before the rows that point at it.
    member: Mapped[Member] = relationship(lazy="raise")
    channel: Mapped[str] = mapped_column(String(16))
    granted: Mapped[bool]
    changed_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(64))


class ConsentChange(Base):
    __tablename__ = "consent_changes"
    __table_args__ = (Index("ix_consent_changes_member_id_changed_at", "member_id", "changed_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    # Declared so that a flush writes the member before the rows that point at it.
    member: Mapped[Member] = relationship(lazy="raise")
    channel: Mapped[str] = mapped_column(String(16))
    granted: Mapped[bool]
    changed_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = created_at()


class MemberStatusChange(Base):
    """One change of a member's status, with why and by whom. Never changed.

    ``from_status`` is None for the member's first status (set when they joined). ``actor`` says
    who changed it (``api_key:<id>``, ``intake``, ``import``); ``event_id`` the event that did,
    when one did (an enrolment that activates a prospect).
    """

    __tablename__ = "member_status_changes"
    __table_args__ = (Index("ix_member_status_changes_member_id_at", "member_id", "at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    # Declared so that a flush writes the member before the rows that point at it.
    member: Mapped[Member] = relationship(lazy="raise")
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[uuid.UUID | None]
    recorded_at: Mapped[datetime] = created_at()
