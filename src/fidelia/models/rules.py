from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fidelia.kit.clock import utcnow
from fidelia.models.base import Base, created_at, uuid_pk
from fidelia.models.member import Member


class ProgrammeVersion(Base):
    """One applied version of a programme document (wallets, rules...). Never changed."""

    __tablename__ = "programme_versions"
    __table_args__ = (UniqueConstraint("programme_id", "version"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    version: Mapped[int]
    document: Mapped[dict[str, Any]]
    comment: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = created_at()


class MemberState(Base):
    """What the rules engine knows of a member, kept up to date with each event."""

    __tablename__ = "member_states"

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programmes.id", ondelete="CASCADE"))
    state: Mapped[dict[str, Any]]
    # Declared so that a flush writes the member before its state.
    member: Mapped[Member] = relationship(lazy="raise")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RuleCounter(Base):
    """Programme-wide usage of a rule with a budget or a first-N limit."""

    __tablename__ = "rule_counters"

    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="CASCADE"), primary_key=True
    )
    rule_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Exact decimal text: points are whole numbers, cashback budgets have cents.
    issued: Mapped[str] = mapped_column(String(40), default="0")
    members: Mapped[int] = mapped_column(default=0)
