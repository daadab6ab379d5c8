"""member portal: sign-in codes and member sessions (issue 13)

Revision ID: 20261130_0017
Revises: 20261130_0016
Create Date: 2026-11-30 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import fidelia.models.base

revision: str = "20261130_0017"
down_revision: str | None = "20261130_0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, fidelia.models.base.UTCDateTime(timezone=True), nullable=nullable)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "portal_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("expires_at"),
        _at("used_at", nullable=True),
        _at("created_at"),
        _fk("portal_codes", "programme_id", "programmes"),
        _fk("portal_codes", "member_id", "members"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_codes")),
    )
    op.create_index("ix_portal_codes_identity", "portal_codes", ["programme_id", "identity"])
    op.create_index(op.f("ix_portal_codes_member_id"), "portal_codes", ["member_id"])
    op.create_table(
        "portal_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        _at("created_at"),
        _at("last_seen_at"),
        _at("expires_at"),
        _at("ended_at", nullable=True),
        _fk("portal_sessions", "programme_id", "programmes"),
        _fk("portal_sessions", "member_id", "members"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_sessions")),
        sa.UniqueConstraint("digest", name=op.f("uq_portal_sessions_digest")),
    )
    op.create_index(op.f("ix_portal_sessions_member_id"), "portal_sessions", ["member_id"])
    op.create_table(
        "portal_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        _at("at"),
        _fk("portal_attempts", "programme_id", "programmes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_attempts")),
    )
    op.create_index(
        "ix_portal_attempts_identity_at", "portal_attempts", ["programme_id", "identity", "at"]
    )
    op.create_index("ix_portal_attempts_ip_at", "portal_attempts", ["ip", "at"])


def downgrade() -> None:
    op.drop_table("portal_attempts")
    op.drop_table("portal_sessions")
    op.drop_table("portal_codes")
