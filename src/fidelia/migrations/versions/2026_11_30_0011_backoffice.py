"""backoffice: back-office users, roles, sessions, login throttling and the audit log

Revision ID: 20261130_0011
Revises: 20261130_0010
Create Date: 2026-11-30 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import fidelia.models.base

revision: str = "20261130_0011"
down_revision: str | None = "20261130_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _at(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, fidelia.models.base.UTCDateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column[Any]:
    return sa.Column("id", sa.Uuid(), nullable=False)


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"],
        ["backoffice_users.id"],
        name=op.f(f"fk_{table}_user_id_backoffice_users"),
        ondelete="CASCADE",
    )


def _programme_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["programme_id"],
        ["programmes.id"],
        name=op.f(f"fk_{table}_programme_id_programmes"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "backoffice_users",
        _id(),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=True),
        _at("disabled_at", nullable=True),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backoffice_users")),
        sa.UniqueConstraint("email", name=op.f("uq_backoffice_users_email")),
    )
    op.create_table(
        "backoffice_roles",
        _id(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        _at("created_at"),
        sa.CheckConstraint(
            "role IN ('owner', 'marketer', 'support', 'analyst')",
            name=op.f("ck_backoffice_roles_role"),
        ),
        _user_fk("backoffice_roles"),
        _programme_fk("backoffice_roles"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backoffice_roles")),
        sa.UniqueConstraint(
            "user_id", "programme_id", name=op.f("uq_backoffice_roles_user_id_programme_id")
        ),
    )
    op.create_index(op.f("ix_backoffice_roles_programme_id"), "backoffice_roles", ["programme_id"])
    op.create_table(
        "backoffice_sessions",
        _id(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        _at("created_at"),
        _at("last_seen_at"),
        _at("expires_at"),
        _at("ended_at", nullable=True),
        _user_fk("backoffice_sessions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backoffice_sessions")),
        sa.UniqueConstraint("digest", name=op.f("uq_backoffice_sessions_digest")),
    )
    op.create_index(op.f("ix_backoffice_sessions_user_id"), "backoffice_sessions", ["user_id"])
    op.create_table(
        "login_attempts",
        _id(),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        _at("at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    op.create_index("ix_login_attempts_email_at", "login_attempts", ["email", "at"])
    op.create_index("ix_login_attempts_ip_at", "login_attempts", ["ip", "at"])
    op.create_table(
        "password_resets",
        _id(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        _at("expires_at"),
        _at("used_at", nullable=True),
        _at("created_at"),
        _user_fk("password_resets"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("digest", name=op.f("uq_password_resets_digest")),
    )
    op.create_index(op.f("ix_password_resets_user_id"), "password_resets", ["user_id"])
    op.create_table(
        "audit_log",
        _id(),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("before", _json(), nullable=True),
        sa.Column("after", _json(), nullable=True),
        _at("at"),
        _programme_fk("audit_log"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["backoffice_users.id"],
            name=op.f("fk_audit_log_user_id_backoffice_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_programme_id_id", "audit_log", ["programme_id", "id"])
    op.create_index(
        "ix_audit_log_programme_id_target",
        "audit_log",
        ["programme_id", "target_type", "target_id"],
    )


def downgrade() -> None:
    for table in (
        "audit_log",
        "password_resets",
        "login_attempts",
        "backoffice_sessions",
        "backoffice_roles",
        "backoffice_users",
    ):
        op.drop_table(table)
